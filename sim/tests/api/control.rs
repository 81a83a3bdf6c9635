//! The control endpoints that steer the inventory: pinning a connector's state, adding and
//! removing users, and what the truth endpoints say of them.

use cloudconnexa_sim::{ConnectorKind, ConnectorStatus, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{start, unlimited};

#[tokio::test]
async fn a_connector_state_is_pinned_and_cleared_over_http() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let listed = api.get("/_sim/connectors", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed = listed.json();
    let connectors = listed.as_array().expect("an array");
    assert_eq!(connectors.len(), api.sim.connectors().len());
    let host = connectors
        .iter()
        .find(|c| c["kind"] == "HOST")
        .expect("a host connector");
    let id = host["id"].as_str().expect("id").to_owned();
    let parent = host["parent_id"].as_str().expect("parent").to_owned();

    let pinned = api
        .put(
            &format!("/_sim/connectors/{id}"),
            r#"{"connection_status": "OFFLINE"}"#,
        )
        .await;
    assert_eq!(pinned.status, StatusCode::OK, "{}", pinned.body);
    assert_eq!(pinned.json()["connection_status"], "OFFLINE");
    assert_eq!(pinned.json()["pinned"], true);
    let seen = api
        .get(
            &format!("/api/v1/hosts/connectors?hostId={parent}"),
            Some(&token),
        )
        .await
        .json();
    assert_eq!(seen["content"][0]["connectionStatus"], "OFFLINE");
    let truth = api.sim.connectors();
    let now = truth.iter().find(|c| c.id == id).expect("there");
    assert_eq!(
        (now.kind, now.status, now.pinned),
        (ConnectorKind::Host, ConnectorStatus::Offline, true)
    );

    let cleared = api
        .put(
            &format!("/_sim/connectors/{id}"),
            r#"{"connection_status": null}"#,
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.json()["pinned"], false);
    assert!(!api.sim.connectors().iter().any(|c| c.pinned));

    let unknown = api
        .put(
            "/_sim/connectors/nothing",
            r#"{"connection_status": "ONLINE"}"#,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    for bad in [
        "{}",
        r#"{"connection_status": "DOWN"}"#,
        r#"{"connection_status": "offline"}"#,
        r#"{"connection_status": "OFFLINE", "for": "ever"}"#,
        "OFFLINE",
    ] {
        let answer = api.put(&format!("/_sim/connectors/{id}"), bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            answer.json()["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    assert!(
        !api.sim.connectors().iter().any(|c| c.pinned),
        "a bad body changes nothing"
    );
}

#[tokio::test]
async fn users_are_added_and_removed_over_http() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let before = api.sim.users_truth().len();
    let added = api
        .send(Method::POST, "/_sim/users", r#"{"group": "Finance"}"#)
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let id = added.json()["id"].as_str().expect("an id").to_owned();
    let truth = api.sim.users_truth();
    assert_eq!(truth.len(), before + 1);
    let user = truth.iter().find(|u| u.id == id).expect("listed");
    assert_eq!(user.group, "Finance");
    assert_eq!(user.devices.len(), 1);
    let devices = api
        .get(&format!("/api/v1/devices?userId={id}"), Some(&token))
        .await
        .json();
    assert_eq!(devices["totalElements"], 1);
    assert_eq!(devices["content"][0]["connectionStatus"], "OFFLINE");

    let removed = api
        .send(Method::DELETE, &format!("/_sim/users/{id}"), "")
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(removed.body.is_empty());
    assert_eq!(api.sim.users_truth().len(), before);
    let devices = api
        .get(&format!("/api/v1/devices?userId={id}"), Some(&token))
        .await
        .json();
    assert_eq!(devices["totalElements"], 0);
    let again = api
        .send(Method::DELETE, &format!("/_sim/users/{id}"), "")
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    for bad in [
        r#"{"group": "Nobody"}"#,
        r#"{"group": "Sales", "role": "ADMIN"}"#,
        "{}",
        "Sales",
    ] {
        let answer = api.send(Method::POST, "/_sim/users", bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(api.sim.users_truth().len(), before);
    // Control requests are neither rate limited nor counted.
    assert!(
        api.sim
            .stats()
            .responses
            .iter()
            .all(|(path, _, _)| !path.starts_with("/_sim"))
    );
}

#[tokio::test]
async fn the_truth_summary_counts_connectors_users_and_devices() {
    let api = start(SimConfig::default()).await;
    api.sim.set_churn(false);
    let summary = api.get("/_sim/truth/summary", None).await.json();
    let sum = |field: &str| -> u64 {
        summary[field]
            .as_object()
            .unwrap_or_else(|| panic!("{field}: {summary}"))
            .values()
            .filter_map(Value::as_u64)
            .sum()
    };
    assert_eq!(
        sum("connectors_by_status") as usize,
        api.sim.connectors().len()
    );
    let users = api.sim.users_truth();
    assert_eq!(sum("users_by_status") as usize, users.len());
    let devices: usize = users.iter().map(|u| u.devices.len()).sum();
    assert_eq!(sum("devices_by_connection_status") as usize, devices);
    let online = users
        .iter()
        .flat_map(|u| &u.devices)
        .filter(|d| d.connection_status == "ONLINE")
        .count();
    assert_eq!(summary["devices_by_connection_status"]["ONLINE"], online);
    assert!(summary["connectors_by_status"]["ONLINE_WITH_ISSUES"].is_u64());
}
