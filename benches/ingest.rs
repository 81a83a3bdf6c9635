//! Ingest and memory: a full listing of 100,000 active sessions (1,000 pages of 100) from the
//! simulated API on loopback with no rate limit.
//!
//! ```text
//! cargo bench --bench ingest                        # 9 rounds
//! cargo bench --bench ingest -- --rounds 15
//! cargo bench --bench ingest -- --only pipeline     # one part alone, for a profiler
//! ```
//!
//! The simulator (`simulate --no-rate-limit --steady-active 100000 --steady-changes-per-minute 0`)
//! runs as a separate process, so its CPU time is not counted. Then:
//!
//! 1. **Bare decode**: the 1,000 pages' bodies are fetched once with reqwest, then decoded with
//!    serde_json into a plain `#[derive(Deserialize)]` struct holding every field of the spec's
//!    `SessionResponse` (strings and integers, no validation, times left as text). This is the
//!    floor: what reading these bytes costs at all.
//! 2. **Pipeline**: exactly what the poller does for a full listing, `ApiClient::list_sessions`
//!    for every ACTIVE session feeding `SessionTracker::apply` page by page, with a new tracker
//!    each round (an exporter's first listing) configured as the exporter's default flags
//!    configure it (the gauge's five labels, the counters' three, the cap and the TTL). It
//!    includes the HTTP requests on loopback (the client's side of them: sending, receiving,
//!    reading the body) and the tolerant decoding.
//!    Its parts are also timed: the same requests with reqwest and no decoding, the exporter's
//!    decoder alone and the tracker alone on the stored bodies, and a listing applied to a tracker
//!    that already holds every session (a resync).
//! 3. **Memory**: the exporter binary polls the same simulator (`--poll.interval 1h`); once
//!    `/readyz` answers 200 it is scraped once and its peak resident memory (`VmHWM` of
//!    `/proc/PID/status`) is read.
//!
//! Times are CPU time (user plus system, every thread of this process, from
//! `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`) and wall time around each measurement. Each round
//! measures the pipeline and the bare decode back to back, alternating which goes first, so both
//! meet the same conditions; the figure is the median over the rounds of these pairs' ratios.
//! Before each round the benchmark waits (up to `--quiet-wait` seconds, 30 by default) for other
//! work to leave the machine idle, and it reports how many cores other work used during each pair
//! and how much CPU the hypervisor gave to other guests meanwhile (steal), which slows the pairs
//! down (the HTTP part most) without showing as work on this machine.
//!
//! `--only PART` (`pipeline`, `bare`, `decoder`, `tracker` or `http`) runs that part alone for
//! `--rounds` rounds, to profile it: for instance `valgrind --tool=callgrind` on the benchmark's
//! executable with `--bench --only pipeline --rounds 1`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::Utc;
use cloudconnexa_exporter::config::{Cli, Config};
use cloudconnexa_exporter::tracker::{SeriesConfig, SessionTracker};
use cloudconnexa_exporter::upstream::model::{SessionStatus, SessionsPage};
use cloudconnexa_exporter::upstream::sessions::SessionsQuery;
use common::{Process, get_text, measure, ms, wait_for_200};
use serde::Deserialize;

const ACTIVE: u32 = 100_000;

/// The spec's `SessionsResponse`, decoded the plain way.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct BarePage {
    sessions: Vec<BareSession>,
    next_cursor: Option<String>,
}

/// Every field of the spec's `SessionResponse`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct BareSession {
    id: Option<String>,
    user_name: Option<String>,
    user_id: Option<String>,
    user_group: Option<String>,
    host_name: Option<String>,
    host_id: Option<String>,
    network_name: Option<String>,
    network_id: Option<String>,
    device_name: Option<String>,
    device_id: Option<String>,
    #[serde(rename = "clientUUID")]
    client_uuid: Option<String>,
    os_type: Option<String>,
    os_version: Option<String>,
    connector_name: Option<String>,
    connector_id: Option<String>,
    region: Option<String>,
    session_start_time: Option<String>,
    status: Option<String>,
    disconnect_reason: Option<String>,
    disconnect_reason_description: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    bytes_in: Option<i64>,
    bytes_out: Option<i64>,
    protocol: Option<String>,
    public_ip: Option<String>,
    tunnel_ip_v4: Option<String>,
    tunnel_ip_v6: Option<String>,
    session_end_time: Option<String>,
    session_duration_seconds: Option<i64>,
}

