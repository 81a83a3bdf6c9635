//! The web configuration file's schema (the Prometheus exporter-toolkit format) and the checks
//! that need nothing but the file itself.
//!
//! Unknown keys are refused, as the toolkit refuses them: a misspelt `basic_auth_user` that was
//! silently ignored would leave the exporter open while its operator believes it protected.
//! Toolkit settings that rustls cannot honour (TLS 1.0 and 1.1, P-521, client SAN filtering) are
//! refused by name rather than ignored, for the same reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A problem with the file's own content.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Not YAML, or not the schema: an unknown key, a list where a string belongs...
    #[error("{}", one_line(.0))]
    Yaml(#[source] serde_yaml_ng::Error),
    /// A key has a value the exporter does not accept.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key, dotted from the top (`tls_server_config.min_version`).
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// serde_yaml_ng's messages can span lines (a snippet of the document); configuration errors are
/// reported on one line.
fn one_line(e: &serde_yaml_ng::Error) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn invalid(key: &'static str, problem: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        key,
        problem: problem.into(),
    }
}

/// The whole file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    /// TLS; absent or empty means plain HTTP.
    pub tls_server_config: Option<TlsServerConfig>,
    /// HTTP server settings.
    pub http_server_config: Option<HttpServerConfig>,
    /// User name -> bcrypt hash; absent or empty means no basic auth.
    pub basic_auth_users: Option<BTreeMap<String, String>>,
    /// A token bucket in front of every request.
    pub rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// The server certificate chain, inline PEM.
    pub cert: Option<String>,
    /// The server key, inline PEM.
    pub key: Option<String>,
    /// CA certificates for client certificates, inline PEM.
    pub client_ca: Option<String>,
    /// The server certificate chain, a PEM file.
    pub cert_file: Option<PathBuf>,
    /// The server key, a PEM file.
    pub key_file: Option<PathBuf>,
    /// `NoClientCert` (the default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`.
    pub client_auth_type: Option<String>,
    /// CA certificates for client certificates, a PEM file.
    pub client_ca_file: Option<PathBuf>,
    /// Not supported; present so that the error says so instead of "unknown key".
    #[serde(default)]
    pub client_allowed_sans: Vec<String>,
    /// `TLS12` (the default) or `TLS13`.
    pub min_version: Option<String>,
    /// `TLS12` or `TLS13` (the default).
    pub max_version: Option<String>,
    /// TLS 1.2 cipher suites by their IANA (Go) names; empty means rustls's safe defaults.
    #[serde(default)]
    pub cipher_suites: Vec<String>,
    /// Choose the server's preferred suite rather than the client's (default true).
    pub prefer_server_cipher_suites: Option<bool>,
    /// Key-exchange groups by their Go names: `X25519`, `CurveP256`, `CurveP384`.
    #[serde(default)]
    pub curve_preferences: Vec<String>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Accepted for compatibility; the exporter serves HTTP/1.1 only, which every scraper speaks.
    pub http2: Option<bool>,
    /// Extra response headers, from the toolkit's fixed list.
    pub headers: Option<BTreeMap<String, String>>,
}

/// `rate_limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Time between two tokens, a Prometheus duration; `0` disables the limit.
    pub interval: Option<DurationText>,
    /// Bucket size.
    pub burst: Option<u32>,
}

/// A duration as YAML gives it: `1s` is a string, a bare `0` a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationText {
    /// `30s`, `1m`, ...
    Text(String),
    /// A bare number; only `0` means something (no limit).
    Number(u64),
}

/// Who must present a client certificate, and whether it is checked against `client_ca_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate asked for.
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified against a CA (the handshake still proves the key is held).
    RequireAnyClientCert,
    /// Verified against the CA when given; clients without one are let in.
    VerifyClientCertIfGiven,
    /// Required and verified against the CA: the only setting that authenticates clients.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Whether this policy verifies certificates against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            Self::VerifyClientCertIfGiven | Self::RequireAndVerifyClientCert
        )
    }
}

/// A TLS protocol version rustls implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Where a PEM document comes from: inline text or a file (resolved against the config's folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// Inline in the configuration.
    Inline(String),
    /// A file.
    File(PathBuf),
}

