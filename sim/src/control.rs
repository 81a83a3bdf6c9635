//! Control endpoints under `/_sim/`, for end-to-end tests driven by shell scripts. They are not
//! part of the real API, are not rate limited and are not counted in the statistics.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /_sim/faults` | the injected faults, as JSON (`slow_delay` in seconds) |
//! | `PUT /_sim/faults` | replaces them; omitted fields mean no fault: `{"rate_5xx": 0.1}` |
//! | `GET /_sim/churn`, `PUT /_sim/churn` | `{"on": false}` freezes the world, `{"on": true}` resumes it |
//! | `GET /_sim/stats` | answers per path and status, malformed requests, 429s |
//! | `GET /_sim/requests` | the last requests answered (secrets redacted) |
//! | `GET /_sim/truth/summary` | active sessions per region and in total, ended ones per status, connectors per state, users per status, devices online and offline |
//! | `GET /_sim/connectors` | every connector: id, name, kind, network or host, region, state, whether pinned |
//! | `PUT /_sim/connectors/{id}` | `{"connection_status": "OFFLINE"}` pins its state (`ONLINE`, `OFFLINE`, `ONLINE_WITH_ISSUES`) until `{"connection_status": null}` clears it; 404 for an unknown id |
//! | `POST /_sim/users` | `{"group": "Sales"}` adds an active member of that group with one device, who never connects; answers 201 `{"id": ...}` |
//! | `DELETE /_sim/users/{id}` | removes the user (its active sessions end); 204, or 404 for an unknown id |
//!
//! ```text
//! curl -X PUT -d '{"rate_5xx": 0.2, "rate_slow": 0.1, "slow_delay": 3}' localhost:8080/_sim/faults
//! curl -X PUT -d '{"on": false}' localhost:8080/_sim/churn
//! curl localhost:8080/_sim/truth/summary
//! curl -X PUT -d '{"connection_status": "OFFLINE"}' localhost:8080/_sim/connectors/$ID
//! curl -X POST -d '{"group": "Sales"}' localhost:8080/_sim/users
//! ```

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ConnectorStatus, ControlError, Faults, FaultsError, Simulator};

/// Why a control request's body is refused (a 400 whose `error` is this message).
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// Not the JSON the endpoint expects.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// `slow_delay` is not a number of seconds.
    #[error("slow_delay must be a number of seconds, not {0}")]
    SlowDelay(f64),
    /// A fault rate is not a probability.
    #[error(transparent)]
    Faults(#[from] FaultsError),
    /// A change the simulator refuses (an unknown user group).
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// The control routes.
pub(crate) fn routes() -> Router<Simulator> {
    Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/churn", get(get_churn).put(put_churn))
        .route("/_sim/stats", get(stats))
        .route("/_sim/requests", get(requests))
        .route("/_sim/truth/summary", get(summary))
        .route("/_sim/connectors", get(connectors))
        .route("/_sim/connectors/{id}", axum::routing::put(put_connector))
        .route("/_sim/users", axum::routing::post(post_user))
        .route("/_sim/users/{id}", axum::routing::delete(delete_user))
}

/// [`Faults`] as JSON: durations in seconds; omitted fields take their default (no fault).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultsBody {
    rate_429: f64,
    rate_5xx: f64,
    rate_slow: f64,
    /// Seconds.
    slow_delay: f64,
    rate_truncated: f64,
    rate_duplicates: f64,
    rate_spurious_401: f64,
    repeat_cursor: bool,
    revoke_credentials: bool,
}

impl From<Faults> for FaultsBody {
    fn from(f: Faults) -> Self {
        FaultsBody {
            rate_429: f.rate_429,
            rate_5xx: f.rate_5xx,
            rate_slow: f.rate_slow,
            slow_delay: f.slow_delay.as_secs_f64(),
            rate_truncated: f.rate_truncated,
            rate_duplicates: f.rate_duplicates,
            rate_spurious_401: f.rate_spurious_401,
            repeat_cursor: f.repeat_cursor,
            revoke_credentials: f.revoke_credentials,
        }
    }
}

impl TryFrom<FaultsBody> for Faults {
    type Error = BodyError;

    fn try_from(b: FaultsBody) -> Result<Self, BodyError> {
        let slow_delay = Duration::try_from_secs_f64(b.slow_delay)
            .map_err(|_| BodyError::SlowDelay(b.slow_delay))?;
        let faults = Faults {
            rate_429: b.rate_429,
            rate_5xx: b.rate_5xx,
            rate_slow: b.rate_slow,
            slow_delay,
            rate_truncated: b.rate_truncated,
            rate_duplicates: b.rate_duplicates,
            rate_spurious_401: b.rate_spurious_401,
            repeat_cursor: b.repeat_cursor,
            revoke_credentials: b.revoke_credentials,
        };
        faults.validate()?;
        Ok(faults)
    }
}

fn bad_request(error: BodyError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": error.to_string() })),
    )
        .into_response()
}

async fn get_faults(State(sim): State<Simulator>) -> Response {
    axum::Json(FaultsBody::from(sim.faults())).into_response()
}

