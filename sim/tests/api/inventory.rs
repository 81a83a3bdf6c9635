//! The inventory endpoints: networks, hosts and their connectors, users with their devices, user
//! groups, devices and regions. Every body is checked against the spec; the inventory is the one
//! the sessions name; pages follow `page` and `size` over lists that change between requests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudconnexa_sim::{ConnectorKind, ConnectorStatus, Faults, SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Running, iso, start, twins_and_a_stranger, unlimited};

/// The paged inventory endpoints.
const PAGED: [&str; 7] = [
    "/api/v1/networks",
    "/api/v1/hosts",
    "/api/v1/networks/connectors",
    "/api/v1/hosts/connectors",
    "/api/v1/users",
    "/api/v1/user-groups",
    "/api/v1/devices",
];

impl Running {
    /// `GET path_and_query`, answered 200 with what the spec says the path answers.
    async fn list(&self, path_and_query: &str, token: &str) -> Value {
        let answer = self.get(path_and_query, Some(token)).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{path_and_query}: {}",
            answer.body
        );
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body = answer.json();
        let path = path_and_query.split('?').next().unwrap_or_default();
        if let Err(e) = self.spec.validate_response(path, &body) {
            panic!("{path_and_query} does not follow the spec: {e}");
        }
        body
    }

    /// Every element of a paged listing, a page of `size` at a time, as a client following
    /// `totalPages` reads it.
    async fn everything(&self, path: &str, size: usize, token: &str) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut page = 0;
        loop {
            let body = self
                .list(&format!("{path}{separator}page={page}&size={size}"), token)
                .await;
            let content = body["content"].as_array().expect("content").clone();
            assert_eq!(body["page"], page);
            assert_eq!(body["size"], size);
            assert_eq!(body["numberOfElements"], content.len());
            all.extend(content);
            page += 1;
            if page >= body["totalPages"].as_u64().expect("totalPages") {
                return all;
            }
            assert!(page < 1_000, "{path}: too many pages");
        }
    }
}

/// The `id` of each element.
fn ids(elements: &[Value]) -> Vec<String> {
    elements
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Elements by id.
fn by_id(elements: &[Value]) -> BTreeMap<String, Value> {
    elements
        .iter()
        .map(|e| (e["id"].as_str().expect("id").to_owned(), e.clone()))
        .collect()
}

/// A Tuesday at 14:00 UTC: the American morning and the European afternoon.
fn busy() -> DateTime<Utc> {
    "2026-03-10T14:00:00Z".parse().expect("time")
}

async fn start_at(config: SimConfig, at: DateTime<Utc>) -> Running {
    crate::helpers::start_simulator(Simulator::starting_at(config, at)).await
}

#[tokio::test]
async fn every_inventory_answer_follows_the_spec() {
    let api = start_at(unlimited(), busy()).await;
    let token = api.token().await;
    for path in PAGED {
        let body = api.list(&format!("{path}?size=1000"), &token).await;
        let content = body["content"].as_array().expect("content");
        assert!(!content.is_empty(), "{path} lists something");
        assert_eq!(body["totalElements"], content.len(), "{path}: one page");
        assert_eq!(body["totalPages"], 1);
        // Every field the spec has a value set for carries one of its values, and none is empty.
        for element in content {
            for field in element.as_object().expect("object").keys() {
                assert!(
                    !element[field].is_null() && element[field] != "",
                    "{path}: {field} is empty in {element}"
                );
            }
        }
    }
    let regions = api.list("/api/v1/regions", &token).await;
    let regions = regions.as_array().expect("an unpaged array");
    assert_eq!(regions.len(), 9);
    for region in regions {
        for field in ["id", "continent", "country", "countryIso", "regionName"] {
            assert!(
                region[field].as_str().is_some_and(|v| !v.is_empty()),
                "{region}"
            );
        }
        assert_eq!(region["countryIso"].as_str().map(str::len), Some(2));
    }
    let truth = api.sim.regions();
    assert_eq!(
        ids(regions),
        truth.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
    );

    let connectors = api
        .list("/api/v1/networks/connectors?size=1000", &token)
        .await;
    for c in connectors["content"].as_array().expect("content") {
        assert_eq!(c["networkItemType"], "NETWORK");
        assert_eq!(c["tunnelingProtocol"], "OPENVPN");
    }
    let host_connectors = api.list("/api/v1/hosts/connectors?size=1000", &token).await;
    for c in host_connectors["content"].as_array().expect("content") {
        assert_eq!(c["networkItemType"], "HOST");
    }
    let users = api.everything("/api/v1/users", 1_000, &token).await;
    let statuses: BTreeSet<&str> = users.iter().filter_map(|u| u["status"].as_str()).collect();
    let roles: BTreeSet<&str> = users.iter().filter_map(|u| u["role"].as_str()).collect();
    let auth: BTreeSet<&str> = users
        .iter()
        .filter_map(|u| u["authType"].as_str())
        .collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["ACTIVE", "INVITED", "SUSPENDED", "SUSPENDED_IDP"])
    );
    assert_eq!(roles, BTreeSet::from(["ADMIN", "MEMBER", "OWNER"]));
    assert!(
        auth.contains("SAML") && auth.contains("INTERNAL"),
        "{auth:?}"
    );
}