/// The TLS settings, checked.
#[derive(Debug, Clone)]
pub struct TlsPlan {
    /// The certificate chain.
    pub cert: Pem,
    /// The private key.
    pub key: Pem,
    /// The client-certificate policy.
    pub client_auth: ClientAuth,
    /// The client CA, required exactly when the policy verifies.
    pub client_ca: Option<Pem>,
    /// Lowest version offered.
    pub min_version: TlsVersion,
    /// Highest version offered.
    pub max_version: TlsVersion,
    /// TLS 1.2 suites by name, in preference order; empty means the provider's defaults.
    pub cipher_suites: Vec<String>,
    /// Server order wins.
    pub prefer_server_cipher_suites: bool,
    /// Key-exchange groups by Go name, in preference order; empty means the defaults.
    pub curve_preferences: Vec<String>,
}

/// Everything the file asks for, checked, with paths resolved; files it names are not read yet.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// TLS, if on.
    pub tls: Option<TlsPlan>,
    /// Extra response headers (name, value).
    pub headers: Vec<(&'static str, String)>,
    /// User name -> bcrypt hash.
    pub users: BTreeMap<String, String>,
    /// `(interval, burst)` of the request limit, if on.
    pub rate_limit: Option<(Duration, u32)>,
}

/// Headers the toolkit lets a configuration set, with the values it accepts (`None`: any).
const ALLOWED_HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Content-Security-Policy", None),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-XSS-Protection", None),
    ("Strict-Transport-Security", None),
];

impl WebConfigFile {
    /// Parses the YAML text; an empty document is an empty configuration (plain HTTP, no auth).
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        serde_yaml_ng::from_str::<Option<Self>>(text)
            .map(Option::unwrap_or_default)
            .map_err(SchemaError::Yaml)
    }

    /// Checks every value and resolves relative paths against `dir`, the config file's folder
    /// (as the toolkit does, so a config and its certificates can move together).
    pub fn plan(self, dir: &Path) -> Result<Plan, SchemaError> {
        let tls = match self.tls_server_config {
            Some(t) => tls_plan(t, dir)?,
            None => None,
        };
        let http = self.http_server_config.unwrap_or_default();
        let mut headers = Vec::new();
        for (name, value) in http.headers.unwrap_or_default() {
            let Some((canonical, accepted)) = ALLOWED_HEADERS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            else {
                return Err(invalid(
                    "http_server_config.headers",
                    format!(
                        "header {name:?} cannot be configured; allowed: {}",
                        ALLOWED_HEADERS.map(|(n, _)| n).join(", ")
                    ),
                ));
            };
            if value.trim().is_empty() {
                continue;
            }
            if let Some(accepted) = accepted {
                if !accepted
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(value.trim()))
                {
                    return Err(invalid(
                        "http_server_config.headers",
                        format!(
                            "{canonical}: {value:?} is not accepted; use {}",
                            accepted.join(" or ")
                        ),
                    ));
                }
            }
            if axum::http::HeaderValue::from_str(&value).is_err() {
                return Err(invalid(
                    "http_server_config.headers",
                    format!("{canonical}: the value has characters a header cannot carry"),
                ));
            }
            headers.push((*canonical, value));
        }
        let users = self.basic_auth_users.unwrap_or_default();
        if users.keys().any(|u| u.is_empty() || u.contains(':')) {
            return Err(invalid(
                "basic_auth_users",
                "user names must be non-empty and free of ':'",
            ));
        }
        let rate_limit = match self.rate_limit {
            None => None,
            Some(r) => {
                let interval = match &r.interval {
                    None | Some(DurationText::Number(0)) => Duration::ZERO,
                    Some(DurationText::Number(n)) => {
                        return Err(invalid(
                            "rate_limit.interval",
                            format!("{n} has no unit; write e.g. {n}s"),
                        ));
                    }
                    Some(DurationText::Text(text)) => crate::duration::parse_duration(text)
                        .map_err(|e| invalid("rate_limit.interval", e.to_string()))?,
                };
                match (interval.is_zero(), r.burst.unwrap_or(0)) {
                    (true, _) => None,
                    (false, 0) => {
                        return Err(invalid(
                            "rate_limit.burst",
                            "must be at least 1 when rate_limit.interval is set",
                        ));
                    }
                    (false, burst) => Some((interval, burst)),
                }
            }
        };
        Ok(Plan {
            tls,
            headers,
            users,
            rate_limit,
        })
    }
}

