//! # cloudconnexa_sim
//!
//! A simulated OpenVPN CloudConnexa tenant: the same HTTP API as the real service, over a
//! generated world. The exporter polls it in `--demo` mode, its `simulate` command serves it,
//! and tests and benchmarks compare the exporter's metrics with the world's truth.
//!
//! The crate never depends on the exporter: it is how the exporter's decoding of the API is
//! checked, so the two must not be able to share a bug.
//!
//! # Layout
//! - `config`: [`SimConfig`] and its knobs ([`RateLimit`], [`Steady`], [`Faults`]), with the
//!   range checks of each.
//! - `catalog`: the company's fixed facts (offices, regions, groups, networks, accounts,
//!   reasons).
//! - `sampling`: seeded random streams and the distributions the world draws from.
//! - `world`: the company (users, accounts, devices), its networks, hosts and connectors with
//!   their states, its sessions and their life; deterministic for a seed.
//! - `cursor`, `limit`: paging cursors and the rate-limit token bucket.
//! - `api`: the HTTP API (tokens and sessions on `/api/v1` and `/api/beta`, the inventory on
//!   `/api/v1`), its validation, paging, rate limit and faults.
//! - `control`: `/_sim/...` endpoints that let scripts steer the simulator (faults, churn,
//!   connector states, users).
//! - `truth`: what tests read: the world's ground truth and the API's statistics.
//!
//! The shared state sits behind one `std::sync::Mutex`: every request holds it only for a short
//! computation (no `.await` while it is held), so an async mutex would buy nothing.

mod api;
mod catalog;
mod config;
mod control;
mod cursor;
mod limit;
mod sampling;
mod truth;
mod world;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

pub use config::{
    CATALOG_CONNECTORS, ClientSecret, FaultRate, Faults, FaultsError, MAX_CONNECTOR_SPELLS_PER_DAY,
    MAX_CONNECTORS, MAX_DEVICES_PER_USER, MAX_SPEED, MAX_STEADY_ACTIVE,
    MAX_STEADY_CHANGES_PER_MINUTE, RateLimit, SimConfig, SimConfigError, Steady,
};
pub use truth::{
    DeviceKey, REQUEST_LOG_CAPACITY, RequestRecord, SimStats, TruthConnector, TruthDevice,
    TruthRegion, TruthSession, TruthSummary, TruthUser, UserKey,
};
pub use world::{ConnectorKind, ConnectorStatus};

/// Why a change asked of a running simulator cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No connector has this id.
    #[error("no connector has id {0:?}")]
    UnknownConnector(String),
    /// No user group has this name.
    #[error("no user group is named {0:?}")]
    UnknownGroup(String),
}

/// The simulator's clock: the server clock runs `speed` times real time from its start.
///
/// Real time is read from Tokio's clock, so tests that pause and advance it move the world too.
struct Clock {
    started: tokio::time::Instant,
    server_start: i64,
    speed: f64,
}

impl Clock {
    fn server_ms(&self) -> i64 {
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed * 1_000.0;
        self.server_start + elapsed as i64
    }
}

/// An issued access token.
struct Grant {
    client: String,
    expires: tokio::time::Instant,
}

/// Everything the simulator holds, behind the one lock.
struct State {
    config: SimConfig,
    clock: Clock,
    world: world::World,
    grants: HashMap<String, Grant>,
    buckets: HashMap<String, limit::TokenBucket>,
    responses: BTreeMap<(String, u16), u64>,
    malformed: u64,
    too_many_requests: u64,
    log: VecDeque<RequestRecord>,
    /// Seals cursors, so that only this simulator's cursors are accepted.
    cursor_key: u64,
}

impl State {
    /// Advances the world to the server clock's now and returns it (ms).
    fn advance(&mut self) -> i64 {
        let now = self.clock.server_ms();
        self.world.advance_to(now);
        now
    }
}

/// A simulated tenant; cheap to clone (shared state).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

impl Simulator {
    /// Builds the world for `config`, starting now.
    pub fn new(config: SimConfig) -> Self {
        Self::starting_at(config, Utc::now())
    }

