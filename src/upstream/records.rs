//! Inventory records as the API sends them (networks, hosts and their connectors; users and their
//! devices; user groups; VPN regions), decoded tolerantly.
//!
//! The spec marks no field as required and the API is not known to validate what it returns, so
//! every field is optional and read leniently from a [`serde_json::Value`] (these lists are
//! thousands of items, not the sessions' hundreds of thousands, so the tree costs nothing worth
//! hand-writing a visitor for): a string stands for itself, a number for its digits, anything
//! else for "missing". Enumerated values are upper-cased and kept even when the spec does not
//! know them (an API that adds a state must not make it vanish from the metrics); a missing
//! value or name becomes [`NONE`]. An item without an id cannot be de-duplicated across pages,
//! so it is skipped (and counted, for the log).

use serde_json::Value;

/// The value of a missing or empty field.
pub const NONE: &str = "none";

/// Longest value kept; longer ones are cut so one odd record cannot bloat every scrape.
const MAX_LEN: usize = 128;

/// A field's text: strings trimmed, numbers as digits, anything else (or empty) missing.
fn text(item: &Value, key: &str) -> Option<String> {
    let value = match item.get(key)? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!value.is_empty()).then(|| clip(value))
}

fn clip(mut value: String) -> String {
    if value.len() > MAX_LEN {
        let mut end = MAX_LEN;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

/// A name, [`NONE`] when missing.
fn name(item: &Value, key: &str) -> String {
    text(item, key).unwrap_or_else(|| NONE.to_owned())
}

/// An enumerated value, upper-cased, [`NONE`] when missing.
fn enumerated(item: &Value, key: &str) -> String {
    text(item, key).map_or_else(|| NONE.to_owned(), |v| v.to_ascii_uppercase())
}

/// The elements of an array field (none when missing or not an array).
fn list<'a>(item: &'a Value, key: &str) -> &'a [Value] {
    item.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// An inventory item: what it is read from, and the id it is de-duplicated by.
pub trait Record: Sized {
    /// Reads an element of a listing; `None` when it is not an object or has no id.
    fn from_json(item: &Value) -> Option<Self>;
    /// Its id.
    fn id(&self) -> &str;
}

/// A connector of a network or a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `vpnRegionId`.
    pub vpn_region: String,
    /// `connectionStatus`: `ONLINE`, `OFFLINE`, `ONLINE_WITH_ISSUES`, or what else the API says.
    pub status: String,
}

/// Reads the embedded connectors of a network or host; those without an id are skipped.
fn connectors(item: &Value) -> (Vec<Connector>, usize) {
    let mut skipped = 0;
    let connectors = list(item, "connectors")
        .iter()
        .filter_map(|c| {
            let connector = c
                .is_object()
                .then(|| text(c, "id"))
                .flatten()
                .map(|id| Connector {
                    id,
                    name: name(c, "name"),
                    vpn_region: name(c, "vpnRegionId"),
                    status: enumerated(c, "connectionStatus"),
                });
            skipped += usize::from(connector.is_none());
            connector
        })
        .collect();
    (connectors, skipped)
}

/// A network or a host, with its connectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `connectors`.
    pub connectors: Vec<Connector>,
    /// Connectors skipped for want of an id.
    pub skipped_connectors: usize,
}

