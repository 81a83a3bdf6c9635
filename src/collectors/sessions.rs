//! The sessions collector: what to ask the API each cycle, feeding the tracker, publishing
//! snapshots.
//!
//! # Strategy
//! The API allows about four requests a minute by default, so the poller spends them where they
//! carry information:
//!
//! 1. **Full listing** of ACTIVE sessions at start, then again now and then to resynchronise the
//!    active gauge (sessions whose end the windows missed are hidden). It costs one request per 100
//!    active sessions. How often it runs adapts to the budget the API reports and to what the
//!    other collectors spend ([`Plan`]): at least `resync_interval` apart, and further apart when
//!    windows, listings and the other collectors together would use more than
//!    [`PLANNED_BUDGET_SHARE`] of the sustained rate the API reports; at most an hour apart (which
//!    is also how far apart they are when the windows and the others alone use that share).
//! 2. **Windows** every cycle: all sessions created or updated since the end of the last window,
//!    less an overlap (for records that become visible late), whatever their status. A quiet cycle
//!    costs one request; a busy one one per 100 *changed* sessions. Records seen twice across the
//!    overlap are de-duplicated by the tracker.
//!
//! Windows are computed on the API server's clock (local clock plus the offset seen in `Date`
//! headers), so a wrong local clock neither loses nor double counts sessions. `startDate` stays a
//! margin inside the API's history window; when the API still refuses it, the margin doubles and
//! the request is retried.
//!
//! When the rate limit cannot keep up, requests wait (see [`crate::upstream::rate`]) and the cycle
//! stretches; this shows in `cloudconnexa_poll_duration_seconds`,
//! `cloudconnexa_rate_limit_wait_seconds_total` and a warning in the log.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{Collect, CollectorName, Plan, RunReport, Status};
use crate::metrics::Metrics;
use crate::tracker::{BatchOutcome, SeriesConfig, SessionTracker, Snapshot};
use crate::upstream::client::ApiClient;
use crate::upstream::error::UpstreamError;
use crate::upstream::model::SessionStatus;
use crate::upstream::sessions::{ListingStats, SessionsQuery};

/// Share of the API's sustained rate the collectors together plan to use, leaving the rest to
/// retries, token renewals and the other clients of the same API key (a team's Terraform, its
/// scripts): with the vendor's 240 requests an hour, 144. The first hour also spends the first
/// full listing out of the bucket's burst; the reference tenant's comes to about 160 (README,
/// "What each collector costs").
pub const PLANNED_BUDGET_SHARE: f64 = 0.6;

/// Tunables of the poll loop.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Time between the starts of two cycles.
    pub interval: Duration,
    /// Shortest time between two full listings of ACTIVE sessions.
    pub resync_interval: Duration,
    /// Longest time between two full listings, however tight the budget.
    pub max_resync_interval: Duration,
    /// How far each window reaches back before the end of the previous one.
    pub overlap: Duration,
    /// How far inside the API's history window `startDate` stays.
    pub history_margin: Duration,
    /// How long ended sessions are remembered beyond the start of the next window.
    pub horizon_margin: Duration,
    /// Most pages one listing may take before it is declared runaway.
    pub max_pages: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            resync_interval: Duration::from_secs(300),
            max_resync_interval: Duration::from_secs(3600),
            overlap: Duration::from_secs(120),
            history_margin: Duration::from_secs(3600),
            horizon_margin: Duration::from_secs(600),
            max_pages: 5000,
        }
    }
}

/// The sessions collector and its state between cycles.
pub struct Poller {
    client: Arc<ApiClient>,
    config: PollConfig,
    series: SeriesConfig,
    tracker: Option<SessionTracker>,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    plan: Arc<Plan>,
    started: Instant,
    /// End of the last window fully listed (server clock).
    window_end: Option<DateTime<Utc>>,
    /// When the last complete full listing was taken (server clock).
    listed_at: Option<DateTime<Utc>>,
    next_resync: Option<Instant>,
    history_margin: chrono::Duration,
    /// Whether the log has said that a label-set table is full (it says so once).
    fold_reported: bool,
}

/// What a successful cycle did.
#[derive(Debug, Default)]
struct CycleSummary {
    full: Option<ListingStats>,
    window: ListingStats,
    outcome: BatchOutcome,
}

