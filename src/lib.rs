//! # cloudconnexa_exporter
//!
//! A Prometheus exporter for OpenVPN CloudConnexa. Background collectors poll the CloudConnexa
//! REST API (sessions, connectors, users, regions) and publish what they learn; `/metrics` serves
//! what was published, so a scrape never waits on (or spends) the API's small rate limit.
//!
//! # Layout
//! - [`config`]: command line and environment, validated into a [`config::Config`]; bad input exits 2.
//! - [`duration`]: Prometheus-style durations, for flags and the web configuration.
//! - [`clock`]: the wall clock, injectable so tests can run with a skewed one.
//! - [`logging`]: logfmt or JSON logs, set up once by the binary.
//! - [`secret`]: a string type that never prints, for client secrets and tokens.
//! - [`upstream`]: the CloudConnexa client: OAuth2 token cache, rate-limit pacing with priorities
//!   and retries, cursor and page/size pagination, tolerant decoding. It reports what happened to
//!   an [`upstream::Observer`] and knows nothing of the layers above.
//! - [`collectors`]: one task per collector (sessions, connectors, users, regions), all on the one
//!   client and its one budget; the runner, readiness and the budget plan.
//! - [`tracker`]: the pure core. Session observations in, counters and gauges out; no IO, no clock.
//!   Every counting rule of the contract lives and is tested here.
//! - `fast_hash`: the seeded hasher of the maps a listing fills (session ids, label sets), and the
//!   tracker's map of session ids that keeps each id's hash.
//! - [`metrics`]: the owned registry, self-metrics, the families built from what the collectors
//!   publish, and encoding.
//! - [`server`]: the HTTP routers (`/metrics`, `/`, `/healthz`, `/readyz`; the probe address) and
//!   the serving loop.
//! - [`simulate`]: the `simulate` command's flags, over the simulator crate (`cloudconnexa_sim`, a
//!   workspace member that never depends on this crate), which also serves the tenant behind
//!   `--demo` and the tests.
//! - [`web`]: `--web.config.file` (TLS, basic auth, headers, reloads) and connection deadlines.

pub mod clock;
pub mod collectors;
pub mod config;
pub mod duration;
mod fast_hash;
pub mod logging;
pub mod metrics;
pub mod secret;
pub mod server;
pub mod simulate;
pub mod tracker;
pub mod upstream;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::collectors::connectors::Connectors;
use crate::collectors::regions::Regions;
use crate::collectors::sessions::Poller;
use crate::collectors::users::Users;
use crate::collectors::{CollectorName, Health, Plan, Runner, Status};
use crate::config::{Config, Source};
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::tracker::Dimension;
use crate::upstream::client::{ApiClient, ApiVersion, ClientConfig, RetryPolicy};
use crate::upstream::error::UpstreamError;

/// How long a collector may take to notice shutdown before it is abandoned.
const COLLECTOR_STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the exporter stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Serving HTTP failed.
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    /// The in-process simulated tenant of `--demo` could not start.
    #[error("starting the simulated tenant: {0}")]
    Demo(#[source] std::io::Error),
    /// The HTTP client could not be built.
    #[error("building the API client: {0}")]
    Client(#[source] UpstreamError),
}

/// Parts of the outside world a test may replace.
#[derive(Clone)]
pub struct Edges {
    /// The local wall clock.
    pub clock: Arc<dyn Clock>,
    /// Retry and backoff of API requests (tests shorten the waits).
    pub retry: RetryPolicy,
    /// How often the files of `--web.config.file` are checked for changes (tests shorten it).
    pub web_reload_interval: Duration,
}

impl Default for Edges {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            web_reload_interval: web::RELOAD_INTERVAL,
        }
    }
}

/// Where the exporter serves: the main address (metrics, landing page, probes) and, with
/// `--web.probe-listen-address`, an address for the health probes alone.
pub struct Listeners {
    /// `--web.listen-address`.
    pub main: TcpListener,
    /// `--web.probe-listen-address`, if given.
    pub probes: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(main: TcpListener) -> Self {
        Self { main, probes: None }
    }
}

/// Runs the exporter on `listeners` until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    run_with(config, listeners, shutdown, Edges::default()).await
}

