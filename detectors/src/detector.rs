//! The [`Detector`] trait and the [`Registry`] that feeds every enabled detector.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use flowlens_model::LogKind;
use flowlens_model::finding::{DetectorId, Finding};
use polars::prelude::DataFrame;
use serde_json::Value;

use crate::config::Config;
use crate::inventory::{self, Inventory};
use crate::names::Names;
use crate::{Error, Result, prepare};

/// One chunk of rows as the detectors see it: flows or WAF requests.
pub enum Chunk<'a> {
    Flows {
        /// The rows, coded and with their shared derivations ([`prepare::flow_rows`]).
        rows: Box<prepare::FlowRows<'a>>,
        /// What the rows teach about the VPC ([`Inventory`]) that the registry did not
        /// know yet (merged into a detector's inventory, the same as all they teach).
        learned: Inventory,
    },
    /// The prepared WAF frame ([`prepare::waf_frame`]).
    Waf(DataFrame),
}

impl<'a> Chunk<'a> {
    /// The flow rows and what they teach, for a flow detector.
    ///
    /// # Errors
    /// The chunk holds WAF requests (the registry never hands one to a flow detector).
    pub fn flows(&self) -> Result<(&prepare::FlowRows<'a>, &Inventory)> {
        match self {
            Chunk::Flows { rows, learned } => Ok((rows, learned)),
            Chunk::Waf(_) => Err(Error::Schema("a WAF chunk reached a flow detector".into())),
        }
    }

    /// The WAF frame, for a WAF detector.
    ///
    /// # Errors
    /// The chunk holds flows.
    pub fn waf(&self) -> Result<&DataFrame> {
        match self {
            Chunk::Waf(frame) => Ok(frame),
            Chunk::Flows { .. } => {
                Err(Error::Schema("a flows chunk reached a WAF detector".into()))
            }
        }
    }
}

/// A streaming, columnar detector.
///
/// The trait lives here rather than in `flowlens-model` (where `../shared/STYLE.md`
/// suggests it): it takes prepared chunks (WAF ones as polars frames), and the model
/// crate — the leaf every crate depends on, the Lambda and the TUI included — stays
/// free of polars.
///
/// Detectors never do IO and never read the clock: time arrives as a watermark, input
/// as prepared chunks ([`Chunk`]), and state leaves as JSON.
///
/// # Lifecycle
/// 1. [`Detector::observe`] folds each chunk into per-window partial aggregates (sums,
///    distinct sketches, peer maps), in any order: the result does not depend on it.
///    Flow rows come coded ([`crate::names::Names`]) and with what they
///    teach about the VPC ([`Inventory`]: each interface's instance, subnet, AZ; each
///    private address's interface), learned once per chunk by the registry for every
///    flow detector (only what changes the registry's inventory of the run).
/// 2. [`Detector::flush`] closes every window that ends at or before `watermark`, in
///    time order: judges each entity against its own history, emits findings, then
///    adds the window to the history. A record that arrives for a closed window is
///    counted as late and dropped.
/// 3. [`Detector::state`] / [`Detector::restore`] carry open windows and baselines
///    between scheduled runs; [`Detector::merge`] combines the states of two shards of
///    the input so that flushing the merge equals flushing one run over all of it.
///
/// ```text
/// frames ──observe──► open windows ──flush(watermark)──► findings
///                          │                  │
///                          └─── state ◄───────┴── history (baselines)
/// ```
///
/// # Errors
/// `observe` fails only on a frame without the expected columns; `restore` and `merge`
/// on state written by an incompatible version.
pub trait Detector: Send {
    /// Which detector this is.
    fn id(&self) -> DetectorId;
    /// The log kind it reads.
    fn input(&self) -> LogKind;
    /// Folds one prepared chunk into the open windows.
    fn observe(&mut self, chunk: &Chunk<'_>) -> Result<()>;
    /// Closes the windows ending at or before `watermark` (unix seconds). `names` are
    /// the run's ([`Chunk::Flows`]' rows are coded with them).
    fn flush(&mut self, watermark: i64, names: &Names) -> Result<Vec<Finding>>;
    /// The detector's state as JSON.
    fn state(&self, names: &Names) -> Result<Value>;
    /// Replaces the state. A detector that keys open windows by code interns their
    /// texts into `names`.
    fn restore(&mut self, state: Value, names: &mut Names) -> Result<()>;
    /// Merges another shard's state into this one.
    fn merge(&mut self, other: Value, names: &mut Names) -> Result<()>;
    /// The run's names start over (the registry bounds them, [`prepare::FlowNames::MAX`]):
    /// whatever the detector keeps by a code of `old` it keys by one of `new` instead.
    /// Nothing to do for a detector that keeps no code past its chunk. It cannot
    /// fail: the registry has started over by then.
    fn rename(&mut self, old: &Names, new: &mut Names) {
        let _ = (old, new);
    }
}

/// A detector's saved state as JSON.
pub(crate) fn state_to_json<T: serde::Serialize>(state: &T) -> Result<Value> {
    serde_json::to_value(state).map_err(|e| Error::State(e.to_string()))
}

/// A detector's saved state from JSON.
pub(crate) fn state_from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::State(e.to_string()))
}

