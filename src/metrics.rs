//! Everything `/metrics` shows: the owned registry, the families built from what the collectors
//! publish, self-metrics, encoding.
//!
//! Session metrics are not kept in live counters: the sessions collector publishes a [`Snapshot`]
//! of the tracker at the end of each cycle, and a custom collector builds fresh metric families
//! from it at encoding time (like the `prometheus` crate's own `ProcessCollector`). So a scrape
//! never sees a half-applied cycle, and label sets without active sessions vanish from the gauge by
//! themselves. The other collectors publish whole lists the same way (`metrics/inventory.rs`), and the API
//! client's reports arrive through the [`Observer`] implementation.
//!
//! Encoding is cached: the text (and its gzip form) is rebuilt when something is published or
//! when the cached copy is older than [`MAX_ENCODED_AGE`] (so self-metrics such as request counts and
//! process CPU stay fresh), never once per scrape. A scrape costs a lock and a clone of `Bytes`.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::tracker::{DURATION_BUCKETS, LabelValues, Snapshot};
use crate::upstream::error::ErrorKind;
use crate::upstream::rate::Budget;
use crate::upstream::{Endpoint, Observer};

/// The longest a cached encoding is served before it is rebuilt.
pub const MAX_ENCODED_AGE: Duration = Duration::from_secs(1);

/// Content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const FROM_LAST_POLL: &str =
    "(from the last background poll of the CloudConnexa API, not read at scrape time)";

/// The exporter's metrics.
pub struct Metrics {
    registry: Registry,
    /// The enabled collectors, by their `collector` label.
    collectors: Vec<&'static str>,
    /// `cloudconnexa_up`.
    up: IntGauge,
    /// `cloudconnexa_collector_up{collector}`.
    collector_up: IntGaugeVec,
    /// `cloudconnexa_last_successful_poll_timestamp_seconds{collector}`.
    last_success: GaugeVec,
    /// `cloudconnexa_poll_duration_seconds{collector}`.
    poll_duration: GaugeVec,
    /// `cloudconnexa_poll_errors_total{collector,kind}`.
    poll_errors: IntCounterVec,
    /// `cloudconnexa_poll_cycles_total{collector}`.
    poll_cycles: IntCounterVec,
    /// `cloudconnexa_api_requests_total{endpoint,code}`.
    api_requests: IntCounterVec,
    /// `cloudconnexa_rate_limit_wait_seconds_total`.
    rate_limit_wait: Counter,
    shared: Arc<Shared>,
    generation: AtomicU64,
    cache: Mutex<Option<Encoded>>,
}

mod inventory;

pub use inventory::{CONNECTOR_STATES, ConnectorState, DeviceCount, RegionInfo, UserCount};

/// State read by the custom collectors at encoding time.
#[derive(Default)]
struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    upstream: RwLock<UpstreamGauges>,
    inventory: RwLock<inventory::Published>,
}

/// Gauges that exist only once the API has told us their value.
#[derive(Debug, Default, Clone, Copy)]
struct UpstreamGauges {
    budget: Option<Budget>,
    clock_skew_seconds: Option<f64>,
}

/// One encoding of the registry.
#[derive(Clone)]
pub struct Encoded {
    /// The text format.
    pub text: Bytes,
    /// The same, gzip-compressed.
    pub gzip: Bytes,
    generation: u64,
    at: Instant,
}

