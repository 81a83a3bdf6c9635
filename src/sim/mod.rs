//! The simulated CloudConnexa tenant: the same HTTP API as the real service, over a generated world.
//!
//! Interface stub: the implementation lands with the simulator work. The signatures here are the
//! ones the exporter (`--demo`), the `simulate` command and the tests are written against.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::secret::Secret;

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
        }
    }
}

/// Per-session ground truth, for tests that compare the exporter's metrics with the world.
#[derive(Debug, Clone)]
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

/// A simulated tenant; cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<SimConfig>>,
}

impl Simulator {
    /// Builds the world for `config`.
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(config)),
        }
    }

    /// The HTTP API.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut c) = self.inner.lock() {
            c.faults = faults;
        }
    }

    /// Stops (or resumes) churn: no arrivals, no endings, no byte growth while stopped.
    pub fn set_churn(&self, _on: bool) {}

    /// The server's clock now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Every session the world holds now.
    pub fn truth(&self) -> Vec<TruthSession> {
        Vec::new()
    }

    /// What the API has answered so far.
    pub fn stats(&self) -> SimStats {
        SimStats::default()
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

/// Flags of the `simulate` command.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to serve the simulated API on.
    #[arg(long = "listen-address")]
    pub listen_address: String,
}

/// Serves the simulated API as `args` say until `shutdown` completes.
pub async fn run_simulate(
    args: SimulateArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen_address).await?;
    serve(listener, Simulator::new(SimConfig::default()), shutdown).await
}

impl SimConfig {
    /// The tenant behind `--demo`.
    pub fn demo() -> Self {
        Self::default()
    }
}
