//! Appending a run of rows to a column builder, for the VPC text decoder's fast path
//! ([`super::vpc_text`]): room for the run's rows is reserved up front (one capacity
//! check per run instead of one per value), each row is written straight into that
//! room, in order, and the validity is appended once per stretch of equal bits when the
//! run ends instead of once per row. A run that stops early keeps the rows written
//! before the stop.
//!
//! The room is not zero-filled first: the rows are written into the vector's spare
//! capacity and the length set to the number written (the only `unsafe` here). Filling
//! it with zeros took a sixth of the v5 parser's time, a second write of every value.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use arrow::array::builder::NullBufferBuilder;

/// Most rows one run may take.
pub(crate) const RUN_MAX_ROWS: usize = 4096;

/// Words of a run's null bitmap.
const NULL_WORDS: usize = RUN_MAX_ROWS / 64;

/// A column's null bitmap for its runs (bit `r` set when row `r` of the run is null),
/// kept by the column between runs and all zero there, so a run without nulls never
/// clears it.
pub(crate) struct RunNulls(Box<[u64; NULL_WORDS]>);

impl Default for RunNulls {
    fn default() -> Self {
        RunNulls(Box::new([0; NULL_WORDS]))
    }
}

/// The rows of a run being written (see [`fill`]).
pub(crate) struct RunSlots<'a, V> {
    /// Room for the run's rows; the first `filled` are written.
    spare: &'a mut [MaybeUninit<V>],
    filled: usize,
    nulls: &'a mut [u64; NULL_WORDS],
    any_null: bool,
}

impl<V: Copy + Default> RunSlots<'_, V> {
    /// Appends the next row's value.
    ///
    /// # Panics
    /// When the run already has all the rows [`fill`] made room for.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: V) {
        self.spare[self.filled].write(value);
        self.filled += 1;
    }

    /// Appends a null row (its slot holds the default value).
    #[inline(always)]
    pub(crate) fn push_null(&mut self) {
        let r = self.filled;
        self.nulls[(r >> 6) % NULL_WORDS] |= 1 << (r & 63);
        self.any_null = true;
        self.push(V::default());
    }
}

/// Makes room for `rows` more rows in `values`, lets `write` append up to that many
/// with [`RunSlots::push`] and [`RunSlots::push_null`], and appends their validity to
/// `validity`. Returns how many rows `write` appended.
///
/// # Panics
/// If `rows` exceeds [`RUN_MAX_ROWS`] or `write` appends more than `rows` rows.
#[inline(always)]
pub(crate) fn fill<V: Copy + Default>(
    values: &mut Vec<V>,
    validity: &mut NullBufferBuilder,
    nulls: &mut RunNulls,
    rows: usize,
    write: impl FnOnce(&mut RunSlots<'_, V>),
) -> usize {
    assert!(rows <= RUN_MAX_ROWS, "a run of {rows} rows");
    values.reserve(rows);
    let len = values.len();
    let mut run = RunSlots {
        spare: &mut values.spare_capacity_mut()[..rows],
        filled: 0,
        nulls: &mut nulls.0,
        any_null: false,
    };
    write(&mut run);
    let (done, any_null) = (run.filled, run.any_null);
    // SAFETY: `RunSlots::push` (which `push_null` calls) writes slot `filled` of the
    // spare capacity before counting it, so the first `done` slots past `len` hold
    // values; `reserve` made room for them.
    unsafe { values.set_len(len + done) };
    if any_null {
        append_validity(validity, &nulls.0[..], done);
        // Leave the bitmap all zero for the next run.
        nulls.0[..done.div_ceil(64)].fill(0);
    } else {
        validity.append_n_non_nulls(done);
    }
    done
}

/// Appends the validity of rows `0..rows` (bit set: null), a stretch of equal bits at a
/// time.
fn append_validity(validity: &mut NullBufferBuilder, nulls: &[u64], rows: usize) {
    let mut r = 0;
    while r < rows {
        let bit = r & 63;
        let word = nulls[r >> 6] >> bit;
        let null = word & 1 == 1;
        let same = if null { !word } else { word }.trailing_zeros() as usize;
        let n = same.min(64 - bit).min(rows - r);
        if null {
            validity.append_n_nulls(n);
        } else {
            validity.append_n_non_nulls(n);
        }
        r += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the rows, nulls and stopping point, the builder ends as if each kept
        /// row had been appended one by one.
        #[test]
        fn a_run_equals_appending_row_by_row(
            before in proptest::collection::vec(any::<Option<u8>>(), 0..100),
            run in proptest::collection::vec(any::<Option<u8>>(), 0..300),
            stop in any::<proptest::sample::Index>(),
        ) {
            let (mut values, mut validity) = (Vec::new(), NullBufferBuilder::new(0));
            let mut nulls = RunNulls::default();
            let (mut expected_values, mut expected_validity) = (Vec::new(), NullBufferBuilder::new(0));
            for v in &before {
                for (vals, valid) in [(&mut values, &mut validity), (&mut expected_values, &mut expected_validity)] {
                    vals.push(v.unwrap_or_default());
                    valid.append(v.is_some());
                }
            }
            let keep = stop.index(run.len() + 1);
            let done = fill(&mut values, &mut validity, &mut nulls, run.len(), |slots| {
                for v in run.iter().take(keep) {
                    match v {
                        Some(v) => slots.push(*v),
                        None => slots.push_null(),
                    }
                }
            });
            prop_assert_eq!(done, keep);
            for v in &run[..keep] {
                expected_values.push(v.unwrap_or_default());
                expected_validity.append(v.is_some());
            }
            prop_assert_eq!(&values, &expected_values);
            prop_assert_eq!(validity.len(), expected_validity.len());
            prop_assert_eq!(validity.finish(), expected_validity.finish());
        }
    }

    #[test]
    fn stretches_cross_words_and_the_largest_run() {
        let (mut values, mut validity) = (Vec::<u32>::new(), NullBufferBuilder::new(0));
        let mut nulls = RunNulls::default();
        let done = fill(
            &mut values,
            &mut validity,
            &mut nulls,
            RUN_MAX_ROWS,
            |slots| {
                for r in 0..RUN_MAX_ROWS {
                    // Nulls from 60 to 130 (across two word boundaries) and every 1000th.
                    if (60..130).contains(&r) || r % 1000 == 999 {
                        slots.push_null();
                    } else {
                        slots.push(r as u32);
                    }
                }
            },
        );
        assert_eq!(done, RUN_MAX_ROWS);
        // The next run starts from a clear bitmap: its rows are all valid.
        let more = fill(&mut values, &mut validity, &mut nulls, 200, |slots| {
            (0..200).for_each(|r| slots.push(r));
        });
        assert_eq!(more, 200);
        let nulls = validity.finish().expect("nulls");
        assert_eq!(nulls.null_count(), 70 + 4);
        for (r, value) in values.iter().enumerate() {
            let null = (60..130).contains(&r) || r % 1000 == 999;
            assert_eq!(nulls.is_null(r), null, "{r}");
            let expected = if r >= RUN_MAX_ROWS {
                r - RUN_MAX_ROWS
            } else {
                r
            };
            assert_eq!(*value, if null { 0 } else { expected as u32 });
        }
    }

    #[test]
    #[should_panic]
    fn a_run_cannot_take_more_rows_than_it_made_room_for() {
        let (mut values, mut validity) = (Vec::<u8>::with_capacity(64), NullBufferBuilder::new(0));
        fill(
            &mut values,
            &mut validity,
            &mut RunNulls::default(),
            2,
            |slots| {
                (0..3).for_each(|_| slots.push(1));
            },
        );
    }
}
