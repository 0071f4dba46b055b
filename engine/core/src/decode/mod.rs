//! Sans-IO, push-style decoders: bytes in, Arrow record batches out.
//!
//! Every decoder has the same shape (after arrow-rs' `arrow-csv`/`arrow-json`):
//!
//! ```text
//!   push(chunk) ─┐  (any split of the input, any number of times)
//!   push(chunk) ─┼─► complete records → column builders ─► full batches ─► take_batch()
//!   finish()   ──┘   partial trailing record kept until the next push / finish
//! ```
//!
//! Malformed records never stop a decoder: each one is skipped, counted in
//! [`DecodeStats::malformed`] and reported as a [`RecordError`] with its line, and the
//! decoder resynchronises at the next record.

mod col_run;
pub mod gzip;
pub mod inflate;
mod num_col;
pub mod object;
mod str_col;
pub mod vpc_parquet;
pub mod vpc_text;
pub mod waf_json;

use std::collections::VecDeque;

use arrow::array::RecordBatch;
use arrow::array::builder::{MapBuilder, MapFieldNames, StringBuilder};

use crate::error::RecordError;

/// Rows per flow batch unless configured otherwise: small enough that the detectors,
/// reading a batch just after it is decoded, find it in the processor's caches.
pub const DEFAULT_BATCH_ROWS: usize = 16 * 1024;

/// Rows per WAF batch unless configured otherwise (a WAF record is wider, and its
/// detector gathers 128 K rows before it runs).
pub const WAF_BATCH_ROWS: usize = 32 * 1024;

/// At most this many record errors are kept per object (all are counted).
pub const MAX_ERRORS_PER_OBJECT: usize = 100;

/// Where the bytes came from: stamped on every row and used to fill gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectContext {
    /// `s3://bucket/key` or a local path.
    pub object: String,
    /// Account id from the object key, used when a record lacks one.
    pub account_id: Option<String>,
    /// Region from the object key, used when a record lacks one.
    pub region: Option<String>,
}

impl ObjectContext {
    pub fn new(object: impl Into<String>) -> Self {
        ObjectContext {
            object: object.into(),
            ..Default::default()
        }
    }
}

/// Counters of one decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Records decoded into batches.
    pub records: u64,
    /// Records skipped as malformed.
    pub malformed: u64,
}

/// A push-style record decoder.
pub trait RecordDecoder: Send {
    /// Feeds the next chunk of (decompressed) bytes. Never fails: bad records are
    /// counted and reported through [`RecordDecoder::take_errors`].
    fn push(&mut self, chunk: &[u8]);
    /// Signals the end of input: a trailing record without a newline is decoded.
    fn finish(&mut self);
    /// Drops a trailing partial record instead of decoding it (the input was cut off).
    fn abandon_partial(&mut self);
    /// The next complete batch, if one is ready (after `finish`, also the last partial one).
    fn take_batch(&mut self) -> Option<RecordBatch>;
    /// The errors recorded since the last call (capped per object).
    fn take_errors(&mut self) -> Vec<RecordError>;
    fn stats(&self) -> DecodeStats;
}

/// Keeps the first [`MAX_ERRORS_PER_OBJECT`] errors and counts them all.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    kept: Vec<RecordError>,
    total: u64,
}

impl ErrorLog {
    pub(crate) fn record(&mut self, line: u64, reason: impl FnOnce() -> String) {
        self.total += 1;
        if self.total as usize <= MAX_ERRORS_PER_OBJECT {
            self.kept.push(RecordError {
                line,
                reason: reason(),
            });
        }
    }

    pub(crate) fn take(&mut self) -> Vec<RecordError> {
        std::mem::take(&mut self.kept)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

/// Shortens hostile or huge values quoted in error messages, escaping control bytes.
pub(crate) fn quote(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let shown = &bytes[..bytes.len().min(MAX)];
    let mut s = String::with_capacity(shown.len() + 8);
    for chunk in shown.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                s.extend(c.escape_default());
            } else {
                s.push(c);
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

/// A builder for the `extra` map column of the `flows` schema.
pub(crate) fn extra_map_builder() -> MapBuilder<StringBuilder, StringBuilder> {
    MapBuilder::new(
        Some(MapFieldNames {
            entry: "entries".into(),
            key: "key".into(),
            value: "value".into(),
        }),
        StringBuilder::new(),
        StringBuilder::new(),
    )
}

/// What every record decoder hands out: ready batches, capped errors, a record count.
#[derive(Default)]
pub(crate) struct DecodeOutput {
    pub(crate) ready: VecDeque<RecordBatch>,
    pub(crate) errors: ErrorLog,
    pub(crate) records: u64,
}

impl DecodeOutput {
    pub(crate) fn take_batch(&mut self) -> Option<RecordBatch> {
        self.ready.pop_front()
    }

    pub(crate) fn take_errors(&mut self) -> Vec<RecordError> {
        self.errors.take()
    }

    pub(crate) fn stats(&self) -> DecodeStats {
        DecodeStats {
            records: self.records,
            malformed: self.errors.total(),
        }
    }
}
