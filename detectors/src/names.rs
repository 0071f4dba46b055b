//! The strings of a run as dense integer codes.
//!
//! Detectors group flows by addresses and interfaces. Grouping by the text costs a
//! string hash and a variable-length row encoding per row and key in every query;
//! grouping by a code costs a fixed-width integer. [`Names`] gives each distinct string
//! one `u32` (the same text has the same code in every column and every chunk it is
//! interned from, so codes compare as their texts do), and the detectors turn the codes
//! of their (small) aggregation results back into text. The registry keeps one
//! `Names` for the whole run: a string seen in an earlier chunk costs no hashing again,
//! and what is judged per distinct name (scope, allowlists) is judged once per run.
//! Past a bound the registry starts the codes over with new `Names` (a new
//! [`Names::epoch`]), and a detector that keeps codes across chunks re-keys them.
//!
//! Interning reads each row's Arrow view first and looks it up in a small
//! direct-mapped cache of recent keys. A text of at most 15 bytes (every IPv4 address,
//! short IPv6 ones) is its own key: an inline view (at most 12 bytes) holds it, and the
//! 13 to 15 bytes of a longer one (a public address such as `198.51.100.141`) are read
//! from its buffer, so such a text stays cached from column to column and batch to
//! batch. A longer text (interfaces, IPv6) is keyed by its view and array: within one
//! array an equal view is equal text (its buffer, offset and length), and the decoders
//! give a repeated value the view of its first copy. A miss of a short text finds its
//! code by its key (`key_codes`); only a miss of a longer one hashes the text.

use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, MAX_INLINE_VIEW_LEN, StringViewArray};

use crate::atoms::Texts;
use crate::key_codes::{SHORT, short_key};
use crate::prepare;

/// The code of a null.
pub const NONE: u32 = u32::MAX;

/// The view cache has `1 << CACHE_BITS` slots.
const CACHE_BITS: u32 = 12;

/// Slots of the view cache.
const SLOTS: usize = 1 << CACHE_BITS;

#[derive(Debug, Clone, Copy)]
struct Cached {
    /// A [`short_key`] (`array` 0), else a view of array `array`.
    key: u128,
    code: u32,
    /// Which array the view belongs to (views of long strings mean nothing elsewhere);
    /// 0: a short key, the text itself in any array.
    array: u32,
}

impl Cached {
    /// An empty slot: no short key is all ones (its low 32 bits are an inline length
    /// of at most 12, or its low byte a length of 13 to 15), and no view belongs to
    /// array 0, so no probe finds it.
    const EMPTY: Cached = Cached {
        key: u128::MAX,
        code: NONE,
        array: 0,
    };
}

/// [`short_key`] of a long view's text of 13 to [`SHORT`] bytes: one 16-byte load from
/// its buffer, masked to its length, where the buffer has 16 bytes from its offset;
/// else copied.
#[inline(always)]
fn long_short_key(a: &StringViewArray, view: u128) -> u128 {
    let v = arrow::array::ByteView::from(view);
    let len = v.length as usize;
    let buffer = &a.data_buffers()[v.buffer_index as usize];
    let at = v.offset as usize;
    match buffer.get(at..at + 16) {
        Some(b) => {
            let bytes = u128::from_le_bytes(b.try_into().expect("16 bytes"));
            // The text's bytes moved up a byte (the 16th, beyond a 15-byte text, falls
            // off the top), the length below them.
            let text = (bytes << 8) & (u128::MAX >> (8 * (SHORT - len)));
            text | len as u128
        }
        None => short_key(&buffer[at..at + len]),
    }
}

/// Epochs of every `Names` of the process: a code means something only under the
/// epoch it was given in.
static EPOCHS: AtomicU64 = AtomicU64::new(0);

fn next_epoch() -> u64 {
    EPOCHS.fetch_add(1, Ordering::Relaxed)
}

/// Distinct strings, numbered in order of first appearance.
#[derive(Debug)]
pub struct Names {
    /// The strings, numbered by their codes.
    texts: Texts,
    /// The view cache (a fixed size: slots are indexed without a bounds check).
    cache: Box<[Cached; SLOTS]>,
    /// Number of arrays interned so far (`Cached::array` of the current one).
    arrays: u32,
    epoch: u64,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            texts: Texts::default(),
            cache: Box::new([Cached::EMPTY; SLOTS]),
            arrays: 0,
            epoch: next_epoch(),
        }
    }
}

