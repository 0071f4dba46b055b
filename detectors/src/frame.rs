//! arrow-rs → polars, zero-copy, through the Arrow C Data Interface.
//!
//! Both crates implement the same C ABI (`ArrowArray`, `ArrowSchema`), so a column
//! exported by arrow-rs is imported by polars without copying a byte: strings stay
//! `Utf8View` (polars' own string layout), numbers keep their buffers.
#![allow(unsafe_code)]

use arrow::array::{Array, ArrayRef};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::{Column, DataFrame, PlSmallStr, Series};

use crate::{Error, Result};

// The two definitions of each C struct must have one size, or the handover below is
// unsound; checked at compile time.
const _: () = assert!(
    std::mem::size_of::<FFI_ArrowArray>() == std::mem::size_of::<polars_arrow::ffi::ArrowArray>()
);
const _: () = assert!(
    std::mem::size_of::<FFI_ArrowSchema>() == std::mem::size_of::<polars_arrow::ffi::ArrowSchema>()
);

/// One arrow-rs array as a polars [`Series`] named `name`, sharing its buffers.
///
/// # Errors
/// The array's type has no polars counterpart.
pub fn series(name: &str, array: &ArrayRef) -> Result<Series> {
    let (ffi_array, ffi_schema) =
        arrow::ffi::to_ffi(&array.to_data()).map_err(|e| Error::Frame(e.to_string()))?;
    // SAFETY: `FFI_ArrowArray`/`FFI_ArrowSchema` and polars' `ArrowArray`/`ArrowSchema`
    // are both `#[repr(C)]` renderings of the Arrow C Data Interface structs (sizes
    // checked above). Ownership moves: arrow-rs no longer releases them, polars calls
    // the `release` callback arrow-rs installed exactly once, when it drops the array.
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<FFI_ArrowArray, polars_arrow::ffi::ArrowArray>(ffi_array),
            std::mem::transmute::<FFI_ArrowSchema, polars_arrow::ffi::ArrowSchema>(ffi_schema),
        )
    };
    // SAFETY: the structs were just produced by arrow-rs from a valid array.
    let imported = unsafe {
        let field = polars_arrow::ffi::import_field_from_c(&c_schema)
            .map_err(|e| Error::Frame(e.to_string()))?;
        polars_arrow::ffi::import_array_from_c(c_array, field.dtype)
            .map_err(|e| Error::Frame(e.to_string()))?
    };
    Series::from_arrow(PlSmallStr::from_str(name), imported)
        .map_err(|e| Error::Frame(e.to_string()))
}

/// A polars frame of named arrow-rs columns (all of one length).
///
/// # Errors
/// A column could not be imported, or the lengths differ.
pub fn frame(columns: &[(&str, ArrayRef)]) -> Result<DataFrame> {
    let height = columns.first().map_or(0, |(_, a)| a.len());
    let cols = columns
        .iter()
        .map(|(name, array)| series(name, array).map(Column::from))
        .collect::<Result<Vec<_>>>()?;
    DataFrame::new(height, cols).map_err(|e| Error::Frame(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringViewArray};

    use super::*;

    #[test]
    fn strings_and_numbers_cross_without_loss() {
        let long = "a value longer than twelve bytes, stored out of line";
        let s: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("10.0.0.1"),
            None,
            Some(long),
        ]));
        let n: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None]));
        let df = frame(&[("s", s), ("n", n)]).unwrap();
        assert_eq!(df.height(), 3);
        let s = df.column("s").unwrap().str().unwrap();
        assert_eq!(s.get(0), Some("10.0.0.1"));
        assert_eq!(s.get(1), None);
        assert_eq!(s.get(2), Some(long));
        let n = df.column("n").unwrap().i64().unwrap();
        assert_eq!(n.get(1), Some(2));
        assert_eq!(n.get(2), None);
    }

    #[test]
    fn sliced_arrays_keep_their_offset() {
        let s: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b", "c", "d"]));
        let df = frame(&[("s", s.slice(1, 2))]).unwrap();
        let s = df.column("s").unwrap().str().unwrap();
        assert_eq!((s.get(0), s.get(1)), (Some("b"), Some("c")));
    }
}
