//! A fast seeded hasher for the maps a listing fills (session ids, label sets, listing progress),
//! and [`IdMap`], the map of session ids that keeps each id's hash.
//!
//! std's SipHash costs more than the rest of a hash map lookup for short keys, and a full listing
//! of 100,000 sessions hashes each new id four times (the listing's loop check; the tracker's look
//! in its ended and its live sessions, and its insert); growing an [`IdMap`] hashes none again. The
//! keys come from the API, an authenticated
//! peer, not from anyone who can choose them to collide; still, each map gets a random seed so
//! that collisions cannot be prepared for every exporter at once.
//!
//! The mixing step is the folded multiply (the two halves of a 64 × 64 → 128-bit product, xored)
//! that foldhash and ahash use: one multiplication per 8 bytes of key.

use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};

use hashbrown::HashTable;

/// An odd constant with well-spread bits (the fractional part of pi).
const MULTIPLIER: u64 = 0x243f_6a88_85a3_08d3;

fn mix(x: u64) -> u64 {
    let product = u128::from(x) * u128::from(MULTIPLIER);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Builds [`FastHasher`]s with a seed drawn once per map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastState {
    seed: u64,
}

impl Default for FastState {
    fn default() -> Self {
        // std's RandomState draws its keys from the operating system (once per thread, then
        // increments them): hashing anything with it gives a fresh random seed.
        Self {
            seed: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.seed)
    }
}

/// The hasher of [`FastState`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            h = mix(h ^ u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            h = mix(h ^ u64::from_le_bytes(last));
        }
        // The length tells "ab" from "ab\0", which pad to the same last word.
        self.0 = mix(h ^ bytes.len() as u64);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = mix(self.0 ^ v);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map from session ids to `V` that stores each id's hash beside it.
///
/// A map of 100,000 sessions grows through a dozen tables during an exporter's first listing, and
/// a plain `HashMap<Box<str>, V>` rehashes every id at each step, following its pointer to the
/// text: one cache miss per id per step. With the hash kept, growing reads the entries in order,
/// and a probe compares hashes before it looks at any text. The cost is 8 bytes an entry.
pub(crate) struct IdMap<V> {
    state: FastState,
    table: HashTable<Slot<V>>,
}

struct Slot<V> {
    hash: u64,
    id: Box<str>,
    value: V,
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        Self {
            state: FastState::default(),
            table: HashTable::new(),
        }
    }
}

impl<V: fmt::Debug> fmt::Debug for IdMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.table.iter().map(|s| (&s.id, &s.value)))
            .finish()
    }
}

impl<V> IdMap<V> {
    fn hash(&self, id: &str) -> u64 {
        self.state.hash_one(id)
    }

    /// Whether a slot is `id`'s, whose hash is `hash`: hashes first, text only when they agree.
    fn is(hash: u64, id: &str) -> impl Fn(&Slot<V>) -> bool + '_ {
        move |s| s.hash == hash && *s.id == *id
    }

    /// Sessions held.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn contains_key(&self, id: &str) -> bool {
        let hash = self.hash(id);
        self.table.find(hash, Self::is(hash, id)).is_some()
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        let hash = self.hash(id);
        self.table
            .find_mut(hash, Self::is(hash, id))
            .map(|s| &mut s.value)
    }

    /// Adds `id` with `value`, or replaces its value; returns the value replaced.
    pub(crate) fn insert(&mut self, id: &str, value: V) -> Option<V> {
        let hash = self.hash(id);
        if let Some(slot) = self.table.find_mut(hash, Self::is(hash, id)) {
            return Some(std::mem::replace(&mut slot.value, value));
        }
        let slot = Slot {
            hash,
            id: id.into(),
            value,
        };
        self.table.insert_unique(hash, slot, |s| s.hash);
        None
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<V> {
        let hash = self.hash(id);
        let entry = self.table.find_entry(hash, Self::is(hash, id)).ok()?;
        Some(entry.remove().0.value)
    }

    /// Keeps the sessions whose value `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        self.table.retain(|s| keep(&mut s.value));
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.table.iter().map(|s| &s.value)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.table.iter_mut().map(|s| &mut s.value)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_id_map_finds_replaces_and_removes_by_id() {
        let mut map = IdMap::default();
        for i in 0..10_000 {
            assert_eq!(map.insert(&format!("session-{i}"), i), None);
        }
        assert_eq!(map.len(), 10_000);
        // Through every growth of the table, each id still leads to its own value.
        assert!((0..10_000).all(|i| map.get_mut(&format!("session-{i}")) == Some(&mut { i })));
        assert_eq!(map.insert("session-7", 70), Some(7));
        assert_eq!(map.remove("session-7"), Some(70));
        assert_eq!(map.remove("session-7"), None);
        assert!(!map.contains_key("session-7") && map.contains_key("session-8"));
        map.retain(|v| *v % 2 == 0);
        assert_eq!(map.len(), 5_000);
        assert!(map.values().all(|v| v % 2 == 0));
        map.values_mut().for_each(|v| *v += 1);
        assert_eq!(map.get_mut("session-8"), Some(&mut 9));
    }

    #[test]
    fn equal_keys_hash_equal_and_different_keys_apart() {
        let state = FastState::default();
        assert_eq!(state.hash_one("session-1"), state.hash_one("session-1"));
        let keys = [
            "",
            "a",
            "ab",
            "ab\0",
            "b",
            "session-1",
            "session-2",
            "1-session",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
        ];
        let hashes: HashSet<u64> = keys.iter().map(|k| state.hash_one(k)).collect();
        assert_eq!(hashes.len(), keys.len());
    }

    #[test]
    fn each_map_gets_its_own_seed() {
        let (a, b) = (FastState::default(), FastState::default());
        assert_ne!(a.hash_one("session-1"), b.hash_one("session-1"));
    }

    #[test]
    fn uuids_spread_over_the_buckets_of_a_table() {
        // hashbrown picks a bucket from the low bits and a tag from the top 7: both must spread.
        let state = FastState::default();
        let (mut low, mut top) = ([0u32; 1024], [0u32; 128]);
        for i in 0..102_400u64 {
            let id = format!("{:08x}-1c2d-4e5f-8a9b-{:012x}", i * 7919, i);
            let h = state.hash_one(id.as_str());
            low[(h & 1023) as usize] += 1;
            top[(h >> 57) as usize] += 1;
        }
        // 100 a bucket and 800 a tag on average; a poor hash piles them up.
        assert!(low.iter().all(|&n| (50..=160).contains(&n)), "{low:?}");
        assert!(top.iter().all(|&n| (650..=950).contains(&n)), "{top:?}");
    }
}
