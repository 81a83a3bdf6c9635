//! The exporter against the simulated tenant under churn and faults: every metric of the contract
//! converges to the world's truth, no counter ever decreases, no malformed request is sent and
//! the rate limit is respected.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudconnexa_exporter::clock::{Clock, SkewedClock, SystemClock};
use cloudconnexa_sim::{self as sim, Faults, RateLimit, SimConfig, Simulator, TruthSession};

use crate::helpers::{Exporter, Metrics, fast_retry, upstream_args};

/// A running simulator on a loopback port.
struct Sim {
    sim: Simulator,
    url: String,
}

/// A Tuesday at 14:00 UTC: the American morning and the European afternoon, so the world churns
/// whatever the time the tests run at.
fn busy_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T14:00:00Z")
        .unwrap()
        .to_utc()
}

async fn start_sim(config: SimConfig) -> Sim {
    let sim = Simulator::starting_at(config, busy_start());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim::serve(listener, sim.clone(), std::future::pending()));
    Sim { sim, url }
}

/// A lively, hostile tenant: fast churn, a tight bucket (burst 20), tokens that live 3 s, a server
/// clock 5 minutes ahead, and every fault the exporter must survive.
fn hostile(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        users: 600,
        speed: 30.0,
        rate_limit: Some(RateLimit {
            burst: 20,
            replenish_rate: 2,
            replenish_time: Duration::from_secs(1),
        }),
        token_ttl: Duration::from_secs(3),
        clock_skew: chrono::Duration::minutes(5),
        faults: Faults {
            rate_5xx: 0.05,
            rate_truncated: 0.05,
            rate_duplicates: 0.3,
            rate_spurious_401: 0.03,
            ..Faults::default()
        },
        outages_per_day: 0.0,
        ..SimConfig::default()
    }
}

/// What the metrics must read, computed from the world's truth and T0.
#[derive(Debug, PartialEq)]
struct Expected {
    active_by_region: BTreeMap<String, f64>,
    active_by_network: BTreeMap<String, f64>,
    started: f64,
    ended_by_reason: BTreeMap<String, f64>,
    failed_by_reason: BTreeMap<String, f64>,
    bytes_in: f64,
    bytes_out: f64,
    durations_by_status: BTreeMap<String, f64>,
}

impl Expected {
    fn from_truth(truth: &[TruthSession], t0: DateTime<Utc>) -> Self {
        let mut e = Expected {
            active_by_region: BTreeMap::new(),
            active_by_network: BTreeMap::new(),
            started: 0.0,
            ended_by_reason: BTreeMap::new(),
            failed_by_reason: BTreeMap::new(),
            bytes_in: 0.0,
            bytes_out: 0.0,
            durations_by_status: BTreeMap::new(),
        };
        for s in truth {
            let active = s.status == "ACTIVE";
            let ended_after_t0 = s.end.is_some_and(|end| end >= t0);
            if active {
                *e.active_by_region.entry(s.region.clone()).or_default() += 1.0;
                *e.active_by_network.entry(s.network.clone()).or_default() += 1.0;
            }
            if s.start >= t0 {
                e.started += 1.0;
            }
            if ended_after_t0 {
                let reason = s.reason.clone().unwrap_or_else(|| "none".into());
                *e.ended_by_reason.entry(reason.clone()).or_default() += 1.0;
                if s.failed {
                    *e.failed_by_reason.entry(reason).or_default() += 1.0;
                }
                let status = if s.failed { "failed" } else { "completed" };
                *e.durations_by_status.entry(status.into()).or_default() += 1.0;
            }
            if active || ended_after_t0 {
                e.bytes_in += s.bytes_in as f64;
                e.bytes_out += s.bytes_out as f64;
            }
        }
        e
    }

