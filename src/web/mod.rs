//! The web configuration (`--web.config.file`): TLS, basic auth, response headers and a request
//! limit, in the Prometheus exporter-toolkit format; and the deadlines every connection runs under.
//!
//! The file is loaded and checked at start ([`WebConfig::load`]; a bad file is a configuration
//! error, exit 2). While serving, a [`WebConfigHandle`] holds the configuration in force and
//! checks every [`RELOAD_INTERVAL`] whether the file or the certificate, key and CA files it names
//! have changed; a change that holds still for one more check is loaded, so certificates rotate
//! without a restart. A reload that fails leaves the last good configuration in force, logs why
//! and sets `cloudconnexa_exporter_web_config_last_reload_successful` to 0.
//!
//! Layers, each with its own error type: [`config`] (the YAML schema and the checks that need no
//! other file), [`tls`] (the rustls configuration), [`auth`] (bcrypt users and the verification
//! cache), [`limit`] (the token bucket); [`deadline`] is the per-connection clock used by the
//! server whether or not a file is given.

pub mod auth;
pub mod config;
pub mod deadline;
pub mod limit;
pub mod tls;

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ring::digest;

use crate::metrics::WebConfigGauges;

use self::auth::{AuthError, BasicAuth};
use self::config::{SchemaError, WebConfigFile};
use self::limit::RateLimit;
use self::tls::TlsError;

/// How often the file (and the files it names) are checked for changes; a change is loaded at the
/// check after the one that saw it, so 2 to 4 s after it was written. Reading a few small files
/// and hashing them is cheap.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// Why a web configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file itself could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not valid YAML for the schema, or a value is not accepted.
    #[error("{}: {source}", path.display())]
    Schema {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        source: SchemaError,
    },
    /// The TLS settings cannot be used.
    #[error("{}: tls_server_config: {source}", path.display())]
    Tls {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        source: TlsError,
    },
    /// The users cannot be used.
    #[error("{}: {source}", path.display())]
    Auth {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        source: AuthError,
    },
}

/// A loaded, checked web configuration.
pub struct WebConfig {
    path: PathBuf,
    tls: Option<Arc<rustls::ServerConfig>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Option<BasicAuth>,
    rate_limit: Option<RateLimit>,
    loaded_at: SystemTime,
    fingerprint: Fingerprint,
}