impl Poller {
    /// A poller whose session series follow `series` (labels, lifetime, cap), through `client`,
    /// publishing to `metrics`; it marks `status` ready at its first complete listing and reads
    /// what the other collectors spend from `plan`.
    pub fn new(
        client: Arc<ApiClient>,
        config: PollConfig,
        series: SeriesConfig,
        metrics: Arc<Metrics>,
        status: Arc<Status>,
        plan: Arc<Plan>,
    ) -> Self {
        let history_margin = chrono::Duration::from_std(config.history_margin).unwrap_or_default();
        Self {
            client,
            config,
            series,
            tracker: None,
            metrics,
            status,
            plan,
            started: Instant::now(),
            window_end: None,
            listed_at: None,
            next_resync: None,
            history_margin,
            fold_reported: false,
        }
    }

    /// Logs a successful cycle.
    fn log(&self, summary: &CycleSummary, active: u64) {
        tracing::info!(
            collector = CollectorName::Sessions.as_str(),
            active,
            full_listing_pages = summary.full.map(|f| f.pages),
            window_pages = summary.window.pages,
            window_sessions = summary.window.sessions,
            started = summary.outcome.started,
            ended = summary.outcome.ended,
            duplicates = summary.outcome.duplicates,
            ended_before_start = summary.outcome.too_old,
            invalid = summary.outcome.invalid,
            "poll cycle done"
        );
    }

    /// One cycle: a full listing when due, then the window since the last one; publishes the
    /// tracker's state when both succeeded.
    async fn poll_once(&mut self) -> Result<CycleSummary, UpstreamError> {
        // The first token request also teaches the server's clock.
        self.client.ensure_token().await?;
        let now = self.client.server_now();
        let mut tracker = match self.tracker.take() {
            Some(t) => t,
            None => {
                let uptime = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
                let t0 = now - uptime;
                tracing::info!(t0 = %t0, "counting sessions from T0 on the API server's clock");
                SessionTracker::with_series(t0, self.series.clone())
            }
        };
        // The tracker is lent to the cycle and always put back, whatever the cycle's outcome.
        let result = self.cycle(&mut tracker).await;
        if result.is_ok() {
            let snapshot = tracker.snapshot();
            self.report_folding(&snapshot);
            self.metrics.publish(snapshot);
        }
        self.tracker = Some(tracker);
        result
    }

    async fn cycle(&mut self, tracker: &mut SessionTracker) -> Result<CycleSummary, UpstreamError> {
        let mut summary = CycleSummary::default();
        if self.next_resync.is_none_or(|at| Instant::now() >= at) {
            let stats = self.full_listing(tracker, &mut summary.outcome).await?;
            self.schedule_resync(stats.pages);
            summary.full = Some(stats);
        }
        summary.window = self.window(tracker, &mut summary.outcome).await?;
        Ok(summary)
    }

    async fn full_listing(
        &mut self,
        tracker: &mut SessionTracker,
        outcome: &mut BatchOutcome,
    ) -> Result<ListingStats, UpstreamError> {
        let listed_at = self.client.server_now();
        tracker.begin_full_listing();
        let stats = self
            .list(
                tracker,
                Some(SessionStatus::Active),
                listed_at,
                None,
                outcome,
            )
            .await?;
        tracker.finish_full_listing(listed_at);
        self.listed_at = Some(listed_at);
        if self.status.mark_ready() {
            tracing::info!(
                pages = stats.pages,
                sessions = stats.sessions,
                "first full listing of active sessions taken; ready"
            );
        }
        Ok(stats)
    }

    async fn window(
        &mut self,
        tracker: &mut SessionTracker,
        outcome: &mut BatchOutcome,
    ) -> Result<ListingStats, UpstreamError> {
        let overlap = chrono::Duration::from_std(self.config.overlap).unwrap_or_default();
        let end = self.client.server_now();
        // The first window starts at T0 (or the first listing, if earlier), so every session
        // that ended since the start is seen.
        let from = self
            .window_end
            .unwrap_or_else(|| self.listed_at.map_or(tracker.t0(), |l| l.min(tracker.t0())));
        let stats = self
            .list(tracker, None, from - overlap, Some(end), outcome)
            .await?;
        self.window_end = Some(end);
        let margin = chrono::Duration::from_std(self.config.horizon_margin).unwrap_or_default();
        // The next window starts at `end - overlap`: nothing older can come back.
        tracker.advance_horizon(end - overlap - margin);
        // Idleness is measured on the server's clock, like the windows.
        let expired = tracker.expire_series(end);
        if expired > 0 {
            tracing::debug!(
                label_sets = expired,
                "counter label sets idle for the series TTL expired"
            );
        }
        Ok(stats)
    }