#[tokio::test]
async fn the_inventory_is_the_one_the_sessions_name() {
    let api = start_at(unlimited(), busy()).await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let since = iso(api.sim.now() - chrono::Duration::hours(20));
    let (sessions, _) = api
        .all_pages(&format!("size=100&startDate={since}"), &token, 1_000)
        .await;
    assert!(sessions.len() > 500, "{} sessions", sessions.len());

    let networks = by_id(&api.everything("/api/v1/networks", 1_000, &token).await);
    let hosts = by_id(&api.everything("/api/v1/hosts", 1_000, &token).await);
    let connectors = by_id(
        &api.everything("/api/v1/networks/connectors", 1_000, &token)
            .await,
    );
    let host_connectors = by_id(
        &api.everything("/api/v1/hosts/connectors", 1_000, &token)
            .await,
    );
    let users = by_id(&api.everything("/api/v1/users", 1_000, &token).await);
    let devices = by_id(&api.everything("/api/v1/devices", 1_000, &token).await);
    let groups = by_id(&api.everything("/api/v1/user-groups", 1_000, &token).await);
    let regions: BTreeSet<String> = ids(api
        .list("/api/v1/regions", &token)
        .await
        .as_array()
        .expect("array"))
    .into_iter()
    .collect();

    let name = |map: &BTreeMap<String, Value>, id: &Value, field: &str| -> String {
        let id = id.as_str().expect("an id");
        let object = map.get(id).unwrap_or_else(|| panic!("{id} is not listed"));
        object[field].as_str().expect("a name").to_owned()
    };
    let mut online = BTreeSet::new();
    for s in &sessions {
        assert_eq!(name(&networks, &s["networkId"], "name"), s["networkName"]);
        assert_eq!(name(&hosts, &s["hostId"], "name"), s["hostName"]);
        assert_eq!(
            name(&connectors, &s["connectorId"], "name"),
            s["connectorName"]
        );
        assert_eq!(
            connectors[s["connectorId"].as_str().unwrap_or("")]["networkItemId"],
            s["networkId"],
            "the session's connector belongs to its network"
        );
        assert_eq!(name(&users, &s["userId"], "username"), s["userName"]);
        assert_eq!(name(&users, &s["userId"], "email"), s["email"]);
        assert_eq!(name(&devices, &s["deviceId"], "name"), s["deviceName"]);
        let device = &devices[s["deviceId"].as_str().unwrap_or("")];
        assert_eq!(device["userId"], s["userId"]);
        assert_eq!(device["platform"]["os"], s["osType"]);
        assert_eq!(device["platform"]["version"], s["osVersion"]);
        assert_eq!(device["clientUUID"], s["clientUUID"]);
        assert_eq!(device["ipV4Address"], s["tunnelIpV4"]);
        let user = &users[s["userId"].as_str().unwrap_or("")];
        assert_eq!(name(&groups, &user["groupId"], "name"), s["userGroup"]);
        assert_eq!(user["status"], "ACTIVE", "only active users connect");
        assert!(regions.contains(s["region"].as_str().unwrap_or("")));
        if s["status"] == "ACTIVE" {
            online.insert(s["deviceId"].as_str().unwrap_or("").to_owned());
        }
    }
    // Devices are online while they have an active session, and users while a device is.
    assert!(online.len() > 50, "{} devices online", online.len());
    for (id, device) in &devices {
        let expected = if online.contains(id) {
            "ONLINE"
        } else {
            "OFFLINE"
        };
        assert_eq!(device["connectionStatus"], expected, "{device}");
    }
    let mut embedded = BTreeMap::new();
    for user in users.values() {
        let own = user["devices"].as_array().expect("devices");
        assert!(!own.is_empty(), "every user has a device");
        let any_online = own.iter().any(|d| d["connectionStatus"] == "ONLINE");
        let expected = if any_online { "ONLINE" } else { "OFFLINE" };
        assert_eq!(user["connectionStatus"], expected);
        for device in own {
            assert_eq!(device["userId"], user["id"]);
            embedded.insert(
                device["id"].as_str().unwrap_or("").to_owned(),
                device.clone(),
            );
        }
    }
    assert_eq!(embedded, devices, "/users embeds what /devices lists");
    // Networks and hosts embed their connectors, and those are the connectors listed.
    let mut nested = BTreeMap::new();
    for (owner, list) in [(&networks, &connectors), (&hosts, &host_connectors)] {
        for (id, object) in owner {
            for c in object["connectors"].as_array().expect("connectors") {
                assert_eq!(&c["networkItemId"], id);
                nested.insert(c["id"].as_str().unwrap_or("").to_owned(), c.clone());
            }
        }
        for (id, c) in list {
            assert!(owner.contains_key(c["networkItemId"].as_str().unwrap_or("")));
            assert!(
                regions.contains(c["vpnRegionId"].as_str().unwrap_or("")),
                "{id}"
            );
        }
    }
    let listed: BTreeMap<String, Value> = connectors.into_iter().chain(host_connectors).collect();
    assert_eq!(nested, listed);
    assert!(
        hosts
            .values()
            .all(|h| h["connectors"].as_array().map(Vec::len) == Some(1))
    );
    let truth = api.sim.connectors();
    assert_eq!(truth.len(), listed.len());
    for c in &truth {
        assert_eq!(listed[&c.id]["connectionStatus"], c.status.as_str());
        assert_eq!(listed[&c.id]["vpnRegionId"], c.vpn_region);
    }
    let users_truth = api.sim.users_truth();
    assert_eq!(users_truth.len(), users.len());
    for u in &users_truth {
        assert_eq!(users[&u.id]["connectionStatus"], u.connection_status);
        assert_eq!(users[&u.id]["status"], u.status);
    }
    let counted: u64 = api.sim.device_counts().values().sum();
    assert_eq!(counted as usize, devices.len());
}

