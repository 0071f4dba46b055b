//! A `Utf8View` column builder for the VPC text decoder's hot path.
//!
//! Compared with arrow's `StringViewBuilder` it does less per value: strings of at most
//! 12 bytes are inlined in the view, a long value equal to one of the column's recent
//! long values reuses its view (ENI, VPC, subnet and instance ids repeat from record to
//! record: a small table keyed by a value's last bytes remembers the recent ones), and
//! finishing does not re-validate bytes the decoder already checked.
//!
//! The finish is the only `unsafe` here: every appended value is a `&str`, so the data
//! block holds valid UTF-8 at every view's range by construction. Debug builds (and so
//! every test) validate anyway.
#![allow(unsafe_code)]

use arrow::array::StringViewArray;
use arrow::array::builder::{NullBufferBuilder, make_view};
use arrow::buffer::{Buffer, ScalarBuffer};

use super::col_run::{self, RunNulls, RunSlots};

/// The `Utf8View` view of a value of at most 12 bytes, given the little-endian word
/// whose low bytes are the value (as `vpc_text::fast::load16` loads it).
#[inline(always)]
pub(crate) fn inline_view(head: u128, len: usize) -> u128 {
    let bytes = head & INLINE_MASK[len];
    (bytes << 32) | len as u128
}

/// `INLINE_MASK[n]` keeps the low `n` bytes of a word (a table: a variable 128-bit
/// shift costs several instructions per value).
const INLINE_MASK: [u128; 13] = {
    let mut masks = [0u128; 13];
    let mut n = 1;
    while n < 13 {
        masks[n] = (1u128 << (8 * n)) - 1;
        n += 1;
    }
    masks
};

/// Whether two equally long values (over 12 bytes) are equal: up to 32 bytes as two
/// overlapping 16-byte words each (ids such as `eni-0123456789abcdef0` are 21 bytes),
/// without a call to `memcmp`.
#[inline(always)]
fn same_long(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let len = a.len();
    if !(16..=32).contains(&len) {
        return a == b;
    }
    let word =
        |s: &[u8], at: usize| u128::from_le_bytes(s[at..at + 16].try_into().expect("16 bytes"));
    word(a, 0) == word(b, 0) && word(a, len - 16) == word(b, len - 16)
}

/// Appends `bytes` to `data`. Values of 8 to 32 bytes (the long values here are public
/// addresses and AWS ids of 13 to 32) are copied as two overlapping fixed-size pieces,
/// which compile to a few moves, instead of through a call to `memcpy`.
#[inline(always)]
fn push_bytes(data: &mut Vec<u8>, bytes: &[u8]) {
    let (at, n) = (data.len(), bytes.len());
    match n {
        8..=16 => {
            data.extend_from_slice(&[0; 16]);
            data[at..at + 8].copy_from_slice(&bytes[..8]);
            data[at + n - 8..at + n].copy_from_slice(&bytes[n - 8..]);
            data.truncate(at + n);
        }
        17..=32 => {
            data.extend_from_slice(&[0; 32]);
            data[at..at + 16].copy_from_slice(&bytes[..16]);
            data[at + n - 16..at + n].copy_from_slice(&bytes[n - 16..]);
            data.truncate(at + n);
        }
        _ => data.extend_from_slice(bytes),
    }
}

/// Slots of [`StrCol`]'s table of recent long values (a power of two: the slot is the
/// top bits of a multiplicative hash).
const RECENT: usize = 64;

/// Builds one `Utf8View` column.
pub(crate) struct StrCol {
    views: Vec<u128>,
    nulls: NullBufferBuilder,
    run_nulls: RunNulls,
    values: Values,
}

/// The bytes behind a column's views: the data block that long values are copied into,
/// and the table of recent long values.
pub(crate) struct Values {
    data: Vec<u8>,
    /// Views of recent long values, by a hash of their last bytes (0: empty slot), to
    /// reuse when a value comes again.
    recent: Box<[u128; RECENT]>,
}

