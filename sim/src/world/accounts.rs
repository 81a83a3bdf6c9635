//! Users' accounts: their status, role and how they sign in; the devices users have when a total
//! is asked for; and users added or removed while the simulator runs.
//!
//! Accounts are drawn per user from a stream of their own, so they change nothing else of the
//! company. Only `ACTIVE` users connect: invited users have not signed in yet, and suspended
//! ones may not.

use std::collections::HashSet;

use rand::Rng;

use super::generate::{Company, User};
use super::{Session, World};
use crate::catalog::{
    AUTH_TYPES, FIRST_NAMES, GROUPS, LAPTOP_OS, LAST_NAMES, PHONE_OS, USER_DELETED,
};
use crate::config::MAX_DEVICES_PER_USER;
use crate::sampling::{rng_for, tag, uuid, weighted};

/// A user's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccountStatus {
    /// Invited, not signed in yet.
    Invited,
    /// In use.
    Active,
    /// Suspended by an administrator.
    Suspended,
    /// Suspended by the identity provider the account comes from.
    SuspendedIdp,
}

impl AccountStatus {
    /// The API's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Invited => "INVITED",
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Suspended => "SUSPENDED",
            AccountStatus::SuspendedIdp => "SUSPENDED_IDP",
        }
    }
}

/// A user's `role` in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The account that created the tenant.
    Owner,
    /// An administrator.
    Admin,
    /// Everyone else.
    Member,
}

impl Role {
    /// The API's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Member => "MEMBER",
        }
    }
}

/// A user's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) status: AccountStatus,
    pub(crate) role: Role,
    /// Index into [`AUTH_TYPES`].
    pub(crate) auth_type: u8,
}

impl Account {
    /// The account of the company's user number `index`, in group `group`. The first user set
    /// the tenant up: the owner, active, with a local account.
    pub(crate) fn draw(seed: u64, index: u32, group: usize) -> Account {
        if index == 0 {
            return Account {
                status: AccountStatus::Active,
                role: Role::Owner,
                auth_type: 0,
            };
        }
        let habits = &GROUPS[group];
        let mut rng = rng_for(&[seed, tag::ACCOUNT, u64::from(index)]);
        let auth_type = weighted(&mut rng, habits.auth_types) as u8;
        let role = if rng.random_bool(habits.admin) {
            Role::Admin
        } else {
            Role::Member
        };
        let draw: f64 = rng.random();
        let status = if draw < habits.invited {
            AccountStatus::Invited
        } else if draw < habits.invited + habits.suspended {
            // An identity provider suspends its accounts when their owners leave.
            if auth_type != 0 && rng.random_bool(0.5) {
                AccountStatus::SuspendedIdp
            } else {
                AccountStatus::Suspended
            }
        } else {
            AccountStatus::Active
        };
        Account {
            status,
            role,
            auth_type,
        }
    }

    /// The API's `authType`.
    pub(crate) fn auth_type(&self) -> &'static str {
        AUTH_TYPES[usize::from(self.auth_type)]
    }
}

