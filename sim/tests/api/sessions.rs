//! Tokens, the sessions endpoint (validation, paging, windows), the rate limit, faults and the
//! control endpoints, with every body checked against the vendor's spec.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudconnexa_sim::{Faults, SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{active_ids, ids, iso, start, twins_and_a_stranger, unlimited};

#[tokio::test]
async fn tokens_come_via_basic_auth_or_query_parameters() {
    let api = start(unlimited()).await;
    let basic = api.token().await;
    let by_query = api
        .post(
            "/api/beta/oauth/token?client_id=demo&client_secret=demo&grant_type=client_credentials",
            None,
        )
        .await;
    assert_eq!(by_query.status, StatusCode::OK, "{}", by_query.body);
    let body = by_query.json();
    api.spec
        .validate("OAuthResponse", &body)
        .expect("OAuthResponse");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["expires_in"], 43_199);
    let query_token = body["access_token"].as_str().expect("token");
    assert_ne!(basic, query_token, "tokens are random");
    assert!(basic.len() >= 32);

    let default_grant = api
        .post("/api/v1/oauth/token", Some(("demo", "demo")))
        .await;
    assert_eq!(
        default_grant.status,
        StatusCode::OK,
        "grant_type defaults to client_credentials"
    );

    for token in [basic.as_str(), query_token] {
        for version in ["v1", "beta"] {
            let answer = api
                .get(&format!("/api/{version}/sessions?size=1"), Some(token))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{version}: {}", answer.body);
        }
    }

    let wrong_grant = api
        .post(
            "/api/v1/oauth/token?grant_type=password",
            Some(("demo", "demo")),
        )
        .await;
    assert_eq!(wrong_grant.status, StatusCode::BAD_REQUEST);
    api.spec
        .validate("ErrorResponse", &wrong_grant.json())
        .expect("ErrorResponse");
    assert_eq!(api.sim.stats().malformed, 1);
}