/// Wall and CPU time of each round of one measurement.
#[derive(Default)]
struct Rounds {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Rounds {
    fn add(&mut self, wall: Duration, cpu: Duration) {
        self.wall.push(wall);
        self.cpu.push(cpu);
    }

    fn wall(&self) -> Duration {
        median(&self.wall)
    }

    fn cpu(&self) -> Duration {
        median(&self.cpu)
    }

    fn print(&self, name: &str) {
        if self.cpu.is_empty() {
            return;
        }
        let list = |v: &[Duration]| {
            v.iter()
                .map(|d| format!("{:.0}", ms(*d)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{name:<36} wall {:>7.1} ms  cpu {:>7.1} ms   (rounds, ms: wall {} | cpu {})",
            ms(self.wall()),
            ms(self.cpu()),
            list(&self.wall),
            list(&self.cpu)
        );
    }
}

/// The median of `values` (the upper one of an even count).
fn median<T: PartialOrd + Copy>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v[v.len() / 2]
}

/// Everything a run keeps of the stored listing.
struct Listing {
    sim: Process,
    http: reqwest::Client,
    token: String,
    bodies: Vec<Vec<u8>>,
}

fn main() {
    if !common::invoked_as_benchmark() {
        println!("ingest: run with `cargo bench --bench ingest`");
        return;
    }
    let rounds: usize = common::arg("rounds").map_or(9, |s| s.parse().expect("--rounds N"));
    let quiet_wait = Duration::from_secs(
        common::arg("quiet-wait").map_or(30, |s| s.parse().expect("--quiet-wait SECONDS")),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let active = ACTIVE.to_string();
    let sim = Process::simulator(
        "ingest-simulator",
        &[
            "--no-rate-limit",
            "--steady-active",
            &active,
            "--steady-changes-per-minute",
            "0",
        ],
    );
    println!(
        "ingest: simulate --no-rate-limit --steady-active {ACTIVE} --steady-changes-per-minute 0 \
         (separate process, pid {})",
        sim.pid()
    );
    let (http, token) = runtime.block_on(common::connect(&sim.url()));
    let (bodies, _) = runtime.block_on(fetch_pages(&http, &sim.url(), &token, true));
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "{} pages, {:.1} MB of JSON, {:.0} bytes a session\n",
        bodies.len(),
        bytes as f64 / 1e6,
        bytes as f64 / f64::from(ACTIVE)
    );
    let listing = Listing {
        sim,
        http,
        token,
        bodies,
    };
    if let Some(part) = common::arg("only") {
        only(&runtime, &listing, &part, rounds);
        return;
    }

    let mut http_only = Rounds::default();
    let mut bare = Rounds::default();
    let mut decoder = Rounds::default();
    let mut tracker_only = Rounds::default();
    let mut pipeline = Rounds::default();
    let mut resync = Rounds::default();
    let mut server = Rounds::default();
    let mut ratios = Vec::new();
    let mut resync_ratios = Vec::new();
    let mut others_load = Vec::new();
    let mut steal_load = Vec::new();
    for round in 0..rounds {
        common::wait_quiet(quiet_wait);
        // The pair: the pipeline and the bare decode back to back, in alternating order.
        let load = common::LoadMeter::start(&[listing.sim.pid()]);
        let pipeline_first = round % 2 == 0;
        let mut tracker = None;
        for step in 0..2 {
            if (step == 0) == pipeline_first {
                let server_before = listing.sim.cpu_time();
                let (t, wall, cpu) = run_pipeline(&runtime, &listing.sim, None);
                server.add(Duration::ZERO, listing.sim.cpu_time() - server_before);
                pipeline.add(wall, cpu);
                tracker = Some(t);
            } else {
                let (wall, cpu) = bare_decode(&listing.bodies);
                bare.add(wall, cpu);
            }
        }
        let others = load.others_cores();
        let steal = load.steal_cores();
        others_load.push(others);
        steal_load.push(steal);
        let ratio = secs(pipeline.cpu.last()) / secs(bare.cpu.last());
        ratios.push(ratio);
        println!(
            "round {:>2}: pipeline {:>6.1} ms, bare decode {:>6.1} ms CPU ({} first): \
             ratio {ratio:.2}; other work {others:.2} cores, steal {steal:.2} cores",
            round + 1,
            ms(*pipeline.cpu.last().expect("a pipeline round")),
            ms(*bare.cpu.last().expect("a bare round")),
            if pipeline_first { "pipeline" } else { "bare" },
        );

        // The parts, in the same round.
        let (_, wall, cpu) = run_pipeline(&runtime, &listing.sim, tracker);
        resync.add(wall, cpu);
        resync_ratios.push(secs(Some(&cpu)) / secs(bare.cpu.last()));
        let (wall, cpu) = http_only_round(&runtime, &listing);
        http_only.add(wall, cpu);
        let (wall, cpu) = decoder_alone(&listing.bodies);
        decoder.add(wall, cpu);
        let (wall, cpu) = tracker_alone(&listing.bodies);
        tracker_only.add(wall, cpu);
    }
    println!();
    http_only.print("HTTP only (reqwest, no decoding)");
    bare.print("bare serde decode (stored bodies)");
    decoder.print("exporter's decoder (stored bodies)");
    tracker_only.print("tracker.apply (decoded pages)");
    pipeline.print("pipeline, first listing (HTTP)");
    resync.print("pipeline, resync (HTTP)");
    println!(
        "{:<36} cpu {:>7.1} ms (simulator process, for comparison; 10 ms ticks)",
        "simulator serving the pages",
        ms(server.cpu())
    );
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "\nratio pipeline / bare decode, CPU, median of {rounds} pairs: {:.2} (target at most 1.10)\n  \
         pairs: {}\n  resync / bare decode of the same round, median: {:.2}",
        median(&ratios),
        list(&ratios),
        median(&resync_ratios),
    );
    println!(
        "ratio of the medians: pipeline / bare decode {:.2}, exporter's decoder / bare decode {:.2}",
        secs(Some(&pipeline.cpu())) / secs(Some(&bare.cpu())),
        secs(Some(&decoder.cpu())) / secs(Some(&bare.cpu())),
    );
    println!(
        "parts of the pipeline alone (HTTP + decoder + tracker, medians): {:.1} ms CPU against \
         {:.1} ms for the pipeline",
        ms(http_only.cpu() + decoder.cpu() + tracker_only.cpu()),
        ms(pipeline.cpu()),
    );
    println!(
        "other work during the pairs, cores: median {:.2}, most {:.2}; steal (the host's other \
         guests): median {:.2}, most {:.2}",
        median(&others_load),
        others_load.iter().copied().fold(0.0, f64::max),
        median(&steal_load),
        steal_load.iter().copied().fold(0.0, f64::max)
    );

