//! What shapes a simulated tenant: its world, its credentials, its rate limit and the faults it
//! injects, with the range checks that belong to each knob.
//!
//! Command lines live elsewhere (the exporter's `simulate` command): [`SimConfig::validate`]
//! names the field that is wrong with a typed error, and the caller names its flag.

use std::fmt;
use std::time::Duration;

/// The fastest the world may run: a real minute is then about 70 days of the world. Far beyond
/// this, one request would have to play out years of the world at once.
pub const MAX_SPEED: f64 = 100_000.0;

/// Most active sessions of a steady world (about 200 bytes each in the simulator).
pub const MAX_STEADY_ACTIVE: u32 = 5_000_000;

/// Most changes per minute of a steady world: the world keeps 30 days of ended sessions, and
/// starts with a day of them.
pub const MAX_STEADY_CHANGES_PER_MINUTE: f64 = 1_000.0;

/// The connectors of the simulated company's own sites: the fewest a tenant can have, and the
/// default. More are added as generated sites (a network with one connector each).
pub const CATALOG_CONNECTORS: u32 = crate::catalog::connector_count();

/// Most connectors of a tenant.
pub const MAX_CONNECTORS: u32 = 10_000;

/// Most devices a user may have (the tenant's device allowance).
pub const MAX_DEVICES_PER_USER: u32 = 10;

/// Most spells of trouble per connector and day.
pub const MAX_CONNECTOR_SPELLS_PER_DAY: f64 = 100.0;

/// The OAuth2 client secret the simulated API accepts.
///
/// `Debug` and `Display` print `***`, so a configuration can be logged whole. (The exporter has
/// a type like it; the simulator keeps its own because it must not depend on the exporter.)
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The wrapped value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

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

/// One of the probabilities of [`Faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultRate {
    /// [`Faults::rate_429`].
    TooManyRequests,
    /// [`Faults::rate_5xx`].
    ServerError,
    /// [`Faults::rate_slow`].
    Slow,
    /// [`Faults::rate_truncated`].
    Truncated,
    /// [`Faults::rate_duplicates`].
    Duplicates,
    /// [`Faults::rate_spurious_401`].
    Spurious401,
}

impl FaultRate {
    /// The field's name, as the control endpoint's JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            FaultRate::TooManyRequests => "rate_429",
            FaultRate::ServerError => "rate_5xx",
            FaultRate::Slow => "rate_slow",
            FaultRate::Truncated => "rate_truncated",
            FaultRate::Duplicates => "rate_duplicates",
            FaultRate::Spurious401 => "rate_spurious_401",
        }
    }
}

/// What is wrong with a set of [`Faults`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum FaultsError {
    /// A rate is not a probability.
    #[error("{} must be a probability between 0 and 1, not {value}", rate.name())]
    NotAProbability {
        /// Which rate.
        rate: FaultRate,
        /// What it was.
        value: f64,
    },
}

impl Faults {
    /// Checks that every rate is a probability.
    pub fn validate(&self) -> Result<(), FaultsError> {
        let rates = [
            (FaultRate::TooManyRequests, self.rate_429),
            (FaultRate::ServerError, self.rate_5xx),
            (FaultRate::Slow, self.rate_slow),
            (FaultRate::Truncated, self.rate_truncated),
            (FaultRate::Duplicates, self.rate_duplicates),
            (FaultRate::Spurious401, self.rate_spurious_401),
        ];
        for (rate, value) in rates {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::NotAProbability { rate, value });
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
    pub client_secret: ClientSecret,
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
    /// ignored). Its sessions belong to the company's active `users`, several to a user when
    /// there are more sessions than users. The world starts with a day and an hour of history.
    pub steady: Option<Steady>,
    /// Connectors of the tenant, network and host connectors together: at least
    /// [`CATALOG_CONNECTORS`] (the company's own sites); each one more is a generated site, a
    /// network with one connector in some region.
    pub connectors: u32,
    /// Devices over all users, at least one each; `None` lets each user have a laptop and maybe
    /// a phone, as the user's group is wont to.
    pub devices: Option<u32>,
    /// Expected spells of `ONLINE_WITH_ISSUES` per connector and day (a few minutes each).
    pub connector_issues_per_day: f64,
    /// Expected spells per connector and day in which it drops `OFFLINE` on its own (minutes to
    /// an hour each), besides the outages of its region.
    pub connector_outages_per_day: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            users: 500,
            speed: 1.0,
            client_id: "demo".into(),
            client_secret: ClientSecret::new("demo"),
            rate_limit: Some(RateLimit::VENDOR_DEFAULT),
            token_ttl: Duration::from_secs(43_199),
            clock_skew: chrono::Duration::zero(),
            faults: Faults::default(),
            bump_updated_on_traffic: false,
            outages_per_day: 0.5,
            always_on_boost: 1.0,
            steady: None,
            connectors: CATALOG_CONNECTORS,
            devices: None,
            connector_issues_per_day: 0.5,
            connector_outages_per_day: 0.02,
        }
    }
}

