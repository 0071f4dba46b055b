//! Texts as small integer ids that hold across chunks.
//!
//! [`crate::names::Names`] numbers the addresses and interfaces of a run's flows; the
//! WAF detector, whose texts are not coded so, keys its open windows by [`Atoms`] ids
//! instead of owned strings, so a client or fingerprint seen again costs an integer in
//! its maps rather than a string allocation, hash and comparison per window.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use polars::prelude::PlRandomState;

use crate::key_codes::{KeyCodes, SHORT, short_key};

/// Distinct texts in one arena, numbered in order of first appearance: the owner of
/// interning for [`Atoms`] and [`crate::names::Names`]. A new text costs a copy into
/// the arena and an index entry (no allocation of its own). A short text (at most
/// `key_codes::SHORT` bytes) is found by its key (`KeyCodes`), a longer one by its hash.
#[derive(Debug, Default, Clone)]
pub struct Texts {
    /// The texts, one after another; number `n` ends at `ends[n]`.
    text: String,
    ends: Vec<usize>,
    /// Numbers of the longer texts, each with its text's hash (the high 32 bits): the
    /// table grows without reading a text again, and a probe compares the text of an
    /// equal hash only.
    index: HashTable<(u32, u32)>,
    /// Numbers of the short texts by their [`short_key`].
    short: KeyCodes,
    hasher: PlRandomState,
}

impl Texts {
    /// The number of `s`, new if it was not seen yet.
    ///
    /// # Panics
    /// 2^32 − 1 distinct texts (`u32::MAX` is no text's number).
    pub fn id(&mut self, s: &str) -> u32 {
        if s.len() <= SHORT {
            return self.id_short(short_key(s.as_bytes()), s);
        }
        let Texts {
            text,
            ends,
            index,
            hasher,
            ..
        } = self;
        let h = (hasher.hash_one(s) >> 32) as u32;
        if let Some(&(n, _)) =
            index.find(spread(h), |&(n, at)| at == h && text_of(text, ends, n) == s)
        {
            return n;
        }
        let n = Self::append(text, ends, s);
        index.insert_unique(spread(h), (n, h), |&(_, at)| spread(at));
        n
    }

    /// [`Texts::id`] of a short text `s` whose `short_key` is `key` (a caller that
    /// has the key already).
    ///
    /// # Panics
    /// As [`Texts::id`].
    #[inline]
    pub fn id_short(&mut self, key: u128, s: &str) -> u32 {
        debug_assert!(s.len() <= SHORT && key == short_key(s.as_bytes()));
        match self.short.get(key) {
            Some(n) => n,
            None => {
                let n = Self::append(&mut self.text, &mut self.ends, s);
                self.short.insert_new(key, n);
                n
            }
        }
    }

    /// `s` appended to the arena: its number.
    fn append(text: &mut String, ends: &mut Vec<usize>, s: &str) -> u32 {
        let n = u32::try_from(ends.len())
            .ok()
            .filter(|n| *n != u32::MAX)
            .expect("fewer than 2^32 - 1 distinct texts");
        text.push_str(s);
        ends.push(text.len());
        n
    }

    /// The text of number `n`.
    ///
    /// # Panics
    /// `n` was not given out.
    pub fn get(&self, n: u32) -> &str {
        text_of(&self.text, &self.ends, n)
    }

    /// Number of distinct texts.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No text yet.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// The 64-bit hash the index files a text under, made of its 32 bits kept.
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h) << 32 | u64::from(h)
}

/// The text of number `n` in an arena.
#[inline]
fn text_of<'t>(text: &'t str, ends: &[usize], n: u32) -> &'t str {
    let n = n as usize;
    let start = if n == 0 { 0 } else { ends[n - 1] };
    &text[start..ends[n]]
}

/// Distinct texts, numbered in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Atoms {
    texts: Texts,
}

impl Atoms {
    /// The id of `text`, new if it was not seen yet.
    pub fn id(&mut self, text: &str) -> u32 {
        self.texts.id(text)
    }

    /// The text of `id`.
    ///
    /// # Panics
    /// `id` was not given out by these atoms.
    pub fn text(&self, id: u32) -> &str {
        self.texts.get(id)
    }

    /// Number of distinct texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// No text yet.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Time to renumber the texts still in use into fresh atoms: there are more than
    /// twice the `live` ones of the last renumbering, and at least [`Atoms::COMPACT_AT`]
    /// (a run over months of logs keeps the texts of its open windows, not of every
    /// text it ever saw).
    pub fn outgrown(&self, live: usize) -> bool {
        self.len() > (2 * live).max(Self::COMPACT_AT)
    }

    /// Atoms below which [`Atoms::outgrown`] never asks for a renumbering.
    pub const COMPACT_AT: usize = 64 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_id() {
        let mut a = Atoms::default();
        assert!(a.is_empty());
        let x = a.id("203.0.113.7");
        let y = a.id("eni-0123456789abcdef0");
        assert_eq!(a.id("203.0.113.7"), x);
        assert_ne!(x, y);
        assert_eq!(a.text(y), "eni-0123456789abcdef0");
        assert_eq!(a.len(), 2);
    }

    // Long texts (the hash index) keep their ids through its growth, which reads
    // the hashes it keeps, not the texts.
    #[test]
    fn long_texts_keep_their_ids_as_the_index_grows() {
        let mut a = Atoms::default();
        let text = |k: u32| format!("2001:db8:{:x}:{:x}::{k}", k >> 16, k & 0xffff);
        let ids: Vec<u32> = (0..20_000).map(|k| a.id(&text(k))).collect();
        assert_eq!(ids, (0..20_000).collect::<Vec<u32>>());
        for k in (0..20_000).rev() {
            assert_eq!(a.id(&text(k)), k, "{}", text(k));
            assert_eq!(a.text(k), text(k));
        }
        assert_eq!(a.len(), 20_000);
    }
}
