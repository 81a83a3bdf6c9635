//! The connectors, users and regions collectors against the simulated tenant: their metrics equal
//! the world's truth, and a change in the world (a connector going offline, a user added or
//! removed) reaches `/metrics` within one interval of its collector plus any rate-limit wait.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloudconnexa_sim::{self as sim, ConnectorStatus, RateLimit, SimConfig, Simulator};

use crate::helpers::{Exporter, Metrics, all_collectors_args, wait_for};

/// A simulator serving on a loopback port, and its URL.
async fn start_sim(config: SimConfig) -> (Simulator, String) {
    let sim = Simulator::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim::serve(listener, sim.clone(), std::future::pending()));
    (sim, url)
}

/// A small tenant whose connectors are often in trouble, on a generous rate limit.
fn tenant() -> SimConfig {
    SimConfig {
        users: 300,
        connector_issues_per_day: 6.0,
        connector_outages_per_day: 1.0,
        rate_limit: Some(RateLimit {
            burst: 50,
            replenish_rate: 5,
            replenish_time: Duration::from_secs(1),
        }),
        ..SimConfig::default()
    }
}

/// Every collector on, polling `url` at `interval` (the sessions every second).
async fn exporter(url: &str, interval: &str) -> Exporter {
    let args = all_collectors_args(url, interval);
    let exporter = Exporter::start(&args).await;
    exporter.wait_ready(Duration::from_secs(30)).await;
    exporter
}

/// The connectors' states as `/metrics` shows them: id -> the state whose series is 1.
fn connector_states(m: &Metrics) -> BTreeMap<String, String> {
    m.select("cloudconnexa_connector_status", &[])
        .filter(|s| s.value == 1.0)
        .map(|s| (s.labels["connector_id"].clone(), s.labels["status"].clone()))
        .collect()
}

/// `cloudconnexa_users` by its five labels, in the simulator's key order.
fn user_counts(m: &Metrics) -> BTreeMap<[String; 5], u64> {
    m.select("cloudconnexa_users", &[])
        .map(|s| {
            let l = |k: &str| s.labels[k].clone();
            (
                [
                    l("user_group"),
                    l("status"),
                    l("role"),
                    l("auth_type"),
                    l("connection_status"),
                ],
                s.value as u64,
            )
        })
        .collect()
}

#[tokio::test]
async fn inventory_metrics_equal_the_world() {
    let (sim, url) = start_sim(tenant()).await;
    // A still world: connectors, users and devices hold their state while the two are compared.
    sim.set_churn(false);
    let exporter = exporter(&url, "1s").await;
    let truth_users: BTreeMap<[String; 5], u64> = sim
        .user_counts()
        .into_iter()
        .map(|(k, n)| {
            (
                [k.group, k.status, k.role, k.auth_type, k.connection_status],
                n,
            )
        })
        .collect();
    let truth_connectors: BTreeMap<String, String> = sim
        .connectors()
        .into_iter()
        .map(|c| (c.id, c.status.as_str().to_owned()))
        .collect();
    let m = wait_for(
        "the inventory to match the world",
        Duration::from_secs(30),
        || async {
            let m = exporter.scrape().await;
            (connector_states(&m) == truth_connectors && user_counts(&m) == truth_users)
                .then_some(m)
        },
    )
    .await;
    // Every connector has its three states, names and region.
    assert_eq!(
        m.select("cloudconnexa_connector_status", &[]).count(),
        3 * truth_connectors.len()
    );
    for c in sim.connectors() {
        let (network, host) = match c.kind {
            sim::ConnectorKind::Network => (c.parent_name.as_str(), "none"),
            sim::ConnectorKind::Host => ("none", c.parent_name.as_str()),
        };
        let filter = [
            ("connector_id", c.id.as_str()),
            ("connector", c.name.as_str()),
            ("network", network),
            ("host", host),
            ("vpn_region", c.vpn_region.as_str()),
        ];
        assert_eq!(
            m.select("cloudconnexa_connector_status", &filter).count(),
            3,
            "{c:?}"
        );
    }
    for (key, n) in sim.device_counts() {
        let filter = [
            ("connection_status", key.connection_status.as_str()),
            ("os", key.os.as_str()),
        ];
        assert_eq!(m.sum("cloudconnexa_devices", &filter), n as f64, "{key:?}");
    }
    let regions = sim.regions();
    assert_eq!(
        m.select("cloudconnexa_vpn_region_info", &[]).count(),
        regions.len()
    );
    for r in regions {
        let filter = [
            ("vpn_region", r.id.as_str()),
            ("region_name", r.name.as_str()),
            ("country", r.country.as_str()),
            ("country_iso", r.country_iso.as_str()),
            ("continent", r.continent.as_str()),
        ];
        assert_eq!(m.sum("cloudconnexa_vpn_region_info", &filter), 1.0, "{r:?}");
    }
    assert_eq!(m.value("cloudconnexa_up"), Some(1.0));
    exporter.stop().await;
}

