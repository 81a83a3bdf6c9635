//! Plumbing shared by the benchmarks: the binary as a process on a loopback port, scraping and
//! reading metrics, the CPU time and peak memory of processes.
//!
//! Each benchmark is a `harness = false` program that includes this module with `mod common;`,
//! so not every helper is used by every benchmark.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cloudconnexa_exporter::clock::SystemClock;
use cloudconnexa_exporter::secret::Secret;
use cloudconnexa_exporter::upstream::Unobserved;
use cloudconnexa_exporter::upstream::client::{ApiClient, ApiVersion, ClientConfig, RetryPolicy};

/// The exporter's binary, built by Cargo with the bench profile.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cloudconnexa_exporter");

/// The binary the processes run: `EXPORTER_BIN` when set (to compare builds with the same
/// benchmark), else [`BIN`].
pub(crate) fn bin() -> String {
    std::env::var("EXPORTER_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// Whether the program was started by `cargo bench` (which passes `--bench`). `cargo test
/// --all-targets` runs benchmark programs without it: they then only say how to run them.
pub(crate) fn invoked_as_benchmark() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The value of `--name VALUE` or `--name=VALUE` among the program's arguments.
pub(crate) fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    args.iter().enumerate().find_map(|(i, a)| {
        if *a == flag {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&format!("{flag}=")).map(str::to_owned)
        }
    })
}

/// A child process of the benchmark, killed when dropped.
pub(crate) struct Process {
    child: Child,
    /// What it is, for messages.
    pub(crate) name: String,
    /// The loopback port it listens on.
    pub(crate) port: u16,
    /// Where its log goes.
    pub(crate) log: PathBuf,
}

