//! The simulated API: `POST /api/{v1,beta}/oauth/token`, `GET /api/{v1,beta}/sessions` and the
//! v1 inventory (networks, hosts, connectors, users, user groups, devices, regions), answered
//! the way the real service answers (see the OpenAPI spec and the vendor's notes).
//!
//! Every request first passes the rate limit (a gateway sits in front of the service), then is
//! authenticated, then validated; injected faults apply only to requests that got that far, so a
//! malformed request is a 400 whatever faults are on.
//!
//! # Layout
//! - this module: the router, the gate every request passes (rate limit, `Date`, statistics and
//!   the request log), and what every endpoint shares (versions, query parameters, bodies).
//! - `auth`: the token endpoint, issued tokens and the authentication of requests.
//! - `faults`: injected faults drawn per request, and answers that wait before they go.
//! - `problems`: the spec's `ErrorResponse` for requests the API refuses.
//! - `sessions`: the sessions endpoint: its parameters, windows, cursors and pages.
//! - `inventory`: the inventory endpoints and their `page`/`size` pages.

mod auth;
mod faults;
mod inventory;
mod problems;
mod sessions;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use self::auth::{Authorization, authorization, invalid_token};
use self::faults::Prepared;
use self::problems::{Problems, Refusal, bad_query};
use super::limit::TokenBucket;
use super::world::iso_millis;
use super::{RequestRecord, Simulator, State as SimState, control, millis_to_time};

/// Most distinct paths counted separately in the statistics; others are counted as `(other)`.
const MAX_COUNTED_PATHS: usize = 256;

/// The API versions served: they differ in their history window, and only v1 has the
/// inventory endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    Beta,
}

impl Version {
    fn parse(text: &str) -> Option<Version> {
        match text {
            "v1" => Some(Version::V1),
            "beta" => Some(Version::Beta),
            _ => None,
        }
    }

    /// How far back `startDate` may reach, in days.
    fn history_days(self) -> i64 {
        match self {
            Version::V1 => 30,
            Version::Beta => 7,
        }
    }
}

/// The API, the control endpoints and the gate every request passes.
pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/api/{version}/oauth/token", post(auth::token))
        .route("/api/{version}/sessions", get(sessions::sessions))
        .merge(inventory::routes())
        .merge(control::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), gate))
        .with_state(sim)
}

/// Rate limit, `Date` header, statistics and the request log, around every request.
async fn gate(State(sim): State<Simulator>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        let mut response = next.run(request).await;
        let now = sim.state().clock.server_ms();
        stamp_date(&mut response, now);
        return response;
    }
    let method = request.method().as_str().to_owned();
    let query = redact(request.uri().query().unwrap_or(""));
    let (admitted, limit_headers) = sim.admit(request.headers(), request.uri());
    let mut response = if admitted {
        next.run(request).await
    } else {
        // The gateway's refusal: no body, no Retry-After.
        StatusCode::TOO_MANY_REQUESTS.into_response()
    };
    response.headers_mut().extend(limit_headers);
    let mut state = sim.state();
    let now = state.clock.server_ms();
    stamp_date(&mut response, now);
    state.record(now, method, path, query, &response);
    response
}

impl Simulator {
    /// Spends a token of the requesting client's bucket; returns whether the request may go on
    /// and the rate-limit headers to answer with.
    fn admit(&self, headers: &HeaderMap, uri: &Uri) -> (bool, HeaderMap) {
        let mut state = self.state();
        let Some(limit) = state.config.rate_limit else {
            return (true, HeaderMap::new());
        };
        let client = state.client_key(headers, uri);
        let now = tokio::time::Instant::now();
        let bucket = state
            .buckets
            .entry(client)
            .or_insert_with(|| TokenBucket::new(&limit, now));
        let admitted = bucket.try_take(&limit, now);
        let mut out = HeaderMap::new();
        let mut put = |name: &'static str, value: u64| {
            out.insert(HeaderName::from_static(name), HeaderValue::from(value));
        };
        put("x-ratelimit-remaining", u64::from(bucket.remaining()));
        put(
            "x-ratelimit-replenish-rate",
            u64::from(limit.replenish_rate),
        );
        put(
            "x-ratelimit-replenish-time",
            limit.replenish_time.as_secs().max(1),
        );
        put("x-ratelimit-burst-capacity", u64::from(limit.burst));
        (admitted, out)
    }
}

impl SimState {
    /// Whose bucket a request spends: the configured client's if the request names it (Basic
    /// credentials, `client_id`, or a token issued to it), else a shared anonymous bucket, so
    /// that made-up client ids cannot create buckets without end.
    fn client_key(&self, headers: &HeaderMap, uri: &Uri) -> String {
        let named = match authorization(headers) {
            Some(Authorization::Basic(id, _)) => Some(id),
            Some(Authorization::Bearer(token)) => self.grants.get(&token).map(|g| g.client.clone()),
            None => query_pairs(uri)
                .ok()
                .and_then(|pairs| first(&pairs, "client_id").map(str::to_owned)),
        };
        match named {
            Some(id) if id == self.config.client_id => id,
            _ => String::new(),
        }
    }

