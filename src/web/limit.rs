//! `rate_limit`: a token bucket in front of every request, as in the exporter-toolkit.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `burst` tokens, one more every `interval`; a request takes one or is refused.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: u32,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimit {
    /// A full bucket.
    pub fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst,
            bucket: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    /// Takes a token if there is one.
    pub fn allow(&self) -> bool {
        let now = Instant::now();
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = &mut *bucket;
        let refill = now.duration_since(*at).as_secs_f64() / self.interval.as_secs_f64();
        *tokens = (*tokens + refill).min(f64::from(self.burst));
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_one_request_per_interval() {
        let limit = RateLimit::new(Duration::from_secs(1), 3);
        assert_eq!((0..5).filter(|_| limit.allow()).count(), 3);
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!limit.allow());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(limit.allow());
        assert!(!limit.allow());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            (0..5).filter(|_| limit.allow()).count(),
            3,
            "never more than the burst"
        );
    }
}
