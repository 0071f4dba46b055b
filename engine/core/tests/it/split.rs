//! Property: splitting an object's bytes at any boundaries gives the same batches (and
//! the same errors) as pushing it whole.

use proptest::prelude::*;

use super::*;

fn push_split(
    bytes: &[u8],
    cuts: &[usize],
    batch_rows: usize,
) -> (Vec<(LogKind, RecordBatch)>, Vec<RecordError>) {
    let mut d = ObjectDecoder::new(
        ObjectContext::new("split"),
        DecodeOptions {
            flow_format: None,
            batch_rows,
            waf_batch_rows: batch_rows,
        },
    );
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        d.push(&bytes[last..p]);
        while let Some(b) = d.take_batch() {
            out.push(b);
        }
        last = p;
    }
    let _ = d.finish();
    while let Some(b) = d.take_batch() {
        out.push(b);
    }
    (out, d.take_errors())
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let m = super::generated::generate(dir.path(), 1, 99, 0.05);
    let pick = |f: flowlens_samples::ObjectFormat| {
        let o = m.objects.iter().find(|o| o.format == f).unwrap();
        std::fs::read(dir.path().join(&o.key)).unwrap()
    };
    let v5_gz = pick(flowlens_samples::ObjectFormat::V5Text);
    let waf_gz = pick(flowlens_samples::ObjectFormat::WafJson);
    let mut v5_plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&v5_gz[..]),
        &mut v5_plain,
    )
    .unwrap();
    // Damage inside the plain text, so resynchronisation is split too.
    v5_plain.extend_from_slice(b"5 bad line\n\xff\xfe\n");
    v5_plain.extend_from_slice(&v5_plain.clone()[..2000]);
    let mut waf_plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&waf_gz[..]),
        &mut waf_plain,
    )
    .unwrap();
    let mut waf_cat = waf_plain.clone();
    waf_cat.retain(|b| *b != b'\n'); // Firehose-style concatenation
    waf_plain.extend_from_slice(b"{\"timestamp\":1,\"httpRequest\"\n{broken\n");
    let mut two_members = v5_gz.clone();
    two_members.extend_from_slice(&gzip(b"5 10.0.0.1\n"));
    vec![v5_gz, v5_plain, waf_gz, waf_plain, waf_cat, two_members]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_the_same_batches(
        which in 0usize..6,
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        batch_rows in prop_oneof![Just(7usize), Just(64), Just(8192)],
    ) {
        thread_local!(static CORPUS: Vec<Vec<u8>> = corpus());
        CORPUS.with(|c| {
            let bytes = &c[which];
            let whole = push_split(bytes, &[], batch_rows);
            let split = push_split(bytes, &cuts, batch_rows);
            prop_assert!(!whole.0.is_empty());
            prop_assert_eq!(&whole.1, &split.1);
            prop_assert_eq!(whole.0.len(), split.0.len());
            for ((ka, a), (kb, b)) in whole.0.iter().zip(&split.0) {
                prop_assert_eq!(ka, kb);
                prop_assert_eq!(a, b);
            }
            Ok(())
        })?;
    }
}

#[test]
fn byte_at_a_time_equals_whole() {
    for bytes in corpus() {
        let bytes = &bytes[..bytes.len().min(30_000)];
        let cuts: Vec<usize> = (0..bytes.len()).collect();
        let whole = push_split(bytes, &[], 64);
        let split = push_split(bytes, &cuts, 64);
        assert_eq!(whole.1, split.1);
        assert_eq!(whole.0, split.0);
    }
}
