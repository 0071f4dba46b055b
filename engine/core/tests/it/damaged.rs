//! Damaged input: exact malformed counts, nothing good lost, no object stops the run.

use std::io::Read;
use std::sync::Arc;

use flowlens_engine::pipeline::CountingSink;
use flowlens_engine::source::Location;
use flowlens_engine::{Progress, ScanOptions, Scanner};
use flowlens_samples::ObjectFormat;

use super::generated::generate;
use super::*;

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn insert_lines(text: &str, at: &[usize], bad: &[&str]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for (pos, line) in at.iter().zip(bad).rev() {
        lines.insert((*pos).min(lines.len()), line.to_string());
    }
    lines.join("\n") + "\n"
}

#[test]
fn exact_malformed_counts_and_nothing_good_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let m = generate(root, 1, 11, 0.5);
    let of = |f: ObjectFormat| m.objects.iter().filter(move |o| o.format == f);
    let path = |key: &str| root.join(key);
    let mut expect_malformed = 0u64;
    let mut lost_flow_records = 0u64;
    let mut failed = 0u64;

    // 1. Bad lines in a default-format text object.
    let v2 = of(ObjectFormat::V2Text).next().unwrap();
    let text = gunzip(&std::fs::read(path(&v2.key)).unwrap());
    let bad = [
        "2 123456789012 eni-0abc 10.0.0.1", // too few fields
        "2 123456789012 eni-0abc 10.0.0.1 10.0.0.2 https 443 6 1 40 1748858400 1748858460 ACCEPT OK", // not a number
        "2 123456789012 eni-0abc 10.0.0.1 10.0.0.2 99999 443 6 1 40 1748858400 1748858460 ACCEPT OK", // out of range
        "\u{1b}]0;pwned\u{7} \u{1b}[2J 1 2 3 4 5 6 7 8 9 10 11", // hostile, wrong count
    ];
    // Inserted at 0-based indices 3, 8, 20 and the end; each shifts those after it.
    let last_line = text.lines().count() as u64 + 4;
    std::fs::write(
        path(&v2.key),
        gzip(insert_lines(&text, &[3, 8, 20, 9999], &bad).as_bytes()),
    )
    .unwrap();
    expect_malformed += 4;

    // 2. Broken and foreign JSON in a WAF object.
    let w = of(ObjectFormat::WafJson).next().unwrap();
    let text = gunzip(&std::fs::read(path(&w.key)).unwrap());
    let first = text.lines().next().unwrap();
    let cut = &first[..first.len() / 3];
    let bad = [
        cut,
        "{\"hello\":\"world\"}",
        "\u{0}\u{1}binary junk",
        "[1,2,3]",
    ];
    std::fs::write(
        path(&w.key),
        gzip(insert_lines(&text, &[1, 2, 4, 6], &bad).as_bytes()),
    )
    .unwrap();
    expect_malformed += 4;

    // 3. A truncated gzip object keeps the records before the cut.
    let v5 = of(ObjectFormat::V5Text).nth(1).unwrap();
    let full = std::fs::read(path(&v5.key)).unwrap();
    let truncated = &full[..full.len() * 2 / 3];
    let kept = decode(truncated, None);
    assert!(kept.failure.is_some());
    let kept_rows = kept.flows.as_ref().map_or(0, |b| b.num_rows()) as u64;
    assert!(
        kept_rows > 0 && kept_rows < v5.records,
        "{kept_rows} of {}",
        v5.records
    );
    // The kept rows are exactly the first rows of the object.
    let whole = decode(&full, None);
    let prefix = whole.flows().slice(0, kept_rows as usize);
    assert_eq!(kept.flows().columns()[..40], prefix.columns()[..40]);
    std::fs::write(path(&v5.key), truncated).unwrap();
    lost_flow_records += v5.records - kept_rows;
    failed += 1;

    // 3b. A gzip object whose checksum does not match: its records are decoded (as a
    // stream that breaks part-way keeps those before the break) and the object is
    // reported as corrupt.
    let crc = of(ObjectFormat::V2Text).nth(1).unwrap();
    let mut bent = std::fs::read(path(&crc.key)).unwrap();
    let at = bent.len() - 8;
    bent[at] ^= 0x40;
    let kept = decode(&bent, None);
    assert_eq!(kept.flows().num_rows() as u64, crc.records);
    let reason = kept.failure.expect("a checksum failure");
    assert!(reason.contains("CRC-32"), "{reason}");
    std::fs::write(path(&crc.key), &bent).unwrap();
    failed += 1;

    // 4. A cut parquet object cannot be read at all (its footer is gone).
    let pq = of(ObjectFormat::Parquet).next().unwrap();
    let full = std::fs::read(path(&pq.key)).unwrap();
    std::fs::write(path(&pq.key), &full[..full.len() / 2]).unwrap();
    lost_flow_records += pq.records;
    failed += 1;

    // 5. Empty object, binary junk, an over-long line: the run goes on.
    let extra = root.join("AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/02");
    std::fs::write(extra.join("empty.log.gz"), b"").unwrap();
    let junk: Vec<u8> = (0..5000u32)
        .map(|i| (i * 7 + 3) as u8)
        .map(|b| if b == b'\n' { 0 } else { b })
        .collect();
    std::fs::write(extra.join("junk.bin"), &junk).unwrap();
    expect_malformed += 1;
    let long = format!(
        "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 1748858400 1748858460 ACCEPT OK\n{}\n",
        "z".repeat(2 << 20)
    );
    std::fs::write(extra.join("long.log"), long).unwrap();
    expect_malformed += 1;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(async {
        Arc::new(Scanner::new())
            .scan(
                &[Location::Local(root.to_path_buf())],
                &ScanOptions::default(),
                &mut CountingSink::default(),
                &Progress::default(),
            )
            .await
            .unwrap()
    });
    assert_eq!(r.malformed_records, expect_malformed, "{:#?}", r.errors);
    assert_eq!(r.objects_failed, failed, "{:#?}", r.errors);
    assert_eq!(r.objects_read, m.objects.len() as u64 + 3);
    assert_eq!(r.flow_records, m.flow_records - lost_flow_records + 1);
    assert_eq!(r.waf_records, m.waf_records);
    // Every problem names its object; record problems name their line.
    let v2_errors: Vec<_> = r
        .errors
        .iter()
        .filter(|e| e.object.ends_with(&v2.key))
        .collect();
    assert_eq!(
        v2_errors
            .iter()
            .map(|e| e.line.unwrap())
            .collect::<Vec<_>>(),
        [4, 10, 23, last_line]
    );
    assert!(
        v2_errors[3].reason.contains("\\u{1b}"),
        "{}",
        v2_errors[3].reason
    );
    assert!(!v2_errors.iter().any(|e| e.reason.contains('\u{1b}')));
    // The first error reported for the object at `key`.
    let error_of = |key: &str| r.errors.iter().find(|e| e.object.ends_with(key)).unwrap();
    let trunc = error_of(&v5.key);
    assert!(
        trunc.line.is_none() && trunc.reason.contains("gzip"),
        "{trunc:?}"
    );
    assert!(
        r.errors
            .iter()
            .any(|e| e.object.ends_with(&pq.key) && e.reason.contains("parquet"))
    );
    let corrupt = error_of(&crc.key);
    assert!(
        corrupt.line.is_none()
            && corrupt.reason.contains("gzip member 1")
            && corrupt.reason.contains("CRC-32"),
        "{corrupt:?}"
    );
}
