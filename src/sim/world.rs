//! The simulated world: a company whose users connect through VPN regions on a working-day
//! rhythm, and the sessions that result.
//!
//! # Time
//! The world keeps two clocks, both in milliseconds since the Unix epoch:
//! - the *server clock*, which the API reports (`Date`, session times) and which always runs;
//! - the *churn clock*, on which the world's events are scheduled. It equals the server clock
//!   minus the time the world spent frozen (see [`World::set_churn`]), so a freeze delays
//!   everything that was to happen instead of making it happen all at once afterwards.
//!
//! # Determinism
//! Every part of the world is drawn from its own seeded stream (a user's day, an office's day, a
//! region's outages) and events are applied in a total order, so the world at a given time does
//! not depend on how often, or in what steps, it was advanced.
//!
//! # Events
//! Sessions are planned an office-day at a time, an hour before the office's local midnight, and
//! wait in a queue until their start; their end is known in advance and is queued when they
//! start. Region outages cut the sessions active in a region short, cause failed reconnection
//! attempts while they last and a reconnection storm when they end.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::ops::Bound;

use rand::Rng;
use rand::rngs::SmallRng;
use serde::Serialize;

use super::Steady;
use super::catalog::{
    self, ATTEMPT_FAILURES, ATTEMPT_TIMEOUT, CLIENT_EXIT, CONNECTION_LOST, DEVICE_NOT_ALLOWED,
    GROUPS, IDLE_TIMEOUT, LAPTOP_OS, NETWORK_CHANGE, NETWORKS, OFFICES, PHONE_OS, PING_TIMEOUT,
    POSTURE_CHECK_FAILED, PROTOCOLS, REASONS, REGIONS, SESSION_TIMEOUT, USER_DISCONNECT,
};
use super::sampling::{log_normal, normal, poisson, rng_for, splitmix, tag, uuid, weighted};

/// One second, in the world's unit (milliseconds).
pub(crate) const SECOND: i64 = 1_000;
/// One minute.
pub(crate) const MINUTE: i64 = 60 * SECOND;
/// One hour.
pub(crate) const HOUR: i64 = 60 * MINUTE;
/// One day.
pub(crate) const DAY: i64 = 24 * HOUR;
/// How long ended sessions are kept: the longest history window of the API.
pub(crate) const RETENTION: i64 = 30 * DAY;
/// How much history the world has when it is created.
const WARM_UP: i64 = 2 * DAY;
/// How long before an office's local midnight its day is planned.
const PLANNING_LEAD: i64 = HOUR;
/// How often an active session reports traffic when traffic bumps its updated time.
const TRAFFIC_REPORT_INTERVAL: i64 = 5 * MINUTE;
/// How much history a steady world has when it is created: a full day for the API's default
/// window, and an hour more.
const STEADY_WARM_UP: i64 = DAY + HOUR;
/// How far before its first moment the sessions a steady world starts with connected.
const STEADY_SPREAD: i64 = 12 * HOUR;
/// Share of a steady world's endings that are failures.
const STEADY_FAILED_SHARE: f64 = 0.05;
/// The planned end of a session that runs until something ends it (steady worlds).
const OPEN_ENDED: i64 = i64::MAX;

/// What shapes a world, taken from the simulator's configuration.
#[derive(Debug, Clone)]
pub(crate) struct WorldParams {
    /// Seed of every random stream.
    pub(crate) seed: u64,
    /// Number of users.
    pub(crate) users: u32,
    /// Whether traffic reports bump an active session's updated time.
    pub(crate) bump_updated_on_traffic: bool,
    /// Expected region outages per day, over all regions.
    pub(crate) outages_per_day: f64,
    /// Multiplies each user group's share of always-on devices (capped at every user).
    pub(crate) always_on_boost: f64,
    /// A steady world instead of the company's working-day rhythm (no outages then).
    pub(crate) steady: Option<Steady>,
}

/// A session's status as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Connected now.
    Active,
    /// Ended normally.
    Completed,
    /// Ended in failure.
    Failed,
}

impl Status {
    /// The API's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
        }
    }

    /// Parses the API's name (exactly, as the API's enum does).
    pub(crate) fn parse(text: &str) -> Option<Status> {
        match text {
            "ACTIVE" => Some(Status::Active),
            "COMPLETED" => Some(Status::Completed),
            "FAILED" => Some(Status::Failed),
            _ => None,
        }
    }
}

/// A device a user connects from.
struct Device {
    name: String,
    id: String,
    client_uuid: String,
    os_type: &'static str,
    os_version: &'static str,
}

/// A member of the company.
struct User {
    first: &'static str,
    last: &'static str,
    user_name: String,
    email: String,
    id: String,
    group: usize,
    office: usize,
    /// The laptop first, then maybe a phone.
    devices: Vec<Device>,
    /// The device kept connected around the clock, if any.
    always_on: Option<u8>,
    /// Usual first login, local hours.
    start_hour: f64,
    /// Usual length of the working day, hours.
    day_hours: f64,
    /// Public address when not at the office.
    home_ip: [u8; 4],
}

/// The company: users and the ids of the tenant's objects.
struct Company {
    users: Vec<User>,
    by_office: Vec<Vec<u32>>,
    network_ids: Vec<String>,
    host_ids: Vec<Vec<String>>,
    connector_ids: Vec<Vec<String>>,
}

impl Company {
    fn generate(seed: u64, users: u32, always_on_boost: f64) -> Company {
        let mut rng = rng_for(&[seed, tag::COMPANY]);
        let network_ids = NETWORKS.iter().map(|_| uuid(&mut rng)).collect();
        let host_ids = NETWORKS
            .iter()
            .map(|n| n.hosts.iter().map(|_| uuid(&mut rng)).collect())
            .collect();
        let connector_ids = NETWORKS
            .iter()
            .map(|n| n.connectors.iter().map(|_| uuid(&mut rng)).collect())
            .collect();
        let mut taken = std::collections::HashMap::<String, u32>::new();
        let mut by_office = vec![Vec::new(); OFFICES.len()];
        let mut list = Vec::with_capacity(users as usize);
        for index in 0..users {
            let office = weighted(&mut rng, OFFICES.iter().map(|o| o.weight));
            let group = weighted(&mut rng, GROUPS.iter().map(|g| g.weight));
            let habits = &GROUPS[group];
            let first = catalog::FIRST_NAMES[rng.random_range(0..catalog::FIRST_NAMES.len())];
            let last = catalog::LAST_NAMES[rng.random_range(0..catalog::LAST_NAMES.len())];
            let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
            let seen = taken.entry(base.clone()).or_insert(0);
            *seen += 1;
            let user_name = if *seen == 1 {
                base
            } else {
                format!("{base}{seen}")
            };
            let email = format!("{user_name}@example.com");
            let id = uuid(&mut rng);
            let laptop_os = LAPTOP_OS[weighted(&mut rng, habits.laptop_os)];
            let mut devices = vec![Self::device(&mut rng, first, last, laptop_os)];
            if rng.random_bool(habits.phone) {
                let phone_os = PHONE_OS[weighted(&mut rng, [0.55, 0.45])];
                devices.push(Self::device(&mut rng, first, last, phone_os));
            }
            let always_on = rng
                .random_bool((habits.always_on * always_on_boost).clamp(0.0, 1.0))
                .then(|| (devices.len() - 1) as u8);
            let start_hour = (8.6 + 0.7 * normal(&mut rng)).clamp(6.5, 11.0);
            let day_hours = rng.random_range(7.5..9.5);
            let home_ip = if rng.random_bool(0.5) {
                [198, 51, 100, rng.random_range(1..255)]
            } else {
                [192, 0, 2, rng.random_range(1..255)]
            };
            by_office[office].push(index);
            list.push(User {
                first,
                last,
                user_name,
                email,
                id,
                group,
                office,
                devices,
                always_on,
                start_hour,
                day_hours,
                home_ip,
            });
        }
        Company {
            users: list,
            by_office,
            network_ids,
            host_ids,
            connector_ids,
        }
    }