impl Metrics {
    /// Registers every metric. `gauge_names` and `counter_names` are the session dimensions of the
    /// active gauge and of the counters chosen by configuration, `collectors` the `collector`
    /// labels of the enabled collectors: each gets its series of the poll self-metrics (`up` at 0
    /// and every error kind at 0 until it runs), and the session families exist only when
    /// `sessions` is among them.
    pub fn new(
        gauge_names: Vec<&'static str>,
        counter_names: Vec<&'static str>,
        collectors: &[&'static str],
    ) -> Self {
        let registry = Registry::new();
        let up = IntGauge::new(
            "cloudconnexa_up",
            "1 if the last run of every enabled collector of the CloudConnexa API succeeded, else 0.",
        )
        .expect("valid metric");
        let collector_up = IntGaugeVec::new(
            Opts::new(
                "cloudconnexa_collector_up",
                "1 if the collector's last run succeeded, else 0.",
            ),
            &["collector"],
        )
        .expect("valid metric");
        let last_success = GaugeVec::new(
            Opts::new(
                "cloudconnexa_last_successful_poll_timestamp_seconds",
                "Unix time of the end of the collector's last successful run.",
            ),
            &["collector"],
        )
        .expect("valid metric");
        let poll_duration = GaugeVec::new(
            Opts::new(
                "cloudconnexa_poll_duration_seconds",
                "How long the collector's last run took, waits for the API's rate limit included.",
            ),
            &["collector"],
        )
        .expect("valid metric");
        let poll_errors = IntCounterVec::new(
            Opts::new(
                "cloudconnexa_poll_errors_total",
                "Failed runs by collector and cause.",
            ),
            &["collector", "kind"],
        )
        .expect("valid metric");
        let poll_cycles = IntCounterVec::new(
            Opts::new(
                "cloudconnexa_poll_cycles_total",
                "Runs by collector, successful or not.",
            ),
            &["collector"],
        )
        .expect("valid metric");
        let api_requests = IntCounterVec::new(
            Opts::new(
                "cloudconnexa_api_requests_total",
                "Requests sent to the CloudConnexa API by endpoint and HTTP status (error: no response).",
            ),
            &["endpoint", "code"],
        )
        .expect("valid metric");
        let rate_limit_wait = Counter::new(
            "cloudconnexa_rate_limit_wait_seconds_total",
            "Time spent waiting for the CloudConnexa API's rate limit before sending requests.",
        )
        .expect("valid metric");
        let build_info = IntGauge::with_opts(
            Opts::new(
                "cloudconnexa_exporter_build_info",
                "Build information of cloudconnexa_exporter; always 1.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION"))
            .const_label("revision", env!("CLOUDCONNEXA_REVISION"))
            .const_label("rustc_version", env!("CLOUDCONNEXA_RUSTC_VERSION")),
        )
        .expect("valid metric");
        build_info.set(1);
        for collector in collectors {
            collector_up.with_label_values(&[collector]).set(0);
            poll_cycles.with_label_values(&[collector]);
            for kind in ErrorKind::ALL {
                poll_errors.with_label_values(&[collector, kind.as_str()]);
            }
        }
        let shared = Arc::new(Shared::default());
        let mut families: Vec<Box<dyn Collector>> = vec![
            Box::new(up.clone()),
            Box::new(collector_up.clone()),
            Box::new(last_success.clone()),
            Box::new(poll_duration.clone()),
            Box::new(poll_errors.clone()),
            Box::new(poll_cycles.clone()),
            Box::new(api_requests.clone()),
            Box::new(rate_limit_wait.clone()),
            Box::new(build_info),
            Box::new(UpstreamCollector::new(shared.clone())),
            Box::new(inventory::InventoryCollector::new(shared.clone())),
        ];
        if collectors.contains(&"sessions") {
            families.push(Box::new(SnapshotCollector::new(
                gauge_names,
                counter_names,
                shared.clone(),
            )));
        }
        for c in families {
            registry.register(c).expect("metric names are unique");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics register once");
        Self {
            registry,
            collectors: collectors.to_vec(),
            up,
            collector_up,
            last_success,
            poll_duration,
            poll_errors,
            poll_cycles,
            api_requests,
            rate_limit_wait,
            shared,
            generation: AtomicU64::new(0),
            cache: Mutex::new(None),
        }
    }

    /// Records a successful run of `collector` that took `took` and ended at `now`.
    pub fn record_success(&self, collector: &str, took: Duration, now: DateTime<Utc>) {
        self.poll_cycles.with_label_values(&[collector]).inc();
        self.poll_duration
            .with_label_values(&[collector])
            .set(took.as_secs_f64());
        self.collector_up.with_label_values(&[collector]).set(1);
        self.last_success
            .with_label_values(&[collector])
            .set(now.timestamp_millis() as f64 / 1000.0);
        self.refresh_up();
    }

    /// Records a failed run of `collector` that took `took`, by the kind of its error.
    pub fn record_failure(&self, collector: &str, took: Duration, kind: ErrorKind) {
        self.poll_cycles.with_label_values(&[collector]).inc();
        self.poll_duration
            .with_label_values(&[collector])
            .set(took.as_secs_f64());
        self.collector_up.with_label_values(&[collector]).set(0);
        self.poll_errors
            .with_label_values(&[collector, kind.as_str()])
            .inc();
        self.refresh_up();
    }

    /// `cloudconnexa_up`: 1 when every enabled collector's last run succeeded.
    fn refresh_up(&self) {
        let all = self
            .collectors
            .iter()
            .all(|c| self.collector_up.with_label_values(&[c]).get() == 1);
        self.up.set(i64::from(all));
    }

    /// Publishes the tracker's state at the end of a cycle.
    pub fn publish(&self, snapshot: Snapshot) {
        *self
            .shared
            .snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The current encoding, rebuilt when stale.
    pub fn encoded(&self) -> Encoded {
        let generation = self.generation.load(Ordering::Acquire);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = cache
            .as_ref()
            .filter(|e| e.generation == generation && e.at.elapsed() < MAX_ENCODED_AGE)
        {
            return e.clone();
        }
        let text = Bytes::from(self.encode_text());
        let gzip = Bytes::from(gzip(&text));
        let fresh = Encoded {
            text,
            gzip,
            generation,
            at: Instant::now(),
        };
        *cache = Some(fresh.clone());
        fresh
    }

    /// Encodes the registry in the text format, bypassing the cache.
    pub fn encode_text(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on IO; a malformed family would be a bug worth logging.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        buf
    }
}

/// The client's reports become self-metrics: request counts, the bucket, the clock offset and the
/// time spent waiting.
impl Observer for Metrics {
    fn request_done(&self, endpoint: Endpoint, status: Option<u16>) {
        let code = status.map_or_else(|| "error".to_owned(), |c| c.to_string());
        self.api_requests
            .with_label_values(&[endpoint.as_str(), &code])
            .inc();
    }

    fn budget_seen(&self, budget: Budget) {
        self.shared
            .upstream
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .budget = Some(budget);
    }

    fn clock_offset_seen(&self, offset: chrono::Duration) {
        self.shared
            .upstream
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clock_skew_seconds = Some(offset.num_milliseconds() as f64 / 1000.0);
    }

    fn waited_for_budget(&self, wait: Duration) {
        self.rate_limit_wait.inc_by(wait.as_secs_f64());
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// The state of `--web.config.file` reloads; registered only when a web configuration is in use,
/// so exporters without one do not show a reload that never happens.
#[derive(Clone)]
pub struct WebConfigGauges {
    /// `cloudconnexa_exporter_web_config_last_reload_successful`.
    pub last_reload_successful: IntGauge,
    /// `cloudconnexa_exporter_web_config_last_reload_success_timestamp_seconds`.
    pub last_reload_success_timestamp: Gauge,
}

impl Metrics {
    /// Registers the [`WebConfigGauges`]; fails if called twice.
    pub fn register_web_config_gauges(&self) -> prometheus::Result<WebConfigGauges> {
        let last_reload_successful = IntGauge::new(
            "cloudconnexa_exporter_web_config_last_reload_successful",
            "1 if the last load of the web configuration file (TLS, basic auth) succeeded, else 0.",
        )?;
        let last_reload_success_timestamp = Gauge::new(
            "cloudconnexa_exporter_web_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful load of the web configuration file.",
        )?;
        self.registry
            .register(Box::new(last_reload_successful.clone()))?;
        self.registry
            .register(Box::new(last_reload_success_timestamp.clone()))?;
        Ok(WebConfigGauges {
            last_reload_successful,
            last_reload_success_timestamp,
        })
    }
}

/// Builds the session families (and the rate-limit and skew gauges) from the published state.
struct SnapshotCollector {
    gauge_names: Vec<&'static str>,
    counter_names: Vec<&'static str>,
    descs: Vec<Desc>,
    shared: Arc<Shared>,
}

/// Name, help and extra label of each session family, in output order.
const SESSION_FAMILIES: [(&str, &str); 6] = [
    (
        "cloudconnexa_sessions_active",
        "Sessions whose status is ACTIVE",
    ),
    (
        "cloudconnexa_sessions_started_total",
        "Sessions that started at or after the exporter's start, each counted once",
    ),
    (
        "cloudconnexa_sessions_ended_total",
        "Sessions that ended (COMPLETED or FAILED) at or after the exporter's start, each counted once, by disconnect reason",
    ),
    (
        "cloudconnexa_sessions_failed_total",
        "Sessions that FAILED at or after the exporter's start, each counted once, by disconnect reason",
    ),
    (
        "cloudconnexa_session_in_bytes_total",
        "Bytes in (bytesIn) moved by sessions active at or after the exporter's start",
    ),
    (
        "cloudconnexa_session_out_bytes_total",
        "Bytes out (bytesOut) moved by sessions active at or after the exporter's start",
    ),
];

const DURATION_FAMILY: (&str, &str) = (
    "cloudconnexa_session_duration_seconds",
    "Length of each session that ended at or after the exporter's start",
);

const FOLDED: (&str, &str) = (
    "cloudconnexa_exporter_sessions_folded_total",
    "Sessions counted under the catch-all label set (every session dimension \"other\") because \
     their own label set would have exceeded --sessions.max-label-sets, by the series concerned: \
     metrics=\"active\" (the active gauge) or metrics=\"counters\" (the session counters).",
);

/// Values of the `metrics` label of [`FOLDED`].
const FOLDED_METRICS: [&str; 2] = ["active", "counters"];

const BUDGET_REMAINING: (&str, &str) = (
    "cloudconnexa_api_rate_limit_remaining",
    "X-RateLimit-Remaining from the last CloudConnexa API response that had it.",
);
const BUDGET_BURST: (&str, &str) = (
    "cloudconnexa_api_rate_limit_burst_capacity",
    "X-RateLimit-Burst-Capacity from the last CloudConnexa API response that had it.",
);
const CLOCK_SKEW: (&str, &str) = (
    "cloudconnexa_clock_skew_seconds",
    "The CloudConnexa API server's clock (its Date header) minus the local clock.",
);

impl SnapshotCollector {
    fn new(
        gauge_names: Vec<&'static str>,
        counter_names: Vec<&'static str>,
        shared: Arc<Shared>,
    ) -> Self {
        let owned = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let counter_dims = owned(&counter_names);
        let with_reason: Vec<String> = counter_dims
            .iter()
            .cloned()
            .chain(["reason".to_owned()])
            .collect();
        let mut descs = Vec::new();
        for (i, (name, help)) in SESSION_FAMILIES.iter().enumerate() {
            let labels = match i {
                0 => owned(&gauge_names),
                2 | 3 => with_reason.clone(),
                _ => counter_dims.clone(),
            };
            descs.push(
                Desc::new(
                    (*name).into(),
                    format!("{help} {FROM_LAST_POLL}."),
                    labels,
                    Default::default(),
                )
                .expect("valid desc"),
            );
        }
        descs.push(
            Desc::new(
                DURATION_FAMILY.0.into(),
                format!("{} {FROM_LAST_POLL}.", DURATION_FAMILY.1),
                vec!["vpn_region".into(), "status".into()],
                Default::default(),
            )
            .expect("valid desc"),
        );
        descs.push(
            Desc::new(
                FOLDED.0.into(),
                FOLDED.1.into(),
                vec!["metrics".into()],
                Default::default(),
            )
            .expect("valid desc"),
        );
        Self {
            gauge_names,
            counter_names,
            descs,
            shared,
        }
    }

    /// The label pairs of a series: `names` with `values`, then `extra`.
    fn labels(
        names: &[&str],
        values: &LabelValues,
        extra: &[(&str, &str)],
    ) -> Vec<proto::LabelPair> {
        names
            .iter()
            .zip(values.iter())
            .map(|(n, v)| (*n, &**v))
            .chain(extra.iter().copied())
            .map(label_pair)
            .collect()
    }
}

fn label_pair((name, value): (&str, &str)) -> proto::LabelPair {
    let mut p = proto::LabelPair::default();
    p.set_name(name.to_owned());
    p.set_value(value.to_owned());
    p
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn sample(labels: Vec<proto::LabelPair>, kind: MetricType, value: f64) -> proto::Metric {
    let mut m = proto::Metric::from_label(labels);
    match kind {
        MetricType::COUNTER => {
            let mut c = proto::Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
        _ => {
            let mut g = proto::Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
    }
    m
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let snap = self
            .shared
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let help = |i: usize| format!("{} {FROM_LAST_POLL}.", SESSION_FAMILIES[i].1);
        let plain = |i: usize, kind: MetricType, series: &[(LabelValues, u64)]| {
            let names = if i == 0 {
                &self.gauge_names
            } else {
                &self.counter_names
            };
            let metrics = series
                .iter()
                .map(|(l, n)| sample(Self::labels(names, l, &[]), kind, *n as f64))
                .collect();
            family(SESSION_FAMILIES[i].0, &help(i), kind, metrics)
        };
        let by_reason = |i: usize, series: &[(LabelValues, Arc<str>, u64)]| {
            let metrics = series
                .iter()
                .map(|(l, r, n)| {
                    sample(
                        Self::labels(&self.counter_names, l, &[("reason", r)]),
                        MetricType::COUNTER,
                        *n as f64,
                    )
                })
                .collect();
            family(
                SESSION_FAMILIES[i].0,
                &help(i),
                MetricType::COUNTER,
                metrics,
            )
        };
        let durations = snap
            .durations
            .iter()
            .map(|(region, status, h)| {
                let mut m = proto::Metric::from_label(vec![
                    label_pair(("vpn_region", region)),
                    label_pair(("status", status.label_value())),
                ]);
                let mut hist = proto::Histogram::default();
                let mut cumulative = 0;
                let buckets = DURATION_BUCKETS
                    .iter()
                    .zip(h.buckets.iter())
                    .map(|(&bound, &n)| {
                        cumulative += n;
                        let mut b = proto::Bucket::default();
                        b.set_upper_bound(bound);
                        b.set_cumulative_count(cumulative);
                        b
                    })
                    .collect();
                hist.set_bucket(buckets);
                hist.set_sample_count(h.count);
                hist.set_sample_sum(h.sum);
                m.set_histogram(hist);
                m
            })
            .collect();
        vec![
            plain(0, MetricType::GAUGE, &snap.active),
            plain(1, MetricType::COUNTER, &snap.started),
            by_reason(2, &snap.ended),
            by_reason(3, &snap.failed),
            plain(4, MetricType::COUNTER, &snap.bytes_in),
            plain(5, MetricType::COUNTER, &snap.bytes_out),
            family(
                DURATION_FAMILY.0,
                &format!("{} {FROM_LAST_POLL}.", DURATION_FAMILY.1),
                MetricType::HISTOGRAM,
                durations,
            ),
            family(
                FOLDED.0,
                FOLDED.1,
                MetricType::COUNTER,
                FOLDED_METRICS
                    .iter()
                    .zip([snap.folded_active, snap.folded_counters])
                    .map(|(metrics, n)| {
                        sample(
                            vec![label_pair(("metrics", metrics))],
                            MetricType::COUNTER,
                            n as f64,
                        )
                    })
                    .collect(),
            ),
        ]
    }
}

/// The gauges that exist only once the API has told their value: the rate-limit bucket and the
/// server's clock.
struct UpstreamCollector {
    descs: Vec<Desc>,
    shared: Arc<Shared>,
}

impl UpstreamCollector {
    fn new(shared: Arc<Shared>) -> Self {
        let descs = [BUDGET_REMAINING, BUDGET_BURST, CLOCK_SKEW]
            .into_iter()
            .map(|(name, help)| {
                Desc::new(name.into(), help.into(), vec![], Default::default()).expect("valid desc")
            })
            .collect();
        Self { descs, shared }
    }
}

impl Collector for UpstreamCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let upstream = *self
            .shared
            .upstream
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let gauge = |(name, help): (&str, &str), value: Option<f64>| {
            value.map(|v| {
                family(
                    name,
                    help,
                    MetricType::GAUGE,
                    vec![sample(vec![], MetricType::GAUGE, v)],
                )
            })
        };
        [
            gauge(
                BUDGET_REMAINING,
                upstream.budget.map(|b| f64::from(b.remaining)),
            ),
            gauge(
                BUDGET_BURST,
                upstream.budget.and_then(|b| b.burst).map(f64::from),
            ),
            gauge(CLOCK_SKEW, upstream.clock_skew_seconds),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{Dimension, EndStatus, HistogramCounts};

    fn labels(values: &[&str]) -> LabelValues {
        values.iter().map(|v| Arc::<str>::from(*v)).collect()
    }

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.encode_text()).expect("UTF-8")
    }

    /// The sample lines of `family` (its `_bucket`, `_sum` and `_count` lines for a histogram).
    fn lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with(['{', ' ', '_']))
            })
            .collect()
    }

