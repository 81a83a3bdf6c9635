//! Requests to the CloudConnexa API: token cache, pacing, retries.
//!
//! [`ApiClient`] is shared (`&self`) by everything that asks the API, so the API key's one
//! rate-limit budget is paced in one place. Each request goes through the same path: make sure a
//! fresh token is held, wait for the rate limit, send with a timeout, report it to the
//! [`Observer`], learn the server's clock from `Date` and the bucket from `X-RateLimit-*`, then act
//! on the [`classify`] verdict: done, renew the token and retry once (401), wait and retry (429),
//! back off and retry (5xx, timeouts, transport errors, undecodable bodies), or give up.
//!
//! Requests go out one at a time (the `line` lock is held from pacing to the end of the answer),
//! so every reading of the bucket accounts for every request sent before it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use reqwest::header::{ACCEPT, DATE, HeaderMap};
use reqwest::{StatusCode, Url};
use tokio::time::Instant;

use super::classify::{Verdict, classify};
use super::error::UpstreamError;
use super::rate::{Budget, DEFAULT_RATE_LIMITED_FLOOR, Pacer};
use super::{Endpoint, Observer};
use crate::clock::Clock;
use crate::secret::Secret;

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

/// Whose request it is, when the budget is short. Sessions come first: their windows must keep
/// up with the API, and a full listing must not stall half-way. Other collectors' requests wait
/// until the bucket holds, besides the tokens they need, a reserve for the sessions'
/// ([`LOW_PRIORITY_RESERVE`]), and they never hold the line while they wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The sessions collector (and token renewals, which everyone needs).
    High,
    /// The other collectors.
    Low,
}

/// Share of the bucket's burst that low-priority requests leave untouched (at least
/// [`MIN_LOW_PRIORITY_RESERVE`] tokens): with the vendor's burst of 20, five tokens, enough for
/// the next windows of the sessions and a token renewal while the bucket refills.
pub const LOW_PRIORITY_RESERVE: f64 = 0.25;

/// The smallest reserve, also used when the API has not said how large its bucket is.
pub const MIN_LOW_PRIORITY_RESERVE: u32 = 2;

/// An access token and when to renew it.
struct Token {
    value: Secret,
    renew_at: Instant,
}

impl Token {
    fn is_fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

/// A response that arrived, whatever its status.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// What the client learns from answers, behind a lock held only for short computations.
struct Learned {
    pacer: Pacer,
    /// The server's clock minus the local one, from the last `Date` header.
    offset: Option<chrono::Duration>,
    rng: rand::rngs::SmallRng,
}

/// The CloudConnexa API client.
pub struct ApiClient {
    http: reqwest::Client,
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    observer: Arc<dyn Observer>,
    /// Held from pacing to the end of an answer: one request at a time.
    line: tokio::sync::Mutex<()>,
    /// Held while a renewal is under way, so concurrent callers wait for it instead of renewing
    /// again.
    token: tokio::sync::Mutex<Option<Token>>,
    learned: Mutex<Learned>,
}

impl ApiClient {
    /// A client for `config`; `clock` is the local wall clock, `observer` hears of every request.
    pub fn new(
        config: ClientConfig,
        clock: Arc<dyn Clock>,
        observer: Arc<dyn Observer>,
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
            learned: Mutex::new(Learned {
                pacer: Pacer::new(config.retry.rate_limited_floor),
                offset: None,
                rng: rand::rngs::SmallRng::from_os_rng(),
            }),
            config,
            clock,
            observer,
            line: tokio::sync::Mutex::new(()),
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The API version in use.
    pub fn api_version(&self) -> ApiVersion {
        self.config.api_version
    }

    /// The server's clock now, as estimated from the last `Date` header (the local clock until one
    /// has been seen).
    pub fn server_now(&self) -> DateTime<Utc> {
        self.clock.now() + self.learned().offset.unwrap_or_default()
    }

    /// The last reading of the rate-limit bucket.
    pub fn budget(&self) -> Option<Budget> {
        self.learned().pacer.budget()
    }

    /// A poisoned lock still holds consistent data: every change to it completes before anything
    /// that could panic.
    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure a token is held that is not due for renewal.
    pub async fn ensure_token(&self) -> Result<(), UpstreamError> {
        self.token().await.map(drop)
    }

    /// The access token, renewed first when it is due.
    async fn token(&self) -> Result<Secret, UpstreamError> {
        let mut held = self.token.lock().await;
        if let Some(token) = held.as_ref().filter(|t| t.is_fresh()) {
            return Ok(token.value.clone());
        }
        let url = self.url("oauth/token");
        let build = || {
            self.http
                .post(url.clone())
                .query(&[("grant_type", "client_credentials")])
                .basic_auth(
                    &self.config.client_id,
                    Some(self.config.client_secret.expose()),
                )
                .header(ACCEPT, "application/json")
        };
        // Room for two requests: the renewal and the request that needs the token, so even a
        // token that lives only seconds is used as soon as it arrives.
        let secret = &self.config.client_secret;
        let (value, lifetime) = self
            .call(
                Endpoint::Token,
                2,
                Priority::High,
                secret,
                &build,
                &mut decode_token,
            )
            .await?;
        tracing::debug!(
            expires_in_s = lifetime.as_secs(),
            "obtained an access token"
        );
        // Renew when a fifth of the lifetime is left, so a slow cycle never holds an expired token.
        *held = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime.mul_f64(0.8),
        });
        Ok(value)
    }

