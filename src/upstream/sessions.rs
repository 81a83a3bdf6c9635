//! The sessions listing: `GET /api/{version}/sessions` in cursor pages of 100, with the guards a
//! listing needs against a server whose paging does not end.

use std::collections::HashSet;
use std::hash::BuildHasher;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Url;

use super::Endpoint;
use super::client::{ApiClient, Priority};
use super::error::UpstreamError;
use super::model::{SessionStatus, SessionsPage};
use crate::fast_hash::FastState;

/// Page size asked for: the API's maximum.
pub const PAGE_SIZE: u32 = 100;

/// Consecutive pages that bring no session new to the listing before it is declared stuck.
const MAX_STALLED_PAGES: u32 = 3;

/// One sessions listing.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsQuery {
    /// `status`; `None` lists every status.
    pub status: Option<SessionStatus>,
    /// `startDate` (inclusive), on the server's clock.
    pub start: DateTime<Utc>,
    /// `endDate` (exclusive); `None` leaves the window open.
    pub end: Option<DateTime<Utc>>,
    /// `returnOnlyNew`.
    pub return_only_new: bool,
}

/// What a listing cost and brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingStats {
    /// Pages fetched.
    pub pages: u32,
    /// Session records received.
    pub sessions: usize,
    /// List elements that were not objects.
    pub skipped: usize,
}

impl ApiClient {
    /// Lists sessions for `query`, handing each page to `on_page` with the server time it was
    /// received at. Stops with [`UpstreamError::Pagination`] on a repeated cursor, on pages that
    /// bring nothing new, or beyond `max_pages`.
    pub async fn list_sessions(
        &self,
        query: &SessionsQuery,
        max_pages: u32,
        on_page: &mut (dyn FnMut(&SessionsPage, DateTime<Utc>) + Send),
    ) -> Result<ListingStats, UpstreamError> {
        let mut stats = ListingStats::default();
        let mut cursors: HashSet<String> = HashSet::new();
        // Hashes, not ids: enough to tell progress from a loop without holding every id twice.
        let hasher = FastState::default();
        let mut ids: HashSet<u64, FastState> = HashSet::default();
        let mut stalled = 0;
        let mut cursor: Option<String> = None;
        loop {
            let url = self.sessions_url(query, cursor.as_deref());
            // The page borrows its text from the body, so it is handed on where it is decoded;
            // only the cursor and the count of new ids come out.
            let (next, fresh) = self
                .get_with(Endpoint::Sessions, &url, Priority::High, &mut |body| {
                    let page = SessionsPage::from_slice(body).map_err(|e| e.to_string())?;
                    let observed_at = self.server_now();
                    stats.pages += 1;
                    stats.sessions += page.sessions.len();
                    stats.skipped += page.skipped;
                    let fresh = page
                        .sessions
                        .iter()
                        .filter_map(|s| s.id.as_deref())
                        .filter(|id| ids.insert(hasher.hash_one(id)))
                        .count();
                    on_page(&page, observed_at);
                    Ok((page.next_cursor, fresh))
                })
                .await?;
            let Some(next) = next else {
                return Ok(stats);
            };
            if !cursors.insert(next.clone()) {
                return Err(UpstreamError::Pagination {
                    endpoint: Endpoint::Sessions.as_str(),
                    detail: format!("the API repeated a cursor after {} pages", stats.pages),
                });
            }
            stalled = if fresh == 0 { stalled + 1 } else { 0 };
            if stalled >= MAX_STALLED_PAGES {
                return Err(UpstreamError::Pagination {
                    endpoint: Endpoint::Sessions.as_str(),
                    detail: format!("{stalled} pages in a row brought no new session"),
                });
            }
            if stats.pages >= max_pages {
                return Err(UpstreamError::Pagination {
                    endpoint: Endpoint::Sessions.as_str(),
                    detail: format!("more than {max_pages} pages"),
                });
            }
            cursor = Some(next);
        }
    }

    fn sessions_url(&self, q: &SessionsQuery, cursor: Option<&str>) -> Url {
        let mut url = self.url("sessions");
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("size", &PAGE_SIZE.to_string());
            pairs.append_pair("startDate", &iso_instant(q.start, false));
            if let Some(end) = q.end {
                pairs.append_pair("endDate", &iso_instant(end, true));
            }
            if let Some(status) = q.status {
                pairs.append_pair("status", status.as_api_str());
            }
            if q.return_only_new {
                pairs.append_pair("returnOnlyNew", "true");
            }
            if let Some(cursor) = cursor {
                pairs.append_pair("cursor", cursor);
            }
        }
        url
    }
}

/// `ISO_INSTANT` with whole seconds, as the API documents; rounded down (`startDate`) or up
/// (`endDate`) so a window never shrinks.
fn iso_instant(t: DateTime<Utc>, round_up: bool) -> String {
    let mut secs = t.timestamp();
    if round_up && t.timestamp_subsec_nanos() > 0 {
        secs += 1;
    }
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_are_iso_instants_rounded_outwards() {
        let t = Utc.timestamp_opt(1_667_919_223, 400_000_000).unwrap();
        assert_eq!(iso_instant(t, false), "2022-11-08T14:53:43Z");
        assert_eq!(iso_instant(t, true), "2022-11-08T14:53:44Z");
    }
}
