//! The HTTP side: `/metrics` (or the telemetry path), `/`, `/healthz`, `/readyz`.
//!
//! Handlers only read state that the poller published; none of them calls the CloudConnexa API,
//! so scrapes are cheap and cannot spend the API's rate limit.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};
use crate::poller::PollStatus;

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// The metrics to serve.
    pub metrics: Arc<Metrics>,
    /// The poller's state.
    pub status: Arc<PollStatus>,
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

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
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
    if state.status.is_alive() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the poll task has stopped\n",
        )
            .into_response()
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.status.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no complete listing of active sessions yet\n",
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    let path = escape(&state.telemetry_path);
    let poll = match state.status.last() {
        None => "No poll cycle has finished yet.".to_owned(),
        Some(r) => match r.error {
            None => format!(
                "Last poll succeeded at {} in {:.1} s ({} requests): {} active sessions.",
                r.finished_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                r.duration.as_secs_f64(),
                r.pages,
                r.active
            ),
            Some(e) => format!(
                "Last poll failed at {} after {:.1} s: {}",
                r.finished_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                r.duration.as_secs_f64(),
                escape(&e)
            ),
        },
    };
    Html(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>CloudConnexa Exporter</title></head>\n\
         <body><h1>CloudConnexa Exporter</h1>\n<p>Version {version}</p>\n\
         <p><a href=\"{path}\">Metrics</a> · <a href=\"/healthz\">Health</a> · <a href=\"/readyz\">Readiness</a></p>\n\
         <p>{poll}</p>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