/// The bound on how long a change takes to show: one interval of the collector, the run itself,
/// and what the exporter waited for the rate limit meanwhile.
fn within(interval: Duration, waited: f64) -> Duration {
    interval + Duration::from_secs(2) + Duration::from_secs_f64(waited)
}

#[tokio::test]
async fn a_connector_set_offline_shows_within_one_connector_interval() {
    let (sim, url) = start_sim(tenant()).await;
    let interval = Duration::from_secs(3);
    let exporter = exporter(&url, "3s").await;
    let connector = sim
        .connectors()
        .into_iter()
        .find(|c| c.status == ConnectorStatus::Online)
        .expect("an online connector");
    let waited = |m: &Metrics| {
        m.value("cloudconnexa_rate_limit_wait_seconds_total")
            .unwrap_or(0.0)
    };
    for state in [ConnectorStatus::Offline, ConnectorStatus::Online] {
        let before = waited(&exporter.scrape().await);
        let set = Instant::now();
        sim.set_connector_status(&connector.id, Some(state))
            .expect("a known connector");
        let m = wait_for(
            "the new state on /metrics",
            Duration::from_secs(30),
            || async {
                let m = exporter.scrape().await;
                (connector_states(&m).get(&connector.id).map(String::as_str)
                    == Some(state.as_str()))
                .then_some(m)
            },
        )
        .await;
        let took = set.elapsed();
        let bound = within(interval, waited(&m) - before);
        assert!(
            took <= bound,
            "{} after {took:?}, more than {bound:?}",
            state.as_str()
        );
    }
    exporter.stop().await;
}

#[tokio::test]
async fn a_user_added_then_removed_shows_within_one_users_interval() {
    let (sim, url) = start_sim(tenant()).await;
    let interval = Duration::from_secs(3);
    let exporter = exporter(&url, "3s").await;
    // An added user is an active member with an internal account and one laptop, offline.
    let key = [
        ("user_group", "Sales"),
        ("status", "ACTIVE"),
        ("role", "MEMBER"),
        ("auth_type", "INTERNAL"),
        ("connection_status", "OFFLINE"),
    ];
    let count = |m: &Metrics| m.sum("cloudconnexa_users", &key);
    let devices = |m: &Metrics| m.sum("cloudconnexa_devices", &[]);
    let waited = |m: &Metrics| {
        m.value("cloudconnexa_rate_limit_wait_seconds_total")
            .unwrap_or(0.0)
    };
    let m = wait_for("the users counted", Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        (devices(&m) > 0.0).then_some(m)
    })
    .await;
    let (users_before, devices_before, waited_before) = (count(&m), devices(&m), waited(&m));

    let set = Instant::now();
    let id = sim.add_user("Sales").expect("a known group");
    let m = wait_for("the added user", Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        (count(&m) == users_before + 1.0).then_some(m)
    })
    .await;
    let bound = within(interval, waited(&m) - waited_before);
    assert!(
        set.elapsed() <= bound,
        "added after {:?}, more than {bound:?}",
        set.elapsed()
    );
    assert_eq!(devices(&m), devices_before + 1.0, "with its one device");

    let waited_before = waited(&m);
    let set = Instant::now();
    assert!(sim.remove_user(&id));
    let m = wait_for("the removed user", Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        (count(&m) == users_before).then_some(m)
    })
    .await;
    let bound = within(interval, waited(&m) - waited_before);
    assert!(
        set.elapsed() <= bound,
        "removed after {:?}, more than {bound:?}",
        set.elapsed()
    );
    exporter.stop().await;
}
