//! The world's store of sessions: the indexes by creation and by update time, the listing of
//! windows over them, and what the API (records) and the tests (truth, summary) read.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::Serialize;

use super::{Session, Status, World, iso_millis};
use crate::catalog::{GROUPS, NETWORKS, PROTOCOLS, REASONS, REGIONS};
use crate::sampling::{splitmix, tag};

/// A listing request, already validated (all times on the server clock).
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    /// Inclusive lower bound of the window.
    pub(crate) start: i64,
    /// Exclusive upper bound, if any.
    pub(crate) end: Option<i64>,
    /// Only sessions with this status.
    pub(crate) status: Option<Status>,
    /// Window on creation time (true) or on updated time (false).
    pub(crate) only_new: bool,
    /// Continue after this key (from a cursor).
    pub(crate) after: Option<ListKey>,
    /// Page size.
    pub(crate) size: usize,
}

/// Position of a session in a listing: its (created or updated) time, then its sequence number.
pub(crate) type ListKey = (i64, u64);

/// A session as the API shows it (the spec's `SessionResponse`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionRecord<'a> {
    id: String,
    user_name: &'a str,
    user_id: &'a str,
    user_group: &'static str,
    host_name: &'static str,
    host_id: &'a str,
    network_name: &'static str,
    network_id: &'a str,
    device_name: &'a str,
    device_id: &'a str,
    #[serde(rename = "clientUUID")]
    client_uuid: &'a str,
    os_type: &'static str,
    os_version: &'static str,
    connector_name: &'static str,
    connector_id: &'a str,
    region: &'static str,
    session_start_time: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason_description: Option<&'static str>,
    first_name: &'static str,
    last_name: &'static str,
    email: &'a str,
    bytes_in: i64,
    bytes_out: i64,
    protocol: &'static str,
    public_ip: String,
    tunnel_ip_v4: String,
    tunnel_ip_v6: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration_seconds: Option<i64>,
}

/// The ground truth of one session, for tests (the public `TruthSession` is built from it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Truth {
    pub(crate) id: String,
    pub(crate) status: Status,
    pub(crate) region: &'static str,
    pub(crate) network: &'static str,
    pub(crate) host: &'static str,
    pub(crate) connector: &'static str,
    pub(crate) user_name: String,
    pub(crate) user_group: &'static str,
    pub(crate) protocol: &'static str,
    pub(crate) os_type: &'static str,
    pub(crate) bytes_in: i64,
    pub(crate) bytes_out: i64,
    pub(crate) start: i64,
    pub(crate) end: Option<i64>,
    pub(crate) updated: i64,
    pub(crate) reason: Option<&'static str>,
}

/// Counts for a quick look at the world.
#[derive(Debug, Clone, Default)]
pub(crate) struct Summary {
    /// Active sessions per region (regions without any are absent).
    pub(crate) active_by_region: BTreeMap<&'static str, u64>,
    /// Ended sessions per status.
    pub(crate) ended_by_status: BTreeMap<&'static str, u64>,
    /// All active sessions.
    pub(crate) active_total: u64,
}

impl World {
    /// Drops ended sessions that are older than the longest history window.
    pub(super) fn forget_before(&mut self, cutoff: i64) {
        let old: Vec<ListKey> = self
            .by_updated
            .range(..(cutoff, 0))
            .copied()
            .filter(|(_, seq)| !self.active.contains(seq))
            .collect();
        for (updated, seq) in old {
            self.by_updated.remove(&(updated, seq));
            if let Some(s) = self.sessions.remove(&seq) {
                self.by_created.remove(&(s.start_s, seq));
            }
        }
    }

    /// One page of a listing: the keys of up to `size` sessions, and whether more follow.
    pub(crate) fn list(&self, q: &Listing) -> (Vec<ListKey>, bool) {
        let index = if q.only_new {
            &self.by_created
        } else {
            &self.by_updated
        };
        let lower = match q.after {
            Some(after) if after >= (q.start, 0) => Bound::Excluded(after),
            _ => Bound::Included((q.start, 0)),
        };
        let upper = match q.end {
            Some(end) => Bound::Excluded((end, 0)),
            None => Bound::Unbounded,
        };
        let empty = match (lower, upper) {
            (Bound::Included(l), Bound::Excluded(u)) => l >= u,
            (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        };
        if empty {
            return (Vec::new(), false);
        }
        let mut matching = index.range((lower, upper)).copied().filter(|(_, seq)| {
            q.status
                .is_none_or(|status| self.sessions.get(seq).is_some_and(|s| s.status() == status))
        });
        let page: Vec<ListKey> = matching.by_ref().take(q.size).collect();
        let more = matching.next().is_some();
        (page, more)
    }

    /// The API's view of session `seq`, as of now.
    pub(crate) fn record(&self, seq: u64) -> Option<SessionRecord<'_>> {
        let s = self.sessions.get(&seq)?;
        let user = &self.company.users[s.user as usize];
        let device = &user.devices[usize::from(s.device)];
        let network = &NETWORKS[usize::from(s.network)];
        let (n, h, c) = (
            usize::from(s.network),
            usize::from(s.host),
            usize::from(s.connector),
        );
        let inventory = &self.inventory;
        let (bytes_in, bytes_out) = s.bytes(self.churn_now);
        let reason = s.end_s.map(|_| &REASONS[usize::from(s.reason)]);
        let (tunnel_ip_v4, tunnel_ip_v6) = device.tunnel_addresses();
        Some(SessionRecord {
            id: self.session_id(s),
            user_name: &user.user_name,
            user_id: &user.id,
            user_group: GROUPS[user.group].name,
            host_name: network.hosts[usize::from(s.host)],
            host_id: &inventory.hosts[inventory.host_index(n, h)].id,
            network_name: network.name,
            network_id: &inventory.networks[n].id,
            device_name: &device.name,
            device_id: &device.id,
            client_uuid: &device.client_uuid,
            os_type: device.os_type,
            os_version: device.os_version,
            connector_name: network.connectors[usize::from(s.connector)].0,
            connector_id: &inventory.connectors[inventory.connector_index(n, c)].id,
            region: REGIONS[usize::from(s.region)],
            session_start_time: iso_millis(s.start_s),
            status: s.status().as_str(),
            disconnect_reason: reason.map(|r| r.code),
            disconnect_reason_description: reason.map(|r| r.description),
            first_name: user.first,
            last_name: user.last,
            email: &user.email,
            bytes_in,
            bytes_out,
            protocol: PROTOCOLS[usize::from(s.protocol)].0,
            public_ip: format!(
                "{}.{}.{}.{}",
                s.public_ip[0], s.public_ip[1], s.public_ip[2], s.public_ip[3]
            ),
            tunnel_ip_v4,
            tunnel_ip_v6,
            session_end_time: s.end_s.map(iso_millis),
            session_duration_seconds: s.end_s.map(|end| (end - s.start_s) / 1_000),
        })
    }