    fn from_metrics(m: &Metrics) -> Self {
        let nonzero =
            |map: BTreeMap<String, f64>| map.into_iter().filter(|(_, v)| *v > 0.0).collect();
        Expected {
            active_by_region: nonzero(m.sum_by("cloudconnexa_sessions_active", "vpn_region")),
            active_by_network: nonzero(m.sum_by("cloudconnexa_sessions_active", "network")),
            started: m.sum("cloudconnexa_sessions_started_total", &[]),
            ended_by_reason: nonzero(m.sum_by("cloudconnexa_sessions_ended_total", "reason")),
            failed_by_reason: nonzero(m.sum_by("cloudconnexa_sessions_failed_total", "reason")),
            bytes_in: m.sum("cloudconnexa_session_in_bytes_total", &[]),
            bytes_out: m.sum("cloudconnexa_session_out_bytes_total", &[]),
            durations_by_status: nonzero(
                m.sum_by("cloudconnexa_session_duration_seconds_count", "status"),
            ),
        }
    }
}

/// Every counter series of a scrape, by name and labels.
fn counters(m: &Metrics) -> BTreeMap<String, f64> {
    m.samples
        .iter()
        .filter(|s| {
            s.name.starts_with("cloudconnexa_")
                && (s.name.ends_with("_total") || s.name.contains("_duration_seconds_"))
                && s.name != "cloudconnexa_poll_duration_seconds"
        })
        .map(|s| (format!("{}{:?}", s.name, s.labels), s.value))
        .collect()
}

/// Runs an exporter against `config` with churn, then stops the churn and checks that every
/// metric converges to the truth.
async fn converges(config: SimConfig, api_version: &str, clock: Arc<dyn Clock>) {
    let sim = start_sim(config).await;
    // No session changes while the exporter starts, so T0 is known to the second.
    sim.sim.set_churn(false);
    let mut args = upstream_args(&sim.url);
    args.extend(
        [
            "--poll.interval",
            "1s",
            "--poll.resync-interval",
            "4s",
            "--cloudconnexa.api-version",
            api_version,
        ]
        .map(String::from),
    );
    let exporter = Exporter::start_with(&args, clock, fast_retry()).await;
    exporter.wait_ready(Duration::from_secs(30)).await;
    let t0 = sim.sim.now();
    sim.sim.set_churn(true);

    // Churn for a while, checking that no counter ever decreases.
    let mut last = counters(&exporter.scrape().await);
    let churn_until = tokio::time::Instant::now() + Duration::from_secs(12);
    while tokio::time::Instant::now() < churn_until {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = counters(&exporter.scrape().await);
        for (series, before) in &last {
            let after = now.get(series).copied().unwrap_or_default();
            assert!(
                after >= *before,
                "{series} decreased from {before} to {after}"
            );
        }
        last = now;
    }
    sim.sim.set_churn(false);

    let truth = sim.sim.truth();
    let expected = Expected::from_truth(&truth, t0);
    assert!(
        expected.started > 0.0 && !expected.ended_by_reason.is_empty(),
        "the world churned: {expected:?}"
    );
    let mut latest = None;
    let converged = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let m = exporter.scrape().await;
            let got = Expected::from_metrics(&m);
            if got == expected {
                return m;
            }
            latest = Some(got);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let m = converged.unwrap_or_else(|_| {
        panic!("metrics did not converge:\n expected {expected:?}\n got      {latest:?}")
    });
    assert_eq!(m.value("cloudconnexa_up"), Some(1.0));
    let stats = sim.sim.stats();
    assert_eq!(
        stats.malformed,
        0,
        "malformed requests: {:?}",
        sim.sim
            .recent_requests()
            .iter()
            .filter(|r| r.malformed)
            .collect::<Vec<_>>()
    );
    assert!(
        stats.too_many_requests <= 3,
        "{} requests met a 429",
        stats.too_many_requests
    );
    exporter.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_converge_to_the_truth_on_v1_despite_faults_skew_and_short_tokens() {
    converges(hostile(11), "v1", Arc::new(SystemClock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_converge_to_the_truth_on_the_beta_api() {
    converges(hostile(12), "beta", Arc::new(SystemClock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_clock_five_minutes_behind_loses_and_double_counts_nothing() {
    let config = SimConfig {
        clock_skew: chrono::Duration::zero(),
        ..hostile(13)
    };
    converges(
        config,
        "v1",
        Arc::new(SkewedClock(chrono::Duration::minutes(-5))),
    )
    .await;
}
