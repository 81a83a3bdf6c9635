//! `--web.config.file` end to end, and connections that misbehave: HTTPS with basic auth, plain
//! HTTP on the TLS port, bad files at start and after it, certificate rotation, mutual TLS,
//! half-open connections and hundreds of concurrent scrapes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloudconnexa_exporter::Edges;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Exporter, Metrics, config, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_cloudconnexa_exporter");
const PASSWORD: &str = "correct horse";

/// A certificate authority made up for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate and key (PEM) for the exporter at 127.0.0.1.
    fn server(&self) -> (String, String) {
        self.issue(ExtendedKeyUsagePurpose::ServerAuth, "127.0.0.1")
    }

    /// A client certificate and key (PEM).
    fn client(&self) -> (String, String) {
        self.issue(ExtendedKeyUsagePurpose::ClientAuth, "scraper.example")
    }

    fn issue(&self, usage: ExtendedKeyUsagePurpose, san: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A temporary folder for one test's files, removed when dropped.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes the server certificate and key files and returns the TLS section naming them.
    fn server_tls(&self, (cert, key): (String, String)) -> String {
        self.write("server.crt", &cert);
        self.write("server.key", &key);
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n".to_owned()
    }
}

fn users(password: &str) -> String {
    // Cost 4, the lowest, keeps the tests fast; production hashes use 10 or more.
    format!(
        "basic_auth_users:\n  alice: {}\n",
        bcrypt::hash(password, 4).unwrap()
    )
}

/// An exporter on the demo tenant with a web configuration, checking it for changes every 50 ms.
async fn start_server(web_config: Option<&PathBuf>) -> Exporter {
    let mut args = vec!["--demo", "--web.listen-address", "127.0.0.1:0"];
    if let Some(path) = web_config {
        args.extend(["--web.config.file", path.to_str().unwrap()]);
    }
    let edges = Edges {
        web_reload_interval: Duration::from_millis(50),
        ..Edges::default()
    };
    Exporter::launch(config(&args), edges).await
}

