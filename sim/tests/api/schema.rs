//! A small validator for the part of JSON Schema that the vendor's OpenAPI spec uses, so that
//! every body the simulator answers can be checked against the spec's schemas.

use serde_json::{Value, json};

/// The vendor's OpenAPI document, copied into the repository.
pub(crate) struct Spec {
    doc: Value,
}

impl Spec {
    pub(crate) fn load() -> Spec {
        let text = include_str!("../fixtures/cloudconnexa-openapi-v1.1.0.json");
        Spec {
            doc: serde_json::from_str(text).expect("the spec is JSON"),
        }
    }

    /// Checks `value` against the named component schema. Objects whose schema lists its
    /// properties may carry only those, so a field the real API does not have is an error;
    /// a bare `{"type": "object"}` is free-form.
    pub(crate) fn validate(&self, name: &str, value: &Value) -> Result<(), String> {
        let root = json!({ "$ref": format!("#/components/schemas/{name}") });
        self.check(&root, value, "$")
    }

    /// Checks `value` against the schema of what the spec says `GET path` answers with 200.
    pub(crate) fn validate_response(&self, path: &str, value: &Value) -> Result<(), String> {
        let escaped = path.replace('~', "~0").replace('/', "~1");
        let pointer = format!("/paths/{escaped}/get/responses/200/content/*~1*/schema");
        let schema = self
            .doc
            .pointer(&pointer)
            .ok_or_else(|| format!("the spec has no 200 answer for GET {path}"))?;
        self.check(schema, value, "$")
    }

    fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let target = self
                .doc
                .pointer(reference.trim_start_matches('#'))
                .ok_or_else(|| format!("{at}: unresolved {reference}"))?;
            return self.check(target, value, at);
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        let format = schema.get("format").and_then(Value::as_str);
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => self.check_object(schema, value, at),
            Some("array") => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("{at}: not an array"))?;
                let item_schema = schema.get("items").cloned().unwrap_or(json!({}));
                for (i, item) in items.iter().enumerate() {
                    self.check(&item_schema, item, &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            Some("string") => {
                let text = value
                    .as_str()
                    .ok_or_else(|| format!("{at}: not a string"))?;
                if format == Some("date-time") {
                    chrono::DateTime::parse_from_rfc3339(text)
                        .map_err(|e| format!("{at}: {text:?} is not a date-time: {e}"))?;
                }
                Ok(())
            }
            Some("integer") => {
                let n = value
                    .as_i64()
                    .ok_or_else(|| format!("{at}: not an integer: {value}"))?;
                if format == Some("int32") && i32::try_from(n).is_err() {
                    return Err(format!("{at}: {n} does not fit int32"));
                }
                Ok(())
            }
            Some("number") => value
                .is_number()
                .then_some(())
                .ok_or_else(|| format!("{at}: not a number")),
            Some("boolean") => value
                .is_boolean()
                .then_some(())
                .ok_or_else(|| format!("{at}: not a boolean")),
            Some(other) => Err(format!("{at}: schema type {other} is not supported")),
            None => Ok(()),
        }
    }

    fn check_object(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{at}: not an object"))?;
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    return Err(format!("{at}: required {name} is missing"));
                }
            }
        }
        for (name, field) in object {
            let here = format!("{at}.{name}");
            match (
                properties.and_then(|p| p.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => self.check(property, field, &here)?,
                (None, Some(Value::Bool(true))) => {}
                (None, Some(extra)) if extra.is_object() => self.check(extra, field, &here)?,
                (None, None) if properties.is_none() => {}
                (None, _) => return Err(format!("{here}: not defined by the schema")),
            }
        }
        Ok(())
    }
}

#[test]
fn the_validator_catches_what_it_should() {
    let spec = Spec::load();
    let good = json!({"sessions": [{"id": "a", "bytesIn": 5, "sessionStartTime": "2024-01-01T00:00:00.000Z"}]});
    assert_eq!(spec.validate("SessionsResponse", &good), Ok(()));
    for bad in [
        json!({"sessions": [{"id": 5}]}),
        json!({"sessions": [{"bytesIn": "5"}]}),
        json!({"sessions": [{"sessionStartTime": "yesterday"}]}),
        json!({"sessions": [{"sessionId": "a"}]}),
        json!({"sessions": {}}),
    ] {
        assert!(spec.validate("SessionsResponse", &bad).is_err(), "{bad}");
    }
    assert!(
        spec.validate("OAuthResponse", &json!({"expires_in": 4_000_000_000i64}))
            .is_err()
    );
    let error = json!({"errorDetails": {"size": [{"errorCode": "X", "message": "m", "params": {"a": {}}}]}});
    assert_eq!(spec.validate("ErrorResponse", &error), Ok(()));
    let bad_params = json!({"errorDetails": {"size": [{"params": {"a": 1}}]}});
    assert!(spec.validate("ErrorResponse", &bad_params).is_err());
    let free_form = json!({"errorDetails": {"size": [{"params": {"a": {"max": 100}}}]}});
    assert_eq!(spec.validate("ErrorResponse", &free_form), Ok(()));
}
