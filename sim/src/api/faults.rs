//! Injected faults, drawn per request: failures (5xx, 429, spurious 401), slow answers,
//! truncated bodies and repeated sessions, and the answers that carry them. (Revoked
//! credentials and endless cursors are not drawn: they hold for every request while set.)

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;

use super::auth::invalid_token;
use super::{json_body, json_value};
use crate::Faults;

/// An answer ready to go, possibly after a delay (a slow-answer fault).
pub(super) struct Prepared {
    pub(super) response: Response,
    pub(super) delay: Option<Duration>,
}

impl Prepared {
    pub(super) fn now(response: Response) -> Prepared {
        Prepared {
            response,
            delay: None,
        }
    }

    pub(super) async fn deliver(self) -> Response {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        self.response
    }
}

/// The faults drawn for one request.
#[derive(Debug, Default)]
pub(super) struct Roll {
    failure: Option<Failure>,
    pub(super) delay: Option<Duration>,
    truncate: bool,
    pub(super) duplicate: bool,
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    ServerError,
    TooManyRequests,
    Unauthorized,
}

/// Which endpoint a request is for, as far as faults care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// The token endpoint: its 401s are about credentials, so it has no spurious ones.
    Token,
    /// The sessions endpoint: every fault, repeated sessions included.
    Sessions,
    /// An inventory endpoint: every fault but repeated sessions, which belong to cursor pages.
    Inventory,
}

impl Roll {
    /// Draws the faults for a request to `endpoint`. Fault draws use the thread's generator:
    /// they need not be reproducible, and they must not disturb the world's streams.
    pub(super) fn draw(faults: &Faults, endpoint: Endpoint) -> Roll {
        let sessions = endpoint == Endpoint::Sessions;
        let mut rng = rand::rng();
        let mut hit = |p: f64| p.is_finite() && p > 0.0 && rng.random::<f64>() < p;
        let failure = if hit(faults.rate_5xx) {
            Some(Failure::ServerError)
        } else if hit(faults.rate_429) {
            Some(Failure::TooManyRequests)
        } else if endpoint != Endpoint::Token && hit(faults.rate_spurious_401) {
            Some(Failure::Unauthorized)
        } else {
            None
        };
        Roll {
            failure,
            delay: (hit(faults.rate_slow) && !faults.slow_delay.is_zero())
                .then_some(faults.slow_delay),
            truncate: hit(faults.rate_truncated),
            duplicate: sessions && hit(faults.rate_duplicates),
        }
    }

    /// The answer of a drawn failure, if any.
    pub(super) fn failure_response(&self) -> Option<Response> {
        Some(match self.failure? {
            Failure::ServerError => server_error(),
            Failure::TooManyRequests => StatusCode::TOO_MANY_REQUESTS.into_response(),
            Failure::Unauthorized => invalid_token("Access token expired"),
        })
    }

    /// `body` as a 200 JSON answer, cut short if so drawn.
    pub(super) fn ok(&self, body: Vec<u8>) -> Prepared {
        let body = if self.truncate && body.len() > 1 {
            let cut = rand::rng().random_range(1..body.len());
            body[..cut].to_vec()
        } else {
            body
        };
        Prepared {
            response: json_body(StatusCode::OK, body),
            delay: self.delay,
        }
    }
}

/// A 500, 502 (from the gateway, in HTML) or 503.
pub(super) fn server_error() -> Response {
    match rand::rng().random_range(0..3) {
        0 => json_value(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({
                "errorMessage": "Internal server error",
                "statusError": "INTERNAL_SERVER_ERROR",
                "errorDetails": {}
            }),
        ),
        1 => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
             <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        _ => json_value(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "errorMessage": "Service temporarily unavailable",
                "statusError": "SERVICE_UNAVAILABLE",
                "errorDetails": {}
            }),
        ),
    }
}
