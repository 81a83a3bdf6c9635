//! What the inventory endpoints list, as the spec names it (`NetworkResponse`, `HostResponse`,
//! their connectors, `UserResponse` with its devices, `DeviceResponse`, `UserGroupResponse`,
//! `VpnRegionResponse`), and the same facts as ground truth for tests.
//!
//! Listings are ordered by id and read from the world as it is at each request: an object added
//! or removed between two page requests shifts the later pages, as offset paging over the real
//! service's lists does.

use std::collections::HashSet;

use serde::Serialize;

use super::World;
use super::inventory::{Connector, ConnectorKind, ConnectorStatus};
use crate::catalog::{GROUPS, REGION_FACTS, REGIONS};
use crate::config::MAX_DEVICES_PER_USER;
use crate::truth::{TruthConnector, TruthDevice, TruthRegion, TruthUser};

/// The spec's `NetworkRouteResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RouteRecord<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    subnet: &'a str,
}

/// The spec's `NetworkConnectorResponse` and `HostConnectorResponse` (which lacks
/// `tunnelingProtocol`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectorRecord<'a> {
    id: &'a str,
    network_item_id: &'a str,
    network_item_type: &'static str,
    name: &'a str,
    vpn_region_id: &'static str,
    ip_v4_address: String,
    ip_v6_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunneling_protocol: Option<&'static str>,
    connection_status: &'static str,
}

/// The spec's `NetworkResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NetworkRecord<'a> {
    id: &'a str,
    name: &'a str,
    egress: bool,
    internet_access: &'static str,
    routes: Vec<RouteRecord<'a>>,
    connectors: Vec<ConnectorRecord<'a>>,
    tunneling_protocol: &'static str,
}

/// The spec's `HostResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HostRecord<'a> {
    id: &'a str,
    name: &'a str,
    internet_access: &'static str,
    domain: &'a str,
    connectors: Vec<ConnectorRecord<'a>>,
}

/// The spec's `PlatformResponse`.
#[derive(Debug, Serialize)]
pub(crate) struct PlatformRecord {
    os: &'static str,
    version: &'static str,
}

/// The spec's `DeviceResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeviceRecord<'a> {
    id: &'a str,
    user_id: &'a str,
    #[serde(rename = "clientUUID")]
    client_uuid: &'a str,
    name: &'a str,
    ip_v4_address: String,
    ip_v6_address: String,
    platform: PlatformRecord,
    connection_status: &'static str,
}

/// The spec's `UserResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserRecord<'a> {
    id: &'a str,
    first_name: &'static str,
    last_name: &'static str,
    username: &'a str,
    email: &'a str,
    group_id: &'a str,
    status: &'static str,
    auth_type: &'static str,
    role: &'static str,
    devices: Vec<DeviceRecord<'a>>,
    connection_status: &'static str,
}

/// The spec's `UserGroupResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupRecord<'a> {
    id: &'a str,
    name: &'static str,
    vpn_region_ids: Vec<&'static str>,
    all_regions_included: bool,
    internet_access: &'static str,
    max_device: u32,
    connect_auth: &'static str,
    system_subnets: [&'static str; 2],
}

/// The spec's `VpnRegionResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegionRecord {
    id: &'static str,
    continent: &'static str,
    country: &'static str,
    country_iso: &'static str,
    region_name: &'static str,
}

/// `GET /api/v1/regions`: every region, in the catalog's order.
pub(crate) fn region_records() -> Vec<RegionRecord> {
    REGIONS
        .iter()
        .zip(&REGION_FACTS)
        .map(|(&id, facts)| RegionRecord {
            id,
            continent: facts.continent,
            country: facts.country,
            country_iso: facts.country_iso,
            region_name: facts.name,
        })
        .collect()
}

/// `ONLINE` or `OFFLINE`.
fn online(yes: bool) -> &'static str {
    if yes { "ONLINE" } else { "OFFLINE" }
}

/// Sorts `keys` by the id each names.
fn by_id<K: Copy>(mut keys: Vec<K>, id: impl Fn(K) -> String) -> Vec<K> {
    keys.sort_by_cached_key(|&k| id(k));
    keys
}

impl World {
    /// The networks, in listing order.
    pub(crate) fn network_keys(&self) -> Vec<usize> {
        let networks = &self.inventory.networks;
        by_id((0..networks.len()).collect(), |n| networks[n].id.clone())
    }

    /// The hosts, in listing order.
    pub(crate) fn host_keys(&self) -> Vec<usize> {
        let hosts = &self.inventory.hosts;
        by_id((0..hosts.len()).collect(), |h| hosts[h].id.clone())
    }

