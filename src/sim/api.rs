//! The simulated API: `POST /api/{v1,beta}/oauth/token` and `GET /api/{v1,beta}/sessions`,
//! answered the way the real service answers (see the OpenAPI spec and the vendor's notes).
//!
//! Every request first passes the rate limit (a gateway sits in front of the service), then is
//! authenticated, then validated; injected faults apply only to requests that got that far, so a
//! malformed request is a 400 whatever faults are on.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};

use super::cursor::{self, Cursor};
use super::limit::TokenBucket;
use super::world::{DAY, ListKey, Listing, SessionRecord, Status, iso_millis};
use super::{Grant, RequestRecord, Simulator, State as SimState, control, millis_to_time};

/// Most access tokens held at once; the oldest give way (a client fetching a token per request
/// must not grow the simulator without bound).
const MAX_GRANTS: usize = 10_000;
/// Most distinct paths counted separately in the statistics; others are counted as `(other)`.
const MAX_COUNTED_PATHS: usize = 256;

/// The API versions served, which differ only in their history window.
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
        .route("/api/{version}/oauth/token", post(token))
        .route("/api/{version}/sessions", get(sessions))
        .merge(control::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(sim.clone(), gate))
        .with_state(sim)
}

/// Marks a 400 answer for the statistics: malformed, or only outside the history window.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    malformed: bool,
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

/// An answer ready to go, possibly after a delay (a slow-answer fault).
struct Prepared {
    response: Response,
    delay: Option<Duration>,
}

impl Prepared {
    fn now(response: Response) -> Prepared {
        Prepared {
            response,
            delay: None,
        }
    }

    async fn deliver(self) -> Response {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        self.response
    }
}

/// The faults drawn for one request.
#[derive(Debug, Default)]
struct Roll {
    failure: Option<Failure>,
    delay: Option<Duration>,
    truncate: bool,
    duplicate: bool,
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    ServerError,
    TooManyRequests,
    Unauthorized,
}

impl Roll {
    /// Draws the faults for a request to the token endpoint (`sessions` false) or the sessions
    /// endpoint. Fault draws use the thread's generator: they need not be reproducible, and
    /// they must not disturb the world's streams.
    fn draw(faults: &super::Faults, sessions: bool) -> Roll {
        let mut rng = rand::rng();
        let mut hit = |p: f64| p.is_finite() && p > 0.0 && rng.random::<f64>() < p;
        let failure = if hit(faults.rate_5xx) {
            Some(Failure::ServerError)
        } else if hit(faults.rate_429) {
            Some(Failure::TooManyRequests)
        } else if sessions && hit(faults.rate_spurious_401) {
            Some(Failure::Unauthorized)
        } else {
            None
        };
        Roll {
            failure,
            delay: (hit(faults.rate_slow) && !faults.slow_delay.is_zero())
                .then_some(faults.slow_delay),
            truncate: hit(faults.rate_truncated),
            duplicate: sessions && hit(faults.rate_duplicates),
        }
    }

    /// The answer of a drawn failure, if any.
    fn failure_response(&self) -> Option<Response> {
        Some(match self.failure? {
            Failure::ServerError => server_error(),
            Failure::TooManyRequests => StatusCode::TOO_MANY_REQUESTS.into_response(),
            Failure::Unauthorized => invalid_token("Access token expired"),
        })
    }

    /// `body` as a 200 JSON answer, cut short if so drawn.
    fn ok(&self, body: Vec<u8>) -> Prepared {
        let body = if self.truncate && body.len() > 1 {
            let cut = rand::rng().random_range(1..body.len());
            body[..cut].to_vec()
        } else {
            body
        };
        Prepared {
            response: json_body(StatusCode::OK, body),
            delay: self.delay,
        }
    }
}

fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_value(status: StatusCode, value: &Value) -> Response {
    json_body(status, value.to_string().into_bytes())
}

/// A 500, 502 (from the gateway, in HTML) or 503.
fn server_error() -> Response {
    match rand::rng().random_range(0..3) {
        0 => json_value(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({
                "errorMessage": "Internal server error",
                "statusError": "INTERNAL_SERVER_ERROR",
                "errorDetails": {}
            }),
        ),
        1 => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        _ => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "errorMessage": "Service temporarily unavailable",
                "statusError": "SERVICE_UNAVAILABLE",
                "errorDetails": {}
            }),
        ),
    }
}

