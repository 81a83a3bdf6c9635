//! Failure modes staged with the targeted fake.

use std::time::Duration;

use crate::fake::{Answer, Fake, token};
use crate::helpers::{Exporter, upstream_args, wait_for};

fn with_interval(base: &str, interval: &str) -> Vec<String> {
    let mut args = upstream_args(base);
    args.extend(["--poll.interval".into(), interval.into()]);
    args
}

#[tokio::test]
async fn a_cursor_repeated_forever_is_a_pagination_error_that_costs_few_requests() {
    let fake = Fake::start(|req, _| {
        if req.path.ends_with("/oauth/token") {
            return token("t", 3600);
        }
        Answer::json(
            200,
            r#"{"sessions":[{"id":"a","status":"ACTIVE","region":"eu"}],"nextCursor":"same"}"#,
        )
    })
    .await;
    let exporter = Exporter::start(&with_interval(&fake.url(), "1s")).await;
    let errors = wait_for("two pagination errors", Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        let n = m.sum("cloudconnexa_poll_errors_total", &[("kind", "pagination")]);
        (n >= 2.0).then_some(m)
    })
    .await;
    assert_eq!(errors.value("cloudconnexa_up"), Some(0.0));
    assert_eq!(
        exporter.get("/healthz").await.0,
        200,
        "the exporter stays up"
    );
    assert_eq!(
        exporter.get("/readyz").await.0,
        503,
        "no complete listing was taken"
    );
    let cycles = exporter
        .scrape()
        .await
        .value("cloudconnexa_poll_cycles_total")
        .unwrap();
    let per_cycle = fake.session_requests() as f64 / cycles;
    assert!(per_cycle <= 3.0, "{per_cycle} session requests per cycle");
    exporter.stop().await;
}

