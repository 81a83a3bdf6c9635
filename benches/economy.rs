//! Request economy: what the exporter, with every default collector on, asks of the CloudConnexa
//! API in an hour for the reference tenant (2,000 active sessions and 10 changes a minute, 50
//! connectors, 2,000 users with 5,000 devices) on the vendor's default rate limit (a bucket of 20
//! refilled with one request every 15 s), per collector, against the naive strategy of listing
//! ACTIVE, COMPLETED and FAILED sessions in full every cycle. The target: no 429 in the hour and at
//! most 180 requests, 75% of the 240 the bucket refills, leaving room for the team's other tools
//! on the same API key.
//!
//! ```text
//! cargo bench --bench economy                        # an hour of world time in 4 minutes
//! cargo bench --bench economy -- --speed 1           # a real hour
//! cargo bench --bench economy -- --naive-minutes 0   # skip the live naive listers
//! ```
//!
//! 1. **The exporter**, with its default settings, polls `simulate --steady-active 2000
//!    --steady-changes-per-minute 10 --users 2000 --devices 5000 --connectors 50` for an hour of
//!    world time. Its own `cloudconnexa_api_requests_total` and the simulator's `/_sim/stats`
//!    count the requests by endpoint (and so by collector) and status, and the 429s.
//!
//!    `--speed K` (1, 3, 5 or 15; 15 by default) runs the hour in `60/K` minutes by scaling every
//!    clock that matters together: the world runs K times faster (`simulate --speed K`), the
//!    bucket refills K times faster (`--rate-limit.replenish-time 15/K s`) and the exporter
//!    polls K times more often (`--poll.interval 60/K s`, `--poll.resync-interval 300/K s`, and
//!    the other collectors' intervals divided by K: connectors 180/K s, users 900/K s, regions
//!    3600/K s).
//!    In world time each cycle then sees the same changes, spends the same tokens and paces to
//!    the same bucket. What is not scaled: the exporter's overlap, horizon and history margins
//!    (server-clock durations, so already in world time), the token lifetime (12 h; no renewal
//!    in either run), the 60 s floor after a 429 (irrelevant while there are none), and HTTP
//!    latency (about a millisecond against seconds). Between answers the exporter's estimate
//!    of the server clock lags up to K-1 times the real time elapsed (under a minute of world
//!    time at K = 15); windows still tile without gaps and the 2-minute overlap covers the lag.
//!    `--speed 1` checks the scaled figures against a real hour.
//!
//! 2. **The naive strategy, computed**: against an unlimited twin of the tenant, one naive cycle
//!    (ACTIVE, COMPLETED and FAILED over the API's default one-day window, pages of 100) is run
//!    with the exporter's own client and its pages counted; an hour of one-minute cycles costs
//!    60 times that.
//!
//! 3. **The naive strategy, live** (`--naive-minutes N`, 5 by default): two naive listers poll
//!    fresh tenants on the vendor's default limit in real time, every 60 s. One is a plain HTTP
//!    loop, as a script would be written: it reads no rate-limit header and abandons the cycle
//!    at its first 429. The other uses the exporter's client, which paces to the bucket and so
//!    meets no 429, but can then not finish a cycle within the minute.

mod common;

use std::time::{Duration, Instant};

use cloudconnexa_exporter::upstream::client::ApiClient;
use cloudconnexa_exporter::upstream::model::SessionStatus;
use cloudconnexa_exporter::upstream::sessions::SessionsQuery;
use common::{Process, get_text, parse_metrics, sum, wait_for_200};
use serde_json::Value;

const ACTIVE: &str = "2000";
const CHANGES_PER_MINUTE: &str = "10";
/// The reference tenant's inventory.
const USERS: &str = "2000";
const DEVICES: &str = "5000";
const CONNECTORS: &str = "50";
/// The other collectors' default intervals, in seconds, by their `collector` label.
const COLLECTOR_INTERVALS_S: [(&str, u64); 3] =
    [("connectors", 180), ("users", 900), ("regions", 3600)];
/// Which collector asks which endpoint (the token is everyone's).
const ENDPOINTS: [(&str, &str); 7] = [
    ("token", "(token)"),
    ("sessions", "sessions"),
    ("networks", "connectors"),
    ("hosts", "connectors"),
    ("users", "users"),
    ("user_groups", "users"),
    ("regions", "regions"),
];
/// Most requests the exporter may spend in the hour: 75% of the 240 the bucket refills.
const TARGET: u64 = 180;
/// The exporter's default poll interval, and the naive strategy's cycle.
const INTERVAL_S: u64 = 60;
/// The exporter's default resync interval.
const RESYNC_S: u64 = 300;
/// The vendor's default replenish time.
const REPLENISH_S: u64 = 15;
const STATUSES: [SessionStatus; 3] = [
    SessionStatus::Active,
    SessionStatus::Completed,
    SessionStatus::Failed,
];

