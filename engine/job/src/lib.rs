//! One incremental, idempotent run: what `flowlens scan`, `flowlens watch` and the
//! Lambda handler all call.
//!
//! ```text
//! load state ─► list (or take the event's objects) ─► drop processed ─► read + detect
//!     ─► flush closed windows ─► send new or changed findings ─► save state
//! ```
//!
//! # Guarantees
//! - **Never reads an object twice**: the manifest in the run state names every object
//!   read (URI, size, ETag); only new ones are read. An object that could not be opened
//!   is not recorded and is read next run; one whose reading broke off part-way is read
//!   again from the record where it stopped.
//! - **Never sends a finding twice**: finding ids are deterministic, the state keeps a
//!   digest of each finding sent, and only new or changed findings go out — a changed one
//!   as an update of the same `Id` with a later `UpdatedAt`.
//! - **Safe to kill**: the state is saved last, atomically. A run killed anywhere before
//!   the save leaves the previous state; the rerun reads the same objects from the same
//!   detector state, produces the same findings with the same ids, and Security Hub
//!   updates those it already holds. Findings Security Hub refused are kept in the state
//!   and sent again by the next run.
//!
//! Runs need a multi-threaded tokio runtime: the detectors' polars queries block in
//! place on the consumer task.

mod sink;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use flowlens_detectors::Registry;
use flowlens_engine::pipeline::{ObjectStatus, Progress, ScanOptions, Scanner};
use flowlens_engine::report::ScanReport;
use flowlens_engine::sink::asff::{self, AsffContext};
use flowlens_engine::sink::security_hub::{ImportReport, SecurityHub};
use flowlens_engine::source::{Location, ObjectMeta};
use flowlens_engine::state::{self, ObjectRecord, RunState, Seen, SentFinding, StateStore};
use flowlens_model::finding::Finding;
use serde_json::Value;

pub use sink::DetectSink;

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] flowlens_engine::Error),
    #[error("detectors: {0}")]
    Detectors(#[from] flowlens_detectors::Error),
    #[error("finding {id} does not render as valid ASFF: {problems}")]
    InvalidFinding { id: String, problems: String },
}

impl Error {
    /// Whether running again may succeed (another run saved the state meanwhile, a
    /// transient AWS failure) — what a Lambda reports to get the event redelivered.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Engine(e) => matches!(
                e,
                flowlens_engine::Error::StateConflict { .. }
                    | flowlens_engine::Error::List { .. }
                    | flowlens_engine::Error::Aws { .. }
                    | flowlens_engine::Error::State { .. }
            ),
            Error::Detectors(_) | Error::InvalidFinding { .. } => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a run does.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Where the logs are (listed when a run is not given its objects).
    pub sources: Vec<Location>,
    pub scan: ScanOptions,
    pub detectors: flowlens_detectors::Config,
    /// With a state, windows close `lateness_secs` before the wall clock: logs arrive
    /// late (VPC Flow Logs deliver every 1 or 10 minutes, plus delay), and a window
    /// closed too early would miss them. Without a state every window closes at the end.
    pub lateness_secs: i64,
    /// List only keys dated within this many seconds before now (a scheduled job over a
    /// bucket with years of logs); the manifest forgets objects older than that.
    pub lookback_secs: Option<i64>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            sources: Vec::new(),
            scan: ScanOptions::default(),
            detectors: flowlens_detectors::Config::default(),
            lateness_secs: 30 * 60,
            lookback_secs: None,
        }
    }
}

/// Where the findings of a run go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Nowhere but the outcome (`scan --out` writes them as JSON lines).
    Report,
    /// Rendered and validated, not sent: what `--dry-run` prints.
    DryRun,
    SecurityHub(SecurityHub),
}

