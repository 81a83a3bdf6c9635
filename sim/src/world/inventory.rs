//! The tenant's objects besides users and sessions: networks with their routes, hosts, their
//! connectors, user groups and VPN regions, with ids drawn from the seed; and the state of each
//! connector over time.
//!
//! # Networks and hosts
//! The catalog's networks are the company's sites: each routes a subnet through its network
//! connectors. Every host of the catalog is a CloudConnexa *host* as well: a server that runs a
//! host connector of its own and sits in its network's site. A session to a host names the host,
//! and the network and network connector that carried it, so everything a session names is
//! listed by `/networks`, `/hosts` and their connectors. Connectors beyond the catalog's (see
//! `SimConfig::connectors`) belong to generated sites, `site-0001` and on: a network each, with
//! one connector in a region drawn from the seed. No session names them.
//!
//! # Connector states
//! A connector is `ONLINE` but for spells: `OFFLINE` while its region is out (the world's region
//! outages), `OFFLINE` on its own now and then (rare; minutes to an hour), and
//! `ONLINE_WITH_ISSUES` more often and for shorter. The spells of a connector's UTC day (on the
//! churn clock) are drawn from a stream of their own, so its state is a pure function of the seed
//! and the time, however the world is advanced. A connector's state does not touch the sessions
//! it carries: the API gives a session's connector by name only, and nobody states what the real
//! service does to sessions when a connector has trouble. Tests can pin a state.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{DAY, MINUTE, World};
use crate::catalog::{NETWORKS, REGIONS};
use crate::sampling::{poisson, rng_for, tag, uuid};

/// A connector's `connectionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectorStatus {
    /// Connected and well.
    Online,
    /// Not connected.
    Offline,
    /// Connected, with trouble.
    OnlineWithIssues,
}

impl ConnectorStatus {
    /// Every state, in the spec's order.
    pub const ALL: [ConnectorStatus; 3] = [
        ConnectorStatus::Online,
        ConnectorStatus::Offline,
        ConnectorStatus::OnlineWithIssues,
    ];

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorStatus::Online => "ONLINE",
            ConnectorStatus::Offline => "OFFLINE",
            ConnectorStatus::OnlineWithIssues => "ONLINE_WITH_ISSUES",
        }
    }
}

/// What a connector connects: a network (`/networks/connectors`) or a host
/// (`/hosts/connectors`); the API's `networkItemType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConnectorKind {
    /// A network connector.
    Network,
    /// A host connector.
    Host,
}

impl ConnectorKind {
    /// The API's name (`networkItemType`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Network => "NETWORK",
            ConnectorKind::Host => "HOST",
        }
    }
}

/// A network of the tenant.
pub(crate) struct Network {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The id of its one route.
    pub(crate) route_id: String,
    /// The subnet it routes.
    pub(crate) subnet: String,
    /// Indexes into [`Inventory::connectors`].
    pub(crate) connectors: Vec<usize>,
}

/// A host of the tenant.
pub(crate) struct Host {
    pub(crate) id: String,
    pub(crate) name: &'static str,
    pub(crate) domain: String,
    /// Indexes into [`Inventory::connectors`].
    pub(crate) connectors: Vec<usize>,
}

/// A network or host connector.
pub(crate) struct Connector {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: ConnectorKind,
    /// Index into [`Inventory::networks`] or [`Inventory::hosts`], by `kind`.
    pub(crate) parent: usize,
    /// Index into [`REGIONS`].
    pub(crate) region: usize,
}

/// Ids of the catalog's objects, drawn with the company (see `Company::generate`).
pub(crate) struct CatalogIds {
    /// One per network of the catalog.
    pub(crate) networks: Vec<String>,
    /// Per network, one per host.
    pub(crate) hosts: Vec<Vec<String>>,
    /// Per network, one per network connector.
    pub(crate) connectors: Vec<Vec<String>>,
}

