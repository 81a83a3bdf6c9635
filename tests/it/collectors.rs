//! The collectors beside sessions, against a staged fake: a refused endpoint fails its collector
//! alone, paging over lists that move, and inventory series that follow the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::fake::{Answer, Fake, token};
use crate::helpers::{Exporter, all_collectors_args, wait_for};
use crate::process::Running;

/// Flags pointing at `base` with every collector on, each every second.
fn all_collectors(base: &str) -> Vec<String> {
    all_collectors_args(base, "1s")
}

fn page(items: &str, total_pages: u32) -> Answer {
    Answer::json(
        200,
        format!(
            r#"{{"content":[{items}],"totalElements":0,"totalPages":{total_pages},"page":0,"size":1000}}"#
        ),
    )
}

const NETWORKS: &str = r#"{"id":"n1","name":"hq","connectors":[
    {"id":"c1","name":"hq-a","vpnRegionId":"us-east-1","connectionStatus":"ONLINE"},
    {"id":"c2","name":"hq-b","vpnRegionId":"eu-central-1","connectionStatus":"OFFLINE"}]}"#;
const HOSTS: &str = r#"{"id":"h1","name":"bastion","connectors":[
    {"id":"c3","name":"bastion-c","vpnRegionId":"us-east-1","connectionStatus":"ONLINE_WITH_ISSUES"}]}"#;
const REGIONS: &str = r#"[{"id":"us-east-1","regionName":"N. Virginia","country":"United States",
    "countryIso":"US","continent":"North America"}]"#;

/// The fake's answer to the endpoints every test here serves the same way.
fn common(path: &str) -> Option<Answer> {
    Some(if path.ends_with("/oauth/token") {
        token("t", 3600)
    } else if path.ends_with("/sessions") {
        Answer::json(
            200,
            r#"{"sessions":[{"id":"s1","status":"ACTIVE","region":"us-east-1"}]}"#,
        )
    } else if path.ends_with("/networks") {
        page(NETWORKS, 1)
    } else if path.ends_with("/hosts") {
        page(HOSTS, 1)
    } else if path.ends_with("/regions") {
        Answer::json(200, REGIONS)
    } else {
        return None;
    })
}

