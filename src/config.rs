//! Command line and environment configuration.
//!
//! Flags follow the Prometheus exporters' dotted style, and each reads an environment variable
//! (`--cloudconnexa.*` -> `CLOUDCONNEXA_*`, the rest -> `CLOUDCONNEXA_EXPORTER_*`); a flag on the
//! command line wins. Values arrive as strings and are validated here rather than by clap, so that
//! every mistake is reported on one line that names the flag, its variable and the problem, and the
//! process exits with status 2.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use reqwest::Url;

use crate::duration::parse_duration;
use crate::poller::PollConfig;
use crate::secret::Secret;
use crate::tracker::Dimension;
use crate::upstream::client::{ApiVersion, ClientConfig, RetryPolicy};
use crate::web::WebConfig;

/// The port the exporter listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 9839;

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

/// The exporter's flags, as given.
#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// API base URL, e.g. https://acme.api.openvpn.com (http only for loopback hosts).
    #[arg(
        long = "cloudconnexa.url",
        env = "CLOUDCONNEXA_URL",
        value_name = "URL"
    )]
    pub url: Option<String>,
    /// Shorthand for the URL: `acme` means https://acme.api.openvpn.com.
    #[arg(
        long = "cloudconnexa.cloud-id",
        env = "CLOUDCONNEXA_CLOUD_ID",
        value_name = "ID"
    )]
    pub cloud_id: Option<String>,
    /// OAuth2 client id of the API credentials.
    #[arg(
        long = "cloudconnexa.client-id",
        env = "CLOUDCONNEXA_CLIENT_ID",
        value_name = "ID"
    )]
    pub client_id: Option<String>,
    /// OAuth2 client secret (prefer --cloudconnexa.client-secret-file).
    #[arg(long = "cloudconnexa.client-secret", env = "CLOUDCONNEXA_CLIENT_SECRET", value_name = "SECRET",
          value_parser = parse_secret, hide_env_values = true)]
    pub client_secret: Option<Secret>,
    /// File holding the client secret (a trailing newline is ignored).
    #[arg(
        long = "cloudconnexa.client-secret-file",
        env = "CLOUDCONNEXA_CLIENT_SECRET_FILE",
        value_name = "PATH"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// API version: v1 or beta.
    #[arg(
        long = "cloudconnexa.api-version",
        env = "CLOUDCONNEXA_API_VERSION",
        default_value = "v1",
        value_name = "VERSION"
    )]
    pub api_version: String,
    /// Timeout of one API request, body included.
    #[arg(
        long = "cloudconnexa.timeout",
        env = "CLOUDCONNEXA_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub timeout: String,
    /// Time between poll cycles (at least 1s) [default: 60s, 15s with --demo].
    #[arg(
        long = "poll.interval",
        env = "CLOUDCONNEXA_EXPORTER_POLL_INTERVAL",
        value_name = "DURATION"
    )]
    pub poll_interval: Option<String>,
    /// Shortest time between two full listings of active sessions; stretched when the API's rate
    /// limit needs it.
    #[arg(
        long = "poll.resync-interval",
        env = "CLOUDCONNEXA_EXPORTER_POLL_RESYNC_INTERVAL",
        default_value = "5m",
        value_name = "DURATION"
    )]
    pub resync_interval: String,
    /// Comma list of session dimensions to label by: vpn_region, network, host, connector,
    /// user_group, protocol, os_type.
    #[arg(
        long = "sessions.labels",
        env = "CLOUDCONNEXA_EXPORTER_SESSIONS_LABELS",
        default_value = "vpn_region,network,user_group,protocol,os_type",
        value_name = "LIST"
    )]
    pub labels: String,
    /// Address to serve on.
    #[arg(
        long = "web.listen-address",
        env = "CLOUDCONNEXA_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = ":9839",
        value_name = "ADDRESS"
    )]
    pub listen_address: String,
    /// Path under which to serve metrics.
    #[arg(
        long = "web.telemetry-path",
        env = "CLOUDCONNEXA_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,
    /// TLS and basic-auth configuration in the Prometheus exporter-toolkit format.
    #[arg(
        long = "web.config.file",
        env = "CLOUDCONNEXA_EXPORTER_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub web_config_file: Option<PathBuf>,
    /// Log level: error, warn, info, debug.
    #[arg(
        long = "log.level",
        env = "CLOUDCONNEXA_EXPORTER_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log_level: String,
    /// Log format: logfmt or json.
    #[arg(
        long = "log.format",
        env = "CLOUDCONNEXA_EXPORTER_LOG_FORMAT",
        default_value = "logfmt",
        value_name = "FORMAT"
    )]
    pub log_format: String,
    /// Run against the built-in simulated tenant; no credentials needed.
    #[arg(long = "demo", env = "CLOUDCONNEXA_EXPORTER_DEMO")]
    pub demo: bool,
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value))
}

