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
//! rows cost one 16-byte hash, or a comparison with the row before.

use arrow::array::{Array, StringViewArray, UInt32Array};
use arrow::buffer::ScalarBuffer;
use polars::prelude::PlHashMap;

/// The distinct strings of one chunk, numbered in order of first appearance.
#[derive(Debug, Default)]
pub struct Names<'a> {
    values: Vec<&'a str>,
    index: PlHashMap<&'a str, u32>,
}

impl<'a> Names<'a> {
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
        let c = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct strings");
        self.values.push(s);
        self.index.insert(s, c);
        c
    }

    /// The code of every row of `a` (a null row stays null).
    pub fn codes(&mut self, a: &'a StringViewArray) -> UInt32Array {
        let views = a.views();
        let mut seen: PlHashMap<u128, u32> = PlHashMap::default();
        let mut out = Vec::with_capacity(a.len());
        // (view, code) of the previous valid row.
        let mut prev: Option<(u128, u32)> = None;
        for (i, &v) in views.iter().enumerate() {
            if a.is_null(i) {
                out.push(0);
                continue;
            }
            let code = match prev {
                Some((pv, pc)) if pv == v => pc,
                _ => match seen.get(&v) {
                    Some(&c) => c,
                    None => {
                        let c = self.intern(a.value(i));
                        seen.insert(v, c);
                        c
                    }
                },
            };
            prev = Some((v, code));
            out.push(code);
        }
        UInt32Array::new(ScalarBuffer::from(out), a.nulls().cloned())
    }
}

/// `first` where it is valid, else `second` (null where both are).
pub fn coalesce(first: &UInt32Array, second: &UInt32Array) -> UInt32Array {
    if first.null_count() == 0 {
        return first.clone();
    }
    first
        .iter()
        .zip(second.iter())
        .map(|(a, b)| a.or(b))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::builder::StringViewBuilder;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn same_text_same_code_across_columns() {
        let long = "eni-0123456789abcdef0";
        let a = StringViewArray::from(vec![Some("10.0.0.1"), None, Some(long), Some(long)]);
        let b = StringViewArray::from(vec![Some(long), Some("10.0.0.1"), None, Some("x")]);
        let mut names = Names::default();
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
        assert_eq!(names.values(), ["10.0.0.1", long, "x"]);
        assert_eq!(names.get(1), long);
    }

    #[test]
    fn coalesce_prefers_the_first() {
        let a = UInt32Array::from(vec![Some(1), None, None]);
        let b = UInt32Array::from(vec![Some(7), Some(8), None]);
        assert_eq!(
            coalesce(&a, &b).iter().collect::<Vec<_>>(),
            [Some(1), Some(8), None]
        );
    }

    proptest! {
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