    runtime.block_on(memory(&listing.sim));
}

fn secs(d: Option<&Duration>) -> f64 {
    d.expect("a measurement").as_secs_f64()
}

/// Runs one part alone, `rounds` times, and prints its times (see the module documentation).
fn only(runtime: &tokio::runtime::Runtime, listing: &Listing, part: &str, rounds: usize) {
    let mut times = Rounds::default();
    for _ in 0..rounds {
        let (wall, cpu) = match part {
            "pipeline" => {
                let (_, wall, cpu) = run_pipeline(runtime, &listing.sim, None);
                (wall, cpu)
            }
            "bare" => bare_decode(&listing.bodies),
            "decoder" => decoder_alone(&listing.bodies),
            "tracker" => tracker_alone(&listing.bodies),
            "http" => http_only_round(runtime, listing),
            _ => panic!("--only: pipeline, bare, decoder, tracker or http"),
        };
        times.add(wall, cpu);
    }
    times.print(part);
}

/// The bare decode of every stored body.
fn bare_decode(bodies: &[Vec<u8>]) -> (Duration, Duration) {
    let (sessions, wall, cpu) = measure(|| {
        let mut n = 0;
        for body in bodies {
            let page: BarePage = serde_json::from_slice(body).expect("bare decode");
            n += black_box(page).sessions.len();
        }
        n
    });
    assert_eq!(sessions, ACTIVE as usize);
    (wall, cpu)
}

/// The exporter's decoder on every stored body, each page dropped once decoded as the pipeline
/// drops it.
fn decoder_alone(bodies: &[Vec<u8>]) -> (Duration, Duration) {
    let (sessions, wall, cpu) = measure(|| {
        let mut n = 0;
        for body in bodies {
            let page = SessionsPage::from_slice(body).expect("decode");
            n += black_box(page).sessions.len();
        }
        n
    });
    assert_eq!(sessions, ACTIVE as usize);
    (wall, cpu)
}

/// A new tracker applying every page, decoded beforehand (not timed).
fn tracker_alone(bodies: &[Vec<u8>]) -> (Duration, Duration) {
    let pages: Vec<_> = bodies
        .iter()
        .map(|b| SessionsPage::from_slice(b).expect("decode"))
        .collect();
    let mut tracker = SessionTracker::with_series(Utc::now(), default_series());
    let now = Utc::now();
    let ((), wall, cpu) = measure(|| {
        tracker.begin_full_listing();
        for page in &pages {
            black_box(tracker.apply(&page.sessions, now));
        }
        tracker.finish_full_listing(now);
    });
    assert_eq!(tracker.active_count(), u64::from(ACTIVE));
    (wall, cpu)
}

/// The listing's requests with reqwest, bodies read and dropped, from a runtime task.
fn http_only_round(runtime: &tokio::runtime::Runtime, listing: &Listing) -> (Duration, Duration) {
    let (url, client, bearer) = (
        listing.sim.url(),
        listing.http.clone(),
        listing.token.clone(),
    );
    let ((_, pages), wall, cpu) = runtime
        .block_on(runtime.spawn(async move {
            let (wall, cpu) = (Instant::now(), common::process_cpu_time());
            let fetched = fetch_pages(&client, &url, &bearer, false).await;
            (fetched, wall.elapsed(), common::process_cpu_time() - cpu)
        }))
        .expect("fetch task");
    assert_eq!(pages, listing.bodies.len());
    (wall, cpu)
}

/// Fetches the pages of a full ACTIVE listing, as the exporter's client asks for them; keeps
/// their bodies if `keep`. Returns the bodies kept and the number of pages.
async fn fetch_pages(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    keep: bool,
) -> (Vec<Vec<u8>>, usize) {
    let start = (Utc::now() - chrono::Duration::days(29))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut bodies = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("size", "100".to_owned()),
            ("startDate", start.clone()),
            ("status", "ACTIVE".to_owned()),
        ];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let body = http
            .get(format!("{base}/api/v1/sessions"))
            .query(&query)
            .bearer_auth(token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("page")
            .bytes()
            .await
            .expect("page body");
        pages += 1;
        cursor = next_cursor(&body);
        if keep {
            bodies.push(body.to_vec());
        }
        if cursor.is_none() {
            return (bodies, pages);
        }
    }
}

