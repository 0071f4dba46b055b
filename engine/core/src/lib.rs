//! The flowlens engine: decoders, sources and the ingest pipeline.
//!
//! ```text
//! source ──► decode ──► Arrow RecordBatch ──► BatchSink (detectors, archive, ...)
//! (local/S3)  (sans-IO)  (flowlens_model schemas)
//! ```
//!
//! - [`decode`]: sans-IO, push-style decoders (VPC text, VPC parquet, WAF JSON, gzip).
//! - [`source`]: listing and streaming objects from local folders and S3.
//! - [`pipeline`]: bounded-concurrency scanning that feeds a [`pipeline::BatchSink`].
//! - [`report`]: the run report automation reads.

pub mod archive;
pub mod aws;
pub mod cpu;
pub mod decode;
pub mod error;
pub mod malloc;
pub mod pipeline;
pub mod report;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
mod util;

pub use error::{Error, RecordError, Result};
pub use pipeline::{BatchSink, Progress, ScanOptions, Scanner};
pub use report::ScanReport;
