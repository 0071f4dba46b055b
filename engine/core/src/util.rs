//! Small Arrow helpers shared by the decoders.

use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{ArrayRef, StringViewArray};
use arrow::buffer::{Buffer, ScalarBuffer};

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
    // Views and buffer are consistent by construction.
    Arc::new(StringViewArray::try_new(views, buffers, None).expect("valid constant view array"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn constant_views() {
        for v in ["short", "s3://bucket/a/long/key/name.log.gz", ""] {
            let a = const_str_view(v, 3);
            assert_eq!(a.len(), 3);
            assert_eq!(a.as_string_view().value(2), v);
        }
    }
}
