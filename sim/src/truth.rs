//! What tests and scripts read about a simulator: the world's ground truth and what the API
//! answered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Per-session ground truth, for tests that compare the exporter's metrics with the world.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthSession {
    /// Session id.
    pub id: String,
    /// `ACTIVE`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// VPN region.
    pub region: String,
    /// Network name.
    pub network: String,
    /// Bytes in as the API reports it now.
    pub bytes_in: u64,
    /// Bytes out as the API reports it now.
    pub bytes_out: u64,
    /// Start time (server clock).
    pub start: DateTime<Utc>,
    /// End time for ended sessions (server clock).
    pub end: Option<DateTime<Utc>>,
    /// `disconnectReason` for ended sessions.
    pub reason: Option<String>,
    /// Host name.
    pub host: String,
    /// Connector name.
    pub connector: String,
    /// `userName`.
    pub user_name: String,
    /// `userGroup`.
    pub user_group: String,
    /// `protocol`.
    pub protocol: String,
    /// `osType`.
    pub os_type: String,
    /// True for FAILED sessions.
    pub failed: bool,
    /// The time windows with `returnOnlyNew=false` select the session by (server clock).
    pub updated: DateTime<Utc>,
    /// `sessionDurationSeconds` for ended sessions.
    pub duration_seconds: Option<i64>,
}

/// Counts of the world's sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TruthSummary {
    /// The server clock.
    pub now: DateTime<Utc>,
    /// Active sessions.
    pub active_total: u64,
    /// Active sessions per VPN region (regions without any are absent).
    pub active_by_region: BTreeMap<String, u64>,
    /// Ended sessions held by the world, per status (`COMPLETED`, `FAILED`).
    pub ended_by_status: BTreeMap<String, u64>,
}

/// Counts of what the simulated API answered.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    /// Requests per (path, status).
    pub responses: Vec<(String, u16, u64)>,
    /// Requests that the API refused as malformed (400 other than a history-window error).
    pub malformed: u64,
    /// 429 answers.
    pub too_many_requests: u64,
}

impl SimStats {
    /// Responses to `path` with `status`.
    pub fn count(&self, path: &str, status: u16) -> u64 {
        self.responses
            .iter()
            .filter(|(p, s, _)| p == path && *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Responses with `status`, whatever the path.
    pub fn count_status(&self, status: u16) -> u64 {
        self.responses
            .iter()
            .filter(|(_, s, _)| *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// One request the API answered (the control endpoints are not logged).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// Server clock when it was answered.
    pub at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string, with secrets replaced by `***`.
    pub query: String,
    /// Status answered.
    pub status: u16,
    /// True if the API refused it as malformed (see [`SimStats::malformed`]).
    pub malformed: bool,
}

/// How many requests [`Simulator::recent_requests`](crate::Simulator::recent_requests) remembers.
pub const REQUEST_LOG_CAPACITY: usize = 1_000;
