//! Detector tests on generated scenarios: each detector finds its incident and stays
//! quiet on its look-alikes, across seeds and volumes; splitting or reordering the
//! input and merging state gives the same findings, ids included.

mod scenarios;
mod shards;

use std::path::Path;

use arrow::record_batch::RecordBatch;
use flowlens_detectors::{Config, Registry};
use flowlens_engine::decode::ObjectContext;
use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};
use flowlens_model::LogKind;
use flowlens_model::finding::Finding;

/// Generates a scenario and decodes every object (in key order) into batches.
pub fn scenario(hours: u32, seed: u64, scale: f64) -> Vec<(LogKind, RecordBatch)> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = flowlens_samples::Config {
        out: dir.path().to_path_buf(),
        hours,
        seed,
        scale,
        ..flowlens_samples::Config::default()
    };
    let m = flowlens_samples::generate(&cfg).expect("generate");
    let mut keys: Vec<&str> = m.objects.iter().map(|o| o.key.as_str()).collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        decode_into(dir.path(), key, &mut out);
    }
    out
}

fn decode_into(root: &Path, key: &str, out: &mut Vec<(LogKind, RecordBatch)>) {
    let bytes = std::fs::read(root.join(key)).unwrap();
    let info = flowlens_engine::source::parse_key(key);
    let ctx = ObjectContext {
        object: key.to_string(),
        account_id: info.account_id,
        region: info.region,
    };
    let mut d = ObjectDecoder::new(
        ctx,
        DecodeOptions {
            batch_rows: 4096,
            ..DecodeOptions::default()
        },
    );
    d.push(&bytes);
    d.finish().expect("clean object");
    assert_eq!(d.stats().malformed, 0, "{key}");
    while let Some(b) = d.take_batch() {
        out.push(b);
    }
}

/// Runs every detector with `config` over the batches, closing every window.
pub fn detect(config: Config, batches: &[(LogKind, RecordBatch)]) -> Vec<Finding> {
    let mut r = Registry::new(config);
    for (kind, b) in batches {
        r.observe(*kind, b).unwrap();
    }
    r.flush(i64::MAX).unwrap()
}