    fn device(rng: &mut SmallRng, first: &str, last: &str, os_type: &'static str) -> Device {
        let name = match os_type {
            "WINDOWS" => {
                let short: String = last.chars().take(7).collect();
                format!("{}{}-LT", &first[..1], short).to_uppercase()
            }
            "MAC" => format!("{first}'s MacBook Pro"),
            "LINUX" => format!("{}-thinkpad", first.to_lowercase()),
            "CHROME_OS" => format!("{first}'s Chromebook"),
            "IOS" => format!("{first}'s iPhone"),
            _ => ["Pixel 8", "Galaxy S23", "Pixel 7a", "Galaxy A54"][rng.random_range(0..4)].into(),
        };
        let versions = catalog::os_versions(os_type);
        Device {
            name,
            id: uuid(rng),
            client_uuid: uuid(rng),
            os_type,
            os_version: versions[rng.random_range(0..versions.len())],
        }
    }
}

/// A session, planned or in the world.
#[derive(Debug, Clone)]
struct Session {
    seq: u64,
    user: u32,
    device: u8,
    region: u8,
    network: u8,
    host: u8,
    connector: u8,
    protocol: u8,
    public_ip: [u8; 4],
    /// Start on the churn clock.
    start_c: i64,
    /// End on the churn clock: planned while active, actual once ended.
    end_c: i64,
    /// Start on the server clock (set when the session appears).
    start_s: i64,
    /// End on the server clock, once ended.
    end_s: Option<i64>,
    /// The updated time the session is indexed under (server clock).
    updated_s: i64,
    /// Index into [`REASONS`]: how the session ends (or ended).
    reason: u8,
    /// Bytes per second from the client.
    rate_in: f32,
    /// Bytes per second to the client.
    rate_out: f32,
    /// Handshake bytes from the client.
    base_in: u32,
    /// Handshake bytes to the client.
    base_out: u32,
}

impl Session {
    fn status(&self) -> Status {
        match self.end_s {
            None => Status::Active,
            Some(_) if REASONS[usize::from(self.reason)].failed => Status::Failed,
            Some(_) => Status::Completed,
        }
    }

    /// Bytes in and out as of churn time `now`: they grow while the session is active.
    fn bytes(&self, now: i64) -> (i64, i64) {
        let secs = (self.end_c.min(now) - self.start_c).max(0) as f64 / 1_000.0;
        (
            i64::from(self.base_in) + (f64::from(self.rate_in) * secs) as i64,
            i64::from(self.base_out) + (f64::from(self.rate_out) * secs) as i64,
        )
    }

    /// A failed attempt of the same user and device at `start`.
    fn failed_attempt(&self, rng: &mut SmallRng, start: i64, length: i64, reason: u8) -> Session {
        Session {
            start_c: start,
            end_c: start + length.max(SECOND),
            reason,
            rate_in: 0.0,
            rate_out: 0.0,
            base_in: rng.random_range(600..6_000),
            base_out: rng.random_range(400..4_000),
            ..self.clone()
        }
    }
}

/// Something that happens at a moment of the churn clock.
struct Event {
    at: i64,
    kind: EventKind,
}

enum EventKind {
    /// A session ends (ignored if the session ended otherwise meanwhile).
    End(u64),
    /// A region stops answering until `until`.
    Outage { region: usize, until: i64 },
    /// A planned session starts.
    Arrive(Box<Session>),
    /// An active session reports traffic.
    Traffic(u64),
    /// Plan an office's local day.
    PlanDay { office: usize, day: i64 },
    /// Schedule the outages of a UTC day.
    OutageDay(i64),
    /// The `n`th change of a steady world: an active session ends and another starts.
    Change(u64),
}

impl Event {
    /// The total order of events: time, then kind, then a number unique within the kind.
    fn key(&self) -> (i64, u8, u64) {
        match &self.kind {
            EventKind::End(seq) => (self.at, 0, *seq),
            EventKind::Outage { region, .. } => (self.at, 1, *region as u64),
            EventKind::Arrive(s) => (self.at, 2, s.seq),
            EventKind::Traffic(seq) => (self.at, 3, *seq),
            EventKind::PlanDay { office, .. } => (self.at, 4, *office as u64),
            EventKind::OutageDay(_) => (self.at, 5, 0),
            EventKind::Change(n) => (self.at, 6, *n),
        }
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A listing request, already validated (all times on the server clock).
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    /// Inclusive lower bound of the window.
    pub(crate) start: i64,
    /// Exclusive upper bound, if any.
    pub(crate) end: Option<i64>,
    /// Only sessions with this status.
    pub(crate) status: Option<Status>,
    /// Window on creation time (true) or on updated time (false).
    pub(crate) only_new: bool,
    /// Continue after this key (from a cursor).
    pub(crate) after: Option<ListKey>,
    /// Page size.
    pub(crate) size: usize,
}

/// Position of a session in a listing: its (created or updated) time, then its sequence number.
pub(crate) type ListKey = (i64, u64);

/// A session as the API shows it (the spec's `SessionResponse`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionRecord<'a> {
    id: String,
    user_name: &'a str,
    user_id: &'a str,
    user_group: &'static str,
    host_name: &'static str,
    host_id: &'a str,
    network_name: &'static str,
    network_id: &'a str,
    device_name: &'a str,
    device_id: &'a str,
    #[serde(rename = "clientUUID")]
    client_uuid: &'a str,
    os_type: &'static str,
    os_version: &'static str,
    connector_name: &'static str,
    connector_id: &'a str,
    region: &'static str,
    session_start_time: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason_description: Option<&'static str>,
    first_name: &'static str,
    last_name: &'static str,
    email: &'a str,
    bytes_in: i64,
    bytes_out: i64,
    protocol: &'static str,
    public_ip: String,
    tunnel_ip_v4: String,
    tunnel_ip_v6: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration_seconds: Option<i64>,
}

/// The ground truth of one session, for tests (the public `TruthSession` is built from it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Truth {
    pub(crate) id: String,
    pub(crate) status: Status,
    pub(crate) region: &'static str,
    pub(crate) network: &'static str,
    pub(crate) host: &'static str,
    pub(crate) connector: &'static str,
    pub(crate) user_name: String,
    pub(crate) user_group: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) os_type: &'static str,
    pub(crate) bytes_in: i64,
    pub(crate) bytes_out: i64,
    pub(crate) start: i64,
    pub(crate) end: Option<i64>,
    pub(crate) updated: i64,
    pub(crate) reason: Option<&'static str>,
}