fn main() {
    if !common::invoked_as_benchmark() {
        println!("economy: run with `cargo bench --bench economy`");
        return;
    }
    let speed: u64 = common::arg("speed").map_or(15, |s| s.parse().expect("--speed N"));
    assert!(
        [1, 3, 5, 15].contains(&speed),
        "--speed must be 1, 3, 5 or 15 (so that 15 s, 60 s and 300 s divide into whole seconds)"
    );
    let naive_minutes: u64 =
        common::arg("naive-minutes").map_or(5, |s| s.parse().expect("--naive-minutes N"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "economy: {ACTIVE} active sessions, {CHANGES_PER_MINUTE} changes a minute, \
             vendor's default limit (burst 20, 1 per {REPLENISH_S} s)"
        );
        let exporter = exporter_hour(speed).await;
        let met = exporter.too_many == 0 && exporter.requests <= TARGET;
        let naive = naive_computed().await;
        let per_hour = naive.pages * (3600 / INTERVAL_S) + 1;
        println!("\n== summary (requests in an hour of world time) ==");
        println!(
            "exporter: {} requests ({} token, {} sessions, {} other collectors), {} answered 429: \
             target (no 429, at most {TARGET}) {}",
            exporter.requests,
            exporter.token,
            exporter.sessions,
            exporter.requests - exporter.token - exporter.sessions,
            exporter.too_many,
            if met { "met" } else { "NOT met" }
        );
        println!(
            "naive:    {per_hour} requests ({} pages a cycle x {} cycles + 1 token)",
            naive.pages,
            3600 / INTERVAL_S
        );
        println!(
            "ratio naive / exporter: {:.1}; the API allows about {} an hour (20 + 3600/{REPLENISH_S})",
            per_hour as f64 / exporter.requests as f64,
            20 + 3600 / REPLENISH_S
        );
        if naive_minutes > 0 {
            naive_live(Duration::from_secs(naive_minutes * 60)).await;
        }
    });
}

/// What the exporter asked in the hour.
struct ExporterHour {
    requests: u64,
    token: u64,
    sessions: u64,
    too_many: u64,
}

