//! The simulated CloudConnexa tenant: the same HTTP API as the real service, over a generated world.
//!
//! # Layout
//! - `catalog`: the company's fixed facts (offices, regions, groups, networks, reasons).
//! - `sampling`: seeded random streams and the distributions the world draws from.
//! - `world`: the company, its sessions and their life; deterministic for a seed.
//! - `cursor`, `limit`: paging cursors and the rate-limit token bucket.
//! - `api`: the HTTP API (`/api/v1`, `/api/beta`), its validation, rate limit and faults.
//! - `control`: `/_sim/...` endpoints that let scripts steer the simulator.
//! - `cli`: the `simulate` command's arguments and its serving loop.
//!
//! The shared state sits behind one `std::sync::Mutex`: every request holds it only for a short
//! computation (no `.await` while it is held), so an async mutex would buy nothing.

mod api;
mod catalog;
mod cli;
mod control;
mod cursor;
mod limit;
mod sampling;
mod world;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::secret::Secret;

pub use cli::{SimulateArgs, run_simulate};

/// Token-bucket rate limit, in the vendor's terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Bucket size (`X-RateLimit-Burst-Capacity`).
    pub burst: u32,
    /// Tokens added per period (`X-RateLimit-Replenish-Rate`).
    pub replenish_rate: u32,
    /// The period (`X-RateLimit-Replenish-Time`).
    pub replenish_time: Duration,
}

impl RateLimit {
    /// The vendor's default: burst 20, 1 token per 15 s.
    pub const VENDOR_DEFAULT: RateLimit = RateLimit {
        burst: 20,
        replenish_rate: 1,
        replenish_time: Duration::from_secs(15),
    };
}

/// A steady world, for benchmarks: a constant population of active sessions and a constant rate
/// of change, with no daily rhythm and no outages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steady {
    /// Sessions active at any moment.
    pub active: u32,
    /// Changes per minute of world time, on average (a Poisson process): in each, an active
    /// session ends (5% of them FAILED, the rest COMPLETED) and a new one starts.
    pub changes_per_minute: f64,
}

/// Faults to inject, each a probability per request unless said otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Answer 429 (empty body) regardless of the bucket.
    pub rate_429: f64,
    /// Answer 500/502/503.
    pub rate_5xx: f64,
    /// Delay the answer by `slow_delay`.
    pub rate_slow: f64,
    /// Delay for slow answers.
    pub slow_delay: Duration,
    /// Cut the JSON body short.
    pub rate_truncated: f64,
    /// Repeat some sessions of a page (inside the page and on the next page).
    pub rate_duplicates: f64,
    /// Answer 401 to a request with a valid token (a spurious expiry).
    pub rate_spurious_401: f64,
    /// Return the same `nextCursor` forever.
    pub repeat_cursor: bool,
    /// Refuse every token request and every token (credentials revoked).
    pub revoke_credentials: bool,
}

impl Faults {
    /// Checks that every rate is a probability.
    pub fn validate(&self) -> Result<(), String> {
        let rates = [
            ("rate_429", self.rate_429),
            ("rate_5xx", self.rate_5xx),
            ("rate_slow", self.rate_slow),
            ("rate_truncated", self.rate_truncated),
            ("rate_duplicates", self.rate_duplicates),
            ("rate_spurious_401", self.rate_spurious_401),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "{name} must be a probability between 0 and 1, not {rate}"
                ));
            }
        }
        Ok(())
    }
}

/// Everything that shapes a simulated tenant.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the world's randomness: the same seed gives the same world.
    pub seed: u64,
    /// Number of users in the company.
    pub users: u32,
    /// Time compression of the world (1.0 = real time).
    pub speed: f64,
    /// Accepted OAuth2 client id.
    pub client_id: String,
    /// Accepted OAuth2 client secret.
    pub client_secret: Secret,
    /// Rate limit; `None` lifts it.
    pub rate_limit: Option<RateLimit>,
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// Offset of the server's clock (its `Date` header and session times) from the real clock.
    pub clock_skew: chrono::Duration,
    /// Faults to inject.
    pub faults: Faults,
    /// Whether traffic of an active session bumps its updated time (every five minutes of world
    /// time), so that `returnOnlyNew=false` windows return active sessions again and again.
    /// Nobody states whether the real service does this; off by default.
    pub bump_updated_on_traffic: bool,
    /// Expected region outages per day over all regions (each ends the region's sessions at
    /// once and is followed by a reconnection storm); 0 for none.
    pub outages_per_day: f64,
    /// Multiplies the share of users whose device stays connected day and night (reconnecting
    /// every few hours as networks change); 1 keeps each user group's own share.
    pub always_on_boost: f64,
    /// A steady world instead of the company's working-day rhythm (`outages_per_day` is then
    /// ignored). Its sessions belong to the company's `users`, several to a user when there are
    /// more sessions than users. The world starts with a day and an hour of history.
    pub steady: Option<Steady>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            users: 500,
            speed: 1.0,
            client_id: "demo".into(),
            client_secret: Secret::new("demo"),
            rate_limit: Some(RateLimit::VENDOR_DEFAULT),
            token_ttl: Duration::from_secs(43_199),
            clock_skew: chrono::Duration::zero(),
            faults: Faults::default(),
            bump_updated_on_traffic: false,
            outages_per_day: 0.5,
            always_on_boost: 1.0,
            steady: None,
        }
    }
}