/// A credential refused the user listings: the users collector fails alone, says why in one log
/// line, retries with a doubling wait, and holds neither readiness nor the other collectors.
#[tokio::test]
async fn a_refused_endpoint_fails_its_collector_alone() {
    let fake = Fake::start(|req, _| {
        common(&req.path).unwrap_or_else(|| Answer::json(403, r#"{"error":"forbidden"}"#))
    })
    .await;
    let args = all_collectors(&fake.url());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let running = Running::spawn(&argv);
    let m = running
        .scrape_until("the users collector failing and the others up", |m| {
            m.sum(
                "cloudconnexa_poll_errors_total",
                &[("collector", "users"), ("kind", "auth")],
            ) >= 2.0
                && m.sum("cloudconnexa_collector_up", &[("collector", "connectors")]) == 1.0
                && m.sum("cloudconnexa_collector_up", &[("collector", "regions")]) == 1.0
                && m.sum("cloudconnexa_collector_up", &[("collector", "sessions")]) == 1.0
        })
        .await;
    assert_eq!(
        m.sum("cloudconnexa_collector_up", &[("collector", "users")]),
        0.0
    );
    assert_eq!(
        m.value("cloudconnexa_up"),
        Some(0.0),
        "not every collector succeeds"
    );
    assert_eq!(
        m.sum(
            "cloudconnexa_poll_errors_total",
            &[("collector", "connectors")]
        ),
        0.0
    );
    assert_eq!(m.select("cloudconnexa_connector_status", &[]).count(), 9);
    assert_eq!(
        m.select("cloudconnexa_users", &[]).count(),
        0,
        "never published"
    );
    assert_eq!(
        running.get("/readyz").await.as_deref(),
        Some("ready\n"),
        "a failing collector does not hold readiness"
    );
    let landing = running.get("/").await.unwrap_or_default();
    assert!(landing.contains("<td>users</td><td>failing"), "{landing}");

    // Retried with a doubling wait: 1, 2, 4, 8 s after the first failures, not every second.
    let before = fake
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/user-groups"))
        .count();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = fake
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/user-groups"))
        .count()
        - before;
    assert!(during <= 2, "{during} user-group requests in 6 s");

    let logs = running.stop_with("-TERM").await;
    let refusal = logs
        .lines()
        .find(|l| l.contains("collector=users") && l.contains("level=error"))
        .unwrap_or_else(|| panic!("a log line about the users collector: {logs}"));
    assert!(
        refusal.contains("endpoint=user_groups")
            && refusal.contains("status=403")
            && refusal.contains("credentials may lack the permission"),
        "{refusal}"
    );
}

/// Offset pages over a list that moves: an item repeated on the next page is counted once, an
/// item without an id is skipped, an empty page ends the listing early, and a page count that
/// never ends is a pagination error of the collector, not of the exporter.
#[tokio::test]
async fn inventory_paging_copes_with_lists_that_move() {
    let endless = Arc::new(AtomicBool::new(false));
    let flag = endless.clone();
    let fake = Fake::start(move |req, _| {
        if req.path.ends_with("/networks") {
            let page_no = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .unwrap_or("0");
            assert!(req.query.contains("size=1000"), "{}", req.query);
            if flag.load(Ordering::Relaxed) {
                return page(NETWORKS, 1_000_000);
            }
            return match page_no {
                "0" => page(&format!(r#"{NETWORKS},{{"name":"no id"}}"#), 3),
                // The list moved: n1 again, then n2.
                "1" => page(
                    &format!(
                        r#"{NETWORKS},{{"id":"n2","name":"lab","connectors":[{{"id":"c9","connectionStatus":"ONLINE"}}]}}"#
                    ),
                    3,
                ),
                // It shrank: the third page is empty.
                _ => page("", 3),
            };
        }
        common(&req.path).unwrap_or_else(|| Answer::json(404, ""))
    })
    .await;
    let mut args = all_collectors(&fake.url());
    args.extend(["--no-collector.users".into()]);
    let exporter = Exporter::start(&args).await;
    let m = wait_for("connectors listed", Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        (m.sum("cloudconnexa_collector_up", &[("collector", "connectors")]) == 1.0).then_some(m)
    })
    .await;
    let ids: std::collections::BTreeSet<String> = m
        .select("cloudconnexa_connector_status", &[])
        .map(|s| s.labels["connector_id"].clone())
        .collect();
    assert_eq!(ids, ["c1", "c2", "c3", "c9"].map(String::from).into());
    assert_eq!(
        m.sum(
            "cloudconnexa_connector_status",
            &[("connector_id", "c9"), ("status", "ONLINE")]
        ),
        1.0
    );
    assert_eq!(
        m.sum("cloudconnexa_connector_status", &[("connector", "none")]),
        1.0,
        "a connector without a name is called none, once per state: the ONLINE one is 1"
    );
    let network_pages = fake
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/networks"))
        .count();
    assert!(network_pages >= 3, "three pages a run");

    endless.store(true, Ordering::Relaxed);
    let m = wait_for("a pagination error", Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        (m.sum(
            "cloudconnexa_poll_errors_total",
            &[("collector", "connectors"), ("kind", "pagination")],
        ) >= 1.0)
            .then_some(m)
    })
    .await;
    assert_eq!(
        m.select("cloudconnexa_connector_status", &[]).count(),
        12,
        "a failing collector's series keep their last values"
    );
    assert_eq!(
        m.sum("cloudconnexa_collector_up", &[("collector", "sessions")]),
        1.0
    );
    exporter.stop().await;
}
