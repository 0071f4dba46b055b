//! The generator is the oracle: every object decodes to exactly the records it wrote.

use std::sync::Arc;

use chrono::Duration;
use flowlens_engine::pipeline::CountingSink;
use flowlens_engine::source::Location;
use flowlens_engine::{Progress, ScanOptions, Scanner};
use flowlens_samples::{Config, Manifest, ObjectFormat};

use super::*;

pub fn generate(dir: &std::path::Path, hours: u32, seed: u64, scale: f64) -> Manifest {
    let cfg = Config {
        out: dir.to_path_buf(),
        hours,
        seed,
        scale,
        ..Config::default()
    };
    flowlens_samples::generate(&cfg).expect("generate samples")
}

#[test]
fn every_object_matches_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 1, 7, 0.5);
    for format in [
        ObjectFormat::V2Text,
        ObjectFormat::V5Text,
        ObjectFormat::Parquet,
        ObjectFormat::WafJson,
    ] {
        assert!(
            m.objects.iter().any(|o| o.format == format),
            "{format:?} missing"
        );
    }
    for o in &m.objects {
        let bytes = std::fs::read(dir.path().join(&o.key)).unwrap();
        let d = decode_key(&bytes, &o.key);
        assert_eq!(d.malformed, 0, "{}: {:?}", o.key, d.errors);
        assert!(d.failure.is_none(), "{}: {:?}", o.key, d.failure);
        if o.format == ObjectFormat::WafJson {
            assert_eq!(d.waf().num_rows() as u64, o.records, "{}", o.key);
            continue;
        }
        let b = d.flows();
        assert_eq!(b.num_rows() as u64, o.records, "{}", o.key);
        assert_eq!(sum_i64(b, "bytes"), o.sum_bytes, "{}", o.key);
        assert_eq!(sum_i64(b, "packets"), o.sum_packets, "{}", o.key);
        let status = b.column(b.schema().index_of("log_status").unwrap());
        let nodata = status
            .as_string_view()
            .iter()
            .filter(|s| *s == Some("NODATA"))
            .count();
        assert_eq!(nodata as u64, o.nodata, "{}", o.key);
        // Account and region are filled (v2 lacks region: it comes from the key).
        for row in 0..b.num_rows() {
            assert_eq!(
                str_at(b, "account_id", row).as_deref(),
                Some("123456789012")
            );
            assert_eq!(str_at(b, "region", row).as_deref(), Some("us-east-1"));
        }
    }
}

fn scan(dir: &std::path::Path, opts: &ScanOptions) -> flowlens_engine::ScanReport {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let scanner = Arc::new(Scanner::new());
        let mut sink = CountingSink::default();
        let r = scanner
            .scan(
                &[Location::Local(dir.to_path_buf())],
                opts,
                &mut sink,
                &Progress::default(),
            )
            .await
            .unwrap();
        assert_eq!(sink.rows, r.flow_records + r.waf_records);
        r
    })
}

#[test]
fn scanning_a_folder_counts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 2, 3, 0.3);
    let r = scan(dir.path(), &ScanOptions::default());
    assert_eq!(r.objects_read, m.objects.len() as u64);
    assert_eq!(r.objects_listed, m.objects.len() as u64);
    assert_eq!(r.flow_records, m.flow_records);
    assert_eq!(r.waf_records, m.waf_records);
    assert_eq!(r.malformed_records, 0);
    assert_eq!(r.objects_failed, 0);
    let on_disk: u64 = m
        .objects
        .iter()
        .map(|o| std::fs::metadata(dir.path().join(&o.key)).unwrap().len())
        .sum();
    assert_eq!(r.bytes_read, on_disk);
}

#[test]
fn since_until_prune_by_key_and_filter_records() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 4, 5, 0.2);
    let start = Config::default().start;
    // The last hour only: objects of the first two hours are never opened.
    let opts = ScanOptions {
        since: Some(start + Duration::hours(3)),
        ..Default::default()
    };
    let r = scan(dir.path(), &opts);
    assert!(r.objects_skipped > 0, "{r:?}");
    assert_eq!(r.objects_skipped + r.objects_read, m.objects.len() as u64);
    // Objects in the margin hour are read, their records dropped.
    assert!(r.records_outside_window > 0);
    let all = m.flow_records + m.waf_records;
    let kept = r.flow_records + r.waf_records;
    assert!(kept > 0 && kept < all / 2, "kept {kept} of {all}");
    // A window that covers nothing reads nothing.
    let opts = ScanOptions {
        until: Some(start - Duration::hours(2)),
        ..Default::default()
    };
    let r = scan(dir.path(), &opts);
    assert_eq!(r.objects_read, 0);
    assert_eq!(r.objects_skipped, m.objects.len() as u64);
}

#[test]
fn committed_samples_decode_exactly() {
    let dir = super::manifest_dir().join("../../sample-logs/data");
    let m = Manifest::read(&dir).expect("committed samples and their manifest");
    let r = scan(&dir, &ScanOptions::default());
    assert_eq!(r.objects_read, m.objects.len() as u64);
    assert_eq!(
        (r.flow_records, r.waf_records),
        (m.flow_records, m.waf_records)
    );
    assert_eq!(
        (r.malformed_records, r.objects_failed),
        (0, 0),
        "{:?}",
        r.errors
    );
}

