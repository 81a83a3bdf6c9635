//! Basic auth: users with bcrypt hashes, and a cache of successful verifications.
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10), so, like the exporter-toolkit,
//! the exporter remembers credentials it has verified: a scraper with the right password pays
//! bcrypt once, not on every scrape. The cache holds HMAC-SHA-256 tags of (user, password) under a
//! key drawn at random for each loaded configuration, so nothing in memory can be turned back into
//! a password, and a reload (a changed hash) starts from an empty cache.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;
use base64::Engine as _;
use ring::hmac;
use tokio::sync::Semaphore;

/// Most verified credentials remembered; past it the cache starts over. Only correct passwords
/// enter it, so it stays as small as the number of scrapers.
const CACHE_CAPACITY: usize = 256;

/// Why the users cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A hash is not a bcrypt hash (the hash itself is never shown).
    #[error("basic_auth_users: the password of user {user:?} is not a bcrypt hash ({problem})")]
    BadHash {
        /// The user.
        user: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The system gave no randomness for the cache key.
    #[error("no randomness available for the credential cache key")]
    Random,
}

/// The users allowed in, and what has already been verified.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// A hash of the highest cost in use, checked for unknown users so that a refusal takes as
    /// long whether or not the user exists.
    decoy: String,
    key: hmac::Key,
    verified: Mutex<HashSet<[u8; 32]>>,
    /// bcrypt runs on the blocking pool, at most this many at once, so a flood of wrong passwords
    /// costs a bounded share of the CPU and never stalls the async workers serving scrapes.
    slots: Arc<Semaphore>,
    bcrypt_runs: AtomicU64,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash; `None` when there are no users (no basic auth).
    pub fn new(users: BTreeMap<String, String>) -> Result<Option<Self>, AuthError> {
        if users.is_empty() {
            return Ok(None);
        }
        let mut max_cost = 4;
        for (user, hash) in &users {
            let bad = |problem: String| AuthError::BadHash {
                user: user.clone(),
                problem,
            };
            let parts = bcrypt::HashParts::from_str(hash).map_err(|e| bad(e.to_string()))?;
            let cost = parts.get_cost();
            if !(4..=31).contains(&cost) {
                return Err(bad(format!("cost {cost} is outside 4..=31")));
            }
            max_cost = max_cost.max(cost);
        }
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| AuthError::Random)?;
        let slots = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Ok(Some(Self {
            users: users.into_iter().collect(),
            decoy: decoy_hash(max_cost),
            key,
            verified: Mutex::new(HashSet::new()),
            slots: Arc::new(Semaphore::new(slots)),
            bcrypt_runs: AtomicU64::new(0),
        }))
    }

    /// Whether the `Authorization` header names a user with its password.
    pub async fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else {
            return false;
        };
        let tag = self.tag(&user, &password);
        if self.cache().contains(&tag) {
            return true;
        }
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => (self.decoy.clone(), false),
        };
        let Ok(_slot) = self.slots.clone().acquire_owned().await else {
            return false;
        };
        self.bcrypt_runs.fetch_add(1, Ordering::Relaxed);
        // bcrypt compares the hashes in constant time itself.
        let matched =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if matched && known {
            let mut cache = self.cache();
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(tag);
            return true;
        }
        false
    }

    /// How many bcrypt verifications have run: a cached credential runs none.
    pub fn bcrypt_runs(&self) -> u64 {
        self.bcrypt_runs.load(Ordering::Relaxed)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cache key: a keyed hash, so neither the set's contents nor the timing of a lookup in
    /// it says anything about a password without the per-process key.
    fn tag(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password);
        let mut out = [0; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

/// A well-formed hash no password matches (all-zero salt and digest), of the given cost.
fn decoy_hash(cost: u32) -> String {
    format!("$2b${cost:02}${}", ".".repeat(53))
}

/// User and password of a `Basic` authorization.
fn credentials(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth() -> BasicAuth {
        let users = BTreeMap::from([("alice".to_owned(), bcrypt::hash("s3cret", 4).unwrap())]);
        BasicAuth::new(users).unwrap().expect("users given")
    }

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_is_admitted() {
        let a = auth();
        assert!(a.admits(Some(&basic("alice", "s3cret"))).await);
        assert!(!a.admits(Some(&basic("alice", "wrong"))).await);
        assert!(!a.admits(Some(&basic("bob", "s3cret"))).await);
        assert!(!a.admits(None).await);
        for raw in ["Bearer abc", "Basic !!!", "Basic YWxpY2U=", "basic"] {
            assert!(
                !a.admits(Some(&HeaderValue::from_static(raw))).await,
                "{raw}"
            );
        }
        // The scheme is case-insensitive.
        let lower = basic("alice", "s3cret")
            .to_str()
            .unwrap()
            .replace("Basic", "basic");
        assert!(
            a.admits(Some(&HeaderValue::from_str(&lower).unwrap()))
                .await
        );
    }

    #[tokio::test]
    async fn a_verified_password_is_not_hashed_again_and_a_wrong_one_always_is() {
        let a = auth();
        for _ in 0..5 {
            assert!(a.admits(Some(&basic("alice", "s3cret"))).await);
        }
        assert_eq!(a.bcrypt_runs(), 1, "cached after the first success");
        for _ in 0..2 {
            assert!(!a.admits(Some(&basic("alice", "s3cret "))).await);
        }
        assert!(!a.admits(Some(&basic("nobody", "x"))).await);
        assert_eq!(
            a.bcrypt_runs(),
            4,
            "failures and unknown users are never cached"
        );
    }

    #[test]
    fn malformed_hashes_are_refused_without_showing_them() {
        for hash in [
            "plain",
            "$2y$10$short",
            "$2y$99$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze",
        ] {
            let e =
                BasicAuth::new(BTreeMap::from([("u".to_owned(), hash.to_owned())])).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("\"u\"") && !text.contains(hash), "{text}");
        }
        assert!(BasicAuth::new(BTreeMap::new()).unwrap().is_none());
    }

    #[test]
    fn the_decoy_is_a_valid_hash_no_password_matches() {
        for password in ["", "password", "."] {
            assert_eq!(bcrypt::verify(password, &decoy_hash(4)).ok(), Some(false));
        }
    }
}