    /// The connectors of `kind`, of the network or host with id `parent` if given, in listing
    /// order.
    pub(crate) fn connector_keys(&self, kind: ConnectorKind, parent: Option<&str>) -> Vec<usize> {
        let inventory = &self.inventory;
        let keys = (0..inventory.connectors.len())
            .filter(|&c| {
                let connector = &inventory.connectors[c];
                connector.kind == kind && parent.is_none_or(|p| inventory.parent_id(connector) == p)
            })
            .collect();
        by_id(keys, |c| inventory.connectors[c].id.clone())
    }

    /// The users (not the removed ones), in listing order.
    pub(crate) fn user_keys(&self) -> Vec<u32> {
        let users = &self.company.users;
        let keys = (0..users.len() as u32)
            .filter(|&u| !users[u as usize].removed)
            .collect();
        by_id(keys, |u| users[u as usize].id.clone())
    }

    /// The devices (of the user with id `user` if given), in listing order.
    pub(crate) fn device_keys(&self, user: Option<&str>) -> Vec<(u32, u8)> {
        let users = &self.company.users;
        let keys = (0..users.len() as u32)
            .filter(|&u| {
                let user_ = &users[u as usize];
                !user_.removed && user.is_none_or(|id| user_.id == id)
            })
            .flat_map(|u| (0..users[u as usize].devices.len() as u8).map(move |d| (u, d)))
            .collect();
        by_id(keys, |(u, d)| {
            users[u as usize].devices[usize::from(d)].id.clone()
        })
    }

    /// The user groups, in listing order.
    pub(crate) fn group_keys(&self) -> Vec<usize> {
        let ids = &self.inventory.group_ids;
        by_id((0..ids.len()).collect(), |g| ids[g].clone())
    }

