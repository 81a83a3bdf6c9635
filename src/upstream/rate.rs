//! Pacing from the API's `X-RateLimit-*` headers, and the wait a 429 imposes.
//!
//! The API is a token bucket (the vendor's default: 20 requests of burst, one more every 15 s) and
//! says where the bucket stands on every response. The [`Pacer`] keeps the last reading and, before
//! each request, waits until the bucket surely holds a token again: from a reading of `remaining`
//! at instant `t`, at least `replenish_rate` tokens have been added once a whole `replenish_time`
//! has passed since `t`, whatever the phase of the server's refill ticks. Because the reading is
//! taken when the response arrives (after the server computed it), the estimate errs on the safe
//! side, so a lone exporter does not meet a 429 in steady state.

use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// The wait after a 429 is at least this long: the vendor's documentation says "retry after 1 minute".
pub const DEFAULT_RATE_LIMITED_FLOOR: Duration = Duration::from_secs(60);

/// The bucket as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// `X-RateLimit-Remaining` of the last response that had it.
    pub remaining: u32,
    /// `X-RateLimit-Burst-Capacity`, if sent.
    pub burst: Option<u32>,
    /// `X-RateLimit-Replenish-Rate`, if sent.
    pub replenish_rate: Option<u32>,
    /// `X-RateLimit-Replenish-Time`, if sent.
    pub replenish_time: Option<Duration>,
}

impl Budget {
    /// Reads the headers; `None` when the response carries no `X-RateLimit-Remaining`.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let number = |name: &str| -> Option<u64> {
            headers
                .get(name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v as u64)
        };
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Some(Self {
            remaining: clamp(number("x-ratelimit-remaining")?),
            burst: number("x-ratelimit-burst-capacity").map(clamp),
            replenish_rate: number("x-ratelimit-replenish-rate")
                .map(clamp)
                .filter(|&r| r > 0),
            replenish_time: number("x-ratelimit-replenish-time")
                .filter(|&t| t > 0)
                .map(Duration::from_secs),
        })
    }

    /// Sustained requests per second the bucket allows, when the headers say.
    pub fn sustained_rate(&self) -> Option<f64> {
        Some(f64::from(self.replenish_rate?) / self.replenish_time?.as_secs_f64())
    }

    /// The time one token takes to come back.
    fn token_time(&self) -> Option<Duration> {
        Some(self.replenish_time? / self.replenish_rate?)
    }
}

/// Decides how long to wait before the next request.
///
/// The estimate of the bucket is the last reading, plus the refills since (whole periods only),
/// less the requests sent since that reading.
#[derive(Debug)]
pub struct Pacer {
    last: Option<Reading>,
    blocked_until: Option<Instant>,
    rate_limited_floor: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Reading {
    budget: Budget,
    at: Instant,
    /// Requests sent since the reading.
    spent: u32,
}

impl Pacer {
    /// A pacer that waits at least `rate_limited_floor` after a 429.
    pub fn new(rate_limited_floor: Duration) -> Self {
        Self {
            last: None,
            blocked_until: None,
            rate_limited_floor,
        }
    }

    /// The last reading of the bucket.
    pub fn budget(&self) -> Option<Budget> {
        self.last.map(|r| r.budget)
    }

    /// Records the headers of a response received at `now`.
    pub fn observe(&mut self, headers: &HeaderMap, now: Instant) {
        if let Some(budget) = Budget::from_headers(headers) {
            self.last = Some(Reading {
                budget,
                at: now,
                spent: 0,
            });
        }
    }

    /// Records a 429 received at `now` (its headers already [observed](Self::observe)) and returns
    /// the wait it imposes: the longest of `Retry-After`, one token's replenish time, and the floor.
    pub fn rate_limited(&mut self, retry_after: Option<Duration>, now: Instant) -> Duration {
        let token_time = self
            .budget()
            .and_then(|b| b.token_time())
            .unwrap_or_default();
        let wait = retry_after
            .unwrap_or_default()
            .max(token_time)
            .max(self.rate_limited_floor);
        self.blocked_until = Some(now + wait);
        // The bucket is empty whatever the last reading said.
        if let Some(r) = &mut self.last {
            r.budget.remaining = 0;
            r.at = now;
            r.spent = 0;
        }
        wait
    }

