//! Reordering batches, or splitting the input into shards whose states are merged,
//! gives the same findings, ids and evidence included.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use flowlens_detectors::{Config, Registry};
use proptest::prelude::*;

use super::*;

fn input() -> &'static [(LogKind, RecordBatch)] {
    static INPUT: OnceLock<Vec<(LogKind, RecordBatch)>> = OnceLock::new();
    INPUT.get_or_init(|| scenario(2, 21, 0.5))
}

fn reference() -> &'static str {
    static REF: OnceLock<String> = OnceLock::new();
    REF.get_or_init(|| serde_json::to_string(&detect(Config::default(), input())).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn shards_and_order_do_not_change_findings(
        seed in any::<u64>(),
        shards in 1usize..4,
        cut in 1usize..4000,
    ) {
        // Split every batch at `cut`, shuffle the pieces, deal them to shards.
        let mut pieces = Vec::new();
        for (kind, b) in input() {
            let at = cut.min(b.num_rows());
            pieces.push((*kind, b.slice(0, at)));
            if at < b.num_rows() {
                pieces.push((*kind, b.slice(at, b.num_rows() - at)));
            }
        }
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for i in (1..pieces.len()).rev() {
            pieces.swap(i, next() % (i + 1));
        }
        let mut regs: Vec<Registry> = (0..shards).map(|_| Registry::new(Config::default())).collect();
        for (kind, b) in &pieces {
            let k = next() % shards;
            regs[k].observe(*kind, b).unwrap();
        }
        let mut first = regs.remove(0);
        for mut r in regs {
            let s = r.state().unwrap();
            // Through JSON, as a saved state would travel.
            let s: serde_json::Value = serde_json::from_str(&s.to_string()).unwrap();
            first.merge(s).unwrap();
        }
        let got = serde_json::to_string(&first.flush(i64::MAX).unwrap()).unwrap();
        prop_assert_eq!(got.as_str(), reference());
    }
}

#[test]
fn names_starting_over_change_nothing() {
    // A bound far below the input's distinct names: the codes start over several
    // times, with windows open and after some have closed.
    let mut r = Registry::new(Config::default()).with_name_bound(200);
    let mut found = Vec::new();
    let mut plain = Registry::new(Config::default());
    let mut expected = Vec::new();
    for (i, (kind, b)) in input().iter().enumerate() {
        r.observe(*kind, b).unwrap();
        plain.observe(*kind, b).unwrap();
        if i % 7 == 6 {
            let at = first_time(*kind, b);
            found.extend(r.flush(at).unwrap());
            expected.extend(plain.flush(at).unwrap());
        }
    }
    assert_eq!(r.state().unwrap(), plain.state().unwrap());
    found.extend(r.flush(i64::MAX).unwrap());
    expected.extend(plain.flush(i64::MAX).unwrap());
    assert!(!expected.is_empty());
    assert_eq!(
        serde_json::to_string(&found).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
}

/// Run 1 closes everything before `cut`; run 2 restores its state and sees the rest.
/// Returns both runs' findings.
fn two_runs(cut: i64) -> Vec<flowlens_model::finding::Finding> {
    let mut run1 = Registry::new(Config::default());
    let mut later = Vec::new();
    for (kind, b) in input() {
        // Objects are per 5-minute window: route each by its first record's time.
        let t = first_time(*kind, b);
        if t < cut {
            run1.observe(*kind, b).unwrap();
        } else {
            later.push((*kind, b.clone()));
        }
    }
    let mut found = run1.flush(cut).unwrap();
    let saved = run1.state().unwrap().to_string();
    let mut run2 = Registry::new(Config::default());
    run2.restore(serde_json::from_str(&saved).unwrap()).unwrap();
    for (kind, b) in &later {
        run2.observe(*kind, b).unwrap();
    }
    found.extend(run2.flush(i64::MAX).unwrap());
    found
}

/// What Security Hub holds after the findings were sent in order: a finding sent
/// again under its id (a leak, exposure or sweep that went on into a later run)
/// replaces the earlier version.
fn last_by_id(v: &[flowlens_model::finding::Finding]) -> BTreeMap<String, String> {
    v.iter()
        .map(|f| (f.id.clone(), serde_json::to_string(f).unwrap()))
        .collect()
}

#[test]
fn saved_state_carries_baselines_into_the_next_run() {
    // State saved at any 5-minute boundary and restored for the rest: the findings
    // equal one run over all of it, ids and contents.
    let start = 1_748_858_400; // the generator's default start
    let whole = detect(Config::default(), input());
    let one = last_by_id(&whole);
    assert_eq!(one.len(), whole.len(), "one run sends each id once");
    let mut sent_twice = std::collections::BTreeSet::new();
    for cut in (start + 300..start + 2 * 3600).step_by(300) {
        let found = two_runs(cut);
        assert_eq!(last_by_id(&found), one, "cut at {cut}");
        let mut ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
        ids.sort_unstable();
        for pair in ids.windows(2).filter(|p| p[0] == p[1]) {
            sent_twice.insert(pair[0].split('/').nth(1).unwrap().to_string());
        }
    }
    // Some cut falls inside the cross-AZ leak and inside the lateral sweep: the second
    // run updates their findings.
    assert!(sent_twice.contains("cross-az-cost"), "{sent_twice:?}");
    assert!(sent_twice.contains("lateral-movement"), "{sent_twice:?}");
}

fn first_time(kind: LogKind, b: &RecordBatch) -> i64 {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int64Type, TimestampMillisecondType};
    match kind {
        LogKind::Flows => {
            let c = b
                .column_by_name("start")
                .unwrap()
                .as_primitive::<Int64Type>();
            (0..c.len())
                .filter(|i| c.is_valid(*i))
                .map(|i| c.value(i))
                .min()
                .unwrap_or(0)
        }
        LogKind::Waf => {
            let c = b
                .column_by_name("timestamp")
                .unwrap()
                .as_primitive::<TimestampMillisecondType>();
            c.values().iter().min().copied().unwrap_or(0) / 1000
        }
    }
}