impl SimConfig {
    /// The tenant behind the exporter's `--demo`: 5,000 users, an outage every few hours, and a
    /// rate limit (burst 50, one token per 2 s) that takes the first full listing in one burst and
    /// lets an exporter poll every 15 s. Three times the usual share of always-connected devices
    /// keeps sessions starting and ending even on a weekend night: sampled hourly through a week,
    /// every 50-second span after a start holds at least one session end, so a demo shows ends,
    /// durations and traffic within its first minute at any hour. Connectors are troubled far
    /// more often than usual, so that at most moments one or two of them are not `ONLINE`.
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
            connector_issues_per_day: 6.0,
            connector_outages_per_day: 0.5,
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

    /// Checks every knob's range; the first problem found, naming its field.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        if self.users == 0 {
            return Err(SimConfigError::NoUsers);
        }
        if !(self.speed > 0.0 && self.speed <= MAX_SPEED) {
            return Err(SimConfigError::Speed(self.speed));
        }
        if self.client_id.is_empty() {
            return Err(SimConfigError::EmptyClientId);
        }
        if self.client_secret.is_empty() {
            return Err(SimConfigError::EmptyClientSecret);
        }
        if let Some(limit) = &self.rate_limit {
            if limit.burst == 0 {
                return Err(SimConfigError::NoBurst);
            }
            if limit.replenish_rate == 0 {
                return Err(SimConfigError::NoReplenishRate);
            }
            if limit.replenish_time < Duration::from_secs(1) {
                return Err(SimConfigError::ReplenishTimeTooShort);
            }
        }
        if self.token_ttl < Duration::from_secs(1) {
            return Err(SimConfigError::TokenTtlTooShort);
        }
        if !(self.outages_per_day.is_finite() && self.outages_per_day >= 0.0) {
            return Err(SimConfigError::OutagesPerDay);
        }
        if let Some(steady) = &self.steady {
            if !(1..=MAX_STEADY_ACTIVE).contains(&steady.active) {
                return Err(SimConfigError::SteadyActive(steady.active));
            }
            let rate = steady.changes_per_minute;
            if !(rate.is_finite() && (0.0..=MAX_STEADY_CHANGES_PER_MINUTE).contains(&rate)) {
                return Err(SimConfigError::SteadyChangesPerMinute(rate));
            }
        }
        if !(CATALOG_CONNECTORS..=MAX_CONNECTORS).contains(&self.connectors) {
            return Err(SimConfigError::Connectors(self.connectors));
        }
        if let Some(devices) = self.devices {
            let most = u64::from(self.users) * u64::from(MAX_DEVICES_PER_USER);
            if devices < self.users || u64::from(devices) > most {
                return Err(SimConfigError::Devices {
                    devices,
                    users: self.users,
                });
            }
        }
        let spells = 0.0..=MAX_CONNECTOR_SPELLS_PER_DAY;
        if !spells.contains(&self.connector_issues_per_day) {
            return Err(SimConfigError::ConnectorIssues(
                self.connector_issues_per_day,
            ));
        }
        if !spells.contains(&self.connector_outages_per_day) {
            return Err(SimConfigError::ConnectorOutages(
                self.connector_outages_per_day,
            ));
        }
        self.faults.validate().map_err(SimConfigError::Faults)
    }
}