/// Counts for a quick look at the world.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Active sessions per region (regions without any are absent).
    pub(crate) active_by_region: BTreeMap<&'static str, u64>,
    /// Ended sessions per status.
    pub(crate) ended_by_status: BTreeMap<&'static str, u64>,
    /// All active sessions.
    pub(crate) active_total: u64,
}

/// The world: the company, its sessions and what is scheduled to happen.
pub(crate) struct World {
    params: WorldParams,
    company: Company,
    /// Sessions before this churn time are never created (the world's first moment).
    origin: i64,
    /// The churn clock as of the last advance.
    churn_now: i64,
    /// Server clock minus churn clock, while churn is on.
    offset: i64,
    /// Server time at which churn was stopped, while it is stopped.
    frozen_since: Option<i64>,
    events: BinaryHeap<Reverse<Event>>,
    next_seq: u64,
    sessions: BTreeMap<u64, Session>,
    active: BTreeSet<u64>,
    by_created: BTreeSet<ListKey>,
    by_updated: BTreeSet<ListKey>,
}

impl World {
    /// A world that has run for a while (its warm-up) before `now` on the server clock.
    pub(crate) fn new(params: WorldParams, now: i64) -> World {
        let origin = now
            - if params.steady.is_some() {
                STEADY_WARM_UP
            } else {
                WARM_UP
            };
        let mut world = World {
            company: Company::generate(params.seed, params.users, params.always_on_boost),
            params,
            origin,
            churn_now: origin,
            offset: 0,
            frozen_since: None,
            events: BinaryHeap::new(),
            next_seq: 1,
            sessions: BTreeMap::new(),
            active: BTreeSet::new(),
            by_created: BTreeSet::new(),
            by_updated: BTreeSet::new(),
        };
        if let Some(steady) = world.params.steady {
            world.populate_steady(steady);
        } else {
            for (office, o) in OFFICES.iter().enumerate() {
                let day = (origin + o.utc_offset_minutes * MINUTE).div_euclid(DAY);
                world.schedule_plan_day(office, day);
            }
            let day = origin.div_euclid(DAY);
            world.push(day * DAY - PLANNING_LEAD, EventKind::OutageDay(day));
        }
        world.advance_to(now);
        world
    }

    /// Connects a steady world's sessions, spread over the hours before its first moment, and
    /// schedules its first change.
    fn populate_steady(&mut self, steady: Steady) {
        let mut rng = rng_for(&[self.params.seed, tag::STEADY]);
        let mut planned: Vec<Session> = (0..steady.active)
            .map(|_| {
                let start = self.origin - rng.random_range(MINUTE..STEADY_SPREAD);
                self.steady_session(&mut rng, start)
            })
            .collect();
        planned.sort_by_key(|s| s.start_c);
        for mut s in planned {
            s.seq = self.next_seq;
            self.next_seq += 1;
            let at = s.start_c;
            self.arrive(s, at);
        }
        self.schedule_change(0, self.origin);
    }

    /// A session of a random user of the company, starting at `start` and open-ended.
    fn steady_session(&self, rng: &mut SmallRng, start: i64) -> Session {
        let users = self.company.users.len().max(1);
        let user = rng.random_range(0..users);
        let devices = self.company.users.get(user).map_or(1, |u| u.devices.len());
        let device = rng.random_range(0..devices.max(1)) as u8;
        self.dress(rng, user as u32, device, start, OPEN_ENDED, USER_DISCONNECT)
    }

    /// Schedules change `n` of a steady world, a random gap after `after`: changes come as a
    /// Poisson process at the configured rate.
    fn schedule_change(&mut self, n: u64, after: i64) {
        let Some(rate) = self
            .params
            .steady
            .map(|s| s.changes_per_minute)
            .filter(|r| r.is_finite() && *r > 0.0)
        else {
            return;
        };
        let mut rng = rng_for(&[self.params.seed, tag::STEADY, n, 0]);
        let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
        let gap = (-uniform.ln() * MINUTE as f64 / rate).max(1.0) as i64;
        self.push(after + gap, EventKind::Change(n));
    }

    /// Change `n` of a steady world: a random active session ends (a few fail) and a new one
    /// starts, so the number of active sessions stays the same.
    fn change(&mut self, n: u64, at: i64) {
        let mut rng = rng_for(&[self.params.seed, tag::STEADY, n, 1]);
        if let Some(&first) = self.active.first() {
            let pick = rng.random_range(first..self.next_seq.max(first + 1));
            let victim = self.active.range(pick..).next().copied().unwrap_or(first);
            let reason = if rng.random_bool(STEADY_FAILED_SHARE) {
                ATTEMPT_FAILURES[weighted(&mut rng, ATTEMPT_FAILURES.map(|f| f.1))].0
            } else {
                [USER_DISCONNECT, CLIENT_EXIT, IDLE_TIMEOUT, NETWORK_CHANGE]
                    [weighted(&mut rng, [0.4, 0.3, 0.15, 0.15])]
            };
            if let Some(s) = self.sessions.get_mut(&victim) {
                s.end_c = at;
                s.reason = reason;
            }
            self.end(victim, at);
        }
        let mut s = self.steady_session(&mut rng, at);
        s.seq = self.next_seq;
        self.next_seq += 1;
        self.arrive(s, at);
    }

    /// Applies everything that happened up to `now` (server clock) and forgets old sessions.
    pub(crate) fn advance_to(&mut self, now: i64) {
        if self.frozen_since.is_none() {
            let target = now - self.offset;
            while let Some(Reverse(next)) = self.events.peek() {
                if next.at > target {
                    break;
                }
                if let Some(Reverse(event)) = self.events.pop() {
                    self.apply(event);
                }
            }
            self.churn_now = self.churn_now.max(target);
        }
        self.forget_before(now - RETENTION);
    }

    /// Stops or resumes churn at `now` (server clock). While stopped nothing arrives, ends or
    /// grows; on resuming, everything that was due resumes from where it stood.
    pub(crate) fn set_churn(&mut self, on: bool, now: i64) {
        self.advance_to(now);
        match (on, self.frozen_since) {
            (false, None) => self.frozen_since = Some(now),
            (true, Some(since)) => {
                self.offset += now - since;
                self.frozen_since = None;
            }
            _ => {}
        }
    }

    /// True while churn is on.
    pub(crate) fn churn(&self) -> bool {
        self.frozen_since.is_none()
    }

    fn push(&mut self, at: i64, kind: EventKind) {
        self.events.push(Reverse(Event { at, kind }));
    }

    fn schedule_plan_day(&mut self, office: usize, day: i64) {
        let midnight = local_midnight(office, day);
        self.push(midnight - PLANNING_LEAD, EventKind::PlanDay { office, day });
    }

