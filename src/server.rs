//! The HTTP side: `/metrics` (or the telemetry path), `/`, `/healthz`, `/readyz`.
//!
//! Handlers only read state that the poller published; none of them calls the CloudConnexa API,
//! so scrapes are cheap and cannot spend the API's rate limit.
//!
//! [`serve`] is a hand-written accept loop over hyper rather than `axum::serve`, for what an
//! exporter reachable from a network needs: TLS, deadlines that stop slow or silent clients from
//! holding connections, a cap on connections, accept errors that never stop the server, and a
//! bounded graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::collectors::Health;
use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};
use crate::web::WebConfigHandle;
use crate::web::deadline::{Deadline, Timeouts};

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The metrics to serve.
    pub metrics: Arc<Metrics>,
    /// The collectors' state.
    pub health: Health,
    /// Where metrics are served.
    pub telemetry_path: String,
}

/// The router; tests drive it with `tower::ServiceExt::oneshot`, no socket needed.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(&state.telemetry_path.clone(), get(metrics))
        .route("/", get(landing))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
}

/// The router of `--web.probe-listen-address`: `/healthz` and `/readyz` only, the same answers as
/// on the main address. It is served without TLS or authentication so that health probes (such
/// as Kubernetes' kubelet, which can send neither a password nor a client certificate) keep
/// working when `--web.config.file` protects the main address; it shows no data.
pub fn probe_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(state)
}

/// Most connections served at once; past it, new connections wait in the listen backlog. Far
/// above what scrapers need, low enough that a flood cannot exhaust file descriptors.
pub const MAX_CONNECTIONS: usize = 4096;

/// How long a TLS handshake may take; a client that never finishes one holds only its own task.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may take to finish after the shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Pause after a failed accept (such as EMFILE: out of file descriptors), doubled while it keeps
/// failing: retrying at once would spin on the error.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and gives
/// requests in flight [`SHUTDOWN_GRACE`] to finish.
///
/// Each connection runs in its own task under [`Timeouts::default`] deadlines, with TLS, basic
/// auth, extra headers and the request limit of `web` (read afresh for each connection and
/// request, so reloads apply without a restart). Accept errors are logged and retried, never
/// fatal.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<WebConfigHandle>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let (closing_tx, closing) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = JoinSet::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = ACCEPT_BACKOFF.0;
                a
            }
            Err(e) if is_connection_error(&e) => {
                tracing::debug!(error = %e, "a connection failed before it was accepted");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "accepting connections failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let connection = Connection {
            router: router.clone(),
            web: web.clone(),
            watcher: graceful.watcher(),
            closing: closing.clone(),
        };
        tasks.spawn(async move {
            connection.run(stream, peer).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tasks.len(),
            "connections still busy after the shutdown grace period; closing them"
        );
    }
    tasks.shutdown().await;
    Ok(())
}

/// Errors of one connection that the kernel reports at accept; the listener itself is fine.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}

/// What one connection's task needs.
struct Connection {
    router: Router,
    web: Option<WebConfigHandle>,
    watcher: Watcher,
    closing: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let tls = self.web.as_ref().and_then(|w| w.current().tls().cloned());
        let Some(tls) = tls else {
            return self.http(stream, peer).await;
        };
        let handshake = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            tokio_rustls::TlsAcceptor::from(tls).accept(stream),
        );
        let mut closing = self.closing.clone();
        let closing = async move {
            let _ = closing.wait_for(|c| *c).await;
        };
        tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => self.http(stream, peer).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
            () = closing => {}
        }
    }

    async fn http<S>(self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(Deadline::new(stream, Timeouts::default()));
        let router = self.router;
        let web = self.web;
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            respond(router.clone(), web.clone(), request)
        });
        let mut builder = http1::Builder::new();
        // Deadline enforces the request and idle timeouts; hyper's own header timer would also
        // cut keep-alive connections between scrapes.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true);
        let connection = builder.serve_connection(io, service);
        if let Err(e) = self.watcher.watch(connection).await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Applies the web configuration in force (limit, auth, headers), then the router.
