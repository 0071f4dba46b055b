//! The strings of one chunk as dense integer codes.
//!
//! Detectors group flows by addresses and interfaces. Grouping by the text costs a
//! string hash and a variable-length row encoding per row and key in every query;
//! grouping by a code costs a fixed-width integer. [`Names`] gives each distinct string
//! of a chunk one `u32` (the same text has the same code in every column it is
//! interned from, so codes of two columns compare as their texts do), and the
//! detectors turn the codes of their (small) aggregation results back into text.
//!
//! Interning reads each row's Arrow view first: within one array an equal view is
//! equal text (an inline view holds the text, a long one its buffer, offset and
//! length), and the decoders give a repeated value the view of its first copy, so most
//! rows cost one lookup in a small direct-mapped cache of recent views (a row repeating
//! the previous row's view, one comparison); only a miss hashes the text.

use arrow::array::{Array, StringViewArray};
use polars::prelude::PlHashMap;

/// The code of a null.
pub const NONE: u32 = u32::MAX;

/// Slots of the view cache (a power of two).
const CACHE_BITS: u32 = 12;

#[derive(Debug, Clone, Copy, Default)]
struct Cached {
    view: u128,
    code: u32,
    /// Which array the view belongs to (views of long strings mean nothing elsewhere).
    array: u32,
}

/// The distinct strings of one chunk, numbered in order of first appearance.
#[derive(Debug, Default)]
pub struct Names<'a> {
    values: Vec<&'a str>,
    index: PlHashMap<&'a str, u32>,
    /// The view cache, allocated by the first column coded: a chunk without one (WAF)
    /// needs none.
    cache: Box<[Cached]>,
    /// Number of arrays interned so far (`Cached::array` of the current one).
    arrays: u32,
}

#[inline]
fn slot(view: u128) -> usize {
    let x = (view as u64) ^ ((view >> 64) as u64).rotate_left(29);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_BITS)) as usize
}

impl<'a> Names<'a> {
    /// Room for `distinct` strings before the index grows.
    pub fn with_capacity(distinct: usize) -> Self {
        Names {
            values: Vec::with_capacity(distinct),
            index: PlHashMap::with_capacity_and_hasher(distinct, Default::default()),
            ..Names::default()
        }
    }

