//! Reordering batches, or splitting the input into shards whose states are merged,
//! gives the same findings, ids and evidence included.

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
fn saved_state_carries_baselines_into_the_next_run() {
    // Run 1 closes the first hour; run 2 restores its state and sees the second hour:
    // the findings equal one run over both hours.
    let all = input();
    let cut = 1_748_858_400 + 3600; // the generator's default start + 1 h
    let whole = detect(Config::default(), all);

    let mut run1 = Registry::new(Config::default());
    let mut later = Vec::new();
    for (kind, b) in all {
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
    // What Security Hub holds after both runs: a finding sent again under its id (a
    // leak or sweep that went on into the second hour) replaces the first version.
    let last_by_id = |v: &[flowlens_model::finding::Finding]| {
        let mut by_id = std::collections::BTreeMap::new();
        for f in v {
            by_id.insert(f.id.clone(), serde_json::to_string(f).unwrap());
        }
        by_id
    };
    let (split, one) = (last_by_id(&found), last_by_id(&whole));
    assert_eq!(
        split.keys().collect::<Vec<_>>(),
        one.keys().collect::<Vec<_>>()
    );
    assert_eq!(split, one);
    assert_eq!(one.len(), whole.len(), "one run sends each id once");
    // (The cross-AZ leak goes on across the cut: the second run updates its finding.)
    assert!(found.len() > whole.len());
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