/// 401 for a bearer token that is missing, unknown, expired or revoked.
fn invalid_token(description: &str) -> Response {
    let mut response = json_value(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_token", "error_description": description}),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// 401 for a token request with wrong, missing or revoked client credentials.
fn invalid_client() -> Response {
    let mut response = json_value(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "invalid_client", "error_description": "Bad client credentials"}),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"oauth2/client\""),
    );
    response
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

/// One entry of the spec's `ErrorDetails`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail {
    error_code: &'static str,
    message: String,
    /// The spec types each value as an object.
    params: Value,
}

/// What is wrong with a request, per parameter: becomes the spec's `ErrorResponse`.
#[derive(Debug, Default)]
struct Problems {
    details: BTreeMap<String, Vec<ErrorDetail>>,
    malformed: bool,
}

impl Problems {
    fn add(&mut self, param: &str, code: &'static str, message: String, params: Value) {
        self.add_detail(param, code, message, params, true);
    }

    fn add_detail(
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

    fn is_empty(&self) -> bool {
        self.details.is_empty()
    }

    fn into_response(self) -> Response {
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

/// The first value of `name`, if present and not empty (an empty value counts as absent, as
/// the service's framework binds it).
fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// An ISO instant (`2022-11-08T14:53:43Z`, fractions and offsets allowed), in ms.
fn parse_instant(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

enum Authorization {
    Basic(String, String),
    Bearer(String),
}

fn authorization(headers: &HeaderMap) -> Option<Authorization> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Authorization::Bearer(rest.to_owned()))
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(decode_base64(rest)?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some(Authorization::Basic(id.to_owned(), secret.to_owned()))
    } else {
        None
    }
}

/// Standard base64 with optional padding (Basic credentials are short; a crate is not needed).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// `POST /api/{version}/oauth/token`.
async fn token(
    State(sim): State<Simulator>,
    Path(version): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let prepared = {
        let mut state = sim.state();
        state.answer_token(&version, &headers, &uri, &body)
    };
    prepared.deliver().await
}

/// `GET /api/{version}/sessions`.
async fn sessions(
    State(sim): State<Simulator>,
    Path(version): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let prepared = {
        let mut state = sim.state();
        state.answer_sessions(&version, &headers, &uri)
    };
    prepared.deliver().await
}

/// A validated listing request.
#[derive(Debug)]
struct ListingRequest {
    listing: Listing,
    /// Digest of the query, sealed into the cursors of its pages.
    query_digest: u64,
    /// The cursor as the client sent it.
    cursor: Option<String>,
}

/// Validates the sessions endpoint's parameters as the spec defines them.
fn parse_listing(
    pairs: &[(String, String)],
    version: Version,
    now: i64,
    cursor_key: u64,
) -> Result<ListingRequest, Problems> {
    let mut problems = Problems::default();
    let size = match first(pairs, "size") {
        None => {
            problems.add(
                "size",
                "REQUIRED",
                "size is required".into(),
                json!({"limits": {"min": 1, "max": 100}}),
            );
            None
        }
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => Some(n as usize),
            Ok(n) => {
                problems.add(
                    "size",
                    "OUT_OF_RANGE",
                    format!("size must be between 1 and 100, got {n}"),
                    json!({"limits": {"min": 1, "max": 100}}),
                );
                None
            }
            Err(_) => {
                problems.add(
                    "size",
                    "INVALID_FORMAT",
                    "size must be an integer".into(),
                    json!({"rejected": {"value": text}}),
                );
                None
            }
        },
    };
    let instant = |name: &str, problems: &mut Problems| match first(pairs, name) {
        None => Ok(None),
        Some(text) => match parse_instant(text) {
            Some(ms) => Ok(Some(ms)),
            None => {
                problems.add(
                    name,
                    "INVALID_FORMAT",
                    format!("{name} must be an ISO instant, e.g. 2022-11-08T14:53:43Z"),
                    json!({"rejected": {"value": text}}),
                );
                Err(())
            }
        },
    };
    let start = instant("startDate", &mut problems);
    let end = instant("endDate", &mut problems);
    let earliest = now - version.history_days() * DAY;
    if let Ok(Some(start)) = start {
        if start < earliest {
            problems.add_detail(
                "startDate",
                "HISTORY_LIMIT_EXCEEDED",
                format!(
                    "startDate must not be before now - {} days ({})",
                    version.history_days(),
                    iso_millis(earliest)
                ),
                json!({"earliest": {"value": iso_millis(earliest)}}),
                false,
            );
        }
    }
    let status = match first(pairs, "status") {
        None => Ok(None),
        Some(text) => Status::parse(text).map(Some).ok_or_else(|| {
            problems.add(
                "status",
                "INVALID_VALUE",
                format!("status must be one of ACTIVE, COMPLETED, FAILED, got {text:?}"),
                json!({"allowed": {"values": ["ACTIVE", "COMPLETED", "FAILED"]}}),
            );
        }),
    };
    let only_new = match first(pairs, "returnOnlyNew") {
        None => Ok(false),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(text) => {
            problems.add(
                "returnOnlyNew",
                "INVALID_FORMAT",
                "returnOnlyNew must be true or false".into(),
                json!({"rejected": {"value": text}}),
            );
            Err(())
        }
    };
    let (Some(size), Ok(start), Ok(end), Ok(status), Ok(only_new)) =
        (size, start, end, status, only_new)
    else {
        return Err(problems);
    };
    let query_digest = cursor::digest(
        0,
        format!(
            "{version:?}|{start:?}|{end:?}|{}|{only_new}",
            status.map_or("", Status::as_str)
        )
        .as_bytes(),
    );
    let cursor_text = first(pairs, "cursor").map(str::to_owned);
    let after = match &cursor_text {
        None => None,
        Some(text) => match Cursor::decode(text, cursor_key) {
            Some(c) if c.query == query_digest => Some(c.after),
            _ => {
                problems.add(
                    "cursor",
                    "INVALID_CURSOR",
                    "cursor is not valid for this query".into(),
                    json!({}),
                );
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ListingRequest {
        listing: Listing {
            start: start.unwrap_or(now - DAY),
            end,
            status,
            only_new,
            after,
            size,
        },
        query_digest,
        cursor: cursor_text,
    })
}

/// A page of sessions (the spec's `SessionsResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    sessions: Vec<SessionRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl SimState {
    fn answer_token(
        &mut self,
        version: &str,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
    ) -> Prepared {
        let now = self.advance();
        if Version::parse(version).is_none() {
            return Prepared::now(not_found_at(now, uri.path()));
        }
        let pairs = match (query_pairs(uri), form_pairs(headers, body)) {
            (Ok(mut pairs), Ok(form)) => {
                pairs.extend(form);
                pairs
            }
            (Err(e), _) | (_, Err(e)) => return Prepared::now(bad_query(e)),
        };
        let (id, secret) = match authorization(headers) {
            Some(Authorization::Basic(id, secret)) => (Some(id), Some(secret)),
            _ => (
                first(&pairs, "client_id").map(str::to_owned),
                first(&pairs, "client_secret").map(str::to_owned),
            ),
        };
        let valid = !self.config.faults.revoke_credentials
            && id.as_deref() == Some(self.config.client_id.as_str())
            && secret.as_deref() == Some(self.config.client_secret.expose());
        if !valid {
            return Prepared::now(invalid_client());
        }
        if let Some(grant) = first(&pairs, "grant_type") {
            if grant != "client_credentials" {
                let mut problems = Problems::default();
                problems.add(
                    "grant_type",
                    "UNSUPPORTED_GRANT_TYPE",
                    format!("grant_type must be client_credentials, got {grant:?}"),
                    json!({"allowed": {"values": ["client_credentials"]}}),
                );
                return Prepared::now(problems.into_response());
            }
        }
        let roll = Roll::draw(&self.config.faults, false);
        if let Some(response) = roll.failure_response() {
            return Prepared {
                response,
                delay: roll.delay,
            };
        }
        let token = self.grant(self.config.client_id.clone());
        let expires_in = self.config.token_ttl.as_secs().min(i32::MAX as u64);
        let body = json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": expires_in,
            "scope": "read write",
        });
        roll.ok(body.to_string().into_bytes())
    }

