//! The steady mode, for benchmarks: a constant population of active sessions and a constant
//! rate of change (each change ends one session and starts another), with no daily rhythm and no
//! outages.

use rand::Rng;
use rand::rngs::SmallRng;

use super::{DAY, EventKind, HOUR, MINUTE, Session, World};
use crate::Steady;
use crate::catalog::{
    ATTEMPT_FAILURES, CLIENT_EXIT, IDLE_TIMEOUT, NETWORK_CHANGE, USER_DISCONNECT,
};
use crate::sampling::{rng_for, tag, weighted};

/// How much history a steady world has when it is created: a full day for the API's default
/// window, and an hour more.
pub(super) const STEADY_WARM_UP: i64 = DAY + HOUR;
/// How far before its first moment the sessions a steady world starts with connected.
const STEADY_SPREAD: i64 = 12 * HOUR;
/// Share of a steady world's endings that are failures.
const STEADY_FAILED_SHARE: f64 = 0.05;
/// The planned end of a session that runs until something ends it (steady worlds).
pub(super) const OPEN_ENDED: i64 = i64::MAX;

impl World {
    /// Connects a steady world's sessions, spread over the hours before its first moment, and
    /// schedules its first change.
    pub(super) fn populate_steady(&mut self, steady: Steady) {
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

    /// A session of a random active user of the company, starting at `start` and open-ended.
    fn steady_session(&self, rng: &mut SmallRng, start: i64) -> Session {
        let pool = &self.company.connecting;
        let pick = rng.random_range(0..pool.len().max(1));
        // A deleted user is passed over for the next one who is still there (if nobody is, the
        // session is dropped on arrival).
        let user = (0..pool.len())
            .map(|i| pool[(pick + i) % pool.len()])
            .find(|&u| !self.company.users[u as usize].removed)
            .unwrap_or(0);
        let devices = self.company.users[user as usize].devices.len();
        let device = rng.random_range(0..devices.max(1)) as u8;
        self.dress(rng, user, device, start, OPEN_ENDED, USER_DISCONNECT)
    }

    /// Schedules change `n` of a steady world, a random gap after `after`: changes come as a
    /// Poisson process at the configured rate.
    pub(super) fn schedule_change(&mut self, n: u64, after: i64) {
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
    pub(super) fn change(&mut self, n: u64, at: i64) {
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
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::world::store::Truth;
    use crate::world::tests::{MONDAY, ended, params};
    use crate::world::{SECOND, Status, WorldParams};

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
}
