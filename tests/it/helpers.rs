//! Shared test plumbing: start the exporter on port 0, scrape it, wait on conditions.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use cloudconnexa_exporter::clock::{Clock, SystemClock};
use cloudconnexa_exporter::config::{Cli, Config};
use cloudconnexa_exporter::upstream::client::RetryPolicy;
use cloudconnexa_exporter::{Edges, Listeners, RunError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Logs stay silent unless `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        cloudconnexa_exporter::logging::init(
            cloudconnexa_exporter::config::LogLevel::Debug,
            cloudconnexa_exporter::config::LogFormat::Logfmt,
        );
    }
}

/// Short waits so failure modes play out in seconds (the floor after a 429 is the exception
/// tests set explicitly).
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        max_rate_limited: 3,
        rate_limited_floor: Duration::from_secs(1),
    }
}

/// A running exporter.
pub struct Exporter {
    pub addr: SocketAddr,
    /// The address of `--web.probe-listen-address`, when the configuration asks for one.
    pub probe_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), RunError>>>,
    http: reqwest::Client,
}

/// Parses exporter flags as the binary would.
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec!["cloudconnexa_exporter"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).expect("flags parse");
    Config::from_args(cli.exporter).expect("flags are valid")
}

/// Flags that turn off every collector but sessions, for tests of the sessions collector
/// against servers that answer only the sessions endpoint.
pub const SESSIONS_ONLY: [&str; 3] = [
    "--no-collector.connectors",
    "--no-collector.users",
    "--no-collector.regions",
];

/// Flags that point the exporter at `base` with the demo credentials, sessions only (see
/// [`SESSIONS_ONLY`]).
pub fn upstream_args(base: &str) -> Vec<String> {
    let mut args = credentials(base);
    args.extend(["--web.listen-address".into(), "127.0.0.1:0".into()]);
    args.extend(SESSIONS_ONLY.map(String::from));
    args
}

/// Flags that point the exporter at `base` with the demo credentials, every collector on, the
/// sessions polled every second and the others every `interval` (no listen address: the caller
/// picks one).
pub fn all_collectors_args(base: &str, interval: &str) -> Vec<String> {
    let mut args = credentials(base);
    args.extend(["--poll.interval".into(), "1s".into()]);
    for collector in ["connectors", "users", "regions"] {
        args.push(format!("--collector.{collector}.interval"));
        args.push(interval.to_owned());
    }
    args
}

/// The URL and the demo credentials.
fn credentials(base: &str) -> Vec<String> {
    [
        "--cloudconnexa.url",
        base,
        "--cloudconnexa.client-id",
        "demo",
        "--cloudconnexa.client-secret",
        "demo",
    ]
    .map(String::from)
    .to_vec()
}

impl Exporter {
    /// Starts an exporter with `args` (see [`config`]), a fast retry policy and the given clock.
    pub async fn start_with(args: &[String], clock: Arc<dyn Clock>, retry: RetryPolicy) -> Self {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::launch(
            config(&argv),
            Edges {
                clock,
                retry,
                ..Edges::default()
            },
        )
        .await
    }

    /// Starts an exporter with a ready-made configuration, on loopback ports of its own (the
    /// configured addresses are ignored; a probe address, if configured, gets a port too).
    pub async fn launch(config: Config, edges: Edges) -> Self {
        init_logs();
        let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
        let listener = bind().await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let probes = match config.probe_listen_address {
            Some(_) => Some(bind().await.expect("bind probes")),
            None => None,
        };
        let probe_addr = probes.as_ref().map(|p| p.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(cloudconnexa_exporter::run_with(
            config,
            Listeners {
                main: listener,
                probes,
            },
            async move {
                let _ = stopped.await;
            },
            edges,
        ));
        Self {
            addr,
            probe_addr,
            stop: Some(stop),
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    /// The URL of `path` on this exporter.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Starts an exporter with `args`.
    pub async fn start(args: &[String]) -> Self {
        Self::start_with(args, Arc::new(SystemClock), fast_retry()).await
    }

    /// GETs `path`, returning status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Waits until `/readyz` answers 200 (the first full listing is complete).
    pub async fn wait_ready(&self, within: Duration) {
        wait_for("ready", within, || async {
            (self.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }

    /// Scrapes the metrics.
    pub async fn scrape(&self) -> Metrics {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Metrics::parse(&body)
    }

    /// Stops the exporter and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("exporter stops within 10 s")
                .expect("task joins")
                .expect("run returns Ok");
        }
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape (text format 0.0.4).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(parse_line)
            .collect();
        Self {
            samples,
            text: text.to_owned(),
        }
    }

    /// Samples of `name` whose labels include every pair of `filter`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && filter
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Sum of `name` over samples matching `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.select(name, filter).map(|s| s.value).sum()
    }

    /// The value of a metric without labels, if present.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.select(name, &[]).next().map(|s| s.value)
    }

    /// Sum of `name` grouped by `label`.
    pub fn sum_by(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.select(name, &[]) {
            *out.entry(s.labels.get(label).cloned().unwrap_or_default())
                .or_default() += s.value;
        }
        out
    }
}

fn parse_line(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').expect("sample has a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().expect("numeric value"),
    };
    let (name, labels) = match head.split_once('{') {
        None => (head.to_owned(), BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').expect("closing brace");
            (name.to_owned(), parse_labels(body))
        }
    };
    Sample {
        name,
        labels,
        value,
    }
}

fn parse_labels(mut body: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body.split_once("=\"").expect("label key");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        body = rest[end..].trim_start_matches(',');
    }
    labels
}

/// Polls `check` until it returns `Some` or `within` passes; panics with `what` on timeout.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
