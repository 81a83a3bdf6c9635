//! `GET /api/{version}/sessions`: windows on created or updated time, status filters, cursor
//! pages and the faults that only this endpoint has (repeated sessions, endless cursors).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use rand::Rng;
use serde::Serialize;
use serde_json::json;

use super::faults::{Endpoint, Prepared, Roll, server_error};
use super::problems::Problems;
use super::{Opened, Version, bounded, first};
use crate::cursor::{self, Cursor};
use crate::world::{DAY, ListKey, Listing, SessionRecord, Status, iso_millis};
use crate::{Simulator, State as SimState};

/// An ISO instant (`2022-11-08T14:53:43Z`, fractions and offsets allowed), in ms.
fn parse_instant(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `GET /api/{version}/sessions`.
pub(super) async fn sessions(
    State(sim): State<Simulator>,
    Path(version): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let prepared = {
        let mut state = sim.state();
        state.answer_sessions(&version, &headers, &uri)
    };
    prepared.deliver().await
}

/// A validated listing request.
#[derive(Debug)]
struct ListingRequest {
    listing: Listing,
    /// Digest of the query, sealed into the cursors of its pages.
    query_digest: u64,
    /// The cursor as the client sent it.
    cursor: Option<String>,
}

/// Validates the sessions endpoint's parameters as the spec defines them.
fn parse_listing(
    pairs: &[(String, String)],
    version: Version,
    now: i64,
    cursor_key: u64,
) -> Result<ListingRequest, Problems> {
    let mut problems = Problems::default();
    let size = match bounded(pairs, "size", 1, 100, &mut problems) {
        Ok(Some(n)) => Some(n as usize),
        Ok(None) => {
            problems.add(
                "size",
                "REQUIRED",
                "size is required".into(),
                json!({"limits": {"min": 1, "max": 100}}),
            );
            None
        }
        Err(()) => None,
    };
    let instant = |name: &str, problems: &mut Problems| match first(pairs, name) {
        None => Ok(None),
        Some(text) => match parse_instant(text) {
            Some(ms) => Ok(Some(ms)),
            None => {
                problems.add(
                    name,
                    "INVALID_FORMAT",
                    format!("{name} must be an ISO instant, e.g. 2022-11-08T14:53:43Z"),
                    json!({"rejected": {"value": text}}),
                );
                Err(())
            }
        },
    };
    let start = instant("startDate", &mut problems);
    let end = instant("endDate", &mut problems);
    let earliest = now - version.history_days() * DAY;
    if let Ok(Some(start)) = start {
        if start < earliest {
            problems.add_detail(
                "startDate",
                "HISTORY_LIMIT_EXCEEDED",
                format!(
                    "startDate must not be before now - {} days ({})",
                    version.history_days(),
                    iso_millis(earliest)
                ),
                json!({"earliest": {"value": iso_millis(earliest)}}),
                false,
            );
        }
    }
    let status = match first(pairs, "status") {
        None => Ok(None),
        Some(text) => Status::parse(text).map(Some).ok_or_else(|| {
            problems.add(
                "status",
                "INVALID_VALUE",
                format!("status must be one of ACTIVE, COMPLETED, FAILED, got {text:?}"),
                json!({"allowed": {"values": ["ACTIVE", "COMPLETED", "FAILED"]}}),
            );
        }),
    };
    let only_new = match first(pairs, "returnOnlyNew") {
        None => Ok(false),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        Some(text) => {
            problems.add(
                "returnOnlyNew",
                "INVALID_FORMAT",
                "returnOnlyNew must be true or false".into(),
                json!({"rejected": {"value": text}}),
            );
            Err(())
        }
    };
    let (Some(size), Ok(start), Ok(end), Ok(status), Ok(only_new)) =
        (size, start, end, status, only_new)
    else {
        return Err(problems);
    };
    let query_digest = cursor::digest(
        0,
        format!(
            "{version:?}|{start:?}|{end:?}|{}|{only_new}",
            status.map_or("", Status::as_str)
        )
        .as_bytes(),
    );
    let cursor_text = first(pairs, "cursor").map(str::to_owned);
    let after = match &cursor_text {
        None => None,
        Some(text) => match Cursor::decode(text, cursor_key) {
            Some(c) if c.query == query_digest => Some(c.after),
            _ => {
                problems.add(
                    "cursor",
                    "INVALID_CURSOR",
                    "cursor is not valid for this query".into(),
                    json!({}),
                );
                None
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ListingRequest {
        listing: Listing {
            start: start.unwrap_or(now - DAY),
            end,
            status,
            only_new,
            after,
            size,
        },
        query_digest,
        cursor: cursor_text,
    })
}

/// A page of sessions (the spec's `SessionsResponse`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    sessions: Vec<SessionRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl SimState {
    fn answer_sessions(&mut self, version: &str, headers: &HeaderMap, uri: &Uri) -> Prepared {
        let Opened {
            now,
            version,
            pairs,
        } = match self.open(version, false, headers, uri) {
            Ok(opened) => opened,
            Err(refusal) => return *refusal,
        };
        let request = match parse_listing(&pairs, version, now, self.cursor_key) {
            Ok(request) => request,
            Err(problems) => return Prepared::now(problems.into_response()),
        };
        let roll = Roll::draw(&self.config.faults, Endpoint::Sessions);
        if let Some(response) = roll.failure_response() {
            return Prepared {
                response,
                delay: roll.delay,
            };
        }
        let (mut keys, more) = self.world.list(&request.listing);
        let mut next = if more { keys.last().copied() } else { None };
        if roll.duplicate && keys.len() >= 2 {
            next = Some(duplicate(&mut keys));
        }
        let seal = |after: ListKey| {
            Cursor {
                after,
                query: request.query_digest,
            }
            .encode(self.cursor_key)
        };
        let next_cursor = if self.config.faults.repeat_cursor {
            // Pages never end: the cursor the client sent, or one for where this page ends.
            request.cursor.clone().or_else(|| {
                let at = next
                    .or(keys.last().copied())
                    .or(request.listing.after)
                    .unwrap_or((request.listing.start, 0));
                Some(seal(at))
            })
        } else {
            next.map(seal)
        };
        let page = Page {
            sessions: keys
                .iter()
                .filter_map(|&(_, seq)| self.world.record(seq))
                .collect(),
            next_cursor,
        };
        match serde_json::to_vec(&page) {
            Ok(body) => roll.ok(body),
            Err(_) => Prepared::now(server_error()),
        }
    }
}

/// Makes a page repeat itself: one of its sessions comes twice, the last is left for the next
/// page, and the next page starts up to two sessions early. Returns the position the next
/// page continues after; no session is lost.
fn duplicate(keys: &mut Vec<ListKey>) -> ListKey {
    let mut rng = rand::rng();
    keys.pop();
    let kept = keys.len();
    let back = rng.random_range(0..=(kept - 1).min(2));
    let resume = keys[kept - 1 - back];
    let copy = keys[rng.random_range(0..kept)];
    let at = rng.random_range(0..=kept);
    keys.insert(at, copy);
    resume
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Pairs, query_pairs};

    fn pairs(query: &str) -> Pairs {
        query_pairs(&format!("/x?{query}").parse::<Uri>().expect("uri")).expect("pairs")
    }

    const NOW: i64 = 1_750_000_000_000;

    fn codes(query: &str, version: Version) -> Vec<(String, &'static str, bool)> {
        match parse_listing(&pairs(query), version, NOW, 1) {
            Ok(_) => Vec::new(),
            Err(p) => p
                .details
                .iter()
                .flat_map(|(k, v)| {
                    v.iter()
                        .map(move |d| (k.clone(), d.error_code, p.malformed))
                })
                .collect(),
        }
    }

    #[test]
    fn listing_parameters_are_checked_like_the_spec_says() {
        assert!(codes("size=100", Version::V1).is_empty());
        assert!(codes("size=1&status=FAILED&returnOnlyNew=TRUE", Version::V1).is_empty());
        assert_eq!(codes("", Version::V1), [("size".into(), "REQUIRED", true)]);
        assert_eq!(
            codes("size=0", Version::V1),
            [("size".into(), "OUT_OF_RANGE", true)]
        );
        assert_eq!(
            codes("size=101", Version::V1),
            [("size".into(), "OUT_OF_RANGE", true)]
        );
        assert_eq!(
            codes("size=1.5", Version::V1),
            [("size".into(), "INVALID_FORMAT", true)]
        );
        assert_eq!(
            codes("size=5&status=active", Version::V1),
            [("status".into(), "INVALID_VALUE", true)]
        );
        assert_eq!(
            codes("size=5&startDate=yesterday", Version::V1),
            [("startDate".into(), "INVALID_FORMAT", true)]
        );
        assert_eq!(
            codes("size=5&cursor=abc", Version::V1),
            [("cursor".into(), "INVALID_CURSOR", true)]
        );
        let eight_days_ago = iso_millis(NOW - 8 * DAY);
        assert!(codes(&format!("size=5&startDate={eight_days_ago}"), Version::V1).is_empty());
        assert_eq!(
            codes(&format!("size=5&startDate={eight_days_ago}"), Version::Beta),
            [("startDate".into(), "HISTORY_LIMIT_EXCEEDED", false)],
            "outside the window is not malformed"
        );
        let many = codes("status=x&returnOnlyNew=maybe", Version::V1);
        assert_eq!(many.len(), 3, "every problem is reported: {many:?}");
    }

    #[test]
    fn cursors_belong_to_their_query() {
        let request =
            parse_listing(&pairs("size=5&status=ACTIVE"), Version::V1, NOW, 9).expect("valid");
        let text = Cursor {
            after: (NOW, 3),
            query: request.query_digest,
        }
        .encode(9);
        let same = parse_listing(
            &pairs(&format!("size=7&status=ACTIVE&cursor={text}")),
            Version::V1,
            NOW,
            9,
        )
        .expect("a page size may change between pages");
        assert_eq!(same.listing.after, Some((NOW, 3)));
        assert!(
            parse_listing(
                &pairs(&format!("size=5&status=FAILED&cursor={text}")),
                Version::V1,
                NOW,
                9
            )
            .is_err()
        );
        assert!(
            parse_listing(
                &pairs(&format!("size=5&status=ACTIVE&cursor={text}")),
                Version::Beta,
                NOW,
                9
            )
            .is_err()
        );
    }

    #[test]
    fn duplicated_pages_lose_nothing() {
        for _ in 0..200 {
            let original: Vec<ListKey> = (1..=5).map(|i| (i, i as u64)).collect();
            let mut page = original.clone();
            let resume = duplicate(&mut page);
            assert_eq!(page.len(), original.len());
            let distinct: std::collections::BTreeSet<_> = page.iter().collect();
            assert_eq!(
                distinct.len(),
                original.len() - 1,
                "one repeat, one left for later"
            );
            let next_page: Vec<_> = original.iter().filter(|k| **k > resume).collect();
            assert!(next_page.contains(&&original[4]));
            assert!(next_page.len() <= 3);
        }
    }
}