/// What one run did.
#[derive(Debug, Default)]
pub struct RunOutcome {
    pub report: ScanReport,
    /// Every finding of the windows closed by this run (and findings pending from an
    /// earlier run), highest severity first.
    pub findings: Vec<Finding>,
    /// The ASFF of the findings that are new or changed since they were last sent: what
    /// was sent, or with `--dry-run` what would be.
    pub to_send: Vec<Value>,
    /// Findings unchanged since they were sent, not sent again.
    pub unchanged: u64,
    /// What Security Hub said.
    pub import: Option<ImportReport>,
    /// Objects to be read (again) by the next run: could not be opened, or reading
    /// broke off part-way.
    pub retry_objects: Vec<String>,
    /// The watermark windows were closed at (unix seconds).
    pub watermark: i64,
    /// Whether a run state was saved.
    pub state_saved: bool,
}

/// Runs: owns the scanner, the state store and the sink for the life of a process (a
/// Lambda container reuses them across invocations).
pub struct Job {
    config: JobConfig,
    scanner: Arc<Scanner>,
    store: Option<StateStore>,
    output: Output,
    asff: AsffContext,
    clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("config", &self.config)
            .field("store", &self.store.as_ref().map(StateStore::location))
            .field("output", &self.output)
            .finish()
    }
}

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

impl Job {
    /// `account_id` and `region` are where findings are imported (the caller's account
    /// and Security Hub region).
    pub fn new(
        config: JobConfig,
        scanner: Arc<Scanner>,
        store: Option<StateStore>,
        output: Output,
        account_id: String,
        region: String,
    ) -> Self {
        Job {
            config,
            scanner,
            store,
            output,
            asff: AsffContext {
                account_id,
                partition: partition_of(&region).into(),
                region,
                now: DateTime::UNIX_EPOCH,
            },
            clock: Arc::new(Utc::now),
        }
    }