#[tokio::test]
async fn pages_follow_page_and_size() {
    let api = start(unlimited()).await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let users = api.sim.users_truth().len();
    let first = api.list("/api/v1/users", &token).await;
    assert_eq!(first["page"], 0, "page 0 by default");
    assert_eq!(first["size"], 10, "10 by default");
    assert_eq!(first["numberOfElements"], 10);
    assert_eq!(first["totalElements"], users);
    assert_eq!(first["totalPages"], users.div_ceil(10));

    let listed = ids(&api.everything("/api/v1/users", 7, &token).await);
    assert_eq!(listed.len(), users);
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "ordered by id, each once"
    );
    let last = users.div_ceil(7) - 1;
    let tail = api
        .list(&format!("/api/v1/users?page={last}&size=7"), &token)
        .await;
    assert_eq!(tail["numberOfElements"], users - 7 * last);
    let beyond = api
        .list(&format!("/api/v1/users?page={}&size=7", last + 1), &token)
        .await;
    assert_eq!(beyond["content"], Value::Array(Vec::new()));
    assert_eq!(beyond["totalElements"], users);

    // Filters: a network's connectors, a host's, a user's devices; an unknown id gives nothing.
    let networks = api.everything("/api/v1/networks", 3, &token).await;
    for network in &networks {
        let own = api
            .list(
                &format!(
                    "/api/v1/networks/connectors?size=1000&networkId={}",
                    network["id"].as_str().unwrap_or("")
                ),
                &token,
            )
            .await;
        let same = |v: &Value| by_id(v.as_array().expect("connectors"));
        assert_eq!(same(&own["content"]), same(&network["connectors"]));
    }
    let host = &api.list("/api/v1/hosts?size=1", &token).await["content"][0];
    let own = api
        .list(
            &format!(
                "/api/v1/hosts/connectors?hostId={}",
                host["id"].as_str().unwrap_or("")
            ),
            &token,
        )
        .await;
    assert_eq!(
        by_id(own["content"].as_array().expect("content")),
        by_id(host["connectors"].as_array().expect("connectors"))
    );
    let user = &api.list("/api/v1/users?size=1", &token).await["content"][0];
    let own = api
        .list(
            &format!(
                "/api/v1/devices?size=1000&userId={}",
                user["id"].as_str().unwrap_or("")
            ),
            &token,
        )
        .await;
    assert_eq!(
        by_id(own["content"].as_array().expect("content")),
        by_id(user["devices"].as_array().expect("devices"))
    );
    for path in [
        "/api/v1/networks/connectors?networkId=nothing",
        "/api/v1/hosts/connectors?hostId=nothing",
        "/api/v1/devices?userId=nothing",
    ] {
        let body = api.list(path, &token).await;
        assert_eq!(body["totalElements"], 0, "{path}");
        assert_eq!(body["totalPages"], 0, "{path}");
    }
}

