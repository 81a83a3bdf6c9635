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
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
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