    /// How long to wait at `now` before sending `need` requests back to back (a token renewal
    /// and the request that uses the token, say).
    pub fn delay(&self, now: Instant, need: u32) -> Duration {
        let blocked = self
            .blocked_until
            .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
        let Some(r) = self.last else {
            return blocked;
        };
        let need = need.max(1).min(r.budget.burst.unwrap_or(u32::MAX).max(1));
        let have = i64::from(r.budget.remaining) - i64::from(r.spent);
        if have >= i64::from(need) {
            return blocked;
        }
        // Without refill headers, a whole floor period stands for "one more token".
        let period = r.budget.replenish_time.unwrap_or(self.rate_limited_floor);
        let rate = i64::from(r.budget.replenish_rate.unwrap_or(1));
        let missing = i64::from(need) - have;
        let periods = (missing + rate - 1) / rate;
        let ready = r.at + period.saturating_mul(u32::try_from(periods).unwrap_or(u32::MAX));
        blocked.max(ready.saturating_duration_since(now))
    }

    /// Counts a request as it leaves.
    pub fn spend(&mut self) {
        if let Some(r) = &mut self.last {
            r.spent = r.spent.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(remaining: u32) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-RateLimit-Remaining", HeaderValue::from(remaining));
        h.insert("X-RateLimit-Burst-Capacity", HeaderValue::from(20));
        h.insert("X-RateLimit-Replenish-Rate", HeaderValue::from(1));
        h.insert("X-RateLimit-Replenish-Time", HeaderValue::from(15));
        h
    }

    #[test]
    fn reads_the_vendor_headers() {
        let b = Budget::from_headers(&headers(7)).unwrap();
        assert_eq!(b.remaining, 7);
        assert_eq!(b.burst, Some(20));
        assert_eq!(b.sustained_rate(), Some(1.0 / 15.0));
        assert_eq!(Budget::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn no_wait_while_tokens_remain_then_one_period_after_the_bucket_empties() {
        let t = Instant::now();
        let mut p = Pacer::new(DEFAULT_RATE_LIMITED_FLOOR);
        assert_eq!(p.delay(t, 1), Duration::ZERO, "nothing known: no wait");
        p.observe(&headers(1), t);
        assert_eq!(p.delay(t, 1), Duration::ZERO);
        assert_eq!(
            p.delay(t, 2),
            Duration::from_secs(15),
            "two requests need one refill"
        );
        p.spend();
        assert_eq!(
            p.delay(t, 1),
            Duration::from_secs(15),
            "the estimate is spent"
        );
        p.observe(&headers(0), t + Duration::from_secs(1));
        assert_eq!(
            p.delay(t + Duration::from_secs(1), 1),
            Duration::from_secs(15)
        );
        assert_eq!(
            p.delay(t + Duration::from_secs(10), 1),
            Duration::from_secs(6)
        );
        assert_eq!(p.delay(t + Duration::from_secs(16), 1), Duration::ZERO);
        assert_eq!(
            p.delay(t + Duration::from_secs(16), 2),
            Duration::from_secs(15)
        );
        // After waiting for two, a request whose answer carries no headers leaves one for the next.
        p.spend();
        assert_eq!(p.delay(t + Duration::from_secs(31), 1), Duration::ZERO);
    }

    #[test]
    fn a_429_waits_the_longest_of_retry_after_token_time_and_the_floor() {
        let t = Instant::now();
        let mut p = Pacer::new(Duration::from_secs(60));
        p.observe(&headers(0), t);
        assert_eq!(p.rate_limited(None, t), Duration::from_secs(60));
        assert_eq!(
            p.delay(t + Duration::from_secs(30), 1),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.rate_limited(Some(Duration::from_secs(120)), t),
            Duration::from_secs(120)
        );
        let mut slow = headers(0);
        slow.insert("X-RateLimit-Replenish-Time", HeaderValue::from(600));
        p.observe(&slow, t);
        assert_eq!(p.rate_limited(None, t), Duration::from_secs(600));
    }
}