    /// Lists sessions from `start` (clamped inside the history window), applying each page to the
    /// tracker; on a history-window refusal, widens the margin and tries again.
    async fn list(
        &mut self,
        tracker: &mut SessionTracker,
        status: Option<SessionStatus>,
        reference: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
        outcome: &mut BatchOutcome,
    ) -> Result<ListingStats, UpstreamError> {
        let window = self.client.api_version().history_window();
        let mut attempts = 0;
        loop {
            let now = self.client.server_now();
            let earliest = now - window + self.history_margin;
            // A full listing reaches back as far as the API allows; a window starts at `reference`.
            let start = match status {
                Some(SessionStatus::Active) => earliest,
                _ => {
                    if reference < earliest {
                        tracing::warn!(gap_start = %reference, earliest = %earliest,
                            "the last window ended beyond the API's history window; sessions that ended in between are lost");
                    }
                    reference.max(earliest)
                }
            };
            if end.is_some_and(|e| e <= start) {
                return Ok(ListingStats::default());
            }
            let query = SessionsQuery {
                status,
                start,
                end,
                return_only_new: false,
            };
            let result = self
                .client
                .list_sessions(&query, self.config.max_pages, &mut |page, observed_at| {
                    *outcome += tracker.apply(&page.sessions, observed_at);
                    outcome.invalid += page.skipped;
                })
                .await;
            match result {
                Err(UpstreamError::HistoryWindow { detail }) if attempts < 3 => {
                    attempts += 1;
                    self.history_margin = (self.history_margin * 2).min(window / 2);
                    tracing::warn!(
                        detail,
                        margin_s = self.history_margin.num_seconds(),
                        "the API refused startDate as too old; narrowing the window"
                    );
                }
                other => return other,
            }
        }
    }

    /// Says once, as a warning, that a label-set table is full and new label sets are folded.
    fn report_folding(&mut self, snapshot: &Snapshot) {
        if self.fold_reported || snapshot.folded_active + snapshot.folded_counters == 0 {
            return;
        }
        self.fold_reported = true;
        tracing::warn!(
            max_label_sets = self.series.max_label_sets,
            folded_active = snapshot.folded_active,
            folded_counters = snapshot.folded_counters,
            "more session label sets than --sessions.max-label-sets: new ones are counted under the label set whose every value is \"other\" (see cloudconnexa_exporter_sessions_folded_total); trim --sessions.labels or --sessions.counter-labels, or raise the cap"
        );
    }

    /// Picks the time of the next full listing from what the last one cost, the API's budget and
    /// what the other collectors spend.
    fn schedule_resync(&mut self, pages: u32) {
        let rate = self.client.budget().and_then(|b| b.sustained_rate());
        let others = self.plan.others(CollectorName::Sessions);
        let every = resync_spacing(pages, rate, others, &self.config);
        let windows = 1.0 / self.config.interval.as_secs_f64().max(1.0);
        if let Some(rate) = rate {
            if rate <= windows {
                tracing::warn!(
                    sustained_per_minute = rate * 60.0,
                    interval_s = self.config.interval.as_secs(),
                    "the poll interval alone uses up the API's rate limit; cycles will stretch"
                );
            } else if windows + others >= PLANNED_BUDGET_SHARE * rate {
                tracing::warn!(
                    sustained_per_minute = rate * 60.0,
                    windows_per_minute = windows * 60.0,
                    other_collectors_per_minute = others * 60.0,
                    "the windows and the other collectors take the planned share of the API's \
                     rate limit; full listings come hourly (lengthen --poll.interval or the \
                     other collectors' intervals)"
                );
            }
        }
        self.next_resync = Some(Instant::now() + every);
        tracing::debug!(
            pages,
            next_in_s = every.as_secs(),
            "scheduled the next full listing"
        );
    }
}

