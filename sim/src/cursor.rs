//! Paging cursors: opaque to clients, they carry the position of the last session of a page and
//! a digest of the query they belong to, sealed with a per-simulator key so that a garbled or
//! foreign cursor is refused rather than misread.
//!
//! Because a cursor holds a position (time, sequence number) rather than an offset, the next page
//! continues right after the last session returned, however the world changed meanwhile: new
//! sessions sort after it and are picked up, a session updated during paging moves later and
//! may come again (the duplicates the API documents), and none is skipped.

use super::world::ListKey;

/// Format version, so that a change of layout refuses old cursors.
const VERSION: u8 = 1;
/// Payload: version, time, sequence number, query digest.
const PAYLOAD: usize = 1 + 8 + 8 + 8;
/// Payload plus seal.
const LENGTH: usize = PAYLOAD + 8;

/// What a cursor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The last session of the page it follows.
    pub(crate) after: ListKey,
    /// Digest of the query it belongs to.
    pub(crate) query: u64,
}

/// FNV-1a over `bytes`, then mixed: a digest for queries and the seal of cursors.
pub(crate) fn digest(seed: u64, bytes: &[u8]) -> u64 {
    let hash = bytes.iter().fold(0xCBF2_9CE4_8422_2325 ^ seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    super::sampling::splitmix(hash)
}

impl Cursor {
    /// The cursor's text: hex of the payload and its seal under `key`.
    pub(crate) fn encode(&self, key: u64) -> String {
        let mut bytes = Vec::with_capacity(LENGTH);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.after.0.to_be_bytes());
        bytes.extend_from_slice(&self.after.1.to_be_bytes());
        bytes.extend_from_slice(&self.query.to_be_bytes());
        let seal = digest(key, &bytes);
        bytes.extend_from_slice(&seal.to_be_bytes());
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a cursor sealed under `key`; `None` for anything else.
    pub(crate) fn decode(text: &str, key: u64) -> Option<Cursor> {
        if text.len() != LENGTH * 2 || !text.is_ascii() {
            return None;
        }
        let bytes: Vec<u8> = (0..LENGTH)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<_>>()?;
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            w
        };
        if bytes[0] != VERSION
            || u64::from_be_bytes(word(PAYLOAD)) != digest(key, &bytes[..PAYLOAD])
        {
            return None;
        }
        Some(Cursor {
            after: (i64::from_be_bytes(word(1)), u64::from_be_bytes(word(9))),
            query: u64::from_be_bytes(word(17)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_tampering() {
        let cursor = Cursor {
            after: (1_700_000_000_123, 42),
            query: 0xDEAD_BEEF,
        };
        let text = cursor.encode(7);
        assert_eq!(Cursor::decode(&text, 7), Some(cursor));
        assert_eq!(Cursor::decode(&text, 8), None, "another simulator's cursor");
        let mut garbled = text.clone().into_bytes();
        garbled[20] = if garbled[20] == b'0' { b'1' } else { b'0' };
        let garbled = String::from_utf8(garbled).expect("ascii");
        assert_eq!(Cursor::decode(&garbled, 7), None);
        for bad in ["", "63527ce1d8e5811243db4902", &text[2..], "zz"] {
            assert_eq!(Cursor::decode(bad, 7), None, "{bad:?}");
        }
    }
}