    fn apply(&mut self, event: Event) {
        let at = event.at;
        match event.kind {
            EventKind::End(seq) => self.end(seq, at),
            EventKind::Outage { region, until } => self.outage(region, at, until),
            EventKind::Arrive(session) => self.arrive(*session, at),
            EventKind::Traffic(seq) => self.traffic(seq, at),
            EventKind::PlanDay { office, day } => {
                self.plan_office_day(office, day);
                self.schedule_plan_day(office, day + 1);
            }
            EventKind::OutageDay(day) => {
                for region in 0..REGIONS.len() {
                    match self.outage_window(region, day) {
                        Some((start, until)) if start >= self.origin => {
                            self.push(start, EventKind::Outage { region, until });
                        }
                        _ => {}
                    }
                }
                self.push(
                    (day + 1) * DAY - PLANNING_LEAD,
                    EventKind::OutageDay(day + 1),
                );
            }
            EventKind::Change(n) => {
                self.change(n, at);
                self.schedule_change(n + 1, at);
            }
        }
    }

    fn arrive(&mut self, mut session: Session, at: i64) {
        let seq = session.seq;
        session.start_s = at + self.offset;
        session.updated_s = session.start_s;
        self.by_created.insert((session.start_s, seq));
        self.by_updated.insert((session.start_s, seq));
        self.active.insert(seq);
        if session.end_c != OPEN_ENDED {
            self.push(session.end_c, EventKind::End(seq));
        }
        if self.params.bump_updated_on_traffic && at + TRAFFIC_REPORT_INTERVAL < session.end_c {
            self.push(at + TRAFFIC_REPORT_INTERVAL, EventKind::Traffic(seq));
        }
        self.sessions.insert(seq, session);
    }

    fn end(&mut self, seq: u64, at: i64) {
        let server_time = at + self.offset;
        let Some(s) = self.sessions.get_mut(&seq) else {
            return;
        };
        // A stale end: the session ended otherwise (an outage) or already.
        if s.end_s.is_none() && s.end_c == at {
            s.end_s = Some(server_time);
            self.by_updated.remove(&(s.updated_s, seq));
            s.updated_s = server_time;
            self.by_updated.insert((server_time, seq));
            self.active.remove(&seq);
        }
    }

    fn traffic(&mut self, seq: u64, at: i64) {
        let server_time = at + self.offset;
        let Some(s) = self.sessions.get_mut(&seq) else {
            return;
        };
        if s.end_s.is_some() || at >= s.end_c {
            return;
        }
        self.by_updated.remove(&(s.updated_s, seq));
        s.updated_s = server_time;
        self.by_updated.insert((server_time, seq));
        let next = at + TRAFFIC_REPORT_INTERVAL;
        if next < s.end_c {
            self.push(next, EventKind::Traffic(seq));
        }
    }

    /// Whether (and when) `region` fails on UTC day `day`: a pure function of the seed, so that
    /// planning (which avoids starting sessions in an outage) and the outage itself agree.
    fn outage_window(&self, region: usize, day: i64) -> Option<(i64, i64)> {
        let chance = (self.params.outages_per_day / REGIONS.len() as f64).clamp(0.0, 1.0);
        if chance == 0.0 {
            return None;
        }
        let mut rng = rng_for(&[self.params.seed, tag::OUTAGE, region as u64, day as u64]);
        if !rng.random_bool(chance) {
            return None;
        }
        let start = day * DAY + rng.random_range(0..DAY);
        Some((start, start + rng.random_range(3 * MINUTE..20 * MINUTE)))
    }

    /// The outage of `region` under way at churn time `t`, if any.
    fn outage_at(&self, region: usize, t: i64) -> Option<(i64, i64)> {
        let day = t.div_euclid(DAY);
        [day, day - 1]
            .into_iter()
            .filter_map(|d| self.outage_window(region, d))
            .find(|&(start, until)| start <= t && t < until)
    }

    /// A region stops answering: its sessions drop, their users retry in vain until it is back,
    /// then reconnect all at once.
    fn outage(&mut self, region: usize, at: i64, until: i64) {
        let mut rng = rng_for(&[
            self.params.seed,
            tag::OUTAGE_EFFECT,
            region as u64,
            at as u64,
        ]);
        let victims: Vec<u64> = self
            .active
            .iter()
            .copied()
            .filter(|seq| self.sessions[seq].region as usize == region)
            .collect();
        let mut follow_ups = Vec::new();
        for seq in victims {
            let cut = at + rng.random_range(5 * SECOND..90 * SECOND);
            let Some(s) = self.sessions.get_mut(&seq) else {
                continue;
            };
            if cut >= s.end_c {
                continue;
            }
            let planned = s.clone();
            s.end_c = cut;
            s.reason = CONNECTION_LOST;
            self.events.push(Reverse(Event {
                at: cut,
                kind: EventKind::End(seq),
            }));
            let mut t = cut + rng.random_range(5 * SECOND..30 * SECOND);
            for _ in 0..rng.random_range(1..=3) {
                if t >= until {
                    break;
                }
                let length = rng.random_range(10 * SECOND..30 * SECOND);
                follow_ups.push(planned.failed_attempt(&mut rng, t, length, ATTEMPT_TIMEOUT));
                t += length + rng.random_range(30 * SECOND..120 * SECOND);
            }
            let back = until.max(t) + rng.random_range(0..3 * MINUTE);
            if planned.end_c - back > 2 * MINUTE {
                follow_ups.push(Session {
                    start_c: back,
                    ..planned
                });
            }
        }
        self.enqueue(follow_ups);
    }

    /// Gives planned sessions their sequence numbers (in start order) and queues their arrival.
    fn enqueue(&mut self, mut planned: Vec<Session>) {
        planned.sort_by_key(|s| (s.start_c, s.user, s.device, s.end_c));
        for mut s in planned {
            s.seq = self.next_seq;
            self.next_seq += 1;
            self.push(s.start_c, EventKind::Arrive(Box::new(s)));
        }
    }

    /// Plans the sessions of an office's users for one local day.
    fn plan_office_day(&mut self, office: usize, day: i64) {
        let mut rng = rng_for(&[self.params.seed, tag::OFFICE_DAY, office as u64, day as u64]);
        let midnight = local_midnight(office, day);
        // Some mornings everyone logs in at once (after an all-hands, or an identity provider
        // hiccup): a login storm.
        let storm = (!is_weekend(day) && rng.random_bool(0.12))
            .then(|| midnight + 8 * HOUR + 45 * MINUTE + rng.random_range(0..HOUR));
        let mut planned = Vec::new();
        for &user in &self.company.by_office[office] {
            planned.extend(self.plan_user_day(user, day, midnight, storm));
        }
        let mut moved = Vec::new();
        for s in &mut planned {
            if REASONS[usize::from(s.reason)].failed {
                continue;
            }
            // A session due while its region is down fails and is tried again once it is back.
            if let Some((_, until)) = self.outage_at(usize::from(s.region), s.start_c) {
                let mut rng = rng_for(&[
                    self.params.seed,
                    tag::OUTAGE_EFFECT,
                    u64::from(s.user),
                    s.start_c as u64,
                ]);
                let retry = until + rng.random_range(0..3 * MINUTE);
                if s.end_c - retry > MINUTE {
                    moved.push(Session {
                        start_c: retry,
                        ..s.clone()
                    });
                }
                let length = rng.random_range(20 * SECOND..60 * SECOND);
                *s = s.failed_attempt(&mut rng, s.start_c, length, ATTEMPT_TIMEOUT);
            }
        }
        planned.extend(moved);
        planned.retain(|s| s.start_c >= self.origin);
        self.enqueue(planned);
    }

