//! Command line and environment configuration.
//!
//! Flags follow the Prometheus exporters' dotted style, and each reads an environment variable
//! (`--cloudconnexa.*` -> `CLOUDCONNEXA_*`, the rest -> `CLOUDCONNEXA_EXPORTER_*`); a flag on the
//! command line wins. Values arrive as strings and are validated here rather than by clap, so that
//! every mistake is reported on one line that names the flag, its variable and the problem, and the
//! process exits with status 2.
//!
//! Each flag's name and variable are written once, in its `#[arg]`; errors look them up in clap's
//! own metadata by the flag's [`id`], so a renamed flag cannot leave a stale message behind.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};
use reqwest::Url;

use crate::collectors::CollectorName;
use crate::collectors::sessions::PollConfig;
use crate::duration::parse_duration;
use crate::secret::Secret;
use crate::tracker::{Dimension, SeriesConfig};
use crate::upstream::client::{ApiVersion, ClientConfig, RetryPolicy};
use crate::web::WebConfig;

/// The port the exporter listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9839;

/// The default of `--sessions.counter-labels`, less the dimensions `--sessions.labels` leaves out.
/// The README's cardinality section gives the measurements behind it.
pub const DEFAULT_COUNTER_LABELS: [Dimension; 3] = [
    Dimension::VpnRegion,
    Dimension::Network,
    Dimension::UserGroup,
];

/// The default of `--sessions.series-ttl`.
pub const DEFAULT_SERIES_TTL: &str = "7d";

/// The default of `--sessions.max-label-sets`.
pub const DEFAULT_MAX_LABEL_SETS: &str = "10000";

/// The shortest `--sessions.series-ttl` other than 0 (off).
const MIN_SERIES_TTL: Duration = Duration::from_secs(60);

/// The poll interval in `--demo` mode when `--poll.interval` is not given: the simulated tenant's
/// rate limit is more generous than the vendor's default, so the demo shows changes quickly.
pub const DEMO_POLL_INTERVAL: Duration = Duration::from_secs(15);

/// `cloudconnexa_exporter`: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "cloudconnexa_exporter",
    version,
    about = "Prometheus exporter for OpenVPN CloudConnexa sessions",
    long_about = "Prometheus exporter for OpenVPN CloudConnexa: polls the CloudConnexa API in the \
        background and serves active sessions, session starts and ends, failures and traffic as \
        Prometheus metrics. Every flag also reads the environment variable shown with it.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// A subcommand; without one, the exporter runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The exporter's flags.
    #[command(flatten)]
    pub exporter: ExporterArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve only the simulated CloudConnexa API (client id `demo`, secret `demo`), for demos,
    /// end-to-end tests and benchmarks.
    Simulate(crate::simulate::SimulateArgs),
}

/// The ids of the exporter's flags (clap's name for each argument), shared by their `#[arg]` and
/// the errors that name them.
pub mod id {
    /// `--cloudconnexa.url`.
    pub const URL: &str = "url";
    /// `--cloudconnexa.cloud-id`.
    pub const CLOUD_ID: &str = "cloud_id";
    /// `--cloudconnexa.client-id`.
    pub const CLIENT_ID: &str = "client_id";
    /// `--cloudconnexa.client-secret`.
    pub const CLIENT_SECRET: &str = "client_secret";
    /// `--cloudconnexa.client-secret-file`.
    pub const CLIENT_SECRET_FILE: &str = "client_secret_file";
    /// `--cloudconnexa.api-version`.
    pub const API_VERSION: &str = "api_version";
    /// `--cloudconnexa.timeout`.
    pub const TIMEOUT: &str = "timeout";
    /// `--poll.interval`.
    pub const POLL_INTERVAL: &str = "poll_interval";
    /// `--poll.resync-interval`.
    pub const RESYNC_INTERVAL: &str = "resync_interval";
    /// `--sessions.labels`.
    pub const LABELS: &str = "labels";
    /// `--sessions.counter-labels`.
    pub const COUNTER_LABELS: &str = "counter_labels";
    /// `--sessions.series-ttl`.
    pub const SERIES_TTL: &str = "series_ttl";
    /// `--sessions.max-label-sets`.
    pub const MAX_LABEL_SETS: &str = "max_label_sets";
    /// `--web.listen-address`.
    pub const LISTEN_ADDRESS: &str = "listen_address";
    /// `--web.probe-listen-address`.
    pub const PROBE_LISTEN_ADDRESS: &str = "probe_listen_address";
    /// `--web.telemetry-path`.
    pub const TELEMETRY_PATH: &str = "telemetry_path";
    /// `--web.config.file`.
    pub const WEB_CONFIG_FILE: &str = "web_config_file";
    /// `--log.level`.
    pub const LOG_LEVEL: &str = "log_level";
    /// `--log.format`.
    pub const LOG_FORMAT: &str = "log_format";
    /// `--collector.sessions`.
    pub const COLLECTOR_SESSIONS: &str = "collector_sessions";
    /// `--no-collector.sessions`.
    pub const NO_COLLECTOR_SESSIONS: &str = "no_collector_sessions";
    /// `--collector.connectors`.
    pub const COLLECTOR_CONNECTORS: &str = "collector_connectors";
    /// `--no-collector.connectors`.
    pub const NO_COLLECTOR_CONNECTORS: &str = "no_collector_connectors";
    /// `--collector.connectors.interval`.
    pub const CONNECTORS_INTERVAL: &str = "connectors_interval";
    /// `--collector.users`.
    pub const COLLECTOR_USERS: &str = "collector_users";
    /// `--no-collector.users`.
    pub const NO_COLLECTOR_USERS: &str = "no_collector_users";
    /// `--collector.users.interval`.
    pub const USERS_INTERVAL: &str = "users_interval";
    /// `--collector.regions`.
    pub const COLLECTOR_REGIONS: &str = "collector_regions";
    /// `--no-collector.regions`.
    pub const NO_COLLECTOR_REGIONS: &str = "no_collector_regions";
    /// `--collector.regions.interval`.
    pub const REGIONS_INTERVAL: &str = "regions_interval";
}

