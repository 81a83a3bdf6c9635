//! The collectors: each asks the API for one part of the tenant on its own schedule, all through
//! the one [`ApiClient`](crate::upstream::client::ApiClient) and so through the one rate-limit
//! budget of the API key.
//!
//! - [`sessions`]: sessions (the poll loop of windows and full listings), feeding the tracker.
//! - [`connectors`]: network and host connectors and their state.
//! - [`users`]: users and their devices, counted (never named).
//! - [`regions`]: the VPN region catalogue.
//!
//! Each runs as its own task under [`run`]: a run, then the wait until the next one (the rest of
//! the interval after a success, a doubling wait after failures), with its outcome recorded in
//! the self-metrics, its [`Status`] and the log. A collector that fails fails alone: the others
//! carry on, and its series keep their last values. Sessions come first for the budget (see
//! [`Priority`](crate::upstream::client::Priority)), and the spacing of their full listings
//! accounts for what the others spend ([`Plan`]).

pub mod connectors;
pub mod regions;
pub mod sessions;
pub mod users;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::upstream::error::UpstreamError;

/// Longest wait between two runs of a failing collector.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);

/// The first wait after a failure is the interval, but never more than this: a collector that
/// runs hourly retries sooner.
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A collector, by the value of its `collector` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CollectorName {
    /// Sessions.
    Sessions,
    /// Network and host connectors.
    Connectors,
    /// Users and devices.
    Users,
    /// VPN regions.
    Regions,
}

impl CollectorName {
    /// Every collector, in the order pages and logs list them.
    pub const ALL: [CollectorName; 4] =
        [Self::Sessions, Self::Connectors, Self::Users, Self::Regions];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Connectors => "connectors",
            Self::Users => "users",
            Self::Regions => "regions",
        }
    }
}

/// What one successful run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Requests the run's listings took.
    pub requests: u32,
    /// One line for the landing page, e.g. `48 connectors, 2 offline`.
    pub summary: String,
}

/// One kind of collector: what a run does. Scheduling, retries and bookkeeping are [`run`]'s.
pub trait Collect: Send {
    /// Which collector this is.
    fn name(&self) -> CollectorName;

    /// Requests a run is expected to take before one has run, for the [`Plan`].
    fn expected_requests(&self) -> u32;

    /// One run: ask the API, publish what it says.
    fn collect(&mut self) -> impl Future<Output = Result<RunReport, UpstreamError>> + Send;
}

/// The last run of a collector, for the landing page.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// When it ended (local clock).
    pub finished_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// The outcome: the report of a success, or the error.
    pub outcome: Result<RunReport, String>,
    /// Failed runs in a row, this one included.
    pub failures: u32,
}

/// Readiness, liveness and the last run of one collector, shared with the HTTP server.
#[derive(Debug)]
pub struct Status {
    name: CollectorName,
    ready: AtomicBool,
    stopped: AtomicBool,
    last: Mutex<Option<RunRecord>>,
}