    /// Replaces the wall clock (tests: deterministic `UpdatedAt` and watermarks).
    pub fn with_clock(mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// Where findings are rendered for (account, region, partition); `now` is set by
    /// each run.
    pub fn asff_context(&self) -> &AsffContext {
        &self.asff
    }

    pub fn store(&self) -> Option<&StateStore> {
        self.store.as_ref()
    }

    /// Whether an object belongs to the configured sources (what an S3 event handler
    /// checks before reading a notified object).
    pub fn covers(&self, uri: &str) -> bool {
        self.config.sources.iter().any(|loc| match loc {
            Location::S3 { bucket, prefix } => flowlens_engine::source::s3::split_uri(uri)
                .is_some_and(|(b, k)| b == bucket && k.starts_with(prefix.as_str())),
            Location::Local(p) => std::path::Path::new(uri).starts_with(p),
        })
    }

    /// One run. `objects`: the objects to consider (an S3 event's), or `None` to list
    /// the sources. Either way, objects the manifest holds are skipped.
    ///
    /// # Errors
    /// Listing failed, the state cannot be loaded or saved (another run saved it
    /// meanwhile: [`Error::is_retryable`]), or the detectors failed. Bad objects and
    /// records are not errors: they are in the report.
    pub async fn run(
        &self,
        objects: Option<Vec<ObjectMeta>>,
        progress: &Progress,
    ) -> Result<RunOutcome> {
        let now = (self.clock)();
        let loaded = match &self.store {
            Some(store) => Some(store.load().await?),
            None => None,
        };
        let (mut state, version) = match loaded {
            Some(l) => (l.state, l.version),
            None => (RunState::default(), None),
        };
        let mut registry = Registry::new(self.config.detectors.clone())
            .with_cpu_clock(flowlens_engine::cpu::thread_time);
        if let Some(s) = state.detectors.take() {
            registry.restore(s)?;
        }

        let horizon = self
            .config
            .lookback_secs
            .map(|s| now - chrono::Duration::seconds(s));
        let listed = match objects {
            Some(o) => o,
            None => {
                let since = match (horizon, self.config.scan.since) {
                    (Some(h), Some(s)) => Some(h.max(s)),
                    (h, s) => h.or(s),
                };
                self.scanner
                    .list_window(&self.config.sources, since, self.config.scan.until)
                    .await?
            }
        };
        if let Some(h) = horizon {
            state.prune_before(h);
        }
        let listed_count = listed.len() as u64;
        let mut todo = Vec::new();
        let mut already = 0u64;
        for mut meta in listed {
            match state.seen(&meta) {
                Seen::Done => already += 1,
                Seen::New => todo.push(meta),
                Seen::Partial(n) => {
                    meta.skip_records = n;
                    todo.push(meta);
                }
                Seen::Changed => {
                    tracing::warn!(object = %meta.uri, "Object changed since it was read; reading it again.");
                    todo.push(meta);
                }
            }
        }

        let mut sink = DetectSink::new(registry);
        let mut report = self
            .scanner
            .read_objects(todo, &self.config.scan, &mut sink, progress)
            .await?;
        report.objects_listed = listed_count;
        report.objects_skipped += already;
        let DetectSink {
            mut registry, done, ..
        } = sink;

        let mut retry_objects = Vec::new();
        for d in done {
            let (complete, records) = match &d.status {
                ObjectStatus::Complete | ObjectStatus::Damaged(_) => (true, d.records),
                ObjectStatus::Interrupted(_) => (false, d.records),
                ObjectStatus::Unreadable(_) => {
                    retry_objects.push(d.meta.uri.clone());
                    continue;
                }
            };
            if !complete {
                retry_objects.push(d.meta.uri.clone());
            }
            state.objects.insert(
                d.meta.uri.clone(),
                ObjectRecord {
                    size: d.meta.size,
                    etag: d.meta.etag.clone(),
                    records,
                    complete,
                    processed_at: now.timestamp(),
                },
            );
        }

        let watermark = if self.store.is_some() {
            (now - chrono::Duration::seconds(self.config.lateness_secs)).timestamp()
        } else {
            i64::MAX
        };
        let mut findings = registry.flush(watermark)?;
        // Findings refused last time go out again, unless this run has a newer version.
        let pending_before = state.pending.clone();
        for p in std::mem::take(&mut state.pending) {
            if !findings.iter().any(|f| f.id == p.id) {
                findings.push(p);
            }
        }
        findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        report.findings = findings.len() as u64;

        let mut ctx = self.asff.clone();
        ctx.now = now;
        let mut to_send = Vec::new();
        let mut digests = Vec::new();
        let mut unchanged = 0;
        for f in &findings {
            let digest = state::digest(f);
            let prior = state.sent.get(&f.id);
            if prior.is_some_and(|p| p.digest == digest) {
                unchanged += 1;
                continue;
            }
            let created = prior
                .and_then(|p| DateTime::from_timestamp_millis(p.created_at_ms))
                .unwrap_or(now);
            let v = asff::render_update(f, &ctx, created);
            if let Err(problems) = asff::validate(&v) {
                return Err(Error::InvalidFinding {
                    id: f.id.clone(),
                    problems: problems.join("; "),
                });
            }
            to_send.push(v);
            digests.push((f, digest, created));
        }

        let import = match &self.output {
            Output::SecurityHub(hub) if !to_send.is_empty() => {
                let r = hub.import(&to_send).await;
                let imported: std::collections::HashSet<&str> =
                    r.imported.iter().map(String::as_str).collect();
                for (f, digest, created) in &digests {
                    if imported.contains(f.id.as_str()) {
                        state.sent.insert(
                            f.id.clone(),
                            SentFinding {
                                digest: digest.clone(),
                                created_at_ms: created.timestamp_millis(),
                                updated_at_ms: now.timestamp_millis(),
                                window_end: f.window_end,
                            },
                        );
                    } else {
                        state.pending.push((*f).clone());
                    }
                }
                Some(r)
            }
            Output::SecurityHub(_) => Some(ImportReport::default()),
            Output::Report | Output::DryRun => {
                state.pending = pending_before;
                None
            }
        };

        // A dry run changes nothing: the next real run reads and sends the same.
        let mut state_saved = false;
        if let Some(store) = self
            .store
            .as_ref()
            .filter(|_| !matches!(self.output, Output::DryRun))
        {
            state.detectors = Some(registry.state()?);
            state.generation += 1;
            state.saved_at = now.timestamp();
            store.save(&state, version.as_deref()).await?;
            state_saved = true;
        }
        report.detector_cpu_secs = registry.cpu_secs();
        Ok(RunOutcome {
            report,
            findings,
            to_send,
            unchanged,
            import,
            retry_objects,
            watermark,
            state_saved,
        })
    }
}
