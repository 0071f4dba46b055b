//! Small, mergeable statistics: robust baselines and a distinct-count sketch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// State that two shards of the input can combine: `a.merge(b)` equals the state of
/// observing both shards' input, in any order.
pub trait Merge {
    fn merge(&mut self, other: Self);
}

/// Counts and byte sums saturate: a hostile log's byte fields (any 64-bit number)
/// must not overflow them (a panic in debug builds).
impl Merge for u64 {
    fn merge(&mut self, other: Self) {
        *self = self.saturating_add(other);
    }
}

/// Merges map `b` into `a`, key by key (a free function: `BTreeMap::merge` is
/// reserved by the standard library).
pub fn merge_map<K: Ord, V: Merge>(a: &mut BTreeMap<K, V>, b: BTreeMap<K, V>) {
    for (k, v) in b {
        match a.entry(k) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(v),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
}

/// Maps merge key by key, so nested maps of mergeable values merge all the way down.
impl<K: Ord, V: Merge> Merge for BTreeMap<K, V> {
    fn merge(&mut self, other: Self) {
        merge_map(self, other);
    }
}

/// Keeps the smallest of two optional values (a merge that any order agrees on).
pub fn min_opt(a: &mut Option<String>, b: Option<String>) {
    if let Some(b) = b
        && a.as_ref().is_none_or(|a| b < *a)
    {
        *a = Some(b);
    }
}

/// A detector's open windows, keyed by window start: rows for a window that was
/// already closed are counted as late and dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Windows<T> {
    /// Windows starting before this are closed.
    pub closed_before: i64,
    pub late_rows: u64,
    pub open: BTreeMap<i64, T>,
}

impl<T> Default for Windows<T> {
    fn default() -> Self {
        Windows {
            closed_before: i64::MIN,
            late_rows: 0,
            open: BTreeMap::new(),
        }
    }
}

impl<T> Windows<T> {
    /// The same windows (closed before the same start, the same late rows) holding
    /// `open`: for a detector that keeps its open windows in another form than it
    /// saves them.
    pub fn with_open<U>(&self, open: BTreeMap<i64, U>) -> Windows<U> {
        Windows {
            closed_before: self.closed_before,
            late_rows: self.late_rows,
            open,
        }
    }
}

impl<T: Default> Windows<T> {
    /// The open window starting at `start`; `None` (and `rows` counted as late) if
    /// that window is closed.
    pub fn slot(&mut self, start: i64, rows: u64) -> Option<&mut T> {
        if start < self.closed_before {
            self.late_rows += rows;
            return None;
        }
        Some(self.open.entry(start).or_default())
    }

    /// Closes, in time order, every window that ends at or before `watermark`.
    pub fn close(&mut self, watermark: i64, window_secs: i64) -> Vec<(i64, T)> {
        let mut out = Vec::new();
        while let Some((&start, _)) = self.open.first_key_value() {
            if start.saturating_add(window_secs) > watermark {
                break;
            }
            out.extend(self.open.pop_first());
            self.closed_before = self.closed_before.max(start.saturating_add(window_secs));
        }
        out
    }
}

impl<T: Merge> Merge for Windows<T> {
    fn merge(&mut self, o: Self) {
        self.closed_before = self.closed_before.max(o.closed_before);
        self.late_rows += o.late_rows;
        merge_map(&mut self.open, o.open);
        self.open = std::mem::take(&mut self.open).split_off(&self.closed_before);
    }
}

/// Median of a slice (sorted in place); 0 for an empty one.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A robust baseline: median and median absolute deviation of earlier windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub windows: usize,
    pub median: f64,
    pub mad: f64,
}

impl Baseline {
    /// The baseline of `values`, where windows absent from `values` but within the
    /// entity's observed span count as zero (`span` windows in all).
    pub fn of(values: impl IntoIterator<Item = f64>, span: usize) -> Self {
        let mut v: Vec<f64> = values.into_iter().collect();
        while v.len() < span {
            v.push(0.0);
        }
        let med = median(&mut v);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        let mad = median(&mut dev);
        Baseline {
            windows: v.len(),
            median: med,
            mad,
        }
    }

    /// Robust z-score of `x`; the MAD is floored at 10 % of the median (and at `floor`)
    /// so a perfectly steady history does not make every wobble infinite.
    pub fn z(&self, x: f64, floor: f64) -> f64 {
        let scale = (1.4826 * self.mad).max(self.median * 0.1).max(floor);
        (x - self.median) / scale
    }
}

/// A per-entity history of window values: window start → value, the last `cap` kept.
/// Merging two histories sums values of the same window, so shards combine exactly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub windows: BTreeMap<i64, u64>,
    /// First window this entity was seen in.
    pub first: Option<i64>,
}

