//! The pure core: session records in, counters and gauges out. No IO, no clock reads.
//!
//! Every rule of the counting contract lives here, so each can be tested in microseconds:
//!
//! - **Ended** sessions count once, however often the API returns them, if they ended at or after
//!   T0 (the exporter's start, on the API server's clock). Ids of ended sessions are remembered until
//!   the [horizon](SessionTracker::advance_horizon) passes them; records that ended before the
//!   horizon are ignored, which is what lets the memory be forgotten without double counting.
//! - **Started** sessions count once if their `sessionStartTime` is at or after T0, whether they are
//!   first seen active or already ended.
//! - **Bytes**: a session active at some moment at or after T0 adds its full value when first seen,
//!   then its growth; a lower value later never subtracts.
//! - **Active**: sessions seen ACTIVE and not ended; a full listing
//!   ([`finish_full_listing`](SessionTracker::finish_full_listing)) hides those it did not return,
//!   without forgetting them, so that a late ended record still counts once and a session that
//!   reappears is not counted as new.
//! - An ACTIVE record that arrives after the same session's ended record is ignored: ending is final.
//!
//! Series lifetime ([`expire_series`](SessionTracker::expire_series)): the active gauge and the
//! counters each intern their label sets in a table of their own (their dimensions may differ).
//! A gauge label set is forgotten once no tracked session holds it. A counter label set is
//! removed, with every series of it in every counter family, once none of its counters has moved
//! and no tracked session (live, or ended and still remembered) has held it for the series TTL;
//! if it comes back it starts from zero. A reason of a label set still in use goes alone once
//! its count of ended sessions has been still for the TTL. Each table holds at most a cap of
//! label sets of its own; beyond it, new label sets fold into one whose every value is `other`,
//! where their sessions are still counted exactly.
//!
//! The poller feeds records with the server time at which they were observed; the tracker never
//! asks what time it is.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::fast_hash::{FastState, IdMap};
use crate::upstream::model::{Session, SessionStatus};

/// Upper bounds of the duration histogram, in seconds (from the contract).
pub const DURATION_BUCKETS: [f64; 10] = [
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 259200.0,
];

/// Distinct `reason` values that keep a series of their own; later ones fold into `other`.
pub const MAX_REASONS: usize = 50;

/// Label value for a missing or empty field.
pub const NONE_VALUE: &str = "none";

/// Label value that absorbs reasons beyond [`MAX_REASONS`].
pub const OTHER_REASON: &str = "other";

/// Value of every dimension of the catch-all label set that absorbs label sets beyond the cap.
pub const OTHER_VALUE: &str = "other";

/// Longest label value kept; longer values are cut so one odd record cannot bloat every scrape.
const MAX_LABEL_LEN: usize = 128;

/// A session dimension that can become a label (`--sessions.labels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// `vpn_region` from `region`.
    VpnRegion,
    /// `network` from `networkName`.
    Network,
    /// `host` from `hostName`.
    Host,
    /// `connector` from `connectorName`.
    Connector,
    /// `user_group` from `userGroup`.
    UserGroup,
    /// `protocol` from `protocol`.
    Protocol,
    /// `os_type` from `osType`.
    OsType,
}

impl Dimension {
    /// Every dimension, in the order the documentation lists them.
    pub const ALL: [Dimension; 7] = [
        Self::VpnRegion,
        Self::Network,
        Self::Host,
        Self::Connector,
        Self::UserGroup,
        Self::Protocol,
        Self::OsType,
    ];

    /// The default of `--sessions.labels`.
    pub const DEFAULT: [Dimension; 5] = [
        Self::VpnRegion,
        Self::Network,
        Self::UserGroup,
        Self::Protocol,
        Self::OsType,
    ];

    /// The label name.
    pub fn label_name(self) -> &'static str {
        match self {
            Self::VpnRegion => "vpn_region",
            Self::Network => "network",
            Self::Host => "host",
            Self::Connector => "connector",
            Self::UserGroup => "user_group",
            Self::Protocol => "protocol",
            Self::OsType => "os_type",
        }
    }

    /// The label names of `dims`, in order.
    pub fn label_names(dims: &[Dimension]) -> Vec<&'static str> {
        dims.iter().map(|d| d.label_name()).collect()
    }

    /// Looks a dimension up by label name.
    pub fn from_label_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.label_name() == name)
    }

    /// The session's value for this dimension, `none` when missing.
    pub fn value<'s>(self, s: &'s Session<'_>) -> &'s str {
        let v = match self {
            Self::VpnRegion => &s.region,
            Self::Network => &s.network,
            Self::Host => &s.host,
            Self::Connector => &s.connector,
            Self::UserGroup => &s.user_group,
            Self::Protocol => &s.protocol,
            Self::OsType => &s.os_type,
        };
        v.as_deref().map_or(NONE_VALUE, clip)
    }
}

fn clip(v: &str) -> &str {
    if v.len() <= MAX_LABEL_LEN {
        return v;
    }
    let mut end = MAX_LABEL_LEN;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    &v[..end]
}

/// Label values of one series, in the order of the configured dimensions.
pub type LabelValues = Arc<[Arc<str>]>;

/// `completed` or `failed`, the `status` label of the duration histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndStatus {
    /// COMPLETED.
    Completed,
    /// FAILED.
    Failed,
}

impl EndStatus {
    /// The label value.
    pub fn label_value(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// Bucket counts of one histogram series (not cumulative; one slot per bound plus `+Inf`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramCounts {
    /// Observations per bucket of [`DURATION_BUCKETS`], the last slot being `+Inf`.
    pub buckets: [u64; DURATION_BUCKETS.len() + 1],
    /// Number of observations.
    pub count: u64,
    /// Sum of the observed values.
    pub sum: f64,
}

impl HistogramCounts {
    fn observe(&mut self, value: f64) {
        let slot = DURATION_BUCKETS
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[slot] += 1;
        self.count += 1;
        self.sum += value;
    }
}

/// What one batch did, for logs and self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records that changed nothing because they were seen before.
    pub duplicates: usize,
    /// Records without an id or with an unknown status.
    pub invalid: usize,
    /// Ended records ignored because they ended before T0 or the horizon.
    pub too_old: usize,
    /// Sessions newly counted as ended.
    pub ended: usize,
    /// Sessions newly counted as started.
    pub started: usize,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: Self) {
        self.duplicates += o.duplicates;
        self.invalid += o.invalid;
        self.too_old += o.too_old;
        self.ended += o.ended;
        self.started += o.started;
    }
}

/// A session believed active (or hidden by a full listing that did not return it).
#[derive(Debug)]
struct Live {
    /// Its label set in the counters' table.
    labels: u32,
    /// Its label set in the active gauge's table.
    gauge: u32,
    bytes_in: u64,
    bytes_out: u64,
    /// Generation of the last full listing (or later window) that saw it ACTIVE.
    seen_gen: u64,
    /// Set when a full listing did not return it: the server time of that listing.
    hidden_since: Option<DateTime<Utc>>,
}

/// What is remembered of an ended session until the horizon passes it.
#[derive(Debug)]
struct Ended {
    /// When it ended (or, without any time, when its record was seen): forgetting is keyed on this.
    at: DateTime<Utc>,
    labels: u32,
    bytes_in: u64,
    bytes_out: u64,
    /// False for sessions that ended before T0: remembered only so a stale ACTIVE record of theirs
    /// is not taken for a new session.
    counted: bool,
}

/// The counters of one counter label set, and what its lifetime is judged by.
#[derive(Debug, Default, Clone, Copy)]
struct SeriesCounters {
    started: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// Sessions counted as ended (failed ones included): with the three above, every counter.
    ended: u64,
    /// The sum of the counters at the last [`SessionTracker::expire_series`]: the counters never
    /// decrease, so a different sum means one of them moved.
    sum_seen: u64,
    /// The server time at which its counters were last seen to move or a session was last seen
    /// to hold it; `None` until the first sweep after it was created.
    used_at: Option<DateTime<Utc>>,
}