/// The exporter's flags, as given.
#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// API base URL, e.g. https://acme.api.openvpn.com (http only for loopback hosts).
    #[arg(id = id::URL, long = "cloudconnexa.url", env = "CLOUDCONNEXA_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Shorthand for the URL: `acme` means https://acme.api.openvpn.com.
    #[arg(
        id = id::CLOUD_ID,
        long = "cloudconnexa.cloud-id",
        env = "CLOUDCONNEXA_CLOUD_ID",
        value_name = "ID"
    )]
    pub cloud_id: Option<String>,
    /// OAuth2 client id of the API credentials.
    #[arg(
        id = id::CLIENT_ID,
        long = "cloudconnexa.client-id",
        env = "CLOUDCONNEXA_CLIENT_ID",
        value_name = "ID"
    )]
    pub client_id: Option<String>,
    /// OAuth2 client secret (prefer --cloudconnexa.client-secret-file).
    #[arg(
        id = id::CLIENT_SECRET,
        long = "cloudconnexa.client-secret",
        env = "CLOUDCONNEXA_CLIENT_SECRET",
        value_name = "SECRET",
        value_parser = parse_secret,
        hide_env_values = true
    )]
    pub client_secret: Option<Secret>,
    /// File holding the client secret (a trailing newline is ignored).
    #[arg(
        id = id::CLIENT_SECRET_FILE,
        long = "cloudconnexa.client-secret-file",
        env = "CLOUDCONNEXA_CLIENT_SECRET_FILE",
        value_name = "PATH"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// API version: v1 or beta.
    #[arg(
        id = id::API_VERSION,
        long = "cloudconnexa.api-version",
        env = "CLOUDCONNEXA_API_VERSION",
        default_value = "v1",
        value_name = "VERSION"
    )]
    pub api_version: String,
    /// Timeout of one API request, body included.
    #[arg(
        id = id::TIMEOUT,
        long = "cloudconnexa.timeout",
        env = "CLOUDCONNEXA_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub timeout: String,
    /// Time between poll cycles (at least 1s) [default: 60s, 15s with --demo].
    #[arg(
        id = id::POLL_INTERVAL,
        long = "poll.interval",
        env = "CLOUDCONNEXA_EXPORTER_POLL_INTERVAL",
        value_name = "DURATION"
    )]
    pub poll_interval: Option<String>,
    /// Shortest time between two full listings of active sessions; stretched when the API's rate
    /// limit needs it.
    #[arg(
        id = id::RESYNC_INTERVAL,
        long = "poll.resync-interval",
        env = "CLOUDCONNEXA_EXPORTER_POLL_RESYNC_INTERVAL",
        default_value = "5m",
        value_name = "DURATION"
    )]
    pub resync_interval: String,
    /// Comma list of session dimensions to label by: vpn_region, network, host, connector,
    /// user_group, protocol, os_type.
    #[arg(
        id = id::LABELS,
        long = "sessions.labels",
        env = "CLOUDCONNEXA_EXPORTER_SESSIONS_LABELS",
        default_value = "vpn_region,network,user_group,protocol,os_type",
        value_name = "LIST"
    )]
    pub labels: String,
    /// Comma list of session dimensions to label the counters by (started, ended, failed, bytes)
    /// [default: vpn_region,network,user_group, less those --sessions.labels leaves out].
    #[arg(
        id = id::COUNTER_LABELS,
        long = "sessions.counter-labels",
        env = "CLOUDCONNEXA_EXPORTER_SESSIONS_COUNTER_LABELS",
        value_name = "LIST"
    )]
    pub counter_labels: Option<String>,
    /// How long a label set of the session counters stays exported once its counters stop moving
    /// and no tracked session holds it, on the API server's clock; 0 keeps it for ever.
    #[arg(
        id = id::SERIES_TTL,
        long = "sessions.series-ttl",
        env = "CLOUDCONNEXA_EXPORTER_SESSIONS_SERIES_TTL",
        default_value = DEFAULT_SERIES_TTL,
        value_name = "DURATION"
    )]
    pub series_ttl: String,
    /// Most label sets of their own for the active gauge, and for the counters; later ones are
    /// counted under a label set whose every value is "other".
    #[arg(
        id = id::MAX_LABEL_SETS,
        long = "sessions.max-label-sets",
        env = "CLOUDCONNEXA_EXPORTER_SESSIONS_MAX_LABEL_SETS",
        default_value = DEFAULT_MAX_LABEL_SETS,
        value_name = "N"
    )]
    pub max_label_sets: String,
    /// Address to serve on.
    #[arg(
        id = id::LISTEN_ADDRESS,
        long = "web.listen-address",
        env = "CLOUDCONNEXA_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = ":9839",
        value_name = "ADDRESS"
    )]
    pub listen_address: String,
    /// A second address serving only /healthz and /readyz, in plain HTTP and without
    /// authentication whatever --web.config.file says, for health probes (Kubernetes' kubelet).
    #[arg(
        id = id::PROBE_LISTEN_ADDRESS,
        long = "web.probe-listen-address",
        env = "CLOUDCONNEXA_EXPORTER_WEB_PROBE_LISTEN_ADDRESS",
        value_name = "ADDRESS"
    )]
    pub probe_listen_address: Option<String>,
    /// Path under which to serve metrics.
    #[arg(
        id = id::TELEMETRY_PATH,
        long = "web.telemetry-path",
        env = "CLOUDCONNEXA_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,
    /// TLS and basic-auth configuration in the Prometheus exporter-toolkit format.
    #[arg(
        id = id::WEB_CONFIG_FILE,
        long = "web.config.file",
        env = "CLOUDCONNEXA_EXPORTER_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub web_config_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug.
    #[arg(
        id = id::LOG_LEVEL,
        long = "log.level",
        env = "CLOUDCONNEXA_EXPORTER_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log_level: String,
    /// Log format: logfmt or json.
    #[arg(
        id = id::LOG_FORMAT,
        long = "log.format",
        env = "CLOUDCONNEXA_EXPORTER_LOG_FORMAT",
        default_value = "logfmt",
        value_name = "FORMAT"
    )]
    pub log_format: String,
    /// Run against the built-in simulated tenant; no credentials needed.
    #[arg(long = "demo", env = "CLOUDCONNEXA_EXPORTER_DEMO")]
    pub demo: bool,
    /// The collectors, each on or off, with their intervals.
    #[command(flatten)]
    pub collectors: CollectorArgs,
}

