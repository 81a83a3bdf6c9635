//! The connectors collector: every network and host connector with its state, from the networks
//! and hosts listings (each embeds its connectors and gives them their parent's name), so the
//! whole tenant costs one request per 1,000 networks plus one per 1,000 hosts.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Collect, CollectorName, RunReport};
use crate::metrics::{ConnectorState, Metrics};
use crate::upstream::Endpoint;
use crate::upstream::client::{ApiClient, Priority};
use crate::upstream::error::UpstreamError;
use crate::upstream::inventory::{Inventory, MAX_PAGES};
use crate::upstream::records::{NONE, Site};

/// The connectors collector.
pub struct Connectors {
    client: Arc<ApiClient>,
    metrics: Arc<Metrics>,
}

impl Connectors {
    /// A collector asking `client`, publishing to `metrics`.
    pub fn new(client: Arc<ApiClient>, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics }
    }
}

impl Collect for Connectors {
    fn name(&self) -> CollectorName {
        CollectorName::Connectors
    }

    fn expected_requests(&self) -> u32 {
        2
    }

    async fn collect(&mut self) -> Result<RunReport, UpstreamError> {
        let networks: Inventory<Site> = self
            .client
            .list_pages(Endpoint::Networks, "networks", Priority::Low, MAX_PAGES)
            .await?;
        let hosts: Inventory<Site> = self
            .client
            .list_pages(Endpoint::Hosts, "hosts", Priority::Low, MAX_PAGES)
            .await?;
        let skipped = networks.skipped
            + hosts.skipped
            + networks
                .items
                .iter()
                .chain(&hosts.items)
                .map(|s| s.skipped_connectors)
                .sum::<usize>();
        if skipped > 0 {
            tracing::warn!(
                collector = CollectorName::Connectors.as_str(),
                skipped,
                "networks, hosts or connectors without an id were skipped"
            );
        }
        let states = connector_states(&networks.items, &hosts.items);
        let count = |status: &str| states.iter().filter(|c| c.status == status).count();
        let summary = format!(
            "{} connectors: {} online, {} offline, {} online with issues",
            states.len(),
            count("ONLINE"),
            count("OFFLINE"),
            count("ONLINE_WITH_ISSUES")
        );
        tracing::info!(
            collector = CollectorName::Connectors.as_str(),
            networks = networks.items.len(),
            hosts = hosts.items.len(),
            connectors = states.len(),
            offline = count("OFFLINE"),
            "connectors listed"
        );
        self.metrics.publish_connectors(states);
        Ok(RunReport {
            requests: networks.pages + hosts.pages,
            summary,
        })
    }
}

/// The connectors of `networks` and `hosts`, each once (a connector listed under two parents
/// keeps the first), named after their parent.
pub fn connector_states(networks: &[Site], hosts: &[Site]) -> Vec<ConnectorState> {
    let mut seen = HashSet::new();
    let parents = networks
        .iter()
        .map(|n| (n, (n.name.as_str(), NONE)))
        .chain(hosts.iter().map(|h| (h, (NONE, h.name.as_str()))));
    let mut states = Vec::new();
    for (site, (network, host)) in parents {
        for c in &site.connectors {
            if seen.insert(c.id.as_str()) {
                states.push(ConnectorState {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    network: network.to_owned(),
                    host: host.to_owned(),
                    vpn_region: c.vpn_region.clone(),
                    status: c.status.clone(),
                });
            }
        }
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::records::Connector;

    fn site(id: &str, name: &str, connectors: &[(&str, &str)]) -> Site {
        Site {
            id: id.into(),
            name: name.into(),
            connectors: connectors
                .iter()
                .map(|(id, status)| Connector {
                    id: (*id).into(),
                    name: format!("{id}-name"),
                    vpn_region: "us-east-1".into(),
                    status: (*status).into(),
                })
                .collect(),
            skipped_connectors: 0,
        }
    }

    #[test]
    fn connectors_are_named_after_their_network_or_host_once_each() {
        let networks = [
            site("n1", "hq", &[("c1", "ONLINE"), ("c2", "OFFLINE")]),
            site("n2", "lab", &[]),
        ];
        let hosts = [site(
            "h1",
            "bastion",
            &[("c3", "ONLINE_WITH_ISSUES"), ("c1", "ONLINE")],
        )];
        let states = connector_states(&networks, &hosts);
        let view: Vec<(&str, &str, &str, &str)> = states
            .iter()
            .map(|c| {
                (
                    c.id.as_str(),
                    c.network.as_str(),
                    c.host.as_str(),
                    c.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            view,
            [
                ("c1", "hq", NONE, "ONLINE"),
                ("c2", "hq", NONE, "OFFLINE"),
                ("c3", NONE, "bastion", "ONLINE_WITH_ISSUES"),
            ]
        );
        assert_eq!(states[0].name, "c1-name");
    }
}