impl SeriesCounters {
    fn sum(&self) -> u64 {
        self.started
            .wrapping_add(self.bytes_in)
            .wrapping_add(self.bytes_out)
            .wrapping_add(self.ended)
    }
}

/// Interns label-value tuples so per-session state holds a `u32`.
///
/// Lookups join the parts into a reused buffer, so a label set seen before costs no allocation:
/// a full listing of 100,000 sessions meets a few thousand distinct sets at most. Removed tuples
/// free their id for the next new one, so the tables stay as large as the label sets in use.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32, FastState>,
    values: Vec<Option<LabelValues>>,
    free: Vec<u32>,
    key: String,
}

impl Interner {
    fn intern(&mut self, parts: &[&str]) -> u32 {
        self.intern_within(parts, usize::MAX)
            .expect("an unbounded table always has room")
    }

    /// The id of `parts`, added unless the table already holds `cap` tuples.
    fn intern_within(&mut self, parts: &[&str], cap: usize) -> Option<u32> {
        self.key.clear();
        for part in parts {
            // U+001F (unit separator) cannot be confused with text inside a label value.
            self.key.push_str(part);
            self.key.push('\u{1f}');
        }
        if let Some(&id) = self.ids.get(self.key.as_str()) {
            return Some(id);
        }
        if self.ids.len() >= cap {
            return None;
        }
        let values: LabelValues = parts.iter().map(|p| Arc::<str>::from(*p)).collect();
        let id = match self.free.pop() {
            Some(id) => {
                self.values[id as usize] = Some(values);
                id
            }
            None => {
                self.values.push(Some(values));
                u32::try_from(self.values.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.ids.insert(self.key.as_str().into(), id);
        Some(id)
    }

    /// The tuple of `id`; `None` for an id that was removed (no caller holds one).
    fn get(&self, id: u32) -> Option<&LabelValues> {
        self.values.get(id as usize)?.as_ref()
    }

    /// Forgets the tuple of `id` and frees the id for reuse.
    fn remove(&mut self, id: u32) {
        let Some(values) = self.values.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        let key: String = values.iter().flat_map(|v| [&**v, "\u{1f}"]).collect();
        self.ids.remove(key.as_str());
        self.free.push(id);
    }

    /// Ids handed out so far, removed ones included: every id is below this.
    fn slots(&self) -> usize {
        self.values.len()
    }

    /// Every tuple held, with its id.
    fn iter(&self) -> impl Iterator<Item = (u32, &LabelValues)> {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(id, v)| Some((id as u32, v.as_ref()?)))
    }
}

/// The label sets of one kind of series (the active gauge's, or the counters'): sessions' values
/// of its dimensions, at most `cap` of their own; later ones fold into the catch-all label set
/// whose every value is [`OTHER_VALUE`].
#[derive(Debug)]
struct LabelTable {
    dims: Vec<Dimension>,
    interner: Interner,
    cap: usize,
    /// Sessions placed in the catch-all because the table was full.
    folded: u64,
}

impl LabelTable {
    fn new(dims: Vec<Dimension>, cap: usize) -> Self {
        Self {
            dims,
            interner: Interner::default(),
            cap,
            folded: 0,
        }
    }

    /// The id of the session's label set (the catch-all's when the table is full).
    fn id(&mut self, s: &Session) -> u32 {
        let mut parts: [&str; Dimension::ALL.len()] = [""; Dimension::ALL.len()];
        for (slot, dim) in parts.iter_mut().zip(&self.dims) {
            *slot = dim.value(s);
        }
        let parts = &parts[..self.dims.len()];
        if let Some(id) = self.interner.intern_within(parts, self.cap) {
            return id;
        }
        self.folded += 1;
        // The catch-all itself is not held to the cap: it is the one place left to count in.
        self.interner
            .intern(&[OTHER_VALUE; Dimension::ALL.len()][..self.dims.len()])
    }

    fn label_names(&self) -> Vec<&'static str> {
        Dimension::label_names(&self.dims)
    }
}

/// Which labels the session series carry, and how long and how many of their label sets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesConfig {
    /// Dimensions of the active gauge (`--sessions.labels`).
    pub gauge_dims: Vec<Dimension>,
    /// Dimensions of the counters (`--sessions.counter-labels`).
    pub counter_dims: Vec<Dimension>,
    /// How long a counter label set stays once its counters stop moving and no tracked session
    /// holds it (`--sessions.series-ttl`); `None` keeps it for ever.
    pub ttl: Option<chrono::Duration>,
    /// Label sets of their own in each table (`--sessions.max-label-sets`); later ones fold into
    /// the catch-all.
    pub max_label_sets: usize,
}

impl SeriesConfig {
    /// The same dimensions everywhere, kept for ever, without a cap.
    pub fn unbounded(dims: Vec<Dimension>) -> Self {
        Self {
            gauge_dims: dims.clone(),
            counter_dims: dims,
            ttl: None,
            max_label_sets: usize::MAX,
        }
    }
}

/// Folds `disconnectReason` values into at most [`MAX_REASONS`] series plus `other`.
#[derive(Debug, Default)]
struct ReasonFolder {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    other: Option<u32>,
}

impl ReasonFolder {
    fn id(&mut self, reason: Option<&str>) -> u32 {
        let name = reason.map_or(NONE_VALUE, clip);
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        if self.names.len() - usize::from(self.other.is_some()) >= MAX_REASONS {
            return self.other_id();
        }
        let name: Arc<str> = Arc::from(name);
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn other_id(&mut self) -> u32 {
        if let Some(id) = self.other {
            return id;
        }
        let id = self.names.len() as u32;
        // `other` is registered under its name too, so a real reason called "other" shares the series.
        let name: Arc<str> = Arc::from(OTHER_REASON);
        let id = *self.ids.entry(name.clone()).or_insert_with(|| {
            self.names.push(name);
            id
        });
        self.other = Some(id);
        id
    }
}

/// Everything the metrics layer needs from one moment of the tracker.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Label names of the session series, in order.
    pub label_names: Vec<&'static str>,
    /// Active sessions per label set (label sets with none are absent).
    pub active: Vec<(LabelValues, u64)>,
    /// `cloudconnexa_sessions_started_total` per label set.
    pub started: Vec<(LabelValues, u64)>,
    /// Bytes in per label set.
    pub bytes_in: Vec<(LabelValues, u64)>,
    /// Bytes out per label set.
    pub bytes_out: Vec<(LabelValues, u64)>,
    /// Ended sessions per (label set, reason).
    pub ended: Vec<(LabelValues, Arc<str>, u64)>,
    /// Failed sessions per (label set, reason).
    pub failed: Vec<(LabelValues, Arc<str>, u64)>,
    /// Duration histograms per (vpn_region, status).
    pub durations: Vec<(Arc<str>, EndStatus, HistogramCounts)>,
    /// Sessions held as active or hidden.
    pub tracked_live: usize,
    /// Ended sessions remembered for de-duplication.
    pub tracked_ended: usize,
    /// Label names of the counters, in order (those of the gauge are [`label_names`](Self::label_names)).
    pub counter_label_names: Vec<&'static str>,
    /// Sessions whose gauge label set was folded into the catch-all, since the start.
    pub folded_active: u64,
    /// Sessions whose counter label set was folded into the catch-all, since the start.
    pub folded_counters: u64,
}