fn pem_source(
    inline: Option<String>,
    file: Option<PathBuf>,
    dir: &Path,
    key: &'static str,
) -> Result<Option<Pem>, SchemaError> {
    let file = file.filter(|p| !p.as_os_str().is_empty());
    let inline = inline.filter(|s| !s.trim().is_empty());
    match (inline, file) {
        (Some(_), Some(_)) => Err(invalid(
            key,
            "give the file or the inline PEM (without _file), not both",
        )),
        (Some(text), None) => Ok(Some(Pem::Inline(text))),
        (None, Some(path)) => Ok(Some(Pem::File(dir.join(path)))),
        (None, None) => Ok(None),
    }
}

fn tls_plan(t: TlsServerConfig, dir: &Path) -> Result<Option<TlsPlan>, SchemaError> {
    let cert = pem_source(t.cert, t.cert_file, dir, "tls_server_config.cert_file")?;
    let key = pem_source(t.key, t.key_file, dir, "tls_server_config.key_file")?;
    let client_ca = pem_source(
        t.client_ca,
        t.client_ca_file,
        dir,
        "tls_server_config.client_ca_file",
    )?;
    let client_auth_type = t.client_auth_type.filter(|s| !s.is_empty());
    // As in the toolkit: a section without certificate, key or client settings means plain HTTP.
    if cert.is_none() && key.is_none() && client_ca.is_none() && client_auth_type.is_none() {
        return Ok(None);
    }
    let cert = cert.ok_or_else(|| invalid("tls_server_config.cert_file", "missing"))?;
    let key = key.ok_or_else(|| invalid("tls_server_config.key_file", "missing"))?;
    let client_auth = match client_auth_type.as_deref() {
        None | Some("NoClientCert") => ClientAuth::NoClientCert,
        Some("RequestClientCert") => ClientAuth::RequestClientCert,
        // `RequireClientCert` is the toolkit's older spelling.
        Some("RequireAnyClientCert" | "RequireClientCert") => ClientAuth::RequireAnyClientCert,
        Some("VerifyClientCertIfGiven") => ClientAuth::VerifyClientCertIfGiven,
        Some("RequireAndVerifyClientCert") => ClientAuth::RequireAndVerifyClientCert,
        Some(other) => {
            return Err(invalid(
                "tls_server_config.client_auth_type",
                format!(
                    "unknown policy {other:?}: use NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    match (client_auth.verifies(), client_ca.is_some()) {
        (true, false) => {
            return Err(invalid(
                "tls_server_config.client_ca_file",
                "missing: client_auth_type verifies client certificates against it",
            ));
        }
        (false, true) => {
            return Err(invalid(
                "tls_server_config.client_auth_type",
                "a client CA is configured but the policy does not verify client certificates; \
                 use RequireAndVerifyClientCert",
            ));
        }
        _ => {}
    }
    if !t.client_allowed_sans.is_empty() {
        return Err(invalid(
            "tls_server_config.client_allowed_sans",
            "not supported by this exporter; issue client certificates from a dedicated CA instead",
        ));
    }
    let min_version =
        tls_version(t.min_version, "tls_server_config.min_version")?.unwrap_or(TlsVersion::Tls12);
    let max_version =
        tls_version(t.max_version, "tls_server_config.max_version")?.unwrap_or(TlsVersion::Tls13);
    if min_version > max_version {
        return Err(invalid(
            "tls_server_config.min_version",
            "is above max_version",
        ));
    }
    Ok(Some(TlsPlan {
        cert,
        key,
        client_auth,
        client_ca,
        min_version,
        max_version,
        cipher_suites: t.cipher_suites,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
        curve_preferences: t.curve_preferences,
    }))
}

fn tls_version(text: Option<String>, key: &'static str) -> Result<Option<TlsVersion>, SchemaError> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("TLS12") => Ok(Some(TlsVersion::Tls12)),
        Some("TLS13") => Ok(Some(TlsVersion::Tls13)),
        Some("TLS10" | "TLS11") => Err(invalid(
            key,
            "TLS 1.0 and 1.1 are not supported (rustls implements TLS 1.2 and 1.3); use TLS12",
        )),
        Some(other) => Err(invalid(
            key,
            format!("unknown version {other:?}: use TLS12 or TLS13"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, SchemaError> {
        WebConfigFile::parse(text)?.plan(Path::new("/etc/exporter"))
    }

    fn problem(text: &str) -> String {
        plan(text).expect_err("should be refused").to_string()
    }

    #[test]
    fn the_toolkit_example_parses_with_paths_resolved_against_the_config_folder() {
        let p = plan(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  \
             min_version: TLS13\n  client_auth_type: RequireAndVerifyClientCert\n  \
             client_ca_file: ca.crt\nhttp_server_config:\n  http2: false\n  headers:\n    \
             X-Content-Type-Options: nosniff\n    x-frame-options: DENY\n\
             basic_auth_users:\n  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n\
             rate_limit:\n  interval: 1s\n  burst: 20\n",
        )
        .expect("valid");
        let tls = p.tls.expect("TLS on");
        assert_eq!(tls.cert, Pem::File("/etc/exporter/server.crt".into()));
        assert_eq!(tls.key, Pem::File("/abs/server.key".into()));
        assert_eq!(
            tls.client_ca,
            Some(Pem::File("/etc/exporter/ca.crt".into()))
        );
        assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::Tls13, TlsVersion::Tls13)
        );
        assert_eq!(
            p.headers,
            vec![
                ("X-Content-Type-Options", "nosniff".to_owned()),
                ("X-Frame-Options", "DENY".to_owned())
            ]
        );
        assert_eq!(p.users.len(), 1);
        assert_eq!(p.rate_limit, Some((Duration::from_secs(1), 20)));
    }

    #[test]
    fn empty_files_and_sections_mean_plain_http_without_auth() {
        for text in [
            "",
            "# nothing\n",
            "tls_server_config:\n",
            "tls_server_config: {}\nbasic_auth_users:\n",
        ] {
            let p = plan(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(
                p.tls.is_none() && p.users.is_empty() && p.headers.is_empty(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        for (text, key) in [
            ("basic_auth_user:\n  a: b\n", "basic_auth_user"),
            ("tls_server_config:\n  certfile: a\n", "certfile"),
            ("http_server_config:\n  header: {}\n", "header"),
        ] {
            let e = problem(text);
            assert!(e.contains(key) && !e.contains('\n'), "{e}");
        }
        assert!(
            problem("tls_server_config: [\n").contains("line"),
            "malformed YAML"
        );
    }

    #[test]
    fn settings_rustls_cannot_honour_are_refused_by_name() {
        let tls = "tls_server_config:\n  cert_file: c\n  key_file: k\n";
        for (extra, expect) in [
            ("  min_version: TLS10\n", "TLS 1.0"),
            ("  max_version: TLS14\n", "unknown version"),
            ("  min_version: TLS13\n  max_version: TLS12\n", "above"),
            ("  client_allowed_sans: [a]\n", "not supported"),
            ("  client_auth_type: Sometimes\n", "unknown policy"),
            (
                "  client_auth_type: RequireAndVerifyClientCert\n",
                "client_ca_file: missing",
            ),
            ("  client_ca_file: ca\n", "does not verify"),
            ("  cert: inline\n", "not both"),
        ] {
            let e = problem(&format!("{tls}{extra}"));
            assert!(e.contains(expect), "{extra:?}: {e}");
        }
        assert!(problem("tls_server_config:\n  key_file: k\n").contains("cert_file: missing"));
    }

    #[test]
    fn headers_come_from_the_toolkit_list_with_its_values() {
        assert!(
            problem("http_server_config:\n  headers:\n    Server: me\n")
                .contains("cannot be configured")
        );
        assert!(
            problem("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
                .contains("deny or sameorigin")
        );
        let p = plan("http_server_config:\n  headers:\n    Content-Security-Policy: ''\n").unwrap();
        assert!(p.headers.is_empty(), "a blank value unsets the header");
    }

    #[test]
    fn rate_limit_needs_a_burst_and_zero_disables_it() {
        assert!(problem("rate_limit:\n  interval: 1s\n").contains("burst"));
        assert!(
            problem("rate_limit:\n  interval: soon\n  burst: 1\n").contains("rate_limit.interval")
        );
        assert_eq!(
            plan("rate_limit:\n  interval: 0\n  burst: 5\n")
                .unwrap()
                .rate_limit,
            None
        );
    }
}