/// Implements `state`/`restore`/`merge` for a detector whose state is a serde type
/// implementing [`crate::stats::Merge`] in a field named `state`.
macro_rules! state_methods {
    () => {
        fn state(&self, _: &$crate::names::Names) -> $crate::Result<serde_json::Value> {
            $crate::detector::state_to_json(&self.state)
        }

        fn restore(
            &mut self,
            state: serde_json::Value,
            _: &mut $crate::names::Names,
        ) -> $crate::Result<()> {
            self.state = $crate::detector::state_from_json(state)?;
            Ok(())
        }

        fn merge(
            &mut self,
            other: serde_json::Value,
            _: &mut $crate::names::Names,
        ) -> $crate::Result<()> {
            let other = $crate::detector::state_from_json(other)?;
            $crate::stats::Merge::merge(&mut self.state, other);
            Ok(())
        }
    };
}
pub(crate) use state_methods;

/// Implements `state`/`restore`/`merge` for a detector that runs on another form of
/// its state than it saves, and keeps no name code past its chunk: a field `state` of
/// a type `State` with `save(&self) -> Saved` and `load(Saved) -> State`, where `Saved`
/// is a serde type implementing [`crate::stats::Merge`] (merging goes through the
/// saved form).
macro_rules! saved_state_methods {
    () => {
        fn state(&self, _: &$crate::names::Names) -> $crate::Result<serde_json::Value> {
            $crate::detector::state_to_json(&self.state.save())
        }

        fn restore(
            &mut self,
            state: serde_json::Value,
            _: &mut $crate::names::Names,
        ) -> $crate::Result<()> {
            self.state = State::load($crate::detector::state_from_json(state)?);
            Ok(())
        }

        fn merge(
            &mut self,
            other: serde_json::Value,
            _: &mut $crate::names::Names,
        ) -> $crate::Result<()> {
            let mut saved = self.state.save();
            let other: Saved = $crate::detector::state_from_json(other)?;
            $crate::stats::Merge::merge(&mut saved, other);
            self.state = State::load(saved);
            Ok(())
        }
    };
}
pub(crate) use saved_state_methods;

/// Flow rows buffered before the detectors run: one decoder batch
/// (`flowlens_engine::decode::DEFAULT_BATCH_ROWS`). Larger chunks start the run's
/// tables (the name cache, the per-code scopes and atoms, the detectors' open windows)
/// out of the caches less often, and perf samples of the detecting thread alone favour
/// them (session 22: the detecting thread's samples were 61 % of the decoding
/// threads' with 16 K rows, 57 % with 64 K); but
/// a chunk's batches are held until it is prepared, so the decoder writes each new
/// batch into memory freed long before (with 64 K-row chunks, v5 logs: its text loop
/// 25 % slower than with the detectors off, more page faults and copies), and the
/// whole scan's CPU time favours one-batch chunks. Through the CLI,
/// pinned, best of 7 (`detectors/bench/README.md`, session 24): the detectors cost 31 % of
/// decode time on v5 gz with 16 K rows against 37 % with 32 K and 52 % with 64 K,
/// 50 % on default-format gz against 52 % and 57 %; peak resident memory
/// is lower too (86 against 99 MB on default-format logs, session 22).
pub const CHUNK_ROWS: usize = 16 * 1024;

