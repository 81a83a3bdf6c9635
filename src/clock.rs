//! The wall clock, injectable so tests can run the exporter with a skewed local clock.

use chrono::{DateTime, Utc};

/// A source of the current wall-clock time.
///
/// The exporter reads the wall clock for two things only: to estimate the API server's clock
/// (local time plus the offset seen in `Date` headers) and to stamp
/// `cloudconnexa_last_successful_poll_timestamp_seconds`. Intervals and timeouts use Tokio's
/// monotonic clock instead.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted by a fixed offset: a machine whose clock is wrong.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock(pub chrono::Duration);

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}
