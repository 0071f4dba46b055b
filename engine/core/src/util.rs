//! Small Arrow helpers shared by the decoders.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use arrow::array::builder::make_view;
use arrow::array::{ArrayRef, StringViewArray, new_null_array};
use arrow::buffer::{Buffer, ScalarBuffer};
use arrow::datatypes::DataType;

/// Most all-null arrays kept for reuse.
const NULL_CACHE_ENTRIES: usize = 256;

static NULLS: LazyLock<Mutex<HashMap<(DataType, usize), ArrayRef>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// An all-null array of `dt` and `rows`, shared: arrays are immutable, and every batch
/// of every object needs the same ones for the fields its format lacks (about 28 for
/// the default format), which would otherwise be allocated and zeroed each time.
pub fn null_array(dt: &DataType, rows: usize) -> ArrayRef {
    let key = (dt.clone(), rows);
    let mut cache = NULLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(a) = cache.get(&key) {
        return a.clone();
    }
    if cache.len() >= NULL_CACHE_ENTRIES {
        cache.clear();
    }
    let a = new_null_array(dt, rows);
    cache.insert(key, a.clone());
    a
}

/// A `Utf8View` column of `rows` copies of `value`, sharing one buffer.
pub fn const_str_view(value: &str, rows: usize) -> ArrayRef {
    let bytes = value.as_bytes();
    let view = make_view(bytes, 0, 0);
    let views = ScalarBuffer::from(vec![view; rows]);
    let buffers = if bytes.len() > 12 {
        vec![Buffer::from(bytes)]
    } else {
        vec![]
    };
    if cfg!(debug_assertions) {
        return Arc::new(
            StringViewArray::try_new(views, buffers, None).expect("valid constant view array"),
        );
    }
    // SAFETY: every view is `make_view` of the same `&str` (valid UTF-8) at offset 0 of
    // buffer 0, which holds exactly those bytes (or, for at most 12 bytes, the view
    // holds them inline). Skipping `try_new`'s check matters: it validates every row's
    // copy again (about a hundred instructions per row for an S3 URI).
    #[allow(unsafe_code)]
    unsafe {
        Arc::new(StringViewArray::new_unchecked(views, buffers, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn shared_null_arrays() {
        let a = null_array(&DataType::Utf8View, 5);
        let b = null_array(&DataType::Utf8View, 5);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((a.len(), a.null_count()), (5, 5));
        assert_eq!(
            null_array(&DataType::Int64, 3).data_type(),
            &DataType::Int64
        );
    }

    #[test]
    fn constant_views() {
        for v in ["short", "s3://bucket/a/long/key/name.log.gz", ""] {
            let a = const_str_view(v, 3);
            assert_eq!(a.len(), 3);
            assert_eq!(a.as_string_view().value(2), v);
        }
    }
}
