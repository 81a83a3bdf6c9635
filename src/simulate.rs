//! The `simulate` command: serve only the simulated CloudConnexa API, for demos, end-to-end
//! tests and benchmarks.
//!
//! The exporter owns its command line: the flags live here, and the simulator crate checks the
//! ranges of the knobs they set; an error it reports is named here by flag and variable.

use std::future::Future;
use std::time::Duration;

use cloudconnexa_sim::{
    CATALOG_CONNECTORS, ClientSecret, FaultRate, Faults, FaultsError, RateLimit, SimConfig,
    SimConfigError, Simulator, Steady, serve,
};

use crate::duration::{DurationError, parse_duration};
use crate::secret::Secret;

/// Arguments of `cloudconnexa_exporter simulate`. Every flag also reads `CLOUDCONNEXA_SIM_<NAME>`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Where to serve the simulated API, HOST:PORT (port 0 picks a free one).
    #[arg(
        long = "listen-address",
        env = "CLOUDCONNEXA_SIM_LISTEN_ADDRESS",
        value_name = "HOST:PORT"
    )]
    pub listen_address: String,

    /// Seed of the world: the same seed gives the same company and sessions.
    #[arg(long = "seed", env = "CLOUDCONNEXA_SIM_SEED", default_value_t = 1)]
    pub seed: u64,

    /// Number of users in the simulated company.
    #[arg(long = "users", env = "CLOUDCONNEXA_SIM_USERS", default_value_t = 500)]
    pub users: u32,

    /// Time compression: the world runs this many times faster than real time.
    #[arg(long = "speed", env = "CLOUDCONNEXA_SIM_SPEED", default_value_t = 1.0)]
    pub speed: f64,

    /// OAuth2 client id the API accepts.
    #[arg(
        long = "client-id",
        env = "CLOUDCONNEXA_SIM_CLIENT_ID",
        default_value = "demo"
    )]
    pub client_id: String,

    /// OAuth2 client secret the API accepts.
    #[arg(
        long = "client-secret",
        env = "CLOUDCONNEXA_SIM_CLIENT_SECRET",
        default_value = "demo",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub client_secret: Secret,

    /// Rate limit: bucket size (X-RateLimit-Burst-Capacity).
    #[arg(
        long = "rate-limit.burst",
        env = "CLOUDCONNEXA_SIM_RATE_LIMIT_BURST",
        default_value_t = 20
    )]
    pub rate_limit_burst: u32,

    /// Rate limit: tokens added per period (X-RateLimit-Replenish-Rate).
    #[arg(
        long = "rate-limit.replenish-rate",
        env = "CLOUDCONNEXA_SIM_RATE_LIMIT_REPLENISH_RATE",
        default_value_t = 1
    )]
    pub rate_limit_replenish_rate: u32,

    /// Rate limit: the period, whole seconds (X-RateLimit-Replenish-Time).
    #[arg(
        long = "rate-limit.replenish-time",
        env = "CLOUDCONNEXA_SIM_RATE_LIMIT_REPLENISH_TIME",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub rate_limit_replenish_time: Duration,

    /// Lift the rate limit (for load tests).
    #[arg(long = "no-rate-limit", env = "CLOUDCONNEXA_SIM_NO_RATE_LIMIT")]
    pub no_rate_limit: bool,

    /// Lifetime of issued access tokens.
    #[arg(
        long = "token-ttl",
        env = "CLOUDCONNEXA_SIM_TOKEN_TTL",
        default_value = "12h",
        value_parser = parse_duration
    )]
    pub token_ttl: Duration,

    /// Offset of the server's clock from the real one, e.g. 5m or -5m.
    #[arg(
        long = "clock-skew",
        env = "CLOUDCONNEXA_SIM_CLOCK_SKEW",
        default_value = "0",
        allow_hyphen_values = true,
        value_parser = parse_skew
    )]
    pub clock_skew: chrono::Duration,

    /// Expected region outages per day over all regions (0 for none).
    #[arg(
        long = "outages-per-day",
        env = "CLOUDCONNEXA_SIM_OUTAGES_PER_DAY",
        default_value_t = 0.5
    )]
    pub outages_per_day: f64,

    /// A steady world of this many active sessions: no daily rhythm, no outages (for benchmarks).
    #[arg(
        long = "steady-active",
        env = "CLOUDCONNEXA_SIM_STEADY_ACTIVE",
        value_name = "N"
    )]
    pub steady_active: Option<u32>,

    /// Changes per minute of world time in a steady world: each ends an active session and starts
    /// another (needs --steady-active).
    #[arg(
        long = "steady-changes-per-minute",
        env = "CLOUDCONNEXA_SIM_STEADY_CHANGES_PER_MINUTE",
        value_name = "M",
        requires = "steady_active",
        default_value_t = 0.0
    )]
    pub steady_changes_per_minute: f64,

    /// Connectors of the tenant, network and host connectors together; beyond the simulated
    /// company's own, each is a generated site (a network with one connector).
    #[arg(
        long = "connectors",
        env = "CLOUDCONNEXA_SIM_CONNECTORS",
        value_name = "N",
        default_value_t = CATALOG_CONNECTORS
    )]
    pub connectors: u32,

    /// Devices over all users, at least one a user and at most 10 (default: a laptop each and
    /// a phone for some).
    #[arg(long = "devices", env = "CLOUDCONNEXA_SIM_DEVICES", value_name = "N")]
    pub devices: Option<u32>,

    /// Expected spells of ONLINE_WITH_ISSUES per connector and day (a few minutes each).
    #[arg(
        long = "connector-issues-per-day",
        env = "CLOUDCONNEXA_SIM_CONNECTOR_ISSUES_PER_DAY",
        default_value_t = 0.5
    )]
    pub connector_issues_per_day: f64,

    /// Expected spells per connector and day in which it drops OFFLINE on its own (minutes to
    /// an hour each), besides the outages of its region.
    #[arg(
        long = "connector-outages-per-day",
        env = "CLOUDCONNEXA_SIM_CONNECTOR_OUTAGES_PER_DAY",
        default_value_t = 0.02
    )]
    pub connector_outages_per_day: f64,

    /// Let traffic of active sessions bump their updated time.
    #[arg(
        long = "bump-updated-on-traffic",
        env = "CLOUDCONNEXA_SIM_BUMP_UPDATED_ON_TRAFFIC"
    )]
    pub bump_updated_on_traffic: bool,

    /// Fault: probability of a 429 (empty body) regardless of the rate limit.
    #[arg(
        long = "fault.429-rate",
        env = "CLOUDCONNEXA_SIM_FAULT_429_RATE",
        default_value_t = 0.0
    )]
    pub fault_429_rate: f64,

    /// Fault: probability of a 500, 502 or 503.
    #[arg(
        long = "fault.5xx-rate",
        env = "CLOUDCONNEXA_SIM_FAULT_5XX_RATE",
        default_value_t = 0.0
    )]
    pub fault_5xx_rate: f64,

    /// Fault: probability of a slow answer.
    #[arg(
        long = "fault.slow-rate",
        env = "CLOUDCONNEXA_SIM_FAULT_SLOW_RATE",
        default_value_t = 0.0
    )]
    pub fault_slow_rate: f64,

    /// Fault: how slow a slow answer is.
    #[arg(
        long = "fault.slow-delay",
        env = "CLOUDCONNEXA_SIM_FAULT_SLOW_DELAY",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub fault_slow_delay: Duration,

    /// Fault: probability of a JSON body cut short (status 200).
    #[arg(
        long = "fault.truncated-rate",
        env = "CLOUDCONNEXA_SIM_FAULT_TRUNCATED_RATE",
        default_value_t = 0.0
    )]
    pub fault_truncated_rate: f64,

    /// Fault: probability of a page that repeats sessions (within it and on the next page).
    #[arg(
        long = "fault.duplicate-rate",
        env = "CLOUDCONNEXA_SIM_FAULT_DUPLICATE_RATE",
        default_value_t = 0.0
    )]
    pub fault_duplicate_rate: f64,

    /// Fault: probability of a 401 to a valid token.
    #[arg(
        long = "fault.spurious-401-rate",
        env = "CLOUDCONNEXA_SIM_FAULT_SPURIOUS_401_RATE",
        default_value_t = 0.0
    )]
    pub fault_spurious_401_rate: f64,

    /// Fault: answer the same nextCursor forever (pages never end).
    #[arg(
        long = "fault.repeat-cursor",
        env = "CLOUDCONNEXA_SIM_FAULT_REPEAT_CURSOR"
    )]
    pub fault_repeat_cursor: bool,

    /// Fault: credentials revoked (token requests and tokens get 401).
    #[arg(
        long = "fault.revoke-credentials",
        env = "CLOUDCONNEXA_SIM_FAULT_REVOKE_CREDENTIALS"
    )]
    pub fault_revoke_credentials: bool,
}