#[tokio::test]
async fn malformed_paging_gets_error_responses() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let mut refused = 0;
    for path in PAGED {
        for (query, param) in [
            ("page=-1", "page"),
            ("page=two", "page"),
            ("page=2147483648", "page"),
            ("size=0", "size"),
            ("size=1001", "size"),
            ("size=1.5", "size"),
        ] {
            api.expect_bad_request(&format!("{path}?{query}"), &token, param)
                .await;
            refused += 1;
        }
        let both = api
            .expect_bad_request(&format!("{path}?page=-1&size=0"), &token, "page")
            .await;
        assert!(
            both["errorDetails"]["size"].is_array(),
            "every problem: {both}"
        );
        refused += 1;
        for ok in [
            "page=0&size=1",
            "size=1000",
            "page=100000&size=1000",
            "page=&size=",
        ] {
            api.list(&format!("{path}?{ok}"), &token).await;
        }
    }
    assert_eq!(api.sim.stats().malformed, refused);
    // The regions are not paged: paging parameters mean nothing to them.
    api.list("/api/v1/regions?page=-1&size=0", &token).await;
}

#[tokio::test]
async fn a_user_added_or_removed_between_two_pages_shifts_the_later_ones() {
    let api = start(unlimited()).await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let page = |n: usize| {
        let api = &api;
        let token = &token;
        async move {
            let body = api
                .list(&format!("/api/v1/users?page={n}&size=50"), token)
                .await;
            ids(body["content"].as_array().expect("content"))
        }
    };
    // Added before the end of page 0: the last user of page 0 comes again on page 1.
    let first = page(0).await;
    let boundary = first.last().cloned().expect("a full page");
    let mut added = Vec::new();
    loop {
        let id = api.sim.add_user("Sales").expect("a group");
        let earlier = id < boundary;
        added.push(id);
        if earlier {
            break;
        }
        assert!(added.len() < 100, "no new id sorts before {boundary}");
    }
    let second = page(1).await;
    assert_eq!(second[0], boundary, "returned twice");

    // Removed from page 0: the first user of page 1 moves to page 0 and is skipped.
    let first = page(0).await;
    let second = page(1).await;
    assert!(api.sim.remove_user(&first[0]));
    let shifted = page(1).await;
    assert_eq!(shifted[..49], second[1..]);
    assert!(
        !first.contains(&second[0]) && !shifted.contains(&second[0]),
        "skipped"
    );

    // Added users are listed with their device, which never connects.
    let users = by_id(&api.everything("/api/v1/users", 1_000, &token).await);
    for id in &added {
        let user = &users[id];
        assert_eq!(user["status"], "ACTIVE");
        assert_eq!(user["role"], "MEMBER");
        assert_eq!(user["authType"], "INTERNAL");
        assert_eq!(user["connectionStatus"], "OFFLINE");
        let devices = user["devices"].as_array().expect("devices");
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0]["connectionStatus"], "OFFLINE");
    }
    assert!(!users.contains_key(&first[0]), "the removed user is gone");
    let sales = api
        .everything("/api/v1/user-groups", 1_000, &token)
        .await
        .into_iter()
        .find(|g| g["name"] == "Sales")
        .expect("a Sales group");
    assert_eq!(users[&added[0]]["groupId"], sales["id"]);
}