/// Everything the inventory endpoints list, but users and devices.
pub(crate) struct Inventory {
    pub(crate) networks: Vec<Network>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) connectors: Vec<Connector>,
    /// One per user group of the catalog.
    pub(crate) group_ids: Vec<String>,
    /// Per catalog network, the index into `hosts` of each of its hosts.
    host_of: Vec<Vec<usize>>,
    /// Per catalog network, the index into `connectors` of each of its network connectors.
    connector_of: Vec<Vec<usize>>,
    /// States pinned by tests, by index into `connectors`.
    pinned: BTreeMap<usize, ConnectorStatus>,
}

impl Inventory {
    /// The catalog's objects with `ids`, host connectors, and generated sites up to `connectors`
    /// connectors in all.
    pub(crate) fn new(seed: u64, ids: CatalogIds, connectors: u32, groups: usize) -> Inventory {
        let mut inventory = Inventory {
            networks: Vec::new(),
            hosts: Vec::new(),
            connectors: Vec::new(),
            group_ids: Vec::new(),
            host_of: Vec::new(),
            connector_of: Vec::new(),
            pinned: BTreeMap::new(),
        };
        let mut routes = rng_for(&[seed, tag::INVENTORY, 0]);
        for (n, (network, id)) in NETWORKS.iter().zip(ids.networks).enumerate() {
            let mut own = Vec::new();
            for (&(name, region), id) in network.connectors.iter().zip(&ids.connectors[n]) {
                own.push(inventory.connectors.len());
                inventory.connectors.push(Connector {
                    id: id.clone(),
                    name: name.to_owned(),
                    kind: ConnectorKind::Network,
                    parent: n,
                    region,
                });
            }
            inventory.connector_of.push(own.clone());
            inventory.networks.push(Network {
                id,
                name: network.name.to_owned(),
                route_id: uuid(&mut routes),
                subnet: format!("10.{}.0.0/16", 10 + n),
                connectors: own,
            });
        }
        // Each host runs its own connector, in the region of one of its network's connectors.
        let mut host_ids = rng_for(&[seed, tag::INVENTORY, 1]);
        for (n, network) in NETWORKS.iter().enumerate() {
            let mut own = Vec::new();
            for (k, (&name, id)) in network.hosts.iter().zip(&ids.hosts[n]).enumerate() {
                let host = inventory.hosts.len();
                let (_, region) = network.connectors[k % network.connectors.len()];
                let connector = inventory.connectors.len();
                inventory.connectors.push(Connector {
                    id: uuid(&mut host_ids),
                    name: format!("{name}-connector"),
                    kind: ConnectorKind::Host,
                    parent: host,
                    region,
                });
                inventory.hosts.push(Host {
                    id: id.clone(),
                    name,
                    domain: format!("{name}.{}.corp.example.com", network.name),
                    connectors: vec![connector],
                });
                own.push(host);
            }
            inventory.host_of.push(own);
        }
        let mut site = 0;
        while inventory.connectors.len() < connectors as usize {
            site += 1;
            let mut rng = rng_for(&[seed, tag::INVENTORY, 2, site]);
            let name = format!("site-{site:04}");
            let network = inventory.networks.len();
            let connector = inventory.connectors.len();
            inventory.connectors.push(Connector {
                id: uuid(&mut rng),
                name: format!("{name}-connector"),
                kind: ConnectorKind::Network,
                parent: network,
                region: rng.random_range(0..REGIONS.len()),
            });
            inventory.networks.push(Network {
                id: uuid(&mut rng),
                name,
                route_id: uuid(&mut rng),
                subnet: format!("10.{}.{}.0/24", 64 + site / 256, site % 256),
                connectors: vec![connector],
            });
        }
        let mut group_ids = rng_for(&[seed, tag::INVENTORY, 3]);
        inventory.group_ids = (0..groups).map(|_| uuid(&mut group_ids)).collect();
        inventory
    }

    /// The host `host` of catalog network `network`, as an index into `hosts`.
    pub(crate) fn host_index(&self, network: usize, host: usize) -> usize {
        self.host_of[network][host]
    }

