//! The API's rate limit: a token bucket per API client that refills in whole periods, as a
//! gateway with a burst capacity, a replenish rate and a replenish time does.

use tokio::time::Instant;

use super::RateLimit;

/// One client's bucket.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: u32,
    /// Start of the current refill period.
    period_start: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(limit: &RateLimit, now: Instant) -> TokenBucket {
        TokenBucket {
            tokens: limit.burst,
            period_start: now,
        }
    }

    /// Adds the tokens of every period completed by `now`. A full bucket does not bank time: its
    /// next period starts when a token is first taken from it.
    fn refill(&mut self, limit: &RateLimit, now: Instant) {
        if self.tokens >= limit.burst {
            self.tokens = limit.burst;
            self.period_start = now;
            return;
        }
        if limit.replenish_rate == 0 {
            return;
        }
        let period = limit
            .replenish_time
            .max(std::time::Duration::from_millis(1));
        let periods =
            now.saturating_duration_since(self.period_start).as_nanos() / period.as_nanos();
        if periods == 0 {
            return;
        }
        let added = u128::from(limit.replenish_rate) * periods;
        self.tokens = u128::from(self.tokens)
            .saturating_add(added)
            .min(u128::from(limit.burst)) as u32;
        if self.tokens >= limit.burst {
            self.period_start = now;
        } else {
            // Fewer periods than would fill the bucket: they fit in a u32.
            self.period_start += period * periods as u32;
        }
    }

    /// Takes a token if there is one; true if the request may go ahead.
    pub(crate) fn try_take(&mut self, limit: &RateLimit, now: Instant) -> bool {
        self.refill(limit, now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Tokens left (`X-RateLimit-Remaining`).
    pub(crate) fn remaining(&self) -> u32 {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_spends_its_burst_then_refills_in_whole_periods() {
        let limit = RateLimit::VENDOR_DEFAULT;
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(&limit, t0);
        for i in 0..20 {
            assert!(
                bucket.try_take(&limit, t0),
                "request {i} is within the burst"
            );
        }
        assert_eq!(bucket.remaining(), 0);
        assert!(!bucket.try_take(&limit, t0 + Duration::from_secs(14)));
        assert!(bucket.try_take(&limit, t0 + Duration::from_secs(15)));
        assert!(!bucket.try_take(&limit, t0 + Duration::from_secs(29)));
        assert!(bucket.try_take(&limit, t0 + Duration::from_secs(30)));
        // A long pause refills to the burst, never beyond.
        assert!(bucket.try_take(&limit, t0 + Duration::from_secs(3_600)));
        assert_eq!(bucket.remaining(), 19);
    }

    #[test]
    fn a_full_bucket_starts_its_period_at_the_first_spend() {
        let limit = RateLimit {
            burst: 2,
            replenish_rate: 1,
            replenish_time: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(&limit, t0);
        let t1 = t0 + Duration::from_secs(95);
        assert!(bucket.try_take(&limit, t1));
        assert!(bucket.try_take(&limit, t1));
        assert!(!bucket.try_take(&limit, t1 + Duration::from_secs(9)));
        assert!(bucket.try_take(&limit, t1 + Duration::from_secs(10)));
    }
}
