//! A programmable stand-in for the API, for failure modes clearer to stage by hand than through
//! the simulator: each request is answered by a closure, and every request is recorded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, Response};

/// What the fake saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: std::time::Instant,
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
}

/// The answer to give.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: Option<std::time::Duration>,
}

impl Answer {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
            delay: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delayed(mut self, delay: std::time::Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

/// A running fake.
#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Starts a fake answering with `handler(request, index of the request)`.
    pub async fn start(handler: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let handler = handler.clone();
            let log = log.clone();
            async move {
                let s = Seen {
                    at: std::time::Instant::now(),
                    method: req.method().to_string(),
                    path: req.uri().path().to_owned(),
                    query: req.uri().query().unwrap_or_default().to_owned(),
                    authorization: req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                };
                let index = {
                    let mut l = log.lock().unwrap();
                    l.push(s.clone());
                    l.len() - 1
                };
                let a = handler(&s, index);
                if let Some(d) = a.delay {
                    tokio::time::sleep(d).await;
                }
                let mut r = Response::builder()
                    .status(a.status)
                    .header("date", httpdate(chrono::Utc::now()));
                for (k, v) in a.headers {
                    r = r.header(k, v);
                }
                r.body(Body::from(a.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to the sessions endpoint so far.
    pub fn session_requests(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.ends_with("/sessions"))
            .count()
    }
}

/// RFC 7231 date.
pub fn httpdate(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// A token answer.
pub fn token(value: &str, expires_in: u64) -> Answer {
    Answer::json(
        200,
        format!(
            r#"{{"access_token":"{value}","token_type":"bearer","expires_in":{expires_in},"scope":"read write"}}"#
        ),
    )
}