#[inline]
fn slot(key: u128) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - CACHE_BITS)) as usize
}

impl Names {
    /// The text of `code`.
    ///
    /// # Panics
    /// `code` was not given out by this `Names`.
    pub fn get(&self, code: u32) -> &str {
        self.texts.get(code)
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Nothing interned yet.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Identifies these names and their codes: different for every `Names` of the
    /// process (the registry starts the codes over with new `Names`). A detector that
    /// keeps something per code across chunks keeps it for one epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The code of `s`, new if it was not seen yet: a detector restoring state keys
    /// its open windows by the run's codes.
    pub fn intern(&mut self, s: &str) -> u32 {
        self.texts.id(s)
    }

    /// Appends the code of every row of `a` to `out` ([`NONE`] for a null).
    pub fn append_codes(&mut self, a: &StringViewArray, out: &mut Vec<u32>) {
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
        a: &StringViewArray,
        base: &StringViewArray,
        base_codes: &[u32],
        out: &mut Vec<u32>,
    ) {
        assert!(base.len() >= a.len() && base_codes.len() >= a.len());
        self.append(a, Some((base, base_codes)), out);
    }

    fn append(
        &mut self,
        a: &StringViewArray,
        base: Option<(&StringViewArray, &[u32])>,
        out: &mut Vec<u32>,
    ) {
        self.arrays = self.arrays.wrapping_add(1);
        if self.arrays == 0 {
            // Wrapped: forget every cached view rather than mistake an old one.
            self.cache.fill(Cached::EMPTY);
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
        if let Some((b, codes)) = base {
            return self.append_over_base(a, b.views(), codes, array, out);
        }
        let views = a.views();
        match a.nulls() {
            // The usual column (addresses, interfaces): one cache probe per row.
            None => out.extend(
                views
                    .iter()
                    .enumerate()
                    .map(|(i, &view)| self.code_of(a, i, view, array)),
            ),
            Some(nulls) => out.extend(views.iter().enumerate().map(|(i, &view)| {
                if nulls.is_null(i) {
                    NONE
                } else {
                    self.code_of(a, i, view, array)
                }
            })),
        }
    }

    /// [`Names::append_codes_or`] for `a`, array number `array`: the base's codes
    /// copied for every row, then the rows that do not take them (neither null nor
    /// the base's short text with a code) found a block of 64 at a time
    /// ([`prepare::bits_of`]) and coded one by one. Packet-level addresses are the
    /// interface-level ones in most records, so most rows cost a copy and a compare.
    fn append_over_base(
        &mut self,
        a: &StringViewArray,
        base_views: &[u128],
        base_codes: &[u32],
        array: u32,
        out: &mut Vec<u32>,
    ) {
        let (n, first) = (a.len(), out.len());
        let (views, nulls) = (a.views(), a.nulls());
        out.extend_from_slice(&base_codes[..n]);
        for from in (0..n).step_by(64) {
            let to = n.min(from + 64);
            let mut tests = [1u8; 64];
            let rows = views[from..to].iter().zip(&base_views[from..to]);
            for (t, ((&view, &base), &code)) in
                tests.iter_mut().zip(rows.zip(&base_codes[from..to]))
            {
                // An inline view (length at most 12) is the text itself, in any
                // array; the base's row is valid when its code is not NONE.
                let same = (view == base) & ((view as u32) <= MAX_INLINE_VIEW_LEN) & (code != NONE);
                *t = u8::from(same);
            }
            if let Some(nulls) = nulls {
                for (i, t) in (from..to).zip(tests.iter_mut()) {
                    *t |= u8::from(nulls.is_null(i));
                }
            }
            for i in prepare::ones(!prepare::bits_of(&tests)).map(|j| from + j) {
                out[first + i] = self.code_of(a, i, views[i], array);
            }
        }
    }

    /// The code of row `i` of `a` (valid, its view `view`; `a` is array number
    /// `array`): from the cache, else interned ([`Names::miss`]).
    #[inline(always)]
    fn code_of(&mut self, a: &StringViewArray, i: usize, view: u128, array: u32) -> u32 {
        let len = view as u32 as usize;
        let (key, array) = if len <= MAX_INLINE_VIEW_LEN as usize {
            // An inline view is its text: its own key, in any array.
            (view, 0)
        } else if len <= SHORT {
            (long_short_key(a, view), 0)
        } else {
            (view, array)
        };
        let h = slot(key);
        let hit = self.cache[h];
        if hit.key == key && hit.array == array {
            hit.code
        } else {
            self.miss(a, i, h, key, array)
        }
    }

    /// Row `i` of `a` (valid) missed the cache at slot `h`: interned, and cached under
    /// `key` and `array` ([`Cached`]).
    #[cold]
    #[inline(never)]
    fn miss(&mut self, a: &StringViewArray, i: usize, h: usize, key: u128, array: u32) -> u32 {
        let code = if array == 0 {
            // `key` is the text's short key.
            self.texts.id_short(key, a.value(i))
        } else {
            self.texts.id(a.value(i))
        };
        self.cache[h] = Cached { key, code, array };
        code
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

    impl Names {
        /// The distinct strings, in code order.
        fn iter(&self) -> impl Iterator<Item = &str> + '_ {
            (0..self.len() as u32).map(|c| self.get(c))
        }

        /// The code of every row of `a` (a null row stays null).
        fn codes(&mut self, a: &StringViewArray) -> UInt32Array {
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
        names.append_codes(&none, &mut Vec::new());
        let ca = names.codes(&a);
        let cb = names.codes(&b);
        assert_eq!(
            ca.iter().collect::<Vec<_>>(),
            [Some(0), None, Some(1), Some(1)]
        );
        assert_eq!(
            cb.iter().collect::<Vec<_>>(),
            [Some(1), Some(0), None, Some(2)]
        );
        assert_eq!(names.iter().collect::<Vec<_>>(), ["10.0.0.1", long, "x"]);
        assert_eq!(names.get(1), long);
        let mut out = vec![7];
        names.append_codes(&none, &mut out);
        assert_eq!(out, [7, NONE, NONE, NONE]);
        assert_eq!(names.codes(&none).null_count(), 3);
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn a_long_view_of_a_short_text_is_keyed_by_its_text() {
        // 13 to 15 bytes, the last one at the very end of the buffer (the copy) and
        // the others with 16 bytes after their offset (the masked load).
        let texts = ["203.0.113.250", "198.51.100.141", "255.255.255.255"];
        let a = StringViewArray::from(texts.iter().chain(&texts).copied().collect::<Vec<_>>());
        assert_eq!(a.data_buffers().len(), 1);
        for (i, &view) in a.views().iter().enumerate() {
            let text = texts[i % 3];
            assert_eq!(
                long_short_key(&a, view),
                short_key(text.as_bytes()),
                "{text}"
            );
        }
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
        assert_eq!(names.iter().collect::<Vec<_>>(), ["10.0.0.1", ""]);
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
        assert_eq!(
            names.iter().collect::<Vec<_>>(),
            ["100.64.100.100", "100.200.100.10"]
        );
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

        // One `Names` over several arrays (inline views stay cached from one to the
        // next, long ones do not), and new `Names` among them (the registry starting
        // over): codes follow the text.
        #[test]
        fn codes_follow_the_text_across_arrays_and_new_names(
            arrays in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(0usize..10), 0..60),
                1..5,
            ),
            renew_at in 0usize..6,
        ) {
            // Long values of one length and prefix, each array's at offset 0 of its
            // buffer: equal views across arrays, different text.
            // And texts either side of the short keys' limit (12, 13, 15, 16 bytes).
            let pool = [
                "10.0.0.1",
                "100.64.100.100",
                "100.200.100.10",
                "",
                "eni-0123456789abcdef0",
                "10.0.0.2",
                "203.0.113.25",
                "203.0.113.250",
                "255.255.255.255",
                "2001:db8::123:45",
            ];
            let mut names = Names::default();
            let mut seen: Vec<&str> = Vec::new();
            let epoch = names.epoch();
            for (k, rows) in arrays.iter().enumerate() {
                if k == renew_at {
                    names = Names::default();
                    prop_assert_ne!(names.epoch(), epoch);
                    seen.clear();
                }
                let array = StringViewArray::from(
                    rows.iter().map(|r| r.map(|k| pool[k])).collect::<Vec<_>>(),
                );
                let codes = names.codes(&array);
                for (i, r) in rows.iter().enumerate() {
                    match r {
                        Some(k) => prop_assert_eq!(names.get(codes.value(i)), pool[*k]),
                        None => prop_assert!(codes.is_null(i)),
                    }
                }
                seen.extend(rows.iter().flatten().map(|k| pool[*k]));
                seen.sort_unstable();
                seen.dedup();
                prop_assert_eq!(names.len(), seen.len());
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