/// A configuration mistake: which flag, which variable, what is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} ({env}): {problem}")]
pub struct ConfigError {
    /// The flag.
    pub flag: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// What is wrong.
    pub problem: String,
}

macro_rules! bad {
    ($flag:literal, $env:literal, $($fmt:tt)+) => {
        ConfigError { flag: $flag, env: $env, problem: format!($($fmt)+) }
    };
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
    /// Session dimensions used as labels.
    pub labels: Vec<Dimension>,
    /// Address to serve on, `host:port`.
    pub listen_address: String,
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
        let request_timeout = parse_duration(&args.timeout)
            .map_err(|e| bad!("--cloudconnexa.timeout", "CLOUDCONNEXA_TIMEOUT", "{e}"))?;
        if request_timeout < Duration::from_secs(1) {
            return Err(bad!(
                "--cloudconnexa.timeout",
                "CLOUDCONNEXA_TIMEOUT",
                "must be at least 1s"
            ));
        }
        let source = if args.demo {
            Source::Demo
        } else {
            Source::Api(Box::new(client_config(&args, request_timeout)?))
        };
        let interval = match &args.poll_interval {
            Some(text) => parse_duration(text).map_err(|e| {
                bad!(
                    "--poll.interval",
                    "CLOUDCONNEXA_EXPORTER_POLL_INTERVAL",
                    "{e}"
                )
            })?,
            None if args.demo => DEMO_POLL_INTERVAL,
            None => Duration::from_secs(60),
        };
        if interval < Duration::from_secs(1) {
            return Err(bad!(
                "--poll.interval",
                "CLOUDCONNEXA_EXPORTER_POLL_INTERVAL",
                "must be at least 1s, got {interval:?}"
            ));
        }
        let resync_interval = parse_duration(&args.resync_interval).map_err(|e| {
            bad!(
                "--poll.resync-interval",
                "CLOUDCONNEXA_EXPORTER_POLL_RESYNC_INTERVAL",
                "{e}"
            )
        })?;
        let poll = PollConfig {
            interval,
            resync_interval: resync_interval.max(interval),
            ..PollConfig::default()
        };
        Ok(Self {
            source,
            request_timeout,
            poll,
            labels: parse_labels(&args.labels)?,
            listen_address: parse_listen_address(&args.listen_address)?,
            telemetry_path: parse_telemetry_path(&args.telemetry_path)?,
            web_config: load_web_config(args.web_config_file.as_deref())?,
            log_level: match args.log_level.to_ascii_lowercase().as_str() {
                "error" => LogLevel::Error,
                "warn" => LogLevel::Warn,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                other => {
                    return Err(bad!(
                        "--log.level",
                        "CLOUDCONNEXA_EXPORTER_LOG_LEVEL",
                        "unknown level {other:?}: use error, warn, info or debug"
                    ));
                }
            },
            log_format: match args.log_format.to_ascii_lowercase().as_str() {
                "logfmt" => LogFormat::Logfmt,
                "json" => LogFormat::Json,
                other => {
                    return Err(bad!(
                        "--log.format",
                        "CLOUDCONNEXA_EXPORTER_LOG_FORMAT",
                        "unknown format {other:?}: use logfmt or json"
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
            return Err(bad!(
                "--cloudconnexa.url",
                "CLOUDCONNEXA_URL",
                "give either the URL or --cloudconnexa.cloud-id (CLOUDCONNEXA_CLOUD_ID), not both"
            ));
        }
        (None, None) => {
            return Err(bad!(
                "--cloudconnexa.url",
                "CLOUDCONNEXA_URL",
                "missing: give the API URL or --cloudconnexa.cloud-id (CLOUDCONNEXA_CLOUD_ID), or run with --demo"
            ));
        }
        (Some(url), None) => parse_base_url(url)?,
        (None, Some(id)) => {
            let id = id.trim();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(bad!(
                    "--cloudconnexa.cloud-id",
                    "CLOUDCONNEXA_CLOUD_ID",
                    "{id:?} is not a cloud id (letters, digits and dashes, e.g. acme)"
                ));
            }
            Url::parse(&format!(
                "https://{}.api.openvpn.com",
                id.to_ascii_lowercase()
            ))
            .map_err(|e| bad!("--cloudconnexa.cloud-id", "CLOUDCONNEXA_CLOUD_ID", "{e}"))?
        }
    };
    let client_id = args
        .client_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            bad!(
                "--cloudconnexa.client-id",
                "CLOUDCONNEXA_CLIENT_ID",
                "missing: the OAuth2 client id of the API credentials"
            )
        })?
        .to_owned();
    let client_secret = match (&args.client_secret, &args.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(bad!(
                "--cloudconnexa.client-secret",
                "CLOUDCONNEXA_CLIENT_SECRET",
                "give either the secret or --cloudconnexa.client-secret-file (CLOUDCONNEXA_CLIENT_SECRET_FILE), not both"
            ));
        }
        (None, None) => {
            return Err(bad!(
                "--cloudconnexa.client-secret-file",
                "CLOUDCONNEXA_CLIENT_SECRET_FILE",
                "missing: give a file holding the client secret, or --cloudconnexa.client-secret (CLOUDCONNEXA_CLIENT_SECRET)"
            ));
        }
        (Some(secret), None) if secret.is_empty() => {
            return Err(bad!(
                "--cloudconnexa.client-secret",
                "CLOUDCONNEXA_CLIENT_SECRET",
                "empty"
            ));
        }
        (Some(secret), None) => secret.clone(),
        (None, Some(path)) => read_secret_file(path)?,
    };
    let api_version = match args.api_version.to_ascii_lowercase().as_str() {
        "v1" => ApiVersion::V1,
        "beta" => ApiVersion::Beta,
        other => {
            return Err(bad!(
                "--cloudconnexa.api-version",
                "CLOUDCONNEXA_API_VERSION",
                "unknown version {other:?}: use v1 or beta"
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
    let url = Url::parse(text.trim()).map_err(|e| {
        bad!(
            "--cloudconnexa.url",
            "CLOUDCONNEXA_URL",
            "{text:?} is not a URL: {e}"
        )
    })?;
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
            return Err(bad!(
                "--cloudconnexa.url",
                "CLOUDCONNEXA_URL",
                "plain http is allowed only for loopback hosts; use https://{host}"
            ));
        }
        other => {
            return Err(bad!(
                "--cloudconnexa.url",
                "CLOUDCONNEXA_URL",
                "unsupported scheme {other:?}: use https"
            ));
        }
    }
    if host.is_empty() {
        return Err(bad!(
            "--cloudconnexa.url",
            "CLOUDCONNEXA_URL",
            "{text:?} has no host"
        ));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad!(
            "--cloudconnexa.url",
            "CLOUDCONNEXA_URL",
            "give only scheme, host and port (no credentials, query or fragment)"
        ));
    }
    Ok(url)
}

fn read_secret_file(path: &std::path::Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad!(
            "--cloudconnexa.client-secret-file",
            "CLOUDCONNEXA_CLIENT_SECRET_FILE",
            "cannot read {}: {e}",
            path.display()
        )
    })?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(bad!(
            "--cloudconnexa.client-secret-file",
            "CLOUDCONNEXA_CLIENT_SECRET_FILE",
            "{} is empty",
            path.display()
        ));
    }
    Ok(Secret::new(secret))
}