    /// The network connector `connector` of catalog network `network`, as an index into
    /// `connectors`.
    pub(crate) fn connector_index(&self, network: usize, connector: usize) -> usize {
        self.connector_of[network][connector]
    }

    /// The connector with `id`.
    pub(crate) fn connector_by_id(&self, id: &str) -> Option<usize> {
        self.connectors.iter().position(|c| c.id == id)
    }

    /// The name of a connector's network or host.
    pub(crate) fn parent_name(&self, connector: &Connector) -> &str {
        match connector.kind {
            ConnectorKind::Network => &self.networks[connector.parent].name,
            ConnectorKind::Host => self.hosts[connector.parent].name,
        }
    }

    /// The id of a connector's network or host (`networkItemId`).
    pub(crate) fn parent_id(&self, connector: &Connector) -> &str {
        match connector.kind {
            ConnectorKind::Network => &self.networks[connector.parent].id,
            ConnectorKind::Host => &self.hosts[connector.parent].id,
        }
    }
}

/// The kinds of spell a connector has on its own.
#[derive(Debug, Clone, Copy)]
enum Spell {
    /// `OFFLINE`: minutes to an hour.
    Offline,
    /// `ONLINE_WITH_ISSUES`: a few minutes.
    Issues,
}

/// The spells of `kind` that `connector` has on UTC day `day` (churn clock), `per_day` expected:
/// a pure function of its arguments.
fn spells(seed: u64, connector: usize, day: i64, kind: Spell, per_day: f64) -> Vec<(i64, i64)> {
    if !(per_day.is_finite() && per_day > 0.0) {
        return Vec::new();
    }
    let mut rng = rng_for(&[
        seed,
        tag::CONNECTOR_STATE,
        connector as u64,
        day as u64,
        kind as u64,
    ]);
    (0..poisson(&mut rng, per_day))
        .map(|_| {
            let start = day * DAY + rng.random_range(0..DAY);
            let length = match kind {
                // Log-uniform from 3 minutes to an hour: mostly short, now and then long.
                Spell::Offline => {
                    let (low, high) = ((3.0 * MINUTE as f64).ln(), (60.0 * MINUTE as f64).ln());
                    rng.random_range(low..high).exp() as i64
                }
                Spell::Issues => rng.random_range(2 * MINUTE..20 * MINUTE),
            };
            (start, start + length)
        })
        .collect()
}

/// Whether `connector` is in a spell of `kind` at churn time `t` (spells last under a day, so
/// only the day of `t` and the one before can hold one).
fn in_spell(seed: u64, connector: usize, t: i64, kind: Spell, per_day: f64) -> bool {
    let day = t.div_euclid(DAY);
    [day, day - 1].into_iter().any(|d| {
        spells(seed, connector, d, kind, per_day)
            .iter()
            .any(|&(start, end)| start <= t && t < end)
    })
}

impl World {
    /// The state of connector `c` now: pinned, or as scheduled.
    pub(crate) fn connector_status(&self, c: usize) -> ConnectorStatus {
        match self.inventory.pinned.get(&c) {
            Some(&status) => status,
            None => self.scheduled_status(c, self.churn_now),
        }
    }

    /// The state connector `c` has at churn time `t` by the world's schedule: `OFFLINE` in an
    /// outage of its region or a spell of its own, else `ONLINE_WITH_ISSUES` in a spell of
    /// those, else `ONLINE`.
    pub(crate) fn scheduled_status(&self, c: usize, t: i64) -> ConnectorStatus {
        let seed = self.params.seed;
        let region = self.inventory.connectors[c].region;
        // A steady world has no outages, whatever the outage rate says.
        let region_out = self.params.steady.is_none() && self.outage_at(region, t).is_some();
        if region_out || in_spell(seed, c, t, Spell::Offline, self.params.connector_outages) {
            ConnectorStatus::Offline
        } else if in_spell(seed, c, t, Spell::Issues, self.params.connector_issues) {
            ConnectorStatus::OnlineWithIssues
        } else {
            ConnectorStatus::Online
        }
    }

