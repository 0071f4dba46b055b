//! Appending a run of rows to a column builder by row index, for the VPC text decoder's
//! fast path ([`super::vpc_text`]): the run's slots are added up front (one capacity
//! check per run instead of one per value), each row writes its slot, and the validity
//! is appended once per stretch of equal bits when the run ends instead of once per
//! row. A run that stops early keeps only the rows before the stop.

use arrow::array::builder::NullBufferBuilder;

/// Most rows one run may take.
pub(crate) const RUN_MAX_ROWS: usize = 4096;

/// The slots of a run being filled (see [`fill`]).
pub(crate) struct RunSlots<'a, V> {
    slots: &'a mut [V],
    /// Bit `r` set when row `r` is null.
    nulls: [u64; RUN_MAX_ROWS / 64],
    any_null: bool,
}

impl<V: Copy> RunSlots<'_, V> {
    /// Row `r`'s value.
    #[inline(always)]
    pub(crate) fn set(&mut self, r: usize, value: V) {
        self.slots[r] = value;
    }

    /// Row `r` is null (its slot keeps the default value).
    #[inline(always)]
    pub(crate) fn set_null(&mut self, r: usize) {
        debug_assert!(
            r < self.slots.len(),
            "row {r} of a run of {}",
            self.slots.len()
        );
        self.nulls[(r >> 6) % self.nulls.len()] |= 1 << (r & 63);
        self.any_null = true;
    }
}

/// Adds `rows` slots (the default value) to `values`, lets `write` fill them, and keeps
/// the first rows it reports filled, with their validity appended to `validity`.
/// Returns that count.
///
/// # Panics
/// If `rows` exceeds [`RUN_MAX_ROWS`] or `write` reports more rows than it was given.
#[inline(always)]
pub(crate) fn fill<V: Copy + Default>(
    values: &mut Vec<V>,
    validity: &mut NullBufferBuilder,
    rows: usize,
    write: impl FnOnce(&mut RunSlots<'_, V>) -> usize,
) -> usize {
    assert!(rows <= RUN_MAX_ROWS, "a run of {rows} rows");
    let len = values.len();
    values.resize(len + rows, V::default());
    let mut run = RunSlots {
        slots: &mut values[len..],
        nulls: [0; RUN_MAX_ROWS / 64],
        any_null: false,
    };
    let done = write(&mut run);
    assert!(done <= rows);
    let (nulls, any_null) = (run.nulls, run.any_null);
    values.truncate(len + done);
    if any_null {
        append_validity(validity, &nulls, done);
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
            let (mut expected_values, mut expected_validity) = (Vec::new(), NullBufferBuilder::new(0));
            for v in &before {
                for (vals, valid) in [(&mut values, &mut validity), (&mut expected_values, &mut expected_validity)] {
                    vals.push(v.unwrap_or_default());
                    valid.append(v.is_some());
                }
            }
            let keep = stop.index(run.len() + 1);
            let done = fill(&mut values, &mut validity, run.len(), |slots| {
                for (r, v) in run.iter().enumerate().take(keep) {
                    match v {
                        Some(v) => slots.set(r, *v),
                        None => slots.set_null(r),
                    }
                }
                keep
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
        let done = fill(&mut values, &mut validity, RUN_MAX_ROWS, |slots| {
            for r in 0..RUN_MAX_ROWS {
                // Nulls from 60 to 130 (across two word boundaries) and every 1000th.
                if (60..130).contains(&r) || r % 1000 == 999 {
                    slots.set_null(r);
                } else {
                    slots.set(r, r as u32);
                }
            }
            RUN_MAX_ROWS
        });
        assert_eq!(done, RUN_MAX_ROWS);
        let nulls = validity.finish().expect("nulls");
        assert_eq!(nulls.null_count(), 70 + 4);
        for (r, value) in values.iter().enumerate() {
            let null = (60..130).contains(&r) || r % 1000 == 999;
            assert_eq!(nulls.is_null(r), null, "{r}");
            assert_eq!(*value, if null { 0 } else { r as u32 });
        }
    }
}
