//! The regions collector: the VPN region catalogue, one unpaged request, for
//! `cloudconnexa_vpn_region_info` (names, countries and continents to join on `vpn_region`).

use std::sync::Arc;

use super::{Collect, CollectorName, RunReport};
use crate::metrics::{Metrics, RegionInfo};
use crate::upstream::Endpoint;
use crate::upstream::client::{ApiClient, Priority};
use crate::upstream::error::UpstreamError;
use crate::upstream::inventory::Inventory;
use crate::upstream::records::Region;

/// The regions collector.
pub struct Regions {
    client: Arc<ApiClient>,
    metrics: Arc<Metrics>,
}

impl Regions {
    /// A collector asking `client`, publishing to `metrics`.
    pub fn new(client: Arc<ApiClient>, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics }
    }
}

impl Collect for Regions {
    fn name(&self) -> CollectorName {
        CollectorName::Regions
    }

    fn expected_requests(&self) -> u32 {
        1
    }

    async fn collect(&mut self) -> Result<RunReport, UpstreamError> {
        let regions: Inventory<Region> = self
            .client
            .list_unpaged(Endpoint::Regions, "regions", Priority::Low)
            .await?;
        if regions.skipped > 0 {
            tracing::warn!(
                collector = CollectorName::Regions.as_str(),
                skipped = regions.skipped,
                "regions without an id were skipped"
            );
        }
        let info: Vec<RegionInfo> = regions
            .items
            .into_iter()
            .map(|r| RegionInfo {
                vpn_region: r.id,
                region_name: r.name,
                country: r.country,
                country_iso: r.country_iso,
                continent: r.continent,
            })
            .collect();
        let summary = format!("{} VPN regions", info.len());
        self.metrics.publish_regions(info);
        Ok(RunReport {
            requests: regions.pages,
            summary,
        })
    }
}