    /// Counts the answer and logs the request.
    fn record(
        &mut self,
        now: i64,
        method: String,
        path: String,
        query: String,
        response: &Response,
    ) {
        let status = response.status().as_u16();
        let malformed = response
            .extensions()
            .get::<Refusal>()
            .is_some_and(|r| r.malformed);
        if malformed {
            self.malformed += 1;
        }
        if status == 429 {
            self.too_many_requests += 1;
        }
        let mut key = (path.clone(), status);
        if self.responses.len() >= MAX_COUNTED_PATHS && !self.responses.contains_key(&key) {
            key.0 = "(other)".into();
        }
        *self.responses.entry(key).or_default() += 1;
        if self.log.len() >= super::REQUEST_LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(RequestRecord {
            at: millis_to_time(now),
            method,
            path,
            query,
            status,
            malformed,
        });
    }
}

/// A request for data that passed the steps every such request takes first.
struct Opened {
    /// The server clock, the world advanced to it.
    now: i64,
    version: Version,
    pairs: Pairs,
}

impl SimState {
    /// The steps every request for data takes before its own: the world advances to now; an
    /// unknown version (or, with `v1_only`, any but v1) is a 404, a missing or bad token a 401,
    /// and a query that cannot be decoded a 400. On failure, the answer to give instead (boxed:
    /// a response is large, and failing is the rare way).
    fn open(
        &mut self,
        version: &str,
        v1_only: bool,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Opened, Box<Prepared>> {
        let now = self.advance();
        let version = match Version::parse(version) {
            Some(Version::Beta) if v1_only => None,
            known => known,
        };
        let Some(version) = version else {
            return Err(Box::new(Prepared::now(not_found_at(now, uri.path()))));
        };
        if let Err(description) = self.authenticate(headers) {
            return Err(Box::new(Prepared::now(invalid_token(description))));
        }
        match query_pairs(uri) {
            Ok(pairs) => Ok(Opened {
                now,
                version,
                pairs,
            }),
            Err(e) => Err(Box::new(Prepared::now(bad_query(e)))),
        }
    }
}

/// Sets the `Date` header from the server's clock (the HTTP server would use the real one).
pub(crate) fn stamp_date(response: &mut Response, now: i64) {
    let text = millis_to_time(now)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().insert(header::DATE, value);
    }
}

/// The query string with secret values replaced, for the log.
fn redact(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _))
                if ["client_secret", "access_token", "token"]
                    .iter()
                    .any(|s| name.eq_ignore_ascii_case(s)) =>
            {
                format!("{name}=***")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_value(status: StatusCode, value: &Value) -> Response {
    json_body(status, value.to_string().into_bytes())
}

async fn not_found(State(sim): State<Simulator>, uri: Uri) -> Response {
    let now = sim.state().clock.server_ms();
    not_found_at(now, uri.path())
}

fn not_found_at(now: i64, path: &str) -> Response {
    json_value(
        StatusCode::NOT_FOUND,
        &json!({"timestamp": iso_millis(now), "status": 404, "error": "Not Found", "path": path}),
    )
}

type Pairs = Vec<(String, String)>;

/// The query's parameters, decoded.
fn query_pairs(uri: &Uri) -> Result<Pairs, String> {
    Query::<Pairs>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| e.body_text())
}

/// Parameters of a form-encoded body. The service's framework reads request parameters from
/// the query string and from such a body alike, so OAuth2 clients that send their credentials
/// in the body work too. (Their token requests spend from the anonymous bucket: the gate does
/// not read bodies.)
fn form_pairs(headers: &HeaderMap, body: &[u8]) -> Result<Pairs, String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form || body.is_empty() {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    // A form body has the syntax of a query string.
    let uri: Uri = format!("/?{text}")
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| e.to_string())?;
    query_pairs(&uri)
}

/// The integer parameter `name`, if given, within `min..=max`; a problem is added for one that
/// is not an integer or out of range.
fn bounded(
    pairs: &[(String, String)],
    name: &str,
    min: i64,
    max: i64,
    problems: &mut Problems,
) -> Result<Option<i64>, ()> {
    let Some(text) = first(pairs, name) else {
        return Ok(None);
    };
    match text.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Ok(n) => {
            problems.add(
                name,
                "OUT_OF_RANGE",
                format!("{name} must be between {min} and {max}, got {n}"),
                json!({"limits": {"min": min, "max": max}}),
            );
            Err(())
        }
        Err(_) => {
            problems.add(
                name,
                "INVALID_FORMAT",
                format!("{name} must be an integer"),
                json!({"rejected": {"value": text}}),
            );
            Err(())
        }
    }
}

/// The first value of `name`, if present and not empty (an empty value counts as absent, as
/// the service's framework binds it).
fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_logged_queries() {
        assert_eq!(
            redact("client_id=a&client_secret=b&grant_type=c"),
            "client_id=a&client_secret=***&grant_type=c"
        );
    }
}