/// WAF rows buffered before the scraping detector runs: one decoder batch
/// (`flowlens_engine::decode::WAF_BATCH_ROWS`). Its polars query has a fixed cost per
/// chunk, but as with flows ([`CHUNK_ROWS`]) holding batches costs more: on 1,989,109
/// generated WAF records, pinned, best of 3 (`detectors/bench/README.md`, session 24), the
/// scan took 16.96 s with 32 K-row chunks against 17.27 s with 64 K and 18.01 s with
/// 128 K (decoding alone 12.04 s), at a peak resident memory of 703, 772 and 882 MB.
pub const WAF_CHUNK_ROWS: usize = 32 * 1024;

/// Every enabled detector, fed from decoded batches.
pub struct Registry {
    config: Config,
    detectors: Vec<Box<dyn Detector>>,
    /// Flow batches (the columns the detectors read) waiting for a whole chunk: they
    /// are prepared together, so each distinct address is judged once per chunk.
    pending_flows: Vec<RecordBatch>,
    pending_waf: Option<DataFrame>,
    /// The VPC inventory learned from the flows observed since the last `restore`:
    /// each chunk hands the detectors only what it changed.
    known: Inventory,
    learning: inventory::Tables,
    /// The run's addresses and interfaces as codes, judged once each (at most
    /// `name_bound` before the codes start over).
    lex: prepare::FlowNames,
    /// [`prepare::FlowNames::MAX`] ([`Registry::with_name_bound`]).
    name_bound: usize,
    /// The calling thread's CPU time, if the caller measures it
    /// ([`Registry::with_cpu_clock`]).
    clock: Option<fn() -> Duration>,
    /// CPU time in the registry's calls, and in each detector's.
    cpu: CpuTimes,
}

/// CPU time of a [`Registry`]'s work ([`Registry::cpu_secs`]), read as laps: the
/// clock is read when a call starts and after each part of it, each reading ending
/// the part before. Timing each part apart took two readings per part, and a
/// reading of a thread's CPU clock is a system call (some microseconds here).
#[derive(Debug, Default)]
struct CpuTimes {
    /// The shared work: checking, buffering and preparing batches (coding names,
    /// learning the inventory).
    prepare: Duration,
    /// In each detector's `observe` and `flush`.
    detectors: BTreeMap<&'static str, Duration>,
    /// The reading that started the current part (none outside a call, or without a
    /// clock).
    last: Option<Duration>,
}

/// Ends the current part ([`CpuTimes`]): the CPU time since `last` (by `clock`) added
/// to `total`, and the reading kept as the next part's start. Nothing without a clock
/// or outside a call.
fn lap(clock: Option<fn() -> Duration>, last: &mut Option<Duration>, total: &mut Duration) {
    if let (Some(clock), Some(start)) = (clock, *last) {
        let now = clock();
        *total += now.saturating_sub(start);
        *last = Some(now);
    }
}

impl Registry {
    /// The enabled detectors of `config`.
    pub fn new(config: Config) -> Self {
        let mut detectors: Vec<Box<dyn Detector>> = Vec::new();
        if config.exfiltration_spike.enabled {
            detectors.push(Box::new(crate::exfiltration::Exfiltration::new(&config)));
        }
        if config.lateral_movement.enabled {
            detectors.push(Box::new(crate::lateral::Lateral::new(&config)));
        }
        if config.cross_az_cost.enabled {
            detectors.push(Box::new(crate::cross_az::CrossAz::new(&config)));
        }
        if config.scraping_bot.enabled {
            detectors.push(Box::new(crate::scraping::Scraping::new(&config)));
        }
        if config.public_exposure.enabled {
            detectors.push(Box::new(crate::exposure::Exposure::new(&config)));
        }
        Registry {
            lex: prepare::FlowNames::new(config.allow.clone()),
            name_bound: prepare::FlowNames::MAX,
            config,
            detectors,
            pending_flows: Vec::new(),
            pending_waf: None,
            known: Inventory::default(),
            learning: inventory::Tables::default(),
            clock: None,
            cpu: CpuTimes::default(),
        }
    }