    /// One user's sessions on one local day (times on the churn clock).
    fn plan_user_day(&self, u: u32, day: i64, midnight: i64, storm: Option<i64>) -> Vec<Session> {
        let user = &self.company.users[u as usize];
        let habits = &GROUPS[user.group];
        let mut rng = rng_for(&[self.params.seed, tag::USER_DAY, u64::from(u), day as u64]);
        let weekend = is_weekend(day);
        let phone = (user.devices.len() > 1).then_some(1u8);
        // (device, start, end, reason), times from local midnight.
        let mut plan: Vec<(u8, i64, i64, u8)> = Vec::new();

        if let Some(device) = user.always_on {
            let mut t = rng.random_range(0..4 * MINUTE);
            while t < DAY {
                let length = (log_normal(&mut rng, 3.0 * HOUR as f64, 0.9) as i64).max(10 * MINUTE);
                let (end, reason) = if t + length >= DAY {
                    (DAY, SESSION_TIMEOUT)
                } else {
                    let reason = [NETWORK_CHANGE, PING_TIMEOUT, CLIENT_EXIT]
                        [weighted(&mut rng, [0.55, 0.3, 0.15])];
                    (t + length, reason)
                };
                plan.push((device, t, end, reason));
                t = end + rng.random_range(5 * SECOND..4 * MINUTE);
            }
        }

        let presence = if weekend {
            habits.weekend_presence
        } else {
            habits.weekday_presence
        };
        let works = rng.random_bool(presence);
        if works {
            let (login, logout) = if weekend {
                let login = rng.random_range(9 * HOUR..20 * HOUR);
                let length = log_normal(&mut rng, 1.5 * HOUR as f64, 0.8) as i64;
                (login, login + length.clamp(10 * MINUTE, 10 * HOUR))
            } else {
                let mut login = hours(user.start_hour + 0.5 * normal(&mut rng));
                if let Some(storm) = storm {
                    if rng.random_bool(0.45) {
                        login = storm - midnight + rng.random_range(0..3 * MINUTE);
                    }
                }
                let login = login.clamp(5 * HOUR, 13 * HOUR);
                let logout = login + hours(user.day_hours + 0.75 * normal(&mut rng));
                (login, logout.max(login + HOUR))
            };
            let logout = logout.min(DAY - 20 * MINUTE);
            let evening_reason = |rng: &mut SmallRng| {
                [USER_DISCONNECT, CLIENT_EXIT, IDLE_TIMEOUT][weighted(rng, [0.45, 0.35, 0.2])]
            };
            let mut blocks = Vec::new();
            let lunch = hours(12.25 + 0.4 * normal(&mut rng));
            let back = lunch + rng.random_range(25 * MINUTE..65 * MINUTE);
            if !weekend
                && rng.random_bool(0.45)
                && lunch > login + 30 * MINUTE
                && back < logout - 30 * MINUTE
            {
                let reason = if rng.random_bool(0.5) {
                    USER_DISCONNECT
                } else {
                    IDLE_TIMEOUT
                };
                blocks.push((login, lunch, reason));
                blocks.push((back, logout, evening_reason(&mut rng)));
            } else {
                blocks.push((login, logout, evening_reason(&mut rng)));
            }
            for (start, end, reason) in blocks {
                let mut s = start;
                for _ in 0..3 {
                    if end - s < 30 * MINUTE || !rng.random_bool(0.12) {
                        break;
                    }
                    let cut = rng.random_range(s + 10 * MINUTE..end - 10 * MINUTE);
                    plan.push((0, s, cut, NETWORK_CHANGE));
                    s = cut + rng.random_range(5 * SECOND..60 * SECOND);
                }
                plan.push((0, s, end, reason));
            }
            if !weekend && rng.random_bool(0.12) {
                let start = rng.random_range(20 * HOUR..23 * HOUR);
                let length = (log_normal(&mut rng, 25.0 * MINUTE as f64, 0.7) as i64)
                    .clamp(2 * MINUTE, 3 * HOUR);
                plan.push((0, start, start + length, evening_reason(&mut rng)));
            }
        }

        let quick_checks = poisson(&mut rng, if works && !weekend { 0.6 } else { 0.15 });
        for _ in 0..quick_checks {
            let start = rng.random_range(7 * HOUR..23 * HOUR);
            let length = (log_normal(&mut rng, 10.0 * MINUTE as f64, 1.0) as i64)
                .clamp(20 * SECOND, 6 * HOUR);
            let reason = if rng.random_bool(0.6) {
                USER_DISCONNECT
            } else {
                CLIENT_EXIT
            };
            plan.push((phone.unwrap_or(0), start, start + length, reason));
        }

        // An unmanaged or out-of-date device is refused outright.
        if rng.random_bool(0.012) {
            let start = rng.random_range(8 * HOUR..20 * HOUR);
            let reason = if rng.random_bool(0.5) {
                DEVICE_NOT_ALLOWED
            } else {
                POSTURE_CHECK_FAILED
            };
            plan.push((
                0,
                start,
                start + rng.random_range(2 * SECOND..30 * SECOND),
                reason,
            ));
        }

        let mut sessions = Vec::with_capacity(plan.len() + 2);
        for (device, start, end, reason) in plan {
            let s = self.dress(
                &mut rng,
                u,
                device,
                midnight + start,
                midnight + end,
                reason,
            );
            if !REASONS[usize::from(reason)].failed && rng.random_bool(habits.attempt_failure) {
                // A failed attempt shortly before the session that then succeeded.
                let length = rng.random_range(SECOND..40 * SECOND);
                let at = s.start_c - length - rng.random_range(10 * SECOND..90 * SECOND);
                let why = ATTEMPT_FAILURES[weighted(&mut rng, ATTEMPT_FAILURES.map(|f| f.1))].0;
                sessions.push(s.failed_attempt(&mut rng, at, length, why));
            }
            sessions.push(s);
        }
        sessions
    }

