//! The batch sink of a run: decoded batches into the detector registry, finished
//! objects into a list for the manifest.

use arrow::record_batch::RecordBatch;
use flowlens_detectors::Registry;
use flowlens_engine::error::BoxError;
use flowlens_engine::pipeline::{BatchSink, ObjectDone};
use flowlens_model::LogKind;

/// Feeds every enabled detector and remembers how each object ended.
pub struct DetectSink {
    pub registry: Registry,
    /// Objects finished, in completion order.
    pub done: Vec<ObjectDone>,
    /// Rows observed.
    pub rows: u64,
}

impl DetectSink {
    pub fn new(registry: Registry) -> Self {
        DetectSink {
            registry,
            done: Vec::new(),
            rows: 0,
        }
    }
}

impl BatchSink for DetectSink {
    fn batch(&mut self, kind: LogKind, batch: &RecordBatch) -> Result<(), BoxError> {
        self.rows += batch.num_rows() as u64;
        self.registry
            .observe(kind, batch)
            .map_err(|e| Box::new(e) as BoxError)
    }

    fn object_done(&mut self, done: &ObjectDone) -> Result<(), BoxError> {
        self.done.push(done.clone());
        Ok(())
    }
}