#[tokio::test]
async fn pinned_connector_states_are_listed() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let truth = api.sim.connectors();
    let network = truth
        .iter()
        .find(|c| c.kind == ConnectorKind::Network)
        .expect("a network connector");
    let host = truth
        .iter()
        .find(|c| c.kind == ConnectorKind::Host)
        .expect("a host connector");
    for (connector, status) in [
        (network, ConnectorStatus::Offline),
        (host, ConnectorStatus::OnlineWithIssues),
    ] {
        api.sim
            .set_connector_status(&connector.id, Some(status))
            .expect("a connector");
        let (list, filter, parents) = match connector.kind {
            ConnectorKind::Network => (
                "/api/v1/networks/connectors",
                "networkId",
                "/api/v1/networks",
            ),
            ConnectorKind::Host => ("/api/v1/hosts/connectors", "hostId", "/api/v1/hosts"),
        };
        let own = api
            .list(
                &format!("{list}?{filter}={}&size=1000", connector.parent_id),
                &token,
            )
            .await;
        let listed = own["content"]
            .as_array()
            .expect("content")
            .iter()
            .find(|c| c["id"] == connector.id.as_str())
            .cloned()
            .expect("listed");
        assert_eq!(listed["connectionStatus"], status.as_str());
        let parent =
            by_id(&api.everything(parents, 1_000, &token).await)[&connector.parent_id].clone();
        assert!(
            parent["connectors"]
                .as_array()
                .expect("connectors")
                .iter()
                .any(|c| c["id"] == connector.id.as_str()
                    && c["connectionStatus"] == status.as_str()),
            "{parent}"
        );
        let now = api.sim.connectors();
        let pinned = now.iter().find(|c| c.id == connector.id).expect("there");
        assert!(pinned.pinned);
        api.sim
            .set_connector_status(&connector.id, None)
            .expect("a connector");
        let now = api.sim.connectors();
        assert!(!now.iter().any(|c| c.pinned));
    }
    assert!(api.sim.set_connector_status("nothing", None).is_err());
}

/// Two simulators with the same seed and start show the same connector states at the same
/// moments, however often they are asked; another seed shows others.
#[tokio::test(start_paused = true)]
async fn connector_states_are_the_same_for_a_seed() {
    let start: DateTime<Utc> = "2025-03-04T09:30:00Z".parse().expect("time");
    let (one, two, other) = twins_and_a_stranger(start);
    let states = |sim: &Simulator| -> Vec<ConnectorStatus> {
        sim.connectors().into_iter().map(|c| c.status).collect()
    };
    let (mut troubled, mut differ) = (0, false);
    for step in 0..288 {
        let mine = states(&one);
        if step % 3 == 0 {
            assert_eq!(mine, states(&two), "step {step}");
        }
        differ |= mine != states(&other);
        troubled += mine
            .iter()
            .filter(|s| **s != ConnectorStatus::Online)
            .count();
        tokio::time::advance(Duration::from_secs(300)).await;
    }
    assert_eq!(states(&one), states(&two));
    assert!(differ, "another seed, other states");
    assert!(troubled > 0, "a day has some trouble");
}

#[tokio::test]
async fn the_rate_limit_bucket_is_shared_with_sessions() {
    let api = start(SimConfig::default()).await;
    let token = api.token().await;
    let paths = [
        "/api/v1/sessions?size=1",
        "/api/v1/users?size=1",
        "/api/v1/networks",
        "/api/v1/regions",
        "/api/v1/devices",
    ];
    let mut remaining = Vec::new();
    for i in 0..19 {
        let answer = api.get(paths[i % paths.len()], Some(&token)).await;
        assert_eq!(answer.status, StatusCode::OK, "request {i}");
        remaining.push(answer.header("x-ratelimit-remaining").map(str::to_owned));
    }
    let expected: Vec<Option<String>> = (0..19).rev().map(|n| Some(n.to_string())).collect();
    assert_eq!(remaining, expected, "one bucket for every endpoint");
    for path in paths {
        let answer = api.get(path, Some(&token)).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(answer.body.is_empty());
    }
    assert_eq!(api.sim.stats().too_many_requests, paths.len() as u64);
}