/// The session tracker. See the module documentation for the rules it keeps.
#[derive(Debug)]
pub struct SessionTracker {
    t0: DateTime<Utc>,
    horizon: DateTime<Utc>,
    /// Label sets of the counters; [`Self::series`] is indexed by their ids.
    labels: LabelTable,
    /// Label sets of the active gauge.
    gauge: LabelTable,
    ttl: Option<chrono::Duration>,
    regions: Interner,
    /// The counters' label set of each gauge label set (by gauge id), found once and then
    /// reused, when the counters' labels are among the gauge's (as by default): a new session's
    /// labels are then looked up in one table, not two. Empty otherwise.
    counters_of_gauge: Vec<Option<u32>>,
    /// Whether the counters' labels are among the gauge's.
    counters_within_gauge: bool,
    series: Vec<SeriesCounters>,
    live: IdMap<Live>,
    /// Entries of [`Self::live`] whose `seen_gen` is [`Self::generation`]: when it is all of them,
    /// finishing a full listing has nothing to hide and need not sweep the map.
    seen_in_generation: usize,
    ended: IdMap<Ended>,
    ended_counts: HashMap<(u32, u32), u64>,
    failed_counts: HashMap<(u32, u32), u64>,
    /// Per (counter label set, reason) of `ended_counts`: its count at the last sweep and when it
    /// last moved (server time). Kept by [`Self::expire_series`] alone.
    reasons_seen: HashMap<(u32, u32), (u64, DateTime<Utc>)>,
    durations: HashMap<(u32, EndStatus), HistogramCounts>,
    reasons: ReasonFolder,
    generation: u64,
}

impl SessionTracker {
    /// A tracker for an exporter that started at `t0` (server clock), labelling every series by
    /// `dims`, keeping label sets for ever and without a cap.
    pub fn new(t0: DateTime<Utc>, dims: Vec<Dimension>) -> Self {
        Self::with_series(t0, SeriesConfig::unbounded(dims))
    }

    /// A tracker for an exporter that started at `t0` (server clock), with the labels, series
    /// lifetime and cap of `config`.
    pub fn with_series(t0: DateTime<Utc>, config: SeriesConfig) -> Self {
        Self {
            t0,
            horizon: t0,
            counters_within_gauge: config
                .counter_dims
                .iter()
                .all(|d| config.gauge_dims.contains(d)),
            counters_of_gauge: Vec::new(),
            labels: LabelTable::new(config.counter_dims, config.max_label_sets),
            gauge: LabelTable::new(config.gauge_dims, config.max_label_sets),
            ttl: config.ttl,
            regions: Interner::default(),
            series: Vec::new(),
            live: IdMap::default(),
            seen_in_generation: 0,
            ended: IdMap::default(),
            ended_counts: HashMap::new(),
            failed_counts: HashMap::new(),
            reasons_seen: HashMap::new(),
            durations: HashMap::new(),
            reasons: ReasonFolder::default(),
            generation: 0,
        }
    }

    /// T0, the exporter's start on the server's clock.
    pub fn t0(&self) -> DateTime<Utc> {
        self.t0
    }

    /// Starts a full listing of ACTIVE sessions: feed its pages with [`apply`](Self::apply) and call
    /// [`finish_full_listing`](Self::finish_full_listing) once the last page is in.
    pub fn begin_full_listing(&mut self) {
        self.generation += 1;
        self.seen_in_generation = 0;
    }

    /// Ends a complete full listing taken at `listed_at` (server clock): sessions it did not
    /// return (and no window returned as ACTIVE since it began) are hidden from the active gauge.
    /// They are kept, not forgotten, until the horizon passes: a late ended record still counts once,
    /// and a session that shows up again is not new.
    pub fn finish_full_listing(&mut self, listed_at: DateTime<Utc>) {
        debug_assert_eq!(
            self.seen_in_generation,
            self.live
                .values()
                .filter(|l| l.seen_gen == self.generation)
                .count(),
            "the count of sessions seen in this listing"
        );
        if self.seen_in_generation == self.live.len() {
            // Every session tracked was seen since the listing began (always so for the first).
            return;
        }
        let generation = self.generation;
        for live in self.live.values_mut() {
            if live.seen_gen < generation && live.hidden_since.is_none() {
                live.hidden_since = Some(listed_at);
            }
        }
    }

    /// Moves the horizon to `horizon` (it never moves back): ended records that ended before it are
    /// ignored from now on, ended sessions before it are forgotten, and sessions hidden before it
    /// are dropped. The poller sets it to the start of the next window it will ask for, less a
    /// margin, so no window can return a session that was forgotten.
    pub fn advance_horizon(&mut self, horizon: DateTime<Utc>) {
        if horizon <= self.horizon {
            return;
        }
        self.horizon = horizon;
        self.ended.retain(|e| e.at >= horizon);
        let generation = self.generation;
        let mut seen_dropped = 0;
        self.live.retain(|l| {
            let keep = l.hidden_since.is_none_or(|hidden| hidden >= horizon);
            seen_dropped += usize::from(!keep && l.seen_gen == generation);
            keep
        });
        self.seen_in_generation -= seen_dropped;
    }

