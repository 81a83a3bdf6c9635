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
//!
//! # Layout
//! - this module: the world's clocks, its sessions and the event loop that moves them.
//! - `generate`: the company (users, devices, habits) and the planning of each office's day.
//! - `accounts`: users' status, role and authentication; device totals; users added and removed.
//! - `inventory`: networks, hosts, connectors, user groups and regions, and connector states.
//! - `steady`: the steady mode for benchmarks (a constant population and rate of change).
//! - `store`: the indexes of sessions, and what the API and the tests read from them.
//! - `records`: the inventory endpoints' records, in listing order.

mod accounts;
mod generate;
mod inventory;
mod records;
mod steady;
mod store;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use rand::Rng;
use rand::rngs::SmallRng;

use self::generate::Company;
use self::inventory::Inventory;
pub use self::inventory::{ConnectorKind, ConnectorStatus};
pub(crate) use self::records::{region_records, truth_regions};
use self::steady::{OPEN_ENDED, STEADY_WARM_UP};
pub(crate) use self::store::{ListKey, Listing, SessionRecord};
use super::Steady;
use super::catalog::{ATTEMPT_TIMEOUT, CONNECTION_LOST, GROUPS, OFFICES, REASONS, REGIONS};
use super::sampling::{rng_for, tag};

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
    /// Connectors in all (at least the catalog's).
    pub(crate) connectors: u32,
    /// Devices in all, if given.
    pub(crate) devices: Option<u32>,
    /// Expected spells of `ONLINE_WITH_ISSUES` per connector and day.
    pub(crate) connector_issues: f64,
    /// Expected spells of `OFFLINE` per connector and day, besides region outages.
    pub(crate) connector_outages: f64,
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

/// The world: the company, its sessions and what is scheduled to happen.
pub(crate) struct World {
    params: WorldParams,
    company: Company,
    inventory: Inventory,
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
        let (company, ids) = Company::generate(
            params.seed,
            params.users,
            params.always_on_boost,
            params.devices,
        );
        let inventory = Inventory::new(params.seed, ids, params.connectors, GROUPS.len());
        let mut world = World {
            company,
            inventory,
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
        // Planned before its user was deleted.
        if self.is_removed(&session) {
            return;
        }
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
}

/// UTC time (ms) of local midnight of `day` (days since the epoch, local calendar) at `office`.
fn local_midnight(office: usize, day: i64) -> i64 {
    day * DAY - OFFICES[office].utc_offset_minutes * MINUTE
}

/// An ISO instant with milliseconds and `Z`, as the API writes times.
pub(crate) fn iso_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
pub(super) mod tests {
    use super::store::Truth;
    use super::*;

    /// Monday 2025-06-02 00:00 UTC.
    pub(super) const MONDAY: i64 = 1_748_822_400_000;

    /// A working-day world of `users` users, seed 1.
    pub(super) fn params(users: u32) -> WorldParams {
        WorldParams {
            seed: 1,
            users,
            bump_updated_on_traffic: false,
            outages_per_day: 0.5,
            always_on_boost: 1.0,
            steady: None,
            connectors: crate::config::CATALOG_CONNECTORS,
            devices: None,
            connector_issues: 0.5,
            connector_outages: 0.02,
        }
    }

    /// The world's ended sessions.
    pub(super) fn ended(world: &World) -> Vec<Truth> {
        world
            .truth()
            .into_iter()
            .filter(|t| t.end.is_some())
            .collect()
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
}