    fn metrics() -> Metrics {
        Metrics::new(
            vec!["vpn_region", "protocol"],
            vec!["vpn_region", "protocol"],
            &["sessions"],
        )
    }

    #[test]
    fn the_duration_histogram_has_cumulative_buckets_by_region_and_status() {
        let m = metrics();
        let mut h = HistogramCounts::default();
        // 30 s, 30 s, 10 min, 2 days and 5 days: slots 60, 60, 900, 259200 and +Inf.
        h.buckets[0] = 2;
        h.buckets[2] = 1;
        h.buckets[9] = 1;
        h.buckets[10] = 1;
        h.count = 5;
        h.sum = 30.0 + 30.0 + 600.0 + 172_800.0 + 432_000.0;
        m.publish(Snapshot {
            durations: vec![("eu".into(), EndStatus::Failed, h)],
            ..Snapshot::default()
        });
        let text = text(&m);
        let series = |le: &str| {
            format!(
                "cloudconnexa_session_duration_seconds_bucket{{vpn_region=\"eu\",status=\"failed\",le=\"{le}\"}}"
            )
        };
        let expected = [
            ("60", 2),
            ("300", 2),
            ("900", 3),
            ("1800", 3),
            ("3600", 3),
            ("7200", 3),
            ("14400", 3),
            ("28800", 3),
            ("86400", 3),
            ("259200", 4),
            ("+Inf", 5),
        ];
        let buckets = lines(&text, "cloudconnexa_session_duration_seconds_bucket");
        assert_eq!(buckets.len(), expected.len(), "{text}");
        for (line, (le, n)) in buckets.iter().zip(expected) {
            assert_eq!(*line, format!("{} {n}", series(le)));
        }
        assert!(text.contains(
            "cloudconnexa_session_duration_seconds_sum{vpn_region=\"eu\",status=\"failed\"} 605460\n"
        ));
        assert!(text.contains(
            "cloudconnexa_session_duration_seconds_count{vpn_region=\"eu\",status=\"failed\"} 5\n"
        ));
        assert!(text.contains("# TYPE cloudconnexa_session_duration_seconds histogram\n"));
    }