impl Record for Site {
    fn from_json(item: &Value) -> Option<Self> {
        let id = item.is_object().then(|| text(item, "id")).flatten()?;
        let (connectors, skipped_connectors) = connectors(item);
        Some(Self {
            id,
            name: name(item, "name"),
            connectors,
            skipped_connectors,
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// A device of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `id`.
    pub id: String,
    /// `connectionStatus`.
    pub connection_status: String,
    /// `platform.os`.
    pub os: String,
}

/// A user, with its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `id`.
    pub id: String,
    /// `groupId`, if any.
    pub group_id: Option<String>,
    /// `status`: `INVITED`, `ACTIVE`, `SUSPENDED`, `SUSPENDED_IDP`, ...
    pub status: String,
    /// `role`: `OWNER`, `ADMIN`, `MEMBER`, ...
    pub role: String,
    /// `authType`: `INTERNAL`, `SAML`, `LDAP`, `GOOGLE`, `MICROSOFT`, ...
    pub auth_type: String,
    /// `connectionStatus`.
    pub connection_status: String,
    /// `devices`, de-duplicated by id.
    pub devices: Vec<Device>,
    /// Devices skipped for want of an id.
    pub skipped_devices: usize,
}

impl Record for User {
    fn from_json(item: &Value) -> Option<Self> {
        let id = item.is_object().then(|| text(item, "id")).flatten()?;
        let mut skipped_devices = 0;
        let mut devices: Vec<Device> = Vec::new();
        for d in list(item, "devices") {
            match d.is_object().then(|| text(d, "id")).flatten() {
                None => skipped_devices += 1,
                Some(id) if devices.iter().any(|seen| seen.id == id) => {}
                Some(id) => devices.push(Device {
                    id,
                    connection_status: enumerated(d, "connectionStatus"),
                    os: d
                        .get("platform")
                        .map_or_else(|| NONE.to_owned(), |p| enumerated(p, "os")),
                }),
            }
        }
        Some(Self {
            id,
            group_id: text(item, "groupId"),
            status: enumerated(item, "status"),
            role: enumerated(item, "role"),
            auth_type: enumerated(item, "authType"),
            connection_status: enumerated(item, "connectionStatus"),
            devices,
            skipped_devices,
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// A user group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroup {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
}

impl Record for UserGroup {
    fn from_json(item: &Value) -> Option<Self> {
        let id = item.is_object().then(|| text(item, "id")).flatten()?;
        Some(Self {
            id,
            name: name(item, "name"),
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

/// A VPN region of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// `id`, the value sessions and connectors name (`us-east-1`).
    pub id: String,
    /// `regionName`.
    pub name: String,
    /// `country`.
    pub country: String,
    /// `countryIso`.
    pub country_iso: String,
    /// `continent`.
    pub continent: String,
}

impl Record for Region {
    fn from_json(item: &Value) -> Option<Self> {
        let id = item.is_object().then(|| text(item, "id")).flatten()?;
        Some(Self {
            id,
            name: name(item, "regionName"),
            country: name(item, "country"),
            country_iso: name(item, "countryIso"),
            continent: name(item, "continent"),
        })
    }

    fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_network_reads_its_connectors_tolerantly() {
        let network = Site::from_json(&json!({
            "id": "n1", "name": " headquarters ", "egress": true, "routes": [],
            "connectors": [
                {"id": "c1", "name": "hq-nyc", "vpnRegionId": "us-east-1", "connectionStatus": "ONLINE"},
                {"id": "c2", "connectionStatus": "degraded", "vpnRegionId": 7},
                {"name": "no id"},
                "not an object"
            ]
        }))
        .expect("a network");
        assert_eq!(network.name, "headquarters");
        assert_eq!(network.skipped_connectors, 2);
        assert_eq!(
            network.connectors,
            [
                Connector {
                    id: "c1".into(),
                    name: "hq-nyc".into(),
                    vpn_region: "us-east-1".into(),
                    status: "ONLINE".into(),
                },
                Connector {
                    id: "c2".into(),
                    name: NONE.into(),
                    vpn_region: "7".into(),
                    status: "DEGRADED".into(),
                },
            ],
            "a missing name is none, an unknown state is kept upper-cased"
        );
        let bare = Site::from_json(&json!({"id": 5, "connectors": "nope"})).expect("a host");
        assert_eq!((bare.id.as_str(), bare.name.as_str()), ("5", NONE));
        assert!(bare.connectors.is_empty());
    }

    #[test]
    fn items_without_an_id_are_not_records() {
        for item in [
            json!({"name": "x"}),
            json!({"id": ""}),
            json!({"id": null}),
            json!(7),
            json!([]),
        ] {
            assert_eq!(Site::from_json(&item), None, "{item}");
            assert_eq!(User::from_json(&item), None, "{item}");
            assert_eq!(Region::from_json(&item), None, "{item}");
            assert_eq!(UserGroup::from_json(&item), None, "{item}");
        }
    }

    #[test]
    fn a_user_reads_its_devices_once_each() {
        let user = User::from_json(&json!({
            "id": "u1", "groupId": "g1", "status": "Active", "role": "MEMBER", "authType": "SAML",
            "connectionStatus": "ONLINE", "email": "a@b.c",
            "devices": [
                {"id": "d1", "connectionStatus": "ONLINE", "platform": {"os": "mac", "version": "14"}},
                {"id": "d1", "connectionStatus": "ONLINE"},
                {"id": "d2"},
                {"connectionStatus": "OFFLINE"}
            ]
        }))
        .expect("a user");
        assert_eq!(user.group_id.as_deref(), Some("g1"));
        assert_eq!(
            (user.status.as_str(), user.auth_type.as_str()),
            ("ACTIVE", "SAML")
        );
        assert_eq!(user.skipped_devices, 1);
        assert_eq!(
            user.devices,
            [
                Device {
                    id: "d1".into(),
                    connection_status: "ONLINE".into(),
                    os: "MAC".into()
                },
                Device {
                    id: "d2".into(),
                    connection_status: NONE.into(),
                    os: NONE.into()
                },
            ]
        );
        let lean = User::from_json(&json!({"id": "u2"})).expect("a user");
        assert_eq!(
            (lean.group_id, lean.status.as_str(), lean.role.as_str()),
            (None, NONE, NONE)
        );
    }

    #[test]
    fn regions_and_groups_read_their_names() {
        let region = Region::from_json(&json!({
            "id": "eu-central-1", "regionName": "Frankfurt", "country": "Germany",
            "countryIso": "DE", "continent": "Europe"
        }))
        .unwrap();
        assert_eq!(
            (
                region.name.as_str(),
                region.country_iso.as_str(),
                region.continent.as_str()
            ),
            ("Frankfurt", "DE", "Europe")
        );
        let group = UserGroup::from_json(&json!({"id": "g", "name": "x".repeat(300)})).unwrap();
        assert_eq!(group.name.len(), MAX_LEN, "long values are clipped");
    }
}
