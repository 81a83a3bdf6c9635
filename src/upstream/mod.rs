//! The CloudConnexa API client: authentication, pacing, retries, pagination, decoding.
//!
//! # Layout
//! - [`client`]: [`client::ApiClient`], the one path every request takes: token, pacing, sending,
//!   retrying. Shared by everything that asks the API, so there is one rate-limit budget.
//! - [`classify`]: what an answer means (accept, retry, wait, give up), a pure function.
//! - [`rate`]: the pacer that reads `X-RateLimit-*` and decides how long to wait.
//! - [`sessions`]: the sessions listing (cursor pages).
//! - [`model`]: tolerant decoding of session records.
//! - [`inventory`]: `page`/`size` listings of networks, hosts, users, user groups and regions.
//! - [`records`]: tolerant decoding of those inventory items.
//! - [`error`]: [`error::UpstreamError`] and the `kind` label each maps to.
//!
//! This layer reports what happened through an [`Observer`] and knows nothing of metrics, the
//! poller or the HTTP server: the layer above decides what to record.

pub mod classify;
pub mod client;
pub mod error;
pub mod inventory;
pub mod model;
pub mod rate;
pub mod records;
pub mod sessions;

use std::time::Duration;

use rate::Budget;

/// Which endpoint a request is for: the `endpoint` label of `cloudconnexa_api_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /api/{version}/oauth/token`.
    Token,
    /// `GET /api/{version}/sessions`.
    Sessions,
    /// `GET /api/v1/networks` (with their connectors).
    Networks,
    /// `GET /api/v1/hosts` (with their connectors).
    Hosts,
    /// `GET /api/v1/users` (with their devices).
    Users,
    /// `GET /api/v1/user-groups`.
    UserGroups,
    /// `GET /api/v1/regions`.
    Regions,
}

impl Endpoint {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Sessions => "sessions",
            Self::Networks => "networks",
            Self::Hosts => "hosts",
            Self::Users => "users",
            Self::UserGroups => "user_groups",
            Self::Regions => "regions",
        }
    }
}

/// What the client tells the layer above as it works. Calls are cheap and never fail: the client
/// makes them from its request path.
pub trait Observer: Send + Sync {
    /// A request was sent and answered with `status`, or failed without an answer (`None`).
    fn request_done(&self, endpoint: Endpoint, status: Option<u16>);
    /// A response carried the rate-limit headers.
    fn budget_seen(&self, budget: Budget);
    /// A response's `Date` header put the server's clock `offset` ahead of the local one.
    fn clock_offset_seen(&self, offset: chrono::Duration);
    /// The client waited `wait` for the rate limit before sending.
    fn waited_for_budget(&self, wait: Duration);
}

/// An [`Observer`] that ignores everything, for tools and benchmarks that need no metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn request_done(&self, _endpoint: Endpoint, _status: Option<u16>) {}
    fn budget_seen(&self, _budget: Budget) {}
    fn clock_offset_seen(&self, _offset: chrono::Duration) {}
    fn waited_for_budget(&self, _wait: Duration) {}
}