    #[test]
    fn session_series_carry_the_configured_labels_in_order_then_the_reason() {
        let m = metrics();
        let eu_udp = labels(&["eu", "UDP"]);
        m.publish(Snapshot {
            active: vec![(eu_udp.clone(), 3)],
            started: vec![(eu_udp.clone(), 7)],
            bytes_in: vec![(eu_udp.clone(), 1_000)],
            bytes_out: vec![(eu_udp.clone(), 2_000)],
            ended: vec![(eu_udp.clone(), "USER_DISCONNECT".into(), 4)],
            failed: vec![(eu_udp, "AUTH_FAILED".into(), 1)],
            ..Snapshot::default()
        });
        let text = text(&m);
        for line in [
            "cloudconnexa_sessions_active{vpn_region=\"eu\",protocol=\"UDP\"} 3",
            "cloudconnexa_sessions_started_total{vpn_region=\"eu\",protocol=\"UDP\"} 7",
            "cloudconnexa_session_in_bytes_total{vpn_region=\"eu\",protocol=\"UDP\"} 1000",
            "cloudconnexa_session_out_bytes_total{vpn_region=\"eu\",protocol=\"UDP\"} 2000",
            "cloudconnexa_sessions_ended_total{vpn_region=\"eu\",protocol=\"UDP\",reason=\"USER_DISCONNECT\"} 4",
            "cloudconnexa_sessions_failed_total{vpn_region=\"eu\",protocol=\"UDP\",reason=\"AUTH_FAILED\"} 1",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
        assert!(text.contains("# TYPE cloudconnexa_sessions_active gauge\n"));
        assert!(text.contains("# TYPE cloudconnexa_sessions_started_total counter\n"));
        assert!(
            text.contains("from the last background poll"),
            "HELP says where session values come from"
        );
    }

    #[test]
    fn reasons_beyond_the_fiftieth_are_exported_as_other() {
        let m = metrics();
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut tracker = crate::tracker::SessionTracker::new(
            t0,
            vec![Dimension::VpnRegion, Dimension::Protocol],
        );
        let failed: Vec<crate::upstream::model::Session> = (0..55)
            .map(|i| crate::upstream::model::Session {
                id: Some(format!("s{i}").into()),
                status: Some(crate::upstream::model::SessionStatus::Failed),
                region: Some("eu".into()),
                protocol: Some("UDP".into()),
                start_time: Some(t0),
                end_time: Some(t0),
                disconnect_reason: Some(format!("REASON_{i:02}").into()),
                ..Default::default()
            })
            .collect();
        tracker.apply(&failed, t0);
        m.publish(tracker.snapshot());
        let text = text(&m);
        let failed = lines(&text, "cloudconnexa_sessions_failed_total");
        assert_eq!(failed.len(), 51, "50 reasons and other:\n{text}");
        assert!(failed.contains(
            &"cloudconnexa_sessions_failed_total{vpn_region=\"eu\",protocol=\"UDP\",reason=\"other\"} 5"
        ));
    }

    #[test]
    fn counters_carry_their_own_labels_and_folding_is_counted_from_zero() {
        let m = Metrics::new(
            vec!["vpn_region", "protocol"],
            vec!["vpn_region"],
            &["sessions"],
        );
        let fresh = text(&m);
        for metrics in ["active", "counters"] {
            let line =
                format!("cloudconnexa_exporter_sessions_folded_total{{metrics=\"{metrics}\"}} 0\n");
            assert!(fresh.contains(&line), "{line} in\n{fresh}");
        }
        m.publish(Snapshot {
            active: vec![(labels(&["eu", "UDP"]), 2)],
            started: vec![(labels(&["eu"]), 5)],
            failed: vec![(labels(&["other"]), "AUTH_FAILED".into(), 1)],
            folded_counters: 3,
            ..Snapshot::default()
        });
        let text = text(&m);
        for line in [
            "cloudconnexa_sessions_active{vpn_region=\"eu\",protocol=\"UDP\"} 2",
            "cloudconnexa_sessions_started_total{vpn_region=\"eu\"} 5",
            "cloudconnexa_sessions_failed_total{vpn_region=\"other\",reason=\"AUTH_FAILED\"} 1",
            "cloudconnexa_exporter_sessions_folded_total{metrics=\"counters\"} 3",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
    }

    #[test]
    fn each_enabled_collector_has_its_poll_series_from_the_start() {
        let m = Metrics::new(
            vec!["vpn_region"],
            vec!["vpn_region"],
            &["sessions", "regions"],
        );
        let text = text(&m);
        for collector in ["sessions", "regions"] {
            for kind in ErrorKind::ALL {
                let line = format!(
                    "cloudconnexa_poll_errors_total{{collector=\"{collector}\",kind=\"{}\"}} 0\n",
                    kind.as_str()
                );
                assert!(text.contains(&line), "{line}");
            }
            let up = format!("cloudconnexa_collector_up{{collector=\"{collector}\"}} 0\n");
            assert!(text.contains(&up), "{up}");
        }
        assert!(
            !text.contains("collector=\"users\""),
            "a disabled collector has no series"
        );
        assert!(text.contains("cloudconnexa_up 0\n"));
        assert!(text.contains("cloudconnexa_exporter_build_info{"));
        assert!(
            !text.contains("cloudconnexa_api_rate_limit_remaining"),
            "no bucket reading yet, no gauge"
        );
        assert!(
            !text.contains("cloudconnexa_last_successful_poll_timestamp_seconds{"),
            "no success yet, no timestamp"
        );
    }

    #[test]
    fn up_is_1_only_while_every_enabled_collector_succeeds() {
        let m = Metrics::new(vec![], vec![], &["sessions", "connectors"]);
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap();
        m.record_success("sessions", Duration::from_millis(1500), now);
        let t = text(&m);
        assert!(t.contains("cloudconnexa_up 0\n"), "connectors have not run");
        assert!(t.contains("cloudconnexa_collector_up{collector=\"sessions\"} 1\n"));
        assert!(t.contains(
            "cloudconnexa_last_successful_poll_timestamp_seconds{collector=\"sessions\"} 1700000000.5\n"
        ));
        assert!(t.contains("cloudconnexa_poll_duration_seconds{collector=\"sessions\"} 1.5\n"));
        m.record_success("connectors", Duration::from_secs(1), now);
        assert!(text(&m).contains("cloudconnexa_up 1\n"));
        m.record_failure("connectors", Duration::from_secs(2), ErrorKind::Auth);
        let t = text(&m);
        assert!(t.contains("cloudconnexa_up 0\n"));
        assert!(t.contains("cloudconnexa_collector_up{collector=\"connectors\"} 0\n"));
        assert!(t.contains("cloudconnexa_collector_up{collector=\"sessions\"} 1\n"));
        assert!(t.contains(
            "cloudconnexa_poll_errors_total{collector=\"connectors\",kind=\"auth\"} 1\n"
        ));
        assert!(t.contains("cloudconnexa_poll_cycles_total{collector=\"connectors\"} 2\n"));
    }

    #[test]
    fn without_the_sessions_collector_there_are_no_session_families() {
        let m = Metrics::new(vec!["vpn_region"], vec!["vpn_region"], &["connectors"]);
        m.publish(Snapshot {
            active: vec![(labels(&["eu"]), 1)],
            ..Snapshot::default()
        });
        let text = text(&m);
        assert!(!text.contains("cloudconnexa_session"), "{text}");
    }

    #[test]
    fn inventory_families_appear_once_published_and_follow_each_publication() {
        let m = Metrics::new(vec![], vec![], &["connectors", "users", "regions"]);
        assert!(!text(&m).contains("cloudconnexa_connector_status"));
        let connector = |id: &str, status: &str| ConnectorState {
            id: id.into(),
            name: format!("{id}-name"),
            network: "hq".into(),
            host: "none".into(),
            vpn_region: "us-east-1".into(),
            status: status.into(),
        };
        m.publish_connectors(vec![
            connector("c1", "OFFLINE"),
            connector("c2", "DEGRADED"),
        ]);
        let t = text(&m);
        let series = |id: &str, state: &str, value: u8| {
            format!(
                "cloudconnexa_connector_status{{connector_id=\"{id}\",connector=\"{id}-name\",network=\"hq\",host=\"none\",vpn_region=\"us-east-1\",status=\"{state}\"}} {value}\n"
            )
        };
        for line in [
            series("c1", "ONLINE", 0),
            series("c1", "OFFLINE", 1),
            series("c1", "ONLINE_WITH_ISSUES", 0),
            series("c2", "DEGRADED", 1),
            series("c2", "OFFLINE", 0),
        ] {
            assert!(t.contains(&line), "{line} in\n{t}");
        }
        assert_eq!(lines(&t, "cloudconnexa_connector_status").len(), 7);
        m.publish_connectors(vec![connector("c2", "ONLINE")]);
        let t = text(&m);
        assert!(
            !t.contains("connector_id=\"c1\""),
            "a connector no longer listed is gone"
        );
        assert_eq!(lines(&t, "cloudconnexa_connector_status").len(), 3);

        m.publish_users(
            vec![UserCount {
                user_group: "Sales".into(),
                status: "ACTIVE".into(),
                role: "MEMBER".into(),
                auth_type: "SAML".into(),
                connection_status: "ONLINE".into(),
                count: 12,
            }],
            vec![DeviceCount {
                connection_status: "OFFLINE".into(),
                os: "MAC".into(),
                count: 30,
            }],
        );
        m.publish_regions(vec![RegionInfo {
            vpn_region: "eu-central-1".into(),
            region_name: "Frankfurt".into(),
            country: "Germany".into(),
            country_iso: "DE".into(),
            continent: "Europe".into(),
        }]);
        let t = text(&m);
        for line in [
            "cloudconnexa_users{user_group=\"Sales\",status=\"ACTIVE\",role=\"MEMBER\",auth_type=\"SAML\",connection_status=\"ONLINE\"} 12\n",
            "cloudconnexa_devices{connection_status=\"OFFLINE\",os=\"MAC\"} 30\n",
            "cloudconnexa_vpn_region_info{vpn_region=\"eu-central-1\",region_name=\"Frankfurt\",country=\"Germany\",country_iso=\"DE\",continent=\"Europe\"} 1\n",
        ] {
            assert!(t.contains(line), "{line} in\n{t}");
        }
    }

    #[test]
    fn label_sets_that_vanish_from_the_snapshot_vanish_from_the_exposition() {
        let m = metrics();
        let (eu, us) = (labels(&["eu", "UDP"]), labels(&["us", "TCP"]));
        m.publish(Snapshot {
            active: vec![(eu.clone(), 2), (us.clone(), 1)],
            started: vec![(eu.clone(), 2), (us.clone(), 1)],
            ..Snapshot::default()
        });
        assert_eq!(lines(&text(&m), "cloudconnexa_sessions_active").len(), 2);
        m.publish(Snapshot {
            active: vec![(eu.clone(), 2)],
            started: vec![(eu, 2), (us, 1)],
            ..Snapshot::default()
        });
        let text = text(&m);
        assert_eq!(
            lines(&text, "cloudconnexa_sessions_active"),
            ["cloudconnexa_sessions_active{vpn_region=\"eu\",protocol=\"UDP\"} 2"]
        );
        assert_eq!(lines(&text, "cloudconnexa_sessions_started_total").len(), 2);
    }

    #[test]
    fn the_observer_reports_become_self_metrics() {
        let m = metrics();
        m.request_done(Endpoint::Sessions, Some(200));
        m.request_done(Endpoint::Sessions, Some(200));
        m.request_done(Endpoint::Token, None);
        m.budget_seen(Budget {
            remaining: 17,
            burst: Some(20),
            replenish_rate: Some(1),
            replenish_time: Some(Duration::from_secs(15)),
        });
        m.clock_offset_seen(chrono::Duration::milliseconds(-2_500));
        m.waited_for_budget(Duration::from_millis(1_500));
        let text = text(&m);
        for line in [
            "cloudconnexa_api_requests_total{code=\"200\",endpoint=\"sessions\"} 2",
            "cloudconnexa_api_requests_total{code=\"error\",endpoint=\"token\"} 1",
            "cloudconnexa_api_rate_limit_remaining 17",
            "cloudconnexa_api_rate_limit_burst_capacity 20",
            "cloudconnexa_clock_skew_seconds -2.5",
            "cloudconnexa_rate_limit_wait_seconds_total 1.5",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
    }
}