    /// The text of `code`.
    ///
    /// # Panics
    /// `code` was not given out by this `Names`.
    pub fn get(&self, code: u32) -> &'a str {
        self.values[code as usize]
    }

    /// The distinct strings, indexed by code.
    pub fn values(&self) -> &[&'a str] {
        &self.values
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Nothing interned yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The code of `s`, new if it was not seen yet.
    pub fn intern(&mut self, s: &'a str) -> u32 {
        if let Some(&c) = self.index.get(s) {
            return c;
        }
        let c = u32::try_from(self.values.len())
            .ok()
            .filter(|c| *c != NONE)
            .expect("fewer than 2^32 - 1 distinct strings");
        self.values.push(s);
        self.index.insert(s, c);
        c
    }

    /// Appends the code of every row of `a` to `out` ([`NONE`] for a null).
    pub fn append_codes(&mut self, a: &'a StringViewArray, out: &mut Vec<u32>) {
        self.append(a, None, out);
    }

    /// Appends the code of every row of `a` to `out`, where a row is null or holds
    /// the same short text as row `i` of `base` (whose codes, `base_codes`, were
    /// appended from it): `base_codes[i]`. Packet-level addresses mostly repeat the
    /// interface-level ones, and a log format without them has them null throughout.
    ///
    /// # Panics
    /// `base` or `base_codes` is shorter than `a`.
    pub fn append_codes_or(
        &mut self,
        a: &'a StringViewArray,
        base: &StringViewArray,
        base_codes: &[u32],
        out: &mut Vec<u32>,
    ) {
        assert!(base.len() >= a.len() && base_codes.len() >= a.len());
        self.append(a, Some((base, base_codes)), out);
    }

    fn append(
        &mut self,
        a: &'a StringViewArray,
        base: Option<(&StringViewArray, &[u32])>,
        out: &mut Vec<u32>,
    ) {
        self.arrays = self.arrays.wrapping_add(1);
        if self.arrays == 0 {
            // Wrapped: forget every cached view rather than mistake an old one.
            self.cache.fill(Cached::default());
            self.arrays = 1;
        }
        let array = self.arrays;
        if a.null_count() == a.len() {
            // A field the log format lacks (packet-level addresses in v2 logs).
            match base {
                Some((_, codes)) => out.extend_from_slice(&codes[..a.len()]),
                None => out.resize(out.len() + a.len(), NONE),
            }
            return;
        }
        if self.cache.is_empty() {
            self.cache = vec![Cached::default(); 1 << CACHE_BITS].into_boxed_slice();
        }
        let nulls = a.nulls();
        let base_views = base.map_or(&[][..], |(b, _)| &b.views()[..]);
        let base_codes = base.map_or(&[][..], |(_, c)| c);
        out.reserve(a.len());
        // The previous row's view and code: runs of one value cost a comparison.
        let (mut last_view, mut last_code) = (0u128, NONE);
        for (i, &view) in a.views().iter().enumerate() {
            if nulls.is_some_and(|n| n.is_null(i)) {
                out.push(base_codes.get(i).copied().unwrap_or(NONE));
                continue;
            }
            // An inline view (length at most 12) is the text itself, in any array;
            // the base's row is valid when its code is not NONE.
            if base.is_some()
                && view == base_views[i]
                && (view as u32) <= 12
                && base_codes[i] != NONE
            {
                out.push(base_codes[i]);
                continue;
            }
            if view == last_view && last_code != NONE {
                out.push(last_code);
                continue;
            }
            let h = slot(view);
            let hit = self.cache[h];
            let code = if hit.array == array && hit.view == view {
                hit.code
            } else {
                let code = self.intern(a.value(i));
                self.cache[h] = Cached { view, code, array };
                code
            };
            (last_view, last_code) = (view, code);
            out.push(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::builder::StringViewBuilder;
    use proptest::prelude::*;

    use arrow::array::UInt32Array;
    use arrow::buffer::{NullBuffer, ScalarBuffer};

    use super::*;

    /// Codes ([`NONE`] for null) as an Arrow array.
    fn to_array(codes: Vec<u32>) -> UInt32Array {
        let nulls = codes
            .contains(&NONE)
            .then(|| NullBuffer::from_iter(codes.iter().map(|c| *c != NONE)));
        UInt32Array::new(ScalarBuffer::from(codes), nulls)
    }

    impl<'a> Names<'a> {
        /// The code of every row of `a` (a null row stays null).
        fn codes(&mut self, a: &'a StringViewArray) -> UInt32Array {
            let mut out = Vec::with_capacity(a.len());
            self.append_codes(a, &mut out);
            to_array(out)
        }
    }

    #[test]
    fn same_text_same_code_across_columns() {
        let long = "eni-0123456789abcdef0";
        let none = StringViewArray::from(vec![None::<&str>; 3]);
        let a = StringViewArray::from(vec![Some("10.0.0.1"), None, Some(long), Some(long)]);
        let b = StringViewArray::from(vec![Some(long), Some("10.0.0.1"), None, Some("x")]);
        let mut names = Names::default();
        // No cache until a column with values is coded (WAF chunks code none).
        names.append_codes(&none, &mut Vec::new());
        assert!(names.cache.is_empty());
        let ca = names.codes(&a);
        assert_eq!(names.cache.len(), 1 << CACHE_BITS);
        let cb = names.codes(&b);
        assert_eq!(
            ca.iter().collect::<Vec<_>>(),
            [Some(0), None, Some(1), Some(1)]
        );
        assert_eq!(
            cb.iter().collect::<Vec<_>>(),
            [Some(1), Some(0), None, Some(2)]
        );
        assert_eq!(names.values(), ["10.0.0.1", long, "x"]);
        assert_eq!(names.get(1), long);
        let mut out = vec![7];
        names.append_codes(&none, &mut out);
        assert_eq!(out, [7, NONE, NONE, NONE]);
        assert_eq!(names.codes(&none).null_count(), 3);
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn the_empty_string_is_not_an_empty_slot() {
        // The empty string's view is all zeros, as is a cache slot never written.
        let a = StringViewArray::from(vec!["10.0.0.1", ""]);
        let b = StringViewArray::from(vec!["", "10.0.0.1"]);
        let mut names = Names::default();
        let mut out = Vec::new();
        names.append_codes(&a, &mut out);
        names.append_codes(&b, &mut out);
        assert_eq!(out, [0, 1, 1, 0]);
        assert_eq!(names.values(), ["10.0.0.1", ""]);
    }

    #[test]
    fn views_cached_per_array() {
        // Both long, same length and 4-byte prefix, each at offset 0 of its own
        // array's buffer: equal views, different text.
        let a = StringViewArray::from(vec!["100.64.100.100", "100.64.100.100"]);
        let b = StringViewArray::from(vec!["100.200.100.10"]);
        assert_eq!(a.views()[0], b.views()[0]);
        let mut names = Names::default();
        let mut out = Vec::new();
        names.append_codes(&a, &mut out);
        names.append_codes(&b, &mut out);
        assert_eq!(out, [0, 0, 1]);
        assert_eq!(names.values(), ["100.64.100.100", "100.200.100.10"]);
    }

    #[test]
    fn packet_level_codes_fall_back_to_the_base() {
        let long = "2001:db8::1234:5678";
        let base = StringViewArray::from(vec![
            Some("10.0.0.1"),
            Some("10.0.0.2"),
            None,
            Some(long),
            Some("10.0.0.5"),
        ]);
        let pkt = StringViewArray::from(vec![
            None,
            Some("10.0.0.2"),
            Some("10.0.0.3"),
            Some(long),
            Some("10.0.0.6"),
        ]);
        let none = StringViewArray::from(vec![None::<&str>; 5]);
        let mut names = Names::default();
        let mut base_codes = Vec::new();
        names.append_codes(&base, &mut base_codes);
        let mut out = vec![9];
        names.append_codes_or(&pkt, &base, &base_codes, &mut out);
        let text: Vec<Option<&str>> = out[1..]
            .iter()
            .map(|&c| (c != NONE).then(|| names.get(c)))
            .collect();
        assert_eq!(
            text,
            [
                Some("10.0.0.1"),
                Some("10.0.0.2"),
                Some("10.0.0.3"),
                Some(long),
                Some("10.0.0.6")
            ]
        );
        // A packet-level column the format lacks is the base throughout.
        let mut out = Vec::new();
        names.append_codes_or(&none, &base, &base_codes, &mut out);
        assert_eq!(out, base_codes);
    }

    proptest! {
        // Packet-level codes follow the packet-level text, or the base's where it is
        // null, whichever values repeat across the two columns.
        #[test]
        fn packet_level_codes_follow_the_text(
            rows in proptest::collection::vec(
                (proptest::option::of(0usize..5), proptest::option::of(0usize..5)),
                0..200,
            ),
        ) {
            // Two long values of one length and prefix: at the same offset of their
            // arrays, their views are equal.
            let pool = ["10.0.0.1", "10.0.0.2", "203.0.113.250", "203.0.113.251", "2001:db8::1"];
            let base = StringViewArray::from(
                rows.iter().map(|(b, _)| b.map(|k| pool[k])).collect::<Vec<_>>(),
            );
            let pkt = StringViewArray::from(
                rows.iter().map(|(_, p)| p.map(|k| pool[k])).collect::<Vec<_>>(),
            );
            let mut names = Names::default();
            let mut base_codes = Vec::new();
            names.append_codes(&base, &mut base_codes);
            let mut out = Vec::new();
            names.append_codes_or(&pkt, &base, &base_codes, &mut out);
            for (i, (b, p)) in rows.iter().enumerate() {
                match p.or(*b) {
                    Some(k) => prop_assert_eq!(names.get(out[i]), pool[k]),
                    None => prop_assert_eq!(out[i], NONE),
                }
            }
        }

        // Arrays built with deduplicated blocks reuse views for repeated values, and
        // views of long values equal across rows only when the bytes are: codes must
        // follow the text either way.
        #[test]
        fn codes_follow_the_text(
            rows in proptest::collection::vec(proptest::option::of(0usize..6), 0..200),
            dedup in any::<bool>(),
        ) {
            let pool = [
                "10.0.0.1",
                "203.0.113.250",
                "eni-0123456789abcdef0",
                "eni-0123456789abcdef1",
                "",
                "2001:db8::1234:5678",
            ];
            let mut builder = StringViewBuilder::new();
            if dedup {
                builder = builder.with_deduplicate_strings();
            }
            for r in &rows {
                match r {
                    Some(k) => builder.append_value(pool[*k]),
                    None => builder.append_null(),
                }
            }
            let array = builder.finish();
            let mut names = Names::default();
            let codes = names.codes(&array);
            for (i, r) in rows.iter().enumerate() {
                match r {
                    Some(k) => prop_assert_eq!(names.get(codes.value(i)), pool[*k]),
                    None => prop_assert!(codes.is_null(i)),
                }
            }
            let mut distinct: Vec<&str> = rows.iter().flatten().map(|k| pool[*k]).collect();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(names.len(), distinct.len());
        }
    }
}