impl Status {
    /// The status of a collector that has not run yet.
    pub fn new(name: CollectorName) -> Self {
        Self {
            name,
            ready: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// The collector.
    pub fn name(&self) -> CollectorName {
        self.name
    }

    /// True once the collector has what readiness asks of it: the sessions' first complete
    /// listing of active sessions; for the others, a first run, successful or not (a collector
    /// that keeps failing must not hold readiness).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// True while the collector's task runs (it ends only at shutdown, or if it panicked).
    pub fn is_alive(&self) -> bool {
        !self.stopped.load(Ordering::Acquire)
    }

    /// Marks the collector ready; true if it was not before.
    pub(crate) fn mark_ready(&self) -> bool {
        !self.ready.swap(true, Ordering::AcqRel)
    }

    /// The last run.
    pub fn last(&self) -> Option<RunRecord> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Option<RunRecord>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The enabled collectors' statuses, as the HTTP server sees them.
#[derive(Debug, Clone, Default)]
pub struct Health {
    collectors: Vec<Arc<Status>>,
}

impl Health {
    /// Health over `collectors`.
    pub fn new(collectors: Vec<Arc<Status>>) -> Self {
        Self { collectors }
    }

    /// `/readyz`: every enabled collector is ready.
    pub fn is_ready(&self) -> bool {
        self.collectors.iter().all(|s| s.is_ready())
    }

    /// `/healthz`: every collector's task is alive.
    pub fn is_alive(&self) -> bool {
        self.collectors.iter().all(|s| s.is_alive())
    }

    /// The collectors, in [`CollectorName::ALL`] order.
    pub fn collectors(&self) -> &[Arc<Status>] {
        &self.collectors
    }

    /// The collectors that are not ready yet.
    pub fn waiting_for(&self) -> Vec<CollectorName> {
        self.collectors
            .iter()
            .filter(|s| !s.is_ready())
            .map(|s| s.name())
            .collect()
    }
}

/// What each collector is expected to spend of the budget, in requests per second, so that the
/// sessions collector can space its full listings around the others.
#[derive(Debug, Default)]
pub struct Plan {
    rates: Mutex<BTreeMap<CollectorName, f64>>,
}

impl Plan {
    /// Records `name`'s rate: `requests` a run every `interval`.
    pub fn set(&self, name: CollectorName, requests: u32, interval: Duration) {
        let rate = f64::from(requests) / interval.as_secs_f64().max(1.0);
        self.lock().insert(name, rate);
    }

    /// The rate of every collector but `name`.
    pub fn others(&self, name: CollectorName) -> f64 {
        self.lock()
            .iter()
            .filter(|(n, _)| **n != name)
            .map(|(_, r)| r)
            .sum()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<CollectorName, f64>> {
        self.rates.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What [`run`] needs besides the collector.
#[derive(Clone)]
pub struct Runner {
    /// Time between the starts of two successful runs.
    pub interval: Duration,
    /// The collector's status.
    pub status: Arc<Status>,
    /// Self-metrics.
    pub metrics: Arc<Metrics>,
    /// The budget plan.
    pub plan: Arc<Plan>,
    /// The local wall clock, for timestamps.
    pub clock: Arc<dyn Clock>,
}

/// Marks the collector stopped when its task ends, however it ends.
struct AliveGuard(Arc<Status>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
    }
}

/// Runs `collector` until `shutdown` turns true (or its sender is dropped).
pub async fn run<C: Collect>(
    mut collector: C,
    runner: Runner,
    mut shutdown: watch::Receiver<bool>,
) {
    let _alive = AliveGuard(runner.status.clone());
    let name = collector.name();
    runner
        .plan
        .set(name, collector.expected_requests(), runner.interval);
    let mut failures = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let began = Instant::now();
        let result = tokio::select! {
            r = collector.collect() => r,
            _ = shutdown.changed() => return,
        };
        let took = began.elapsed();
        failures = if result.is_ok() { 0 } else { failures + 1 };
        runner.record(name, result, took, failures);
        let delay = next_delay(runner.interval, took, failures);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

impl Runner {
    /// Records a run in the self-metrics, the status, the plan and the log.
    fn record(
        &self,
        name: CollectorName,
        result: Result<RunReport, UpstreamError>,
        took: Duration,
        failures: u32,
    ) {
        let now = self.clock.now();
        let label = name.as_str();
        match &result {
            Ok(report) => {
                self.metrics.record_success(label, took, now);
                self.plan.set(name, report.requests, self.interval);
                if took > self.interval {
                    tracing::warn!(
                        collector = label,
                        took_ms = took.as_millis() as u64,
                        interval_ms = self.interval.as_millis() as u64,
                        "run took longer than its interval: the API's rate limit stretches it"
                    );
                }
            }
            Err(e) => {
                self.metrics.record_failure(label, took, e.kind());
                let retry_in_s = next_delay(self.interval, took, failures).as_secs();
                log_failure(name, e, failures, retry_in_s);
            }
        }
        // A run, successful or not, is what readiness asks of the collectors but sessions,
        // which mark themselves ready at their first complete listing.
        if name != CollectorName::Sessions && self.status.mark_ready() {
            tracing::info!(collector = label, ok = result.is_ok(), "first run finished");
        }
        *self.status.lock() = Some(RunRecord {
            finished_at: now,
            duration: took,
            outcome: result.map_err(|e| e.to_string()),
            failures,
        });
    }
}

/// One line per failed run, saying what an operator can do about it.
fn log_failure(name: CollectorName, e: &UpstreamError, failures: u32, retry_in_s: u64) {
    let collector = name.as_str();
    let kind = e.kind().as_str();
    match e {
        UpstreamError::Auth {
            endpoint: "token", ..
        }
        | UpstreamError::Auth { status: 401, .. } => tracing::error!(
            collector, error = %e, kind, failures, retry_in_s,
            "the API rejects the credentials; check --cloudconnexa.client-id and the client secret, their expiry and IP restrictions"
        ),
        UpstreamError::Auth {
            endpoint, status, ..
        } => tracing::error!(
            collector, endpoint, status, error = %e, kind, failures, retry_in_s,
            "the API refuses this endpoint: the API credentials may lack the permission to read it"
        ),
        _ => tracing::warn!(collector, error = %e, kind, failures, retry_in_s, "run failed"),
    }
}

/// The wait before the next run: the rest of the interval after a success; after failures, a
/// wait that starts at the interval (at most a minute) and doubles with each failure in a row,
/// up to [`MAX_RETRY_WAIT`], so a refused credential or an outage is retried slowly.
pub fn next_delay(interval: Duration, took: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval.saturating_sub(took);
    }
    interval
        .min(FIRST_RETRY_WAIT)
        .saturating_mul(1 << (failures - 1).min(16))
        .min(MAX_RETRY_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn failures_wait_longer_each_time_up_to_ten_minutes() {
        assert_eq!(
            next_delay(S(60), S(5), 0),
            S(55),
            "the rest of the interval"
        );
        assert_eq!(
            next_delay(S(60), S(90), 0),
            S(0),
            "a long run starts the next at once"
        );
        let waits: Vec<u64> = (1..=6)
            .map(|n| next_delay(S(120), S(1), n).as_secs())
            .collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
        let hourly: Vec<u64> = (1..=3)
            .map(|n| next_delay(S(3600), S(1), n).as_secs())
            .collect();
        assert_eq!(hourly, [60, 120, 240], "an hourly collector retries sooner");
        assert_eq!(next_delay(S(1), S(0), 1), S(1));
        assert_eq!(next_delay(S(1), S(0), 40), S(600));
    }

    #[test]
    fn the_plan_adds_up_what_the_others_spend() {
        let plan = Plan::default();
        plan.set(CollectorName::Sessions, 60, S(60));
        plan.set(CollectorName::Connectors, 2, S(120));
        plan.set(CollectorName::Users, 3, S(900));
        assert!((plan.others(CollectorName::Sessions) - (1.0 / 60.0 + 1.0 / 300.0)).abs() < 1e-9);
        plan.set(CollectorName::Connectors, 4, S(120));
        assert!((plan.others(CollectorName::Users) - (1.0 + 1.0 / 30.0)).abs() < 1e-9);
    }

    #[test]
    fn readiness_waits_for_every_collector() {
        let (sessions, users) = (
            Arc::new(Status::new(CollectorName::Sessions)),
            Arc::new(Status::new(CollectorName::Users)),
        );
        let health = Health::new(vec![sessions.clone(), users.clone()]);
        assert!(!health.is_ready());
        assert!(sessions.mark_ready());
        assert!(!sessions.mark_ready(), "only the first time counts");
        assert_eq!(health.waiting_for(), [CollectorName::Users]);
        users.mark_ready();
        assert!(health.is_ready() && health.is_alive());
        drop(AliveGuard(users));
        assert!(!health.is_alive());
    }
}