impl Process {
    /// Starts the binary with `args` and waits (up to a minute) for a log line containing
    /// `listening`, which must name the address as `address=127.0.0.1:PORT`. The log is kept
    /// in a file under Cargo's target directory.
    pub(crate) fn start(name: &str, args: &[String], listening: &str) -> Process {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-logs");
        std::fs::create_dir_all(&dir).expect("log directory");
        let log = dir.join(format!("{name}-{}.log", std::process::id()));
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel::<String>();
        let mut file = std::fs::File::create(&log).expect("log file");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(listening) => {
                    break address_port(&line)
                        .unwrap_or_else(|| panic!("{name}: no address in {line:?}"));
                }
                Ok(_) => {}
                Err(_) => panic!("{name} did not log {listening:?}; see {}", log.display()),
            }
        };
        Process {
            child,
            name: name.to_owned(),
            port,
            log,
        }
    }

    /// The simulator (`simulate` with `args` added), once it listens.
    pub(crate) fn simulator(name: &str, args: &[&str]) -> Process {
        let mut argv = vec!["simulate".to_owned(), "--listen-address=127.0.0.1:0".into()];
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        Process::start(name, &argv, "simulated CloudConnexa API listening")
    }

    /// The exporter polling `api` with the simulator's credentials (`args` added), once it
    /// serves.
    pub(crate) fn exporter(name: &str, api: &Process, args: &[&str]) -> Process {
        let mut argv: Vec<String> = [
            "--cloudconnexa.url",
            &api.url(),
            "--cloudconnexa.client-id=demo",
            "--cloudconnexa.client-secret=demo",
            "--web.listen-address=127.0.0.1:0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        Process::start(name, &argv, "serving metrics")
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmHWM").unwrap_or(0)
    }

    /// User plus system CPU time used so far (10 ms resolution).
    pub(crate) fn cpu_time(&self) -> Duration {
        Duration::from_millis(process_ticks(self.pid()) * 1000 / clock_ticks_per_second())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> u64 {
    // USER_HZ is 100 on every Linux architecture this runs on.
    100
}

fn address_port(line: &str) -> Option<u16> {
    let at = line.find("address=")? + "address=".len();
    let address = line[at..].split_whitespace().next()?.trim_matches('"');
    address.rsplit_once(':')?.1.parse().ok()
}

/// A numeric field of `/proc/PID/status`, such as `VmHWM` (in kB).
pub(crate) fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let value = l.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// CPU time of this whole process (every thread, user and system) so far.
pub(crate) fn process_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The machine's line of `/proc/stat`: CPU ticks (1/100 s) so far by kind.
fn machine_ticks() -> Vec<u64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// CPU ticks the whole machine has spent busy so far: user, nice, system, irq and softirq.
fn machine_busy_ticks() -> u64 {
    let fields = machine_ticks();
    [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum()
}

/// CPU ticks the hypervisor has given to other guests while this one wanted to run (steal).
fn machine_steal_ticks() -> u64 {
    machine_ticks().get(7).copied().unwrap_or(0)
}

/// User plus system CPU ticks of process `pid` (every thread) so far.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)
}

/// How much CPU other work (anything but this process and the processes it names) uses while
/// a measurement runs: other tenants' builds on a shared machine disturb it.
pub(crate) struct LoadMeter {
    pids: Vec<u32>,
    started: Instant,
    busy: u64,
    own: u64,
    steal: u64,
}

impl LoadMeter {
    /// Starts counting; `pids` are this benchmark's own helper processes (the simulator).
    pub(crate) fn start(pids: &[u32]) -> LoadMeter {
        let mut pids = pids.to_vec();
        pids.push(std::process::id());
        let own = pids.iter().map(|&p| process_ticks(p)).sum();
        LoadMeter {
            pids,
            started: Instant::now(),
            busy: machine_busy_ticks(),
            own,
            steal: machine_steal_ticks(),
        }
    }

    /// Cores the hypervisor gave to other guests on average since the start: on a shared host,
    /// a busy neighbour slows every measurement down without showing as work on this machine.
    pub(crate) fn steal_cores(&self) -> f64 {
        let steal = machine_steal_ticks().saturating_sub(self.steal);
        steal as f64 / clock_ticks_per_second() as f64 / self.started.elapsed().as_secs_f64()
    }

    /// Cores other work used on average since the start.
    pub(crate) fn others_cores(&self) -> f64 {
        let busy = machine_busy_ticks().saturating_sub(self.busy);
        let own: u64 = self.pids.iter().map(|&p| process_ticks(p)).sum();
        let others = busy.saturating_sub(own.saturating_sub(self.own));
        others as f64 / clock_ticks_per_second() as f64 / self.started.elapsed().as_secs_f64()
    }
}

/// Waits, for at most `limit`, until the machine has been idle for a second (under a tenth of
/// a core busy, this process included); says so if it never was.
pub(crate) fn wait_quiet(limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut busy;
    loop {
        let before = machine_busy_ticks();
        std::thread::sleep(Duration::from_secs(1));
        busy = machine_busy_ticks().saturating_sub(before);
        if busy * 10 < clock_ticks_per_second() || Instant::now() >= deadline {
            break;
        }
    }
    if busy * 10 >= clock_ticks_per_second() {
        println!(
            "(the machine stayed busy with other work for {limit:?}, {:.1} cores; measuring anyway)",
            busy as f64 / clock_ticks_per_second() as f64
        );
    }
}

/// Wall and CPU time of `f`.
pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (wall, cpu) = (Instant::now(), process_cpu_time());
    let out = f();
    (out, wall.elapsed(), process_cpu_time() - cpu)
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Metric name.
    pub(crate) name: String,
    /// Labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// Value.
    pub(crate) value: f64,
}

/// Parses the text format (enough of it for the exporter's own output).
pub(crate) fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}')?;
                    let labels = body
                        .split("\",")
                        .filter_map(|pair| {
                            let (k, v) = pair.split_once("=\"")?;
                            Some((k.to_owned(), v.trim_end_matches('"').to_owned()))
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            Some(Sample {
                name,
                labels,
                value,
            })
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include `labels`.
pub(crate) fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .map(|s| s.value)
        .sum()
}

/// GETs `url` until it answers 200, for at most `limit`.
pub(crate) async fn wait_for_200(http: &reqwest::Client, url: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer 200 in {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs `url` and returns its body as text.
pub(crate) async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Milliseconds, for printing.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The exporter's API client for the simulator at `base` (credentials `demo`/`demo`, default
/// retries), reporting to no metrics.
pub(crate) fn api_client(base: &str) -> ApiClient {
    let config = ClientConfig {
        base_url: reqwest::Url::parse(base).expect("URL"),
        api_version: ApiVersion::V1,
        client_id: "demo".into(),
        client_secret: Secret::new("demo"),
        request_timeout: Duration::from_secs(30),
        retry: RetryPolicy::default(),
    };
    ApiClient::new(config, Arc::new(SystemClock), Arc::new(Unobserved)).expect("API client")
}

/// A plain HTTP client and an access token for the simulator at `base`.
pub(crate) async fn connect(base: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let token = http
        .post(format!(
            "{base}/api/v1/oauth/token?grant_type=client_credentials"
        ))
        .basic_auth("demo", Some("demo"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("token")
        .bytes()
        .await
        .expect("token body");
    let token: serde_json::Value = serde_json::from_slice(&token).expect("token JSON");
    let token = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    (http, token)
}