/// `--[no-]collector.NAME` and `--collector.NAME.interval`. Each collector has a flag that takes
/// an optional boolean (`--collector.users`, `--collector.users=false`, or its environment
/// variable set to `false`) and a `--no-` form; the last given on the command line wins.
#[derive(Debug, Args)]
pub struct CollectorArgs {
    /// Collect sessions (everything the session metrics show).
    #[arg(
        id = id::COLLECTOR_SESSIONS,
        long = "collector.sessions",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_SESSIONS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
        action = ArgAction::Set,
        overrides_with = id::NO_COLLECTOR_SESSIONS
    )]
    pub sessions: bool,
    /// Do not collect sessions.
    #[arg(id = id::NO_COLLECTOR_SESSIONS, long = "no-collector.sessions", overrides_with = id::COLLECTOR_SESSIONS)]
    pub no_sessions: bool,
    /// Collect network and host connectors and their state.
    #[arg(
        id = id::COLLECTOR_CONNECTORS,
        long = "collector.connectors",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_CONNECTORS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
        action = ArgAction::Set,
        overrides_with = id::NO_COLLECTOR_CONNECTORS
    )]
    pub connectors: bool,
    /// Do not collect connectors.
    #[arg(id = id::NO_COLLECTOR_CONNECTORS, long = "no-collector.connectors", overrides_with = id::COLLECTOR_CONNECTORS)]
    pub no_connectors: bool,
    /// Time between runs of the connectors collector (at least 1s) [default: 3m, 30s with --demo].
    #[arg(
        id = id::CONNECTORS_INTERVAL,
        long = "collector.connectors.interval",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_CONNECTORS_INTERVAL",
        value_name = "DURATION"
    )]
    pub connectors_interval: Option<String>,
    /// Collect users and their devices (counts only, never names).
    #[arg(
        id = id::COLLECTOR_USERS,
        long = "collector.users",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_USERS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
        action = ArgAction::Set,
        overrides_with = id::NO_COLLECTOR_USERS
    )]
    pub users: bool,
    /// Do not collect users and devices.
    #[arg(id = id::NO_COLLECTOR_USERS, long = "no-collector.users", overrides_with = id::COLLECTOR_USERS)]
    pub no_users: bool,
    /// Time between runs of the users collector (at least 1s) [default: 15m, 1m with --demo].
    #[arg(
        id = id::USERS_INTERVAL,
        long = "collector.users.interval",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_USERS_INTERVAL",
        value_name = "DURATION"
    )]
    pub users_interval: Option<String>,
    /// Collect the VPN region catalogue.
    #[arg(
        id = id::COLLECTOR_REGIONS,
        long = "collector.regions",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_REGIONS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
        action = ArgAction::Set,
        overrides_with = id::NO_COLLECTOR_REGIONS
    )]
    pub regions: bool,
    /// Do not collect the VPN regions.
    #[arg(id = id::NO_COLLECTOR_REGIONS, long = "no-collector.regions", overrides_with = id::COLLECTOR_REGIONS)]
    pub no_regions: bool,
    /// Time between runs of the regions collector (at least 1s) [default: 1h, 10m with --demo].
    #[arg(
        id = id::REGIONS_INTERVAL,
        long = "collector.regions.interval",
        env = "CLOUDCONNEXA_EXPORTER_COLLECTOR_REGIONS_INTERVAL",
        value_name = "DURATION"
    )]
    pub regions_interval: Option<String>,
}

/// Which collectors run, and how often. `None` is a disabled collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collectors {
    /// The sessions collector (its schedule is [`Config::poll`]).
    pub sessions: bool,
    /// The connectors collector's interval.
    pub connectors: Option<Duration>,
    /// The users collector's interval.
    pub users: Option<Duration>,
    /// The regions collector's interval.
    pub regions: Option<Duration>,
}

/// The default of an interval flag, and its default in `--demo` mode, whose simulated tenant has
/// a generous rate limit so the demo shows changes quickly (see the README's "What each
/// collector costs" for the costs behind the others).
#[derive(Debug, Clone, Copy)]
struct IntervalDefault {
    normal: Duration,
    demo: Duration,
}