    /// The enabled detectors' ids.
    pub fn enabled(&self) -> Vec<DetectorId> {
        self.detectors.iter().map(|d| d.id()).collect()
    }

    fn wants(&self, kind: LogKind) -> bool {
        self.detectors.iter().any(|d| d.input() == kind)
    }

    /// Starts the run's name codes over past `max` distinct names rather than
    /// [`prepare::FlowNames::MAX`] (for tests of starting over: the findings and state
    /// are the same).
    pub fn with_name_bound(mut self, max: usize) -> Self {
        self.name_bound = max;
        self
    }

    /// Measures the CPU time of its work with `clock`, the calling thread's CPU time
    /// so far ([`Registry::cpu_secs`]). A registry is used from one thread at a time;
    /// the clock is the caller's (this crate does no IO).
    pub fn with_cpu_clock(mut self, clock: fn() -> Duration) -> Self {
        self.clock = Some(clock);
        self
    }

    /// CPU seconds spent so far, by part: `prepare` (checking and preparing batches,
    /// coding names, learning the inventory: the work shared by the detectors) and
    /// each enabled detector's id (its `observe` and `flush`). Empty without a clock
    /// ([`Registry::with_cpu_clock`]).
    pub fn cpu_secs(&self) -> BTreeMap<String, f64> {
        if self.clock.is_none() {
            return BTreeMap::new();
        }
        let mut out = BTreeMap::from([("prepare".to_string(), self.cpu.prepare.as_secs_f64())]);
        for d in &self.detectors {
            let id = d.id().as_str();
            let t = self.cpu.detectors.get(id).copied().unwrap_or_default();
            out.insert(id.to_string(), t.as_secs_f64());
        }
        out
    }

    /// Takes one decoded batch of `kind` (canonical schema).
    ///
    /// # Errors
    /// The batch does not have the canonical schema of `kind`.
    pub fn observe(&mut self, kind: LogKind, batch: &RecordBatch) -> Result<()> {
        self.timed_call(|r| r.observe_timed(kind, batch))
    }

