//! The spec's `ErrorResponse`: what is wrong with a refused request, per parameter.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};

use super::json_value;

/// Marks a 400 answer for the statistics: malformed, or only outside the history window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refusal {
    pub(super) malformed: bool,
}

/// One entry of the spec's `ErrorDetails`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ErrorDetail {
    pub(super) error_code: &'static str,
    pub(super) message: String,
    /// The spec types each value as an object.
    pub(super) params: Value,
}

/// What is wrong with a request, per parameter: becomes the spec's `ErrorResponse`.
#[derive(Debug, Default)]
pub(super) struct Problems {
    pub(super) details: BTreeMap<String, Vec<ErrorDetail>>,
    pub(super) malformed: bool,
}

impl Problems {
    pub(super) fn add(&mut self, param: &str, code: &'static str, message: String, params: Value) {
        self.add_detail(param, code, message, params, true);
    }

    pub(super) fn add_detail(
        &mut self,
        param: &str,
        code: &'static str,
        message: String,
        params: Value,
        malformed: bool,
    ) {
        self.malformed |= malformed;
        self.details
            .entry(param.to_owned())
            .or_default()
            .push(ErrorDetail {
                error_code: code,
                message,
                params,
            });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    pub(super) fn into_response(self) -> Response {
        let error_message = match self
            .details
            .values()
            .flatten()
            .collect::<Vec<_>>()
            .as_slice()
        {
            [only] => only.message.clone(),
            _ => "Request parameters are invalid".to_owned(),
        };
        let body = json!({
            "errorMessage": error_message,
            "statusError": "BAD_REQUEST",
            "errorDetails": self.details,
        });
        let mut response = json_value(StatusCode::BAD_REQUEST, &body);
        response.extensions_mut().insert(Refusal {
            malformed: self.malformed,
        });
        response
    }
}

/// 400 for a query string that cannot be decoded.
pub(super) fn bad_query(reason: String) -> Response {
    let mut problems = Problems::default();
    problems.add(
        "query",
        "INVALID_FORMAT",
        format!("the query string cannot be decoded: {reason}"),
        json!({}),
    );
    problems.into_response()
}
