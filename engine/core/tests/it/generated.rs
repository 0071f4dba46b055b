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
