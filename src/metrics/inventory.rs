//! The inventory families: `cloudconnexa_connector_status`, `cloudconnexa_users`,
//! `cloudconnexa_devices` and `cloudconnexa_vpn_region_info`, built at encoding time from what
//! the connectors, users and regions collectors last published.
//!
//! A collector that has not published (disabled, or before its first successful run) has no
//! series; one that fails keeps its last publication, so its series keep their last values; a
//! successful run replaces the whole publication, so what the API no longer lists disappears.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use super::{Metrics, Shared, family, label_pair, sample};

/// The states `cloudconnexa_connector_status` always shows for each connector, so that a query
/// for `status="OFFLINE"` finds a 0 rather than nothing while a connector is online.
pub const CONNECTOR_STATES: [&str; 3] = ["ONLINE", "OFFLINE", "ONLINE_WITH_ISSUES"];

/// One connector, as `cloudconnexa_connector_status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnectorState {
    /// `connector_id`.
    pub id: String,
    /// `connector`: its name.
    pub name: String,
    /// `network`: the parent network's name, `none` for a host connector.
    pub network: String,
    /// `host`: the parent host's name, `none` for a network connector.
    pub host: String,
    /// `vpn_region`: its `vpnRegionId`.
    pub vpn_region: String,
    /// Its `connectionStatus`; a state outside [`CONNECTOR_STATES`] gets a series of its own.
    pub status: String,
}

/// Users of one label set of `cloudconnexa_users`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UserCount {
    /// `user_group`: the name of the user's group.
    pub user_group: String,
    /// `status`.
    pub status: String,
    /// `role`.
    pub role: String,
    /// `auth_type`.
    pub auth_type: String,
    /// `connection_status`.
    pub connection_status: String,
    /// How many users.
    pub count: u64,
}

/// Devices of one label set of `cloudconnexa_devices`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceCount {
    /// `connection_status`.
    pub connection_status: String,
    /// `os`: `platform.os`.
    pub os: String,
    /// How many devices.
    pub count: u64,
}

/// One VPN region, as `cloudconnexa_vpn_region_info` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RegionInfo {
    /// `vpn_region`: its id, as sessions and connectors name it.
    pub vpn_region: String,
    /// `region_name`.
    pub region_name: String,
    /// `country`.
    pub country: String,
    /// `country_iso`.
    pub country_iso: String,
    /// `continent`.
    pub continent: String,
}

/// The users collector's publication: users and devices, counted.
#[derive(Debug, Clone)]
struct Population {
    users: Arc<[UserCount]>,
    devices: Arc<[DeviceCount]>,
}

/// What the inventory collectors last published; `None` until they first did.
#[derive(Debug, Default)]
pub(super) struct Published {
    connectors: Option<Arc<[ConnectorState]>>,
    users: Option<Population>,
    regions: Option<Arc<[RegionInfo]>>,
}