    /// Applies one page of records observed at `observed_at` (server clock).
    pub fn apply(&mut self, sessions: &[Session], observed_at: DateTime<Utc>) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        for s in sessions {
            self.apply_one(s, observed_at, &mut outcome);
        }
        outcome
    }

    fn apply_one(&mut self, s: &Session, observed_at: DateTime<Utc>, outcome: &mut BatchOutcome) {
        let Some(id) = s.id.as_deref() else {
            outcome.invalid += 1;
            return;
        };
        match s.status.unwrap_or(SessionStatus::Unknown) {
            SessionStatus::Active => self.apply_active(id, s, outcome),
            SessionStatus::Completed => {
                self.apply_ended(id, s, EndStatus::Completed, observed_at, outcome);
            }
            SessionStatus::Failed => {
                self.apply_ended(id, s, EndStatus::Failed, observed_at, outcome)
            }
            SessionStatus::Unknown => outcome.invalid += 1,
        }
    }

    fn apply_active(&mut self, id: &str, s: &Session, outcome: &mut BatchOutcome) {
        if self.ended.contains_key(id) {
            // Ending is final: a stale ACTIVE record changes nothing.
            outcome.duplicates += 1;
            return;
        }
        let generation = self.generation;
        if let Some(live) = self.live.get_mut(id) {
            if live.seen_gen != generation {
                self.seen_in_generation += 1;
            }
            live.seen_gen = generation;
            live.hidden_since = None;
            let series = &mut self.series[live.labels as usize];
            grow(&mut live.bytes_in, s.bytes_in, &mut series.bytes_in);
            grow(&mut live.bytes_out, s.bytes_out, &mut series.bytes_out);
            outcome.duplicates += 1;
            return;
        }
        let (labels, gauge) = self.new_session_label_ids(s);
        let series = &mut self.series[labels as usize];
        if s.start_time.is_some_and(|t| t >= self.t0) {
            series.started += 1;
            outcome.started += 1;
        }
        let mut live = Live {
            labels,
            gauge,
            bytes_in: 0,
            bytes_out: 0,
            seen_gen: generation,
            hidden_since: None,
        };
        grow(&mut live.bytes_in, s.bytes_in, &mut series.bytes_in);
        grow(&mut live.bytes_out, s.bytes_out, &mut series.bytes_out);
        self.live.insert(id, live);
        self.seen_in_generation += 1;
    }

    fn apply_ended(
        &mut self,
        id: &str,
        s: &Session,
        status: EndStatus,
        observed_at: DateTime<Utc>,
        outcome: &mut BatchOutcome,
    ) {
        if let Some(done) = self.ended.get_mut(id) {
            // Seen before: only a higher final byte count can still move the counters.
            if done.counted {
                let series = &mut self.series[done.labels as usize];
                grow(&mut done.bytes_in, s.bytes_in, &mut series.bytes_in);
                grow(&mut done.bytes_out, s.bytes_out, &mut series.bytes_out);
            }
            outcome.duplicates += 1;
            return;
        }
        let end = end_time(s);
        let live = self.live.remove(id);
        if live.as_ref().is_some_and(|l| l.seen_gen == self.generation) {
            self.seen_in_generation -= 1;
        }
        let counted = match (&live, end) {
            // Known while active: it ended after T0 unless its own end time says otherwise.
            (Some(_), Some(end)) => end >= self.t0,
            (Some(_), None) => true,
            // Never seen: it must have ended at or after T0 and after the horizon (older ones were
            // either counted and forgotten, or ended before T0).
            (None, Some(end)) => end >= self.t0 && end >= self.horizon,
            // No end time at all: only a start at or after T0 proves it ended after T0.
            (None, None) => s
                .start_time
                .is_some_and(|t| t >= self.t0 && t >= self.horizon),
        };
        // Remembered until the horizon passes both its end and the moment it was seen: records
        // that ended before the horizon are ignored anyway, and until then a stale ACTIVE record of
        // the same session is recognised.
        let remember_at = end.map_or(observed_at, |end| end.max(observed_at));
        if !counted {
            outcome.too_old += 1;
            let labels = live.map_or_else(|| self.label_id(s), |l| l.labels);
            self.ended.insert(
                id,
                Ended {
                    at: remember_at,
                    labels,
                    bytes_in: 0,
                    bytes_out: 0,
                    counted: false,
                },
            );
            return;
        }
        let (labels, mut bytes_in, mut bytes_out) = match live {
            Some(l) => (l.labels, l.bytes_in, l.bytes_out),
            None => {
                let labels = self.label_id(s);
                if s.start_time.is_some_and(|t| t >= self.t0) {
                    self.series[labels as usize].started += 1;
                    outcome.started += 1;
                }
                (labels, 0, 0)
            }
        };
        let series = &mut self.series[labels as usize];
        grow(&mut bytes_in, s.bytes_in, &mut series.bytes_in);
        grow(&mut bytes_out, s.bytes_out, &mut series.bytes_out);
        series.ended += 1;

        let reason = self.reasons.id(s.disconnect_reason.as_deref());
        *self.ended_counts.entry((labels, reason)).or_default() += 1;
        if status == EndStatus::Failed {
            *self.failed_counts.entry((labels, reason)).or_default() += 1;
        }
        let region = self.regions.intern(&[Dimension::VpnRegion.value(s)]);
        self.durations
            .entry((region, status))
            .or_default()
            .observe(duration_seconds(s));
        outcome.ended += 1;
        self.ended.insert(
            id,
            Ended {
                at: remember_at,
                labels,
                bytes_in,
                bytes_out,
                counted: true,
            },
        );
    }

    /// The counters' and the gauge's label set of a session new to the tracker.
    fn new_session_label_ids(&mut self, s: &Session) -> (u32, u32) {
        let folded = self.gauge.folded;
        let gauge = self.gauge.id(s);
        // The gauge's catch-all holds sessions of many counter label sets.
        let memo = self.counters_within_gauge && self.gauge.folded == folded;
        if memo {
            if let Some(&Some(labels)) = self.counters_of_gauge.get(gauge as usize) {
                return (labels, gauge);
            }
        }
        let folded = self.labels.folded;
        let labels = self.label_id(s);
        // A session folded into the counters' catch-all for want of room is not remembered:
        // once room is freed, the next one gets its own label set.
        if memo && self.labels.folded == folded {
            let at = gauge as usize;
            if self.counters_of_gauge.len() <= at {
                self.counters_of_gauge.resize(at + 1, None);
            }
            self.counters_of_gauge[at] = Some(labels);
        }
        (labels, gauge)
    }

    /// The session's counter label set, with its counters ready (at zero for a new one).
    fn label_id(&mut self, s: &Session) -> u32 {
        let id = self.labels.id(s);
        if id as usize >= self.series.len() {
            self.series
                .resize(id as usize + 1, SeriesCounters::default());
        }
        id
    }

    /// Ends the series that are no longer used; the poller calls it once per cycle, after
    /// [`advance_horizon`](Self::advance_horizon), with the server time of the cycle.
    ///
    /// - Gauge label sets that no tracked session holds are forgotten (they have no series
    ///   already: the gauge shows only label sets with active sessions).
    /// - A counter label set whose counters have not moved, and that no tracked session held,
    ///   for the series TTL is removed: every series of it in every counter family, every reason
    ///   included, and its interned values. One that comes back later starts from zero. While a
    ///   session can still add to its counters (it is live, or ended and still remembered, so a
    ///   higher final byte count can come), it stays.
    /// - A reason of a label set still in use whose ended count has not moved for the TTL goes
    ///   too (from the ended and the failed counters): a session counts its end once, so no
    ///   tracked session can add to it any more. Without this, a label set in daily use would
    ///   collect every reason it ever saw.
    ///
    /// Movement is judged here, from sweep to sweep, rather than in [`apply`](Self::apply): a
    /// series that moved since the last sweep is taken as used at `now`. Returns how many
    /// counter label sets were removed.
    pub fn expire_series(&mut self, now: DateTime<Utc>) -> usize {
        self.forget_unheld_gauge_label_sets();
        let Some(ttl) = self.ttl else {
            return 0;
        };
        self.expire_reasons(now, ttl);
        self.expire_label_sets(now, ttl)
    }

    /// Forgets the gauge's label sets that no tracked session holds.
    fn forget_unheld_gauge_label_sets(&mut self) {
        let mut held = vec![false; self.gauge.interner.slots()];
        for live in self.live.values() {
            held[live.gauge as usize] = true;
        }
        let unheld: Vec<u32> = self
            .gauge
            .interner
            .iter()
            .filter(|(id, _)| !held[*id as usize])
            .map(|(id, _)| id)
            .collect();
        for id in unheld {
            self.gauge.interner.remove(id);
            if let Some(memo) = self.counters_of_gauge.get_mut(id as usize) {
                *memo = None;
            }
        }
    }

    /// Removes the counter label sets idle for `ttl` that no tracked session holds; returns
    /// how many.
    fn expire_label_sets(&mut self, now: DateTime<Utc>, ttl: chrono::Duration) -> usize {
        let mut idle = vec![false; self.labels.interner.slots()];
        let mut any_idle = false;
        for (id, _) in self.labels.interner.iter() {
            let series = &mut self.series[id as usize];
            let sum = series.sum();
            match series.used_at {
                Some(used) if sum == series.sum_seen => {
                    if now - used >= ttl {
                        idle[id as usize] = true;
                        any_idle = true;
                    }
                }
                _ => {
                    series.sum_seen = sum;
                    series.used_at = Some(now);
                }
            }
        }
        if !any_idle {
            return 0;
        }
        // Only idle label sets need the sessions scanned: a held one is in use, and its TTL
        // starts again from now.
        let holders = self.live.values().map(|l| l.labels);
        for id in holders.chain(self.ended.values().map(|e| e.labels)) {
            if std::mem::take(&mut idle[id as usize]) {
                self.series[id as usize].used_at = Some(now);
            }
        }
        let mut removed = 0;
        for (id, gone) in idle.iter().enumerate() {
            if *gone {
                self.labels.interner.remove(id as u32);
                self.series[id] = SeriesCounters::default();
                removed += 1;
            }
        }
        if removed > 0 {
            for memo in &mut self.counters_of_gauge {
                if memo.is_some_and(|l| idle[l as usize]) {
                    *memo = None;
                }
            }
            self.ended_counts.retain(|&(l, _), _| !idle[l as usize]);
            self.failed_counts.retain(|&(l, _), _| !idle[l as usize]);
            self.reasons_seen.retain(|&(l, _), _| !idle[l as usize]);
        }
        removed
    }

    /// Removes the (label set, reason) series of the ended and failed counters whose ended count
    /// has not moved for `ttl`. A failed count moves only with the ended count of the same label
    /// set and reason, so the ended count alone says whether the pair is in use.
    fn expire_reasons(&mut self, now: DateTime<Utc>, ttl: chrono::Duration) {
        let mut stale = Vec::new();
        for (&key, &count) in &self.ended_counts {
            let seen = self.reasons_seen.entry(key).or_insert((count, now));
            if seen.0 != count {
                *seen = (count, now);
            } else if now - seen.1 >= ttl {
                stale.push(key);
            }
        }
        for key in stale {
            self.ended_counts.remove(&key);
            self.failed_counts.remove(&key);
            self.reasons_seen.remove(&key);
        }
    }

    /// Sessions counted in the active gauge now.
    pub fn active_count(&self) -> u64 {
        self.live
            .values()
            .filter(|l| l.hidden_since.is_none())
            .count() as u64
    }

    /// The current state, for publishing.
    pub fn snapshot(&self) -> Snapshot {
        let mut active: HashMap<u32, u64> = HashMap::new();
        for live in self.live.values() {
            if live.hidden_since.is_none() {
                *active.entry(live.gauge).or_default() += 1;
            }
        }
        let per_series = |f: fn(&SeriesCounters) -> u64| {
            self.labels
                .interner
                .iter()
                .map(|(id, labels)| (labels.clone(), f(&self.series[id as usize])))
                .collect::<Vec<_>>()
        };
        let by_reason = |counts: &HashMap<(u32, u32), u64>| {
            counts
                .iter()
                .filter_map(|(&(l, r), &n)| {
                    let labels = self.labels.interner.get(l)?.clone();
                    Some((labels, self.reasons.names[r as usize].clone(), n))
                })
                .collect::<Vec<_>>()
        };
        Snapshot {
            label_names: self.gauge.label_names(),
            counter_label_names: self.labels.label_names(),
            folded_active: self.gauge.folded,
            folded_counters: self.labels.folded,
            active: active
                .into_iter()
                .filter_map(|(id, n)| Some((self.gauge.interner.get(id)?.clone(), n)))
                .collect(),
            started: per_series(|c| c.started),
            bytes_in: per_series(|c| c.bytes_in),
            bytes_out: per_series(|c| c.bytes_out),
            ended: by_reason(&self.ended_counts),
            failed: by_reason(&self.failed_counts),
            durations: self
                .durations
                .iter()
                .filter_map(|(&(r, st), h)| Some((self.regions.get(r)?[0].clone(), st, h.clone())))
                .collect(),
            tracked_live: self.live.len(),
            tracked_ended: self.ended.len(),
        }
    }
}

