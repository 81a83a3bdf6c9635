//! The inventory endpoints: `GET /api/v1/networks`, `/hosts` (each embedding its connectors),
//! `/networks/connectors` (`networkId` filter), `/hosts/connectors` (`hostId`), `/users`
//! (embedding devices), `/user-groups` and `/devices` (`userId`), in pages of `page` (from 0)
//! and `size` (1 to 1000, default 10); and `GET /api/v1/regions`, one unpaged array.
//!
//! Only v1 has them: the spec describes v1, and the beta API that the vendor's notes document is
//! the sessions endpoint alone, so `/api/beta/...` answers 404 here.
//!
//! A page is cut from the list as it is at that request (ordered by id), so an object added or
//! removed between two requests shifts the pages after it: a listing can skip an object or
//! return one twice, as offset paging over the real service's lists can. A filter naming no
//! object gives an empty page, as a query that matches nothing does.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::routing::get;
use serde::Serialize;

use super::faults::{Endpoint, Prepared, Roll, server_error};
use super::problems::Problems;
use super::{bounded, first};
use crate::world::{ConnectorKind, region_records};
use crate::{Simulator, State as SimState};

/// The largest `size`.
const MAX_SIZE: i64 = 1_000;
/// `size` when none is given.
const DEFAULT_SIZE: usize = 10;

/// What an inventory endpoint lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Networks,
    Hosts,
    NetworkConnectors,
    HostConnectors,
    Users,
    UserGroups,
    Devices,
    Regions,
}

/// The inventory routes.
pub(super) fn routes() -> Router<Simulator> {
    let list = |collection: Collection| {
        get(
            move |State(sim): State<Simulator>,
                  Path(version): Path<String>,
                  headers: HeaderMap,
                  uri: Uri| async move {
                let prepared = {
                    let mut state = sim.state();
                    state.answer_inventory(collection, &version, &headers, &uri)
                };
                prepared.deliver().await
            },
        )
    };
    Router::new()
        .route("/api/{version}/networks", list(Collection::Networks))
        .route(
            "/api/{version}/networks/connectors",
            list(Collection::NetworkConnectors),
        )
        .route("/api/{version}/hosts", list(Collection::Hosts))
        .route(
            "/api/{version}/hosts/connectors",
            list(Collection::HostConnectors),
        )
        .route("/api/{version}/users", list(Collection::Users))
        .route("/api/{version}/user-groups", list(Collection::UserGroups))
        .route("/api/{version}/devices", list(Collection::Devices))
        .route("/api/{version}/regions", list(Collection::Regions))
}

/// Which page: validated `page` and `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paging {
    page: usize,
    size: usize,
}

impl Paging {
    /// The page's part of `keys`: empty beyond the last page.
    fn cut<'k, K>(&self, keys: &'k [K]) -> &'k [K] {
        let start = self.page.saturating_mul(self.size).min(keys.len());
        let end = start.saturating_add(self.size).min(keys.len());
        &keys[start..end]
    }
}

/// Validates `page` and `size` as the spec defines them (int32, `page` from 0, `size` from 1 to
/// 1000, defaults 0 and 10).
fn parse_paging(pairs: &[(String, String)]) -> Result<Paging, Problems> {
    let mut problems = Problems::default();
    let page = bounded(pairs, "page", 0, i64::from(i32::MAX), &mut problems);
    let size = bounded(pairs, "size", 1, MAX_SIZE, &mut problems);
    match (page, size) {
        (Ok(page), Ok(size)) => Ok(Paging {
            page: page.map_or(0, |p| p as usize),
            size: size.map_or(DEFAULT_SIZE, |s| s as usize),
        }),
        _ => Err(problems),
    }
}

/// The spec's page envelope (`PageNetworkResponse` and the others alike).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    content: Vec<T>,
    total_elements: usize,
    total_pages: usize,
    number_of_elements: usize,
    page: usize,
    size: usize,
}

/// The page `paging` of `keys`, its content made by `records`, as JSON.
fn page_body<K, T: Serialize>(
    keys: &[K],
    paging: Paging,
    records: impl FnOnce(&[K]) -> Vec<T>,
) -> serde_json::Result<Vec<u8>> {
    let content = records(paging.cut(keys));
    serde_json::to_vec(&Page {
        number_of_elements: content.len(),
        content,
        total_elements: keys.len(),
        total_pages: keys.len().div_ceil(paging.size),
        page: paging.page,
        size: paging.size,
    })
}