impl Company {
    /// Gives or takes devices until the company has `target` in all, at least one a user and at
    /// most [`MAX_DEVICES_PER_USER`]: phones are taken from users who have one, and users get a
    /// second laptop, a tablet or another phone, in an order drawn from the seed.
    pub(super) fn fit_devices(&mut self, seed: u64, target: u32) {
        let mut rng = rng_for(&[seed, tag::DEVICES]);
        let count = |users: &[User]| users.iter().map(|u| u.devices.len()).sum::<usize>();
        let mut order: Vec<usize> = (0..self.users.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let target = target as usize;
        while count(&self.users) > target {
            let Some(&u) = order.iter().find(|&&u| self.users[u].devices.len() > 1) else {
                break;
            };
            let user = &mut self.users[u];
            user.devices.pop();
            let last = (user.devices.len() - 1) as u8;
            user.always_on = user.always_on.map(|d| d.min(last));
            // The next user gives up a device first next time.
            order.retain(|&o| o != u);
            order.push(u);
        }
        let mut at = 0;
        while count(&self.users) < target {
            let u = order[at % order.len()];
            at += 1;
            let user = &mut self.users[u];
            if user.devices.len() >= MAX_DEVICES_PER_USER as usize {
                continue;
            }
            let os_type = if rng.random_bool(0.5) {
                LAPTOP_OS[weighted(&mut rng, GROUPS[user.group].laptop_os)]
            } else {
                PHONE_OS[weighted(&mut rng, [0.55, 0.45])]
            };
            let mut device = Company::device(&mut rng, user.first, user.last, os_type);
            let same = user.devices.iter().filter(|d| d.os_type == os_type).count();
            if same > 0 {
                device.name = format!("{} ({})", device.name, same + 1);
            }
            user.devices.push(device);
        }
        self.number_devices();
    }

    /// Numbers every device in order (see `Device::serial`).
    pub(super) fn number_devices(&mut self) {
        let mut serial = 0;
        for device in self.users.iter_mut().flat_map(|u| u.devices.iter_mut()) {
            device.serial = serial;
            serial += 1;
        }
        self.next_serial = serial;
    }
}

impl World {
    /// Adds an active member of group `group` with a local account and one laptop, who never
    /// connects; returns the new user's id.
    pub(crate) fn add_user(&mut self, group: usize) -> String {
        let n = self.company.added;
        self.company.added += 1;
        let mut rng = rng_for(&[self.params.seed, tag::ADDED_USER, u64::from(n)]);
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        // The dot before the number keeps the name apart from the company's (`anna.smith2`).
        let user_name = format!("{}.{}.{}", first.to_lowercase(), last.to_lowercase(), n + 1);
        let os_type = LAPTOP_OS[weighted(&mut rng, GROUPS[group].laptop_os)];
        let mut device = Company::device(&mut rng, first, last, os_type);
        device.serial = self.company.next_serial;
        self.company.next_serial += 1;
        let id = uuid(&mut rng);
        self.company.users.push(User {
            first,
            last,
            email: format!("{user_name}@example.com"),
            user_name,
            id: id.clone(),
            group,
            office: 0,
            devices: vec![device],
            always_on: None,
            start_hour: 9.0,
            day_hours: 8.0,
            home_ip: [192, 0, 2, 1],
            account: Account {
                status: AccountStatus::Active,
                role: Role::Member,
                auth_type: 0,
            },
            removed: false,
        });
        id
    }

    /// Removes the user with `id`: it is no longer listed, its active sessions end now and its
    /// planned ones never start. Its past sessions keep naming it, as the real service's do.
    /// False if there is no such user (or it was removed already).
    pub(crate) fn remove_user(&mut self, id: &str) -> bool {
        let Some(u) = self
            .company
            .users
            .iter()
            .position(|u| u.id == id && !u.removed)
        else {
            return false;
        };
        self.company.users[u].removed = true;
        let now = self.churn_now;
        let victims: Vec<u64> = self
            .active
            .iter()
            .copied()
            .filter(|seq| self.sessions[seq].user as usize == u)
            .collect();
        for seq in victims {
            if let Some(s) = self.sessions.get_mut(&seq) {
                s.end_c = now.max(s.start_c);
                s.reason = USER_DELETED;
                let at = s.end_c;
                self.end(seq, at);
            }
        }
        true
    }

    /// Whether the session's user is gone (a planned session of theirs must not start).
    pub(super) fn is_removed(&self, session: &Session) -> bool {
        self.company.users[session.user as usize].removed
    }