/// What is wrong with a [`SimConfig`]: each variant names the field, and its message says what
/// the field must be (callers prefix the name of their flag or key).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SimConfigError {
    /// [`SimConfig::users`] is 0.
    #[error("must be at least 1")]
    NoUsers,
    /// [`SimConfig::speed`] is not above 0 and at most [`MAX_SPEED`].
    #[error("must be a number above 0 and at most {MAX_SPEED}, not {0}")]
    Speed(f64),
    /// [`SimConfig::client_id`] is empty.
    #[error("must not be empty")]
    EmptyClientId,
    /// [`SimConfig::client_secret`] is empty.
    #[error("must not be empty")]
    EmptyClientSecret,
    /// [`RateLimit::burst`] is 0.
    #[error("must be at least 1")]
    NoBurst,
    /// [`RateLimit::replenish_rate`] is 0.
    #[error("must be at least 1")]
    NoReplenishRate,
    /// [`RateLimit::replenish_time`] is under a second (the header carries whole seconds).
    #[error("must be at least 1s")]
    ReplenishTimeTooShort,
    /// [`SimConfig::token_ttl`] is under a second.
    #[error("must be at least 1s")]
    TokenTtlTooShort,
    /// [`SimConfig::outages_per_day`] is negative or not a number.
    #[error("must be a number, 0 or more")]
    OutagesPerDay,
    /// [`Steady::active`] is 0 or above [`MAX_STEADY_ACTIVE`].
    #[error("must be between 1 and {MAX_STEADY_ACTIVE}, not {0}")]
    SteadyActive(u32),
    /// [`Steady::changes_per_minute`] is negative, not a number or above
    /// [`MAX_STEADY_CHANGES_PER_MINUTE`].
    #[error("must be a number from 0 to {MAX_STEADY_CHANGES_PER_MINUTE}, not {0}")]
    SteadyChangesPerMinute(f64),
    /// [`SimConfig::connectors`] is below [`CATALOG_CONNECTORS`] or above [`MAX_CONNECTORS`].
    #[error("must be between {CATALOG_CONNECTORS} and {MAX_CONNECTORS}, not {0}")]
    Connectors(u32),
    /// [`SimConfig::devices`] is fewer than one a user or more than [`MAX_DEVICES_PER_USER`]
    /// a user.
    #[error(
        "must be at least one a user and at most {MAX_DEVICES_PER_USER} a user \
         ({users} users), not {devices}"
    )]
    Devices {
        /// The devices asked for.
        devices: u32,
        /// The users they are for.
        users: u32,
    },
    /// [`SimConfig::connector_issues_per_day`] is negative, not a number or above
    /// [`MAX_CONNECTOR_SPELLS_PER_DAY`].
    #[error("must be a number from 0 to {MAX_CONNECTOR_SPELLS_PER_DAY}, not {0}")]
    ConnectorIssues(f64),
    /// [`SimConfig::connector_outages_per_day`] is negative, not a number or above
    /// [`MAX_CONNECTOR_SPELLS_PER_DAY`].
    #[error("must be a number from 0 to {MAX_CONNECTOR_SPELLS_PER_DAY}, not {0}")]
    ConnectorOutages(f64),
    /// A fault rate is not a probability.
    #[error("must be a probability between 0 and 1, not {}", match .0 {
        FaultsError::NotAProbability { value, .. } => value,
    })]
    Faults(FaultsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_and_the_demo_are_valid() {
        assert_eq!(SimConfig::default().validate(), Ok(()));
        assert_eq!(SimConfig::demo().validate(), Ok(()));
        assert_eq!(SimConfig::steady(2_000, 10.0).validate(), Ok(()));
    }

    #[test]
    fn each_bad_knob_is_named() {
        let bad = |change: fn(&mut SimConfig)| {
            let mut config = SimConfig::default();
            change(&mut config);
            config.validate().expect_err("refused")
        };
        assert_eq!(bad(|c| c.users = 0), SimConfigError::NoUsers);
        assert!(matches!(bad(|c| c.speed = f64::NAN), SimConfigError::Speed(s) if s.is_nan()));
        assert_eq!(bad(|c| c.speed = 1e9), SimConfigError::Speed(1e9));
        assert_eq!(
            bad(|c| c.client_secret = ClientSecret::new("")),
            SimConfigError::EmptyClientSecret
        );
        assert_eq!(
            bad(|c| c.rate_limit = Some(RateLimit {
                burst: 0,
                ..RateLimit::VENDOR_DEFAULT
            })),
            SimConfigError::NoBurst
        );
        assert_eq!(
            bad(|c| c.steady = Some(Steady {
                active: 0,
                changes_per_minute: 1.0
            })),
            SimConfigError::SteadyActive(0)
        );
        assert_eq!(
            bad(|c| c.connectors = CATALOG_CONNECTORS - 1),
            SimConfigError::Connectors(CATALOG_CONNECTORS - 1)
        );
        assert_eq!(
            bad(|c| c.devices = Some(499)),
            SimConfigError::Devices {
                devices: 499,
                users: 500
            }
        );
        assert_eq!(
            bad(|c| c.devices = Some(5_001)).to_string(),
            "must be at least one a user and at most 10 a user (500 users), not 5001"
        );
        assert!(matches!(
            bad(|c| c.connector_issues_per_day = f64::NAN),
            SimConfigError::ConnectorIssues(_)
        ));
        let mut reference = SimConfig::steady(2_000, 10.0);
        reference.users = 2_000;
        reference.devices = Some(5_000);
        reference.connectors = 50;
        assert_eq!(reference.validate(), Ok(()), "the reference tenant");
        let error = bad(|c| c.faults.rate_5xx = 2.0);
        assert_eq!(
            error.to_string(),
            "must be a probability between 0 and 1, not 2"
        );
        assert_eq!(
            SimConfigError::Speed(0.0).to_string(),
            "must be a number above 0 and at most 100000, not 0"
        );
        assert_eq!(
            Faults {
                rate_429: -1.0,
                ..Faults::default()
            }
            .validate()
            .map_err(|e| e.to_string()),
            Err("rate_429 must be a probability between 0 and 1, not -1".into())
        );
        assert_eq!(format!("{:?}", ClientSecret::new("hunter2")), "***");
    }
}
