//! Property tests: no input makes the decoder or the tracker panic, and the counting rules hold
//! for random worlds delivered with duplicates, reorderings, overlaps and stale records.

use chrono::{DateTime, TimeZone, Utc};
use cloudconnexa_exporter::tracker::{Dimension, SessionTracker, Snapshot};
use cloudconnexa_exporter::upstream::model::{Session, SessionStatus, SessionsPage};
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Arbitrary JSON, biased towards the shapes of a sessions page.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("id".to_owned()),
        Just("sessionId".to_owned()),
        Just("status".to_owned()),
        Just("region".to_owned()),
        Just("regionName".to_owned()),
        Just("bytesIn".to_owned()),
        Just("bytesOut".to_owned()),
        Just("sessionStartTime".to_owned()),
        Just("sessionEndTime".to_owned()),
        Just("sessionDurationSeconds".to_owned()),
        Just("sessions".to_owned()),
        Just("nextCursor".to_owned()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("ACTIVE".to_owned()),
            Just("COMPLETED".to_owned()),
            Just("FAILED".to_owned()),
            Just("2024-01-01T00:00:00Z".to_owned()),
            Just("-5".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn decoding_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SessionsPage::from_slice(&bytes);
    }

    #[test]
    fn decoding_never_panics_on_arbitrary_json_and_keeps_only_sane_values(value in json()) {
        let wrapped = serde_json::json!({ "sessions": [&value], "nextCursor": &value });
        for doc in [value, wrapped] {
            let bytes = serde_json::to_vec(&doc).unwrap();
            if let Ok(page) = SessionsPage::from_slice(&bytes) {
                // Whatever came in, the tracker digests it without panicking.
                let mut t = SessionTracker::new(at(0), Dimension::ALL.to_vec());
                t.apply(&page.sessions, at(10));
                let _ = t.snapshot();
                for s in &page.sessions {
                    prop_assert!(s.id.as_deref() != Some(""));
                    prop_assert!(s.region.as_deref() != Some(""));
                }
            }
        }
    }

    #[test]
    fn truncated_pages_are_errors_never_panics(cut in 0usize..400) {
        let body = br#"{"sessions":[{"id":"a","status":"ACTIVE","bytesIn":10,"region":"eu"},{"id":"b","status":"COMPLETED","sessionEndTime":"2024-01-01T00:00:00Z"}],"nextCursor":"x"}"#;
        let cut = cut.min(body.len());
        let result = SessionsPage::from_slice(&body[..cut]);
        prop_assert_eq!(result.is_ok(), cut == body.len());
    }

    #[test]
    fn counting_rules_hold_for_random_deliveries(
        world in prop::collection::vec((-1500i64..1500, 0i64..600, any::<bool>(), 0u64..1_000_000, 0usize..3), 1..50),
        seed in any::<u64>(),
    ) {
        check_world(&world, seed)?;
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

struct Truth {
    id: String,
    start: i64,
    end: i64,
    failed: bool,
    bytes: u64,
    region: &'static str,
}

impl Truth {
    /// The record the API would return at time `t`.
    fn record(&self, t: i64) -> Session<'_> {
        let ended = t >= self.end;
        let progress = if ended {
            1.0
        } else {
            (t - self.start).max(0) as f64 / (self.end - self.start).max(1) as f64
        };
        Session {
            id: Some(self.id.as_str().into()),
            status: Some(match (ended, self.failed) {
                (false, _) => SessionStatus::Active,
                (true, false) => SessionStatus::Completed,
                (true, true) => SessionStatus::Failed,
            }),
            region: Some(self.region.into()),
            bytes_in: Some((self.bytes as f64 * progress) as u64),
            bytes_out: Some((self.bytes as f64 * progress) as u64 / 2),
            start_time: Some(at(self.start)),
            end_time: ended.then(|| at(self.end)),
            disconnect_reason: ended.then(|| {
                if self.failed {
                    "AUTH_FAILED".into()
                } else {
                    "USER".into()
                }
            }),
            ..Session::default()
        }
    }
}

fn totals(s: &Snapshot) -> [u64; 5] {
    let sum = |v: &[(cloudconnexa_exporter::tracker::LabelValues, u64)]| {
        v.iter().map(|(_, n)| n).sum::<u64>()
    };
    let by_reason = |v: &[(
        cloudconnexa_exporter::tracker::LabelValues,
        std::sync::Arc<str>,
        u64,
    )]| { v.iter().map(|(_, _, n)| n).sum::<u64>() };
    [
        sum(&s.started),
        by_reason(&s.ended),
        by_reason(&s.failed),
        sum(&s.bytes_in),
        sum(&s.bytes_out),
    ]
}

/// Plays a world through windows of 100 s with a 60 s overlap, duplicates, shuffles, stale ACTIVE
/// records and periodic full listings; checks monotonicity at each step and exact totals at the end.
fn check_world(world: &[(i64, i64, bool, u64, usize)], seed: u64) -> Result<(), TestCaseError> {
    const STEP: i64 = 100;
    const OVERLAP: i64 = 60;
    const MARGIN: i64 = 30;
    let regions = ["eu", "us", "ap"];
    let sessions: Vec<Truth> = world
        .iter()
        .enumerate()
        .map(|(i, &(start, len, failed, bytes, region))| Truth {
            id: format!("s{i}"),
            start,
            end: start + len,
            failed,
            bytes,
            region: regions[region],
        })
        .collect();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut tracker = SessionTracker::new(at(0), vec![Dimension::VpnRegion]);
    let mut previous = [0u64; 5];
    let last = 2400;
    let mut t = 0;
    while t <= last {
        let full = t % 500 == 0;
        if full {
            tracker.begin_full_listing();
            let mut page: Vec<Session> = sessions
                .iter()
                .filter(|s| s.start <= t && t < s.end)
                .map(|s| s.record(t))
                .collect();
            page.shuffle(&mut rng);
            tracker.apply(&page, at(t));
            tracker.finish_full_listing(at(t));
        }
        // The window: every session created or updated in [t - STEP - OVERLAP, t), as the API returns it now.
        let from = t - STEP - OVERLAP;
        let mut page: Vec<Session> = sessions
            .iter()
            .filter(|s| (from..t).contains(&s.start) || (from..t).contains(&s.end))
            .map(|s| s.record(t))
            .collect();
        let copies: Vec<Session> = page
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .cloned()
            .collect();
        page.extend(copies);
        // Stale ACTIVE records (a lagging replica) of sessions that ended within the window. Not
        // for sessions that ended before T0: an ACTIVE record seen first makes the session count
        // as active after T0 (its bytes included), which no later record can take back.
        let stale: Vec<Session> = sessions
            .iter()
            .filter(|s| {
                (from..t).contains(&s.end) && s.end >= 0 && s.start < s.end && rng.random_bool(0.3)
            })
            .map(|s| s.record(s.end - 1))
            .collect();
        page.extend(stale);
        page.shuffle(&mut rng);
        for chunk in page.chunks(7) {
            tracker.apply(chunk, at(t));
        }
        tracker.advance_horizon(at(t - OVERLAP - MARGIN));
        let now = totals(&tracker.snapshot());
        for (i, (a, b)) in previous.iter().zip(now.iter()).enumerate() {
            prop_assert!(
                b >= a,
                "counter {} decreased from {} to {} at t={}",
                i,
                a,
                b,
                t
            );
        }
        if full {
            let active: u64 = tracker.snapshot().active.iter().map(|(_, n)| n).sum();
            let truth = sessions
                .iter()
                .filter(|s| s.start <= t && t < s.end)
                .count() as u64;
            prop_assert_eq!(active, truth, "active after a full listing at t={}", t);
        }
        previous = now;
        t += STEP;
    }
    // Every session ended by now; each window covered its end, so the totals are exact.
    let ended: Vec<&Truth> = sessions
        .iter()
        .filter(|s| s.end >= 0 && s.end < last - STEP)
        .collect();
    let expect_started = sessions
        .iter()
        .filter(|s| s.start >= 0 && s.start < last - STEP)
        .count() as u64;
    let expect_failed = ended.iter().filter(|s| s.failed).count() as u64;
    let expect_bytes: u64 = ended.iter().map(|s| s.bytes).sum();
    let [started, ended_n, failed, bytes_in, _] = totals(&tracker.snapshot());
    prop_assert_eq!(ended_n, ended.len() as u64);
    prop_assert_eq!(failed, expect_failed);
    prop_assert_eq!(started, expect_started);
    prop_assert_eq!(bytes_in, expect_bytes);
    let hist: u64 = tracker
        .snapshot()
        .durations
        .iter()
        .map(|(_, _, h)| h.count)
        .sum();
    prop_assert_eq!(hist, ended.len() as u64);
    Ok(())
}