#[tokio::test]
async fn rejected_credentials_are_an_auth_error_and_retried_slowly() {
    let fake = Fake::start(|_, _| Answer::json(401, "")).await;
    let exporter = Exporter::start(&with_interval(&fake.url(), "1s")).await;
    wait_for("auth errors", Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        (m.sum("cloudconnexa_poll_errors_total", &[("kind", "auth")]) >= 2.0).then_some(())
    })
    .await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("cloudconnexa_up"), Some(0.0));
    assert!(
        m.sum(
            "cloudconnexa_api_requests_total",
            &[("endpoint", "token"), ("code", "401")]
        ) >= 2.0
    );
    // Every kind is there from the start, at 0 where nothing happened.
    for kind in [
        "rate_limited",
        "http",
        "timeout",
        "decode",
        "history_window",
        "pagination",
    ] {
        assert_eq!(
            m.select("cloudconnexa_poll_errors_total", &[("kind", kind)])
                .count(),
            1,
            "{kind}"
        );
        assert_eq!(
            m.sum("cloudconnexa_poll_errors_total", &[("kind", kind)]),
            0.0,
            "{kind}"
        );
    }
    assert!(
        fake.seen().iter().all(|s| s.path == "/api/v1/oauth/token"),
        "no data request without a token"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_spurious_401_renews_the_token_once_and_the_cycle_succeeds() {
    let tokens = std::sync::atomic::AtomicUsize::new(0);
    let fake = Fake::start(move |req, _| {
        if req.path.ends_with("/oauth/token") {
            let n = tokens.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return token(if n == 0 { "x" } else { "fresh" }, 3600);
        }
        match req.authorization.as_deref() {
            Some("Bearer fresh") => Answer::json(200, r#"{"sessions":[]}"#),
            _ => Answer::json(401, ""),
        }
    })
    .await;
    let exporter = Exporter::start(&with_interval(&fake.url(), "1s")).await;
    exporter.wait_ready(Duration::from_secs(10)).await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("cloudconnexa_up"), Some(1.0));
    assert_eq!(m.sum("cloudconnexa_poll_errors_total", &[]), 0.0);
    exporter.stop().await;
}

#[tokio::test]
async fn server_errors_and_broken_bodies_are_retried_within_the_cycle() {
    let fake = Fake::start(|req, i| {
        if req.path.ends_with("/oauth/token") {
            return token("t", 3600);
        }
        match i % 4 {
            1 => Answer::json(502, "<html>bad gateway</html>"),
            2 => Answer::json(200, r#"{"sessions":[{"id":"a","status":"ACT"#),
            _ => Answer::json(
                200,
                r#"{"sessions":[{"id":"a","status":"ACTIVE","region":"eu"}]}"#,
            ),
        }
    })
    .await;
    let exporter = Exporter::start(&with_interval(&fake.url(), "1s")).await;
    let m = wait_for("a successful cycle", Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        (m.value("cloudconnexa_up") == Some(1.0)).then_some(m)
    })
    .await;
    assert_eq!(
        m.sum("cloudconnexa_sessions_active", &[("vpn_region", "eu")]),
        1.0
    );
    assert_eq!(m.sum("cloudconnexa_poll_errors_total", &[]), 0.0);
    exporter.stop().await;
}

#[tokio::test]
async fn requests_are_well_formed() {
    let fake = Fake::start(|req, _| {
        if req.path.ends_with("/oauth/token") {
            return token("t", 3600);
        }
        Answer::json(200, r#"{"sessions":[]}"#)
    })
    .await;
    let mut args = with_interval(&fake.url(), "1s");
    args.extend(["--cloudconnexa.api-version".into(), "beta".into()]);
    let exporter = Exporter::start(&args).await;
    wait_for("two session requests", Duration::from_secs(10), || async {
        (fake.session_requests() >= 3).then_some(())
    })
    .await;
    exporter.stop().await;
    let seen = fake.seen();
    let token = &seen[0];
    assert_eq!(
        (token.method.as_str(), token.path.as_str()),
        ("POST", "/api/beta/oauth/token")
    );
    assert_eq!(token.query, "grant_type=client_credentials");
    assert_eq!(
        token.authorization.as_deref(),
        Some("Basic ZGVtbzpkZW1v"),
        "HTTP Basic demo:demo"
    );
    for s in seen.iter().filter(|s| s.path.ends_with("/sessions")) {
        assert_eq!(s.path, "/api/beta/sessions");
        assert_eq!(s.authorization.as_deref(), Some("Bearer t"));
        let q: std::collections::HashMap<String, String> = url_pairs(&s.query);
        assert_eq!(q.get("size").map(String::as_str), Some("100"));
        let start = chrono::DateTime::parse_from_rfc3339(&q["startDate"]).expect("ISO instant");
        assert!(q["startDate"].ends_with('Z') && !q["startDate"].contains('.'));
        let age = chrono::Utc::now() - start.to_utc();
        assert!(
            age < chrono::Duration::days(7),
            "beta's 7-day window is kept: {age}"
        );
        if let Some(end) = q.get("endDate") {
            assert!(chrono::DateTime::parse_from_rfc3339(end).unwrap() > start);
        }
        if let Some(status) = q.get("status") {
            assert_eq!(status, "ACTIVE");
        }
    }
}

fn url_pairs(query: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first sessions request of each listing meets a 429; the exporter waits the longest of
/// Retry-After, the token time and the floor, then retries and the cycle succeeds.
#[tokio::test]
async fn a_429_is_waited_out_as_the_api_asks_then_retried() {
    let limited = std::sync::atomic::AtomicBool::new(false);
    let fake = Fake::start(move |req, _| {
        if req.path.ends_with("/oauth/token") {
            return token("t", 3600);
        }
        if !limited.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Answer::json(429, "")
                .with_header("retry-after", "2")
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-replenish-rate", "1")
                .with_header("x-ratelimit-replenish-time", "1");
        }
        Answer::json(200, r#"{"sessions":[]}"#).with_header("x-ratelimit-remaining", "5")
    })
    .await;
    let exporter = Exporter::start(&with_interval(&fake.url(), "1s")).await;
    exporter.wait_ready(Duration::from_secs(15)).await;
    let m = exporter.scrape().await;
    assert_eq!(
        m.sum("cloudconnexa_poll_errors_total", &[]),
        0.0,
        "one 429 does not fail the cycle"
    );
    assert_eq!(
        m.sum("cloudconnexa_api_requests_total", &[("code", "429")]),
        1.0
    );
    assert!(
        m.value("cloudconnexa_rate_limit_wait_seconds_total")
            .unwrap()
            >= 2.0
    );
    exporter.stop().await;
    let sessions: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("/sessions"))
        .collect();
    let gap = sessions[1].at - sessions[0].at;
    assert!(
        gap >= Duration::from_secs(2),
        "waited only {gap:?} after the 429 (Retry-After: 2)"
    );
}

/// A server whose history window is shorter than documented refuses `startDate`; the exporter
/// widens its margin and retries within the cycle.
#[tokio::test]
async fn a_refused_start_date_narrows_the_window_and_the_cycle_succeeds() {
    let fake = Fake::start(|req, _| {
        if req.path.ends_with("/oauth/token") {
            return token("t", 3600);
        }
        let start = url_pairs(&req.query)["startDate"].clone();
        let start = chrono::DateTime::parse_from_rfc3339(&start).unwrap().to_utc();
        if chrono::Utc::now() - start > chrono::Duration::days(30) - chrono::Duration::hours(3) {
            return Answer::json(
                400,
                r#"{"errorMessage":"Bad request","statusError":"BAD_REQUEST","errorDetails":{"startDate":[{"errorCode":"INVALID","message":"too far in the past","params":{}}]}}"#,
            );
        }
        Answer::json(200, r#"{"sessions":[]}"#)
    })
    .await;
    let exporter = Exporter::start(&with_interval(&fake.url(), "1s")).await;
    exporter.wait_ready(Duration::from_secs(15)).await;
    let m = exporter.scrape().await;
    assert_eq!(m.value("cloudconnexa_up"), Some(1.0));
    assert_eq!(
        m.sum(
            "cloudconnexa_poll_errors_total",
            &[("kind", "history_window")]
        ),
        0.0
    );
    assert_eq!(
        m.sum("cloudconnexa_api_requests_total", &[("code", "400")]),
        2.0,
        "1 h and 2 h margins refused, 4 h accepted"
    );
    exporter.stop().await;
}

/// Each failure that outlasts the retries is counted under its own kind, and the exporter stays up.
#[tokio::test]
async fn persistent_failures_are_counted_by_kind() {
    for (kind, answer) in [
        ("http", Answer::json(503, "unavailable")),
        ("decode", Answer::json(200, r#"{"sessions":[{"id""#)),
        (
            "timeout",
            Answer::json(200, r#"{"sessions":[]}"#).delayed(Duration::from_secs(3)),
        ),
        ("http", Answer::json(404, "")),
    ] {
        let answer = std::sync::Arc::new(answer);
        let fake = Fake::start(move |req, _| {
            if req.path.ends_with("/oauth/token") {
                return token("t", 3600);
            }
            Answer {
                status: answer.status,
                headers: answer.headers.clone(),
                body: answer.body.clone(),
                delay: answer.delay,
            }
        })
        .await;
        let mut args = with_interval(&fake.url(), "1s");
        args.extend(["--cloudconnexa.timeout".into(), "1s".into()]);
        let exporter = Exporter::start(&args).await;
        wait_for(kind, Duration::from_secs(30), || async {
            let m = exporter.scrape().await;
            (m.sum("cloudconnexa_poll_errors_total", &[("kind", kind)]) >= 1.0).then_some(())
        })
        .await;
        let m = exporter.scrape().await;
        assert_eq!(m.value("cloudconnexa_up"), Some(0.0), "{kind}");
        assert_eq!(exporter.get("/healthz").await.0, 200, "{kind}: still alive");
        exporter.stop().await;
    }
}

/// A page whose body does not decode is asked for again, and each page reaches the listing's
/// consumer once, whether its text is read in place or had to be unescaped.
#[tokio::test]
async fn an_undecodable_page_is_fetched_again_and_handed_on_once() {
    use std::sync::Arc;

    use cloudconnexa_exporter::clock::SystemClock;
    use cloudconnexa_exporter::secret::Secret;
    use cloudconnexa_exporter::upstream::Unobserved;
    use cloudconnexa_exporter::upstream::client::{ApiClient, ApiVersion, ClientConfig};
    use cloudconnexa_exporter::upstream::model::SessionStatus;
    use cloudconnexa_exporter::upstream::sessions::SessionsQuery;

    let fake = Fake::start(|req, index| {
        if req.path.ends_with("/oauth/token") {
            return token("t", 3600);
        }
        if req.query.contains("cursor=c1") {
            return Answer::json(
                200,
                r#"{"sessions":[{"id":"b","status":"ACTIVE","region":"eu-\u0077est"}]}"#,
            );
        }
        if index == 1 {
            // The first page, cut short.
            return Answer::json(200, r#"{"sessions":[{"id":"a","sta"#);
        }
        Answer::json(
            200,
            r#"{"sessions":[{"id":"a","status":"ACTIVE","region":"eu"}],"nextCursor":"c1"}"#,
        )
    })
    .await;
    let client = ApiClient::new(
        ClientConfig {
            base_url: reqwest::Url::parse(&fake.url()).unwrap(),
            api_version: ApiVersion::V1,
            client_id: "id".into(),
            client_secret: Secret::new("secret"),
            request_timeout: Duration::from_secs(5),
            retry: crate::helpers::fast_retry(),
        },
        Arc::new(SystemClock),
        Arc::new(Unobserved),
    )
    .unwrap();
    let query = SessionsQuery {
        status: Some(SessionStatus::Active),
        start: client.server_now() - chrono::Duration::hours(1),
        end: None,
        return_only_new: false,
    };
    let mut handed = Vec::new();
    let stats = client
        .list_sessions(&query, 10, &mut |page, _| {
            for s in &page.sessions {
                handed.push((
                    s.id.as_deref().map(str::to_owned),
                    s.region.clone().map(|r| r.into_owned()),
                ));
            }
        })
        .await
        .expect("the listing succeeds");
    assert_eq!(
        handed,
        [
            (Some("a".to_owned()), Some("eu".to_owned())),
            (Some("b".to_owned()), Some("eu-west".to_owned())),
        ]
    );
    assert_eq!((stats.pages, stats.sessions), (2, 2));
    assert_eq!(
        fake.session_requests(),
        3,
        "the broken page, again, then the second page"
    );
}