async fn respond(
    router: Router,
    web: Option<WebConfigHandle>,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let Some(web) = web else {
        return router.oneshot(request).await;
    };
    let config = web.current();
    let mut response = match config.refusal(request.headers()).await {
        Some(refusal) => refusal,
        None => router.oneshot(request).await?,
    };
    config.decorate(&mut response);
    Ok(response)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let encoded = state.metrics.encoded();
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        });
    let mut response = if gzip {
        let mut r = encoded.gzip.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        encoded.text.into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TEXT_CONTENT_TYPE),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.health.is_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a collector's task has stopped\n",
        )
            .into_response()
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    let waiting = state.health.waiting_for();
    if waiting.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let names: Vec<&str> = waiting.iter().map(|c| c.as_str()).collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "not ready: waiting for {} (sessions: a complete listing of active sessions; the \
             others: a first run)\n",
            names.join(", ")
        ),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    let path = escape(&state.telemetry_path);
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rows: String = state
        .health
        .collectors()
        .iter()
        .map(|status| {
            let (state, detail) = match status.last() {
                None => ("waiting".to_owned(), "no run has finished yet".to_owned()),
                Some(run) => match &run.outcome {
                    Ok(report) => (
                        "ok".to_owned(),
                        format!(
                            "last run succeeded at {} in {:.1} s ({} requests): {}",
                            time(run.finished_at),
                            run.duration.as_secs_f64(),
                            report.requests,
                            escape(&report.summary)
                        ),
                    ),
                    Err(error) => (
                        format!("failing ({} in a row)", run.failures),
                        format!(
                            "last run failed at {} after {:.1} s: {}",
                            time(run.finished_at),
                            run.duration.as_secs_f64(),
                            escape(error)
                        ),
                    ),
                },
            };
            format!(
                "<tr><td>{}</td><td>{state}</td><td>{}</td><td>{detail}</td></tr>\n",
                status.name().as_str(),
                if status.is_ready() { "yes" } else { "no" },
            )
        })
        .collect();
    Html(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>CloudConnexa Exporter</title></head>\n\
         <body><h1>CloudConnexa Exporter</h1>\n<p>Version {version}</p>\n\
         <p><a href=\"{path}\">Metrics</a> · <a href=\"/healthz\">Health</a> · <a href=\"/readyz\">Readiness</a></p>\n\
         <table>\n<tr><th>collector</th><th>state</th><th>ready</th><th>last run</th></tr>\n{rows}</table>\n\
         </body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{CollectorName, Status};
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    /// The state of an exporter with the sessions and users collectors, and their statuses.
    fn state() -> (AppState, Arc<Status>, Arc<Status>) {
        let sessions = Arc::new(Status::new(CollectorName::Sessions));
        let users = Arc::new(Status::new(CollectorName::Users));
        let state = AppState {
            metrics: Arc::new(Metrics::new(
                vec!["vpn_region"],
                vec!["vpn_region"],
                &["sessions", "users"],
            )),
            health: Health::new(vec![sessions.clone(), users.clone()]),
            telemetry_path: "/custom".into(),
        };
        (state, sessions, users)
    }

    async fn get(app: &Router, path: &str, accept_gzip: bool) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if accept_gzip {
            req = req.header(header::ACCEPT_ENCODING, "deflate, gzip;q=0.8");
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn metrics_are_served_on_the_telemetry_path_in_text_format_or_gzip() {
        let app = router(state().0);
        let (status, headers, body) = get(&app, "/custom", false).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], TEXT_CONTENT_TYPE);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("cloudconnexa_up 0"), "{text}");
        assert!(text.contains(
            "cloudconnexa_poll_errors_total{collector=\"users\",kind=\"history_window\"} 0"
        ));
        assert!(text.contains("# HELP cloudconnexa_exporter_build_info"));

        let (status, headers, body) = get(&app, "/custom", true).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .unwrap();
        assert!(plain.contains("cloudconnexa_up 0"));

        assert_eq!(
            get(&app, "/metrics", false).await.0,
            StatusCode::NOT_FOUND,
            "only the configured path"
        );
    }

    #[tokio::test]
    async fn readiness_waits_for_every_collector_and_liveness_for_their_tasks() {
        let (s, sessions, users) = state();
        let app = router(s);
        let (status, _, body) = get(&app, "/readyz", false).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            String::from_utf8(body)
                .unwrap()
                .contains("waiting for sessions, users"),
            "readiness says what it waits for"
        );
        assert_eq!(get(&app, "/healthz", false).await.0, StatusCode::OK);
        sessions.mark_ready();
        assert_eq!(
            get(&app, "/readyz", false).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        users.mark_ready();
        assert_eq!(get(&app, "/readyz", false).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn landing_page_links_the_metrics_and_shows_each_collector() {
        let (s, _, _) = state();
        let app = router(s);
        let (status, _, body) = get(&app, "/", false).await;
        assert_eq!(status, StatusCode::OK);
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("href=\"/custom\"") && html.contains(env!("CARGO_PKG_VERSION")));
        for row in [
            "<tr><td>sessions</td><td>waiting</td><td>no</td>",
            "<tr><td>users</td><td>waiting</td><td>no</td>",
        ] {
            assert!(html.contains(row), "{row} in {html}");
        }
        assert_eq!(get(&app, "/nope", false).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_probe_router_answers_health_and_readiness_and_nothing_else() {
        let (s, sessions, users) = state();
        let app = probe_router(s);
        assert_eq!(get(&app, "/healthz", false).await.0, StatusCode::OK);
        assert_eq!(
            get(&app, "/readyz", false).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        sessions.mark_ready();
        users.mark_ready();
        assert_eq!(get(&app, "/readyz", false).await.0, StatusCode::OK);
        for path in ["/custom", "/metrics", "/"] {
            assert_eq!(
                get(&app, path, false).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