/// Replaces the faults with the body's (omitted fields: no fault).
async fn put_faults(State(sim): State<Simulator>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<FaultsBody>(&body)
        .map_err(BodyError::from)
        .and_then(Faults::try_from);
    match parsed {
        Ok(faults) => {
            tracing::info!(faults = ?faults, "injected faults changed");
            sim.set_faults(faults.clone());
            axum::Json(FaultsBody::from(faults)).into_response()
        }
        Err(message) => bad_request(message),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChurnBody {
    on: bool,
}

async fn get_churn(State(sim): State<Simulator>) -> Response {
    axum::Json(json!({ "on": sim.churn() })).into_response()
}

/// `{"on": false}` freezes the world, `{"on": true}` lets it move again.
async fn put_churn(State(sim): State<Simulator>, body: Bytes) -> Response {
    match serde_json::from_slice::<ChurnBody>(&body) {
        Ok(ChurnBody { on }) => {
            sim.set_churn(on);
            tracing::info!(on, "churn changed");
            axum::Json(json!({ "on": on })).into_response()
        }
        Err(e) => bad_request(e.into()),
    }
}

async fn stats(State(sim): State<Simulator>) -> Response {
    let stats = sim.stats();
    let responses: Vec<_> = stats
        .responses
        .iter()
        .map(|(path, status, count)| json!({"path": path, "status": status, "count": count}))
        .collect();
    axum::Json(json!({
        "responses": responses,
        "malformed": stats.malformed,
        "too_many_requests": stats.too_many_requests,
    }))
    .into_response()
}

async fn requests(State(sim): State<Simulator>) -> Response {
    let log: Vec<_> = sim
        .recent_requests()
        .into_iter()
        .map(|r| {
            json!({
                "at": super::world::iso_millis(r.at.timestamp_millis()),
                "method": r.method,
                "path": r.path,
                "query": r.query,
                "status": r.status,
                "malformed": r.malformed,
            })
        })
        .collect();
    axum::Json(log).into_response()
}

async fn summary(State(sim): State<Simulator>) -> Response {
    let summary = sim.summary();
    axum::Json(json!({
        "now": super::world::iso_millis(summary.now.timestamp_millis()),
        "churn": sim.churn(),
        "active_total": summary.active_total,
        "active_by_region": summary.active_by_region,
        "ended_by_status": summary.ended_by_status,
        "connectors_by_status": summary.connectors_by_status,
        "users_by_status": summary.users_by_status,
        "devices_by_connection_status": summary.devices_by_connection_status,
    }))
    .into_response()
}

fn not_found(error: ControlError) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": error.to_string() })),
    )
        .into_response()
}

async fn connectors(State(sim): State<Simulator>) -> Response {
    let list: Vec<_> = sim
        .connectors()
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "kind": c.kind.as_str(),
                "parent_id": c.parent_id,
                "parent_name": c.parent_name,
                "vpn_region": c.vpn_region,
                "connection_status": c.status,
                "pinned": c.pinned,
            })
        })
        .collect();
    axum::Json(list).into_response()
}

/// Deserializes a field that must be present, `null` or not: a missing field stays `None`, a
/// `null` one becomes `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectorBody {
    /// A state to pin, or `null` to follow the schedule again; required.
    #[serde(default, deserialize_with = "present")]
    connection_status: Option<Option<ConnectorStatus>>,
}

/// `{"connection_status": "OFFLINE"}` pins a connector's state; `null` clears it.
async fn put_connector(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let status = match serde_json::from_slice::<ConnectorBody>(&body) {
        Ok(ConnectorBody {
            connection_status: Some(status),
        }) => status,
        Ok(ConnectorBody {
            connection_status: None,
        }) => {
            return bad_request(BodyError::Json(serde::de::Error::missing_field(
                "connection_status",
            )));
        }
        Err(e) => return bad_request(e.into()),
    };
    match sim.set_connector_status(&id, status) {
        Ok(()) => {
            tracing::info!(connector = %id, status = ?status, "connector state pinned");
            let now = sim.connectors().into_iter().find(|c| c.id == id);
            axum::Json(json!({
                "id": id,
                "connection_status": now.as_ref().map(|c| c.status),
                "pinned": now.is_some_and(|c| c.pinned),
            }))
            .into_response()
        }
        Err(e) => not_found(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    group: String,
}

/// `{"group": "Sales"}` adds a user to that group; 201 with its id.
async fn post_user(State(sim): State<Simulator>, body: Bytes) -> Response {
    let added = serde_json::from_slice::<UserBody>(&body)
        .map_err(BodyError::from)
        .and_then(|b| sim.add_user(&b.group).map_err(BodyError::from));
    match added {
        Ok(id) => {
            tracing::info!(user = %id, "user added");
            (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
        }
        Err(e) => bad_request(e),
    }
}

/// Removes a user: 204, or 404 if there is none with that id.
async fn delete_user(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    if sim.remove_user(&id) {
        tracing::info!(user = %id, "user removed");
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": format!("no user has id {id:?}") })),
        )
            .into_response()
    }
}