/// A sink that records what reaches it, in order, and fails at batch `fail_at` if set.
#[derive(Default)]
struct Recorder {
    /// Rows per object: the batches' rows since the object before's `object_done`.
    objects: Vec<(String, u64, u64)>,
    rows_since_done: u64,
    batches: u64,
    fail_at: Option<u64>,
}

impl flowlens_engine::BatchSink for Recorder {
    fn batch(
        &mut self,
        _kind: flowlens_model::LogKind,
        batch: &arrow::array::RecordBatch,
    ) -> Result<(), flowlens_engine::error::BoxError> {
        self.batches += 1;
        if self.fail_at == Some(self.batches) {
            return Err("the disk is full".into());
        }
        self.rows_since_done += batch.num_rows() as u64;
        Ok(())
    }

    fn object_done(
        &mut self,
        done: &flowlens_engine::pipeline::ObjectDone,
    ) -> Result<(), flowlens_engine::error::BoxError> {
        let rows = std::mem::take(&mut self.rows_since_done);
        self.objects
            .push((done.meta.uri.clone(), done.records, rows));
        Ok(())
    }
}

fn scan_into(
    dir: &std::path::Path,
    opts: &ScanOptions,
    sink: &mut Recorder,
) -> flowlens_engine::Result<flowlens_engine::ScanReport> {
    // One worker thread, as on a one-vCPU machine: threads then take turns on it.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        Arc::new(Scanner::new())
            .scan(
                &[Location::Local(dir.to_path_buf())],
                opts,
                sink,
                &Progress::default(),
            )
            .await
    })
}

/// Decoding on the calling task, batch by batch into the sink, delivers what decoding
/// on worker threads does: the same records, errors and failures, each object's
/// batches before its `object_done`.
#[test]
fn both_stages_deliver_the_same() {
    use flowlens_engine::pipeline::Stages;
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 2, 11, 0.3);
    // A truncated object and a malformed record among the good ones.
    let gz: Vec<_> = m
        .objects
        .iter()
        .filter(|o| o.key.ends_with(".gz") && o.records > 100)
        .collect();
    let cut = dir.path().join(&gz[0].key);
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let bad = dir.path().join("extra.log");
    std::fs::write(
        &bad,
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 10 1748858400 1748858460 ACCEPT OK\n\
         2 123456789012 eni-1 10.0.0.1\n\
         2 123456789012 eni-1 10.0.0.2 10.0.0.1 2 1 6 1 10 1748858400 1748858460 ACCEPT OK\n",
    )
    .unwrap();
    let mut runs = Vec::new();
    for stages in [Stages::Threads, Stages::Inline] {
        for concurrency in [1, 4] {
            let opts = ScanOptions {
                stages,
                concurrency,
                ..Default::default()
            };
            let mut sink = Recorder::default();
            let r = scan_into(dir.path(), &opts, &mut sink).unwrap();
            assert_eq!(r.objects_read, m.objects.len() as u64 + 1);
            assert_eq!(r.objects_failed, 1, "{stages:?} {concurrency}");
            assert_eq!(r.malformed_records, 1, "{stages:?} {concurrency}");
            assert!(r.decode_cpu_secs > 0.0);
            if concurrency == 1 {
                // One object at a time: its rows arrive before its end, all of them.
                for (uri, records, rows) in &sink.objects {
                    assert_eq!(records, rows, "{stages:?}: {uri}");
                }
            }
            let mut objects = sink.objects.clone();
            objects.sort();
            let errors: std::collections::BTreeSet<_> = r
                .errors
                .iter()
                .map(|e| (e.object.clone(), e.line, e.reason.clone()))
                .collect();
            runs.push((
                (stages, concurrency),
                (r.flow_records, r.waf_records, r.bytes_read, errors),
                objects,
            ));
        }
    }
    let (first, rest) = runs.split_first().unwrap();
    for run in rest {
        assert_eq!(run.1, first.1, "{:?} against {:?}", run.0, first.0);
        if run.0.1 == 1 && first.0.1 == 1 {
            assert_eq!(run.2, first.2, "{:?}", run.0);
        }
    }
    let records: u64 = first.2.iter().map(|o| o.1).sum();
    assert_eq!(first.1.0 + first.1.1, records);
}

/// A sink that fails gets nothing more, and the run fails with its error, in both
/// stages.
#[test]
fn a_failing_sink_fails_the_run_in_both_stages() {
    use flowlens_engine::pipeline::Stages;
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 1, 12, 0.3);
    for stages in [Stages::Threads, Stages::Inline] {
        let mut sink = Recorder {
            fail_at: Some(3),
            ..Default::default()
        };
        let opts = ScanOptions {
            stages,
            concurrency: 2,
            ..Default::default()
        };
        let e = scan_into(dir.path(), &opts, &mut sink).unwrap_err();
        assert!(
            e.to_string().contains("the disk is full"),
            "{stages:?}: {e}"
        );
        // Nothing reached the sink after its failure, not even the ends of objects.
        assert_eq!(sink.batches, 3, "{stages:?}");
        assert!(sink.objects.len() < m.objects.len(), "{stages:?}");
    }
}