impl SimState {
    /// Answers a request for `collection`.
    fn answer_inventory(
        &mut self,
        collection: Collection,
        version: &str,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Prepared {
        let pairs = match self.open(version, true, headers, uri) {
            Ok(opened) => opened.pairs,
            Err(refusal) => return *refusal,
        };
        // The regions are one array: paging parameters mean nothing to it.
        let paging = match collection {
            Collection::Regions => None,
            _ => match parse_paging(&pairs) {
                Ok(paging) => Some(paging),
                Err(problems) => return Prepared::now(problems.into_response()),
            },
        };
        let roll = Roll::draw(&self.config.faults, Endpoint::Inventory);
        if let Some(response) = roll.failure_response() {
            return Prepared {
                response,
                delay: roll.delay,
            };
        }
        let world = &self.world;
        let paging = paging.unwrap_or(Paging {
            page: 0,
            size: DEFAULT_SIZE,
        });
        let body = match collection {
            Collection::Networks => {
                page_body(&world.network_keys(), paging, |k| world.network_records(k))
            }
            Collection::Hosts => page_body(&world.host_keys(), paging, |k| world.host_records(k)),
            Collection::NetworkConnectors => page_body(
                &world.connector_keys(ConnectorKind::Network, first(&pairs, "networkId")),
                paging,
                |k| world.connector_records(k),
            ),
            Collection::HostConnectors => page_body(
                &world.connector_keys(ConnectorKind::Host, first(&pairs, "hostId")),
                paging,
                |k| world.connector_records(k),
            ),
            Collection::Users => page_body(&world.user_keys(), paging, |k| world.user_records(k)),
            Collection::UserGroups => {
                page_body(&world.group_keys(), paging, |k| world.group_records(k))
            }
            Collection::Devices => {
                page_body(&world.device_keys(first(&pairs, "userId")), paging, |k| {
                    world.device_records(k)
                })
            }
            Collection::Regions => serde_json::to_vec(&region_records()),
        };
        match body {
            Ok(body) => roll.ok(body),
            Err(_) => Prepared::now(server_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::query_pairs;

    fn paging(query: &str) -> Result<Paging, Vec<(String, &'static str)>> {
        let uri: Uri = format!("/x?{query}").parse().expect("uri");
        parse_paging(&query_pairs(&uri).expect("pairs")).map_err(|p| {
            p.details
                .iter()
                .flat_map(|(k, v)| v.iter().map(move |d| (k.clone(), d.error_code)))
                .collect()
        })
    }

    #[test]
    fn paging_parameters_are_checked_like_the_spec_says() {
        assert_eq!(paging(""), Ok(Paging { page: 0, size: 10 }));
        assert_eq!(
            paging("page=3&size=1000"),
            Ok(Paging {
                page: 3,
                size: 1_000
            })
        );
        assert_eq!(paging("page=&size="), Ok(Paging { page: 0, size: 10 }));
        assert_eq!(
            paging("page=-1"),
            Err(vec![("page".into(), "OUT_OF_RANGE")])
        );
        assert_eq!(paging("size=0"), Err(vec![("size".into(), "OUT_OF_RANGE")]));
        assert_eq!(
            paging("size=1001"),
            Err(vec![("size".into(), "OUT_OF_RANGE")])
        );
        assert_eq!(
            paging("page=2147483648"),
            Err(vec![("page".into(), "OUT_OF_RANGE")])
        );
        assert_eq!(
            paging("page=one&size=1.5"),
            Err(vec![
                ("page".into(), "INVALID_FORMAT"),
                ("size".into(), "INVALID_FORMAT")
            ])
        );
    }

    #[test]
    fn pages_are_cut_from_the_list_as_it_is() {
        let keys: Vec<u32> = (0..25).collect();
        let cut = |page, size| Paging { page, size }.cut(&keys).to_vec();
        assert_eq!(cut(0, 10), (0..10).collect::<Vec<_>>());
        assert_eq!(cut(2, 10), (20..25).collect::<Vec<_>>());
        assert!(cut(3, 10).is_empty());
        assert!(cut(i32::MAX as usize, 1_000).is_empty());
        let body = page_body(&keys, Paging { page: 2, size: 10 }, |k| k.to_vec()).expect("json");
        let page: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            page,
            serde_json::json!({
                "content": [20, 21, 22, 23, 24],
                "totalElements": 25,
                "totalPages": 3,
                "numberOfElements": 5,
                "page": 2,
                "size": 10
            })
        );
        let empty =
            page_body(&[] as &[u32], Paging { page: 0, size: 10 }, |k| k.to_vec()).expect("json");
        let empty: serde_json::Value = serde_json::from_slice(&empty).expect("json");
        assert_eq!(empty["totalPages"], 0);
    }
}