impl Metrics {
    fn update_inventory(&self, change: impl FnOnce(&mut Published)) {
        change(
            &mut self
                .shared
                .inventory
                .write()
                .unwrap_or_else(|e| e.into_inner()),
        );
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces the connectors.
    pub fn publish_connectors(&self, connectors: Vec<ConnectorState>) {
        self.update_inventory(|p| p.connectors = Some(connectors.into()));
    }

    /// Replaces the user and device counts.
    pub fn publish_users(&self, users: Vec<UserCount>, devices: Vec<DeviceCount>) {
        self.update_inventory(|p| {
            p.users = Some(Population {
                users: users.into(),
                devices: devices.into(),
            });
        });
    }

    /// Replaces the VPN regions.
    pub fn publish_regions(&self, regions: Vec<RegionInfo>) {
        self.update_inventory(|p| p.regions = Some(regions.into()));
    }
}

const CONNECTOR_STATUS: (&str, &str) = (
    "cloudconnexa_connector_status",
    "Connection state of each network and host connector: 1 for its current connectionStatus, 0 \
     for the other states (from the connectors collector's last successful run).",
);
const USERS: (&str, &str) = (
    "cloudconnexa_users",
    "Users of the tenant by group, status, role, authentication type and connection status \
     (from the users collector's last successful run).",
);
const DEVICES: (&str, &str) = (
    "cloudconnexa_devices",
    "Devices of the tenant's users by connection status and operating system (from the users \
     collector's last successful run).",
);
const REGION_INFO: (&str, &str) = (
    "cloudconnexa_vpn_region_info",
    "The VPN regions of the tenant, always 1, for joins on vpn_region (from the regions \
     collector's last successful run).",
);

/// Builds the inventory families from [`Published`].
pub(super) struct InventoryCollector {
    descs: Vec<Desc>,
    shared: Arc<Shared>,
}

impl InventoryCollector {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        let labels = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let descs = [
            (
                CONNECTOR_STATUS,
                labels(&[
                    "connector_id",
                    "connector",
                    "network",
                    "host",
                    "vpn_region",
                    "status",
                ]),
            ),
            (
                USERS,
                labels(&[
                    "user_group",
                    "status",
                    "role",
                    "auth_type",
                    "connection_status",
                ]),
            ),
            (DEVICES, labels(&["connection_status", "os"])),
            (
                REGION_INFO,
                labels(&[
                    "vpn_region",
                    "region_name",
                    "country",
                    "country_iso",
                    "continent",
                ]),
            ),
        ]
        .into_iter()
        .map(|((name, help), labels)| {
            Desc::new(name.into(), help.into(), labels, Default::default()).expect("valid desc")
        })
        .collect();
        Self { descs, shared }
    }
}

fn gauge_family(
    (name, help): (&str, &str),
    series: impl Iterator<Item = (Vec<(&'static str, String)>, f64)>,
) -> MetricFamily {
    let metrics = series
        .map(|(labels, value)| {
            let labels = labels
                .iter()
                .map(|(n, v)| label_pair((n, v.as_str())))
                .collect();
            sample(labels, MetricType::GAUGE, value)
        })
        .collect();
    family(name, help, MetricType::GAUGE, metrics)
}

fn connector_series(
    c: &ConnectorState,
) -> impl Iterator<Item = (Vec<(&'static str, String)>, f64)> {
    let extra = (!CONNECTOR_STATES.contains(&c.status.as_str())).then_some(c.status.as_str());
    CONNECTOR_STATES.into_iter().chain(extra).map(move |state| {
        let labels = vec![
            ("connector_id", c.id.clone()),
            ("connector", c.name.clone()),
            ("network", c.network.clone()),
            ("host", c.host.clone()),
            ("vpn_region", c.vpn_region.clone()),
            ("status", state.to_owned()),
        ];
        (labels, f64::from(u8::from(state == c.status)))
    })
}

impl Collector for InventoryCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let published = {
            let p = self
                .shared
                .inventory
                .read()
                .unwrap_or_else(|e| e.into_inner());
            (p.connectors.clone(), p.users.clone(), p.regions.clone())
        };
        let (connectors, users, regions) = published;
        let mut out = Vec::new();
        if let Some(connectors) = connectors {
            out.push(gauge_family(
                CONNECTOR_STATUS,
                connectors.iter().flat_map(connector_series),
            ));
        }
        if let Some(Population { users, devices }) = users {
            out.push(gauge_family(
                USERS,
                users.iter().map(|u| {
                    let labels = vec![
                        ("user_group", u.user_group.clone()),
                        ("status", u.status.clone()),
                        ("role", u.role.clone()),
                        ("auth_type", u.auth_type.clone()),
                        ("connection_status", u.connection_status.clone()),
                    ];
                    (labels, u.count as f64)
                }),
            ));
            out.push(gauge_family(
                DEVICES,
                devices.iter().map(|d| {
                    let labels = vec![
                        ("connection_status", d.connection_status.clone()),
                        ("os", d.os.clone()),
                    ];
                    (labels, d.count as f64)
                }),
            ));
        }
        if let Some(regions) = regions {
            out.push(gauge_family(
                REGION_INFO,
                regions.iter().map(|r| {
                    let labels = vec![
                        ("vpn_region", r.vpn_region.clone()),
                        ("region_name", r.region_name.clone()),
                        ("country", r.country.clone()),
                        ("country_iso", r.country_iso.clone()),
                        ("continent", r.continent.clone()),
                    ];
                    (labels, 1.0)
                }),
            ));
        }
        out
    }
}