    /// Fills in where and how a planned session connects.
    fn dress(
        &self,
        rng: &mut SmallRng,
        u: u32,
        device: u8,
        start: i64,
        end: i64,
        reason: u8,
    ) -> Session {
        let user = &self.company.users[u as usize];
        let habits = &GROUPS[user.group];
        let office = &OFFICES[user.office];
        let region = if rng.random_bool(0.05) {
            rng.random_range(0..REGIONS.len())
        } else {
            office.region
        };
        let network = weighted(rng, habits.networks);
        let connectors = NETWORKS[network].connectors;
        let connector = connectors
            .iter()
            .position(|&(_, r)| r == region)
            .unwrap_or_else(|| rng.random_range(0..connectors.len()));
        let host = rng.random_range(0..NETWORKS[network].hosts.len());
        let protocol = weighted(rng, PROTOCOLS.map(|p| p.1));
        let local_hour = (start - local_midnight(user.office, 0)).rem_euclid(DAY) / HOUR;
        let at_office = (8..18).contains(&local_hour) && rng.random_bool(0.55);
        let public_ip = if at_office {
            [203, 0, 113, 10 + user.office as u8]
        } else {
            user.home_ip
        };
        let rate_out = log_normal(rng, habits.median_rate, 1.1).clamp(200.0, 5_000_000.0);
        let rate_in = rate_out * rng.random_range(0.08..0.45);
        let failed = REASONS[usize::from(reason)].failed;
        Session {
            seq: 0,
            user: u,
            device,
            region: region as u8,
            network: network as u8,
            host: host as u8,
            connector: connector as u8,
            protocol: protocol as u8,
            public_ip,
            start_c: start,
            end_c: end.max(start + SECOND),
            start_s: 0,
            end_s: None,
            updated_s: 0,
            reason,
            rate_in: if failed { 0.0 } else { rate_in as f32 },
            rate_out: if failed { 0.0 } else { rate_out as f32 },
            base_in: rng.random_range(3_000..12_000),
            base_out: rng.random_range(4_000..16_000),
        }
    }

    /// Drops ended sessions that are older than the longest history window.
    fn forget_before(&mut self, cutoff: i64) {
        let old: Vec<ListKey> = self
            .by_updated
            .range(..(cutoff, 0))
            .copied()
            .filter(|(_, seq)| !self.active.contains(seq))
            .collect();
        for (updated, seq) in old {
            self.by_updated.remove(&(updated, seq));
            if let Some(s) = self.sessions.remove(&seq) {
                self.by_created.remove(&(s.start_s, seq));
            }
        }
    }

    /// One page of a listing: the keys of up to `size` sessions, and whether more follow.
    pub(crate) fn list(&self, q: &Listing) -> (Vec<ListKey>, bool) {
        let index = if q.only_new {
            &self.by_created
        } else {
            &self.by_updated
        };
        let lower = match q.after {
            Some(after) if after >= (q.start, 0) => Bound::Excluded(after),
            _ => Bound::Included((q.start, 0)),
        };
        let upper = match q.end {
            Some(end) => Bound::Excluded((end, 0)),
            None => Bound::Unbounded,
        };
        let empty = match (lower, upper) {
            (Bound::Included(l), Bound::Excluded(u)) => l >= u,
            (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        };
        if empty {
            return (Vec::new(), false);
        }
        let mut matching = index.range((lower, upper)).copied().filter(|(_, seq)| {
            q.status
                .is_none_or(|status| self.sessions.get(seq).is_some_and(|s| s.status() == status))
        });
        let page: Vec<ListKey> = matching.by_ref().take(q.size).collect();
        let more = matching.next().is_some();
        (page, more)
    }

    /// The API's view of session `seq`, as of now.
    pub(crate) fn record(&self, seq: u64) -> Option<SessionRecord<'_>> {
        let s = self.sessions.get(&seq)?;
        let user = &self.company.users[s.user as usize];
        let device = &user.devices[usize::from(s.device)];
        let network = &NETWORKS[usize::from(s.network)];
        let (bytes_in, bytes_out) = s.bytes(self.churn_now);
        let reason = s.end_s.map(|_| &REASONS[usize::from(s.reason)]);
        // Addresses from the service's default client subnet, stable per user and device.
        let tunnel = u64::from(s.user) * 4 + u64::from(s.device) + 2;
        Some(SessionRecord {
            id: self.session_id(s),
            user_name: &user.user_name,
            user_id: &user.id,
            user_group: GROUPS[user.group].name,
            host_name: network.hosts[usize::from(s.host)],
            host_id: &self.company.host_ids[usize::from(s.network)][usize::from(s.host)],
            network_name: network.name,
            network_id: &self.company.network_ids[usize::from(s.network)],
            device_name: &device.name,
            device_id: &device.id,
            client_uuid: &device.client_uuid,
            os_type: device.os_type,
            os_version: device.os_version,
            connector_name: network.connectors[usize::from(s.connector)].0,
            connector_id: &self.company.connector_ids[usize::from(s.network)]
                [usize::from(s.connector)],
            region: REGIONS[usize::from(s.region)],
            session_start_time: iso_millis(s.start_s),
            status: s.status().as_str(),
            disconnect_reason: reason.map(|r| r.code),
            disconnect_reason_description: reason.map(|r| r.description),
            first_name: user.first,
            last_name: user.last,
            email: &user.email,
            bytes_in,
            bytes_out,
            protocol: PROTOCOLS[usize::from(s.protocol)].0,
            public_ip: format!(
                "{}.{}.{}.{}",
                s.public_ip[0], s.public_ip[1], s.public_ip[2], s.public_ip[3]
            ),
            tunnel_ip_v4: format!(
                "100.{}.{}.{}",
                96 + (tunnel >> 16) % 32,
                (tunnel >> 8) & 0xFF,
                tunnel & 0xFF
            ),
            tunnel_ip_v6: format!("fd7a:115c:a1e0::{tunnel:x}"),
            session_end_time: s.end_s.map(iso_millis),
            session_duration_seconds: s.end_s.map(|end| (end - s.start_s) / 1_000),
        })
    }

    /// A session id in the style of the service's object ids: creation seconds, then 16 hex
    /// digits unique to the session.
    fn session_id(&self, s: &Session) -> String {
        let tail = splitmix(self.params.seed ^ splitmix(s.seq ^ (tag::SESSION_ID << 56)));
        format!("{:08x}{tail:016x}", (s.start_s / 1_000).max(0))
    }

    /// Every session the world holds, in creation order.
    pub(crate) fn truth(&self) -> Vec<Truth> {
        self.sessions
            .values()
            .map(|s| {
                let user = &self.company.users[s.user as usize];
                let network = &NETWORKS[usize::from(s.network)];
                let (bytes_in, bytes_out) = s.bytes(self.churn_now);
                Truth {
                    id: self.session_id(s),
                    status: s.status(),
                    region: REGIONS[usize::from(s.region)],
                    network: network.name,
                    host: network.hosts[usize::from(s.host)],
                    connector: network.connectors[usize::from(s.connector)].0,
                    user_name: user.user_name.clone(),
                    user_group: GROUPS[user.group].name,
                    protocol: PROTOCOLS[usize::from(s.protocol)].0,
                    os_type: user.devices[usize::from(s.device)].os_type,
                    bytes_in,
                    bytes_out,
                    start: s.start_s,
                    end: s.end_s,
                    updated: s.updated_s,
                    reason: s.end_s.map(|_| REASONS[usize::from(s.reason)].code),
                }
            })
            .collect()
    }

    /// Active sessions per region and ended ones per status.
    pub(crate) fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for s in self.sessions.values() {
            match s.status() {
                Status::Active => {
                    *summary
                        .active_by_region
                        .entry(REGIONS[usize::from(s.region)])
                        .or_default() += 1;
                    summary.active_total += 1;
                }
                status => *summary.ended_by_status.entry(status.as_str()).or_default() += 1,
            }
        }
        summary
    }
}