impl History {
    pub fn record(&mut self, window: i64, value: u64, cap: usize) {
        self.windows.entry(window).or_default().merge(value);
        self.first = Some(self.first.map_or(window, |f| f.min(window)));
        while self.windows.len() > cap {
            self.windows.pop_first();
        }
    }

    /// The baseline from windows strictly before `window`, counting windows since the
    /// entity was first seen (up to `cap`) with no value as zero.
    pub fn baseline_before(&self, window: i64, window_secs: i64, cap: usize) -> Baseline {
        let values = self.windows.range(..window).map(|(_, v)| *v as f64);
        let span = self
            .first
            .filter(|f| *f < window)
            .map_or(0, |f| ((window - f) / window_secs) as usize)
            .min(cap);
        Baseline::of(values, span)
    }
}

impl Merge for History {
    fn merge(&mut self, other: Self) {
        for (w, v) in other.windows {
            self.windows.entry(w).or_default().merge(v);
        }
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// 64-bit FNV-1a then a finaliser (splitmix64): a stable hash for sketches.
pub fn hash64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Distinct count by K minimum values: exact up to `K` distinct items, an estimate
/// (about 6 % error) beyond. The union of two sketches is the sketch of the union, so
/// shards and orders give the same count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distinct {
    mins: Vec<u64>,
}

impl Distinct {
    pub const K: usize = 256;

    pub fn insert_hash(&mut self, h: u64) {
        match self.mins.binary_search(&h) {
            Ok(_) => {}
            Err(pos) => {
                if pos < Self::K {
                    self.mins.insert(pos, h);
                    self.mins.truncate(Self::K);
                }
            }
        }
    }

    pub fn insert(&mut self, s: &str) {
        self.insert_hash(hash64(s));
    }

    pub fn estimate(&self) -> u64 {
        if self.mins.len() < Self::K {
            return self.mins.len() as u64;
        }
        let kth = self.mins[Self::K - 1] as f64 / u64::MAX as f64;
        ((Self::K - 1) as f64 / kth).round() as u64
    }
}

impl Merge for Distinct {
    fn merge(&mut self, other: Self) {
        for h in other.mins {
            self.insert_hash(h);
        }
    }
}

/// Runs of consecutive windows in which a key (a talker pair, an exposed port) was
/// reported: a leak or an exposure that goes on is one finding, named by its run's first
/// window (its id and start) and updated each window it goes on, where one finding per
/// window would flood Security Hub with a copy an hour. (The lateral detector's sweeps
/// go on likewise, with their own state.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Episodes(BTreeMap<String, Episode>);

/// The last window a key was reported in, its run's first, and the highest severity
/// score its finding was reported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Episode {
    pub last: i64,
    pub first: i64,
    #[serde(default)]
    pub peak: u8,
}

impl Episodes {
    /// The first window of `key`'s run if it goes on into `window` (windows of `w`
    /// seconds: reported in the window before), else `window` itself.
    pub fn first(&self, key: &str, window: i64, w: i64) -> i64 {
        self.going_on(key, window, w).map_or(window, |e| e.first)
    }

    /// [`Episodes::first`], and the number of windows from it to `window` (this one
    /// included): what a finding of `key` in `window` says of its run.
    pub fn run(&self, key: &str, window: i64, w: i64) -> (i64, i64) {
        let first = self.first(key, window, w);
        (first, (window - first) / w + 1)
    }

    /// The highest severity score `key`'s run was reported with, if it goes on into
    /// `window`.
    pub fn peak(&self, key: &str, window: i64, w: i64) -> Option<u8> {
        self.going_on(key, window, w).map(|e| e.peak)
    }

    fn going_on(&self, key: &str, window: i64, w: i64) -> Option<&Episode> {
        self.0
            .get(key)
            .filter(|e| e.last < window && e.last >= window.saturating_sub(w))
    }

    /// `key` was reported in `window`, its run starting at `first`, its finding's
    /// severity score `score` (the run's peak is kept).
    pub fn report(&mut self, key: String, window: i64, first: i64, score: u8) {
        let peak = self
            .0
            .get(&key)
            .filter(|e| e.first == first)
            .map_or(0, |e| e.peak);
        self.0.insert(
            key,
            Episode {
                last: window,
                first,
                peak: peak.max(score),
            },
        );
    }

    /// `window` is closed and judged: the runs not reported in it have ended.
    pub fn close(&mut self, window: i64) {
        self.0.retain(|_, e| e.last >= window);
    }
}

/// Two shards' runs of a key: the one reported later (then the earlier start).
impl Merge for Episodes {
    fn merge(&mut self, o: Self) {
        for (key, e) in o.0 {
            let mine = self.0.entry(key).or_insert(e);
            *mine = (*mine).max(e);
        }
    }
}