/// The `nextCursor` of a page, found without decoding it (the simulator writes it last).
fn next_cursor(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"nextCursor\":\"";
    let tail = &body[body.len().saturating_sub(512)..];
    let at = tail.windows(KEY.len()).rposition(|w| w == KEY)? + KEY.len();
    let len = tail[at..].iter().position(|&b| b == b'"')?;
    let cursor = std::str::from_utf8(&tail[at..at + len]).ok()?;
    (!cursor.is_empty()).then(|| cursor.to_owned())
}

/// [`timed_pipeline`] in a task of the runtime, as the exporter runs its poller (driving it from
/// the main thread instead would add a thread switch to every response).
fn run_pipeline(
    runtime: &tokio::runtime::Runtime,
    sim: &Process,
    tracker: Option<SessionTracker>,
) -> (SessionTracker, Duration, Duration) {
    let url = sim.url();
    runtime
        .block_on(runtime.spawn(async move { timed_pipeline(&url, tracker).await }))
        .expect("pipeline task")
}

/// One full ACTIVE listing through the exporter's client into a tracker (a new one when `None`),
/// timed from the first request to the last page applied. The token is fetched beforehand.
async fn timed_pipeline(
    base: &str,
    tracker: Option<SessionTracker>,
) -> (SessionTracker, Duration, Duration) {
    let client = common::api_client(base);
    client.ensure_token().await.expect("token");
    let mut tracker = tracker
        .unwrap_or_else(|| SessionTracker::with_series(client.server_now(), default_series()));
    let query = SessionsQuery {
        status: Some(SessionStatus::Active),
        start: client.server_now() - chrono::Duration::days(29),
        end: None,
        return_only_new: false,
    };
    let (wall, cpu) = (Instant::now(), common::process_cpu_time());
    let listed_at = client.server_now();
    tracker.begin_full_listing();
    let stats = client
        .list_sessions(&query, 5_000, &mut |page, observed_at| {
            black_box(tracker.apply(&page.sessions, observed_at));
        })
        .await
        .expect("listing");
    tracker.finish_full_listing(listed_at);
    let (wall, cpu) = (wall.elapsed(), common::process_cpu_time() - cpu);
    assert_eq!(stats.sessions, ACTIVE as usize);
    assert_eq!(tracker.active_count(), u64::from(ACTIVE));
    (tracker, wall, cpu)
}