/// A client trusting only `ca`, presenting `identity` if given, opening a new connection (and TLS
/// session) for every request so that it sees what the server serves now.
fn https_client(ca: &Ca, identity: Option<(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10));
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// GETs `url` as `user`; status, `WWW-Authenticate` and body.
async fn get(
    client: &reqwest::Client,
    url: &str,
    user: Option<(&str, &str)>,
) -> reqwest::Result<(u16, reqwest::header::HeaderMap, String)> {
    let mut request = client.get(url);
    if let Some((user, password)) = user {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

#[tokio::test]
async fn https_scrapes_need_the_password_of_a_known_user() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let path = dir.write(
        "web.yml",
        &format!(
            "{}{}http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
            dir.server_tls(ca.server()),
            users(PASSWORD)
        ),
    );
    let server = start_server(Some(&path)).await;
    let client = https_client(&ca, None);
    let metrics = server.url("https", "/metrics");

    let (status, headers, body) = get(&client, &metrics, Some(("alice", PASSWORD)))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let m = Metrics::parse(&body);
    assert_eq!(m.sum("cloudconnexa_exporter_build_info", &[]), 1.0);
    assert_eq!(
        m.value("cloudconnexa_exporter_web_config_last_reload_successful"),
        Some(1.0)
    );

    for (who, user) in [
        ("no credentials", None),
        ("a wrong password", Some(("alice", "wrong horse"))),
        ("an unknown user", Some(("mallory", PASSWORD))),
        ("an empty password", Some(("alice", ""))),
    ] {
        let (status, headers, body) = get(&client, &metrics, user).await.unwrap();
        assert_eq!(status, 401, "{who}");
        assert_eq!(headers["www-authenticate"], "Basic", "{who}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{who}");
        assert!(!body.contains("cloudconnexa_"), "{who}: {body}");
    }
    // Every path is behind the password, and unknown paths stay 404 behind it.
    let (status, _, _) = get(&client, &server.url("https", "/healthz"), None)
        .await
        .unwrap();
    assert_eq!(status, 401);
    let (status, _, _) = get(
        &client,
        &server.url("https", "/nope"),
        Some(("alice", PASSWORD)),
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
    server.stop().await;
}

/// With mutual TLS and basic auth on the main address, `--web.probe-listen-address` still answers
/// the health probes in plain HTTP without credentials, and shows nothing else.
#[tokio::test]
async fn health_probes_work_without_credentials_when_the_main_address_requires_them() {
    let (ca, clients_ca) = (Ca::new("server CA"), Ca::new("client CA"));
    let dir = Dir::new();
    dir.write("clients.crt", &clients_ca.pem());
    let path = dir.write(
        "web.yml",
        &format!(
            "{}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n{}",
            dir.server_tls(ca.server()),
            users(PASSWORD)
        ),
    );
    let args = [
        "--demo",
        "--web.config.file",
        path.to_str().unwrap(),
        "--web.probe-listen-address",
        "127.0.0.1:0",
    ];
    let server = Exporter::launch(config(&args), Edges::default()).await;
    let probes = server.probe_addr.expect("a probe address");
    let plain = reqwest::Client::new();
    let probe = |path: &str| format!("http://{probes}{path}");
    assert_eq!(get(&plain, &probe("/healthz"), None).await.unwrap().0, 200);
    wait_for(
        "/readyz on the probe address",
        Duration::from_secs(30),
        || async { (get(&plain, &probe("/readyz"), None).await.ok()?.0 == 200).then_some(()) },
    )
    .await;
    for path in ["/metrics", "/"] {
        let (status, _, body) = get(&plain, &probe(path), None).await.unwrap();
        assert_eq!(status, 404, "{path}");
        assert!(!body.contains("cloudconnexa_"), "{path}: {body}");
    }
    // The main address still wants a client certificate and the password.
    assert!(
        get(&plain, &server.url("http", "/readyz"), None)
            .await
            .is_err()
    );
    let trusted = https_client(&ca, Some(clients_ca.client()));
    let readyz = server.url("https", "/readyz");
    assert_eq!(get(&trusted, &readyz, None).await.unwrap().0, 401);
    assert_eq!(
        get(&trusted, &readyz, Some(("alice", PASSWORD)))
            .await
            .unwrap()
            .0,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_metrics() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let path = dir.write("web.yml", &dir.server_tls(ca.server()));
    let server = start_server(Some(&path)).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection promptly");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        read.is_err() || !answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(!answer.contains("cloudconnexa_"), "{answer}");

    let plain = reqwest::Client::new()
        .get(server.url("http", "/metrics"))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.is_ok_and(|r| r.status() != 200),
        "plain HTTP is not served"
    );
    // While HTTPS is.
    let (status, _, _) = get(
        &https_client(&ca, None),
        &server.url("https", "/metrics"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    server.stop().await;
}

#[test]
fn a_bad_web_config_exits_2_with_one_line_naming_the_flag() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = dir.server_tls(ca.server());
    dir.write("garbage.pem", "not PEM at all\n");
    let cases = [
        ("malformed YAML", "tls_server_config: [\n".to_owned()),
        (
            "an unknown key",
            "basic_auth_user:\n  alice: x\n".to_owned(),
        ),
        (
            "a missing certificate",
            tls.replace("server.crt", "missing.crt"),
        ),
        (
            "a certificate that is not PEM",
            tls.replace("server.crt", "garbage.pem"),
        ),
        (
            "a key that is not PEM",
            tls.replace("server.key", "garbage.pem"),
        ),
        (
            "a bad bcrypt hash",
            "basic_auth_users:\n  alice: plaintext\n".to_owned(),
        ),
        (
            "a verifying policy without CA",
            format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"),
        ),
    ];
    let missing = dir.path().join("absent.yml");
    let mut paths: Vec<(&str, PathBuf)> = cases
        .iter()
        .enumerate()
        .map(|(i, (what, text))| (*what, dir.write(&format!("web{i}.yml"), text)))
        .collect();
    paths.push(("a missing file", missing));
    for (what, path) in &paths {
        for via_env in [false, true] {
            let mut cmd = Command::new(BIN);
            cmd.args(["--demo", "--web.listen-address", "127.0.0.1:0"])
                .env_clear()
                .stdin(Stdio::null());
            if via_env {
                cmd.env("CLOUDCONNEXA_EXPORTER_WEB_CONFIG_FILE", path);
            } else {
                cmd.arg("--web.config.file").arg(path);
            }
            let out = cmd.output().expect("binary runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{what}: one line: {stderr}"
            );
            assert!(
                stderr.contains("--web.config.file")
                    && stderr.contains("CLOUDCONNEXA_EXPORTER_WEB_CONFIG_FILE"),
                "{what}: {stderr}"
            );
            assert!(!stderr.contains("$2b$"), "{what}: no hash shown: {stderr}");
        }
    }
}

#[tokio::test]
async fn a_file_that_breaks_after_start_leaves_the_last_good_config_in_force() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = dir.server_tls(ca.server());
    let path = dir.write("web.yml", &format!("{tls}{}", users(PASSWORD)));
    let server = start_server(Some(&path)).await;
    let client = https_client(&ca, None);
    let metrics = server.url("https", "/metrics");
    let alice = Some(("alice", PASSWORD));
    assert_eq!(get(&client, &metrics, alice).await.unwrap().0, 200);

    dir.write("web.yml", "basic_auth_users: [\n");
    let m = wait_for(
        "the failed reload to show",
        Duration::from_secs(10),
        || async {
            let (_, _, body) = get(&client, &metrics, alice).await.ok()?;
            let m = Metrics::parse(&body);
            (m.value("cloudconnexa_exporter_web_config_last_reload_successful") == Some(0.0))
                .then_some(m)
        },
    )
    .await;
    assert!(
        m.value("cloudconnexa_exporter_web_config_last_reload_success_timestamp_seconds")
            .is_some_and(|t| t > 1.6e9),
        "the last success is still dated"
    );
    // TLS and the password still hold.
    assert_eq!(get(&client, &metrics, alice).await.unwrap().0, 200);
    assert_eq!(get(&client, &metrics, None).await.unwrap().0, 401);

    // A fixed file with a new password takes over.
    dir.write("web.yml", &format!("{tls}{}", users("new password")));
    wait_for("the new password", Duration::from_secs(10), || async {
        let (status, _, _) = get(&client, &metrics, Some(("alice", "new password")))
            .await
            .ok()?;
        (status == 200).then_some(())
    })
    .await;
    assert_eq!(get(&client, &metrics, alice).await.unwrap().0, 401);
    // The gauge follows (scrapes are encoded at most once a second, hence the wait).
    wait_for(
        "the successful reload to show",
        Duration::from_secs(10),
        || async {
            let (_, _, body) = get(&client, &metrics, Some(("alice", "new password")))
                .await
                .ok()?;
            let m = Metrics::parse(&body);
            (m.value("cloudconnexa_exporter_web_config_last_reload_successful") == Some(1.0))
                .then_some(())
        },
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_certificate_is_served_after_reload() {
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let dir = Dir::new();
    let path = dir.write("web.yml", &dir.server_tls(old_ca.server()));
    let server = start_server(Some(&path)).await;
    let metrics = server.url("https", "/metrics");
    let (trusts_old, trusts_new) = (https_client(&old_ca, None), https_client(&new_ca, None));
    assert_eq!(get(&trusts_old, &metrics, None).await.unwrap().0, 200);
    assert!(get(&trusts_new, &metrics, None).await.is_err(), "not yet");

    dir.server_tls(new_ca.server());
    wait_for("the new certificate", Duration::from_secs(10), || async {
        get(&trusts_new, &metrics, None)
            .await
            .ok()
            .filter(|r| r.0 == 200)
    })
    .await;
    assert!(
        get(&trusts_old, &metrics, None).await.is_err(),
        "the old certificate is gone"
    );
    server.stop().await;
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_trusted_certificate() {
    let (ca, clients_ca, stranger_ca) = (
        Ca::new("server CA"),
        Ca::new("client CA"),
        Ca::new("other CA"),
    );
    let dir = Dir::new();
    dir.write("clients.crt", &clients_ca.pem());
    let path = dir.write(
        "web.yml",
        &format!(
            "{}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n",
            dir.server_tls(ca.server())
        ),
    );
    let server = start_server(Some(&path)).await;
    let metrics = server.url("https", "/metrics");

    let trusted = https_client(&ca, Some(clients_ca.client()));
    assert_eq!(get(&trusted, &metrics, None).await.unwrap().0, 200);
    assert!(
        get(&https_client(&ca, None), &metrics, None).await.is_err(),
        "a client without a certificate is refused"
    );
    assert!(
        get(
            &https_client(&ca, Some(stranger_ca.client())),
            &metrics,
            None
        )
        .await
        .is_err(),
        "a certificate from another CA is refused"
    );
    server.stop().await;
}

/// Opens `n` connections that send nothing or only the start of a request, and keeps them open.
async fn half_open(addr: SocketAddr, n: usize, partial: &[u8]) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        if i % 2 == 1 {
            s.write_all(partial).await.unwrap();
        }
        held.push(s);
    }
    held
}

/// Whether the server still holds `s` open (no EOF, no reset, nothing to read).
fn still_open(s: &TcpStream) -> bool {
    let mut buf = [0; 1];
    matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// The two load tests take turns: each measures latency, which the other would disturb on a
/// small machine.
static LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn half_open_connections_do_not_starve_scrapes() {
    let _turn = LOAD.lock().await;
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let path = dir.write("web.yml", &dir.server_tls(ca.server()));
    let plain = start_server(None).await;
    let tls = start_server(Some(&path)).await;
    // A partial request line; the start of a TLS record.
    let held_plain = half_open(plain.addr, 200, b"GET /metr").await;
    let held_tls = half_open(tls.addr, 200, &[0x16, 0x03, 0x01, 0x02]).await;

    let quick = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let (status, _, body) = get(&quick, &plain.url("http", "/metrics"), None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("cloudconnexa_up"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the plain scrape took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let (status, _, _) = get(
        &https_client(&ca, None),
        &tls.url("https", "/metrics"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the HTTPS scrape took {:?}",
        started.elapsed()
    );
    assert!(
        held_plain.iter().chain(&held_tls).all(still_open),
        "the half-open connections were held during the scrapes"
    );
    drop((held_plain, held_tls));
    plain.stop().await;
    tls.stop().await;
}

#[tokio::test]
async fn hundreds_of_concurrent_scrapes_all_succeed() {
    let _turn = LOAD.lock().await;
    const SCRAPERS: usize = 512;
    let dir = Dir::new();
    let path = dir.write("web.yml", &users(PASSWORD));
    let server = start_server(Some(&path)).await;
    let metrics = server.url("http", "/metrics");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // The first success pays bcrypt; the rest hit the cache.
    assert_eq!(
        get(&client, &metrics, Some(("alice", PASSWORD)))
            .await
            .unwrap()
            .0,
        200
    );

    let mut scrapes = tokio::task::JoinSet::new();
    for _ in 0..SCRAPERS {
        let (client, metrics) = (client.clone(), metrics.clone());
        scrapes.spawn(async move {
            let (status, _, body) = get(&client, &metrics, Some(("alice", PASSWORD))).await?;
            Ok::<_, reqwest::Error>(status == 200 && body.contains("cloudconnexa_up"))
        });
    }
    let results = tokio::time::timeout(Duration::from_secs(30), scrapes.join_all())
        .await
        .expect("all scrapes finish within 30 s");
    let failed: Vec<_> = results.iter().filter(|r| !matches!(r, Ok(true))).collect();
    assert!(
        failed.is_empty(),
        "{} of {SCRAPERS} failed: {:?}",
        failed.len(),
        failed.first()
    );
    server.stop().await;
}