    /// Issues an access token for `client`.
    fn grant(&mut self, client: String) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = rand::rng();
        let token: String = (0..43)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let now = tokio::time::Instant::now();
        self.grants.retain(|_, g| g.expires > now);
        while self.grants.len() >= MAX_GRANTS {
            let oldest = self
                .grants
                .iter()
                .min_by_key(|(_, g)| g.expires)
                .map(|(t, _)| t.clone());
            match oldest {
                Some(t) => self.grants.remove(&t),
                None => break,
            };
        }
        self.grants.insert(
            token.clone(),
            Grant {
                client,
                expires: now + self.config.token_ttl,
            },
        );
        token
    }

    /// Checks the bearer token of a request; the refusal's description if it is not good.
    fn authenticate(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let Some(Authorization::Bearer(token)) = authorization(headers) else {
            return Err("Full authentication is required to access this resource");
        };
        if self.config.faults.revoke_credentials {
            return Err("Access token has been revoked");
        }
        match self.grants.get(&token) {
            Some(grant) if grant.expires > tokio::time::Instant::now() => Ok(()),
            Some(_) => Err("Access token expired"),
            None => Err("Invalid access token"),
        }
    }

    fn answer_sessions(&mut self, version: &str, headers: &HeaderMap, uri: &Uri) -> Prepared {
        let now = self.advance();
        let Some(version) = Version::parse(version) else {
            return Prepared::now(not_found_at(now, uri.path()));
        };
        if let Err(description) = self.authenticate(headers) {
            return Prepared::now(invalid_token(description));
        }
        let pairs = match query_pairs(uri) {
            Ok(pairs) => pairs,
            Err(e) => return Prepared::now(bad_query(e)),
        };
        let request = match parse_listing(&pairs, version, now, self.cursor_key) {
            Ok(request) => request,
            Err(problems) => return Prepared::now(problems.into_response()),
        };
        let roll = Roll::draw(&self.config.faults, true);
        if let Some(response) = roll.failure_response() {
            return Prepared {
                response,
                delay: roll.delay,
            };
        }
        let (mut keys, more) = self.world.list(&request.listing);
        let mut next = if more { keys.last().copied() } else { None };
        if roll.duplicate && keys.len() >= 2 {
            next = Some(duplicate(&mut keys));
        }
        let seal = |after: ListKey| {
            Cursor {
                after,
                query: request.query_digest,
            }
            .encode(self.cursor_key)
        };
        let next_cursor = if self.config.faults.repeat_cursor {
            // Pages never end: the cursor the client sent, or one for where this page ends.
            request.cursor.clone().or_else(|| {
                let at = next
                    .or(keys.last().copied())
                    .or(request.listing.after)
                    .unwrap_or((request.listing.start, 0));
                Some(seal(at))
            })
        } else {
            next.map(seal)
        };
        let page = Page {
            sessions: keys
                .iter()
                .filter_map(|&(_, seq)| self.world.record(seq))
                .collect(),
            next_cursor,
        };
        match serde_json::to_vec(&page) {
            Ok(body) => roll.ok(body),
            Err(_) => Prepared::now(server_error()),
        }
    }
}