#[tokio::test]
async fn bad_credentials_and_tokens_get_401() {
    let api = start(unlimited()).await;
    for (path, basic) in [
        ("/api/v1/oauth/token", Some(("demo", "wrong"))),
        ("/api/v1/oauth/token", Some(("someone", "demo"))),
        (
            "/api/v1/oauth/token?client_id=demo&client_secret=wrong",
            None,
        ),
        ("/api/v1/oauth/token?client_id=demo", None),
        ("/api/v1/oauth/token", None),
    ] {
        let answer = api.post(path, basic).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path} {basic:?}");
    }
    let missing = api.get("/api/v1/sessions?size=10", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    let made_up = api
        .get("/api/v1/sessions?size=10", Some("not-a-token"))
        .await;
    assert_eq!(made_up.status, StatusCode::UNAUTHORIZED);
    let token = api.token().await;
    assert_eq!(
        api.get("/api/v2/sessions?size=1", Some(&token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/api/v1/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/api/v1/unknown", Some(&token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/nothing", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/api/v1/oauth/token", None).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        api.sim.stats().malformed,
        0,
        "refusals of credentials are not malformed requests"
    );
}

#[tokio::test]
async fn tokens_expire() {
    let api = start(SimConfig {
        token_ttl: Duration::from_secs(1),
        ..unlimited()
    })
    .await;
    let token = api.token().await;
    assert_eq!(
        api.get("/api/v1/sessions?size=1", Some(&token))
            .await
            .status,
        StatusCode::OK
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = api
            .get("/api/v1/sessions?size=1", Some(&token))
            .await
            .status;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the token never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn active_listing_pages_through_every_active_session_once() {
    let api = start(SimConfig {
        users: 2_000,
        ..unlimited()
    })
    .await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let since = iso(api.sim.now() - chrono::Duration::days(7));
    let (sessions, pages) = api
        .all_pages(
            &format!("size=100&status=ACTIVE&startDate={since}"),
            &token,
            100,
        )
        .await;
    assert!(pages > 1, "a listing of several pages ({pages})");
    let listed = ids(&sessions);
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "no session twice while nothing changes"
    );
    assert!(sessions.iter().all(|s| s["status"] == "ACTIVE"));
    let truth = active_ids(&api.sim);
    assert_eq!(unique.into_iter().cloned().collect::<BTreeSet<_>>(), truth);
    assert_eq!(api.sim.summary().active_total as usize, listed.len());
}

#[tokio::test]
async fn sessions_look_like_the_real_ones() {
    let api = start(unlimited()).await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let since = iso(api.sim.now() - chrono::Duration::hours(12));
    let millis = |v: &Value| {
        let text = v.as_str().expect("a time");
        assert!(
            text.len() == 24 && text.ends_with('Z') && text.as_bytes()[19] == b'.',
            "ISO instant with milliseconds: {text}"
        );
    };
    for status in ["ACTIVE", "COMPLETED", "FAILED"] {
        let (sessions, _) = api
            .page(
                &format!("size=100&status={status}&startDate={since}"),
                &token,
            )
            .await;
        assert!(!sessions.is_empty(), "some {status} sessions");
        for s in &sessions {
            assert_eq!(s["status"], status);
            for field in [
                "id",
                "userName",
                "userId",
                "userGroup",
                "hostName",
                "hostId",
                "networkName",
                "networkId",
                "deviceName",
                "deviceId",
                "clientUUID",
                "osType",
                "osVersion",
                "connectorName",
                "connectorId",
                "region",
                "firstName",
                "lastName",
                "email",
                "protocol",
                "publicIp",
                "tunnelIpV4",
                "tunnelIpV6",
            ] {
                assert!(
                    s[field].as_str().is_some_and(|v| !v.is_empty()),
                    "{field} in {s}"
                );
            }
            millis(&s["sessionStartTime"]);
            assert!(s["bytesIn"].as_i64().is_some_and(|b| b > 0));
            assert!(s["bytesOut"].as_i64().is_some_and(|b| b > 0));
            let ended = status != "ACTIVE";
            for field in [
                "sessionEndTime",
                "sessionDurationSeconds",
                "disconnectReason",
                "disconnectReasonDescription",
            ] {
                assert_eq!(
                    s.get(field).is_some(),
                    ended,
                    "{field} only on ended sessions: {s}"
                );
            }
            if ended {
                millis(&s["sessionEndTime"]);
            }
        }
    }
}

#[tokio::test]
async fn malformed_requests_get_error_responses() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let now = api.sim.now();
    let days_ago = |d: i64| iso(now - chrono::Duration::days(d));
    let malformed = [
        ("/api/v1/sessions?size=101", "size"),
        ("/api/v1/sessions?size=0", "size"),
        ("/api/v1/sessions", "size"),
        ("/api/v1/sessions?size=ten", "size"),
        ("/api/v1/sessions?size=10&status=RUNNING", "status"),
        (
            "/api/v1/sessions?size=10&cursor=63527ce1d8e5811243db4902",
            "cursor",
        ),
        ("/api/v1/sessions?size=10&startDate=2024-13-01", "startDate"),
        ("/api/v1/sessions?size=10&endDate=now", "endDate"),
        (
            "/api/v1/sessions?size=10&returnOnlyNew=yes",
            "returnOnlyNew",
        ),
        ("/api/beta/sessions?size=101", "size"),
    ];
    for (query, param) in malformed {
        api.expect_bad_request(query, &token, param).await;
    }
    let history = [
        format!("/api/v1/sessions?size=10&startDate={}", days_ago(31)),
        format!("/api/beta/sessions?size=10&startDate={}", days_ago(8)),
    ];
    for query in &history {
        let body = api.expect_bad_request(query, &token, "startDate").await;
        assert_eq!(
            body["errorDetails"]["startDate"][0]["errorCode"],
            "HISTORY_LIMIT_EXCEEDED"
        );
    }
    for ok in [
        format!("/api/v1/sessions?size=10&startDate={}", days_ago(29)),
        format!("/api/beta/sessions?size=10&startDate={}", days_ago(6)),
        format!(
            "/api/v1/sessions?size=10&startDate={}&endDate={}",
            days_ago(1),
            days_ago(2)
        ),
    ] {
        assert_eq!(
            api.get(&ok, Some(&token)).await.status,
            StatusCode::OK,
            "{ok}"
        );
    }
    let stats = api.sim.stats();
    assert_eq!(
        stats.malformed,
        malformed.len() as u64,
        "history-window refusals are not malformed"
    );
    assert_eq!(
        stats.count_status(400),
        (malformed.len() + history.len()) as u64
    );
    let log = api.sim.recent_requests();
    assert_eq!(log.iter().filter(|r| r.malformed).count(), malformed.len());
    assert!(
        log.iter()
            .any(|r| r.query == "size=101" && r.status == 400 && r.malformed)
    );
}

#[tokio::test]
async fn faults_never_hide_a_bad_request() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    api.sim.set_faults(Faults {
        rate_5xx: 1.0,
        rate_429: 1.0,
        rate_spurious_401: 1.0,
        ..Faults::default()
    });
    api.expect_bad_request("/api/v1/sessions?size=0", &token, "size")
        .await;
    let failing = api.get("/api/v1/sessions?size=10", Some(&token)).await;
    assert!(failing.status.is_server_error(), "{}", failing.status);
}

#[tokio::test]
async fn more_than_the_burst_gets_429_with_an_empty_body() {
    let api = start(SimConfig::default()).await;
    let token = api.token().await;
    let mut statuses = Vec::new();
    let mut remaining = Vec::new();
    for _ in 0..24 {
        let answer = api.get("/api/v1/sessions?size=1", Some(&token)).await;
        assert_eq!(answer.header("x-ratelimit-burst-capacity"), Some("20"));
        assert_eq!(answer.header("x-ratelimit-replenish-rate"), Some("1"));
        assert_eq!(answer.header("x-ratelimit-replenish-time"), Some("15"));
        assert!(answer.header("retry-after").is_none());
        let left: u32 = answer
            .header("x-ratelimit-remaining")
            .and_then(|v| v.parse().ok())
            .expect("remaining");
        assert!(left < 20);
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(answer.body.is_empty(), "429 has no body: {:?}", answer.body);
            assert_eq!(left, 0);
        } else {
            assert_eq!(answer.status, StatusCode::OK);
        }
        statuses.push(answer.status);
        remaining.push(left);
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(refused >= 3, "{refused} refused of 25 requests");
    assert_eq!(
        remaining[0], 18,
        "the token request spent one, this one another"
    );
    assert!(remaining.windows(2).all(|w| w[1] <= w[0]), "{remaining:?}");
    assert_eq!(api.sim.stats().too_many_requests, refused as u64);
    // A wrong client id spends from another bucket than the configured client's.
    assert_eq!(
        api.post("/api/v1/oauth/token", Some(("other", "x")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn windows_select_by_creation_or_by_update() {
    let api = start(unlimited()).await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let now = api.sim.now();
    let (a, b) = (
        now - chrono::Duration::hours(5),
        now - chrono::Duration::hours(3),
    );
    let truth = api.sim.truth();
    let started_inside_ended_after = truth
        .iter()
        .find(|t| t.start >= a && t.start < b && t.end.is_some_and(|e| e >= b))
        .expect("a session started in the window and ended after it");
    let started_before_ended_inside = truth
        .iter()
        .find(|t| t.start < a && t.end.is_some_and(|e| e >= a && e < b))
        .expect("a session started before the window and ended in it");
    let window = format!("size=100&startDate={}&endDate={}", iso(a), iso(b));
    let (created, _) = api
        .all_pages(&format!("{window}&returnOnlyNew=true"), &token, 50)
        .await;
    let (updated, _) = api
        .all_pages(&format!("{window}&returnOnlyNew=false"), &token, 50)
        .await;
    let (default, _) = api.all_pages(&window, &token, 50).await;
    let (created, updated, default) = (ids(&created), ids(&updated), ids(&default));
    assert!(created.contains(&started_inside_ended_after.id));
    assert!(
        !updated.contains(&started_inside_ended_after.id),
        "its update (the end) is after the window"
    );
    assert!(
        updated.contains(&started_before_ended_inside.id),
        "its end falls in the window"
    );
    assert!(!created.contains(&started_before_ended_inside.id));
    assert_eq!(updated, default, "returnOnlyNew defaults to false");
    let expected_created = truth.iter().filter(|t| t.start >= a && t.start < b).count();
    let expected_updated = truth
        .iter()
        .filter(|t| t.updated >= a && t.updated < b)
        .count();
    assert_eq!(created.len(), expected_created);
    assert_eq!(updated.len(), expected_updated);
    let failed_ended_in_window = truth
        .iter()
        .filter(|t| t.failed && t.end.is_some_and(|e| e >= a && e < b))
        .count();
    let (failed, _) = api
        .all_pages(&format!("{window}&status=FAILED"), &token, 50)
        .await;
    assert_eq!(failed.len(), failed_ended_in_window);
}

#[tokio::test]
async fn paging_continues_after_the_last_session_while_the_world_moves() {
    let api = start(SimConfig {
        speed: 3_600.0,
        ..unlimited()
    })
    .await;
    let token = api.token().await;
    let since = iso(api.sim.now() - chrono::Duration::hours(6));
    let (sessions, _) = api
        .all_pages(
            &format!("size=20&startDate={since}&returnOnlyNew=true"),
            &token,
            10_000,
        )
        .await;
    let listed = ids(&sessions);
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "creation windows have no duplicates"
    );
    let times: Vec<DateTime<Utc>> = sessions
        .iter()
        .map(|s| {
            s["sessionStartTime"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("time")
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "pages follow creation order"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_and_start_give_the_same_world() {
    let start: DateTime<Utc> = "2025-03-04T09:30:00Z".parse().expect("time");
    let (one, two, other) = twins_and_a_stranger(start);
    let before = one.truth();
    assert!(before.len() > 500);
    assert_eq!(before, two.truth());
    assert_ne!(before, other.truth());
    tokio::time::advance(Duration::from_secs(3_600)).await;
    let after = one.truth();
    assert_ne!(before, after, "an hour later the world moved");
    assert_eq!(after, two.truth());
    assert_eq!(one.now(), start + chrono::Duration::hours(1));
}

#[tokio::test]
async fn the_server_clock_can_be_skewed() {
    let skew = chrono::Duration::minutes(5);
    let api = start(SimConfig {
        clock_skew: skew,
        ..unlimited()
    })
    .await;
    let token = api.token().await;
    let answer = api
        .get("/api/v1/sessions?size=100&status=ACTIVE", Some(&token))
        .await;
    let date =
        DateTime::parse_from_rfc2822(answer.header("date").expect("Date")).expect("RFC 7231 date");
    let offset = date.with_timezone(&Utc) - (Utc::now() + skew);
    assert!(
        offset.num_seconds().abs() <= 2,
        "Date is the skewed clock: off by {offset}"
    );
    let server_now = date.with_timezone(&Utc) + chrono::Duration::seconds(1);
    for s in answer.json()["sessions"].as_array().expect("sessions") {
        let started: DateTime<Utc> = s["sessionStartTime"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("time");
        assert!(
            started <= server_now,
            "sessions start on the server's clock"
        );
    }
    // The history window is measured on the server's clock, which is five minutes ahead: a
    // client that trusts its own clock needs a margin.
    let real_30_days = Utc::now() - chrono::Duration::days(30);
    let too_old = iso(real_30_days + chrono::Duration::seconds(10));
    let answer = api
        .get(
            &format!("/api/v1/sessions?size=1&startDate={too_old}"),
            Some(&token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let with_margin = iso(real_30_days + chrono::Duration::minutes(6));
    let answer = api
        .get(
            &format!("/api/v1/sessions?size=1&startDate={with_margin}"),
            Some(&token),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(api.get("/_sim/stats", None).await.header("date").is_some());
}

#[tokio::test]
async fn injected_faults_look_like_real_failures() {
    let api = start(unlimited()).await;
    let token = api.token().await;
    let session_page = "/api/v1/sessions?size=5";

    api.sim.set_faults(Faults {
        rate_5xx: 1.0,
        ..Faults::default()
    });
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let answer = api.get(session_page, Some(&token)).await;
        if answer.status == StatusCode::BAD_GATEWAY {
            assert!(answer.body.contains("<html>"));
        }
        seen.insert(answer.status.as_u16());
    }
    assert_eq!(seen, BTreeSet::from([500, 502, 503]));
    assert_eq!(
        api.post("/api/v1/oauth/token", Some(("demo", "demo")))
            .await
            .status
            .as_u16()
            / 100,
        5
    );

    api.sim.set_faults(Faults {
        rate_429: 1.0,
        ..Faults::default()
    });
    let answer = api.get(session_page, Some(&token)).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "")
    );

    api.sim.set_faults(Faults {
        rate_truncated: 1.0,
        ..Faults::default()
    });
    let answer = api.get(session_page, Some(&token)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        serde_json::from_str::<Value>(&answer.body).is_err(),
        "cut short: {}",
        answer.body
    );

    api.sim.set_faults(Faults {
        rate_spurious_401: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        api.get(session_page, Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );

    api.sim.set_faults(Faults {
        revoke_credentials: true,
        ..Faults::default()
    });
    assert_eq!(
        api.get(session_page, Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.post("/api/v1/oauth/token", Some(("demo", "demo")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    api.sim.set_faults(Faults {
        rate_slow: 1.0,
        slow_delay: Duration::from_millis(300),
        ..Faults::default()
    });
    let started = std::time::Instant::now();
    assert_eq!(
        api.get(session_page, Some(&token)).await.status,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(300));

    api.sim.set_faults(Faults {
        repeat_cursor: true,
        ..Faults::default()
    });
    let (_, first) = api.page("size=5", &token).await;
    let first = first.expect("a cursor");
    for _ in 0..3 {
        let (_, next) = api.page(&format!("size=5&cursor={first}"), &token).await;
        assert_eq!(
            next.as_deref(),
            Some(first.as_str()),
            "the same cursor forever"
        );
    }

    api.sim.set_faults(Faults::default());
    assert_eq!(
        api.get(session_page, Some(&token)).await.status,
        StatusCode::OK
    );
    assert_eq!(api.sim.stats().malformed, 0);
}

#[tokio::test]
async fn duplicated_pages_still_cover_every_session() {
    let api = start(SimConfig {
        users: 1_000,
        faults: Faults {
            rate_duplicates: 1.0,
            ..Faults::default()
        },
        ..unlimited()
    })
    .await;
    api.sim.set_churn(false);
    let token = api.token().await;
    let since = iso(api.sim.now() - chrono::Duration::days(2));
    let (sessions, _) = api
        .all_pages(
            &format!("size=25&status=ACTIVE&startDate={since}"),
            &token,
            1_000,
        )
        .await;
    let listed = ids(&sessions);
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert!(listed.len() > unique.len(), "sessions came more than once");
    let truth = active_ids(&api.sim);
    assert_eq!(unique, truth, "and none was lost");
}

#[tokio::test]
async fn active_sessions_move_bytes() {
    let api = start(SimConfig {
        speed: 120.0,
        ..unlimited()
    })
    .await;
    let token = api.token().await;
    let bytes = |sessions: &[Value]| -> BTreeMap<String, i64> {
        sessions
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap_or("").to_owned(),
                    s["bytesOut"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    let (first, _) = api.page("size=100&status=ACTIVE", &token).await;
    let first = bytes(&first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (later, _) = api.page("size=100&status=ACTIVE", &token).await;
        let later = bytes(&later);
        if later
            .iter()
            .any(|(id, b)| first.get(id).is_some_and(|old| b > old))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no active session moved a byte"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn control_endpoints_steer_the_simulator() {
    let api = start(SimConfig::default()).await;
    let put = api
        .put(
            "/_sim/faults",
            r#"{"rate_5xx": 0.5, "slow_delay": 1.5, "repeat_cursor": true}"#,
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let faults = api.sim.faults();
    assert_eq!(faults.rate_5xx, 0.5);
    assert_eq!(faults.slow_delay, Duration::from_millis(1_500));
    assert!(faults.repeat_cursor);
    let got = api.get("/_sim/faults", None).await.json();
    assert_eq!(got["rate_5xx"], 0.5);
    assert_eq!(got["revoke_credentials"], false);
    for bad in [
        r#"{"rate_5xx": 2}"#,
        r#"{"rate_typo": 1}"#,
        "not json",
        r#"{"slow_delay": -1}"#,
    ] {
        assert_eq!(
            api.put("/_sim/faults", bad).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(api.put("/_sim/faults", "{}").await.status, StatusCode::OK);
    assert_eq!(api.sim.faults(), Faults::default());

    assert_eq!(
        api.put("/_sim/churn", r#"{"on": false}"#).await.status,
        StatusCode::OK
    );
    assert!(!api.sim.churn());
    assert_eq!(api.get("/_sim/churn", None).await.json()["on"], false);
    assert_eq!(
        api.put("/_sim/churn", r#"{"on": true}"#).await.status,
        StatusCode::OK
    );
    assert!(api.sim.churn());

    // Control requests are neither rate limited nor counted.
    for _ in 0..25 {
        assert_eq!(api.get("/_sim/stats", None).await.status, StatusCode::OK);
    }
    api.sim.set_churn(false);
    api.token().await;
    let stats = api.get("/_sim/stats", None).await.json();
    assert_eq!(stats["responses"][0]["path"], "/api/v1/oauth/token");
    assert_eq!(stats["responses"].as_array().map(Vec::len), Some(1));
    assert_eq!(stats["malformed"], 0);
    let summary = api.get("/_sim/truth/summary", None).await.json();
    let active = active_ids(&api.sim).len();
    assert_eq!(summary["active_total"], active as u64);
    let by_region: u64 = summary["active_by_region"]
        .as_object()
        .expect("regions")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_region, active as u64);
    assert!(
        summary["active_by_region"]
            .as_object()
            .is_some_and(|r| r.len() >= 3)
    );
    assert!(
        summary["ended_by_status"]["COMPLETED"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let log = api.get("/_sim/requests", None).await.json();
    assert_eq!(log.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn secrets_stay_out_of_the_request_log() {
    let api = start(unlimited()).await;
    api.post(
        "/api/v1/oauth/token?client_id=demo&client_secret=demo&grant_type=client_credentials",
        None,
    )
    .await;
    let log = api.sim.recent_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].query,
        "client_id=demo&client_secret=***&grant_type=client_credentials"
    );
    assert_eq!((log[0].method.as_str(), log[0].status), ("POST", 200));
}

/// The demo's rate limit takes the first full listing of the busiest hour in one burst (so the
/// exporter is ready within seconds) and sustains a poll every 15 s with room to spare; the world
/// runs on the real clock.
#[tokio::test(start_paused = true)]
async fn the_demo_tenant_lets_an_exporter_poll_every_15_seconds() {
    let demo = SimConfig::demo();
    assert_eq!(demo.speed, 1.0, "the demo runs on the real clock");
    let limit = demo.rate_limit.expect("a rate limit");
    // A Tuesday at 15:00 UTC: the American morning and the European afternoon overlap.
    let busiest = DateTime::parse_from_rfc3339("2026-03-10T15:00:00Z")
        .unwrap()
        .to_utc();
    let active = Simulator::starting_at(demo, busiest).summary().active_total;
    let first_cycle = active.div_ceil(100) + 2; // pages, a token, a window
    assert!(
        first_cycle <= u64::from(limit.burst),
        "{active} active sessions need {first_cycle} requests"
    );
    let per_second = f64::from(limit.replenish_rate) / limit.replenish_time.as_secs_f64();
    assert!(
        per_second >= 2.0 / 15.0,
        "a window every 15 s must use at most half the rate"
    );
}