/// When a run's finding is sent again ([`Episodes::emit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// With every window (a leak's current cost, an exposure's current sources).
    Every,
    /// While a window is as strong as the run's strongest (a spike or a scraper: its
    /// weaker tail must not lower the finding).
    WhileAsStrong,
}

impl Episodes {
    /// Records `f`, the finding of `key` in the closed `window` (windows of `w`
    /// seconds; `f` named by [`Episodes::first`]), and adds it to a flush's findings
    /// (`out`) as `update` says.
    pub fn emit(
        &mut self,
        out: &mut Vec<flowlens_model::finding::Finding>,
        key: String,
        window: i64,
        w: i64,
        f: flowlens_model::finding::Finding,
        update: Update,
    ) {
        let score = f.severity.score();
        let peak = self.peak(&key, window, w);
        self.report(key, window, f.window_start, score);
        if update == Update::Every || peak.is_none_or(|p| score >= p) {
            upsert(out, f);
        }
    }
}

/// Adds `f` to a flush's findings, or replaces the one with its id (a run that went on
/// from an earlier window of the same flush: the finding as of its latest window).
pub fn upsert(
    out: &mut Vec<flowlens_model::finding::Finding>,
    f: flowlens_model::finding::Finding,
) {
    match out.iter_mut().find(|o| o.id == f.id) {
        Some(o) => *o = f,
        None => out.push(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad() {
        let b = Baseline::of([1.0, 2.0, 3.0, 4.0, 100.0], 5);
        assert_eq!(b.median, 3.0);
        assert_eq!(b.mad, 1.0);
        // Missing windows count as zero.
        let b = Baseline::of([10.0], 3);
        assert_eq!(b.median, 0.0);
        assert!(b.z(10.0, 1.0) > 9.0);
    }

    #[test]
    fn history_merges_by_window() {
        let mut a = History::default();
        a.record(0, 5, 10);
        a.record(600, 7, 10);
        let mut b = History::default();
        b.record(600, 3, 10);
        b.record(1200, 1, 10);
        a.merge(b);
        assert_eq!(a.windows.get(&600), Some(&10));
        assert_eq!(a.first, Some(0));
        let base = a.baseline_before(1800, 600, 10);
        assert_eq!(base.windows, 3);
        assert_eq!(base.median, 5.0);
    }

    #[test]
    fn distinct_is_exact_when_small_and_close_when_large() {
        let mut d = Distinct::default();
        for i in 0..100 {
            d.insert(&format!("/p/{}", i % 50));
        }
        assert_eq!(d.estimate(), 50);
        let mut big = Distinct::default();
        let mut half_a = Distinct::default();
        let mut half_b = Distinct::default();
        for i in 0..20_000 {
            let s = format!("10.0.{}.{}", i / 250, i % 250);
            big.insert(&s);
            if i % 2 == 0 {
                half_a.insert(&s)
            } else {
                half_b.insert(&s)
            }
        }
        let e = big.estimate() as f64;
        assert!((e - 20_000.0).abs() / 20_000.0 < 0.15, "{e}");
        half_a.merge(half_b);
        assert_eq!(half_a, big);
    }

    #[test]
    fn a_run_goes_on_only_from_the_window_before() {
        let w = 3600;
        let mut e = Episodes::default();
        assert_eq!(e.first("a|b", 7200, w), 7200);
        e.report("a|b".into(), 7200, 7200, 40);
        e.close(7200);
        // The next window goes on with it; one further on does not.
        assert_eq!(e.first("a|b", 10_800, w), 7200);
        assert_eq!(e.first("a|b", 14_400, w), 14_400);
        assert_eq!(e.peak("a|b", 10_800, w), Some(40));
        e.report("a|b".into(), 10_800, 7200, 20);
        e.close(10_800);
        assert_eq!(e.first("a|b", 14_400, w), 7200);
        assert_eq!(e.peak("a|b", 14_400, w), Some(40));
        assert_eq!(e.run("a|b", 14_400, w), (7200, 3));
        // A window without it ends the run.
        e.close(14_400);
        assert_eq!(e, Episodes::default());
        assert_eq!(e.first("a|b", 18_000, w), 18_000);
        assert_eq!(e.peak("a|b", 18_000, w), None);
    }

    #[test]
    fn runs_merge_to_the_later_report() {
        let mut a = Episodes::default();
        a.report("k".into(), 3600, 0, 10);
        let mut b = Episodes::default();
        b.report("k".into(), 7200, 0, 10);
        b.report("j".into(), 0, 0, 10);
        let mut ab = a.clone();
        ab.merge(b.clone());
        let mut ba = b;
        ba.merge(a);
        assert_eq!(ab, ba);
        assert_eq!(ab.first("k", 10_800, 3600), 0);
        assert_eq!(ab.first("j", 3600, 3600), 0);
    }
}