/// `--poll.interval`.
const POLL_INTERVAL: IntervalDefault = IntervalDefault {
    normal: Duration::from_secs(60),
    demo: DEMO_POLL_INTERVAL,
};
/// `--collector.connectors.interval`.
const CONNECTORS_INTERVAL: IntervalDefault = IntervalDefault {
    normal: Duration::from_secs(180),
    demo: Duration::from_secs(30),
};
/// `--collector.users.interval`.
const USERS_INTERVAL: IntervalDefault = IntervalDefault {
    normal: Duration::from_secs(900),
    demo: Duration::from_secs(60),
};
/// `--collector.regions.interval`.
const REGIONS_INTERVAL: IntervalDefault = IntervalDefault {
    normal: Duration::from_secs(3600),
    demo: Duration::from_secs(600),
};

/// An interval flag (`flag` its id): the text given, else its default; at least 1s.
fn parse_interval(
    flag: &str,
    text: Option<&str>,
    default: IntervalDefault,
    demo: bool,
) -> Result<Duration, ConfigError> {
    let value = match text {
        Some(text) => parse_duration(text).map_err(|e| ConfigError::new(flag, e))?,
        None if demo => default.demo,
        None => default.normal,
    };
    if value < Duration::from_secs(1) {
        return Err(ConfigError::new(
            flag,
            format!("must be at least 1s, got {value:?}"),
        ));
    }
    Ok(value)
}

impl CollectorArgs {
    fn to_collectors(&self, demo: bool) -> Result<Collectors, ConfigError> {
        let interval = |flag: &str, text: &Option<String>, default| {
            parse_interval(flag, text.as_deref(), default, demo)
        };
        let enabled = |on: bool, off: bool| on && !off;
        let collectors = Collectors {
            sessions: enabled(self.sessions, self.no_sessions),
            connectors: enabled(self.connectors, self.no_connectors)
                .then(|| {
                    interval(
                        id::CONNECTORS_INTERVAL,
                        &self.connectors_interval,
                        CONNECTORS_INTERVAL,
                    )
                })
                .transpose()?,
            users: enabled(self.users, self.no_users)
                .then(|| interval(id::USERS_INTERVAL, &self.users_interval, USERS_INTERVAL))
                .transpose()?,
            regions: enabled(self.regions, self.no_regions)
                .then(|| {
                    interval(
                        id::REGIONS_INTERVAL,
                        &self.regions_interval,
                        REGIONS_INTERVAL,
                    )
                })
                .transpose()?,
        };
        if collectors.enabled().is_empty() {
            return Err(ConfigError::new(
                id::COLLECTOR_SESSIONS,
                "every collector is disabled: enable at least one",
            ));
        }
        Ok(collectors)
    }
}

impl Collectors {
    /// The `collector` labels of the enabled collectors, in [`CollectorName::ALL`] order.
    pub fn enabled(&self) -> Vec<CollectorName> {
        CollectorName::ALL
            .into_iter()
            .filter(|name| match name {
                CollectorName::Sessions => self.sessions,
                CollectorName::Connectors => self.connectors.is_some(),
                CollectorName::Users => self.users.is_some(),
                CollectorName::Regions => self.regions.is_some(),
            })
            .collect()
    }
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value))
}

/// A configuration mistake: which flag, which variable, what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} ({env}): {problem}")]
pub struct ConfigError {
    /// The flag, e.g. `--poll.interval`.
    pub flag: String,
    /// Its environment variable.
    pub env: String,
    /// What is wrong.
    pub problem: String,
}

impl ConfigError {
    /// The mistake `problem` in the flag with clap id `id`.
    pub fn new(id: &str, problem: impl fmt::Display) -> Self {
        let (flag, env) = names(id);
        Self {
            flag,
            env,
            problem: problem.to_string(),
        }
    }
}

/// `--flag (VARIABLE)` of the flag with clap id `id`, for messages that point at another flag.
pub fn flag_and_env(id: &str) -> String {
    let (flag, env) = names(id);
    format!("{flag} ({env})")
}

/// The long name and environment variable of the flag with clap id `id`, from clap's metadata.
fn names(id: &str) -> (String, String) {
    static COMMAND: OnceLock<clap::Command> = OnceLock::new();
    let command = COMMAND.get_or_init(|| ExporterArgs::augment_args(clap::Command::new("x")));
    let arg = command.get_arguments().find(|a| a.get_id() == id);
    let flag = arg
        .and_then(clap::Arg::get_long)
        .map_or_else(|| id.to_owned(), |long| format!("--{long}"));
    let env = arg
        .and_then(clap::Arg::get_env)
        .map_or_else(String::new, |env| env.to_string_lossy().into_owned());
    (flag, env)
}

/// Where the sessions come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A CloudConnexa tenant.
    Api(Box<ClientConfig>),
    /// The built-in simulated tenant.
    Demo,
}

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Everything, including each request's pacing.
    Debug,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where sessions come from.
    pub source: Source,
    /// Request timeout and retries, also used with the demo tenant.
    pub request_timeout: Duration,
    /// The poll loop.
    pub poll: PollConfig,
    /// Labels, lifetime and cap of the session series.
    pub series: SeriesConfig,
    /// The collectors.
    pub collectors: Collectors,
    /// Address to serve on, `host:port`.
    pub listen_address: String,
    /// Address serving only the health probes, without TLS or authentication, if any.
    pub probe_listen_address: Option<String>,
    /// Metrics path.
    pub telemetry_path: String,
    /// The web configuration as loaded and checked at start; re-read while serving.
    pub web_config: Option<Arc<WebConfig>>,
    /// Log level.
    pub log_level: LogLevel,
    /// Log format.
    pub log_format: LogFormat,
}

