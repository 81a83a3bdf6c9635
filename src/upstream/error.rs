//! Errors of the upstream layer, each mapped to the `kind` label of `cloudconnexa_poll_errors_total`.

use std::time::Duration;

/// Why a request (or a whole listing) to the CloudConnexa API failed.
///
/// Messages carry the endpoint and status but never a URL with a secret, a header or a token.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The API refused the credentials or the token (400/401/403 on the token endpoint, 401 after
    /// a renewal or 403 on data endpoints): an operator problem, not a transient one.
    #[error("credentials rejected by {endpoint}: HTTP {status}: {detail}")]
    Auth {
        /// The endpoint, e.g. `token` or `sessions`.
        endpoint: &'static str,
        /// HTTP status.
        status: u16,
        /// A short excerpt of the response body.
        detail: String,
    },
    /// Still rate-limited after waiting as the API asks, several times in a row.
    #[error("rate limited by {endpoint} {attempts} times in a row (last wait {retry_after:?})")]
    RateLimited {
        /// The endpoint.
        endpoint: &'static str,
        /// How many 429s were met.
        attempts: u32,
        /// The last wait imposed.
        retry_after: Duration,
    },
    /// An HTTP status the exporter cannot do anything about, or a transport failure (connection
    /// refused, reset, TLS), after the retries.
    #[error("{endpoint}: {detail}")]
    Http {
        /// The endpoint.
        endpoint: &'static str,
        /// HTTP status, or `None` for a transport failure.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
    },
    /// No answer within the request timeout, after the retries.
    #[error("{endpoint}: no answer within {timeout:?}")]
    Timeout {
        /// The endpoint.
        endpoint: &'static str,
        /// The request timeout.
        timeout: Duration,
    },
    /// A 2xx answer whose body was not what the API sends, after the retries.
    #[error("{endpoint}: undecodable response: {detail}")]
    Decode {
        /// The endpoint.
        endpoint: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The API refused `startDate` as beyond its history window.
    #[error("sessions: startDate refused as beyond the history window: {detail}")]
    HistoryWindow {
        /// The API's message.
        detail: String,
    },
    /// The API's paging did not end: a repeated cursor, pages without new sessions, or too many pages.
    #[error("{endpoint}: pagination stopped: {detail}")]
    Pagination {
        /// The endpoint.
        endpoint: &'static str,
        /// What was seen.
        detail: String,
    },
}

/// The `kind` label values of `cloudconnexa_poll_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Credentials or token refused.
    Auth,
    /// 429s that did not clear.
    RateLimited,
    /// Other HTTP statuses and transport failures.
    Http,
    /// Requests that timed out.
    Timeout,
    /// Bodies that did not decode.
    Decode,
    /// `startDate` refused.
    HistoryWindow,
    /// Paging that did not end.
    Pagination,
}

impl ErrorKind {
    /// Every kind, so each series can exist at 0 from the start.
    pub const ALL: [ErrorKind; 7] = [
        Self::Auth,
        Self::RateLimited,
        Self::Http,
        Self::Timeout,
        Self::Decode,
        Self::HistoryWindow,
        Self::Pagination,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::RateLimited => "rate_limited",
            Self::Http => "http",
            Self::Timeout => "timeout",
            Self::Decode => "decode",
            Self::HistoryWindow => "history_window",
            Self::Pagination => "pagination",
        }
    }
}

impl UpstreamError {
    /// The metric kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Auth { .. } => ErrorKind::Auth,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Http { .. } => ErrorKind::Http,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Decode { .. } => ErrorKind::Decode,
            Self::HistoryWindow { .. } => ErrorKind::HistoryWindow,
            Self::Pagination { .. } => ErrorKind::Pagination,
        }
    }
}

impl UpstreamError {
    /// The error with every occurrence of `secret` in its details replaced by `***`: an API that
    /// echoes the request's token or credentials in an error body must not put them in the log.
    pub fn redact(self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |detail: String| {
            if detail.contains(secret) {
                detail.replace(secret, "***")
            } else {
                detail
            }
        };
        match self {
            Self::Auth {
                endpoint,
                status,
                detail,
            } => Self::Auth {
                endpoint,
                status,
                detail: scrub(detail),
            },
            Self::Http {
                endpoint,
                status,
                detail,
            } => Self::Http {
                endpoint,
                status,
                detail: scrub(detail),
            },
            Self::Decode { endpoint, detail } => Self::Decode {
                endpoint,
                detail: scrub(detail),
            },
            Self::HistoryWindow { detail } => Self::HistoryWindow {
                detail: scrub(detail),
            },
            Self::Pagination { endpoint, detail } => Self::Pagination {
                endpoint,
                detail: scrub(detail),
            },
            other @ (Self::RateLimited { .. } | Self::Timeout { .. }) => other,
        }
    }
}

/// At most `max` characters of a response body, on one line, for error messages and logs.
pub(crate) fn excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_echoed_in_error_bodies_are_redacted() {
        let e = UpstreamError::Auth {
            endpoint: "users",
            status: 401,
            detail: "bad token Bearer abc.def, again abc.def".into(),
        }
        .redact("abc.def");
        assert_eq!(
            e.to_string(),
            "credentials rejected by users: HTTP 401: bad token Bearer ***, again ***"
        );
        let e = UpstreamError::Decode {
            endpoint: "users",
            detail: "nothing secret".into(),
        };
        assert_eq!(
            e.redact("").to_string(),
            "users: undecodable response: nothing secret"
        );
    }
}