/// Makes a page repeat itself: one of its sessions comes twice, the last is left for the next
/// page, and the next page starts up to two sessions early. Returns the position the next
/// page continues after; no session is lost.
fn duplicate(keys: &mut Vec<ListKey>) -> ListKey {
    let mut rng = rand::rng();
    keys.pop();
    let kept = keys.len();
    let back = rng.random_range(0..=(kept - 1).min(2));
    let resume = keys[kept - 1 - back];
    let copy = keys[rng.random_range(0..kept)];
    let at = rng.random_range(0..=kept);
    keys.insert(at, copy);
    resume
}

/// 400 for a query string that cannot be decoded.
fn bad_query(reason: String) -> Response {
    let mut problems = Problems::default();
    problems.add(
        "query",
        "INVALID_FORMAT",
        format!("the query string cannot be decoded: {reason}"),
        json!({}),
    );
    problems.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Pairs {
        query_pairs(&format!("/x?{query}").parse::<Uri>().expect("uri")).expect("pairs")
    }

    const NOW: i64 = 1_750_000_000_000;

    fn codes(query: &str, version: Version) -> Vec<(String, &'static str, bool)> {
        match parse_listing(&pairs(query), version, NOW, 1) {
            Ok(_) => Vec::new(),
            Err(p) => p
                .details
                .iter()
                .flat_map(|(k, v)| {
                    v.iter()
                        .map(move |d| (k.clone(), d.error_code, p.malformed))
                })
                .collect(),
        }
    }

    #[test]
    fn listing_parameters_are_checked_like_the_spec_says() {
        assert!(codes("size=100", Version::V1).is_empty());
        assert!(codes("size=1&status=FAILED&returnOnlyNew=TRUE", Version::V1).is_empty());
        assert_eq!(codes("", Version::V1), [("size".into(), "REQUIRED", true)]);
        assert_eq!(
            codes("size=0", Version::V1),
            [("size".into(), "OUT_OF_RANGE", true)]
        );
        assert_eq!(
            codes("size=101", Version::V1),
            [("size".into(), "OUT_OF_RANGE", true)]
        );
        assert_eq!(
            codes("size=1.5", Version::V1),
            [("size".into(), "INVALID_FORMAT", true)]
        );
        assert_eq!(
            codes("size=5&status=active", Version::V1),
            [("status".into(), "INVALID_VALUE", true)]
        );
        assert_eq!(
            codes("size=5&startDate=yesterday", Version::V1),
            [("startDate".into(), "INVALID_FORMAT", true)]
        );
        assert_eq!(
            codes("size=5&cursor=abc", Version::V1),
            [("cursor".into(), "INVALID_CURSOR", true)]
        );
        let eight_days_ago = iso_millis(NOW - 8 * DAY);
        assert!(codes(&format!("size=5&startDate={eight_days_ago}"), Version::V1).is_empty());
        assert_eq!(
            codes(&format!("size=5&startDate={eight_days_ago}"), Version::Beta),
            [("startDate".into(), "HISTORY_LIMIT_EXCEEDED", false)],
            "outside the window is not malformed"
        );
        let many = codes("status=x&returnOnlyNew=maybe", Version::V1);
        assert_eq!(many.len(), 3, "every problem is reported: {many:?}");
    }

    #[test]
    fn cursors_belong_to_their_query() {
        let request =
            parse_listing(&pairs("size=5&status=ACTIVE"), Version::V1, NOW, 9).expect("valid");
        let text = Cursor {
            after: (NOW, 3),
            query: request.query_digest,
        }
        .encode(9);
        let same = parse_listing(
            &pairs(&format!("size=7&status=ACTIVE&cursor={text}")),
            Version::V1,
            NOW,
            9,
        )
        .expect("a page size may change between pages");
        assert_eq!(same.listing.after, Some((NOW, 3)));
        assert!(
            parse_listing(
                &pairs(&format!("size=5&status=FAILED&cursor={text}")),
                Version::V1,
                NOW,
                9
            )
            .is_err()
        );
        assert!(
            parse_listing(
                &pairs(&format!("size=5&status=ACTIVE&cursor={text}")),
                Version::Beta,
                NOW,
                9
            )
            .is_err()
        );
    }

    #[test]
    fn duplicated_pages_lose_nothing() {
        for _ in 0..200 {
            let original: Vec<ListKey> = (1..=5).map(|i| (i, i as u64)).collect();
            let mut page = original.clone();
            let resume = duplicate(&mut page);
            assert_eq!(page.len(), original.len());
            let distinct: std::collections::BTreeSet<_> = page.iter().collect();
            assert_eq!(
                distinct.len(),
                original.len() - 1,
                "one repeat, one left for later"
            );
            let next_page: Vec<_> = original.iter().filter(|k| **k > resume).collect();
            assert!(next_page.contains(&&original[4]));
            assert!(next_page.len() <= 3);
        }
    }

    #[test]
    fn basic_credentials_decode() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic ZGVtbzpkZW1v"),
        );
        assert!(
            matches!(authorization(&headers), Some(Authorization::Basic(id, s)) if id == "demo" && s == "demo")
        );
        assert_eq!(decode_base64("YWI=").as_deref(), Some(&b"ab"[..]));
        assert_eq!(decode_base64("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("Y*"), None);
        assert_eq!(
            redact("client_id=a&client_secret=b&grant_type=c"),
            "client_id=a&client_secret=***&grant_type=c"
        );
    }
}