    fn connector_record(&self, c: usize) -> ConnectorRecord<'_> {
        let inventory = &self.inventory;
        let connector: &Connector = &inventory.connectors[c];
        ConnectorRecord {
            id: &connector.id,
            network_item_id: inventory.parent_id(connector),
            network_item_type: connector.kind.as_str(),
            name: &connector.name,
            vpn_region_id: REGIONS[connector.region],
            ip_v4_address: format!("100.127.{}.{}", (c + 1) / 256, (c + 1) % 256),
            ip_v6_address: format!("fd7a:115c:a1e0:ff::{:x}", c + 1),
            tunneling_protocol: (connector.kind == ConnectorKind::Network).then_some("OPENVPN"),
            connection_status: self.connector_status(c).as_str(),
        }
    }

    /// Network connectors (`/networks/connectors`) and host connectors (`/hosts/connectors`).
    pub(crate) fn connector_records(&self, keys: &[usize]) -> Vec<ConnectorRecord<'_>> {
        keys.iter().map(|&c| self.connector_record(c)).collect()
    }

    /// Networks with their connectors.
    pub(crate) fn network_records(&self, keys: &[usize]) -> Vec<NetworkRecord<'_>> {
        keys.iter()
            .map(|&n| {
                let network = &self.inventory.networks[n];
                NetworkRecord {
                    id: &network.id,
                    name: &network.name,
                    egress: false,
                    internet_access: "SPLIT_TUNNEL_ON",
                    routes: vec![RouteRecord {
                        id: &network.route_id,
                        kind: "IP_V4",
                        subnet: &network.subnet,
                    }],
                    connectors: self.connector_records(&network.connectors),
                    tunneling_protocol: "OPENVPN",
                }
            })
            .collect()
    }

    /// Hosts with their connectors.
    pub(crate) fn host_records(&self, keys: &[usize]) -> Vec<HostRecord<'_>> {
        keys.iter()
            .map(|&h| {
                let host = &self.inventory.hosts[h];
                HostRecord {
                    id: &host.id,
                    name: host.name,
                    internet_access: "SPLIT_TUNNEL_ON",
                    domain: &host.domain,
                    connectors: self.connector_records(&host.connectors),
                }
            })
            .collect()
    }

    fn device_record(
        &self,
        (u, d): (u32, u8),
        online_now: &HashSet<(u32, u8)>,
    ) -> DeviceRecord<'_> {
        let user = &self.company.users[u as usize];
        let device = &user.devices[usize::from(d)];
        let (ip_v4_address, ip_v6_address) = device.tunnel_addresses();
        DeviceRecord {
            id: &device.id,
            user_id: &user.id,
            client_uuid: &device.client_uuid,
            name: &device.name,
            ip_v4_address,
            ip_v6_address,
            platform: PlatformRecord {
                os: device.os_type,
                version: device.os_version,
            },
            connection_status: online(online_now.contains(&(u, d))),
        }
    }

    /// Devices alone (`/devices`).
    pub(crate) fn device_records(&self, keys: &[(u32, u8)]) -> Vec<DeviceRecord<'_>> {
        let online_now = self.online_devices();
        keys.iter()
            .map(|&k| self.device_record(k, &online_now))
            .collect()
    }

    /// Users with their devices (`/users`).
    pub(crate) fn user_records(&self, keys: &[u32]) -> Vec<UserRecord<'_>> {
        let online_now = self.online_devices();
        keys.iter()
            .map(|&u| {
                let user = &self.company.users[u as usize];
                let devices: Vec<DeviceRecord<'_>> = (0..user.devices.len() as u8)
                    .map(|d| self.device_record((u, d), &online_now))
                    .collect();
                let any_online = devices.iter().any(|d| d.connection_status == "ONLINE");
                UserRecord {
                    id: &user.id,
                    first_name: user.first,
                    last_name: user.last,
                    username: &user.user_name,
                    email: &user.email,
                    group_id: &self.inventory.group_ids[user.group],
                    status: user.account.status.as_str(),
                    auth_type: user.account.auth_type(),
                    role: user.account.role.as_str(),
                    devices,
                    connection_status: online(any_online),
                }
            })
            .collect()
    }

    /// User groups (`/user-groups`).
    pub(crate) fn group_records(&self, keys: &[usize]) -> Vec<GroupRecord<'_>> {
        keys.iter()
            .map(|&g| GroupRecord {
                id: &self.inventory.group_ids[g],
                name: GROUPS[g].name,
                vpn_region_ids: REGIONS.to_vec(),
                all_regions_included: true,
                internet_access: "SPLIT_TUNNEL_ON",
                max_device: MAX_DEVICES_PER_USER,
                connect_auth: GROUPS[g].connect_auth,
                system_subnets: ["100.96.0.0/11", "fd7a:115c:a1e0::/48"],
            })
            .collect()
    }

    /// Every connector as it is now, in the inventory's order (the catalog's network
    /// connectors, its host connectors, then generated sites).
    pub(crate) fn truth_connectors(&self) -> Vec<TruthConnector> {
        let inventory = &self.inventory;
        inventory
            .connectors
            .iter()
            .enumerate()
            .map(|(c, connector)| TruthConnector {
                id: connector.id.clone(),
                name: connector.name.clone(),
                kind: connector.kind,
                parent_id: inventory.parent_id(connector).to_owned(),
                parent_name: inventory.parent_name(connector).to_owned(),
                vpn_region: REGIONS[connector.region].to_owned(),
                status: self.connector_status(c),
                pinned: self.is_pinned(c),
            })
            .collect()
    }

    /// Every user (not the removed ones) with their devices as they are now, in the company's
    /// order.
    pub(crate) fn truth_users(&self) -> Vec<TruthUser> {
        let online_now = self.online_devices();
        self.company
            .users
            .iter()
            .enumerate()
            .filter(|(_, user)| !user.removed)
            .map(|(u, user)| {
                let devices: Vec<TruthDevice> = user
                    .devices
                    .iter()
                    .enumerate()
                    .map(|(d, device)| TruthDevice {
                        id: device.id.clone(),
                        name: device.name.clone(),
                        os: device.os_type.to_owned(),
                        connection_status: online(online_now.contains(&(u as u32, d as u8)))
                            .to_owned(),
                    })
                    .collect();
                let any_online = devices.iter().any(|d| d.connection_status == "ONLINE");
                TruthUser {
                    id: user.id.clone(),
                    user_name: user.user_name.clone(),
                    group: GROUPS[user.group].name.to_owned(),
                    status: user.account.status.as_str().to_owned(),
                    role: user.account.role.as_str().to_owned(),
                    auth_type: user.account.auth_type().to_owned(),
                    connection_status: online(any_online).to_owned(),
                    devices,
                }
            })
            .collect()
    }

    /// The states of the connectors now, counted.
    pub(crate) fn connectors_by_status(&self) -> Vec<(ConnectorStatus, u64)> {
        ConnectorStatus::ALL
            .iter()
            .map(|&status| {
                let n = (0..self.inventory.connectors.len())
                    .filter(|&c| self.connector_status(c) == status)
                    .count();
                (status, n as u64)
            })
            .collect()
    }
}

/// Every VPN region, in the catalog's order.
pub(crate) fn truth_regions() -> Vec<TruthRegion> {
    region_records()
        .into_iter()
        .map(|r| TruthRegion {
            id: r.id.to_owned(),
            name: r.region_name.to_owned(),
            country: r.country.to_owned(),
            country_iso: r.country_iso.to_owned(),
            continent: r.continent.to_owned(),
        })
        .collect()
}