impl SimConfig {
    /// The tenant behind the exporter's `--demo`: 5,000 users, an outage every few hours, and a
    /// rate limit (burst 50, one token per 2 s) that takes the first full listing in one burst and
    /// lets an exporter poll every 15 s. Three times the usual share of always-connected devices
    /// keeps sessions starting and ending even on a weekend night: sampled hourly through a week,
    /// every 50-second span after a start holds at least one session end, so a demo shows ends,
    /// durations and traffic within its first minute at any hour.
    pub fn demo() -> Self {
        Self {
            users: 5000,
            always_on_boost: 3.0,
            rate_limit: Some(RateLimit {
                burst: 50,
                replenish_rate: 1,
                replenish_time: Duration::from_secs(2),
            }),
            outages_per_day: 4.0,
            ..Self::default()
        }
    }

    /// A steady tenant (see [`Steady`]) of `active` sessions and `changes_per_minute`, with the
    /// vendor's default rate limit.
    pub fn steady(active: u32, changes_per_minute: f64) -> Self {
        Self {
            steady: Some(Steady {
                active,
                changes_per_minute,
            }),
            outages_per_day: 0.0,
            ..Self::default()
        }
    }
}

/// Per-session ground truth, for tests that compare the exporter's metrics with the world.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthSession {
    /// Session id.
    pub id: String,
    /// `ACTIVE`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// VPN region.
    pub region: String,
    /// Network name.
    pub network: String,
    /// Bytes in as the API reports it now.
    pub bytes_in: u64,
    /// Bytes out as the API reports it now.
    pub bytes_out: u64,
    /// Start time (server clock).
    pub start: DateTime<Utc>,
    /// End time for ended sessions (server clock).
    pub end: Option<DateTime<Utc>>,
    /// `disconnectReason` for ended sessions.
    pub reason: Option<String>,
    /// Host name.
    pub host: String,
    /// Connector name.
    pub connector: String,
    /// `userName`.
    pub user_name: String,
    /// `userGroup`.
    pub user_group: String,
    /// `protocol`.
    pub protocol: String,
    /// `osType`.
    pub os_type: String,
    /// True for FAILED sessions.
    pub failed: bool,
    /// The time windows with `returnOnlyNew=false` select the session by (server clock).
    pub updated: DateTime<Utc>,
    /// `sessionDurationSeconds` for ended sessions.
    pub duration_seconds: Option<i64>,
}

/// Counts of the world's sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TruthSummary {
    /// The server clock.
    pub now: DateTime<Utc>,
    /// Active sessions.
    pub active_total: u64,
    /// Active sessions per VPN region (regions without any are absent).
    pub active_by_region: BTreeMap<String, u64>,
    /// Ended sessions held by the world, per status (`COMPLETED`, `FAILED`).
    pub ended_by_status: BTreeMap<String, u64>,
}

/// Counts of what the simulated API answered.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Requests per (path, status).
    pub responses: Vec<(String, u16, u64)>,
    /// Requests that the API refused as malformed (400 other than a history-window error).
    pub malformed: u64,
    /// 429 answers.
    pub too_many_requests: u64,
}

