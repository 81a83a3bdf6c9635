//! Requests to the CloudConnexa API: token cache, pacing, retries, pagination.
//!
//! [`ApiClient`] is owned by the poller and used by one task, so its methods take `&mut self` and
//! nothing is locked. Each request goes through the same path: wait for the rate limit, send with a
//! timeout, count it in `cloudconnexa_api_requests_total`, learn the server's clock from `Date` and
//! the bucket from `X-RateLimit-*`, then decide: done, renew the token and retry once (401), wait and
//! retry (429), back off and retry (5xx, timeouts, transport errors, undecodable bodies), or give up.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::{Rng, SeedableRng};
use reqwest::header::{ACCEPT, DATE, HeaderMap};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::error::{UpstreamError, excerpt};
use super::model::{SessionStatus, SessionsPage};
use super::rate::{DEFAULT_RATE_LIMITED_FLOOR, Pacer};
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Page size asked for: the API's maximum.
pub const PAGE_SIZE: u32 = 100;

/// Consecutive pages that bring no session new to the listing before it is declared stuck.
const MAX_STALLED_PAGES: u32 = 3;

/// The API version, which sets the path prefix and the history window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/api/v1`: 30 days of history.
    V1,
    /// `/api/beta`: 7 days of history.
    Beta,
}

impl ApiVersion {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::Beta => "beta",
        }
    }

    /// How far back `startDate` may reach.
    pub fn history_window(self) -> chrono::Duration {
        match self {
            Self::V1 => chrono::Duration::days(30),
            Self::Beta => chrono::Duration::days(7),
        }
    }
}

/// How requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per request for transient failures (5xx, timeouts, transport, undecodable bodies).
    pub max_attempts: u32,
    /// First backoff; doubles per attempt, with full jitter.
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_cap: Duration,
    /// 429s in a row for one request before the cycle gives up.
    pub max_rate_limited: u32,
    /// Shortest wait after a 429.
    pub rate_limited_floor: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            max_rate_limited: 3,
            rate_limited_floor: DEFAULT_RATE_LIMITED_FLOOR,
        }
    }
}

/// Where and how to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL without a trailing slash, e.g. `https://acme.api.openvpn.com`.
    pub base_url: Url,
    /// API version.
    pub api_version: ApiVersion,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: Secret,
    /// Timeout of one request, body included.
    pub request_timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
}

/// One sessions listing.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsQuery {
    /// `status`; `None` lists every status.
    pub status: Option<SessionStatus>,
    /// `startDate` (inclusive), on the server's clock.
    pub start: DateTime<Utc>,
    /// `endDate` (exclusive); `None` leaves the window open.
    pub end: Option<DateTime<Utc>>,
    /// `returnOnlyNew`.
    pub return_only_new: bool,
}

/// What a listing cost and brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingStats {
    /// Pages fetched.
    pub pages: u32,
    /// Session records received.
    pub sessions: usize,
    /// List elements that were not objects.
    pub skipped: usize,
}

struct Token {
    value: Secret,
    renew_at: Instant,
}

/// Which endpoint a request is for (the `endpoint` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Token,
    Sessions,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Sessions => "sessions",
        }
    }
}

/// A response that arrived, whatever its status.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// What to do after an attempt.
enum Step<T> {
    Done(T),
    /// Back off, then try again (counted against `max_attempts`).
    Transient(UpstreamError),
    /// Try again at once (the wait, if any, already happened).
    Again,
    Fail(UpstreamError),
}

/// The CloudConnexa API client.
pub struct ApiClient {
    http: reqwest::Client,
    config: ClientConfig,
    token: Option<Token>,
    pacer: Pacer,
    clock: Arc<dyn Clock>,
    offset: Option<chrono::Duration>,
    metrics: Arc<Metrics>,
    rng: rand::rngs::SmallRng,
}