impl StrCol {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        StrCol {
            views: Vec::with_capacity(rows),
            nulls: NullBufferBuilder::new(rows),
            run_nulls: RunNulls::default(),
            values: Values {
                data: Vec::with_capacity(rows * 8),
                recent: Box::new([0; RECENT]),
            },
        }
    }

    /// Makes room for `rows` rows in all (the data block in proportion to the bytes
    /// per row so far), so a batch that outgrows its first capacity is copied once
    /// instead of once per doubling.
    pub(crate) fn reserve_rows(&mut self, rows: usize) {
        let len = self.views.len();
        self.views.reserve_exact(rows.saturating_sub(len));
        let data = self.values.data.len();
        if len > 0 && data > 0 {
            let want = data.saturating_mul(rows) / len;
            self.values.data.reserve_exact(want.saturating_sub(data));
        }
    }

    #[inline]
    pub(crate) fn append_value(&mut self, value: &str) {
        let view = self.values.view(value);
        self.views.push(view);
        self.nulls.append_non_null();
    }

    /// Appends a run of at most `rows` rows (see [`col_run::fill`]): `write` appends
    /// each row's view, made by `Values`; returns how many rows it appended.
    #[inline(always)]
    pub(crate) fn fill_run(
        &mut self,
        rows: usize,
        write: impl FnOnce(&mut RunSlots<'_, u128>, &mut Values),
    ) -> usize {
        let values = &mut self.values;
        col_run::fill(
            &mut self.views,
            &mut self.nulls,
            &mut self.run_nulls,
            rows,
            |slots| write(slots, values),
        )
    }

    /// Keeps the first `rows` values (the bytes of dropped ones stay unreferenced in
    /// the data block).
    pub(crate) fn truncate(&mut self, rows: usize) {
        self.views.truncate(rows);
        self.nulls.truncate(rows);
    }

    #[inline(always)]
    pub(crate) fn append_null(&mut self) {
        self.views.push(0);
        self.nulls.append_null();
    }

    /// The column so far; the builder is left empty for the next batch.
    pub(crate) fn finish(&mut self) -> StringViewArray {
        // Start the next batch with this one's capacity (no regrowth from zero).
        let (rows, bytes) = (self.views.len(), self.values.data.len());
        let views =
            ScalarBuffer::from(std::mem::replace(&mut self.views, Vec::with_capacity(rows)));
        let data = std::mem::replace(&mut self.values.data, Vec::with_capacity(bytes));
        let buffers = if data.is_empty() {
            vec![]
        } else {
            vec![Buffer::from_vec(data)]
        };
        let nulls = std::mem::replace(&mut self.nulls, NullBufferBuilder::new(rows)).finish();
        self.values.recent.fill(0);
        if cfg!(debug_assertions) {
            return StringViewArray::try_new(views, buffers, nulls).expect("valid views");
        }
        // SAFETY: every view was made from a `&str` (valid UTF-8) or from ASCII bytes
        // (`view_ascii`'s contract) — inline, or by `make_view` at the offset where its
        // bytes were copied into the single data block (block 0) — or copied from such a
        // view; null slots hold the zero view. The data block is
        // below 4 GiB because a batch holds at most a few MiB of text per column.
        unsafe { StringViewArray::new_unchecked(views, buffers, nulls) }
    }
}

impl Values {
    /// The view of `value`.
    #[inline]
    pub(crate) fn view(&mut self, value: &str) -> u128 {
        let bytes = value.as_bytes();
        if bytes.len() <= 12 {
            make_view(bytes, 0, 0)
        } else {
            self.long_view(bytes)
        }
    }

    /// The view of a token of printable ASCII bytes (checked by the caller) whose first
    /// bytes `head` holds, as the fast path loads them (see `vpc_text::fast`): a short
    /// token's view is built from `head` without copying byte by byte.
    #[inline(always)]
    pub(crate) fn view_ascii(&mut self, bytes: &[u8], head: u128) -> u128 {
        debug_assert!(bytes.is_ascii());
        let len = bytes.len();
        if len <= 12 {
            inline_view(head, len)
        } else {
            self.long_view(bytes)
        }
    }