    /// Builds the world for `config` as if the real clock read `start` now: two simulators with
    /// the same configuration and start hold the same world at the same moments.
    pub fn starting_at(config: SimConfig, start: DateTime<Utc>) -> Self {
        let mut config = config;
        if !(config.speed.is_finite() && config.speed > 0.0) {
            config.speed = 1.0;
        }
        let server_start = (start + config.clock_skew).timestamp_millis();
        let world = world::World::new(
            world::WorldParams {
                seed: config.seed,
                users: config.users,
                bump_updated_on_traffic: config.bump_updated_on_traffic,
                outages_per_day: config.outages_per_day,
                always_on_boost: config.always_on_boost,
                steady: config.steady,
                connectors: config.connectors,
                devices: config.devices,
                connector_issues: config.connector_issues_per_day,
                connector_outages: config.connector_outages_per_day,
            },
            server_start,
        );
        let state = State {
            clock: Clock {
                started: tokio::time::Instant::now(),
                server_start,
                speed: config.speed,
            },
            config,
            world,
            grants: HashMap::new(),
            buckets: HashMap::new(),
            responses: BTreeMap::new(),
            malformed: 0,
            too_many_requests: 0,
            log: VecDeque::new(),
            cursor_key: rand::random(),
        };
        Self {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    /// The state; a panic elsewhere while it was held leaves it usable (every change to it is
    /// complete before anything that could panic).
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The HTTP API, with the `/_sim/` control endpoints.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state().config.faults = faults;
    }

    /// The injected faults.
    pub fn faults(&self) -> Faults {
        self.state().config.faults.clone()
    }

    /// Stops (or resumes) churn: no arrivals, no endings, no byte growth while stopped.
    pub fn set_churn(&self, on: bool) {
        let mut state = self.state();
        let now = state.clock.server_ms();
        state.world.set_churn(on, now);
    }

    /// True while churn is on.
    pub fn churn(&self) -> bool {
        self.state().world.churn()
    }

    /// The server's clock now.
    pub fn now(&self) -> DateTime<Utc> {
        millis_to_time(self.state().clock.server_ms())
    }

    /// Every session the world holds now, oldest first.
    pub fn truth(&self) -> Vec<TruthSession> {
        let mut state = self.state();
        state.advance();
        state
            .world
            .truth()
            .into_iter()
            .map(|t| TruthSession {
                id: t.id,
                status: t.status.as_str().into(),
                region: t.region.into(),
                network: t.network.into(),
                bytes_in: t.bytes_in.max(0) as u64,
                bytes_out: t.bytes_out.max(0) as u64,
                start: millis_to_time(t.start),
                end: t.end.map(millis_to_time),
                reason: t.reason.map(Into::into),
                host: t.host.into(),
                connector: t.connector.into(),
                user_name: t.user_name,
                user_group: t.user_group.into(),
                protocol: t.protocol.into(),
                os_type: t.os_type.into(),
                failed: t.status == world::Status::Failed,
                updated: millis_to_time(t.updated),
                duration_seconds: t.end.map(|end| (end - t.start) / 1_000),
            })
            .collect()
    }

    /// Active sessions per region and ended sessions per status, now.
    pub fn summary(&self) -> TruthSummary {
        let mut state = self.state();
        let now = state.advance();
        let summary = state.world.summary();
        let users = state.world.truth_users();
        let mut users_by_status = BTreeMap::new();
        let mut devices_by_connection_status =
            BTreeMap::from([("OFFLINE".to_owned(), 0), ("ONLINE".to_owned(), 0)]);
        for user in &users {
            *users_by_status.entry(user.status.clone()).or_default() += 1;
            for device in &user.devices {
                *devices_by_connection_status
                    .entry(device.connection_status.clone())
                    .or_default() += 1;
            }
        }
        TruthSummary {
            now: millis_to_time(now),
            active_total: summary.active_total,
            connectors_by_status: state
                .world
                .connectors_by_status()
                .into_iter()
                .map(|(status, n)| (status.as_str().to_owned(), n))
                .collect(),
            users_by_status,
            devices_by_connection_status,
            active_by_region: summary
                .active_by_region
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ended_by_status: summary
                .ended_by_status
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }

    /// Every connector as it is now: the catalog's network connectors, its host connectors,
    /// then those of generated sites.
    pub fn connectors(&self) -> Vec<TruthConnector> {
        let mut state = self.state();
        state.advance();
        state.world.truth_connectors()
    }

    /// Pins the `connectionStatus` of the connector with `id` until it is cleared with `None`,
    /// after which it follows the world's schedule again.
    pub fn set_connector_status(
        &self,
        id: &str,
        status: Option<ConnectorStatus>,
    ) -> Result<(), ControlError> {
        let mut state = self.state();
        state.advance();
        if state.world.pin_connector(id, status) {
            Ok(())
        } else {
            Err(ControlError::UnknownConnector(id.to_owned()))
        }
    }

    /// Adds an active member of the group named `group`, with a local account and one laptop,
    /// who never connects; returns the new user's id.
    pub fn add_user(&self, group: &str) -> Result<String, ControlError> {
        let Some(g) = catalog::GROUPS.iter().position(|g| g.name == group) else {
            return Err(ControlError::UnknownGroup(group.to_owned()));
        };
        let mut state = self.state();
        state.advance();
        Ok(state.world.add_user(g))
    }

    /// Removes the user with `id`: it is no longer listed, its active sessions end now and it
    /// never connects again. False if there is no such user.
    pub fn remove_user(&self, id: &str) -> bool {
        let mut state = self.state();
        state.advance();
        state.world.remove_user(id)
    }

    /// Every user (removed ones aside) with their devices, as they are now.
    pub fn users_truth(&self) -> Vec<TruthUser> {
        let mut state = self.state();
        state.advance();
        state.world.truth_users()
    }

    /// Users now, counted by group, status, role, authentication and connection status.
    pub fn user_counts(&self) -> BTreeMap<UserKey, u64> {
        truth::count_users(&self.users_truth())
    }

    /// Devices now, counted by connection status and OS.
    pub fn device_counts(&self) -> BTreeMap<DeviceKey, u64> {
        truth::count_devices(&self.users_truth())
    }

    /// The VPN regions.
    pub fn regions(&self) -> Vec<TruthRegion> {
        world::truth_regions()
    }

    /// What the API has answered so far.
    pub fn stats(&self) -> SimStats {
        let state = self.state();
        SimStats {
            responses: state
                .responses
                .iter()
                .map(|((path, status), n)| (path.clone(), *status, *n))
                .collect(),
            malformed: state.malformed,
            too_many_requests: state.too_many_requests,
        }
    }

    /// The last [`REQUEST_LOG_CAPACITY`] requests the API answered, oldest first.
    pub fn recent_requests(&self) -> Vec<RequestRecord> {
        self.state().log.iter().cloned().collect()
    }
}

/// Serves `sim` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(shutdown)
        .await
}

fn millis_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
