//! Texts of at most 15 bytes as 128-bit keys, and an exact map from such keys to
//! `u32` numbers, one cache line away.
//!
//! A short text is its own key ([`short_key`]; every IPv4 address has one). Finding
//! a text's number through [`crate::atoms::Texts`]' hash index costs four dependent
//! loads (the index's control bytes, its entry, the text's end in the arena, the
//! text), each a cache miss once a run knows tens of thousands of addresses: 13 % of
//! the detectors' time on default-format logs (`detectors/bench/README.md`, session 29).
//! In [`KeyCodes`] a key and its number share one slot of a [`FlatMap`], so a lookup
//! costs one load, two where a probe crosses a line, and no hashing of the text.

use arrow::array::MAX_INLINE_VIEW_LEN;

use crate::flat::{FlatKey, FlatMap, mix};

/// Texts up to this many bytes have a [`short_key`].
pub const SHORT: usize = 15;

/// The cache key of a text of at most [`SHORT`] bytes — equal keys, equal text: for
/// at most 12 bytes its inline view (the length in the low 32 bits, the bytes above,
/// zero-padded), so that an inline view is its own key; for 13 to 15 bytes the length
/// in the low byte and the bytes above it (a low byte of 13 to 15 is no inline view's:
/// their low 32 bits are at most 12).
#[inline]
pub fn short_key(text: &[u8]) -> u128 {
    debug_assert!(text.len() <= SHORT);
    let mut b = [0u8; 16];
    if text.len() <= MAX_INLINE_VIEW_LEN as usize {
        b[4..4 + text.len()].copy_from_slice(text);
        b[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
    } else {
        b[1..1 + text.len()].copy_from_slice(text);
        b[0] = text.len() as u8;
    }
    u128::from_le_bytes(b)
}

/// A [`short_key`] as a [`FlatMap`] key (two words, not a `u128`: 24-byte slots with
/// a `u32`, not 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShortKey([u64; 2]);

impl FlatKey for ShortKey {
    /// All ones: no short key (its low 32 bits would be an inline length above 12, its
    /// low byte a length above 15).
    const EMPTY: ShortKey = ShortKey([u64::MAX; 2]);

    #[inline]
    fn hash(self) -> u64 {
        mix(self.0[0] ^ self.0[1].rotate_left(29))
    }
}

/// Short keys and their codes (no removal).
#[derive(Debug, Clone, Default)]
pub struct KeyCodes {
    map: FlatMap<ShortKey, u32>,
}

#[inline]
fn split(key: u128) -> ShortKey {
    ShortKey([key as u64, (key >> 64) as u64])
}

impl KeyCodes {
    /// The code of `key` (a [`short_key`]), if it has one.
    #[inline]
    pub fn get(&self, key: u128) -> Option<u32> {
        self.map.get(split(key)).copied()
    }

    /// Gives `key` (a [`short_key`] with no code yet) the code `code`.
    ///
    /// # Panics
    /// `key` is no short key (all ones).
    pub fn insert_new(&mut self, key: u128, code: u32) {
        self.map.insert_new(split(key), code);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_inline_view_and_its_text_have_one_key() {
        for text in ["", "1", "10.0.0.1", "203.0.113.25"] {
            let view = arrow::array::builder::make_view(text.as_bytes(), 0, 0);
            assert_eq!(view, short_key(text.as_bytes()), "{text}");
        }
        // The length tells texts apart whose bytes are a prefix of another's.
        assert_ne!(short_key(b"10.0.0.1"), short_key(b"10.0.0.1\0"));
    }

    proptest! {
        // Equal keys, equal text, across the inline and the 13-to-15-byte forms.
        #[test]
        fn short_keys_tell_texts_apart(
            a in proptest::collection::vec(any::<u8>(), 0..=SHORT),
            b in proptest::collection::vec(any::<u8>(), 0..=SHORT),
        ) {
            prop_assert_eq!(short_key(&a) == short_key(&b), a == b);
            if a.len() <= MAX_INLINE_VIEW_LEN as usize {
                prop_assert_eq!(short_key(&a), arrow::array::builder::make_view(&a, 0, 0));
            }
        }
    }

    // Keys a short key's hash must spread: differing in one half only, or in one bit
    // (`flat` checks the table itself against a map).
    #[test]
    fn keys_keep_their_codes_through_growth() {
        let mut t = KeyCodes::default();
        assert_eq!(t.get(7), None);
        // Keys that differ in one half only, and in single bits (distinct).
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<u128> = (0..20_000u128)
            .map(|k| match k % 3 {
                0 => k,
                1 => k << 64,
                _ => 1 << (k % 128) | k << 20,
            })
            .filter(|k| seen.insert(*k))
            .collect();
        assert!(keys.len() > 19_000);
        for (code, &key) in keys.iter().enumerate() {
            assert_eq!(t.get(key), None, "{key:#x} before its insert");
            t.insert_new(key, code as u32);
        }
        for (code, &key) in keys.iter().enumerate() {
            assert_eq!(t.get(key), Some(code as u32), "{key:#x}");
        }
        assert_eq!(t.get(u128::MAX), None);
    }
}