impl Config {
    /// Validates the flags.
    pub fn from_args(args: ExporterArgs) -> Result<Self, ConfigError> {
        let request_timeout =
            parse_duration(&args.timeout).map_err(|e| ConfigError::new(id::TIMEOUT, e))?;
        if request_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new(id::TIMEOUT, "must be at least 1s"));
        }
        let source = if args.demo {
            Source::Demo
        } else {
            Source::Api(Box::new(client_config(&args, request_timeout)?))
        };
        let interval = parse_interval(
            id::POLL_INTERVAL,
            args.poll_interval.as_deref(),
            POLL_INTERVAL,
            args.demo,
        )?;
        let resync_interval = parse_duration(&args.resync_interval)
            .map_err(|e| ConfigError::new(id::RESYNC_INTERVAL, e))?;
        let poll = PollConfig {
            interval,
            resync_interval: resync_interval.max(interval),
            ..PollConfig::default()
        };
        Ok(Self {
            source,
            request_timeout,
            poll,
            series: series_config(&args)?,
            collectors: args.collectors.to_collectors(args.demo)?,
            listen_address: parse_listen_address(id::LISTEN_ADDRESS, &args.listen_address)?,
            probe_listen_address: args
                .probe_listen_address
                .as_deref()
                .map(|a| parse_listen_address(id::PROBE_LISTEN_ADDRESS, a))
                .transpose()?,
            telemetry_path: parse_telemetry_path(&args.telemetry_path)?,
            web_config: load_web_config(args.web_config_file.as_deref())?,
            log_level: match args.log_level.to_ascii_lowercase().as_str() {
                "error" => LogLevel::Error,
                "warn" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                other => {
                    return Err(ConfigError::new(
                        id::LOG_LEVEL,
                        format!("unknown level {other:?}: use error, warn, info or debug"),
                    ));
                }
            },
            log_format: match args.log_format.to_ascii_lowercase().as_str() {
                "logfmt" => LogFormat::Logfmt,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::new(
                        id::LOG_FORMAT,
                        format!("unknown format {other:?}: use logfmt or json"),
                    ));
                }
            },
        })
    }
}

fn client_config(
    args: &ExporterArgs,
    request_timeout: Duration,
) -> Result<ClientConfig, ConfigError> {
    let base_url = match (&args.url, &args.cloud_id) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                id::URL,
                format!(
                    "give either the URL or {}, not both",
                    flag_and_env(id::CLOUD_ID)
                ),
            ));
        }
        (None, None) => {
            return Err(ConfigError::new(
                id::URL,
                format!(
                    "missing: give the API URL or {}, or run with --demo",
                    flag_and_env(id::CLOUD_ID)
                ),
            ));
        }
        (Some(url), None) => parse_base_url(url)?,
        (None, Some(cloud_id)) => {
            let cloud_id = cloud_id.trim();
            let valid = cloud_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if cloud_id.is_empty() || !valid {
                return Err(ConfigError::new(
                    id::CLOUD_ID,
                    format!(
                        "{cloud_id:?} is not a cloud id (letters, digits and dashes, e.g. acme)"
                    ),
                ));
            }
            Url::parse(&format!(
                "https://{}.api.openvpn.com",
                cloud_id.to_ascii_lowercase()
            ))
            .map_err(|e| ConfigError::new(id::CLOUD_ID, e))?
        }
    };
    let client_id = args
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|client_id| !client_id.is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                id::CLIENT_ID,
                "missing: the OAuth2 client id of the API credentials",
            )
        })?
        .to_owned();
    let client_secret = match (&args.client_secret, &args.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                id::CLIENT_SECRET,
                format!(
                    "give either the secret or {}, not both",
                    flag_and_env(id::CLIENT_SECRET_FILE)
                ),
            ));
        }
        (None, None) => {
            return Err(ConfigError::new(
                id::CLIENT_SECRET_FILE,
                format!(
                    "missing: give a file holding the client secret, or {}",
                    flag_and_env(id::CLIENT_SECRET)
                ),
            ));
        }
        (Some(secret), None) if secret.is_empty() => {
            return Err(ConfigError::new(id::CLIENT_SECRET, "empty"));
        }
        (Some(secret), None) => secret.clone(),
        (None, Some(path)) => read_secret_file(path)?,
    };
    let api_version = match args.api_version.to_ascii_lowercase().as_str() {
        "v1" => ApiVersion::V1,
        "beta" => ApiVersion::Beta,
        other => {
            return Err(ConfigError::new(
                id::API_VERSION,
                format!("unknown version {other:?}: use v1 or beta"),
            ));
        }
    };
    Ok(ClientConfig {
        base_url,
        api_version,
        client_id,
        client_secret,
        request_timeout,
        retry: RetryPolicy::default(),
    })
}

fn parse_base_url(text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text.trim())
        .map_err(|e| ConfigError::new(id::URL, format!("{text:?} is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ConfigError::new(
                id::URL,
                format!("plain http is allowed only for loopback hosts; use https://{host}"),
            ));
        }
        other => {
            return Err(ConfigError::new(
                id::URL,
                format!("unsupported scheme {other:?}: use https"),
            ));
        }
    }
    if host.is_empty() {
        return Err(ConfigError::new(id::URL, format!("{text:?} has no host")));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(ConfigError::new(
            id::URL,
            "give only scheme, host and port (no credentials, query or fragment)",
        ));
    }
    Ok(url)
}