    /// Runs `f` on the registry, timing its parts ([`CpuTimes`]): what no detector
    /// took counts as `prepare`.
    fn timed_call<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.cpu.last = self.clock.map(|clock| clock());
        let out = f(self);
        lap(self.clock, &mut self.cpu.last, &mut self.cpu.prepare);
        self.cpu.last = None;
        out
    }

    fn observe_timed(&mut self, kind: LogKind, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 || !self.wants(kind) {
            return Ok(());
        }
        if kind == LogKind::Flows {
            // Checked here, batch by batch, rather than when the chunk is prepared.
            let (schema, canonical) = (batch.schema(), flowlens_model::flows::schema());
            let columns = prepare::FLOW_COLUMNS
                .iter()
                .map(|c| {
                    let i = schema
                        .index_of(c)
                        .map_err(|_| Error::Schema(format!("batch has no `{c}` column")))?;
                    let have = schema.field(i).data_type();
                    let want = canonical.field_with_name(c).ok().map(|f| f.data_type());
                    if want != Some(have) {
                        return Err(Error::Schema(format!(
                            "`{c}` is {have}, the flows schema has {want:?}"
                        )));
                    }
                    Ok(i)
                })
                .collect::<Result<Vec<_>>>()?;
            let projected = batch
                .project(&columns)
                .map_err(|e| Error::Schema(e.to_string()))?;
            // A batch that would take the pending ones past a chunk starts the next:
            // an object's short last batch is prepared alone rather than copied into
            // one chunk with the next object's first (chunks of one batch are
            // prepared from the batch's own buffers).
            let mut pending: usize = self.pending_flows.iter().map(RecordBatch::num_rows).sum();
            if pending > 0 && pending + projected.num_rows() > CHUNK_ROWS {
                self.drain(kind)?;
                pending = 0;
            }
            pending += projected.num_rows();
            self.pending_flows.push(projected);
            if pending >= CHUNK_ROWS {
                self.drain(kind)?;
            }
            return Ok(());
        }
        let df = prepare::waf_frame(batch, &self.config.allow, &self.config.scraping_bot)?;
        match &mut self.pending_waf {
            Some(p) => {
                p.vstack_mut_owned(df)
                    .map_err(|e| Error::Frame(e.to_string()))?;
            }
            None => self.pending_waf = Some(df),
        }
        if self
            .pending_waf
            .as_ref()
            .is_some_and(|p| p.height() >= WAF_CHUNK_ROWS)
        {
            self.drain(kind)?;
        }
        Ok(())
    }

    fn drain(&mut self, kind: LogKind) -> Result<()> {
        // The chunk's rows borrow from its batches and the run's names.
        let batches;
        let chunk = match kind {
            LogKind::Flows => {
                if self.pending_flows.is_empty() {
                    return Ok(());
                }
                batches = std::mem::take(&mut self.pending_flows);
                if self.lex.names().len() > self.name_bound {
                    self.start_names_over();
                }
                let rows = prepare::flow_rows(&batches, &mut self.lex)?;
                let learned = self.known.learn(&batches, &rows, &mut self.learning)?;
                Chunk::Flows {
                    rows: Box::new(rows),
                    learned,
                }
            }
            LogKind::Waf => {
                let Some(frame) = self.pending_waf.take() else {
                    return Ok(());
                };
                Chunk::Waf(frame)
            }
        };
        let Registry {
            detectors,
            clock,
            cpu,
            ..
        } = self;
        lap(*clock, &mut cpu.last, &mut cpu.prepare);
        for d in detectors.iter_mut().filter(|d| d.input() == kind) {
            let result = d.observe(&chunk);
            let t = cpu.detectors.entry(d.id().as_str()).or_default();
            lap(*clock, &mut cpu.last, t);
            result?;
        }
        Ok(())
    }

    /// Runs every buffered row, flows and WAF requests.
    fn drain_all(&mut self) -> Result<()> {
        self.drain(LogKind::Flows)?;
        self.drain(LogKind::Waf)
    }

    /// Starts the run's codes over, each flow detector re-keying what it keeps by
    /// code.
    fn start_names_over(&mut self) {
        let old = self.lex.start_over();
        for d in self
            .detectors
            .iter_mut()
            .filter(|d| d.input() == LogKind::Flows)
        {
            d.rename(&old, self.lex.names_mut());
        }
    }

    /// Runs the buffered rows, then closes every window ending at or before
    /// `watermark`. Findings come sorted by severity (highest first), then id.
    ///
    /// # Errors
    /// As [`Detector::flush`].
    pub fn flush(&mut self, watermark: i64) -> Result<Vec<Finding>> {
        self.timed_call(|r| r.flush_timed(watermark))
    }

    fn flush_timed(&mut self, watermark: i64) -> Result<Vec<Finding>> {
        self.drain_all()?;
        let mut out = Vec::new();
        let cpu = &mut self.cpu;
        lap(self.clock, &mut cpu.last, &mut cpu.prepare);
        for d in &mut self.detectors {
            let found = d.flush(watermark, self.lex.names());
            let t = cpu.detectors.entry(d.id().as_str()).or_default();
            lap(self.clock, &mut cpu.last, t);
            out.extend(found?);
        }
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// All detectors' state: `{"version": 1, "detectors": {"<id>": ...}}`. Buffered
    /// rows are run first, so nothing observed is lost.
    ///
    /// # Errors
    /// As [`Detector::state`].
    pub fn state(&mut self) -> Result<Value> {
        self.timed_call(Self::drain_all)?;
        let mut map = serde_json::Map::new();
        for d in &self.detectors {
            map.insert(d.id().as_str().to_string(), d.state(self.lex.names())?);
        }
        Ok(serde_json::json!({"version": STATE_VERSION, "detectors": map}))
    }

    fn detector_states(state: Value) -> Result<serde_json::Map<String, Value>> {
        let version = state.get("version").and_then(Value::as_u64);
        if version != Some(STATE_VERSION) {
            return Err(Error::State(format!(
                "detector state version {version:?}, this flowlens reads version {STATE_VERSION}"
            )));
        }
        match state.get("detectors") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(Error::State("detector state has no `detectors` map".into())),
        }
    }

    /// Restores the state written by [`Registry::state`] (detectors absent from it
    /// start empty).
    ///
    /// # Errors
    /// The state is of another version or malformed.
    pub fn restore(&mut self, state: Value) -> Result<()> {
        // The detectors' inventories are replaced: learn everything again, so each
        // hears again what this run already saw.
        self.known = Inventory::default();
        let mut states = Self::detector_states(state)?;
        for d in &mut self.detectors {
            if let Some(s) = states.remove(d.id().as_str()) {
                d.restore(s, self.lex.names_mut())?;
            }
        }
        Ok(())
    }

    /// Merges another shard's [`Registry::state`] into this registry.
    ///
    /// # Errors
    /// The state is of another version or malformed.
    pub fn merge(&mut self, other: Value) -> Result<()> {
        self.timed_call(Self::drain_all)?;
        let mut states = Self::detector_states(other)?;
        for d in &mut self.detectors {
            if let Some(s) = states.remove(d.id().as_str()) {
                d.merge(s, self.lex.names_mut())?;
            }
        }
        Ok(())
    }
}