impl fmt::Debug for WebConfig {
    /// Says what is on, never a hash or a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("rate_limit", &self.rate_limit.is_some())
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks the file at `path` and every file it names.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        load_tracked(path).1
    }

    /// The file this came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The TLS server configuration, if TLS is on.
    pub fn tls(&self) -> Option<&Arc<rustls::ServerConfig>> {
        self.tls.as_ref()
    }

    /// The basic-auth users, if any.
    pub fn auth(&self) -> Option<&BasicAuth> {
        self.auth.as_ref()
    }

    /// The response to give instead of serving the request, if any: 429 past the rate limit,
    /// 401 (with `WWW-Authenticate: Basic`) without a known user's password.
    pub async fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        if self.rate_limit.as_ref().is_some_and(|l| !l.allow()) {
            return Some((StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response());
        }
        match &self.auth {
            Some(auth)
                if !auth
                    .admits(headers.get(axum::http::header::AUTHORIZATION))
                    .await =>
            {
                Some(
                    (
                        StatusCode::UNAUTHORIZED,
                        [(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"))],
                        "Unauthorized\n",
                    )
                        .into_response(),
                )
            }
            _ => None,
        }
    }

    /// Adds the configured headers to a response (refusals included, as the toolkit does).
    pub fn decorate(&self, response: &mut Response) {
        for (name, value) in &self.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
}

/// Loads the file, and says what was read, whether or not the load succeeded.
fn load_tracked(path: &Path) -> (Fingerprint, Result<WebConfig, WebConfigError>) {
    let mut reader = Reader::default();
    let result = build(path, &mut reader);
    let fingerprint = reader.finish();
    let result = result.map(|mut c| {
        c.fingerprint = fingerprint.clone();
        c
    });
    (fingerprint, result)
}

fn build(path: &Path, reader: &mut Reader) -> Result<WebConfig, WebConfigError> {
    let bytes = reader.read(path).map_err(|source| WebConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| WebConfigError::Read {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let plan = WebConfigFile::parse(&text)
        .and_then(|f| f.plan(dir))
        .map_err(|source| WebConfigError::Schema {
            path: path.to_owned(),
            source,
        })?;
    let tls = match &plan.tls {
        Some(t) => Some(
            tls::server_config(t, &mut |p| reader.read(p)).map_err(|source| {
                WebConfigError::Tls {
                    path: path.to_owned(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let auth = BasicAuth::new(plan.users).map_err(|source| WebConfigError::Auth {
        path: path.to_owned(),
        source,
    })?;
    let headers = plan
        .headers
        .into_iter()
        .filter_map(|(name, value)| {
            // Both were checked by the schema.
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect();
    Ok(WebConfig {
        path: path.to_owned(),
        tls,
        headers,
        auth,
        rate_limit: plan.rate_limit.map(|(i, b)| RateLimit::new(i, b)),
        loaded_at: SystemTime::now(),
        fingerprint: Fingerprint::default(),
    })
}

/// What one load read: the files, in order, and a SHA-256 over their names and contents (or the
/// reason they could not be read). Content rather than modification times, so that a file
/// replaced within the same second, or swapped through a symlink as Kubernetes does with mounted
/// secrets, is still noticed; only a digest is kept, never a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fingerprint {
    paths: Vec<PathBuf>,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// The same files, read again now.
    fn now(&self) -> Self {
        let mut reader = Reader::default();
        for path in &self.paths {
            let _ = reader.read(path);
        }
        reader.finish()
    }
}

/// Reads files and keeps a [`Fingerprint`] of what it read.
struct Reader {
    paths: Vec<PathBuf>,
    digest: digest::Context,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            digest: digest::Context::new(&digest::SHA256),
        }
    }
}

impl Reader {
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        let result = std::fs::read(path);
        let name = path.as_os_str().as_encoded_bytes();
        self.digest.update(&(name.len() as u64).to_be_bytes());
        self.digest.update(name);
        match &result {
            Ok(bytes) => {
                self.digest.update(&[1]);
                self.digest.update(&(bytes.len() as u64).to_be_bytes());
                self.digest.update(bytes);
            }
            Err(e) => {
                self.digest.update(&[0]);
                self.digest.update(format!("{:?}", e.kind()).as_bytes());
            }
        }
        self.paths.push(path.to_owned());
        result
    }

    fn finish(self) -> Fingerprint {
        Fingerprint {
            paths: self.paths,
            digest: self.digest.finish().as_ref().to_vec(),
        }
    }
}

/// The web configuration in force, shared by the server and the reload task; cheap to clone.
#[derive(Clone)]
pub struct WebConfigHandle {
    inner: Arc<Inner>,
}

struct Inner {
    current: RwLock<Arc<WebConfig>>,
    reads: Mutex<Reads>,
    gauges: Option<WebConfigGauges>,
}

/// What the reload checks compare.
struct Reads {
    /// What the last load, good or bad, read.
    last: Fingerprint,
    /// A change seen at the previous check, loaded if the next check sees it unchanged.
    pending: Option<Fingerprint>,
}

impl fmt::Debug for WebConfigHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebConfigHandle")
            .field(&self.current())
            .finish()
    }
}

impl WebConfigHandle {
    /// Puts `config` in force; `gauges`, when given, report each reload.
    pub fn new(config: Arc<WebConfig>, gauges: Option<WebConfigGauges>) -> Self {
        if let Some(g) = &gauges {
            g.last_reload_successful.set(1);
            g.last_reload_success_timestamp
                .set(unix_seconds(config.loaded_at));
        }
        Self {
            inner: Arc::new(Inner {
                reads: Mutex::new(Reads {
                    last: config.fingerprint.clone(),
                    pending: None,
                }),
                current: RwLock::new(config),
                gauges,
            }),
        }
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<WebConfig> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reloads if any file read by the last load has changed and has then stayed the same for one
    /// more check: a file caught halfway through being written (an editor truncates, then writes)
    /// could otherwise parse as a valid configuration with a section missing, basic auth say.
    ///
    /// `Ok(true)`: a new configuration is in force; `Ok(false)`: nothing (yet) to load; `Err`:
    /// the change is not usable and the last good configuration stays in force (logged, and
    /// reported by the gauges). A broken file is reported once, not at every check.
    pub fn reload_if_changed(&self) -> Result<bool, WebConfigError> {
        let mut state = self.inner.reads.lock().unwrap_or_else(|e| e.into_inner());
        let now = state.last.now();
        if now == state.last {
            state.pending = None;
            return Ok(false);
        }
        if state.pending.as_ref() != Some(&now) {
            state.pending = Some(now);
            return Ok(false);
        }
        state.pending = None;
        let path = self.current().path.clone();
        let (read, result) = load_tracked(&path);
        state.last = read;
        match result {
            Ok(config) => {
                tracing::info!(
                    path = %path.display(),
                    tls = config.tls.is_some(),
                    basic_auth = config.auth.is_some(),
                    "web configuration reloaded"
                );
                if let Some(g) = &self.inner.gauges {
                    g.last_reload_successful.set(1);
                    g.last_reload_success_timestamp
                        .set(unix_seconds(config.loaded_at));
                }
                *self
                    .inner
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
                Ok(true)
            }
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "reloading the web configuration failed; the last good one stays in force"
                );
                if let Some(g) = &self.inner.gauges {
                    g.last_reload_successful.set(0);
                }
                Err(e)
            }
        }
    }

    /// Checks for changes every `every` until `stop` completes. The check reads files, so it runs
    /// on the blocking pool.
    pub async fn watch(self, every: Duration, stop: impl Future<Output = ()>) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        let checks = async {
            loop {
                ticks.tick().await;
                let handle = self.clone();
                let _ = tokio::task::spawn_blocking(move || handle.reload_if_changed()).await;
            }
        };
        tokio::select! {
            () = stop => {}
            () = checks => {}
        }
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    /// Two checks: the first sees a change, the second loads it if it held still.
    fn reload(handle: &WebConfigHandle) -> Result<bool, WebConfigError> {
        match handle.reload_if_changed() {
            Ok(false) => handle.reload_if_changed(),
            other => panic!("the first check after a change only notes it: {other:?}"),
        }
    }

    fn users(password: &str) -> String {
        format!(
            "basic_auth_users:\n  alice: {}\n",
            bcrypt::hash(password, 4).unwrap()
        )
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_configuration_until_it_is_fixed() {
        let dir = Dir::new();
        let path = dir.write("web.yml", &users("one"));
        let handle = WebConfigHandle::new(Arc::new(WebConfig::load(&path).unwrap()), None);
        assert!(!handle.reload_if_changed().unwrap(), "nothing changed");
        dir.write("web.yml", "basic_auth_users: [\n");
        assert!(reload(&handle).is_err());
        assert!(
            handle.current().auth().is_some(),
            "last good config in force"
        );
        assert!(
            !handle.reload_if_changed().unwrap(),
            "a broken file is reported once"
        );
        dir.write("web.yml", "");
        assert!(reload(&handle).unwrap());
        assert!(handle.current().auth().is_none());
    }

    #[test]
    fn a_file_still_changing_is_not_loaded() {
        let dir = Dir::new();
        let path = dir.write("web.yml", &users("one"));
        let handle = WebConfigHandle::new(Arc::new(WebConfig::load(&path).unwrap()), None);
        dir.write("web.yml", "");
        assert!(!handle.reload_if_changed().unwrap());
        dir.write("web.yml", "# being written\n");
        assert!(!handle.reload_if_changed().unwrap(), "changed again: wait");
        assert!(handle.current().auth().is_some());
        assert!(handle.reload_if_changed().unwrap(), "held still: loaded");
        assert!(handle.current().auth().is_none());
    }

    #[test]
    fn files_named_by_the_configuration_are_watched_too() {
        let dir = Dir::new();
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        dir.write("tls.crt", &c.cert.pem());
        dir.write("tls.key", &c.signing_key.serialize_pem());
        let path = dir.write(
            "web.yml",
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
        );
        let handle = WebConfigHandle::new(Arc::new(WebConfig::load(&path).unwrap()), None);
        let first = handle.current();
        assert!(first.tls().is_some());
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        dir.write("tls.crt", &c.cert.pem());
        assert!(
            reload(&handle).is_err(),
            "new certificate, old key: refused"
        );
        dir.write("tls.key", &c.signing_key.serialize_pem());
        assert!(reload(&handle).unwrap());
        assert!(!Arc::ptr_eq(&first, &handle.current()));
        std::fs::remove_file(dir.path().join("tls.key")).unwrap();
        let e = reload(&handle).unwrap_err();
        assert!(e.to_string().contains("tls.key"), "{e}");
    }

    #[tokio::test]
    async fn refusals_carry_the_challenge_and_the_configured_headers() {
        let dir = Dir::new();
        let path = dir.write(
            "web.yml",
            &format!(
                "{}http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
                users("pw")
            ),
        );
        let config = WebConfig::load(&path).unwrap();
        let mut refusal = config
            .refusal(&HeaderMap::new())
            .await
            .expect("no credentials");
        config.decorate(&mut refusal);
        assert_eq!(refusal.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refusal.headers()[WWW_AUTHENTICATE], "Basic");
        assert_eq!(refusal.headers()["x-frame-options"], "deny");
        let debug = format!("{config:?}");
        assert!(!debug.contains("$2b$"), "{debug}");
    }
}