    /// Pins the state of the connector with `id` (or lets it follow its schedule again, with
    /// `None`); false if there is no such connector.
    pub(crate) fn pin_connector(&mut self, id: &str, status: Option<ConnectorStatus>) -> bool {
        let Some(c) = self.inventory.connector_by_id(id) else {
            return false;
        };
        match status {
            Some(status) => self.inventory.pinned.insert(c, status),
            None => self.inventory.pinned.remove(&c),
        };
        true
    }

    /// Whether connector `c`'s state is pinned.
    pub(crate) fn is_pinned(&self, c: usize) -> bool {
        self.inventory.pinned.contains_key(&c)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::CATALOG_CONNECTORS;
    use crate::world::tests::{MONDAY, params};
    use crate::world::{HOUR, SECOND, WorldParams};

    /// The state of every connector, sampled every `step` over `span` from `start`.
    fn states(world: &World, start: i64, span: i64, step: i64) -> Vec<Vec<ConnectorStatus>> {
        (0..span / step)
            .map(|i| {
                (0..world.inventory.connectors.len())
                    .map(|c| world.scheduled_status(c, start + i * step))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_inventory_holds_the_catalog_and_generated_sites() {
        let world = World::new(params(50), MONDAY);
        let inventory = &world.inventory;
        assert_eq!(inventory.connectors.len(), CATALOG_CONNECTORS as usize);
        assert_eq!(inventory.networks.len(), NETWORKS.len());
        let hosts: usize = NETWORKS.iter().map(|n| n.hosts.len()).sum();
        assert_eq!(inventory.hosts.len(), hosts);
        for (h, host) in inventory.hosts.iter().enumerate() {
            let [c] = host.connectors[..] else {
                panic!("{} has one connector", host.name)
            };
            let connector = &inventory.connectors[c];
            assert_eq!((connector.kind, connector.parent), (ConnectorKind::Host, h));
        }
        let ids: BTreeSet<&str> = inventory
            .networks
            .iter()
            .map(|n| n.id.as_str())
            .chain(inventory.hosts.iter().map(|h| h.id.as_str()))
            .chain(inventory.connectors.iter().map(|c| c.id.as_str()))
            .chain(inventory.networks.iter().map(|n| n.route_id.as_str()))
            .chain(inventory.group_ids.iter().map(String::as_str))
            .collect();
        let count = NETWORKS.len() * 2 + hosts + CATALOG_CONNECTORS as usize + 7;
        assert_eq!(ids.len(), count, "every id is unique");

        let bigger = World::new(
            WorldParams {
                connectors: 50,
                ..params(50)
            },
            MONDAY,
        );
        let inventory = &bigger.inventory;
        assert_eq!(inventory.connectors.len(), 50);
        assert_eq!(inventory.networks.len(), NETWORKS.len() + 12);
        assert_eq!(inventory.networks[NETWORKS.len()].name, "site-0001");
        assert!(
            inventory.connectors[..CATALOG_CONNECTORS as usize]
                .iter()
                .zip(&world.inventory.connectors)
                .all(|(a, b)| a.id == b.id),
            "generated sites change nothing of the catalog's"
        );
    }

    #[test]
    fn connectors_are_mostly_online_with_short_spells_of_trouble() {
        let world = World::new(
            WorldParams {
                outages_per_day: 0.0,
                ..params(50)
            },
            MONDAY,
        );
        let sampled = states(&world, MONDAY, 20 * DAY, 2 * MINUTE);
        let total = sampled.len() * sampled[0].len();
        let share = |status| {
            sampled.iter().flatten().filter(|s| **s == status).count() as f64 / total as f64
        };
        let (offline, issues) = (
            share(ConnectorStatus::Offline),
            share(ConnectorStatus::OnlineWithIssues),
        );
        // Expected: 0.02 spells a day of about 19 minutes; 0.5 of 11 minutes.
        assert!((0.0001..0.001).contains(&offline), "offline {offline}");
        assert!((0.002..0.006).contains(&issues), "with issues {issues}");
        // Runs of one state, per connector: issues come more often than outages.
        let mut runs = BTreeMap::<ConnectorStatus, usize>::new();
        for c in 0..sampled[0].len() {
            for w in sampled.windows(2) {
                if w[1][c] != w[0][c] && w[1][c] != ConnectorStatus::Online {
                    *runs.entry(w[1][c]).or_default() += 1;
                }
            }
        }
        let (offline_runs, issue_runs) = (
            runs.get(&ConnectorStatus::Offline).copied().unwrap_or(0),
            runs.get(&ConnectorStatus::OnlineWithIssues)
                .copied()
                .unwrap_or(0),
        );
        assert!(offline_runs >= 5, "{offline_runs} outages of their own");
        assert!(
            issue_runs > 10 * offline_runs,
            "{issue_runs} spells of issues"
        );
    }

    #[test]
    fn a_region_outage_takes_its_connectors_offline() {
        let world = World::new(
            WorldParams {
                outages_per_day: 9.0,
                connector_issues: 0.0,
                connector_outages: 0.0,
                ..params(50)
            },
            MONDAY,
        );
        let (start, until, region) = (MONDAY..MONDAY + 3 * DAY)
            .step_by(HOUR as usize)
            .flat_map(|t| (0..REGIONS.len()).map(move |r| (t, r)))
            .find_map(|(t, r)| {
                let day = t.div_euclid(DAY);
                world
                    .outage_window(r, day)
                    .map(|(start, until)| (start, until, r))
            })
            .expect("an outage in three days");
        let inside = (start + until) / 2;
        for (c, connector) in world.inventory.connectors.iter().enumerate() {
            let during = world.scheduled_status(c, inside);
            let expected = if connector.region == region {
                ConnectorStatus::Offline
            } else {
                world.scheduled_status(c, until + SECOND)
            };
            assert_eq!(during, expected, "{} during the outage", connector.name);
        }
        let hit = world
            .inventory
            .connectors
            .iter()
            .filter(|c| c.region == region)
            .count();
        assert!(hit >= 1);
        for c in 0..world.inventory.connectors.len() {
            assert_eq!(
                world.scheduled_status(c, until + SECOND),
                ConnectorStatus::Online,
                "back after the outage"
            );
        }
    }

    #[test]
    fn connector_states_depend_on_the_seed_and_time_only() {
        let start = MONDAY + 9 * HOUR;
        let mut jump = World::new(params(50), start);
        let mut steps = World::new(params(50), start);
        jump.advance_to(start + DAY);
        let mut t = start;
        while t < start + DAY {
            t += 13 * MINUTE + 7;
            steps.advance_to(t.min(start + DAY));
        }
        let now = |w: &World| -> Vec<ConnectorStatus> {
            (0..w.inventory.connectors.len())
                .map(|c| w.connector_status(c))
                .collect()
        };
        assert_eq!(now(&jump), now(&steps));
        assert_eq!(
            states(&jump, start, DAY, 5 * MINUTE),
            states(&steps, start, DAY, 5 * MINUTE)
        );
        let other = World::new(
            WorldParams {
                seed: 2,
                ..params(50)
            },
            start,
        );
        assert_ne!(
            states(&jump, start, DAY, 5 * MINUTE),
            states(&other, start, DAY, 5 * MINUTE)
        );
    }

    #[test]
    fn a_pinned_state_holds_until_cleared() {
        let mut world = World::new(params(50), MONDAY);
        let id = world.inventory.connectors[3].id.clone();
        assert!(world.pin_connector(&id, Some(ConnectorStatus::Offline)));
        world.advance_to(MONDAY + 2 * DAY);
        assert_eq!(world.connector_status(3), ConnectorStatus::Offline);
        assert!(world.is_pinned(3));
        assert!(world.pin_connector(&id, None));
        assert_eq!(
            world.connector_status(3),
            world.scheduled_status(3, world.churn_now)
        );
        assert!(!world.pin_connector("no-such-connector", None));
    }
}