    /// The (user, device) pairs with an active session now.
    pub(crate) fn online_devices(&self) -> HashSet<(u32, u8)> {
        self.active
            .iter()
            .filter_map(|seq| self.sessions.get(seq))
            .map(|s| (s.user, s.device))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::world::WorldParams;
    use crate::world::tests::{MONDAY, params};
    use crate::world::{DAY, HOUR};

    #[test]
    fn accounts_have_a_realistic_mix() {
        let world = World::new(params(5_000), MONDAY);
        let users = &world.company.users;
        let share = |f: &dyn Fn(&User) -> bool| {
            users.iter().filter(|u| f(u)).count() as f64 / users.len() as f64
        };
        let status = |s| move |u: &User| u.account.status == s;
        let active = share(&status(AccountStatus::Active));
        assert!((0.85..0.95).contains(&active), "active {active}");
        assert!(share(&status(AccountStatus::Invited)) > 0.02);
        assert!(share(&status(AccountStatus::Suspended)) > 0.005);
        assert!(share(&status(AccountStatus::SuspendedIdp)) > 0.005);
        let owners = users
            .iter()
            .filter(|u| u.account.role == Role::Owner)
            .count();
        assert_eq!(owners, 1);
        let admins = share(&|u| u.account.role == Role::Admin);
        assert!((0.03..0.08).contains(&admins), "admins {admins}");
        let mut auth = BTreeMap::<&str, usize>::new();
        for u in users {
            *auth.entry(u.account.auth_type()).or_default() += 1;
        }
        assert!(auth["SAML"] > users.len() * 3 / 4, "{auth:?}");
        assert!(auth["INTERNAL"] > users.len() / 20, "{auth:?}");
        assert!(
            users
                .iter()
                .filter(|u| u.account.status == AccountStatus::SuspendedIdp)
                .all(|u| u.account.auth_type() != "INTERNAL"),
            "only identity providers suspend their accounts"
        );
    }

    #[test]
    fn only_active_users_connect() {
        let mut world = World::new(params(600), MONDAY);
        world.advance_to(MONDAY + 3 * DAY);
        let users = &world.company.users;
        let connected: HashSet<u32> = world.sessions.values().map(|s| s.user).collect();
        assert!(connected.len() > 400);
        assert!(
            connected
                .iter()
                .all(|&u| users[u as usize].account.status == AccountStatus::Active)
        );
        let steady = World::new(
            WorldParams {
                steady: Some(crate::Steady {
                    active: 3_000,
                    changes_per_minute: 5.0,
                }),
                ..params(600)
            },
            MONDAY,
        );
        assert!(
            steady
                .sessions
                .values()
                .all(|s| steady.company.users[s.user as usize].account.status
                    == AccountStatus::Active)
        );
    }

    #[test]
    fn a_device_total_is_met_exactly() {
        for target in [2_000, 2_500, 5_000, 20_000] {
            let world = World::new(
                WorldParams {
                    devices: Some(target),
                    ..params(2_000)
                },
                MONDAY,
            );
            let users = &world.company.users;
            let total: usize = users.iter().map(|u| u.devices.len()).sum();
            assert_eq!(total, target as usize);
            assert!(users.iter().all(|u| (1..=10).contains(&u.devices.len())));
            assert!(
                users
                    .iter()
                    .all(|u| u.always_on.is_none_or(|d| usize::from(d) < u.devices.len()))
            );
            let serials: HashSet<u32> = users
                .iter()
                .flat_map(|u| u.devices.iter().map(|d| d.serial))
                .collect();
            assert_eq!(serials.len(), target as usize, "serials are unique");
        }
        let default = World::new(params(2_000), MONDAY);
        let with_total = World::new(
            WorldParams {
                devices: Some(5_000),
                ..params(2_000)
            },
            MONDAY,
        );
        let ids = |w: &World| {
            w.company
                .users
                .iter()
                .map(|u| u.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&default), ids(&with_total), "the same users");
    }

    #[test]
    fn added_users_never_connect_and_removed_ones_leave() {
        let start = MONDAY + 10 * HOUR;
        let mut world = World::new(params(300), start);
        let id = world.add_user(1);
        let added = world.company.users.len() - 1;
        assert_eq!(world.company.users[added].id, id);
        assert_eq!(world.company.users[added].group, 1);
        world.advance_to(start + DAY);
        assert!(world.sessions.values().all(|s| s.user as usize != added));

        let online = world.online_devices();
        let &(busy, _) = online.iter().next().expect("someone is connected");
        let busy_id = world.company.users[busy as usize].id.clone();
        assert!(world.remove_user(&busy_id));
        assert!(!world.remove_user(&busy_id), "only once");
        assert!(!world.remove_user("no-such-user"));
        assert!(!world.online_devices().iter().any(|&(u, _)| u == busy));
        let ended: Vec<&Session> = world
            .sessions
            .values()
            .filter(|s| s.user == busy && s.reason == USER_DELETED)
            .collect();
        assert!(!ended.is_empty(), "its sessions ended");
        world.advance_to(start + 3 * DAY);
        assert!(
            !world.online_devices().iter().any(|&(u, _)| u == busy),
            "and none starts again"
        );
        assert!(world.remove_user(&id));
    }
}
