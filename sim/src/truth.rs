//! What tests and scripts read about a simulator: the world's ground truth and what the API
//! answered.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{ConnectorKind, ConnectorStatus};

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
    /// Connectors per `connectionStatus` (every state, 0 included).
    pub connectors_by_status: BTreeMap<String, u64>,
    /// Users per `status` (statuses without users are absent).
    pub users_by_status: BTreeMap<String, u64>,
    /// Devices per `connectionStatus` (`ONLINE`, `OFFLINE`; 0 included).
    pub devices_by_connection_status: BTreeMap<String, u64>,
}

/// A connector as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthConnector {
    /// Connector id.
    pub id: String,
    /// Connector name.
    pub name: String,
    /// A network or a host connector.
    pub kind: ConnectorKind,
    /// Id of its network or host (`networkItemId`).
    pub parent_id: String,
    /// Name of its network or host.
    pub parent_name: String,
    /// `vpnRegionId`.
    pub vpn_region: String,
    /// `connectionStatus` now.
    pub status: ConnectorStatus,
    /// Whether the state is pinned (see `Simulator::set_connector_status`).
    pub pinned: bool,
}

/// A user as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthUser {
    /// User id.
    pub id: String,
    /// `username`.
    pub user_name: String,
    /// Name of the user's group (`groupId` resolved).
    pub group: String,
    /// `status`: `ACTIVE`, `INVITED`, `SUSPENDED` or `SUSPENDED_IDP`.
    pub status: String,
    /// `role`: `OWNER`, `ADMIN` or `MEMBER`.
    pub role: String,
    /// `authType`: `INTERNAL`, `SAML`, `LDAP`, ...
    pub auth_type: String,
    /// `connectionStatus`: `ONLINE` while one of the user's devices is, else `OFFLINE`.
    pub connection_status: String,
    /// The user's devices.
    pub devices: Vec<TruthDevice>,
}

/// A device as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthDevice {
    /// Device id.
    pub id: String,
    /// Device name.
    pub name: String,
    /// `platform.os` (the `osType` of its sessions).
    pub os: String,
    /// `connectionStatus`: `ONLINE` while it has an active session, else `OFFLINE`.
    pub connection_status: String,
}

/// A VPN region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRegion {
    /// Region id (the sessions' `region`, the connectors' `vpnRegionId`).
    pub id: String,
    /// `regionName`.
    pub name: String,
    /// `country`.
    pub country: String,
    /// `countryIso`.
    pub country_iso: String,
    /// `continent`.
    pub continent: String,
}

/// What users are counted by: the labels of a users gauge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserKey {
    /// Group name.
    pub group: String,
    /// `status`.
    pub status: String,
    /// `role`.
    pub role: String,
    /// `authType`.
    pub auth_type: String,
    /// `connectionStatus`.
    pub connection_status: String,
}

/// What devices are counted by: the labels of a devices gauge.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceKey {
    /// `connectionStatus`.
    pub connection_status: String,
    /// `platform.os`.
    pub os: String,
}

/// Users counted by [`UserKey`].
pub(crate) fn count_users(users: &[TruthUser]) -> BTreeMap<UserKey, u64> {
    let mut counts = BTreeMap::new();
    for user in users {
        let key = UserKey {
            group: user.group.clone(),
            status: user.status.clone(),
            role: user.role.clone(),
            auth_type: user.auth_type.clone(),
            connection_status: user.connection_status.clone(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Devices counted by [`DeviceKey`].
pub(crate) fn count_devices(users: &[TruthUser]) -> BTreeMap<DeviceKey, u64> {
    let mut counts = BTreeMap::new();
    for device in users.iter().flat_map(|u| &u.devices) {
        let key = DeviceKey {
            connection_status: device.connection_status.clone(),
            os: device.os.clone(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
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