#[tokio::test]
async fn the_inventory_is_v1_only_and_needs_a_token() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    for path in PAGED.iter().copied().chain(["/api/v1/regions"]) {
        assert_eq!(
            api.get(path, None).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        assert_eq!(
            api.get(path, Some("made-up")).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let beta = path.replace("/v1/", "/beta/");
        let answer = api.get(&beta, Some(&token)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{beta}");
        assert_eq!(answer.json()["path"], beta.as_str());
    }
}

#[tokio::test]
async fn faults_reach_the_inventory_but_not_its_pages() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let users = "/api/v1/users?size=100";
    api.sim.set_faults(Faults {
        rate_5xx: 1.0,
        ..Faults::default()
    });
    assert!(api.get(users, Some(&token)).await.status.is_server_error());
    api.expect_bad_request("/api/v1/users?size=0", &token, "size")
        .await;
    api.sim.set_faults(Faults {
        rate_429: 1.0,
        ..Faults::default()
    });
    let answer = api.get("/api/v1/regions", Some(&token)).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "")
    );
    api.sim.set_faults(Faults {
        rate_spurious_401: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        api.get("/api/v1/devices", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    api.sim.set_faults(Faults {
        rate_truncated: 1.0,
        ..Faults::default()
    });
    let answer = api.get("/api/v1/networks", Some(&token)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&answer.body).is_err());
    api.sim.set_faults(Faults {
        revoke_credentials: true,
        ..Faults::default()
    });
    assert_eq!(
        api.get("/api/v1/hosts", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    api.sim.set_faults(Faults {
        rate_duplicates: 1.0,
        repeat_cursor: true,
        ..Faults::default()
    });
    let listed = ids(&api.everything("/api/v1/users", 100, &token).await);
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "cursor faults are the sessions' own"
    );
    assert_eq!(listed.len(), api.sim.users_truth().len());
}

#[tokio::test]
async fn the_reference_tenant_has_its_size() {
    let config = SimConfig {
        users: 2_000,
        devices: Some(5_000),
        connectors: 50,
        ..SimConfig::steady(2_000, 10.0)
    };
    config.validate().expect("valid");
    let api = start(SimConfig {
        rate_limit: None,
        ..config
    })
    .await;
    let token = api.token().await;
    let users = api.list("/api/v1/users?size=1000", &token).await;
    assert_eq!(users["totalElements"], 2_000);
    assert_eq!(users["totalPages"], 2);
    let devices = api.list("/api/v1/devices?size=1000", &token).await;
    assert_eq!(devices["totalElements"], 5_000);
    let networks = api
        .list("/api/v1/networks/connectors?size=1000", &token)
        .await;
    let hosts = api.list("/api/v1/hosts/connectors?size=1000", &token).await;
    let connectors = networks["totalElements"].as_u64().unwrap_or(0)
        + hosts["totalElements"].as_u64().unwrap_or(0);
    assert_eq!(connectors, 50);
    let online = api
        .sim
        .device_counts()
        .iter()
        .filter(|(k, _)| k.connection_status == "ONLINE")
        .map(|(_, n)| n)
        .sum::<u64>();
    assert!(
        online > 1_000,
        "{online} devices online with 2,000 sessions"
    );
    assert_eq!(api.sim.summary().active_total, 2_000);
}

/// The demo shows connectors, users and devices at once, and at most moments something that
/// is not `ONLINE`.
#[tokio::test(start_paused = true)]
async fn the_demo_shows_the_inventory_at_once() {
    let start: DateTime<Utc> = "2026-03-14T03:00:00Z".parse().expect("time");
    let demo = Simulator::starting_at(SimConfig::demo(), start);
    let summary = demo.summary();
    assert!(summary.users_by_status.values().sum::<u64>() >= 5_000);
    assert!(summary.devices_by_connection_status["ONLINE"] > 0);
    assert!(summary.devices_by_connection_status["OFFLINE"] > 0);
    assert_eq!(
        summary.connectors_by_status.values().sum::<u64>(),
        u64::from(cloudconnexa_sim::CATALOG_CONNECTORS)
    );
    let mut troubled = 0;
    for _ in 0..48 {
        let summary = demo.summary();
        let online = summary.connectors_by_status["ONLINE"];
        troubled += usize::from(online < u64::from(cloudconnexa_sim::CATALOG_CONNECTORS));
        tokio::time::advance(Duration::from_secs(1_800)).await;
    }
    assert!(
        troubled >= 30,
        "{troubled} of 48 moments show a troubled connector"
    );
}
