//! Texts of at most 15 bytes as 128-bit keys, and an exact map from such keys to
//! `u32` numbers, one cache line away.
//!
//! A short text is its own key ([`short_key`]; every IPv4 address has one). Finding
//! a text's number through [`crate::atoms::Texts`]' hash index costs four dependent
//! loads (the index's control bytes, its entry, the text's end in the arena, the
//! text), each a cache miss once a run knows tens of thousands of addresses: 13 % of
//! the detectors' time on default-format logs (README, detector cost, session 29).
//! In [`KeyCodes`] a key and its number share one slot of an open-addressing table
//! (linear probing), so a lookup costs one load, two where a probe crosses a line,
//! and no hashing of the text.

use arrow::array::MAX_INLINE_VIEW_LEN;

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

/// A slot: a key and its code, or empty ([`KeyCodes::EMPTY`] as its code).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The key's low and high 64 bits (two words, not a `u128`: 24-byte slots, not 32).
    key: [u64; 2],
    code: u32,
}

/// Keys and their codes (no removal; [`KeyCodes::clear`] forgets all).
#[derive(Debug, Clone, Default)]
pub struct KeyCodes {
    /// A power of two of slots (or none before the first insert).
    slots: Vec<Slot>,
    len: usize,
}

/// Slots at the first insert.
const FIRST_SLOTS: usize = 1024;

#[inline]
fn split(key: u128) -> [u64; 2] {
    [key as u64, (key >> 64) as u64]
}

/// Where a key's probe starts (of `mask + 1` slots): both halves mixed, the product's
/// high bits taken.
#[inline]
fn home(key: [u64; 2], mask: usize) -> usize {
    let x = key[0] ^ key[1].rotate_left(29);
    let h = (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (h >> 32) as usize & mask
}

impl KeyCodes {
    /// The code of an empty slot: no key has it.
    pub const EMPTY: u32 = u32::MAX;

    /// The code of `key`, if it has one.
    #[inline]
    pub fn get(&self, key: u128) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let key = split(key);
        let mask = self.slots.len() - 1;
        let mut i = home(key, mask);
        loop {
            let s = self.slots[i];
            if s.code == Self::EMPTY {
                return None;
            }
            if s.key == key {
                return Some(s.code);
            }
            i = (i + 1) & mask;
        }
    }

    /// Gives `key` (which has no code yet) the code `code`.
    ///
    /// # Panics
    /// `code` is [`KeyCodes::EMPTY`].
    pub fn insert_new(&mut self, key: u128, code: u32) {
        assert_ne!(code, Self::EMPTY, "no key has the empty slot's code");
        // At most three quarters full: a probe mostly ends in its first line.
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.grow();
        }
        self.place(split(key), code);
        self.len += 1;
    }

    /// Puts a key that is not in the table into its first empty slot.
    fn place(&mut self, key: [u64; 2], code: u32) {
        let mask = self.slots.len() - 1;
        let mut i = home(key, mask);
        while self.slots[i].code != Self::EMPTY {
            debug_assert_ne!(self.slots[i].key, key, "a key placed twice");
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot { key, code };
    }

    fn grow(&mut self) {
        let n = (2 * self.slots.len()).max(FIRST_SLOTS);
        let empty = Slot {
            key: [0; 2],
            code: Self::EMPTY,
        };
        let old = std::mem::replace(&mut self.slots, vec![empty; n]);
        for s in old.into_iter().filter(|s| s.code != Self::EMPTY) {
            self.place(s.key, s.code);
        }
    }

    /// Forgets every key (and gives back the slots' memory).
    pub fn clear(&mut self) {
        *self = KeyCodes::default();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
        assert_eq!(t.len, keys.len());
        assert!(t.slots.len().is_power_of_two() && 4 * t.len <= 3 * t.slots.len());
        for (code, &key) in keys.iter().enumerate() {
            assert_eq!(t.get(key), Some(code as u32), "{key:#x}");
        }
        assert_eq!(t.get(u128::MAX), None);
        t.clear();
        assert_eq!((t.len, t.slots.len()), (0, 0));
        assert_eq!(t.get(keys[0]), None);
    }

    proptest! {
        // Against a std map: inserts of new keys among lookups of any.
        #[test]
        fn like_a_map(ops in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..3000)) {
            let mut t = KeyCodes::default();
            let mut m: HashMap<u128, u32> = HashMap::new();
            for (k, spread) in ops {
                let key = u128::from(k) << (spread % 113);
                prop_assert_eq!(t.get(key), m.get(&key).copied());
                if !m.contains_key(&key) {
                    let code = m.len() as u32;
                    m.insert(key, code);
                    t.insert_new(key, code);
                }
            }
            prop_assert_eq!(t.len, m.len());
        }
    }
}
