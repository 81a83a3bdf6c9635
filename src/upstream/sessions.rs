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
        let mut ids = SeenIds::default();
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
                        .filter(|id| ids.insert(id))
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

/// The ids a listing has returned so far, as far as telling progress from a loop needs.
///
/// A set of every id (or of every id's hash) costs a cache miss per session once it outgrows the
/// cache: about a tenth of a full listing's CPU at 100,000 sessions. This keeps one bit per hash in
/// a table of at least [`SeenIds::BITS_PER_ID`] bits per id (128 KB at 100,000 ids), which stays
/// in cache, and the hashes themselves in a list that is only appended to, to rebuild the table
/// when it doubles.
///
/// It errs one way only: an id returned before always looks seen, so a listing that goes round
/// in circles is caught; a new id looks seen when its bit was already set by another, at most
/// one time in [`SeenIds::BITS_PER_ID`]. A page counts as stalled only when none of its ids looks
/// new, which for a page of new sessions takes every one of them to collide: about 8^-100 for a
/// full page, and [`MAX_STALLED_PAGES`] such pages in a row are needed.
#[derive(Debug)]
struct SeenIds {
    state: FastState,
    /// The table: bit `h mod (64 × len)` is set once an id with hash `h` has been seen.
    bits: Vec<u64>,
    /// The hash of every id inserted, to rebuild [`Self::bits`] at twice the size.
    hashes: Vec<u64>,
}

impl Default for SeenIds {
    fn default() -> Self {
        Self {
            state: FastState::default(),
            // 8,192 bits: room for the ids of ten pages before the first rebuild.
            bits: vec![0; 128],
            hashes: Vec::new(),
        }
    }
}

impl SeenIds {
    /// The table's bits per id at least: at most one id in eight is taken for a seen one.
    const BITS_PER_ID: usize = 8;

    /// Marks `id` seen; `true` if it looked new.
    fn insert(&mut self, id: &str) -> bool {
        let hash = self.state.hash_one(id);
        let new = set_bit(&mut self.bits, hash);
        // Kept even when it looked seen: it may have collided, and only its own hash sets its
        // bit again in the larger table.
        self.hashes.push(hash);
        if self.hashes.len() * Self::BITS_PER_ID > self.bits.len() * 64 {
            self.bits = vec![0; self.bits.len() * 2];
            for &hash in &self.hashes {
                set_bit(&mut self.bits, hash);
            }
        }
        new
    }
}

/// Sets the bit of `hash` in `bits` (a power of two of words long); `true` if it was clear.
fn set_bit(bits: &mut [u64], hash: u64) -> bool {
    let index = hash as usize & (bits.len() * 64 - 1);
    let (word, mask) = (index / 64, 1u64 << (index % 64));
    let clear = bits[word] & mask == 0;
    bits[word] |= mask;
    clear
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_id_seen_before_always_looks_seen() {
        let mut seen = SeenIds::default();
        let ids: Vec<String> = (0..50_000).map(|i| format!("session-{i}")).collect();
        for id in &ids {
            seen.insert(id);
        }
        // After every rebuild of the table, each id still finds its bit set.
        assert!(ids.iter().all(|id| !seen.insert(id)));
    }

    #[test]
    fn new_ids_look_new_but_for_rare_collisions() {
        let mut seen = SeenIds::default();
        let fresh = (0..100_000)
            .filter(|i| seen.insert(&format!("c8d1f9a2-{i:08}-4e7b")))
            .count();
        // At most one in BITS_PER_ID collides; on average far fewer, as the table is emptier
        // between rebuilds.
        assert!(fresh >= 100_000 - 100_000 / SeenIds::BITS_PER_ID, "{fresh}");
        assert!(seen.bits.len() * 64 >= seen.hashes.len() * SeenIds::BITS_PER_ID);
    }

    #[test]
    fn a_page_of_new_ids_is_never_taken_for_a_stalled_one() {
        let mut seen = SeenIds::default();
        for page in 0..1_000 {
            let fresh = (0..PAGE_SIZE)
                .filter(|i| seen.insert(&format!("{page}-{i}")))
                .count();
            assert!(fresh > 0, "page {page} looked stalled");
        }
    }

    #[test]
    fn dates_are_iso_instants_rounded_outwards() {
        let t = Utc.timestamp_opt(1_667_919_223, 400_000_000).unwrap();
        assert_eq!(iso_instant(t, false), "2022-11-08T14:53:43Z");
        assert_eq!(iso_instant(t, true), "2022-11-08T14:53:44Z");
    }
}