impl SimStats {
    /// Responses to `path` with `status`.
    pub fn count(&self, path: &str, status: u16) -> u64 {
        self.responses
            .iter()
            .filter(|(p, s, _)| p == path && *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Responses with `status`, whatever the path.
    pub fn count_status(&self, status: u16) -> u64 {
        self.responses
            .iter()
            .filter(|(_, s, _)| *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// One request the API answered (the control endpoints are not logged).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// Server clock when it was answered.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string, with secrets replaced by `***`.
    pub query: String,
    /// Status answered.
    pub status: u16,
    /// True if the API refused it as malformed (see [`SimStats::malformed`]).
    pub malformed: bool,
}

/// How many requests [`Simulator::recent_requests`] remembers.
pub const REQUEST_LOG_CAPACITY: usize = 1_000;

/// The simulator's clock: the server clock runs `speed` times real time from its start.
///
/// Real time is read from Tokio's clock, so tests that pause and advance it move the world too.
struct Clock {
    started: tokio::time::Instant,
    server_start: i64,
    speed: f64,
}

impl Clock {
    fn server_ms(&self) -> i64 {
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed * 1_000.0;
        self.server_start + elapsed as i64
    }
}

/// An issued access token.
struct Grant {
    client: String,
    expires: tokio::time::Instant,
}

/// Everything the simulator holds, behind the one lock.
struct State {
    config: SimConfig,
    clock: Clock,
    world: world::World,
    grants: HashMap<String, Grant>,
    buckets: HashMap<String, limit::TokenBucket>,
    responses: BTreeMap<(String, u16), u64>,
    malformed: u64,
    too_many_requests: u64,
    log: VecDeque<RequestRecord>,
    /// Seals cursors, so that only this simulator's cursors are accepted.
    cursor_key: u64,
}

impl State {
    /// Advances the world to the server clock's now and returns it (ms).
    fn advance(&mut self) -> i64 {
        let now = self.clock.server_ms();
        self.world.advance_to(now);
        now
    }
}

/// A simulated tenant; cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

impl Simulator {
    /// Builds the world for `config`, starting now.
    pub fn new(config: SimConfig) -> Self {
        Self::starting_at(config, Utc::now())
    }

    /// Builds the world for `config` as if the real clock read `start` now: two simulators with
    /// the same configuration and start hold the same world at the same moments.
    pub fn starting_at(config: SimConfig, start: DateTime<Utc>) -> Self {
        let mut config = config;
        if !(config.speed.is_finite() && config.speed > 0.0) {
            config.speed = 1.0;
        }
        let server_start = (start + config.clock_skew).timestamp_millis();
        let world = world::World::new(
            world::WorldParams {
                seed: config.seed,
                users: config.users,
                bump_updated_on_traffic: config.bump_updated_on_traffic,
                outages_per_day: config.outages_per_day,
                always_on_boost: config.always_on_boost,
                steady: config.steady,
            },
            server_start,
        );
        let state = State {
            clock: Clock {
                started: tokio::time::Instant::now(),
                server_start,
                speed: config.speed,
            },
            config,
            world,
            grants: HashMap::new(),
            buckets: HashMap::new(),
            responses: BTreeMap::new(),
            malformed: 0,
            too_many_requests: 0,
            log: VecDeque::new(),
            cursor_key: rand::random(),
        };
        Self {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// The state; a panic elsewhere while it was held leaves it usable (every change to it is
    /// complete before anything that could panic).
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The HTTP API, with the `/_sim/` control endpoints.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state().config.faults = faults;
    }

    /// The injected faults.
    pub fn faults(&self) -> Faults {
        self.state().config.faults.clone()
    }

    /// Stops (or resumes) churn: no arrivals, no endings, no byte growth while stopped.
    pub fn set_churn(&self, on: bool) {
        let mut state = self.state();
        let now = state.clock.server_ms();
        state.world.set_churn(on, now);
    }

    /// True while churn is on.
    pub fn churn(&self) -> bool {
        self.state().world.churn()
    }

    /// The server's clock now.
    pub fn now(&self) -> DateTime<Utc> {
        millis_to_time(self.state().clock.server_ms())
    }

    /// Every session the world holds now, oldest first.
    pub fn truth(&self) -> Vec<TruthSession> {
        let mut state = self.state();
        state.advance();
        state
            .world
            .truth()
            .into_iter()
            .map(|t| TruthSession {
                id: t.id,
                status: t.status.as_str().into(),
                region: t.region.into(),
                network: t.network.into(),
                bytes_in: t.bytes_in.max(0) as u64,
                bytes_out: t.bytes_out.max(0) as u64,
                start: millis_to_time(t.start),
                end: t.end.map(millis_to_time),
                reason: t.reason.map(Into::into),
                host: t.host.into(),
                connector: t.connector.into(),
                user_name: t.user_name,
                user_group: t.user_group.into(),
                protocol: t.protocol.into(),
                os_type: t.os_type.into(),
                failed: t.status == world::Status::Failed,
                updated: millis_to_time(t.updated),
                duration_seconds: t.end.map(|end| (end - t.start) / 1_000),
            })
            .collect()
    }

    /// Active sessions per region and ended sessions per status, now.
    pub fn summary(&self) -> TruthSummary {
        let mut state = self.state();
        let now = state.advance();
        let summary = state.world.summary();
        TruthSummary {
            now: millis_to_time(now),
            active_total: summary.active_total,
            active_by_region: summary
                .active_by_region
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ended_by_status: summary
                .ended_by_status
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }

    /// What the API has answered so far.
    pub fn stats(&self) -> SimStats {
        let state = self.state();
        SimStats {
            responses: state
                .responses
                .iter()
                .map(|((path, status), n)| (path.clone(), *status, *n))
                .collect(),
            malformed: state.malformed,
            too_many_requests: state.too_many_requests,
        }
    }

    /// The last [`REQUEST_LOG_CAPACITY`] requests the API answered, oldest first.
    pub fn recent_requests(&self) -> Vec<RequestRecord> {
        self.state().log.iter().cloned().collect()
    }
}

/// Serves `sim` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(shutdown)
        .await
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