/// A value of a `simulate` flag that the simulator refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{flag} ({env}): {problem}")]
pub struct SimulateArgsError {
    /// The flag, e.g. `--users`.
    pub flag: &'static str,
    /// Its environment variable, e.g. `CLOUDCONNEXA_SIM_USERS`.
    pub env: String,
    /// What is wrong with its value.
    pub problem: SimConfigError,
}

impl SimulateArgsError {
    fn new(problem: SimConfigError) -> Self {
        let flag = flag_of(&problem);
        let env = format!(
            "CLOUDCONNEXA_SIM_{}",
            flag.trim_start_matches('-')
                .replace(['.', '-'], "_")
                .to_uppercase()
        );
        Self { flag, env, problem }
    }
}

/// The flag that sets the field a configuration error names.
fn flag_of(problem: &SimConfigError) -> &'static str {
    match problem {
        SimConfigError::NoUsers => "--users",
        SimConfigError::Speed(_) => "--speed",
        SimConfigError::EmptyClientId => "--client-id",
        SimConfigError::EmptyClientSecret => "--client-secret",
        SimConfigError::NoBurst => "--rate-limit.burst",
        SimConfigError::NoReplenishRate => "--rate-limit.replenish-rate",
        SimConfigError::ReplenishTimeTooShort => "--rate-limit.replenish-time",
        SimConfigError::TokenTtlTooShort => "--token-ttl",
        SimConfigError::OutagesPerDay => "--outages-per-day",
        SimConfigError::SteadyActive(_) => "--steady-active",
        SimConfigError::SteadyChangesPerMinute(_) => "--steady-changes-per-minute",
        SimConfigError::Connectors(_) => "--connectors",
        SimConfigError::Devices { .. } => "--devices",
        SimConfigError::ConnectorIssues(_) => "--connector-issues-per-day",
        SimConfigError::ConnectorOutages(_) => "--connector-outages-per-day",
        SimConfigError::Faults(FaultsError::NotAProbability { rate, .. }) => match rate {
            FaultRate::TooManyRequests => "--fault.429-rate",
            FaultRate::ServerError => "--fault.5xx-rate",
            FaultRate::Slow => "--fault.slow-rate",
            FaultRate::Truncated => "--fault.truncated-rate",
            FaultRate::Duplicates => "--fault.duplicate-rate",
            FaultRate::Spurious401 => "--fault.spurious-401-rate",
        },
    }
}