/// The series configuration of an exporter run with its default flags (the gauge's and the
/// counters' labels, their lifetime and cap), read through its own flag parsing.
fn default_series() -> SeriesConfig {
    let cli = <Cli as clap::Parser>::try_parse_from(["cloudconnexa_exporter", "--demo"])
        .expect("the default flags parse");
    Config::from_args(cli.exporter)
        .expect("the default flags are valid")
        .series
}

/// Peak resident memory of the exporter binary tracking every session of `sim`.
async fn memory(sim: &Process) {
    println!("\n== memory ==");
    let started = Instant::now();
    let exporter = Process::exporter("ingest-exporter", sim, &["--poll.interval", "1h"]);
    let http = reqwest::Client::new();
    wait_for_200(
        &http,
        &format!("{}/readyz", exporter.url()),
        Duration::from_secs(120),
    )
    .await;
    let ready = started.elapsed();
    let ready_hwm = exporter.peak_rss_kib();
    let body = get_text(&http, &format!("{}/metrics", exporter.url())).await;
    let series = body.lines().filter(|l| !l.starts_with('#')).count();
    let active: f64 = common::sum(
        &common::parse_metrics(&body),
        "cloudconnexa_sessions_active",
        &[],
    );
    let hwm = exporter.peak_rss_kib();
    let rss = common::status_field(exporter.pid(), "VmRSS").unwrap_or(0);
    println!(
        "cloudconnexa_exporter --poll.interval 1h: ready in {:.2} s tracking {active} active sessions",
        ready.as_secs_f64()
    );
    println!(
        "scrape: {:.2} MB, {series} samples",
        body.len() as f64 / 1e6
    );
    println!(
        "peak resident memory (VmHWM): {:.1} MiB when ready, {:.1} MiB after the scrape \
         (target under 64 MiB); resident now {:.1} MiB",
        ready_hwm as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
}
