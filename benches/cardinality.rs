//! Cardinality over weeks: the series and resident memory of an exporter polling the simulated
//! 5,000-user company for ten simulated days.
//!
//! ```text
//! cargo bench --bench cardinality                                    # 10 days at speed 2400: 6 minutes
//! cargo bench --bench cardinality -- --days 3 --speed 1200
//! cargo bench --bench cardinality -- --exporter-args "--sessions.series-ttl 6h"
//! ```
//!
//! The simulator (`simulate --users 5000 --speed 2400 --no-rate-limit`) and the exporter
//! (`--poll.interval 1s` plus `--exporter-args`, split on spaces) run as processes. At speed
//! 2400 a poll cycle of one real second spans 40 simulated minutes, and ten simulated days pass
//! in six real minutes; the exporter's series lifetime, measured on the API server's clock, is
//! compressed with them.
//!
//! Every real second (once per poll cycle, as Prometheus would scrape) `/metrics` is read:
//!
//! - every `--every-hours` simulated hours (6 by default) a row is printed: the series (sample
//!   lines of the exposition), those of each session family, and the exporter's `VmRSS` and
//!   `VmHWM` (peak resident) from `/proc/PID/status`;
//! - what Prometheus would see of the session counters: for each series, the growth between two
//!   consecutive scrapes (a lower value counts as a reset from zero, as `increase()` takes it)
//!   is *visible*; the value of a series at its first scrape after the exporter's first is
//!   *hidden*, since `increase()` has nothing before it. Series that expire and come back add to
//!   the hidden part; that is the price of a series lifetime, printed at the end.
//!
//! The summary gives the final and peak series, the peak resident memory and the growth of the
//! series over the last third of the run.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Process, get_text, status_field, wait_for_200};

/// Session families, as the rows show them (the active gauge, then the counters).
const FAMILIES: [(&str, &str); 6] = [
    ("active", "cloudconnexa_sessions_active{"),
    ("started", "cloudconnexa_sessions_started_total{"),
    ("ended", "cloudconnexa_sessions_ended_total{"),
    ("failed", "cloudconnexa_sessions_failed_total{"),
    ("in", "cloudconnexa_session_in_bytes_total{"),
    ("out", "cloudconnexa_session_out_bytes_total{"),
];

/// Counters whose visible and hidden growth is reported.
const COUNTED: [(&str, &str); 4] = [
    (
        "sessions_started_total",
        "cloudconnexa_sessions_started_total{",
    ),
    ("sessions_ended_total", "cloudconnexa_sessions_ended_total{"),
    (
        "sessions_failed_total",
        "cloudconnexa_sessions_failed_total{",
    ),
    (
        "session_in_bytes_total",
        "cloudconnexa_session_in_bytes_total{",
    ),
];

fn main() {
    if !common::invoked_as_benchmark() {
        println!("cardinality: run with `cargo bench --bench cardinality`");
        return;
    }
    let number = |name: &str, default: f64| {
        common::arg(name).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| panic!("--{name} N"))
        })
    };
    let days = number("days", 10.0);
    let speed = number("speed", 2400.0);
    let users = number("users", 5000.0) as u32;
    let every_hours = number("every-hours", 6.0);
    let extra = common::arg("exporter-args").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(days, speed, users, every_hours, &extra));
}

/// One row of the table.
struct Row {
    hours: f64,
    series: usize,
    rss_kib: u64,
    hwm_kib: u64,
}

/// What Prometheus would see of one counter family.
#[derive(Default)]
struct Seen {
    visible: f64,
    hidden: f64,
    appeared: u64,
}

