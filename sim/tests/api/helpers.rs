//! A simulator served on a free local port, and requests to it read whole.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cloudconnexa_sim::{self as sim, SimConfig, Simulator};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::schema;

/// A simulator served on a free local port.
pub(crate) struct Running {
    pub(crate) base: String,
    pub(crate) sim: Simulator,
    pub(crate) http: reqwest::Client,
    pub(crate) spec: schema::Spec,
    pub(crate) _stop: tokio::sync::oneshot::Sender<()>,
}

/// A response, read whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(crate) fn unlimited() -> SimConfig {
    SimConfig {
        rate_limit: None,
        ..SimConfig::default()
    }
}

pub(crate) async fn start(config: SimConfig) -> Running {
    start_simulator(Simulator::new(config)).await
}

/// Serves `sim` on a free local port until the returned value is dropped.
pub(crate) async fn start_simulator(sim: Simulator) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sim::serve(listener, sim.clone(), async {
        let _ = stopped.await;
    }));
    Running {
        base: format!("http://{address}"),
        sim,
        http: reqwest::Client::new(),
        spec: schema::Spec::load(),
        _stop: stop,
    }
}

pub(crate) async fn read(response: reqwest::Response) -> Answer {
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("body"),
    }
}

impl Running {
    pub(crate) async fn post(&self, path: &str, basic: Option<(&str, &str)>) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base));
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        read(request.send().await.expect("request")).await
    }

    pub(crate) async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("request")).await
    }

    pub(crate) async fn put(&self, path: &str, body: &str) -> Answer {
        let request = self
            .http
            .put(format!("{}{path}", self.base))
            .body(body.to_owned());
        read(request.send().await.expect("request")).await
    }

    /// A request of `method` with `body`, without credentials (for the control endpoints).
    pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: &str) -> Answer {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body.to_owned());
        read(request.send().await.expect("request")).await
    }

    /// A token for `demo:demo`, checked against the spec.
    pub(crate) async fn token(&self) -> String {
        let answer = self
            .post(
                "/api/v1/oauth/token?grant_type=client_credentials",
                Some(("demo", "demo")),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let body = answer.json();
        self.spec
            .validate("OAuthResponse", &body)
            .expect("OAuthResponse");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// One page of sessions, checked against the spec.
    pub(crate) async fn page(&self, query: &str, token: &str) -> (Vec<Value>, Option<String>) {
        let answer = self
            .get(&format!("/api/v1/sessions?{query}"), Some(token))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        self.spec
            .validate("SessionsResponse", &body)
            .expect("SessionsResponse");
        let sessions = body["sessions"].as_array().cloned().unwrap_or_default();
        let next = body
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        (sessions, next)
    }

    /// Every page of a listing; at most `max_pages`.
    pub(crate) async fn all_pages(
        &self,
        query: &str,
        token: &str,
        max_pages: usize,
    ) -> (Vec<Value>, usize) {
        let mut sessions = Vec::new();
        let mut cursor: Option<String> = None;
        for pages in 1..=max_pages {
            let q = match &cursor {
                Some(c) => format!("{query}&cursor={c}"),
                None => query.to_owned(),
            };
            let (page, next) = self.page(&q, token).await;
            sessions.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => return (sessions, pages),
            }
        }
        panic!("{query}: more than {max_pages} pages");
    }

    /// A 400 with the spec's `ErrorResponse` naming `param`.
    pub(crate) async fn expect_bad_request(
        &self,
        path_and_query: &str,
        token: &str,
        param: &str,
    ) -> Value {
        let answer = self.get(path_and_query, Some(token)).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path_and_query}: {}",
            answer.body
        );
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        self.spec
            .validate("ErrorResponse", &body)
            .expect("ErrorResponse");
        assert_eq!(body["statusError"], "BAD_REQUEST");
        assert!(body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
        let details = body["errorDetails"][param]
            .as_array()
            .expect("details for the parameter");
        assert!(
            !details.is_empty() && details[0]["errorCode"].is_string(),
            "{body}"
        );
        body
    }
}

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Ids of the sessions the world holds as ACTIVE.
pub(crate) fn active_ids(sim: &Simulator) -> BTreeSet<String> {
    sim.truth()
        .into_iter()
        .filter(|t| t.status == "ACTIVE")
        .map(|t| t.id)
        .collect()
}

pub(crate) fn ids(sessions: &[Value]) -> Vec<String> {
    sessions
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Two simulators of the default configuration and one of another seed, all starting at `at`.
pub(crate) fn twins_and_a_stranger(at: DateTime<Utc>) -> (Simulator, Simulator, Simulator) {
    let twin = || Simulator::starting_at(SimConfig::default(), at);
    let stranger = Simulator::starting_at(
        SimConfig {
            seed: 2,
            ..SimConfig::default()
        },
        at,
    );
    (twin(), twin(), stranger)
}
