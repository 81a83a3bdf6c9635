//! # cloudconnexa_exporter
//!
//! A Prometheus exporter for OpenVPN CloudConnexa. A background task polls the CloudConnexa REST
//! API for sessions and publishes what it learns as a snapshot; `/metrics` serves the snapshot, so a
//! scrape never waits on (or spends) the API's small rate limit.
//!
//! # Layout
//! - [`config`]: command line and environment, validated into a [`config::Config`]; bad input exits 2.
//! - [`secret`]: a string type that never prints, for client secrets and tokens.
//! - [`upstream`]: the CloudConnexa client: OAuth2 token cache, rate-limit pacing and retries,
//!   cursor pagination, tolerant decoding of session records.
//! - [`tracker`]: the pure core. Session observations in, counters and gauges out; no IO, no clock.
//!   Every counting rule of the contract lives and is tested here.
//! - [`poller`]: the loop that decides what to ask upstream each cycle, feeds the tracker and
//!   publishes a snapshot at the end of each cycle.
//! - [`metrics`]: the owned registry, the snapshot collector, self-metrics and encoding.
//! - [`server`]: the HTTP router (`/metrics`, `/`, `/healthz`, `/readyz`) and the serving loop.
//! - [`sim`]: the simulated CloudConnexa tenant behind `--demo`, `simulate` and the tests.

pub mod config;
pub mod secret;
pub mod sim;
pub mod tracker;
pub mod upstream;
