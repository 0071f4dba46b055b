//! Integration tests of the engine (one test binary for the crate).
//!
//! Tests marked `#[ignore = "needs the local AWS emulator ..."]` run against moto on
//! 127.0.0.1; `.ci/run` (the README's test command) installs and starts it and runs
//! them with `--include-ignored`.

mod damaged;
mod fixtures;
mod generated;
mod s3;
mod split;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Int32Type, Int64Type};
use flowlens_engine::RecordError;
use flowlens_engine::decode::ObjectContext;
use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};
use flowlens_engine::decode::vpc_text::Format;
use flowlens_model::LogKind;

/// This package's folder: `CARGO_MANIFEST_DIR` as cargo sets it when it runs the
/// tests (this checkout's), else as it was when they were compiled. A test binary
/// reused from a target dir shared between checkouts carries the compiling one's.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// What decoding one object gave.
pub struct Decoded {
    pub flows: Option<RecordBatch>,
    pub waf: Option<RecordBatch>,
    pub errors: Vec<RecordError>,
    pub malformed: u64,
    pub failure: Option<String>,
}

impl Decoded {
    pub fn flows(&self) -> &RecordBatch {
        self.flows.as_ref().expect("flow records")
    }
    pub fn waf(&self) -> &RecordBatch {
        self.waf.as_ref().expect("WAF records")
    }
}

/// Decodes `bytes` as one object, pushed in chunks of `chunk` bytes.
pub fn decode_with(bytes: &[u8], format: Option<&str>, chunk: usize, batch_rows: usize) -> Decoded {
    decode_ctx(
        ObjectContext::new("test-object"),
        bytes,
        format,
        chunk,
        batch_rows,
    )
}

/// Decodes `bytes` as the object stored under `key` (account and region from the key).
pub fn decode_key(bytes: &[u8], key: &str) -> Decoded {
    let info = flowlens_engine::source::parse_key(key);
    let ctx = ObjectContext {
        object: key.to_string(),
        account_id: info.account_id,
        region: info.region,
    };
    decode_ctx(ctx, bytes, None, 64 * 1024, 8192)
}

fn decode_ctx(
    ctx: ObjectContext,
    bytes: &[u8],
    format: Option<&str>,
    chunk: usize,
    batch_rows: usize,
) -> Decoded {
    let opts = DecodeOptions {
        flow_format: format.map(|f| Format::parse(f).expect("valid format")),
        batch_rows,
        waf_batch_rows: batch_rows,
    };
    let mut d = ObjectDecoder::new(ctx, opts);
    let mut flows = Vec::new();
    let mut waf = Vec::new();
    let mut drain = |d: &mut ObjectDecoder| {
        while let Some((kind, b)) = d.take_batch() {
            match kind {
                LogKind::Flows => flows.push(b),
                LogKind::Waf => waf.push(b),
            }
        }
    };
    for c in bytes.chunks(chunk.max(1)) {
        d.push(c);
        drain(&mut d);
    }
    let failure = d.finish().err();
    drain(&mut d);
    let failure = failure.or(d.take_late_failure()).map(|e| e.to_string());
    let concat = |v: Vec<RecordBatch>| {
        (!v.is_empty()).then(|| concat_batches(&v[0].schema(), &v).expect("same schema"))
    };
    Decoded {
        flows: concat(flows),
        waf: concat(waf),
        malformed: d.stats().malformed,
        errors: d.take_errors(),
        failure,
    }
}

pub fn decode(bytes: &[u8], format: Option<&str>) -> Decoded {
    decode_with(bytes, format, 64 * 1024, 8192)
}

pub fn str_at(b: &RecordBatch, col: &str, row: usize) -> Option<String> {
    let c = b.column(b.schema().index_of(col).expect(col));
    (!c.is_null(row)).then(|| c.as_string_view().value(row).to_string())
}

pub fn i32_at(b: &RecordBatch, col: &str, row: usize) -> Option<i32> {
    let c = b.column(b.schema().index_of(col).expect(col));
    (!c.is_null(row)).then(|| c.as_primitive::<Int32Type>().value(row))
}

pub fn i64_at(b: &RecordBatch, col: &str, row: usize) -> Option<i64> {
    let c = b.column(b.schema().index_of(col).expect(col));
    (!c.is_null(row)).then(|| c.as_primitive::<Int64Type>().value(row))
}

pub fn sum_i64(b: &RecordBatch, col: &str) -> u64 {
    let c = b.column(b.schema().index_of(col).expect(col));
    c.as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .map(|v| v as u64)
        .sum()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}