/// [`run`] with injected edges.
pub async fn run_with(
    config: Config,
    listeners: impl Into<Listeners>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    edges: Edges,
) -> Result<(), RunError> {
    let Listeners {
        main: listener,
        probes,
    } = listeners.into();
    let (stop_tx, stop_rx) = watch::channel(false);
    let client_config = match &config.source {
        Source::Api(c) => ClientConfig {
            retry: edges.retry,
            ..(**c).clone()
        },
        Source::Demo => start_demo(&config, edges.retry, stop_rx.clone()).await?,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        api = %client_config.base_url,
        api_version = client_config.api_version.as_str(),
        client_id = %client_config.client_id,
        poll_interval_s = config.poll.interval.as_secs_f64(),
        collectors = ?config.collectors.enabled().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        labels = ?Dimension::label_names(&config.series.gauge_dims),
        counter_labels = ?Dimension::label_names(&config.series.counter_dims),
        series_ttl_s = config.series.ttl.map(|t| t.num_seconds()),
        max_label_sets = config.series.max_label_sets,
        "starting cloudconnexa_exporter"
    );
    let enabled = config.collectors.enabled();
    let metrics = Arc::new(Metrics::new(
        Dimension::label_names(&config.series.gauge_dims),
        Dimension::label_names(&config.series.counter_dims),
        &enabled.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    ));
    let client = ApiClient::new(client_config, edges.clock.clone(), metrics.clone())
        .map(Arc::new)
        .map_err(RunError::Client)?;
    let (health, collector_tasks) = start_collectors(&config, client, &metrics, &edges, &stop_rx);
    let web = config.web_config.clone().map(|c| {
        let gauges = metrics
            .register_web_config_gauges()
            .inspect_err(|e| tracing::warn!(error = %e, "web configuration gauges unavailable"))
            .ok();
        web::WebConfigHandle::new(c, gauges)
    });
    if let Some(w) = &web {
        let mut stop = stop_rx.clone();
        tokio::spawn(w.clone().watch(edges.web_reload_interval, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
    }
    let state = server::AppState {
        metrics,
        health,
        telemetry_path: config.telemetry_path.clone(),
    };
    let probe_task = probes.map(|probes| {
        if let Ok(addr) = probes.local_addr() {
            tracing::info!(address = %addr, "serving health probes (no TLS, no authentication)");
        }
        let mut stop = stop_rx.clone();
        let app = server::probe_router(state.clone());
        tokio::spawn(server::serve(probes, app, None, async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    });
    let app = server::router(state);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            address = %addr,
            path = %config.telemetry_path,
            tls = web.as_ref().is_some_and(|w| w.current().tls().is_some()),
            basic_auth = web.as_ref().is_some_and(|w| w.current().auth().is_some()),
            "serving metrics"
        );
    }
    let served = server::serve(listener, app, web, shutdown).await;
    let _ = stop_tx.send(true);
    if let Some(task) = probe_task {
        let _ = task.await;
    }
    for (name, task) in collector_tasks {
        if tokio::time::timeout(COLLECTOR_STOP_TIMEOUT, task)
            .await
            .is_err()
        {
            tracing::warn!(
                collector = name.as_str(),
                "the collector did not stop in time"
            );
        }
    }
    tracing::info!("stopped");
    served.map_err(RunError::Serve)
}

/// Starts a task for each enabled collector, all on `client`; returns their health and tasks.
fn start_collectors(
    config: &Config,
    client: Arc<ApiClient>,
    metrics: &Arc<Metrics>,
    edges: &Edges,
    stop: &watch::Receiver<bool>,
) -> (Health, Vec<(CollectorName, JoinHandle<()>)>) {
    let plan = Arc::new(Plan::default());
    let mut statuses = Vec::new();
    let mut tasks = Vec::new();
    let c = &config.collectors;
    for name in c.enabled() {
        let status = Arc::new(Status::new(name));
        statuses.push(status.clone());
        let runner = |interval| Runner {
            interval,
            status: status.clone(),
            metrics: metrics.clone(),
            plan: plan.clone(),
            clock: edges.clock.clone(),
        };
        let stop = stop.clone();
        let task = match name {
            CollectorName::Sessions => {
                let poller = Poller::new(
                    client.clone(),
                    config.poll.clone(),
                    config.series.clone(),
                    metrics.clone(),
                    status.clone(),
                    plan.clone(),
                );
                tokio::spawn(collectors::run(poller, runner(config.poll.interval), stop))
            }
            CollectorName::Connectors => tokio::spawn(collectors::run(
                Connectors::new(client.clone(), metrics.clone()),
                runner(c.connectors.unwrap_or_default()),
                stop,
            )),
            CollectorName::Users => tokio::spawn(collectors::run(
                Users::new(client.clone(), metrics.clone()),
                runner(c.users.unwrap_or_default()),
                stop,
            )),
            CollectorName::Regions => tokio::spawn(collectors::run(
                Regions::new(client.clone(), metrics.clone()),
                runner(c.regions.unwrap_or_default()),
                stop,
            )),
        };
        tasks.push((name, task));
    }
    (Health::new(statuses), tasks)
}

/// Starts the simulated tenant on a loopback port and returns how to reach it.
async fn start_demo(
    config: &Config,
    retry: RetryPolicy,
    stop: watch::Receiver<bool>,
) -> Result<ClientConfig, RunError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(RunError::Demo)?;
    let addr = listener.local_addr().map_err(RunError::Demo)?;
    let sim_config = cloudconnexa_sim::SimConfig::demo();
    let client_id = sim_config.client_id.clone();
    let client_secret = Secret::new(sim_config.client_secret.expose());
    let simulator = cloudconnexa_sim::Simulator::new(sim_config);
    tokio::spawn(async move {
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = cloudconnexa_sim::serve(listener, simulator, shutdown).await {
            tracing::error!(error = %e, "the simulated tenant stopped");
        }
    });
    tracing::info!(address = %addr, "demo mode: polling the built-in simulated tenant");
    let base_url = reqwest::Url::parse(&format!("http://{addr}"))
        .map_err(|e| RunError::Demo(std::io::Error::other(e)))?;
    Ok(ClientConfig {
        base_url,
        api_version: ApiVersion::V1,
        client_id,
        client_secret,
        request_timeout: config.request_timeout,
        retry,
    })
}