/// UTC time (ms) of local midnight of `day` (days since the epoch, local calendar) at `office`.
fn local_midnight(office: usize, day: i64) -> i64 {
    day * DAY - OFFICES[office].utc_offset_minutes * MINUTE
}

/// True for Saturdays and Sundays (day 0, 1970-01-01, was a Thursday).
fn is_weekend(day: i64) -> bool {
    (day + 3).rem_euclid(7) >= 5
}

fn hours(h: f64) -> i64 {
    (h * HOUR as f64) as i64
}

/// An ISO instant with milliseconds and `Z`, as the API writes times.
pub(crate) fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2025-06-02 00:00 UTC.
    const MONDAY: i64 = 1_748_822_400_000;

    fn params(users: u32) -> WorldParams {
        WorldParams {
            seed: 1,
            users,
            bump_updated_on_traffic: false,
            outages_per_day: 0.5,
            always_on_boost: 1.0,
            steady: None,
        }
    }

    fn ended(world: &World) -> Vec<Truth> {
        world
            .truth()
            .into_iter()
            .filter(|t| t.end.is_some())
            .collect()
    }

    #[test]
    fn some_regions_are_busy_at_any_hour_of_the_week() {
        for hour in (0..7 * 24).step_by(5) {
            let world = World::new(params(500), MONDAY + hour * HOUR);
            let summary = world.summary();
            let busy = summary.active_by_region.len();
            assert!(
                busy >= 3,
                "hour {hour} of the week: only {busy} regions active: {summary:?}"
            );
        }
    }

    #[test]
    fn offices_follow_their_working_day() {
        // Berlin (UTC+1) at 11:00 local against 03:00 local, on a Wednesday.
        let wednesday = MONDAY + 2 * DAY;
        let berlin = |utc_hour: i64| {
            let world = World::new(params(600), wednesday + utc_hour * HOUR);
            world
                .summary()
                .active_by_region
                .get("eu-central-1")
                .copied()
                .unwrap_or(0)
        };
        let (day, night) = (berlin(10), berlin(2));
        assert!(day > 3 * night.max(5), "day {day}, night {night}");
        // The weekend is quieter than a weekday at the same hour.
        let saturday = World::new(params(600), MONDAY + 5 * DAY + 10 * HOUR);
        let weekday = World::new(params(600), MONDAY + 3 * DAY + 10 * HOUR);
        assert!(saturday.summary().active_total * 2 < weekday.summary().active_total);
    }

    #[test]
    fn a_week_of_sessions_looks_like_real_use() {
        let mut world = World::new(params(500), MONDAY);
        world.advance_to(MONDAY + 7 * DAY);
        let ended = ended(&world);
        assert!(ended.len() > 5_000, "{} sessions", ended.len());
        let failed = ended.iter().filter(|t| t.status == Status::Failed).count();
        let share = failed as f64 / ended.len() as f64;
        assert!((0.03..=0.08).contains(&share), "failed share {share}");
        assert!(ended.iter().all(|t| (t.status == Status::Failed)
            == REASONS.iter().any(|r| r.failed && Some(r.code) == t.reason)));

        let mut minutes: Vec<f64> = ended
            .iter()
            .filter(|t| t.status == Status::Completed)
            .map(|t| (t.end.unwrap_or(t.start) - t.start) as f64 / MINUTE as f64)
            .collect();
        minutes.sort_by(f64::total_cmp);
        let short = minutes.iter().filter(|m| **m < 30.0).count() as f64 / minutes.len() as f64;
        let all_day =
            minutes.iter().filter(|m| **m > 6.0 * 60.0).count() as f64 / minutes.len() as f64;
        assert!(short > 0.15, "many short sessions: {short}");
        assert!(all_day > 0.05, "some all-day sessions: {all_day}");

        let count = |f: &dyn Fn(&Truth) -> &str| ended.iter().map(f).collect::<BTreeSet<_>>().len();
        assert!(count(&|t| t.protocol) >= 3);
        assert!(count(&|t| t.os_type) >= 5);
        assert!(count(&|t| t.user_group) >= 6);
        assert!(count(&|t| t.network) >= 6);
        assert!(count(&|t| t.reason.unwrap_or("")) >= 10);
    }

    #[test]
    fn bytes_grow_while_active_and_stay_once_ended() {
        let mut world = World::new(params(200), MONDAY + 10 * HOUR);
        let before = world.truth();
        world.advance_to(MONDAY + 10 * HOUR + 10 * MINUTE);
        let after: BTreeMap<String, Truth> = world
            .truth()
            .into_iter()
            .map(|t| (t.id.clone(), t))
            .collect();
        let mut grown = 0;
        for old in &before {
            let new = &after[&old.id];
            assert!(new.bytes_in >= old.bytes_in && new.bytes_out >= old.bytes_out);
            match (old.status, new.status) {
                (Status::Active, Status::Active) => {
                    grown += usize::from(new.bytes_out > old.bytes_out)
                }
                (Status::Completed | Status::Failed, _) => {
                    assert_eq!((new.bytes_in, new.bytes_out), (old.bytes_in, old.bytes_out));
                    assert_eq!(new.updated, old.updated);
                }
                _ => {}
            }
        }
        assert!(grown > 10, "{grown} active sessions grew");
    }

    #[test]
    fn a_frozen_world_stands_still_and_then_resumes() {
        let start = MONDAY + 9 * HOUR;
        let mut world = World::new(params(300), start);
        world.set_churn(false, start);
        let frozen = world.truth();
        world.advance_to(start + 3 * HOUR);
        assert_eq!(
            world.truth(),
            frozen,
            "no arrivals, endings or growth while frozen"
        );
        world.set_churn(true, start + 3 * HOUR);
        world.advance_to(start + 4 * HOUR);
        let moved = world.truth();
        assert_ne!(moved, frozen);
        let latest = moved.iter().map(|t| t.updated).max().unwrap_or(0);
        assert!(
            latest > start + 3 * HOUR,
            "changes after the freeze carry the server time"
        );
        assert!(
            moved
                .iter()
                .all(|t| t.updated <= start || t.updated >= start + 3 * HOUR),
            "nothing happened during the freeze"
        );
    }

    #[test]
    fn the_world_does_not_depend_on_how_it_is_advanced() {
        let mut jump = World::new(params(300), MONDAY);
        let mut steps = World::new(params(300), MONDAY);
        jump.advance_to(MONDAY + DAY + 17);
        let mut t = MONDAY;
        while t < MONDAY + DAY {
            t += 7 * MINUTE + 3;
            steps.advance_to(t.min(MONDAY + DAY + 17));
        }
        steps.advance_to(MONDAY + DAY + 17);
        assert_eq!(jump.truth(), steps.truth());
        let other = World::new(
            WorldParams {
                seed: 2,
                ..params(300)
            },
            MONDAY,
        );
        assert_ne!(World::new(params(300), MONDAY).truth(), other.truth());
    }

    #[test]
    fn traffic_bumps_updated_time_only_when_asked_to() {
        let start = MONDAY + 10 * HOUR;
        for bump in [false, true] {
            let mut world = World::new(
                WorldParams {
                    bump_updated_on_traffic: bump,
                    ..params(200)
                },
                start,
            );
            world.advance_to(start + 30 * MINUTE);
            let bumped = world
                .truth()
                .iter()
                .filter(|t| t.status == Status::Active && t.updated > t.start)
                .count();
            assert_eq!(
                bumped > 0,
                bump,
                "bump {bump}: {bumped} active sessions updated after their start"
            );
        }
    }

    #[test]
    fn old_sessions_are_forgotten() {
        let mut world = World::new(params(40), MONDAY);
        world.advance_to(MONDAY + 40 * DAY);
        let oldest = world.truth().iter().map(|t| t.updated).min().unwrap_or(0);
        assert!(
            oldest >= MONDAY + 10 * DAY,
            "kept a session updated {oldest}"
        );
        assert_eq!(world.by_created.len(), world.sessions.len());
        assert_eq!(world.by_updated.len(), world.sessions.len());
    }

    #[test]
    fn outages_cut_a_region_and_cause_a_reconnection_storm() {
        let start = MONDAY + 3 * DAY;
        let world = World::new(
            WorldParams {
                outages_per_day: 9.0,
                ..params(600)
            },
            start,
        );
        let truth = world.truth();
        let lost: Vec<&Truth> = truth
            .iter()
            .filter(|t| t.reason == Some("CONNECTION_LOST"))
            .collect();
        assert!(lost.len() >= 10, "{} sessions lost", lost.len());
        let timeouts = truth.iter().filter(|t| t.reason == Some("TIMEOUT")).count();
        assert!(
            timeouts >= lost.len(),
            "retries fail while the region is down"
        );
        // Sessions cut by the same outage end within a couple of minutes of each other.
        let first = lost[0];
        let together = lost
            .iter()
            .filter(|t| {
                t.region == first.region
                    && (t.end.unwrap_or(0) - first.end.unwrap_or(0)).abs() < 2 * MINUTE
            })
            .count();
        assert!(together >= 2, "an outage ends many sessions at once");
    }

    fn steady(active: u32, changes_per_minute: f64) -> WorldParams {
        WorldParams {
            steady: Some(Steady {
                active,
                changes_per_minute,
            }),
            outages_per_day: 0.0,
            ..params(300)
        }
    }

    #[test]
    fn a_steady_world_keeps_its_population_and_changes_at_its_rate() {
        let start = MONDAY + 3 * HOUR;
        let mut world = World::new(steady(2_000, 10.0), start);
        assert_eq!(world.summary().active_total, 2_000);
        // A day of history for the API's default window: 14,400 endings expected.
        let last_day = ended(&world)
            .iter()
            .filter(|t| t.updated >= start - DAY)
            .count();
        assert!((13_800..15_000).contains(&last_day), "{last_day} ended");

        world.advance_to(start + HOUR);
        let truth = world.truth();
        let active = truth.iter().filter(|t| t.status == Status::Active).count();
        assert_eq!(active, 2_000, "the population stays");
        let ended_now = truth.iter().filter(|t| t.end.is_some_and(|e| e > start));
        let started_now = truth.iter().filter(|t| t.start > start).count();
        let ended_now = ended_now.count();
        assert!(
            (500..700).contains(&ended_now),
            "{ended_now} ended in the hour"
        );
        assert_eq!(
            started_now, ended_now,
            "each change ends one and starts one"
        );

        let all_ended = ended(&world);
        let failed = all_ended
            .iter()
            .filter(|t| t.status == Status::Failed)
            .count();
        let share = failed as f64 / all_ended.len() as f64;
        assert!((0.04..0.06).contains(&share), "failed share {share}");
        assert!(
            all_ended
                .iter()
                .all(|t| t.reason != Some("CONNECTION_LOST")),
            "no outages"
        );
        let regions: BTreeSet<&str> = truth.iter().map(|t| t.region).collect();
        assert!(regions.len() >= 5, "{regions:?}");
    }

    #[test]
    fn a_steady_world_without_changes_stands_still() {
        let mut world = World::new(steady(1_000, 0.0), MONDAY);
        let before = world.truth();
        assert_eq!(before.len(), 1_000);
        assert!(before.iter().all(|t| t.status == Status::Active));
        world.advance_to(MONDAY + 6 * HOUR);
        let after = world.truth();
        let ids = |t: &[Truth]| t.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&after), ids(&before));
        assert!(after.iter().all(|t| t.status == Status::Active));
        assert!(
            after
                .iter()
                .zip(&before)
                .any(|(a, b)| a.bytes_out > b.bytes_out),
            "traffic still grows"
        );
    }

    #[test]
    fn a_steady_world_does_not_depend_on_how_it_is_advanced() {
        let mut jump = World::new(steady(300, 20.0), MONDAY);
        let mut steps = World::new(steady(300, 20.0), MONDAY);
        jump.advance_to(MONDAY + 2 * HOUR);
        let mut t = MONDAY;
        while t < MONDAY + 2 * HOUR {
            t += 47 * SECOND + 3;
            steps.advance_to(t.min(MONDAY + 2 * HOUR));
        }
        assert_eq!(jump.truth(), steps.truth());
    }

    #[test]
    fn listings_page_through_windows_in_order() {
        let now = MONDAY + 12 * HOUR;
        let world = World::new(params(300), now);
        let listing = |start, end, only_new, status, after| Listing {
            start,
            end,
            status,
            only_new,
            after,
            size: 50,
        };
        // Page through everything updated in the last day; every session once, in key order.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = world.list(&listing(now - DAY, None, false, None, after));
            assert!(page.len() <= 50);
            seen.extend(page.iter().copied());
            if !more {
                break;
            }
            after = page.last().copied();
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let expected = world
            .truth()
            .iter()
            .filter(|t| t.updated >= now - DAY)
            .count();
        assert_eq!(seen.len(), expected);

        // A session created in a window and ended after it: returned by creation only.
        let truth = world.truth();
        let s = truth
            .iter()
            .find(|t| {
                t.start < now - 2 * HOUR
                    && t.end.is_some_and(|e| e > now - HOUR)
                    && t.start > now - 6 * HOUR
            })
            .expect("a session that ended an hour after the window");
        let window = (s.start - MINUTE, Some(now - 2 * HOUR));
        let ids = |only_new, status| -> Vec<String> {
            let (page, _) = world.list(&Listing {
                size: 100,
                ..listing(window.0, window.1, only_new, status, None)
            });
            page.iter()
                .filter_map(|k| world.record(k.1))
                .map(|r| r.id)
                .collect()
        };
        assert!(ids(true, None).contains(&s.id));
        assert!(!ids(false, None).contains(&s.id));
        let (page, _) = world.list(&listing(now - DAY, None, false, Some(Status::Active), None));
        assert!(
            page.iter()
                .all(|k| world.sessions[&k.1].status() == Status::Active)
        );
        let (empty, more) = world.list(&listing(now, Some(now), false, None, None));
        assert!(
            empty.is_empty() && !more,
            "startDate not before endDate: nothing"
        );
    }
}