/// Raises `held` to `reported` and adds the growth to `total`; a lower report changes nothing.
fn grow(held: &mut u64, reported: Option<u64>, total: &mut u64) {
    if let Some(v) = reported.filter(|&v| v > *held) {
        *total = total.saturating_add(v - *held);
        *held = v;
    }
}

/// `sessionEndTime`, else start plus duration.
fn end_time(s: &Session) -> Option<DateTime<Utc>> {
    s.end_time.or_else(|| {
        let start = s.start_time?;
        let secs = i64::try_from(s.duration_seconds?).ok()?;
        start.checked_add_signed(chrono::Duration::try_seconds(secs)?)
    })
}

/// `sessionDurationSeconds`, else end minus start, else 0 (a session that failed to connect).
fn duration_seconds(s: &Session) -> f64 {
    if let Some(d) = s.duration_seconds {
        return d as f64;
    }
    match (s.start_time, s.end_time) {
        (Some(start), Some(end)) if end >= start => {
            (end - start).num_milliseconds() as f64 / 1000.0
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Seconds after T0 as a server time (negative: before T0).
    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn tracker() -> SessionTracker {
        SessionTracker::new(at(0), vec![Dimension::VpnRegion, Dimension::Protocol])
    }

    // Records that own their text, as those the decoder had to unescape: the tests make ids
    // with format!, which a borrowing record could not outlive.
    fn active(id: &str, start: i64, bytes_in: u64) -> Session<'static> {
        Session {
            id: Some(id.to_owned().into()),
            status: Some(SessionStatus::Active),
            region: Some("eu".into()),
            protocol: Some("UDP".into()),
            start_time: Some(at(start)),
            bytes_in: Some(bytes_in),
            bytes_out: Some(bytes_in * 2),
            ..Session::default()
        }
    }

    fn ended(id: &str, start: i64, end: i64, bytes_in: u64, reason: &str) -> Session<'static> {
        Session {
            status: Some(SessionStatus::Completed),
            end_time: Some(at(end)),
            disconnect_reason: Some(reason.to_owned().into()),
            ..active(id, start, bytes_in)
        }
    }

    fn failed(id: &str, start: i64, end: i64, reason: &str) -> Session<'static> {
        Session {
            status: Some(SessionStatus::Failed),
            ..ended(id, start, end, 0, reason)
        }
    }

    fn total(series: &[(LabelValues, u64)]) -> u64 {
        series.iter().map(|(_, n)| n).sum()
    }

    fn total_by_reason(series: &[(LabelValues, Arc<str>, u64)]) -> u64 {
        series.iter().map(|(_, _, n)| n).sum()
    }

    fn hist_count(snap: &Snapshot) -> u64 {
        snap.durations.iter().map(|(_, _, h)| h.count).sum()
    }

    #[test]
    fn duplicates_inside_one_page_count_once() {
        let mut t = tracker();
        let page = [
            ended("a", 10, 20, 5, "USER"),
            ended("a", 10, 20, 5, "USER"),
            active("b", 15, 7),
            active("b", 15, 7),
        ];
        let out = t.apply(&page, at(30));
        assert_eq!((out.ended, out.started, out.duplicates), (1, 2, 2));
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 1);
        assert_eq!(total(&snap.started), 2);
        assert_eq!(total(&snap.active), 1);
        assert_eq!(total(&snap.bytes_in), 12);
        assert_eq!(hist_count(&snap), 1);
    }

    #[test]
    fn duplicates_across_pages_and_overlapping_windows_count_once() {
        let mut t = tracker();
        t.apply(&[active("a", 5, 10)], at(30));
        t.apply(
            &[ended("a", 5, 40, 15, "USER"), ended("b", 35, 45, 3, "IDLE")],
            at(60),
        );
        // The next window overlaps the last one and returns both again, plus a new one.
        t.apply(
            &[ended("b", 35, 45, 3, "IDLE"), ended("a", 5, 40, 15, "USER")],
            at(90),
        );
        t.apply(
            &[ended("a", 5, 40, 15, "USER"), ended("c", 50, 70, 1, "IDLE")],
            at(90),
        );
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 3);
        assert_eq!(total(&snap.started), 3);
        assert_eq!(total(&snap.bytes_in), 15 + 3 + 1);
        assert_eq!(total(&snap.bytes_out), 2 * (15 + 3 + 1));
        assert_eq!(hist_count(&snap), 3);
        assert_eq!(total(&snap.active), 0);
    }

    #[test]
    fn an_active_record_after_the_ended_one_changes_nothing() {
        let mut t = tracker();
        t.apply(&[ended("a", 5, 40, 15, "USER")], at(60));
        let before = t.snapshot();
        let out = t.apply(&[active("a", 5, 99)], at(61));
        assert_eq!(out.duplicates, 1);
        let snap = t.snapshot();
        assert_eq!(total(&snap.active), 0);
        assert_eq!(total(&snap.bytes_in), total(&before.bytes_in));
        assert_eq!(total(&snap.started), 1);
    }

    #[test]
    fn a_session_that_starts_and_ends_between_polls_counts_everywhere_once() {
        let mut t = tracker();
        t.apply(&[active("x", -100, 1)], at(10));
        t.apply(&[ended("short", 20, 50, 300, "USER")], at(60));
        let snap = t.snapshot();
        assert_eq!(
            total(&snap.started),
            1,
            "only the session that started after T0"
        );
        assert_eq!(total_by_reason(&snap.ended), 1);
        assert_eq!(total(&snap.bytes_in), 301);
        let (region, status, h) = &snap.durations[0];
        assert_eq!(
            (&**region, *status, h.count, h.sum),
            ("eu", EndStatus::Completed, 1, 30.0)
        );
        assert_eq!(h.buckets[0], 1, "30 s falls in the 60 s bucket");
    }

    #[test]
    fn a_session_that_ended_before_t0_is_never_counted() {
        let mut t = tracker();
        // The first window reaches back before T0 (the overlap) and returns a session that ended then.
        let out = t.apply(&[ended("old", -500, -10, 1000, "USER")], at(5));
        assert_eq!(out.too_old, 1);
        // Returned again later, and even as a stale ACTIVE record, it still counts nowhere.
        t.apply(
            &[
                ended("old", -500, -10, 1000, "USER"),
                active("old", -500, 1000),
            ],
            at(60),
        );
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 0);
        assert_eq!(total(&snap.bytes_in), 0);
        assert_eq!(total(&snap.active), 0);
        assert_eq!(hist_count(&snap), 0);
    }

    #[test]
    fn a_session_active_at_start_counts_bytes_and_its_end_but_not_a_start() {
        let mut t = tracker();
        t.begin_full_listing();
        t.apply(&[active("a", -3600, 1000)], at(1));
        t.finish_full_listing(at(1));
        t.apply(&[ended("a", -3600, 100, 1500, "IDLE")], at(120));
        let snap = t.snapshot();
        assert_eq!(total(&snap.started), 0);
        assert_eq!(total_by_reason(&snap.ended), 1);
        assert_eq!(total(&snap.bytes_in), 1500);
    }

    #[test]
    fn byte_counters_never_decrease() {
        let mut t = tracker();
        t.apply(&[active("a", 1, 100)], at(10));
        t.apply(&[active("a", 1, 40)], at(20));
        assert_eq!(total(&t.snapshot().bytes_in), 100);
        t.apply(&[active("a", 1, 250)], at(30));
        assert_eq!(total(&t.snapshot().bytes_in), 250);
        t.apply(&[ended("a", 1, 35, 200, "USER")], at(40));
        assert_eq!(total(&t.snapshot().bytes_in), 250);
        t.apply(&[ended("a", 1, 35, 260, "USER")], at(50));
        assert_eq!(
            total(&t.snapshot().bytes_in),
            260,
            "a later, higher final count still adds"
        );
    }

    #[test]
    fn failed_sessions_count_as_ended_and_failed_with_their_reason() {
        let mut t = tracker();
        t.apply(
            &[
                failed("f", 10, 10, "AUTH_FAILED"),
                ended("c", 5, 20, 1, "USER"),
            ],
            at(30),
        );
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 2);
        assert_eq!(snap.failed.len(), 1);
        assert_eq!(&*snap.failed[0].1, "AUTH_FAILED");
        assert!(
            snap.durations
                .iter()
                .any(|(_, st, h)| *st == EndStatus::Failed && h.count == 1)
        );
    }

    #[test]
    fn reasons_beyond_fifty_fold_into_other() {
        let mut t = tracker();
        let page: Vec<Session> = (0..60)
            .map(|i| failed(&format!("s{i}"), 10, 20, &format!("REASON_{i}")))
            .collect();
        t.apply(&page, at(30));
        let snap = t.snapshot();
        let reasons: std::collections::HashSet<&str> =
            snap.failed.iter().map(|(_, r, _)| &**r).collect();
        assert_eq!(reasons.len(), MAX_REASONS + 1);
        assert!(reasons.contains(OTHER_REASON));
        let other: u64 = snap
            .failed
            .iter()
            .filter(|(_, r, _)| &**r == OTHER_REASON)
            .map(|(_, _, n)| n)
            .sum();
        assert_eq!(other, 10);
        assert_eq!(total_by_reason(&snap.failed), 60);
    }

    #[test]
    fn ended_ids_are_forgotten_once_the_horizon_passes_and_stay_uncounted() {
        let mut t = tracker();
        let page: Vec<Session> = (0..1000)
            .map(|i| ended(&format!("s{i}"), 10, 20 + i, 1, "USER"))
            .collect();
        for s in &page {
            t.apply(std::slice::from_ref(s), s.end_time.unwrap());
        }
        assert_eq!(t.snapshot().tracked_ended, 1000);
        t.advance_horizon(at(520));
        assert_eq!(
            t.snapshot().tracked_ended,
            500,
            "ids that ended before the horizon are forgotten"
        );
        // A window that still returns a forgotten record does not count it again.
        t.apply(&page, at(1200));
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 1000);
        assert_eq!(total(&snap.started), 1000);
        t.advance_horizon(at(100)); // never moves back
        assert_eq!(total_by_reason(&t.snapshot().ended), 1000);
        t.advance_horizon(at(1300));
        assert_eq!(
            t.snapshot().tracked_ended,
            0,
            "memory is bounded by the horizon"
        );
    }

    #[test]
    fn a_full_listing_hides_vanished_sessions_and_their_label_sets_disappear() {
        let mut t = tracker();
        let mut tcp = active("b", 2, 1);
        tcp.protocol = Some("TCP".into());
        t.begin_full_listing();
        t.apply(&[active("a", 1, 1), tcp.clone()], at(10));
        t.finish_full_listing(at(10));
        assert_eq!(t.snapshot().active.len(), 2);

        t.begin_full_listing();
        t.apply(&[active("a", 1, 1)], at(70));
        t.finish_full_listing(at(70));
        let snap = t.snapshot();
        assert_eq!(
            snap.active.len(),
            1,
            "the TCP label set is gone from the gauge"
        );
        assert_eq!(snap.started.len(), 2, "counters keep their series");

        // The vanished session reappears: it is not new.
        t.apply(&[tcp], at(80));
        assert_eq!(total(&t.snapshot().started), 2);
        assert_eq!(total(&t.snapshot().active), 2);
        // Hidden again, then its end arrives late: counted once.
        t.begin_full_listing();
        t.finish_full_listing(at(90));
        t.apply(
            &[ended("b", 2, 85, 1, "USER"), ended("b", 2, 85, 1, "USER")],
            at(95),
        );
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 1);
        assert_eq!(total(&snap.active), 0);
    }

    #[test]
    fn an_incomplete_full_listing_hides_nothing() {
        let mut t = tracker();
        t.apply(&[active("a", 1, 1), active("b", 1, 1)], at(10));
        t.begin_full_listing();
        t.apply(&[active("a", 1, 1)], at(20));
        // The listing failed half-way: finish_full_listing is not called.
        assert_eq!(total(&t.snapshot().active), 2);
    }

    #[test]
    fn hidden_sessions_are_dropped_once_the_horizon_passes() {
        let mut t = tracker();
        t.apply(&[active("a", 1, 1)], at(10));
        t.begin_full_listing();
        t.finish_full_listing(at(20));
        assert_eq!(t.snapshot().tracked_live, 1);
        t.advance_horizon(at(21));
        assert_eq!(t.snapshot().tracked_live, 0);
    }

    #[test]
    fn records_without_id_or_with_unknown_status_are_not_counted() {
        let mut t = tracker();
        let mut no_id = active("x", 1, 5);
        no_id.id = None;
        let mut weird = active("y", 1, 5);
        weird.status = Some(SessionStatus::Unknown);
        let mut none = active("z", 1, 5);
        none.status = None;
        let out = t.apply(&[no_id, weird, none], at(10));
        assert_eq!(out.invalid, 3);
        let snap = t.snapshot();
        assert_eq!(total(&snap.active) + total(&snap.bytes_in), 0);
    }

    #[test]
    fn end_time_falls_back_to_start_plus_duration() {
        let mut t = tracker();
        let mut before_t0 = ended("a", -100, 0, 1, "USER");
        before_t0.end_time = None;
        before_t0.duration_seconds = Some(50); // ended at -50
        let mut after_t0 = ended("b", -100, 0, 1, "USER");
        after_t0.end_time = None;
        after_t0.duration_seconds = Some(150); // ended at +50
        let mut unknown = ended("c", -100, 0, 1, "USER");
        unknown.end_time = None; // no way to tell when an old session ended: not counted
        t.apply(&[before_t0, after_t0, unknown], at(60));
        let snap = t.snapshot();
        assert_eq!(total_by_reason(&snap.ended), 1);
        assert_eq!(snap.durations[0].2.sum, 150.0);
    }

    #[test]
    fn missing_dimensions_become_none_and_long_values_are_clipped() {
        let mut t = tracker();
        let mut s = active("a", 1, 1);
        s.region = None;
        s.protocol = Some("x".repeat(500).into());
        t.apply(&[s], at(10));
        let snap = t.snapshot();
        let labels = &snap.active[0].0;
        assert_eq!(&*labels[0], NONE_VALUE);
        assert_eq!(labels[1].len(), MAX_LABEL_LEN);
        assert_eq!(snap.label_names, ["vpn_region", "protocol"]);
    }

    const HOUR: i64 = 3600;

    /// A tracker labelling gauge and counters by region and protocol, with a TTL of `ttl_hours`
    /// and a cap of `cap` label sets.
    fn bounded(ttl_hours: i64, cap: usize) -> SessionTracker {
        SessionTracker::with_series(
            at(0),
            SeriesConfig {
                ttl: Some(chrono::Duration::hours(ttl_hours)),
                max_label_sets: cap,
                ..SeriesConfig::unbounded(vec![Dimension::VpnRegion, Dimension::Protocol])
            },
        )
    }

    /// One poll cycle's housekeeping at server time `now`, as the poller does it.
    fn sweep(t: &mut SessionTracker, now: i64) -> usize {
        t.advance_horizon(at(now - 720));
        t.expire_series(at(now))
    }

    fn in_region(mut s: Session<'static>, region: &str) -> Session<'static> {
        s.region = Some(region.to_owned().into());
        s
    }

    /// A tracker whose gauge is labelled by region and protocol and its counters by region alone,
    /// so a gauge label set tells its counters' label set.
    fn counters_by_region(cap: usize) -> SessionTracker {
        SessionTracker::with_series(
            at(0),
            SeriesConfig {
                gauge_dims: vec![Dimension::VpnRegion, Dimension::Protocol],
                counter_dims: vec![Dimension::VpnRegion],
                ttl: Some(chrono::Duration::hours(6)),
                max_label_sets: cap,
            },
        )
    }

    /// Sessions started, by counter label set (its first value).
    fn started_by_region(t: &SessionTracker) -> Vec<(String, u64)> {
        let mut started: Vec<_> = t
            .snapshot()
            .started
            .iter()
            .map(|(labels, n)| (labels[0].to_string(), *n))
            .collect();
        started.sort();
        started
    }

    #[test]
    fn a_forgotten_gauge_label_set_does_not_lend_its_counters_to_the_next_one() {
        let mut t = counters_by_region(usize::MAX);
        t.apply(&[in_region(active("a", 50, 1), "r1")], at(100));
        t.apply(&[in_region(ended("a", 50, 150, 1, "USER"), "r1")], at(200));
        // The gauge forgets (r1, UDP); its id goes to the next new label set, (r2, UDP).
        sweep(&mut t, 300);
        t.apply(&[in_region(active("b", 250, 1), "r2")], at(400));
        assert_eq!(
            started_by_region(&t),
            [("r1".to_owned(), 1), ("r2".to_owned(), 1)]
        );
    }

    #[test]
    fn a_session_folded_for_want_of_room_does_not_fold_the_next_with_its_labels() {
        let mut t = counters_by_region(2);
        let sessions = [("a", "r1"), ("b", "r3")];
        t.apply(
            &sessions.map(|(id, region)| in_region(active(id, 50, 1), region)),
            at(100),
        );
        t.apply(
            &sessions.map(|(id, region)| in_region(ended(id, 50, 150, 1, "USER"), region)),
            at(200),
        );
        sweep(&mut t, 300);
        // The gauge has room again, the counters not yet: c is counted in the catch-all.
        t.apply(&[in_region(active("c", 250, 1), "r2")], at(400));
        assert_eq!(
            started_by_region(&t),
            [
                (OTHER_VALUE.to_owned(), 1),
                ("r1".to_owned(), 1),
                ("r3".to_owned(), 1)
            ]
        );
        // Once r1 and r3 have been idle for the TTL they go, and d, with c's labels, gets its
        // own set.
        sweep(&mut t, 300 + 6 * HOUR);
        t.apply(&[in_region(active("d", 7 * HOUR, 1), "r2")], at(7 * HOUR));
        assert_eq!(
            started_by_region(&t),
            [(OTHER_VALUE.to_owned(), 1), ("r2".to_owned(), 1)]
        );
    }

    /// The label sets (first label value) that have a series in any counter family.
    fn counter_regions(snap: &Snapshot) -> std::collections::BTreeSet<String> {
        let plain = [&snap.started, &snap.bytes_in, &snap.bytes_out];
        let by_reason = [&snap.ended, &snap.failed];
        plain
            .into_iter()
            .flat_map(|f| f.iter().map(|(l, _)| l[0].to_string()))
            .chain(
                by_reason
                    .into_iter()
                    .flat_map(|f| f.iter().map(|(l, _, _)| l[0].to_string())),
            )
            .collect()
    }

    #[test]
    fn a_label_set_idle_for_longer_than_the_ttl_is_gone_from_every_counter_family() {
        let mut t = bounded(6, usize::MAX);
        t.apply(
            &[
                in_region(ended("a", 10, 100, 5, "USER"), "rare"),
                in_region(failed("b", 20, 30, "AUTH_FAILED"), "rare"),
                in_region(active("c", 50, 7), "busy"),
            ],
            at(200),
        );
        sweep(&mut t, 300);
        assert_eq!(
            counter_regions(&t.snapshot()),
            ["busy", "rare"].map(String::from).into()
        );
        // Six hours later, less a cycle: still there.
        assert_eq!(sweep(&mut t, 300 + 6 * HOUR - 60), 0);
        assert!(counter_regions(&t.snapshot()).contains("rare"));
        // Past the TTL it goes, every family and every reason with it; the busy one's session
        // still holds it.
        assert_eq!(sweep(&mut t, 300 + 6 * HOUR), 1);
        let snap = t.snapshot();
        assert_eq!(counter_regions(&snap), ["busy"].map(String::from).into());
        assert_eq!(total(&snap.started), 1);
        assert_eq!(
            total_by_reason(&snap.ended) + total_by_reason(&snap.failed),
            0
        );
        // Its memory is freed: the next new label set takes its place in the table.
        let slots = t.labels.interner.slots();
        t.apply(&[in_region(active("d", 50, 1), "new")], at(7 * HOUR));
        assert_eq!(t.labels.interner.slots(), slots, "the freed id is reused");
        assert!(t.labels.interner.get(0).is_some() || t.labels.interner.get(1).is_some());
    }

    #[test]
    fn a_reason_idle_for_the_ttl_goes_while_its_label_set_stays_in_use() {
        let mut t = bounded(6, usize::MAX);
        t.apply(
            &[
                failed("f", 10, 20, "AUTH_FAILED"),
                ended("e", 10, 30, 1, "USER"),
                active("a", 10, 1),
            ],
            at(60),
        );
        sweep(&mut t, 60);
        // Users keep disconnecting; nobody fails again.
        for hour in 1..=7 {
            let id = format!("e{hour}");
            t.apply(
                &[ended(&id, hour * HOUR, hour * HOUR + 5, 1, "USER")],
                at(hour * HOUR + 10),
            );
            sweep(&mut t, hour * HOUR + 10);
        }
        let snap = t.snapshot();
        let reasons = |f: &[(LabelValues, Arc<str>, u64)]| {
            f.iter()
                .map(|(_, r, n)| (r.to_string(), *n))
                .collect::<Vec<_>>()
        };
        assert_eq!(reasons(&snap.ended), [("USER".to_owned(), 8)]);
        assert!(
            snap.failed.is_empty(),
            "the failed series of that reason goes too"
        );
        assert_eq!(
            total(&snap.started),
            10,
            "the label set itself is untouched"
        );
        // The reason comes back from zero.
        t.apply(
            &[failed("g", 8 * HOUR, 8 * HOUR, "AUTH_FAILED")],
            at(8 * HOUR),
        );
        assert_eq!(total_by_reason(&t.snapshot().failed), 1);
    }

    #[test]
    fn counters_of_label_sets_in_use_are_untouched_by_expiry() {
        // The same sessions fed to a tracker without a TTL and to one with a short TTL.
        let mut forever = tracker();
        let mut short = bounded(1, usize::MAX);
        let mut quiet = active("quiet", 5, 100);
        quiet.region = Some("quiet".into());
        let pages: Vec<(i64, Vec<Session>)> = vec![
            (60, vec![active("busy", 5, 10), quiet.clone()]),
            (2 * HOUR, vec![active("busy", 5, 20)]),
            (4 * HOUR, vec![active("busy", 5, 30), quiet]),
            (6 * HOUR, vec![ended("busy", 5, 6 * HOUR - 10, 40, "USER")]),
            // A late, higher final count of a session that ended: its label set was held.
            (
                6 * HOUR + 300,
                vec![ended("busy", 5, 6 * HOUR - 10, 45, "USER")],
            ),
        ];
        for (now, page) in &pages {
            forever.apply(page, at(*now));
            short.apply(page, at(*now));
            sweep(&mut forever, *now);
            sweep(&mut short, *now);
        }
        let sorted = |snap: Snapshot| {
            let mut all: Vec<(Vec<String>, [u64; 3])> = snap
                .started
                .iter()
                .zip(&snap.bytes_in)
                .zip(&snap.bytes_out)
                .map(|(((l, s), (_, i)), (_, o))| {
                    (l.iter().map(|v| v.to_string()).collect(), [*s, *i, *o])
                })
                .collect();
            all.sort();
            (all, total_by_reason(&snap.ended))
        };
        // The quiet session's bytes did not move for hours, but it is live: nothing expired.
        assert_eq!(sorted(short.snapshot()), sorted(forever.snapshot()));
        assert_eq!(total(&short.snapshot().bytes_in), 145);
    }

    #[test]
    fn a_label_set_that_comes_back_after_expiring_starts_from_zero() {
        let mut t = bounded(1, usize::MAX);
        t.apply(&[ended("a", 10, 20, 1000, "USER")], at(30));
        sweep(&mut t, 60);
        assert_eq!(total(&t.snapshot().bytes_in), 1000);
        assert_eq!(sweep(&mut t, 3 * HOUR), 1);
        assert!(t.snapshot().started.is_empty());
        t.apply(
            &[ended("b", 4 * HOUR, 4 * HOUR + 5, 7, "USER")],
            at(4 * HOUR + 10),
        );
        let snap = t.snapshot();
        assert_eq!((total(&snap.started), total(&snap.bytes_in)), (1, 7));
        assert_eq!(total_by_reason(&snap.ended), 1);
    }

    #[test]
    fn without_a_ttl_nothing_expires_but_unheld_gauge_label_sets_are_forgotten() {
        let mut t = tracker();
        let mut tcp = active("b", 2, 1);
        tcp.protocol = Some("TCP".into());
        t.apply(&[active("a", 1, 1), tcp], at(10));
        t.apply(&[ended("b", 2, 20, 1, "USER")], at(30));
        assert_eq!(sweep(&mut t, 100 * HOUR), 0);
        let snap = t.snapshot();
        assert_eq!(snap.started.len(), 2, "counters keep their series");
        assert_eq!(snap.active.len(), 1);
        assert_eq!(
            t.gauge.interner.iter().count(),
            1,
            "the TCP gauge label set is freed"
        );
    }

    #[test]
    fn label_sets_beyond_the_cap_fold_into_other_and_are_still_counted_exactly() {
        let mut t = bounded(24, 2);
        let page: Vec<Session> = (0..5)
            .map(|i| {
                in_region(
                    ended(&format!("s{i}"), 10, 20, 10, "USER"),
                    &format!("r{i}"),
                )
            })
            .chain([in_region(active("live", 10, 3), "r4")])
            .collect();
        t.apply(&page, at(30));
        let snap = t.snapshot();
        let regions = counter_regions(&snap);
        assert_eq!(regions, ["other", "r0", "r1"].map(String::from).into());
        let other = snap
            .started
            .iter()
            .find(|(l, _)| l.iter().all(|v| &**v == OTHER_VALUE))
            .expect("the catch-all has every value other");
        assert_eq!(other.1, 4, "r2, r3, r4 and the live one, counted in other");
        assert_eq!(total(&snap.started), 6, "sum() is still the truth");
        assert_eq!(total(&snap.bytes_in), 53);
        assert_eq!(total_by_reason(&snap.ended), 5);
        assert_eq!(snap.folded_counters, 4);
        // The gauge's table is its own: it had room for the one live label set.
        assert_eq!(snap.active.len(), 1);
        assert_eq!(&*snap.active[0].0[0], "r4");
        assert_eq!(snap.folded_active, 0);
    }

    #[test]
    fn a_table_freed_by_expiry_gives_new_label_sets_their_own_series_again() {
        let mut t = bounded(1, 1);
        t.apply(&[in_region(ended("a", 10, 20, 1, "USER"), "first")], at(30));
        t.apply(
            &[in_region(ended("b", 10, 20, 1, "USER"), "second")],
            at(30),
        );
        assert_eq!(t.snapshot().folded_counters, 1);
        sweep(&mut t, 60);
        assert_eq!(sweep(&mut t, 2 * HOUR), 2, "first and other both idle");
        t.apply(
            &[in_region(
                ended("c", 3 * HOUR, 3 * HOUR, 1, "USER"),
                "third",
            )],
            at(3 * HOUR),
        );
        assert_eq!(
            counter_regions(&t.snapshot()),
            ["third"].map(String::from).into()
        );
    }

    #[test]
    fn series_plateau_over_weeks_of_sessions_with_a_long_tail_of_label_sets() {
        // Thirty days of a small tenant: 20 sessions an hour, each ending 30 minutes later, in
        // one of 5 regions, 3 protocols and a long tail of 200 networks (most sessions in a few).
        let dims = vec![
            Dimension::VpnRegion,
            Dimension::Network,
            Dimension::Protocol,
        ];
        let mut t = SessionTracker::with_series(
            at(0),
            SeriesConfig {
                ttl: Some(chrono::Duration::hours(24)),
                max_label_sets: usize::MAX,
                ..SeriesConfig::unbounded(dims)
            },
        );
        let mut seed: u64 = 7;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut series_by_day = Vec::new();
        for hour in 0..30 * 24 {
            let now = hour * HOUR;
            let page: Vec<Session> = (0..20)
                .map(|i| {
                    let mut s = ended(&format!("{hour}-{i}"), now, now + 1800, 100, "USER");
                    s.region = Some(format!("region-{}", next(5)).into());
                    // Squaring a uniform draw makes low network numbers far more common.
                    let u = next(1000) as f64 / 1000.0;
                    s.network = Some(format!("net-{}", (u * u * 200.0) as u64).into());
                    s.protocol = Some(["UDP", "TCP", "WIREGUARD"][next(3) as usize].into());
                    s
                })
                .collect();
            t.apply(&page, at(now + 1800));
            sweep(&mut t, now + 1800);
            if hour % 24 == 23 {
                let snap = t.snapshot();
                series_by_day.push(snap.started.len() + snap.ended.len());
            }
        }
        let third = series_by_day[19];
        let last = *series_by_day.last().unwrap();
        let peak = *series_by_day[19..].iter().max().unwrap();
        assert!(
            peak as f64 <= third as f64 * 1.05,
            "series plateau: {series_by_day:?}"
        );
        assert!(
            last < 3000 / 2,
            "far fewer than the 3,000 label sets that exist: {series_by_day:?}"
        );
        assert!(
            t.labels.interner.slots() < 3000 / 2,
            "the table reuses freed ids"
        );
    }
}
