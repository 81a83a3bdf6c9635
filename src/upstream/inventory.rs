//! Inventory listings: `page`/`size` pages of networks, hosts, users and user groups, and the
//! unpaged VPN region catalogue.
//!
//! Offset pages are cut from a list that can change between two requests, so a listing that
//! spans pages can skip an item or return one twice. The listing asks for the largest page the
//! API allows (one page for most tenants), follows `totalPages` as each page reports it, stops at
//! an empty page, keeps the first copy of each id, and gives up past a page cap
//! ([`UpstreamError::Pagination`]) rather than follow a server that never stops.

use std::collections::HashSet;

use serde_json::Value;

use super::Endpoint;
use super::client::{ApiClient, Priority};
use super::error::UpstreamError;
use super::records::Record;

/// Page size asked for: the API's maximum for these endpoints.
pub const PAGE_SIZE: u32 = 1000;

/// Most pages one inventory listing may take: a million items.
pub const MAX_PAGES: u32 = 1000;

/// Pages in a row that bring no item new to the listing before it is declared stuck: a list
/// that moves between two requests shifts a page by a few items, not by all of them.
const MAX_STALLED_PAGES: u32 = 3;

/// A listing's items and what it took to get them.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory<T> {
    /// The items, in the order first seen, each id once.
    pub items: Vec<T>,
    /// Requests it took.
    pub pages: u32,
    /// Items returned again on a later page (the list moved between two requests).
    pub duplicates: usize,
    /// Elements that were not objects with an id.
    pub skipped: usize,
}

impl<T> Default for Inventory<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            pages: 0,
            duplicates: 0,
            skipped: 0,
        }
    }
}

impl<T: Record> Inventory<T> {
    /// Adds the elements of one page, keeping the first copy of each id.
    fn extend(&mut self, content: &[Value], seen: &mut HashSet<String>) {
        for element in content {
            match T::from_json(element) {
                None => self.skipped += 1,
                Some(item) if seen.insert(item.id().to_owned()) => self.items.push(item),
                Some(_) => self.duplicates += 1,
            }
        }
    }
}

/// One page as the API wraps it (the spec's `Page...Response`).
struct Envelope {
    content: Vec<Value>,
    total_pages: Option<u64>,
}

/// Decodes a page: an object whose `content` is an array (or null: an empty page). Anything less
/// is a broken answer, retried like one.
fn decode_envelope(body: &[u8]) -> Result<Envelope, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Value::Object(mut page) = value else {
        return Err("a page must be a JSON object".into());
    };
    let content = match page.remove("content") {
        Some(Value::Array(items)) => items,
        Some(Value::Null) => Vec::new(),
        Some(_) => return Err("the page's content is not an array".into()),
        None => return Err("the page has no content".into()),
    };
    Ok(Envelope {
        content,
        total_pages: page.get("totalPages").and_then(Value::as_u64),
    })
}

/// Decodes an unpaged list: a JSON array (or, tolerated, a page object around one).
fn decode_array(body: &[u8]) -> Result<Envelope, String> {
    match serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())? {
        Value::Array(content) => Ok(Envelope {
            content,
            total_pages: Some(1),
        }),
        _ => decode_envelope(body),
    }
}

impl ApiClient {
    /// Lists every item of the paged collection at `path` (e.g. `networks`), at `priority`.
    pub async fn list_pages<T: Record>(
        &self,
        endpoint: Endpoint,
        path: &str,
        priority: Priority,
        max_pages: u32,
    ) -> Result<Inventory<T>, UpstreamError> {
        let mut inventory = Inventory::default();
        let mut seen = HashSet::new();
        let mut stalled = 0;
        for page in 0.. {
            if page >= max_pages {
                return Err(UpstreamError::Pagination {
                    endpoint: endpoint.as_str(),
                    detail: format!("more than {max_pages} pages of {PAGE_SIZE}"),
                });
            }
            let mut url = self.url(path);
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("size", &PAGE_SIZE.to_string());
            let envelope = self.get(endpoint, &url, priority, decode_envelope).await?;
            inventory.pages += 1;
            let before = inventory.items.len();
            inventory.extend(&envelope.content, &mut seen);
            stalled = if inventory.items.len() == before && !envelope.content.is_empty() {
                stalled + 1
            } else {
                0
            };
            if stalled >= MAX_STALLED_PAGES {
                return Err(UpstreamError::Pagination {
                    endpoint: endpoint.as_str(),
                    detail: format!("{stalled} pages in a row brought no new item"),
                });
            }
            // The last page by the latest count, or an empty page (the list shrank since), or,
            // when the API gives no count, a page that is not full.
            let last = match envelope.total_pages {
                Some(total) => u64::from(page) + 1 >= total,
                None => envelope.content.len() < PAGE_SIZE as usize,
            };
            if last || envelope.content.is_empty() {
                break;
            }
        }
        Ok(inventory)
    }

    /// Lists the unpaged collection at `path` (the VPN regions), at `priority`.
    pub async fn list_unpaged<T: Record>(
        &self,
        endpoint: Endpoint,
        path: &str,
        priority: Priority,
    ) -> Result<Inventory<T>, UpstreamError> {
        let url = self.url(path);
        let envelope = self.get(endpoint, &url, priority, decode_array).await?;
        let mut inventory = Inventory {
            pages: 1,
            ..Inventory::default()
        };
        inventory.extend(&envelope.content, &mut HashSet::new());
        Ok(inventory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::records::UserGroup;
    use serde_json::json;

    #[test]
    fn pages_decode_from_their_envelope() {
        let page = decode_envelope(
            br#"{"content":[{"id":"a"}],"totalElements":1,"totalPages":1,"page":0,"size":1000}"#,
        )
        .unwrap();
        assert_eq!((page.content.len(), page.total_pages), (1, Some(1)));
        let empty = decode_envelope(br#"{"content":null}"#).unwrap();
        assert_eq!((empty.content.len(), empty.total_pages), (0, None));
        for broken in [
            &b"[]"[..],
            b"{}",
            br#"{"content":{}}"#,
            b"<html>",
            br#"{"content":["#,
        ] {
            assert!(
                decode_envelope(broken).is_err(),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
        assert_eq!(decode_array(br#"[{"id":"r"}]"#).unwrap().content.len(), 1);
        assert_eq!(
            decode_array(br#"{"content":[{"id":"r"}]}"#)
                .unwrap()
                .content
                .len(),
            1
        );
        assert!(decode_array(br#""regions""#).is_err());
    }

    #[test]
    fn items_are_kept_once_by_id_and_those_without_one_are_skipped() {
        let mut inventory = Inventory::<UserGroup>::default();
        let mut seen = HashSet::new();
        inventory.extend(
            &[
                json!({"id": "a", "name": "A"}),
                json!({"name": "?"}),
                json!({"id": "b"}),
            ],
            &mut seen,
        );
        inventory.extend(
            &[json!({"id": "b", "name": "B again"}), json!(3)],
            &mut seen,
        );
        let ids: Vec<&str> = inventory.items.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!((inventory.duplicates, inventory.skipped), (1, 2));
    }
}