    /// Drops `refused` if it is still the token held (another caller may have renewed it).
    async fn forget_token(&self, refused: &Secret) {
        let mut held = self.token.lock().await;
        if held.as_ref().is_some_and(|t| t.value == *refused) {
            *held = None;
        }
    }

    /// GETs `url` of `endpoint` with the bearer token and decodes the answer. A 401 with a token
    /// believed valid (expired early, or revoked) renews the token once and retries once; a
    /// second 401 is a real credentials problem.
    pub(crate) async fn get<T>(
        &self,
        endpoint: Endpoint,
        url: &Url,
        priority: Priority,
        decode: fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, UpstreamError> {
        self.get_with(endpoint, url, priority, &mut |body| decode(body))
            .await
    }

    /// [`Self::get`] with a closure that reads the body where it lies: what it decodes may
    /// borrow from the body, and is used and dropped inside the closure. The closure runs for
    /// each 2xx answer until it succeeds; an error (an undecodable body) is retried like a 5xx.
    pub(crate) async fn get_with<T>(
        &self,
        endpoint: Endpoint,
        url: &Url,
        priority: Priority,
        decode: &mut (dyn FnMut(&[u8]) -> Result<T, String> + Send),
    ) -> Result<T, UpstreamError> {
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let build = || {
                self.http
                    .get(url.clone())
                    .bearer_auth(token.expose())
                    .header(ACCEPT, "application/json")
            };
            match self
                .call(endpoint, 1, priority, &token, &build, decode)
                .await
            {
                Err(UpstreamError::Auth { status: 401, .. }) if !renewed => {
                    tracing::info!(
                        endpoint = endpoint.as_str(),
                        "access token refused; renewing it"
                    );
                    renewed = true;
                    self.forget_token(&token).await;
                }
                other => return other,
            }
        }
    }

    /// Sends the request `build` makes until it succeeds or the retry policy gives up, decoding a
    /// 2xx answer. `need` is how many requests the pacer must have room for (see [`Self::token`]).
    /// `secret` (the token or client secret the request carries) is redacted from every error,
    /// before it is logged or returned. Every wait of the request path happens here or in
    /// [`Self::attempt`].
    async fn call<T>(
        &self,
        endpoint: Endpoint,
        need: u32,
        priority: Priority,
        secret: &Secret,
        build: &(dyn Fn() -> reqwest::RequestBuilder + Sync),
        decode: &mut (dyn FnMut(&[u8]) -> Result<T, String> + Send),
    ) -> Result<T, UpstreamError> {
        let retry = self.config.retry;
        let mut failures = 0;
        let mut rate_limited = 0;
        loop {
            let error = match self.attempt(endpoint, need, priority, build()).await {
                Err(e) => e,
                Ok(answer) => {
                    match classify(endpoint, answer.status, &answer.headers, &answer.body) {
                        Verdict::Accept => match decode(&answer.body) {
                            Ok(value) => return Ok(value),
                            Err(detail) => UpstreamError::Decode {
                                endpoint: endpoint.as_str(),
                                detail,
                            },
                        },
                        Verdict::Fail(e) => return Err(e.redact(secret.expose())),
                        Verdict::Retry(e) => e,
                        Verdict::RateLimited { retry_after } => {
                            rate_limited += 1;
                            let wait = self
                                .learned()
                                .pacer
                                .rate_limited(retry_after, Instant::now());
                            if rate_limited > retry.max_rate_limited {
                                return Err(UpstreamError::RateLimited {
                                    endpoint: endpoint.as_str(),
                                    attempts: rate_limited,
                                    retry_after: wait,
                                });
                            }
                            tracing::warn!(
                                endpoint = endpoint.as_str(),
                                wait_s = wait.as_secs(),
                                "rate limited by the API; waiting"
                            );
                            self.wait_for_budget(wait).await;
                            continue;
                        }
                    }
                }
            };
            let error = error.redact(secret.expose());
            failures += 1;
            if failures >= retry.max_attempts {
                return Err(error);
            }
            let wait = self.backoff(failures);
            tracing::warn!(endpoint = endpoint.as_str(), attempt = failures, wait_ms = wait.as_millis() as u64, error = %error, "request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: wait until the rate limit leaves room for `need` requests (and, at low
    /// priority, the reserve), send, read the body, learn from the headers.
    async fn attempt(
        &self,
        endpoint: Endpoint,
        need: u32,
        priority: Priority,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, UpstreamError> {
        let _line = loop {
            let line = self.line.lock().await;
            let (wait, reserve) = {
                let learned = self.learned();
                let reserve = match priority {
                    Priority::High => 0,
                    Priority::Low => low_priority_reserve(learned.pacer.budget()),
                };
                (learned.pacer.delay(Instant::now(), need + reserve), reserve)
            };
            if wait.is_zero() {
                break line;
            }
            tracing::debug!(
                endpoint = endpoint.as_str(),
                need,
                reserve,
                wait_ms = wait.as_millis() as u64,
                "pacing to the rate limit"
            );
            match priority {
                // Sessions wait holding the line: nothing overtakes a listing under way.
                Priority::High => {
                    self.wait_for_budget(wait).await;
                    break line;
                }
                // Others let go of it while they wait, then look again.
                Priority::Low => {
                    drop(line);
                    self.wait_for_budget(wait).await;
                }
            }
        };
        self.learned().pacer.spend();
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
                self.observer
                    .request_done(endpoint, Some(answer.status.as_u16()));
                self.learn(&answer.headers);
                Ok(answer)
            }
            Err(e) => {
                self.observer.request_done(endpoint, None);
                Err(self.transport_error(endpoint, &e.without_url()))
            }
        }
    }

    /// A request that got no (complete) answer.
    fn transport_error(&self, endpoint: Endpoint, e: &reqwest::Error) -> UpstreamError {
        let endpoint = endpoint.as_str();
        if e.is_timeout() {
            UpstreamError::Timeout {
                endpoint,
                timeout: self.config.request_timeout,
            }
        } else if e.is_decode() || e.is_body() {
            UpstreamError::Decode {
                endpoint,
                detail: error_chain(e),
            }
        } else {
            UpstreamError::Http {
                endpoint,
                status: None,
                detail: error_chain(e),
            }
        }
    }

    /// Takes the server's clock and the bucket's state from a response.
    fn learn(&self, headers: &HeaderMap) {
        let date = headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            // `Date` has whole seconds, truncated: the middle of that second is the best estimate.
            .map(|d| {
                d.with_timezone(&Utc) + chrono::Duration::milliseconds(500) - self.clock.now()
            });
        let budget = {
            let mut learned = self.learned();
            learned.pacer.observe(headers, Instant::now());
            if date.is_some() {
                learned.offset = date;
            }
            learned.pacer.budget()
        };
        if let Some(budget) = budget {
            self.observer.budget_seen(budget);
        }
        if let Some(offset) = date {
            self.observer.clock_offset_seen(offset);
        }
    }

    async fn wait_for_budget(&self, wait: Duration) {
        self.observer.waited_for_budget(wait);
        tokio::time::sleep(wait).await;
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let retry = &self.config.retry;
        let ceiling = retry
            .backoff_base
            .saturating_mul(1 << attempt.min(16))
            .min(retry.backoff_cap);
        // Full jitter: spreads retries of many exporters hitting the same outage.
        ceiling.mul_f64(self.learned().rng.random_range(0.5..=1.0))
    }

    /// The URL of `path` under the API's version prefix.
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.config.base_url.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!(
            "{base_path}/api/{}/{path}",
            self.config.api_version.as_str()
        ));
        url.set_query(None);
        url
    }
}