async fn exporter_hour(speed: u64) -> ExporterHour {
    let replenish = format!("{}s", REPLENISH_S / speed);
    let speed_arg = speed.to_string();
    let sim = Process::simulator(
        "economy-simulator",
        &[
            "--steady-active",
            ACTIVE,
            "--steady-changes-per-minute",
            CHANGES_PER_MINUTE,
            "--users",
            USERS,
            "--devices",
            DEVICES,
            "--connectors",
            CONNECTORS,
            "--speed",
            &speed_arg,
            "--rate-limit.replenish-time",
            &replenish,
        ],
    );
    let interval = format!("{}s", INTERVAL_S / speed);
    let resync = format!("{}s", RESYNC_S / speed);
    let mut exporter_args = vec![
        "--poll.interval".to_owned(),
        interval.clone(),
        "--poll.resync-interval".to_owned(),
        resync.clone(),
    ];
    for (collector, seconds) in COLLECTOR_INTERVALS_S {
        exporter_args.push(format!("--collector.{collector}.interval"));
        exporter_args.push(format!("{}s", seconds / speed));
    }
    let started = Instant::now();
    let argv: Vec<&str> = exporter_args.iter().map(String::as_str).collect();
    let exporter = Process::exporter("economy-exporter", &sim, &argv);
    let http = reqwest::Client::new();
    let hour = Duration::from_secs(3600 / speed);
    println!(
        "\n== the exporter, an hour of world time at speed {speed} ({} real minutes) ==",
        hour.as_secs() / 60
    );
    println!(
        "simulate --steady-active {ACTIVE} --steady-changes-per-minute {CHANGES_PER_MINUTE} \
         --users {USERS} --devices {DEVICES} --connectors {CONNECTORS} --speed {speed} \
         --rate-limit.replenish-time {replenish}"
    );
    println!("cloudconnexa_exporter {}", exporter_args.join(" "));
    wait_for_200(
        &http,
        &format!("{}/readyz", exporter.url()),
        Duration::from_secs(120),
    )
    .await;
    println!("ready after {:.1} s", started.elapsed().as_secs_f64());
    let mut next_report = Duration::from_secs(60);
    while started.elapsed() < hour {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(60);
            let m = parse_metrics(&get_text(&http, &format!("{}/metrics", exporter.url())).await);
            println!(
                "  {:>4.0} world minutes: {} requests so far",
                started.elapsed().as_secs_f64() * speed as f64 / 60.0,
                sum(&m, "cloudconnexa_api_requests_total", &[])
            );
        }
    }
    let m = parse_metrics(&get_text(&http, &format!("{}/metrics", exporter.url())).await);
    let stats: Value =
        serde_json::from_str(&get_text(&http, &format!("{}/_sim/stats", sim.url())).await)
            .expect("stats JSON");
    let truth: Value =
        serde_json::from_str(&get_text(&http, &format!("{}/_sim/truth/summary", sim.url())).await)
            .expect("summary JSON");
    drop(exporter);
    drop(sim);

    println!("exporter's cloudconnexa_api_requests_total:");
    let mut requests: Vec<_> = m
        .iter()
        .filter(|s| s.name == "cloudconnexa_api_requests_total")
        .collect();
    requests.sort_by(|a, b| a.labels.cmp(&b.labels));
    for s in &requests {
        println!(
            "  endpoint={:<11} code={:<4} {}",
            s.labels["endpoint"], s.labels["code"], s.value
        );
    }
    println!("requests per collector (and per hour of world time):");
    for collector in ["(token)", "sessions", "connectors", "users", "regions"] {
        let n: f64 = ENDPOINTS
            .iter()
            .filter(|(_, c)| *c == collector)
            .map(|(endpoint, _)| {
                sum(
                    &m,
                    "cloudconnexa_api_requests_total",
                    &[("endpoint", endpoint)],
                )
            })
            .sum();
        let runs = sum(
            &m,
            "cloudconnexa_poll_cycles_total",
            &[("collector", collector)],
        );
        println!("  {collector:<11} {n:>4} requests in {runs:>3} runs");
    }
    println!("simulator's /_sim/stats:");
    for r in stats["responses"].as_array().into_iter().flatten() {
        println!(
            "  {:<26} {} {}",
            r["path"].as_str().unwrap_or(""),
            r["status"],
            r["count"]
        );
    }
    let total = sum(&m, "cloudconnexa_api_requests_total", &[]) as u64;
    let token = sum(
        &m,
        "cloudconnexa_api_requests_total",
        &[("endpoint", "token")],
    ) as u64;
    let too_many = stats["too_many_requests"].as_u64().unwrap_or(u64::MAX);
    let cycles = sum(&m, "cloudconnexa_poll_cycles_total", &[]);
    let errors = sum(&m, "cloudconnexa_poll_errors_total", &[]);
    let waited = sum(&m, "cloudconnexa_rate_limit_wait_seconds_total", &[]);
    let active = sum(&m, "cloudconnexa_sessions_active", &[]);
    let connectors = sum(&m, "cloudconnexa_connector_status", &[]);
    let users = sum(&m, "cloudconnexa_users", &[]);
    let devices = sum(&m, "cloudconnexa_devices", &[]);
    println!(
        "inventory seen: {connectors} connectors (world: {}), {users} users, {devices} devices",
        truth["connectors_by_status"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>())
    );
    let ended = sum(&m, "cloudconnexa_sessions_ended_total", &[]);
    println!(
        "poll cycles {cycles}, failed {errors}; waited for the bucket {:.0} s of world time; \
         active gauge {active} (world: {}); ended counted {ended}",
        waited * speed as f64,
        truth["active_total"]
    );
    println!(
        "429s: simulator {too_many}, exporter {}",
        sum(&m, "cloudconnexa_api_requests_total", &[("code", "429")]) as u64
    );
    ExporterHour {
        requests: total,
        token,
        sessions: sum(
            &m,
            "cloudconnexa_api_requests_total",
            &[("endpoint", "sessions")],
        ) as u64,
        too_many,
    }
}

/// The query of a naive listing: one status over the API's default one-day window.
fn naive_query(client: &ApiClient, status: SessionStatus) -> SessionsQuery {
    SessionsQuery {
        status: Some(status),
        start: client.server_now() - chrono::Duration::days(1),
        end: None,
        return_only_new: false,
    }
}

/// Pages of one naive cycle.
struct NaiveCycle {
    pages: u64,
}