impl Collect for Poller {
    fn name(&self) -> CollectorName {
        CollectorName::Sessions
    }

    fn expected_requests(&self) -> u32 {
        // A window a cycle, the full listings apart; what the others plan with is the windows'.
        1
    }

    async fn collect(&mut self) -> Result<RunReport, UpstreamError> {
        let summary = self.poll_once().await?;
        let active = self
            .tracker
            .as_ref()
            .map_or(0, SessionTracker::active_count);
        self.log(&summary, active);
        Ok(RunReport {
            requests: summary.full.map_or(0, |f| f.pages) + summary.window.pages,
            summary: format!("{active} active sessions"),
        })
    }
}

/// Time until the next full listing of `pages` pages, given the API's sustained rate (requests
/// per second, when its headers say) and what the other collectors spend (`others`, requests per
/// second): [`PLANNED_BUDGET_SHARE`] of the rate goes to windows, listings and the others
/// together, so listings get what the windows and the others leave of it. Always within
/// `resync_interval ..= max_resync_interval`: a listing at least every hour keeps the active
/// gauge honest even when the others leave nothing.
fn resync_spacing(pages: u32, rate: Option<f64>, others: f64, config: &PollConfig) -> Duration {
    let min = config.resync_interval;
    let max = config.max_resync_interval.max(min);
    let Some(rate) = rate else {
        return min;
    };
    let committed = 1.0 / config.interval.as_secs_f64().max(1.0) + others;
    let spare = PLANNED_BUDGET_SHARE * rate - committed;
    if spare <= 0.0 {
        return max;
    }
    Duration::from_secs_f64((f64::from(pages) / spare).min(max.as_secs_f64())).max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENDOR_RATE: f64 = 1.0 / 15.0;
    const PER_HOUR: f64 = 1.0 / 3600.0;

    #[test]
    fn listings_get_what_windows_and_the_other_collectors_leave_of_the_plan() {
        let config = PollConfig::default();
        // 60 windows an hour leave 84 of the 144 planned for 20-page listings: one every 14 min
        // 17 s.
        assert_eq!(
            resync_spacing(20, Some(VENDOR_RATE), 0.0, &config).as_secs(),
            857
        );
        // Connectors every 3 minutes, users every 15 and regions hourly (2, 3 and 1 requests)
        // spend 53 an hour: listings get the 31 left, one every 38 min 42 s.
        let others = 53.0 * PER_HOUR;
        assert_eq!(
            resync_spacing(20, Some(VENDOR_RATE), others, &config).as_secs(),
            2322
        );
        // A small tenant resyncs at the shortest interval, a huge one at least hourly.
        assert_eq!(
            resync_spacing(1, Some(VENDOR_RATE), others, &config),
            config.resync_interval
        );
        assert_eq!(
            resync_spacing(500, Some(VENDOR_RATE), 0.0, &config),
            config.max_resync_interval
        );
        // Without rate headers, the shortest interval.
        assert_eq!(
            resync_spacing(20, None, others, &config),
            config.resync_interval
        );
    }

    #[test]
    fn when_windows_and_the_others_use_the_plan_up_listings_come_hourly() {
        // 180 windows an hour, more than the 144 planned.
        let fast = PollConfig {
            interval: Duration::from_secs(20),
            resync_interval: Duration::from_secs(20),
            ..PollConfig::default()
        };
        assert_eq!(
            resync_spacing(1, Some(VENDOR_RATE), 0.0, &fast),
            fast.max_resync_interval
        );
        // 60 windows and 84 requests of the others: nothing left.
        let config = PollConfig::default();
        assert_eq!(
            resync_spacing(1, Some(VENDOR_RATE), 84.0 * PER_HOUR, &config),
            config.max_resync_interval
        );
        // Just under: what is left, however little.
        assert_eq!(
            resync_spacing(1, Some(VENDOR_RATE), 83.0 * PER_HOUR, &config),
            config.max_resync_interval.min(Duration::from_secs(3600))
        );
        assert_eq!(
            resync_spacing(1, Some(VENDOR_RATE), 80.0 * PER_HOUR, &config),
            Duration::from_secs(900)
        );
    }
}
