//! TLS: a rustls server configuration (the `ring` provider) built from the checked settings.
//!
//! Everything that can fail does so here, at load time, so that a bad certificate or key is a
//! configuration error at start (exit 2) or a logged, refused reload, never a handshake failure
//! discovered by the first scraper.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring as provider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

use super::config::{ClientAuth, Pem, TlsPlan, TlsVersion};

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file named by the configuration could not be read.
    #[error("cannot read the {what} file {}: {source}", path.display())]
    Read {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A PEM document holds nothing usable.
    #[error("the {what} ({origin}) holds no {expected}: {problem}")]
    Pem {
        /// `certificate`, `key` or `client CA`.
        what: &'static str,
        /// `file <path>` or `inline`.
        origin: String,
        /// What was looked for.
        expected: &'static str,
        /// What the parser said.
        problem: String,
    },
    /// A cipher suite or curve name rustls does not offer.
    #[error("{key}: {problem}")]
    Unsupported {
        /// The setting.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// rustls refused the combination (the key does not match the certificate, no usable suite).
    #[error("{context}: {source}")]
    Rustls {
        /// What was being set up.
        context: &'static str,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The client CA cannot be used to verify client certificates.
    #[error("the client CA cannot verify client certificates: {0}")]
    ClientCa(#[source] rustls::server::VerifierBuilderError),
}

/// Builds the server configuration; `read` reads the files the settings name (and lets the caller
/// remember them, to notice when they change).
pub fn server_config(
    plan: &TlsPlan,
    read: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = certificates(&plan.cert, "certificate", read)?;
    let key = private_key(&plan.key, read)?;
    let client_roots = match &plan.client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "client CA", read)? {
                roots.add(cert).map_err(|source| TlsError::Rustls {
                    context: "the client CA",
                    source,
                })?;
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let provider = Arc::new(crypto_provider(plan)?);
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (plan.min_version..=plan.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|source| TlsError::Rustls {
            context: "the protocol versions and cipher suites",
            source,
        })?;
    let builder = match (plan.client_auth, client_roots) {
        (ClientAuth::NoClientCert, _) => builder.with_no_client_auth(),
        (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, _) => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                mandatory: plan.client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })),
        (policy, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if policy == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(TlsError::ClientCa)?)
        }
        // The schema check guarantees a CA for the verifying policies.
        (_, None) => {
            return Err(TlsError::Unsupported {
                key: "tls_server_config.client_ca_file",
                problem: "missing".into(),
            });
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|source| TlsError::Rustls {
            context: "the certificate and key",
            source,
        })?;
    // HTTP/1.1 only: announcing it lets clients that insist on ALPN connect.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = plan.prefer_server_cipher_suites;
    Ok(Arc::new(config))
}

