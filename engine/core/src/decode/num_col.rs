//! A primitive column builder for the VPC text decoder: arrow's `PrimitiveBuilder`
//! plus [`NumCol::truncate`], so the fast path can append a record field by field and
//! take it back when a later field turns out to be malformed.

use arrow::array::PrimitiveArray;
use arrow::array::builder::NullBufferBuilder;
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::ArrowPrimitiveType;

use super::col_run::{self, RunNulls, RunSlots};

/// Builds one primitive column.
pub(crate) struct NumCol<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
    run_nulls: RunNulls,
}

impl<T: ArrowPrimitiveType> NumCol<T> {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        NumCol {
            values: Vec::with_capacity(rows),
            nulls: NullBufferBuilder::new(rows),
            run_nulls: RunNulls::default(),
        }
    }

    /// Makes room for `rows` rows in all (see `StrCol::reserve_rows`).
    pub(crate) fn reserve_rows(&mut self, rows: usize) {
        self.values
            .reserve_exact(rows.saturating_sub(self.values.len()));
    }

    #[inline(always)]
    pub(crate) fn append_value(&mut self, v: T::Native) {
        self.values.push(v);
        self.nulls.append_non_null();
    }

    #[inline(always)]
    pub(crate) fn append_null(&mut self) {
        self.values.push(T::Native::default());
        self.nulls.append_null();
    }

    /// Appends a run of at most `rows` rows (see [`col_run::fill`]); returns how many.
    #[inline(always)]
    pub(crate) fn fill_run(
        &mut self,
        rows: usize,
        write: impl FnOnce(&mut RunSlots<'_, T::Native>),
    ) -> usize {
        col_run::fill(
            &mut self.values,
            &mut self.nulls,
            &mut self.run_nulls,
            rows,
            write,
        )
    }

    /// Keeps the first `rows` values.
    pub(crate) fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.nulls.truncate(rows);
    }

    /// The column so far; the builder starts the next batch with this one's capacity.
    pub(crate) fn finish(&mut self) -> PrimitiveArray<T> {
        let rows = self.values.len();
        let values = ScalarBuffer::from(std::mem::replace(
            &mut self.values,
            Vec::with_capacity(rows),
        ));
        let nulls = std::mem::replace(&mut self.nulls, NullBufferBuilder::new(rows)).finish();
        PrimitiveArray::new(values, nulls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Int32Type;

    #[test]
    fn values_nulls_and_truncation() {
        let mut c = NumCol::<Int32Type>::with_capacity(2);
        c.append_value(1);
        c.append_null();
        c.append_value(3);
        c.truncate(2);
        c.append_value(4);
        let a = c.finish();
        assert_eq!(a.iter().collect::<Vec<_>>(), [Some(1), None, Some(4)]);
        c.append_value(5);
        c.truncate(1);
        assert_eq!(c.finish().iter().collect::<Vec<_>>(), [Some(5)]);
        assert_eq!(c.finish().len(), 0);
    }
}