/// The tokens low-priority requests leave in the bucket.
fn low_priority_reserve(budget: Option<Budget>) -> u32 {
    budget
        .and_then(|b| b.burst)
        .map_or(MIN_LOW_PRIORITY_RESERVE, |burst| {
            (f64::from(burst) * LOW_PRIORITY_RESERVE).ceil() as u32
        })
        .max(MIN_LOW_PRIORITY_RESERVE)
}

/// The token and its lifetime (one hour when the API does not say).
fn decode_token(body: &[u8]) -> Result<(Secret, Duration), String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
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

    #[test]
    fn low_priority_requests_leave_a_quarter_of_the_burst_to_the_sessions() {
        let budget = |burst| Budget {
            remaining: 0,
            burst,
            replenish_rate: Some(1),
            replenish_time: Some(Duration::from_secs(15)),
        };
        assert_eq!(low_priority_reserve(Some(budget(Some(20)))), 5);
        assert_eq!(low_priority_reserve(Some(budget(Some(50)))), 13);
        assert_eq!(
            low_priority_reserve(Some(budget(Some(3)))),
            MIN_LOW_PRIORITY_RESERVE
        );
        assert_eq!(
            low_priority_reserve(Some(budget(None))),
            MIN_LOW_PRIORITY_RESERVE
        );
        assert_eq!(low_priority_reserve(None), MIN_LOW_PRIORITY_RESERVE);
    }

    #[test]
    fn tokens_decode_with_their_lifetime() {
        let (token, lifetime) =
            decode_token(br#"{"access_token":"abc","token_type":"bearer","expires_in":43199}"#)
                .unwrap();
        assert_eq!(
            (token.expose(), lifetime),
            ("abc", Duration::from_secs(43_199))
        );
        let (_, lifetime) = decode_token(br#"{"access_token":"abc","expires_in":"60"}"#).unwrap();
        assert_eq!(lifetime, Duration::from_secs(60));
        let (_, lifetime) = decode_token(br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(lifetime, Duration::from_secs(3600), "an hour when unsaid");
        for bad in [&br#"{"access_token":""}"#[..], b"{}", b"<html>"] {
            assert!(decode_token(bad).is_err());
        }
    }
}
