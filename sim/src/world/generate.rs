//! The company and its days: users with their devices and habits, generated once from the seed,
//! and each office's working day planned an hour before its local midnight.

use rand::Rng;
use rand::rngs::SmallRng;

use super::accounts::{Account, AccountStatus};
use super::inventory::CatalogIds;
use super::{DAY, HOUR, MINUTE, SECOND, Session, World, local_midnight};
use crate::catalog::{
    self, ATTEMPT_FAILURES, ATTEMPT_TIMEOUT, CLIENT_EXIT, DEVICE_NOT_ALLOWED, GROUPS, IDLE_TIMEOUT,
    LAPTOP_OS, NETWORK_CHANGE, NETWORKS, OFFICES, PHONE_OS, PING_TIMEOUT, POSTURE_CHECK_FAILED,
    PROTOCOLS, REASONS, REGIONS, SESSION_TIMEOUT, USER_DISCONNECT,
};
use crate::sampling::{log_normal, normal, poisson, rng_for, tag, uuid, weighted};

/// A device a user connects from.
pub(super) struct Device {
    pub(super) name: String,
    pub(super) id: String,
    pub(super) client_uuid: String,
    pub(super) os_type: &'static str,
    pub(super) os_version: &'static str,
    /// Its number among all the company's devices: its tunnel addresses derive from it.
    pub(super) serial: u32,
}

impl Device {
    /// Its tunnel addresses (`tunnelIpV4`, `tunnelIpV6` of its sessions, `ipV4Address` and
    /// `ipV6Address` of the device): from the service's default client subnet, stable per
    /// device.
    pub(super) fn tunnel_addresses(&self) -> (String, String) {
        let tunnel = u64::from(self.serial) + 2;
        (
            format!(
                "100.{}.{}.{}",
                96 + (tunnel >> 16) % 32,
                (tunnel >> 8) & 0xFF,
                tunnel & 0xFF
            ),
            format!("fd7a:115c:a1e0::{tunnel:x}"),
        )
    }
}

/// A member of the company.
pub(super) struct User {
    pub(super) first: &'static str,
    pub(super) last: &'static str,
    pub(super) user_name: String,
    pub(super) email: String,
    pub(super) id: String,
    pub(super) group: usize,
    pub(super) office: usize,
    /// The laptop first, then maybe a phone.
    pub(super) devices: Vec<Device>,
    /// The device kept connected around the clock, if any.
    pub(super) always_on: Option<u8>,
    /// Usual first login, local hours.
    pub(super) start_hour: f64,
    /// Usual length of the working day, hours.
    pub(super) day_hours: f64,
    /// Public address when not at the office.
    pub(super) home_ip: [u8; 4],
    /// Status, role and authentication.
    pub(super) account: Account,
    /// Deleted while the simulator runs: no longer listed, never connects again.
    pub(super) removed: bool,
}

/// The company: its users, the generated ones first, then those added while the simulator runs.
pub(super) struct Company {
    pub(super) users: Vec<User>,
    /// The generated users of each office, whose days are planned.
    pub(super) by_office: Vec<Vec<u32>>,
    /// The generated users who may connect (active ones), for a steady world's sessions.
    pub(super) connecting: Vec<u32>,
    /// How many users were added while the simulator runs.
    pub(super) added: u32,
    /// The serial number of the next device.
    pub(super) next_serial: u32,
}

impl Company {
    /// The company of `users` users (with `devices` devices in all, if given) and the ids of
    /// the catalog's networks, hosts and connectors, drawn with it.
    pub(super) fn generate(
        seed: u64,
        users: u32,
        always_on_boost: f64,
        devices: Option<u32>,
    ) -> (Company, CatalogIds) {
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
            let account = Account::draw(seed, index, group);
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
                account,
                removed: false,
            });
        }
        let connecting = (0..users)
            .filter(|&u| list[u as usize].account.status == AccountStatus::Active)
            .collect();
        let mut company = Company {
            users: list,
            by_office,
            connecting,
            added: 0,
            next_serial: 0,
        };
        match devices {
            Some(total) => company.fit_devices(seed, total),
            None => company.number_devices(),
        }
        let ids = CatalogIds {
            networks: network_ids,
            hosts: host_ids,
            connectors: connector_ids,
        };
        (company, ids)
    }

    /// A device of `os_type` for a user so named; numbered later.
    pub(super) fn device(
        rng: &mut SmallRng,
        first: &str,
        last: &str,
        os_type: &'static str,
    ) -> Device {
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
            serial: 0,
        }
    }
}

impl World {
    /// Plans the sessions of an office's users for one local day.
    pub(super) fn plan_office_day(&mut self, office: usize, day: i64) {
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
        if user.account.status != AccountStatus::Active || user.removed {
            return Vec::new();
        }
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
    pub(super) fn dress(
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
}

/// True for Saturdays and Sundays (day 0, 1970-01-01, was a Thursday).
fn is_weekend(day: i64) -> bool {
    (day + 3).rem_euclid(7) >= 5
}

fn hours(h: f64) -> i64 {
    (h * HOUR as f64) as i64
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::world::Status;
    use crate::world::store::Truth;
    use crate::world::tests::{MONDAY, ended, params};

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
}