/// Parses `--sessions.labels`.
pub fn parse_labels(text: &str) -> Result<Vec<Dimension>, ConfigError> {
    let mut dims = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let dim = Dimension::from_label_name(name).ok_or_else(|| {
            let known: Vec<&str> = Dimension::ALL.iter().map(|d| d.label_name()).collect();
            bad!(
                "--sessions.labels",
                "CLOUDCONNEXA_EXPORTER_SESSIONS_LABELS",
                "unknown label {name:?}: use {}",
                known.join(", ")
            )
        })?;
        if dims.contains(&dim) {
            return Err(bad!(
                "--sessions.labels",
                "CLOUDCONNEXA_EXPORTER_SESSIONS_LABELS",
                "label {name:?} given twice"
            ));
        }
        dims.push(dim);
    }
    Ok(dims)
}

/// Accepts `host:port`, `[v6]:port` and Prometheus's `:port` (all interfaces).
fn parse_listen_address(text: &str) -> Result<String, ConfigError> {
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
        _ => Err(bad!(
            "--web.listen-address",
            "CLOUDCONNEXA_EXPORTER_WEB_LISTEN_ADDRESS",
            "{text:?} is not an address like :{DEFAULT_PORT} or 127.0.0.1:{DEFAULT_PORT}"
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
        Err(bad!(
            "--web.telemetry-path",
            "CLOUDCONNEXA_EXPORTER_WEB_TELEMETRY_PATH",
            "{text:?} must be a path like /metrics (not /, /healthz or /readyz)"
        ))
    }
}

/// Loads and checks the web configuration, so that a bad file stops the exporter at start rather
/// than at the first scrape.
fn load_web_config(path: Option<&Path>) -> Result<Option<Arc<WebConfig>>, ConfigError> {
    path.map(|p| {
        WebConfig::load(p).map(Arc::new).map_err(|e| {
            bad!(
                "--web.config.file",
                "CLOUDCONNEXA_EXPORTER_WEB_CONFIG_FILE",
                "{}",
                e.to_string().replace(['\n', '\r'], " ")
            )
        })
    })
    .transpose()
}