fn read_secret_file(path: &std::path::Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            id::CLIENT_SECRET_FILE,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(ConfigError::new(
            id::CLIENT_SECRET_FILE,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(Secret::new(secret))
}

/// The session series' labels, lifetime and cap from `--sessions.*`.
fn series_config(args: &ExporterArgs) -> Result<SeriesConfig, ConfigError> {
    let gauge_dims = parse_labels(id::LABELS, &args.labels)?;
    let counter_dims = match &args.counter_labels {
        Some(text) => parse_labels(id::COUNTER_LABELS, text)?,
        None => DEFAULT_COUNTER_LABELS
            .into_iter()
            .filter(|d| gauge_dims.contains(d))
            .collect(),
    };
    let ttl = parse_duration(&args.series_ttl).map_err(|e| ConfigError::new(id::SERIES_TTL, e))?;
    if !ttl.is_zero() && ttl < MIN_SERIES_TTL {
        return Err(ConfigError::new(
            id::SERIES_TTL,
            format!("must be 0 (keep for ever) or at least 1m, got {ttl:?}"),
        ));
    }
    let max_label_sets = args
        .max_label_sets
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| {
            ConfigError::new(
                id::MAX_LABEL_SETS,
                format!(
                    "{:?} is not a whole number of at least 1",
                    args.max_label_sets
                ),
            )
        })?;
    Ok(SeriesConfig {
        gauge_dims,
        counter_dims,
        ttl: (!ttl.is_zero())
            .then(|| chrono::Duration::from_std(ttl).ok())
            .flatten(),
        max_label_sets,
    })
}

/// Parses a comma list of session dimensions given to the flag with id `flag`.
pub fn parse_labels(flag: &str, text: &str) -> Result<Vec<Dimension>, ConfigError> {
    let mut dims = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let dim = Dimension::from_label_name(name).ok_or_else(|| {
            let known: Vec<&str> = Dimension::ALL.iter().map(|d| d.label_name()).collect();
            ConfigError::new(
                flag,
                format!("unknown label {name:?}: use {}", known.join(", ")),
            )
        })?;
        if dims.contains(&dim) {
            return Err(ConfigError::new(
                flag,
                format!("label {name:?} given twice"),
            ));
        }
        dims.push(dim);
    }
    Ok(dims)
}

/// Accepts `host:port`, `[v6]:port` and Prometheus's `:port` (all interfaces).
fn parse_listen_address(flag: &str, text: &str) -> Result<String, ConfigError> {
    let text = text.trim();
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    if full.parse::<SocketAddr>().is_ok() {
        return Ok(full);
    }
    match full.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(full),
        _ => Err(ConfigError::new(
            flag,
            format!("{text:?} is not an address like :{DEFAULT_PORT} or 127.0.0.1:{DEFAULT_PORT}"),
        )),
    }
}

fn parse_telemetry_path(text: &str) -> Result<String, ConfigError> {
    let valid = text.starts_with('/')
        && text.len() > 1
        && !["/healthz", "/readyz"].contains(&text)
        && !text.contains(['?', '#', ' ']);
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ConfigError::new(
            id::TELEMETRY_PATH,
            format!("{text:?} must be a path like /metrics (not /, /healthz or /readyz)"),
        ))
    }
}