    /// The view of a value of more than 12 bytes: a recent equal value's, or a new one
    /// over a copy of the bytes.
    #[inline(always)]
    fn long_view(&mut self, bytes: &[u8]) -> u128 {
        let len = bytes.len();
        let tail = u64::from_le_bytes(bytes[len - 8..].try_into().expect("8 bytes"));
        let slot = ((tail ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize;
        let recent = self.recent[slot];
        if recent != 0 && self.same_as(recent, bytes) {
            return recent;
        }
        let offset = self.data.len();
        push_bytes(&mut self.data, bytes);
        let v = make_view(bytes, 0, offset as u32);
        self.recent[slot] = v;
        v
    }

    #[inline]
    fn same_as(&self, view: u128, bytes: &[u8]) -> bool {
        let len = view as u32 as usize;
        let offset = (view >> 96) as u32 as usize;
        len == bytes.len()
            && self
                .data
                .get(offset..offset + len)
                .is_some_and(|stored| same_long(stored, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use proptest::prelude::*;

    proptest! {
        /// Values come back as they went in, whichever repeat and however long.
        #[test]
        fn values_round_trip(values in proptest::collection::vec(
            proptest::option::of(prop_oneof![
                "[a-c]{0,14}",
                "eni-0[0-9a-f]{16}",
                "[a-z]{13,40}",
            ]),
            0..300,
        )) {
            let mut c = StrCol::with_capacity(4);
            for v in &values {
                match v {
                    Some(v) if v.is_ascii() && v.len() % 2 == 0 => {
                        let head = u128::from_le_bytes({
                            let mut w = [0u8; 16];
                            let n = v.len().min(16);
                            w[..n].copy_from_slice(&v.as_bytes()[..n]);
                            w
                        });
                        c.fill_run(1, |slots, values| {
                            slots.push(values.view_ascii(v.as_bytes(), head));
                        });
                    }
                    Some(v) => c.append_value(v),
                    None => c.append_null(),
                }
            }
            let a = c.finish();
            prop_assert_eq!(a.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>(), values);
        }

        #[test]
        fn inline_views_match_arrow(text in "[!-~]{0,12}", tail in any::<u128>()) {
            let mut word = tail.to_le_bytes();
            word[..text.len()].copy_from_slice(text.as_bytes());
            prop_assert_eq!(
                inline_view(u128::from_le_bytes(word), text.len()),
                make_view(text.as_bytes(), 0, 0)
            );
        }
    }

    #[test]
    fn bytes_of_every_length_are_appended_exactly() {
        let mut data = b"prefix".to_vec();
        let mut expected = data.clone();
        for n in 0..48 {
            let bytes: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(37) ^ n as u8).collect();
            push_bytes(&mut data, &bytes);
            expected.extend_from_slice(&bytes);
            assert_eq!(data, expected, "{n}");
        }
    }

    #[test]
    fn long_values_compare_every_byte() {
        for len in 13..40 {
            let a: Vec<u8> = (0..len as u8).collect();
            assert!(same_long(&a, &a.clone()));
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!same_long(&a, &b), "{len} {at}");
            }
        }
    }

    #[test]
    fn inline_long_repeated_and_null() {
        let mut c = StrCol::with_capacity(4);
        let values = [
            Some("ACCEPT"),
            Some("eni-0123456789abcdef0"),
            Some("eni-0123456789abcdef0"),
            None,
            Some("vpc-0a1b2c3d4e5f60718"),
            Some("eni-0123456789abcdef0"),
            Some(""),
        ];
        for v in values {
            match v {
                Some(v) => c.append_value(v),
                None => c.append_null(),
            }
        }
        let a = c.finish();
        assert_eq!(a.iter().collect::<Vec<_>>(), values);
        assert_eq!(a.null_count(), 1);
        // Each long value was stored once, however often and wherever it repeats.
        assert_eq!(a.data_buffers()[0].len(), 21 * 2);
        // The builder starts over.
        c.append_value("x");
        assert_eq!(c.finish().len(), 1);
    }
}