impl ApiClient {
    /// A client for `config`; `clock` is the local wall clock.
    pub fn new(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, UpstreamError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("cloudconnexa_exporter/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UpstreamError::Http {
                endpoint: "client",
                status: None,
                detail: e.to_string(),
            })?;
        Ok(Self {
            http,
            pacer: Pacer::new(config.retry.rate_limited_floor),
            config,
            token: None,
            clock,
            offset: None,
            metrics,
            rng: rand::rngs::SmallRng::from_os_rng(),
        })
    }

    /// The API version in use.
    pub fn api_version(&self) -> ApiVersion {
        self.config.api_version
    }

    /// The server's clock now, as estimated from the last `Date` header (the local clock until one
    /// has been seen).
    pub fn server_now(&self) -> DateTime<Utc> {
        self.clock.now() + self.offset.unwrap_or_default()
    }

    /// The last reading of the rate-limit bucket.
    pub fn budget(&self) -> Option<super::rate::Budget> {
        self.pacer.budget()
    }

    /// Makes sure a token is held that is not due for renewal.
    pub async fn ensure_token(&mut self) -> Result<(), UpstreamError> {
        if self.token_is_fresh() {
            return Ok(());
        }
        let url = self.url("oauth/token");
        let (value, lifetime) = self
            .with_retries(
                Endpoint::Token,
                |c| {
                    c.http
                        .post(url.clone())
                        .query(&[("grant_type", "client_credentials")])
                        .basic_auth(&c.config.client_id, Some(c.config.client_secret.expose()))
                        .header(ACCEPT, "application/json")
                },
                decode_token,
            )
            .await?;
        tracing::debug!(
            expires_in_s = lifetime.as_secs(),
            "obtained an access token"
        );
        // Renew when a fifth of the lifetime is left, so a slow cycle never holds an expired token.
        self.token = Some(Token {
            value,
            renew_at: Instant::now() + lifetime.mul_f64(0.8),
        });
        Ok(())
    }

    fn token_is_fresh(&self) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| Instant::now() < t.renew_at)
    }

    /// Lists sessions for `query`, handing each page to `on_page` with the server time it was
    /// received at. Stops with [`UpstreamError::Pagination`] on a repeated cursor, on pages that
    /// bring nothing new, or beyond `max_pages`.
    pub async fn list_sessions(
        &mut self,
        query: &SessionsQuery,
        max_pages: u32,
        on_page: &mut (dyn FnMut(&SessionsPage, DateTime<Utc>) + Send),
    ) -> Result<ListingStats, UpstreamError> {
        let mut stats = ListingStats::default();
        let mut cursors: HashSet<String> = HashSet::new();
        // Hashes, not ids: enough to tell progress from a loop without holding every id twice.
        let hasher = RandomState::new();
        let mut ids: HashSet<u64> = HashSet::new();
        let mut stalled = 0;
        let mut cursor: Option<String> = None;
        loop {
            let url = self.sessions_url(query, cursor.as_deref());
            let page = self.fetch_sessions_page(&url).await?;
            let observed_at = self.server_now();
            stats.pages += 1;
            stats.sessions += page.sessions.len();
            stats.skipped += page.skipped;
            let fresh = page
                .sessions
                .iter()
                .filter_map(|s| s.id.as_deref())
                .filter(|id| ids.insert(hasher.hash_one(id)))
                .count();
            on_page(&page, observed_at);
            let Some(next) = page.next_cursor else {
                return Ok(stats);
            };
            if !cursors.insert(next.clone()) {
                return Err(UpstreamError::Pagination {
                    detail: format!("the API repeated a cursor after {} pages", stats.pages),
                });
            }
            stalled = if fresh == 0 { stalled + 1 } else { 0 };
            if stalled >= MAX_STALLED_PAGES {
                return Err(UpstreamError::Pagination {
                    detail: format!("{stalled} pages in a row brought no new session"),
                });
            }
            if stats.pages >= max_pages {
                return Err(UpstreamError::Pagination {
                    detail: format!("more than {max_pages} pages"),
                });
            }
            cursor = Some(next);
        }
    }

    async fn fetch_sessions_page(&mut self, url: &Url) -> Result<SessionsPage, UpstreamError> {
        let mut renewed = false;
        loop {
            let result = self
                .with_retries(
                    Endpoint::Sessions,
                    |c| {
                        let token = c.token.as_ref().map_or("", |t| t.value.expose());
                        c.http
                            .get(url.clone())
                            .bearer_auth(token)
                            .header(ACCEPT, "application/json")
                    },
                    decode_page,
                )
                .await;
            match result {
                // A 401 with a token we believed valid: it expired early or was revoked. Renew
                // once and retry once; a second 401 is a real credentials problem.
                Err(UpstreamError::Auth {
                    status: 401,
                    endpoint: "sessions",
                    ..
                }) if !renewed => {
                    tracing::info!("access token refused; renewing it");
                    renewed = true;
                    self.token = None;
                }
                other => return other,
            }
        }
    }

    /// Sends the request `build` makes, retrying as the policy says, and decodes a 2xx answer.
    /// Data requests first make sure a fresh token is held; when it must be renewed, the pacer
    /// waits for room for both requests, so a short-lived token is used as soon as it arrives.
    async fn with_retries<T>(
        &mut self,
        endpoint: Endpoint,
        build: impl Fn(&Self) -> reqwest::RequestBuilder,
        decode: fn(&Answer) -> Result<T, String>,
    ) -> Result<T, UpstreamError> {
        let mut attempts = 0;
        let mut rate_limited = 0;
        loop {
            let needs_token = endpoint != Endpoint::Token;
            let need = if needs_token && !self.token_is_fresh() {
                2
            } else {
                1
            };
            self.pace(endpoint, need).await;
            if needs_token {
                // Boxed: the token request goes through this same function.
                Box::pin(self.ensure_token()).await?;
            }
            let step = match self.send(endpoint, build(self)).await {
                Ok(answer) => {
                    self.judge(endpoint, &answer, decode, &mut rate_limited)
                        .await
                }
                Err(e) => Step::Transient(e),
            };
            match step {
                Step::Done(v) => return Ok(v),
                Step::Fail(e) => return Err(e),
                Step::Again => {}
                Step::Transient(e) => {
                    attempts += 1;
                    if attempts >= self.config.retry.max_attempts {
                        return Err(e);
                    }
                    let wait = self.backoff(attempts);
                    tracing::warn!(endpoint = endpoint.as_str(), attempt = attempts, wait_ms = wait.as_millis() as u64, error = %e, "request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Waits until the rate limit leaves room for `need` requests.
    async fn pace(&self, endpoint: Endpoint, need: u32) {
        let wait = self.pacer.delay(Instant::now(), need);
        if !wait.is_zero() {
            tracing::debug!(
                endpoint = endpoint.as_str(),
                need,
                wait_ms = wait.as_millis() as u64,
                "pacing to the rate limit"
            );
            self.wait_for_budget(wait).await;
        }
    }

    async fn judge<T>(
        &mut self,
        endpoint: Endpoint,
        answer: &Answer,
        decode: fn(&Answer) -> Result<T, String>,
        rate_limited: &mut u32,
    ) -> Step<T> {
        let status = answer.status;
        let name = endpoint.as_str();
        if status.is_success() {
            return match decode(answer) {
                Ok(v) => Step::Done(v),
                Err(detail) => Step::Transient(UpstreamError::Decode {
                    endpoint: name,
                    detail,
                }),
            };
        }
        let detail = excerpt(&answer.body, 200);
        match status.as_u16() {
            429 => {
                *rate_limited += 1;
                let wait = self.pacer.rate_limited(&answer.headers, Instant::now());
                if *rate_limited > self.config.retry.max_rate_limited {
                    return Step::Fail(UpstreamError::RateLimited {
                        endpoint: name,
                        attempts: *rate_limited,
                        retry_after: wait,
                    });
                }
                tracing::warn!(
                    endpoint = name,
                    wait_s = wait.as_secs(),
                    "rate limited by the API; waiting"
                );
                self.wait_for_budget(wait).await;
                Step::Again
            }
            400 | 401 | 403 if endpoint == Endpoint::Token => Step::Fail(UpstreamError::Auth {
                endpoint: name,
                status: status.as_u16(),
                detail,
            }),
            401 | 403 => Step::Fail(UpstreamError::Auth {
                endpoint: name,
                status: status.as_u16(),
                detail,
            }),
            400 if mentions_history(&answer.body) => {
                Step::Fail(UpstreamError::HistoryWindow { detail })
            }
            408 | 500..=599 => Step::Transient(UpstreamError::Http {
                endpoint: name,
                status: Some(status.as_u16()),
                detail: format!("HTTP {status}: {detail}"),
            }),
            _ => Step::Fail(UpstreamError::Http {
                endpoint: name,
                status: Some(status.as_u16()),
                detail: format!("HTTP {status}: {detail}"),
            }),
        }
    }

    /// One attempt: send, read the body, learn from the headers.
    async fn send(
        &mut self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, UpstreamError> {
        self.pacer.spend();
        let result = async {
            let response = request.send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(Answer {
                status,
                headers,
                body,
            })
        }
        .await;
        match result {
            Ok(answer) => {
                self.metrics
                    .count_request(endpoint.as_str(), Some(answer.status.as_u16()));
                self.learn(&answer.headers);
                Ok(answer)
            }
            Err(e) => {
                self.metrics.count_request(endpoint.as_str(), None);
                let e = e.without_url();
                Err(if e.is_timeout() {
                    UpstreamError::Timeout {
                        endpoint: endpoint.as_str(),
                        timeout: self.config.request_timeout,
                    }
                } else if e.is_decode() || e.is_body() {
                    UpstreamError::Decode {
                        endpoint: endpoint.as_str(),
                        detail: error_chain(&e),
                    }
                } else {
                    UpstreamError::Http {
                        endpoint: endpoint.as_str(),
                        status: None,
                        detail: error_chain(&e),
                    }
                })
            }
        }
    }

    /// Takes the server's clock and the bucket's state from a response.
    fn learn(&mut self, headers: &HeaderMap) {
        let now = Instant::now();
        self.pacer.observe(headers, now);
        if let Some(budget) = self.pacer.budget() {
            self.metrics.set_budget(budget);
        }
        let date = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok());
        if let Some(date) = date {
            // `Date` has whole seconds, truncated: the middle of that second is the best estimate.
            let server = date.with_timezone(&Utc) + chrono::Duration::milliseconds(500);
            let offset = server - self.clock.now();
            self.offset = Some(offset);
            self.metrics
                .set_clock_skew(offset.num_milliseconds() as f64 / 1000.0);
        }
    }

    async fn wait_for_budget(&self, wait: Duration) {
        self.metrics.rate_limit_wait.inc_by(wait.as_secs_f64());
        tokio::time::sleep(wait).await;
    }

    fn backoff(&mut self, attempt: u32) -> Duration {
        let retry = &self.config.retry;
        let ceiling = retry
            .backoff_base
            .saturating_mul(1 << attempt.min(16))
            .min(retry.backoff_cap);
        // Full jitter: spreads retries of many exporters hitting the same outage.
        ceiling.mul_f64(self.rng.random_range(0.5..=1.0))
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.config.base_url.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!(
            "{base_path}/api/{}/{path}",
            self.config.api_version.as_str()
        ));
        url.set_query(None);
        url
    }

    fn sessions_url(&self, q: &SessionsQuery, cursor: Option<&str>) -> Url {
        let mut url = self.url("sessions");
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("size", &PAGE_SIZE.to_string());
            pairs.append_pair("startDate", &iso_instant(q.start, false));
            if let Some(end) = q.end {
                pairs.append_pair("endDate", &iso_instant(end, true));
            }
            if let Some(status) = q.status {
                pairs.append_pair("status", status.as_api_str());
            }
            if q.return_only_new {
                pairs.append_pair("returnOnlyNew", "true");
            }
            if let Some(cursor) = cursor {
                pairs.append_pair("cursor", cursor);
            }
        }
        url
    }
}

/// `ISO_INSTANT` with whole seconds, as the API documents; rounded down (`startDate`) or up
/// (`endDate`) so a window never shrinks.
fn iso_instant(t: DateTime<Utc>, round_up: bool) -> String {
    let mut secs = t.timestamp();
    if round_up && t.timestamp_subsec_nanos() > 0 {
        secs += 1;
    }
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A 400 about `startDate` or the history window, as opposed to a request the exporter got wrong.
fn mentions_history(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    ["date", "history", "days", "window", "range"]
        .iter()
        .any(|word| text.contains(word))
}

fn decode_page(answer: &Answer) -> Result<SessionsPage, String> {
    SessionsPage::from_slice(&answer.body).map_err(|e| e.to_string())
}

/// The token and its lifetime (one hour when the API does not say).
fn decode_token(answer: &Answer) -> Result<(Secret, Duration), String> {
    let value: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|e| e.to_string())?;
    let token = value
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("no access_token in the token response")?;
    let lifetime = value
        .get("expires_in")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
        .map_or(Duration::from_secs(3600), Duration::from_secs);
    Ok((Secret::new(token), lifetime))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_are_iso_instants_rounded_outwards() {
        let t = Utc.timestamp_opt(1_667_919_223, 400_000_000).unwrap();
        assert_eq!(iso_instant(t, false), "2022-11-08T14:53:43Z");
        assert_eq!(iso_instant(t, true), "2022-11-08T14:53:44Z");
    }

    #[test]
    fn history_errors_are_told_from_other_bad_requests() {
        assert!(mentions_history(
            br#"{"errorDetails":{"startDate":[{"message":"too old"}]}}"#
        ));
        assert!(!mentions_history(
            br#"{"errorMessage":"size must be at most 100"}"#
        ));
    }
}
