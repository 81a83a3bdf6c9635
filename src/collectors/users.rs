//! The users collector: how many users and devices the tenant has, by group, status, role,
//! authentication type and connection state, from the users listing (each user embeds its
//! devices) and the user groups (which name a user's `groupId`). Counts only: no user's name,
//! e-mail or id ever becomes a label.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Collect, CollectorName, RunReport};
use crate::metrics::{DeviceCount, Metrics, UserCount};
use crate::upstream::Endpoint;
use crate::upstream::client::{ApiClient, Priority};
use crate::upstream::error::UpstreamError;
use crate::upstream::inventory::{Inventory, MAX_PAGES};
use crate::upstream::records::{NONE, User, UserGroup};

/// `user_group` of a user whose `groupId` names no group the API listed.
pub const UNKNOWN_GROUP: &str = "unknown";

/// The users collector.
pub struct Users {
    client: Arc<ApiClient>,
    metrics: Arc<Metrics>,
}

impl Users {
    /// A collector asking `client`, publishing to `metrics`.
    pub fn new(client: Arc<ApiClient>, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics }
    }
}

impl Collect for Users {
    fn name(&self) -> CollectorName {
        CollectorName::Users
    }

    fn expected_requests(&self) -> u32 {
        2
    }

    async fn collect(&mut self) -> Result<RunReport, UpstreamError> {
        let groups: Inventory<UserGroup> = self
            .client
            .list_pages(
                Endpoint::UserGroups,
                "user-groups",
                Priority::Low,
                MAX_PAGES,
            )
            .await?;
        let users: Inventory<User> = self
            .client
            .list_pages(Endpoint::Users, "users", Priority::Low, MAX_PAGES)
            .await?;
        let skipped = groups.skipped
            + users.skipped
            + users.items.iter().map(|u| u.skipped_devices).sum::<usize>();
        if skipped > 0 {
            tracing::warn!(
                collector = CollectorName::Users.as_str(),
                skipped,
                "users, groups or devices without an id were skipped"
            );
        }
        let (user_counts, device_counts) = count(&users.items, &groups.items);
        let online = |status: &str| status == "ONLINE";
        let devices: u64 = device_counts.iter().map(|d| d.count).sum();
        let summary = format!(
            "{} users ({} online), {devices} devices ({} online)",
            users.items.len(),
            users
                .items
                .iter()
                .filter(|u| online(&u.connection_status))
                .count(),
            device_counts
                .iter()
                .filter(|d| online(&d.connection_status))
                .map(|d| d.count)
                .sum::<u64>()
        );
        tracing::info!(
            collector = CollectorName::Users.as_str(),
            users = users.items.len(),
            devices,
            groups = groups.items.len(),
            "users listed"
        );
        self.metrics.publish_users(user_counts, device_counts);
        Ok(RunReport {
            requests: groups.pages + users.pages,
            summary,
        })
    }
}

/// Users per (group name, status, role, auth type, connection status) and devices per
/// (connection status, OS).
pub fn count(users: &[User], groups: &[UserGroup]) -> (Vec<UserCount>, Vec<DeviceCount>) {
    let names: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let group_name = |user: &User| match user.group_id.as_deref() {
        None => NONE,
        Some(id) => names.get(id).copied().unwrap_or(UNKNOWN_GROUP),
    };
    let users_by = count_by(users, |u| {
        (
            group_name(u),
            u.status.as_str(),
            u.role.as_str(),
            u.auth_type.as_str(),
            u.connection_status.as_str(),
        )
    });
    let devices_by = count_by(users.iter().flat_map(|u| &u.devices), |d| {
        (d.connection_status.as_str(), d.os.as_str())
    });
    let user_counts = users_by
        .into_iter()
        .map(
            |((group, status, role, auth, connection), count)| UserCount {
                user_group: group.to_owned(),
                status: status.to_owned(),
                role: role.to_owned(),
                auth_type: auth.to_owned(),
                connection_status: connection.to_owned(),
                count,
            },
        )
        .collect();
    let device_counts = devices_by
        .into_iter()
        .map(|((connection, os), count)| DeviceCount {
            connection_status: connection.to_owned(),
            os: os.to_owned(),
            count,
        })
        .collect();
    (user_counts, device_counts)
}

/// How many of `items` share each key.
fn count_by<T, K: Ord>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(T) -> K,
) -> BTreeMap<K, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(key(item)).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::records::Device;

    fn user(id: &str, group: Option<&str>, status: &str, devices: &[(&str, &str)]) -> User {
        User {
            id: id.into(),
            group_id: group.map(Into::into),
            status: status.into(),
            role: "MEMBER".into(),
            auth_type: "SAML".into(),
            connection_status: if devices.iter().any(|d| d.0 == "ONLINE") {
                "ONLINE".into()
            } else {
                "OFFLINE".into()
            },
            devices: devices
                .iter()
                .enumerate()
                .map(|(i, (state, os))| Device {
                    id: format!("{id}-{i}"),
                    connection_status: (*state).into(),
                    os: (*os).into(),
                })
                .collect(),
            skipped_devices: 0,
        }
    }

    #[test]
    fn users_and_devices_are_counted_by_their_labels_with_group_names() {
        let groups = [UserGroup {
            id: "g1".into(),
            name: "Engineering".into(),
        }];
        let users = [
            user(
                "a",
                Some("g1"),
                "ACTIVE",
                &[("ONLINE", "MAC"), ("OFFLINE", "IOS")],
            ),
            user("b", Some("g1"), "ACTIVE", &[("OFFLINE", "MAC")]),
            user("c", Some("g1"), "ACTIVE", &[("OFFLINE", "MAC")]),
            user("d", Some("gone"), "SUSPENDED", &[]),
            user("e", None, "INVITED", &[]),
        ];
        let (users, devices) = count(&users, &groups);
        let view: Vec<(&str, &str, &str, u64)> = users
            .iter()
            .map(|u| {
                (
                    u.user_group.as_str(),
                    u.status.as_str(),
                    u.connection_status.as_str(),
                    u.count,
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("Engineering", "ACTIVE", "OFFLINE", 2),
                ("Engineering", "ACTIVE", "ONLINE", 1),
                (NONE, "INVITED", "OFFLINE", 1),
                (UNKNOWN_GROUP, "SUSPENDED", "OFFLINE", 1),
            ]
        );
        let view: Vec<(&str, &str, u64)> = devices
            .iter()
            .map(|d| (d.connection_status.as_str(), d.os.as_str(), d.count))
            .collect();
        assert_eq!(
            view,
            [
                ("OFFLINE", "IOS", 1),
                ("OFFLINE", "MAC", 2),
                ("ONLINE", "MAC", 1)
            ]
        );
    }
}