fn parse_secret(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(text))
}

/// A duration with an optional sign: `5m`, `+5m`, `-1h30m`.
fn parse_skew(text: &str) -> Result<chrono::Duration, DurationError> {
    let text = text.trim();
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = chrono::Duration::from_std(parse_duration(magnitude)?)
        .map_err(|_| DurationError::TooLarge(text.to_owned()))?;
    Ok(if negative { -magnitude } else { magnitude })
}

impl SimulateArgs {
    /// The simulator's configuration, or what is wrong with the arguments (naming the flag and
    /// its environment variable).
    pub fn to_config(&self) -> Result<SimConfig, SimulateArgsError> {
        let rate_limit = (!self.no_rate_limit).then(|| RateLimit {
            burst: self.rate_limit_burst,
            replenish_rate: self.rate_limit_replenish_rate,
            // The header carries whole seconds.
            replenish_time: if self.rate_limit_replenish_time < Duration::from_secs(1) {
                self.rate_limit_replenish_time
            } else {
                Duration::from_secs(self.rate_limit_replenish_time.as_secs())
            },
        });
        let steady = self.steady_active.map(|active| Steady {
            active,
            changes_per_minute: self.steady_changes_per_minute,
        });
        let mut config = SimConfig {
            seed: self.seed,
            users: self.users,
            speed: self.speed,
            client_id: self.client_id.clone(),
            client_secret: ClientSecret::new(self.client_secret.expose()),
            rate_limit,
            token_ttl: self.token_ttl,
            clock_skew: self.clock_skew,
            faults: Faults {
                rate_429: self.fault_429_rate,
                rate_5xx: self.fault_5xx_rate,
                rate_slow: self.fault_slow_rate,
                slow_delay: self.fault_slow_delay,
                rate_truncated: self.fault_truncated_rate,
                rate_duplicates: self.fault_duplicate_rate,
                rate_spurious_401: self.fault_spurious_401_rate,
                repeat_cursor: self.fault_repeat_cursor,
                revoke_credentials: self.fault_revoke_credentials,
            },
            bump_updated_on_traffic: self.bump_updated_on_traffic,
            connectors: self.connectors,
            devices: self.devices,
            connector_issues_per_day: self.connector_issues_per_day,
            connector_outages_per_day: self.connector_outages_per_day,
            outages_per_day: self.outages_per_day,
            steady,
            always_on_boost: 1.0,
        };
        config.validate().map_err(SimulateArgsError::new)?;
        // A steady world has no outages (checked as given all the same).
        if config.steady.is_some() {
            config.outages_per_day = 0.0;
        }
        Ok(config)
    }
}

