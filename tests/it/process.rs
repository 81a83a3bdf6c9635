//! The binary as a process: configuration errors, signals, secrets in logs.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fake::{Answer, Fake, token};
use crate::helpers::{Metrics, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_cloudconnexa_exporter");

/// Runs the binary with `args` and a clean environment; returns exit code and stderr.
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Configuration errors are unit-tested in `config`; this checks what the process does with one:
/// exit status 2 and a single line on standard error naming the flag and its variable.
#[test]
fn bad_configuration_exits_2_with_one_line_naming_flag_and_variable() {
    let (code, stderr) = run_to_exit(
        &[
            "--cloudconnexa.client-id",
            "id",
            "--cloudconnexa.client-secret",
            "s",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("--cloudconnexa.url (CLOUDCONNEXA_URL)"),
        "{stderr}"
    );
}

#[test]
fn the_environment_configures_and_a_flag_wins_over_it() {
    let (code, stderr) = run_to_exit(
        &["--poll.interval", "bad"],
        &[
            ("CLOUDCONNEXA_URL", "https://a.example"),
            ("CLOUDCONNEXA_CLIENT_ID", "id"),
            ("CLOUDCONNEXA_CLIENT_SECRET", "s"),
            ("CLOUDCONNEXA_EXPORTER_POLL_INTERVAL", "30s"),
        ],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"bad\""),
        "the flag's value was used: {stderr}"
    );
    let (code, stderr) = run_to_exit(
        &[],
        &[
            ("CLOUDCONNEXA_URL", "https://a.example"),
            ("CLOUDCONNEXA_CLIENT_ID", "id"),
            ("CLOUDCONNEXA_CLIENT_SECRET", "s"),
            ("CLOUDCONNEXA_EXPORTER_WEB_TELEMETRY_PATH", "nope"),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("CLOUDCONNEXA_EXPORTER_WEB_TELEMETRY_PATH"));
}

#[test]
fn help_and_version_work() {
    let (code, _) = run_to_exit(&["--help"], &[]);
    assert_eq!(code, Some(0));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

/// The binary running on a free loopback port, with a clean environment.
pub(crate) struct Running {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Running {
    pub(crate) fn spawn(args: &[&str]) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(BIN)
            .args(args)
            .args(["--web.listen-address", &listen])
            .env_clear()
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://{listen}"),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Option<String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .ok()?;
        r.text().await.ok()
    }

    /// Waits for a scrape that satisfies `done`.
    pub(crate) async fn scrape_until(
        &self,
        what: &str,
        done: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        wait_for(what, Duration::from_secs(20), || async {
            let m = Metrics::parse(&self.get("/metrics").await?);
            done(&m).then_some(m)
        })
        .await
    }

    /// Sends `signal`, waits for the process to exit, and checks it did so within 5 s with
    /// status 0; returns what it wrote to standard error.
    pub(crate) async fn stop_with(self, signal: &str) -> String {
        let sent = tokio::time::Instant::now();
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let out = tokio::task::spawn_blocking(move || self.child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "stopped in {:?}",
            sent.elapsed()
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "exit status 0 on {signal}: {stderr}"
        );
        stderr
    }
}

/// Secrets (the client secret, from a file, and the access token) never reach the logs at debug
/// level, the metrics or the landing page, even through renewals and errors; SIGTERM stops the
/// process promptly with status 0.
#[tokio::test]
async fn secrets_never_leak_and_sigterm_stops_cleanly() {
    const SECRET: &str = "client-s3cr3t-VALUE";
    const TOKEN: &str = "access-T0KEN-value";
    let fake = Fake::start(|req, i| {
        if req.path.ends_with("/oauth/token") {
            return token(TOKEN, 2);
        }
        match i % 3 {
            0 => Answer::json(
                401,
                format!(
                    "bad token {}",
                    req.authorization.clone().unwrap_or_default()
                ),
            ),
            1 => Answer::json(500, "oops"),
            _ => Answer::json(200, r#"{"sessions":[{"id":"a","status":"ACTIVE"}]}"#),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let running = Running::spawn(&[
        "--cloudconnexa.url",
        &fake.url(),
        "--cloudconnexa.client-id",
        "me",
        "--cloudconnexa.client-secret-file",
        secret_file.to_str().unwrap(),
        "--poll.interval",
        "1s",
        "--log.level",
        "debug",
    ]);
    let metrics = running
        .scrape_until("three token requests", |m| {
            m.sum("cloudconnexa_api_requests_total", &[("endpoint", "token")]) >= 3.0
        })
        .await;
    let landing = running.get("/").await.unwrap();
    let logs = running.stop_with("-TERM").await;
    assert!(logs.contains("level=debug"), "debug logs were on: {logs}");
    for (what, text) in [
        ("logs", &*logs),
        ("metrics", &metrics.text),
        ("landing page", &landing),
    ] {
        assert!(
            !text.contains(SECRET),
            "the client secret leaked into the {what}"
        );
        assert!(
            !text.contains(TOKEN),
            "the access token leaked into the {what}"
        );
        assert!(
            !text.contains("ZGVtbzpkZW1v") && !text.contains("bWU6"),
            "basic credentials leaked into the {what}"
        );
    }
}

#[test]
fn debug_output_of_the_configuration_hides_the_secret() {
    let config = crate::helpers::config(&[
        "--cloudconnexa.url",
        "https://a.example",
        "--cloudconnexa.client-id",
        "id",
        "--cloudconnexa.client-secret",
        "super-secret-value",
    ]);
    let debug = format!("{config:?}");
    assert!(
        debug.contains("***") && !debug.contains("super-secret-value"),
        "{debug}"
    );
}

/// `--demo` needs no credentials, becomes ready with every collector up and their metrics shown,
/// and SIGINT stops it with status 0.
#[tokio::test]
async fn demo_mode_serves_and_sigint_stops_cleanly() {
    let running = Running::spawn(&["--demo"]);
    let metrics = running
        .scrape_until("demo metrics", |m| m.value("cloudconnexa_up") == Some(1.0))
        .await;
    let regions = metrics.sum_by("cloudconnexa_sessions_active", "vpn_region");
    assert!(
        regions.len() >= 3,
        "active sessions in at least three regions: {regions:?}"
    );
    for family in [
        "cloudconnexa_connector_status",
        "cloudconnexa_users",
        "cloudconnexa_devices",
        "cloudconnexa_vpn_region_info",
    ] {
        assert!(
            metrics.select(family, &[]).count() > 0,
            "the demo shows {family}"
        );
    }
    running.stop_with("-INT").await;
}
