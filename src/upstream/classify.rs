//! What an answer of the API means: a pure function of the endpoint, the status, the headers and
//! the body, so every rule can be read in one table and tested without a server.
//!
//! The client acts on the [`Verdict`]: it decodes accepted bodies, waits after a 429, backs off
//! before retrying, renews the token once after a 401 on a data endpoint, and gives up otherwise.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::Endpoint;
use super::error::{UpstreamError, excerpt};

/// Longest excerpt of an error body kept in messages and logs.
const DETAIL_LEN: usize = 200;

/// What to do with an answer.
#[derive(Debug)]
pub enum Verdict {
    /// A 2xx: decode the body (a body that does not decode is retried like a 5xx).
    Accept,
    /// The rate limit refused the request: wait, then send it again. `Retry-After`, when the
    /// answer carries it as seconds.
    RateLimited {
        /// `Retry-After`, if given.
        retry_after: Option<Duration>,
    },
    /// A failure that may pass: back off and retry, within the retry budget.
    Retry(UpstreamError),
    /// A failure that retrying will not fix. A 401 from a data endpoint is among these; the
    /// client renews its token once before it believes it.
    Fail(UpstreamError),
}

/// Classifies an answer of `endpoint`.
pub fn classify(
    endpoint: Endpoint,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Verdict {
    if status.is_success() {
        return Verdict::Accept;
    }
    let name = endpoint.as_str();
    let detail = || excerpt(body, DETAIL_LEN);
    let code = status.as_u16();
    match code {
        429 => Verdict::RateLimited {
            retry_after: retry_after(headers),
        },
        // A token request refused: the credentials are wrong, expired or not allowed from here.
        400 | 401 | 403 if endpoint == Endpoint::Token => Verdict::Fail(UpstreamError::Auth {
            endpoint: name,
            status: code,
            detail: detail(),
        }),
        401 | 403 => Verdict::Fail(UpstreamError::Auth {
            endpoint: name,
            status: code,
            detail: detail(),
        }),
        400 if endpoint == Endpoint::Sessions && mentions_history(body) => {
            Verdict::Fail(UpstreamError::HistoryWindow { detail: detail() })
        }
        408 | 500..=599 => Verdict::Retry(UpstreamError::Http {
            endpoint: name,
            status: Some(code),
            detail: format!("HTTP {status}: {}", detail()),
        }),
        _ => Verdict::Fail(UpstreamError::Http {
            endpoint: name,
            status: Some(code),
            detail: format!("HTTP {status}: {}", detail()),
        }),
    }
}

/// `Retry-After` in seconds; the HTTP-date form is not known to be used by the API and counts as
/// absent (the client then waits at least the floor anyway).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// A 400 about `startDate` or the history window, as opposed to a request the exporter got wrong.
fn mentions_history(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    ["date", "history", "days", "window", "range"]
        .iter()
        .any(|word| text.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::error::ErrorKind;
    use reqwest::header::HeaderValue;

    /// The verdict in a word, and the kind of its error: what the table compares.
    type Outline = (&'static str, Option<ErrorKind>);

    /// The [`Outline`] of a verdict.
    fn outline(v: &Verdict) -> Outline {
        match v {
            Verdict::Accept => ("accept", None),
            Verdict::RateLimited { .. } => ("rate_limited", None),
            Verdict::Retry(e) => ("retry", Some(e.kind())),
            Verdict::Fail(e) => ("fail", Some(e.kind())),
        }
    }

    #[test]
    fn every_answer_has_its_verdict() {
        use Endpoint::{Sessions, Token};
        use ErrorKind::{Auth, HistoryWindow, Http};
        let history =
            br#"{"errorDetails":{"startDate":[{"message":"must not be before now - 30 days"}]}}"#;
        let size = br#"{"errorMessage":"size must be at most 100"}"#;
        let table: &[(Endpoint, u16, &[u8], Outline)] = &[
            (Sessions, 200, b"{}", ("accept", None)),
            (Token, 200, b"{}", ("accept", None)),
            (Sessions, 204, b"", ("accept", None)),
            (Sessions, 429, b"", ("rate_limited", None)),
            (Token, 429, b"", ("rate_limited", None)),
            (Token, 400, b"bad client", ("fail", Some(Auth))),
            (Token, 401, b"", ("fail", Some(Auth))),
            (Token, 403, b"", ("fail", Some(Auth))),
            (Sessions, 401, b"", ("fail", Some(Auth))),
            (Sessions, 403, b"", ("fail", Some(Auth))),
            (Sessions, 400, history, ("fail", Some(HistoryWindow))),
            (Sessions, 400, size, ("fail", Some(Http))),
            (Sessions, 404, b"", ("fail", Some(Http))),
            (Token, 404, b"", ("fail", Some(Http))),
            (Sessions, 408, b"", ("retry", Some(Http))),
            (Sessions, 500, b"{}", ("retry", Some(Http))),
            (Sessions, 502, b"<html>502</html>", ("retry", Some(Http))),
            (Token, 503, b"", ("retry", Some(Http))),
        ];
        for (endpoint, status, body, expected) in table {
            let status = StatusCode::from_u16(*status).unwrap();
            let verdict = classify(*endpoint, status, &HeaderMap::new(), body);
            assert_eq!(
                outline(&verdict),
                *expected,
                "{endpoint:?} {status} {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_429_carries_retry_after_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        let verdict = classify(
            Endpoint::Sessions,
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"",
        );
        assert!(matches!(
            verdict,
            Verdict::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120)
        ));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let verdict = classify(
            Endpoint::Sessions,
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"",
        );
        assert!(matches!(
            verdict,
            Verdict::RateLimited { retry_after: None }
        ));
    }

    #[test]
    fn error_details_are_short_single_lines_of_the_body() {
        let body = format!("line one\nline two {}", "x".repeat(500));
        let Verdict::Retry(e) = classify(
            Endpoint::Sessions,
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            body.as_bytes(),
        ) else {
            panic!("a 502 is retried")
        };
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.len() < 300, "{} bytes", text.len());
        assert!(
            text.contains("HTTP 502 Bad Gateway: line one line two"),
            "{text}"
        );
    }
}