async fn naive_computed() -> NaiveCycle {
    println!("\n== the naive strategy, computed against an unlimited twin ==");
    let sim = Process::simulator(
        "economy-twin",
        &[
            "--steady-active",
            ACTIVE,
            "--steady-changes-per-minute",
            CHANGES_PER_MINUTE,
            "--no-rate-limit",
        ],
    );
    let client = common::api_client(&sim.url());
    client.ensure_token().await.expect("token");
    let mut pages = 0;
    for status in STATUSES {
        let query = naive_query(&client, status);
        let stats = client
            .list_sessions(&query, 10_000, &mut |_, _| {})
            .await
            .expect("listing");
        println!(
            "  {:<9} {:>6} sessions in {:>4} pages",
            status_name(status),
            stats.sessions,
            stats.pages
        );
        pages += u64::from(stats.pages);
    }
    let truth = get_text(
        &reqwest::Client::new(),
        &format!("{}/_sim/truth/summary", sim.url()),
    )
    .await;
    println!("  world: {truth}");
    println!(
        "  one cycle: {pages} requests; {} one-minute cycles an hour: {} requests",
        3600 / INTERVAL_S,
        pages * (3600 / INTERVAL_S)
    );
    NaiveCycle { pages }
}

fn status_name(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Active => "ACTIVE",
        SessionStatus::Completed => "COMPLETED",
        SessionStatus::Failed => "FAILED",
        SessionStatus::Unknown => "?",
    }
}

async fn naive_live(length: Duration) {
    println!(
        "\n== the naive strategy, live for {} minutes on the vendor's default limit ==",
        length.as_secs() / 60
    );
    let steady = [
        "--steady-active",
        ACTIVE,
        "--steady-changes-per-minute",
        CHANGES_PER_MINUTE,
    ];
    let plain_sim = Process::simulator("economy-naive-plain", &steady);
    let paced_sim = Process::simulator("economy-naive-paced", &steady);
    let (plain_url, paced_url) = (plain_sim.url(), paced_sim.url());
    let (plain, paced) = tokio::join!(
        naive_plain(&plain_url, length),
        naive_paced(&paced_url, length)
    );
    let http = reqwest::Client::new();
    for (name, sim, outcome) in [
        ("plain HTTP loop", &plain_sim, plain),
        ("exporter's client", &paced_sim, paced),
    ] {
        let stats: Value =
            serde_json::from_str(&get_text(&http, &format!("{}/_sim/stats", sim.url())).await)
                .expect("stats JSON");
        let count = |status: u64| -> u64 {
            stats["responses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["status"].as_u64() == Some(status))
                .filter_map(|r| r["count"].as_u64())
                .sum()
        };
        println!(
            "  {name:<17}: {} cycles begun, {} complete; {} requests answered 200, {} answered 429",
            outcome.begun,
            outcome.complete,
            count(200),
            count(429)
        );
    }
}

/// What a live naive lister achieved.
struct NaiveOutcome {
    begun: u64,
    complete: u64,
}

/// A naive lister as a script would be written: no pacing; a 429 abandons the cycle.
async fn naive_plain(base: &str, length: Duration) -> NaiveOutcome {
    let (http, token) = common::connect(base).await;
    let started = Instant::now();
    let mut outcome = NaiveOutcome {
        begun: 0,
        complete: 0,
    };
    let mut cycle_start = started;
    while cycle_start.duration_since(started) < length {
        outcome.begun += 1;
        let mut complete = true;
        'cycle: for status in ["ACTIVE", "COMPLETED", "FAILED"] {
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{base}/api/v1/sessions?status={status}&size=100");
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let response = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request");
                if response.status().as_u16() == 429 {
                    complete = false;
                    break 'cycle;
                }
                let body = response.bytes().await.expect("page body");
                let page: Value = serde_json::from_slice(&body).expect("page JSON");
                match page["nextCursor"].as_str() {
                    Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                    _ => break,
                }
            }
        }
        outcome.complete += u64::from(complete);
        cycle_start += Duration::from_secs(INTERVAL_S);
        tokio::time::sleep_until(cycle_start.into()).await;
    }
    outcome
}

/// A naive lister with the exporter's client, which waits for the bucket before each request.
async fn naive_paced(base: &str, length: Duration) -> NaiveOutcome {
    let client = common::api_client(base);
    let deadline = Instant::now() + length;
    let mut outcome = NaiveOutcome {
        begun: 0,
        complete: 0,
    };
    let run = async {
        loop {
            let cycle_start = Instant::now();
            outcome.begun += 1;
            for status in STATUSES {
                let query = naive_query(&client, status);
                client
                    .list_sessions(&query, 10_000, &mut |_, _| {})
                    .await
                    .expect("listing");
            }
            outcome.complete += 1;
            tokio::time::sleep_until((cycle_start + Duration::from_secs(INTERVAL_S)).into()).await;
        }
    };
    let _ = tokio::time::timeout_at(deadline.into(), run).await;
    outcome
}