async fn run(days: f64, speed: f64, users: u32, every_hours: f64, extra: &str) {
    let (users_arg, speed_arg) = (users.to_string(), speed.to_string());
    let sim = Process::simulator(
        "cardinality-simulator",
        &[
            "--users",
            &users_arg,
            "--speed",
            &speed_arg,
            "--no-rate-limit",
        ],
    );
    let started = Instant::now();
    let mut exporter_args = vec!["--poll.interval", "1s"];
    exporter_args.extend(extra.split_whitespace());
    let exporter = Process::exporter("cardinality-exporter", &sim, &exporter_args);
    println!(
        "cardinality: simulate --users {users} --speed {speed} --no-rate-limit; \
         cloudconnexa_exporter {}",
        exporter_args.join(" ")
    );
    println!(
        "{days} simulated days in {:.0} real seconds; a row every {every_hours} simulated hours",
        days * 86_400.0 / speed
    );
    let http = reqwest::Client::new();
    let metrics_url = format!("{}/metrics", exporter.url());
    wait_for_200(
        &http,
        &format!("{}/readyz", exporter.url()),
        Duration::from_secs(120),
    )
    .await;
    let sim_hours = || started.elapsed().as_secs_f64() * speed / 3600.0;
    print!("{:>8} {:>7}", "sim time", "series");
    for (name, _) in FAMILIES {
        print!(" {name:>7}");
    }
    println!(" {:>9} {:>9}", "RSS MiB", "peak MiB");

    let mut rows: Vec<Row> = Vec::new();
    let mut last: HashMap<String, f64> = HashMap::new();
    let mut seen: [Seen; COUNTED.len()] = Default::default();
    let mut first = true;
    let mut next_row = 0.0;
    let mut tick = Instant::now();
    loop {
        let hours = sim_hours();
        let text = get_text(&http, &metrics_url).await;
        let mut now: HashMap<String, f64> = HashMap::with_capacity(last.len());
        let mut series = 0;
        let mut per_family = [0usize; FAMILIES.len()];
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            series += 1;
            if let Some(i) = FAMILIES.iter().position(|(_, p)| line.starts_with(p)) {
                per_family[i] += 1;
            }
            let Some(c) = COUNTED.iter().position(|(_, p)| line.starts_with(p)) else {
                continue;
            };
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            match last.get(key) {
                Some(&before) if value >= before => seen[c].visible += value - before,
                Some(_) => seen[c].visible += value,
                None if first => {}
                None => {
                    seen[c].hidden += value;
                    seen[c].appeared += 1;
                }
            }
            now.insert(key.to_owned(), value);
        }
        last = now;
        first = false;
        let done = hours >= days * 24.0;
        if hours >= next_row || done {
            next_row += every_hours;
            let row = Row {
                hours,
                series,
                rss_kib: status_field(exporter.pid(), "VmRSS").unwrap_or(0),
                hwm_kib: exporter.peak_rss_kib(),
            };
            print!(
                "{:>4.0}d{:>02.0}h {:>7}",
                (hours / 24.0).floor(),
                hours % 24.0,
                row.series
            );
            for n in per_family {
                print!(" {n:>7}");
            }
            println!(" {:>9.1} {:>9.1}", mib(row.rss_kib), mib(row.hwm_kib));
            rows.push(row);
        }
        if done {
            break;
        }
        tick += Duration::from_secs(1);
        tokio::time::sleep_until(tick.into()).await;
    }
    let log = std::fs::read_to_string(&exporter.log).unwrap_or_default();
    drop(exporter);
    drop(sim);
    summarise(&rows, &seen);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=warn") || l.contains("level=error"))
        .collect();
    println!("exporter log: {} warnings or errors", warnings.len());
    for line in warnings.iter().take(5) {
        println!("  {line}");
    }
}

fn summarise(rows: &[Row], seen: &[Seen]) {
    let (Some(end), Some(total)) = (rows.last(), rows.last().map(|r| r.hours)) else {
        return;
    };
    let third = rows
        .iter()
        .find(|r| r.hours >= total * 2.0 / 3.0)
        .unwrap_or(end);
    let peak_series = rows.iter().map(|r| r.series).max().unwrap_or(0);
    let peak_last_third = rows
        .iter()
        .filter(|r| r.hours >= third.hours)
        .map(|r| r.series)
        .max()
        .unwrap_or(0);
    println!("\n== summary ==");
    println!(
        "series: {} at the end, {} at its peak; peak resident {:.1} MiB (VmHWM), {:.1} MiB resident at the end",
        end.series,
        peak_series,
        mib(end.hwm_kib),
        mib(end.rss_kib)
    );
    println!(
        "last third (from {:.1} to {:.1} simulated days): {} -> {} series ({:+.1}%), at most {} ({:+.1}%)",
        third.hours / 24.0,
        end.hours / 24.0,
        third.series,
        end.series,
        growth(third.series, end.series),
        peak_last_third,
        growth(third.series, peak_last_third),
    );
    println!("what increase() sees of the counters after the first scrape:");
    for ((name, _), s) in COUNTED.iter().zip(seen) {
        let share = if s.visible + s.hidden > 0.0 {
            100.0 * s.hidden / (s.visible + s.hidden)
        } else {
            0.0
        };
        println!(
            "  {name:<24} {} series appeared; {:.4}% of the growth was in their first samples",
            s.appeared, share
        );
    }
}

fn growth(from: usize, to: usize) -> f64 {
    100.0 * (to as f64 / from.max(1) as f64 - 1.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