/// Version of the state layout written by [`Registry::state`].
pub const STATE_VERSION: u64 = 1;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, new_null_array};
    use arrow::datatypes::{DataType, Field, Schema};
    use flowlens_model::flows;

    use super::*;

    /// A one-row flows batch, with column `bad` (if any) replaced by Int64.
    fn batch(bad: Option<&str>) -> RecordBatch {
        let canonical = flows::schema();
        let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = canonical
            .fields()
            .iter()
            .map(|f| {
                if Some(f.name().as_str()) == bad {
                    let a: ArrayRef = Arc::new(Int64Array::from(vec![1]));
                    (Field::new(f.name(), DataType::Int64, true), a)
                } else {
                    let f = f.as_ref().clone().with_nullable(true);
                    let a = new_null_array(f.data_type(), 1);
                    (f, a)
                }
            })
            .unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn times_past_any_window_are_skipped_not_overflowed() {
        // The decoders take any 64-bit start or timestamp; window arithmetic on the
        // extremes would overflow (a panic in debug builds).
        let flows = crate::testing::flows_batch(
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
            &[
                "2 123456789012 eni-0a 10.0.0.1 203.0.113.9 40000 443 6 10 500000000 9223372036854775807 9223372036854775807 ACCEPT OK",
                "2 123456789012 eni-0a 10.0.0.1 10.0.0.2 40000 22 6 1 50 1099511627776 1 REJECT OK",
                "2 123456789012 eni-0a 203.0.113.9 10.0.0.1 40000 8000 6 1 50 9223372036854775000 1 ACCEPT OK",
            ],
        );
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let waf = crate::testing::waf_batch(
            &(0..400)
                .map(|_| {
                    flowlens_samples::waf::request(
                        &mut rng,
                        flowlens_samples::waf::Kind::Probe,
                        "203.0.113.7",
                        i64::MAX as u64,
                    )
                })
                .collect::<Vec<_>>(),
        );
        assert_eq!(waf.num_rows(), 400);
        let mut r = Registry::new(Config::default());
        r.observe(LogKind::Flows, &flows).unwrap();
        r.observe(LogKind::Waf, &waf).unwrap();
        assert!(r.flush(i64::MAX).unwrap().is_empty());
        let state = r.state().unwrap();
        for d in [
            "exfiltration-spike",
            "lateral-movement",
            "cross-az-cost",
            "scraping-bot",
        ] {
            let open = &state["detectors"][d]["windows"]["open"];
            assert_eq!(open, &serde_json::json!({}), "{d}");
        }
    }

    /// A clock that moves a millisecond each time it is read.
    fn ticking() -> Duration {
        use std::sync::atomic::{AtomicU64, Ordering};
        static TICKS: AtomicU64 = AtomicU64::new(0);
        Duration::from_millis(TICKS.fetch_add(1, Ordering::Relaxed))
    }

    #[test]
    fn cpu_time_is_split_between_the_shared_work_and_each_detector() {
        let flows = crate::testing::flows_batch(
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
            &[
                "2 123456789012 eni-0a 10.0.0.1 203.0.113.9 40000 443 6 10 5000 1700000000 1700000060 ACCEPT OK",
            ],
        );
        let mut plain = Registry::new(Config::default());
        plain.observe(LogKind::Flows, &flows).unwrap();
        assert!(plain.cpu_secs().is_empty(), "no clock, no figures");

        let mut config = Config::default();
        config.cross_az_cost.enabled = false;
        let mut r = Registry::new(config).with_cpu_clock(ticking);
        r.observe(LogKind::Flows, &flows).unwrap();
        r.flush(i64::MAX).unwrap();
        let cpu = r.cpu_secs();
        let parts: Vec<&str> = cpu.keys().map(String::as_str).collect();
        assert_eq!(
            parts,
            [
                "exfiltration-spike",
                "lateral-movement",
                "prepare",
                "public-exposure",
                "scraping-bot",
            ],
            "the shared part and each enabled detector"
        );
        // Each flow detector's observe (its chunk at the flush) and flush were timed:
        // a tick or more each; scraping saw no WAF chunk, only its flush.
        for d in ["exfiltration-spike", "lateral-movement", "public-exposure"] {
            assert!(cpu[d] >= 0.002, "{d}: {}", cpu[d]);
        }
        assert!(cpu["scraping-bot"] >= 0.001 && cpu["scraping-bot"] < cpu["lateral-movement"]);
        // The shared part is what the calls took beyond the detectors' own.
        assert!(cpu["prepare"] > 0.0);
    }

    #[test]
    fn huge_byte_counts_saturate() {
        // Three records of i64::MAX bytes each overflow a u64 sum (a panic in debug
        // builds): egress to the internet, a cross-AZ pair, an exposed port.
        let max = i64::MAX;
        let lines: Vec<String> = (0..3)
            .flat_map(|k| {
                [
                    format!("5 eni-0a 10.0.0.1 203.0.113.9 4000{k} 443 6 10 {max} 1700000000 1700000060 ACCEPT OK egress use1-az1"),
                    format!("5 eni-0a 10.0.0.1 10.0.1.2 4000{k} 8080 6 10 {max} 1700000000 1700000060 ACCEPT OK egress use1-az1"),
                    format!("5 eni-0b 10.0.1.2 10.0.0.1 8080 4000{k} 6 10 {max} 1700000000 1700000060 ACCEPT OK egress use1-az2"),
                    format!("5 eni-0a 198.51.100.{k} 10.0.0.1 4000{k} 8000 6 10 {max} 1700000000 1700000060 ACCEPT OK ingress use1-az1"),
                ]
            })
            .collect();
        let flows = crate::testing::flows_batch(
            "version interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction az-id",
            &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let mut r = Registry::new(Config::default());
        r.observe(LogKind::Flows, &flows).unwrap();
        let state = r.state().unwrap();
        let mut again = Registry::new(Config::default());
        again.restore(state.clone()).unwrap();
        again.merge(state).unwrap();
        let found = again.flush(i64::MAX).unwrap();
        let egress = found
            .iter()
            .find(|f| f.detector == DetectorId::ExfiltrationSpike)
            .expect("an egress finding");
        assert_eq!(egress.observed[0].value, u64::MAX as f64);
        assert!(
            found
                .iter()
                .any(|f| f.detector == DetectorId::PublicExposure)
        );
    }

    #[test]
    fn schema_errors_surface_with_their_batch() {
        let mut r = Registry::new(Config::default());
        r.observe(LogKind::Flows, &batch(None)).unwrap();
        let e = r
            .observe(LogKind::Flows, &batch(Some(flows::col::SRCADDR)))
            .unwrap_err();
        assert!(e.to_string().contains("`srcaddr` is Int64"), "{e}");
        // The good batch before it is still run.
        assert!(r.flush(i64::MAX).unwrap().is_empty());
    }
}