/// Runs the `simulate` command: builds the world, binds the address and serves until
/// `shutdown` completes.
pub async fn run_simulate(
    args: SimulateArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = args
        .to_config()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let sim = Simulator::new(config.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen_address).await?;
    let address = listener.local_addr()?;
    tracing::info!(
        address = %address,
        client_id = %config.client_id,
        users = config.users,
        seed = config.seed,
        speed = config.speed,
        rate_limit = ?config.rate_limit,
        steady = ?config.steady,
        connectors = config.connectors,
        devices = ?config.devices,
        "simulated CloudConnexa API listening"
    );
    serve(listener, sim, shutdown).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parse(argv: &[&str]) -> Result<SimConfig, String> {
        let command =
            Command::try_parse_from(std::iter::once("simulate").chain(argv.iter().copied()))
                .map_err(|e| e.to_string())?;
        command.args.to_config().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_vendors() {
        let config = parse(&["--listen-address", "127.0.0.1:0"]).expect("valid");
        assert_eq!(config.rate_limit, Some(RateLimit::VENDOR_DEFAULT));
        assert_eq!(config.client_id, "demo");
        assert_eq!(config.client_secret.expose(), "demo");
        assert_eq!(config.token_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(config.users, 500);
        assert_eq!(
            config.faults,
            Faults {
                slow_delay: Duration::from_secs(5),
                ..Faults::default()
            }
        );
    }

    #[test]
    fn flags_shape_the_config() {
        let config = parse(&[
            "--listen-address=127.0.0.1:0",
            "--clock-skew",
            "-5m",
            "--no-rate-limit",
            "--fault.5xx-rate=0.25",
            "--fault.repeat-cursor",
            "--speed=60",
        ])
        .expect("valid");
        assert_eq!(config.clock_skew, chrono::Duration::minutes(-5));
        assert_eq!(config.rate_limit, None);
        assert_eq!(config.faults.rate_5xx, 0.25);
        assert!(config.faults.repeat_cursor);
        assert_eq!(config.speed, 60.0);
    }

    #[test]
    fn steady_flags_make_a_steady_world_without_outages() {
        let config = parse(&[
            "--listen-address=127.0.0.1:0",
            "--steady-active=2000",
            "--steady-changes-per-minute=10",
        ])
        .expect("valid");
        assert_eq!(
            config.steady,
            Some(Steady {
                active: 2_000,
                changes_per_minute: 10.0
            })
        );
        assert_eq!(config.outages_per_day, 0.0);
        let still = parse(&["--listen-address=x:0", "--steady-active=5"]).expect("valid");
        assert_eq!(still.steady.map(|s| s.changes_per_minute), Some(0.0));
        assert_eq!(
            parse(&["--listen-address=x:0"]).expect("valid").steady,
            None
        );
        assert!(
            parse(&["--listen-address=x:0", "--steady-changes-per-minute=3"]).is_err(),
            "a rate needs a population"
        );
        for bad in [
            &["--steady-active=0"][..],
            &["--steady-active=10", "--steady-changes-per-minute=-1"],
            &["--steady-active=10", "--steady-changes-per-minute=NaN"],
            &["--steady-active=10", "--steady-changes-per-minute=1e6"],
        ] {
            let mut argv = vec!["--listen-address=x:0"];
            argv.extend_from_slice(bad);
            let error = parse(&argv).expect_err("refused");
            assert!(error.contains("CLOUDCONNEXA_SIM_STEADY_"), "{error}");
        }
    }

    #[test]
    fn size_flags_make_the_reference_tenant() {
        let config = parse(&[
            "--listen-address=x:0",
            "--steady-active=2000",
            "--steady-changes-per-minute=10",
            "--users=2000",
            "--devices=5000",
            "--connectors=50",
        ])
        .expect("valid");
        assert_eq!(
            (config.users, config.devices, config.connectors),
            (2_000, Some(5_000), 50)
        );
        let default = parse(&["--listen-address=x:0"]).expect("valid");
        assert_eq!(
            (default.devices, default.connectors),
            (None, CATALOG_CONNECTORS)
        );
        for (argv, named) in [
            (
                "--connectors=3",
                "--connectors (CLOUDCONNEXA_SIM_CONNECTORS)",
            ),
            ("--devices=10", "--devices (CLOUDCONNEXA_SIM_DEVICES)"),
            (
                "--connector-issues-per-day=-1",
                "--connector-issues-per-day (CLOUDCONNEXA_SIM_CONNECTOR_ISSUES_PER_DAY)",
            ),
            (
                "--connector-outages-per-day=NaN",
                "--connector-outages-per-day (CLOUDCONNEXA_SIM_CONNECTOR_OUTAGES_PER_DAY)",
            ),
        ] {
            let error = parse(&["--listen-address=x:0", argv]).expect_err("refused");
            assert!(error.starts_with(named), "{error}");
        }
    }

    #[test]
    fn bad_values_name_the_flag_and_its_variable() {
        let error = parse(&["--listen-address=x:0", "--fault.429-rate=1.5"]).expect_err("refused");
        assert!(
            error.contains("--fault.429-rate (CLOUDCONNEXA_SIM_FAULT_429_RATE)"),
            "{error}"
        );
        for speed in ["--speed=0", "--speed=-1", "--speed=1e9", "--speed=NaN"] {
            let error = parse(&["--listen-address=x:0", speed]).expect_err("refused");
            assert!(error.contains("CLOUDCONNEXA_SIM_SPEED"), "{error}");
        }
        assert!(parse(&["--listen-address=x:0", "--token-ttl=soon"]).is_err());
        assert!(parse(&[]).is_err(), "the address is required");
    }
}