    /// A session id in the style of the service's object ids: creation seconds, then 16 hex
    /// digits unique to the session.
    fn session_id(&self, s: &Session) -> String {
        let tail = splitmix(self.params.seed ^ splitmix(s.seq ^ (tag::SESSION_ID << 56)));
        format!("{:08x}{tail:016x}", (s.start_s / 1_000).max(0))
    }

    /// Every session the world holds, in creation order.
    pub(crate) fn truth(&self) -> Vec<Truth> {
        self.sessions
            .values()
            .map(|s| {
                let user = &self.company.users[s.user as usize];
                let network = &NETWORKS[usize::from(s.network)];
                let (bytes_in, bytes_out) = s.bytes(self.churn_now);
                Truth {
                    id: self.session_id(s),
                    status: s.status(),
                    region: REGIONS[usize::from(s.region)],
                    network: network.name,
                    host: network.hosts[usize::from(s.host)],
                    connector: network.connectors[usize::from(s.connector)].0,
                    user_name: user.user_name.clone(),
                    user_group: GROUPS[user.group].name,
                    protocol: PROTOCOLS[usize::from(s.protocol)].0,
                    os_type: user.devices[usize::from(s.device)].os_type,
                    bytes_in,
                    bytes_out,
                    start: s.start_s,
                    end: s.end_s,
                    updated: s.updated_s,
                    reason: s.end_s.map(|_| REASONS[usize::from(s.reason)].code),
                }
            })
            .collect()
    }

    /// Active sessions per region and ended ones per status.
    pub(crate) fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for s in self.sessions.values() {
            match s.status() {
                Status::Active => {
                    *summary
                        .active_by_region
                        .entry(REGIONS[usize::from(s.region)])
                        .or_default() += 1;
                    summary.active_total += 1;
                }
                status => *summary.ended_by_status.entry(status.as_str()).or_default() += 1,
            }
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::tests::{MONDAY, params};
    use crate::world::{DAY, HOUR, MINUTE};

    #[test]
    fn old_sessions_are_forgotten() {
        let mut world = World::new(params(40), MONDAY);
        world.advance_to(MONDAY + 40 * DAY);
        let oldest = world.truth().iter().map(|t| t.updated).min().unwrap_or(0);
        assert!(
            oldest >= MONDAY + 10 * DAY,
            "kept a session updated {oldest}"
        );
        assert_eq!(world.by_created.len(), world.sessions.len());
        assert_eq!(world.by_updated.len(), world.sessions.len());
    }

    #[test]
    fn listings_page_through_windows_in_order() {
        let now = MONDAY + 12 * HOUR;
        let world = World::new(params(300), now);
        let listing = |start, end, only_new, status, after| Listing {
            start,
            end,
            status,
            only_new,
            after,
            size: 50,
        };
        // Page through everything updated in the last day; every session once, in key order.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = world.list(&listing(now - DAY, None, false, None, after));
            assert!(page.len() <= 50);
            seen.extend(page.iter().copied());
            if !more {
                break;
            }
            after = page.last().copied();
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let expected = world
            .truth()
            .iter()
            .filter(|t| t.updated >= now - DAY)
            .count();
        assert_eq!(seen.len(), expected);

        // A session created in a window and ended after it: returned by creation only.
        let truth = world.truth();
        let s = truth
            .iter()
            .find(|t| {
                t.start < now - 2 * HOUR
                    && t.end.is_some_and(|e| e > now - HOUR)
                    && t.start > now - 6 * HOUR
            })
            .expect("a session that ended an hour after the window");
        let window = (s.start - MINUTE, Some(now - 2 * HOUR));
        let ids = |only_new, status| -> Vec<String> {
            let (page, _) = world.list(&Listing {
                size: 100,
                ..listing(window.0, window.1, only_new, status, None)
            });
            page.iter()
                .filter_map(|k| world.record(k.1))
                .map(|r| r.id)
                .collect()
        };
        assert!(ids(true, None).contains(&s.id));
        assert!(!ids(false, None).contains(&s.id));
        let (page, _) = world.list(&listing(now - DAY, None, false, Some(Status::Active), None));
        assert!(
            page.iter()
                .all(|k| world.sessions[&k.1].status() == Status::Active)
        );
        let (empty, more) = world.list(&listing(now, Some(now), false, None, None));
        assert!(
            empty.is_empty() && !more,
            "startDate not before endDate: nothing"
        );
    }
}