/// Loads and checks the web configuration, so that a bad file stops the exporter at start rather
/// than at the first scrape.
fn load_web_config(path: Option<&Path>) -> Result<Option<Arc<WebConfig>>, ConfigError> {
    path.map(|p| {
        WebConfig::load(p).map(Arc::new).map_err(|e| {
            ConfigError::new(
                id::WEB_CONFIG_FILE,
                e.to_string().replace(['\n', '\r'], " "),
            )
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `args` as the binary would (flags only: the tests set no environment).
    fn from(args: &[&str]) -> Result<Config, ConfigError> {
        let argv = std::iter::once("cloudconnexa_exporter").chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).expect("clap accepts the flags");
        Config::from_args(cli.exporter)
    }

    const CREDENTIALS: [&str; 4] = [
        "--cloudconnexa.client-id",
        "id",
        "--cloudconnexa.client-secret",
        "s",
    ];

    /// `extra` after a valid tenant's flags.
    fn tenant(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut args = vec!["--cloudconnexa.cloud-id", "acme"];
        args.extend(CREDENTIALS);
        args.extend(extra);
        from(&args)
    }

    /// The variable the contract gives `flag`: `--cloudconnexa.*` -> `CLOUDCONNEXA_*`, the rest ->
    /// `CLOUDCONNEXA_EXPORTER_*`, dots and dashes as underscores.
    fn contract_env(flag: &str) -> String {
        match flag.strip_prefix("--cloudconnexa.") {
            Some(rest) => format!("CLOUDCONNEXA_{rest}"),
            None => format!("CLOUDCONNEXA_EXPORTER_{}", &flag[2..]),
        }
        .replace(['.', '-'], "_")
        .to_uppercase()
    }

    /// The flag an error names, after checking that it names the flag's variable too and says
    /// what is wrong on one line.
    fn named(result: Result<Config, ConfigError>) -> String {
        let e = result.expect_err("refused");
        assert_eq!(e.env, contract_env(&e.flag), "{e}");
        assert!(!e.problem.is_empty() && !e.problem.contains('\n'), "{e}");
        assert_eq!(
            e.to_string(),
            format!("{} ({}): {}", e.flag, e.env, e.problem)
        );
        e.flag
    }

    #[test]
    fn every_flag_id_names_its_flag_and_variable() {
        let command = ExporterArgs::augment_args(clap::Command::new("x"));
        for arg in command.get_arguments().filter(|a| a.get_env().is_some()) {
            let (flag, env) = names(arg.get_id().as_str());
            assert_eq!(flag, format!("--{}", arg.get_long().unwrap()));
            assert_eq!(env, contract_env(&flag), "the contract's naming rule");
        }
        for id in [
            id::URL,
            id::CLOUD_ID,
            id::POLL_INTERVAL,
            id::PROBE_LISTEN_ADDRESS,
        ] {
            assert!(names(id).0.starts_with("--"), "{id} is a flag's id");
        }
    }

    #[test]
    fn a_valid_tenant_configures_the_client_and_defaults() {
        let config = tenant(&[]).expect("valid");
        let Source::Api(client) = &config.source else {
            panic!("an API source")
        };
        assert_eq!(client.base_url.as_str(), "https://acme.api.openvpn.com/");
        assert_eq!(client.client_id, "id");
        assert_eq!(client.client_secret.expose(), "s");
        assert_eq!(client.api_version, ApiVersion::V1);
        assert_eq!(config.poll.interval, Duration::from_secs(60));
        assert_eq!(config.listen_address, "0.0.0.0:9839");
        assert_eq!(config.probe_listen_address, None);
        assert_eq!(config.series.gauge_dims, Dimension::DEFAULT);
        assert_eq!(config.series.counter_dims, DEFAULT_COUNTER_LABELS);
        assert_eq!(config.series.ttl, Some(chrono::Duration::days(7)));
        assert_eq!(
            config.series.max_label_sets.to_string(),
            DEFAULT_MAX_LABEL_SETS
        );
        let demo = from(&["--demo"]).expect("the demo needs no credentials");
        assert!(matches!(demo.source, Source::Demo));
        assert_eq!(demo.poll.interval, DEMO_POLL_INTERVAL);
    }

    #[test]
    fn missing_or_conflicting_credentials_name_the_flag_to_fix() {
        assert_eq!(named(from(&CREDENTIALS)), "--cloudconnexa.url");
        let both = [
            "--cloudconnexa.url",
            "https://a.example",
            "--cloudconnexa.cloud-id",
            "a",
        ];
        let e = from(&[&both[..], &CREDENTIALS].concat()).expect_err("refused");
        assert_eq!(e.flag, "--cloudconnexa.url");
        assert!(
            e.problem.contains("--cloudconnexa.cloud-id (CLOUDCONNEXA_"),
            "the other flag is named too: {e}"
        );
        assert_eq!(
            named(from(&[
                "--cloudconnexa.cloud-id",
                "acme",
                "--cloudconnexa.client-secret",
                "s"
            ])),
            "--cloudconnexa.client-id"
        );
        assert_eq!(
            named(from(&[
                "--cloudconnexa.cloud-id",
                "acme",
                "--cloudconnexa.client-id",
                "id"
            ])),
            "--cloudconnexa.client-secret-file"
        );
        assert_eq!(
            named(from(&[
                "--cloudconnexa.cloud-id",
                "acme",
                "--cloudconnexa.client-id",
                "id",
                "--cloudconnexa.client-secret-file",
                "/nonexistent/secret"
            ])),
            "--cloudconnexa.client-secret-file"
        );
        assert_eq!(
            named(tenant(&["--cloudconnexa.client-secret-file", "/x"])),
            "--cloudconnexa.client-secret",
            "a secret and a secret file"
        );
    }

    #[test]
    fn secret_files_lose_one_trailing_newline_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        let with = |text: &str| {
            std::fs::write(&file, text).unwrap();
            from(&[
                "--cloudconnexa.cloud-id",
                "acme",
                "--cloudconnexa.client-id",
                "id",
                "--cloudconnexa.client-secret-file",
                file.to_str().unwrap(),
            ])
        };
        let Source::Api(client) = with("s3cret\r\n").expect("valid").source else {
            panic!("an API source")
        };
        assert_eq!(client.client_secret.expose(), "s3cret");
        assert_eq!(named(with("\n")), "--cloudconnexa.client-secret-file");
    }

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        let url = |u: &str| from(&[&["--cloudconnexa.url", u][..], &CREDENTIALS].concat());
        assert!(url("https://acme.api.openvpn.com").is_ok());
        assert!(url("http://127.0.0.1:8080").is_ok());
        assert!(url("http://[::1]:8080").is_ok());
        assert!(url("http://localhost:8080").is_ok());
        for bad in [
            "http://remote.example",
            "ftp://a.example",
            "not a url",
            "https://user:pw@a.example",
            "https://a.example/?x=1",
        ] {
            assert_eq!(named(url(bad)), "--cloudconnexa.url", "{bad}");
        }
        for bad in ["", "acme.example", "a/b"] {
            assert_eq!(
                named(from(
                    &[&["--cloudconnexa.cloud-id", bad][..], &CREDENTIALS].concat()
                )),
                "--cloudconnexa.cloud-id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn durations_are_checked_with_their_flag() {
        for (args, flag) in [
            (["--poll.interval", "5x"], "--poll.interval"),
            (["--poll.interval", "500ms"], "--poll.interval"),
            (["--poll.resync-interval", "soon"], "--poll.resync-interval"),
            (
                ["--cloudconnexa.timeout", "100ms"],
                "--cloudconnexa.timeout",
            ),
        ] {
            assert_eq!(named(tenant(&args)), flag, "{args:?}");
        }
        let config = tenant(&["--poll.interval", "2m", "--poll.resync-interval", "1m"]).unwrap();
        assert_eq!(
            config.poll.resync_interval,
            Duration::from_secs(120),
            "a resync is never more frequent than a poll"
        );
    }

    #[test]
    fn labels_addresses_paths_and_logs_are_validated() {
        let cases: [(&[&str], &str); 8] = [
            (
                &["--sessions.labels", "vpn_region,email"],
                "--sessions.labels",
            ),
            (
                &["--sessions.labels", "network,network"],
                "--sessions.labels",
            ),
            (&["--web.listen-address", "nowhere"], "--web.listen-address"),
            (
                &["--web.probe-listen-address", "nowhere"],
                "--web.probe-listen-address",
            ),
            (
                &["--web.telemetry-path", "/healthz"],
                "--web.telemetry-path",
            ),
            (
                &["--cloudconnexa.api-version", "v2"],
                "--cloudconnexa.api-version",
            ),
            (&["--log.level", "trace"], "--log.level"),
            (&["--log.format", "xml"], "--log.format"),
        ];
        for (args, flag) in cases {
            assert_eq!(named(tenant(args)), flag, "{args:?}");
        }
        let config = tenant(&[
            "--sessions.labels",
            " host , vpn_region ",
            "--web.listen-address",
            "127.0.0.1:9000",
            "--web.probe-listen-address",
            ":9840",
            "--log.format",
            "JSON",
        ])
        .unwrap();
        assert_eq!(
            config.series.gauge_dims,
            [Dimension::Host, Dimension::VpnRegion]
        );
        assert_eq!(config.listen_address, "127.0.0.1:9000");
        assert_eq!(config.probe_listen_address.as_deref(), Some("0.0.0.0:9840"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(
            tenant(&["--sessions.labels", ""])
                .unwrap()
                .series
                .gauge_dims
                .is_empty()
        );
    }

    #[test]
    fn series_flags_set_the_counters_labels_the_ttl_and_the_cap() {
        let series = |args: &[&str]| tenant(args).expect("valid").series;
        // Counters default to the lean set, less what --sessions.labels leaves out.
        assert_eq!(
            series(&["--sessions.labels", "os_type,network,vpn_region"]).counter_dims,
            [Dimension::VpnRegion, Dimension::Network]
        );
        let given = series(&[
            "--sessions.counter-labels",
            "protocol,host",
            "--sessions.series-ttl",
            "6h",
            "--sessions.max-label-sets",
            "50",
        ]);
        assert_eq!(given.counter_dims, [Dimension::Protocol, Dimension::Host]);
        assert_eq!(given.gauge_dims, Dimension::DEFAULT);
        assert_eq!(given.ttl, Some(chrono::Duration::hours(6)));
        assert_eq!(given.max_label_sets, 50);
        assert_eq!(
            series(&["--sessions.series-ttl", "0"]).ttl,
            None,
            "0 keeps for ever"
        );
        assert!(
            series(&["--sessions.counter-labels", ""])
                .counter_dims
                .is_empty()
        );
        for (args, flag) in [
            (
                ["--sessions.counter-labels", "vpn_region,user"],
                "--sessions.counter-labels",
            ),
            (
                ["--sessions.counter-labels", "os_type,os_type"],
                "--sessions.counter-labels",
            ),
            (["--sessions.series-ttl", "soon"], "--sessions.series-ttl"),
            (["--sessions.series-ttl", "30s"], "--sessions.series-ttl"),
            (
                ["--sessions.max-label-sets", "0"],
                "--sessions.max-label-sets",
            ),
            (
                ["--sessions.max-label-sets", "many"],
                "--sessions.max-label-sets",
            ),
        ] {
            assert_eq!(named(tenant(&args)), flag, "{args:?}");
        }
    }

    #[test]
    fn a_bad_web_configuration_file_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web.yml");
        std::fs::write(&file, "basic_auth_users:\n  alice: not-a-hash\n").unwrap();
        assert_eq!(
            named(tenant(&["--web.config.file", file.to_str().unwrap()])),
            "--web.config.file"
        );
    }

    #[test]
    fn collectors_are_on_by_default_and_switched_off_or_timed_by_their_flags() {
        let defaults = tenant(&[]).expect("valid").collectors;
        assert_eq!(
            defaults,
            Collectors {
                sessions: true,
                connectors: Some(Duration::from_secs(180)),
                users: Some(Duration::from_secs(900)),
                regions: Some(Duration::from_secs(3600)),
            }
        );
        assert_eq!(
            from(&["--demo"]).expect("valid").collectors.connectors,
            Some(Duration::from_secs(30)),
            "the demo's own default"
        );
        let some = tenant(&[
            "--no-collector.users",
            "--collector.regions=false",
            "--collector.connectors.interval",
            "5m",
        ])
        .expect("valid")
        .collectors;
        assert_eq!(
            some.enabled(),
            [CollectorName::Sessions, CollectorName::Connectors]
        );
        assert_eq!(some.connectors, Some(Duration::from_secs(300)));
        // The last of the two forms wins.
        let last = |args: &[&str]| tenant(args).expect("valid").collectors.users.is_some();
        assert!(last(&["--no-collector.users", "--collector.users"]));
        assert!(!last(&["--collector.users", "--no-collector.users"]));
        for (args, flag) in [
            (
                ["--collector.users.interval", "500ms"],
                "--collector.users.interval",
            ),
            (
                ["--collector.regions.interval", "hourly"],
                "--collector.regions.interval",
            ),
        ] {
            assert_eq!(named(tenant(&args)), flag, "{args:?}");
        }
        assert_eq!(
            named(tenant(&[
                "--no-collector.sessions",
                "--no-collector.connectors",
                "--no-collector.users",
                "--no-collector.regions",
            ])),
            "--collector.sessions",
            "every collector off"
        );
    }
}