/// The `ring` provider, narrowed to the cipher suites and curves the settings list.
fn crypto_provider(plan: &TlsPlan) -> Result<CryptoProvider, TlsError> {
    let mut p = provider::default_provider();
    if !plan.cipher_suites.is_empty() {
        let mut chosen: Vec<_> = p
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        for name in &plan.cipher_suites {
            let found = p.cipher_suites.iter().copied().find(|s| {
                s.suite().as_str().is_some_and(|n| {
                    // Go also knows the ChaCha20 suites without their `_SHA256` suffix.
                    n == name
                        || (name.ends_with("CHACHA20_POLY1305") && n == format!("{name}_SHA256"))
                })
            });
            match found {
                Some(s) if s.version() == &rustls::version::TLS13 => {}
                Some(s) => chosen.push(s),
                None => {
                    return Err(TlsError::Unsupported {
                        key: "tls_server_config.cipher_suites",
                        problem: format!(
                            "{name:?} is not offered; rustls offers {}",
                            p.cipher_suites
                                .iter()
                                .filter_map(|s| s.suite().as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
        }
        p.cipher_suites = chosen;
    }
    if !plan.curve_preferences.is_empty() {
        p.kx_groups = plan
            .curve_preferences
            .iter()
            .map(|name| match name.as_str() {
                "X25519" => Ok(provider::kx_group::X25519),
                "CurveP256" => Ok(provider::kx_group::SECP256R1),
                "CurveP384" => Ok(provider::kx_group::SECP384R1),
                other => Err(TlsError::Unsupported {
                    key: "tls_server_config.curve_preferences",
                    problem: format!(
                        "{other:?} is not offered; use X25519, CurveP256 or CurveP384"
                    ),
                }),
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(p)
}

fn origin(pem: &Pem) -> String {
    match pem {
        Pem::Inline(_) => "inline".to_owned(),
        Pem::File(path) => format!("file {}", path.display()),
    }
}

fn pem_bytes(
    pem: &Pem,
    what: &'static str,
    read: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<Vec<u8>, TlsError> {
    match pem {
        Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        Pem::File(path) => read(path).map_err(|source| TlsError::Read {
            what,
            path: path.clone(),
            source,
        }),
    }
}

fn certificates(
    pem: &Pem,
    what: &'static str,
    read: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = pem_bytes(pem, what, read)?;
    let bad = |problem: String| TlsError::Pem {
        what,
        origin: origin(pem),
        expected: "certificate",
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block found".into()));
    }
    Ok(certs)
}

fn private_key(
    pem: &Pem,
    read: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = pem_bytes(pem, "key", read)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        what: "key",
        origin: origin(pem),
        expected: "private key",
        problem: e.to_string(),
    })
}

/// `RequestClientCert` and `RequireAnyClientCert`: take any certificate without checking who
/// issued it (the handshake signatures are still verified, so the client holds its key). The
/// toolkit documents these policies as insecure; they exist for compatibility.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cert: String, key: String) -> TlsPlan {
        TlsPlan {
            cert: Pem::Inline(cert),
            key: Pem::Inline(key),
            client_auth: ClientAuth::NoClientCert,
            client_ca: None,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: vec![],
            prefer_server_cipher_suites: true,
            curve_preferences: vec![],
        }
    }

    fn generated() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn no_files(_: &Path) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::NotFound.into())
    }

    #[test]
    fn a_certificate_and_its_key_build_a_config_speaking_http1() {
        let (cert, key) = generated();
        let config = server_config(&plan(cert, key), &mut no_files).expect("valid");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let (cert, _) = generated();
        let (_, other_key) = generated();
        let e = server_config(&plan(cert, other_key), &mut no_files).unwrap_err();
        assert!(e.to_string().contains("certificate and key"), "{e}");
    }

    #[test]
    fn pem_without_the_expected_block_is_refused() {
        let (cert, key) = generated();
        let e = server_config(&plan(key.clone(), key), &mut no_files).unwrap_err();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        let e = server_config(&plan(cert.clone(), cert), &mut no_files).unwrap_err();
        assert!(e.to_string().contains("holds no private key"), "{e}");
    }

    #[test]
    fn unreadable_files_name_the_file() {
        let (_, key) = generated();
        let mut p = plan(String::new(), key);
        p.cert = Pem::File("/nonexistent/server.crt".into());
        let e = server_config(&p, &mut no_files).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/server.crt"), "{e}");
    }

    #[test]
    fn cipher_suites_and_curves_use_go_names() {
        let (cert, key) = generated();
        let mut p = plan(cert, key);
        p.cipher_suites = vec![
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305".into(),
        ];
        p.curve_preferences = vec!["X25519".into(), "CurveP256".into()];
        let config = server_config(&p, &mut no_files).expect("valid");
        assert_eq!(config.crypto_provider().kx_groups.len(), 2);
        p.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_SHA".into()];
        assert!(server_config(&p, &mut no_files).is_err());
        p.cipher_suites.clear();
        p.curve_preferences = vec!["CurveP521".into()];
        assert!(server_config(&p, &mut no_files).is_err());
    }
}
