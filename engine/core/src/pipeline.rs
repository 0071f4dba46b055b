//! The ingest pipeline: list → prune by key date → fetch and decode (bounded
//! concurrency, streaming) → filter by time → hand batches to a [`BatchSink`].
//!
//! ```text
//! locations ─► list ─► prune ─► [object task]×N ──(batches, outcomes)──► consumer ─► sink
//!                                 open → ObjectDecoder                     report
//! ```
//!
//! With [`Stages::Threads`] the object tasks run on the runtime's workers and send to
//! the consumer over a channel; with [`Stages::Inline`] (one CPU) they run on the
//! calling task and hand each batch to the consumer as soon as it is decoded.
//!
//! Nothing here panics on bad input: unreadable objects and malformed records are
//! counted in the [`ScanReport`] and the run goes on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use chrono::{DateTime, Utc};
use flowlens_model::{LogKind, flows, waf};
use futures::StreamExt;
use tokio::sync::{OnceCell, mpsc};

use crate::cpu;
use crate::decode::object::{DecodeOptions, ObjectDecoder};
use crate::decode::{DecodeStats, ObjectContext};
use crate::error::{BoxError, Error, RecordError, Result};
use crate::report::{ReportedError, ScanReport};
use crate::source::{ChunkStream, Location, ObjectMeta, local, s3};

/// Objects fetched at once unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Keep records at or after this time (and prune objects whose key is earlier).
    pub since: Option<DateTime<Utc>>,
    /// Keep records before this time (and prune objects whose key is later).
    pub until: Option<DateTime<Utc>>,
    pub decode: DecodeOptions,
    /// Objects fetched and decoded at once.
    pub concurrency: usize,
    /// Where batches are decoded and handed to the sink (by default [`Stages::for_this_machine`]).
    pub stages: Stages,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            since: None,
            until: None,
            decode: DecodeOptions::default(),
            concurrency: DEFAULT_CONCURRENCY,
            stages: Stages::for_this_machine(),
        }
    }
}

/// How decoding and the sink share the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stages {
    /// Objects are decoded on the runtime's worker threads, in parallel, and their
    /// batches cross a channel to the sink on the calling task: decoding and the sink
    /// overlap where there are cores for both.
    Threads,
    /// Objects are decoded on the calling task (still up to `concurrency` fetched at
    /// once) and each batch goes to the sink as soon as it is decoded, while its
    /// columns are still in the processor's caches: on one core nothing overlaps
    /// anyway, and the sink no longer reads batches that several others have pushed
    /// out of the caches.
    Inline,
}

impl Stages {
    /// [`Stages::Inline`] where the process may run on one CPU only (pinned to a
    /// core, a one-CPU container), else [`Stages::Threads`]. (A Lambda function sees
    /// two CPUs up to 3,008 MB although it gets one vCPU's time at 1,769 MB: the
    /// Lambda adapter decides from its memory size.)
    pub fn for_this_machine() -> Self {
        match std::thread::available_parallelism() {
            Ok(n) if n.get() == 1 => Stages::Inline,
            _ => Stages::Threads,
        }
    }
}

/// Receives every decoded batch of a run, in arrival order.
///
/// # Errors
/// A sink error stops the run (for example, the archive disk is full).
pub trait BatchSink: Send {
    fn batch(&mut self, kind: LogKind, batch: &RecordBatch) -> Result<(), BoxError>;

    /// Called once per object after its last batch: how reading it ended (what a run
    /// state's manifest records). The default ignores it.
    fn object_done(&mut self, _done: &ObjectDone) -> Result<(), BoxError> {
        Ok(())
    }
}

/// How reading one object ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectStatus {
    /// Read to the end (malformed records, if any, were skipped and counted).
    Complete,
    /// Decoding stopped at damage in the object itself (a truncated gzip member, a
    /// broken parquet footer): reading it again gives the same.
    Damaged(String),
    /// Could not be opened (GetObject failed, file missing): nothing was read.
    Unreadable(String),
    /// Reading broke off part-way (a network error): the records up to there were
    /// delivered.
    Interrupted(String),
}

/// One object, finished.
#[derive(Debug, Clone)]
pub struct ObjectDone {
    pub meta: ObjectMeta,
    /// Records decoded from the object's start, including the `skip_records` an earlier
    /// run delivered and records later dropped by `--since/--until`.
    pub records: u64,
    pub status: ObjectStatus,
}

/// A sink that only counts (what `scan` uses until detectors consume the batches).
#[derive(Debug, Default)]
pub struct CountingSink {
    pub batches: u64,
    pub rows: u64,
}

impl BatchSink for CountingSink {
    fn batch(&mut self, _kind: LogKind, batch: &RecordBatch) -> Result<(), BoxError> {
        self.batches += 1;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
}

/// Live counters for a progress display, updated once per chunk or batch.
#[derive(Debug, Default)]
pub struct Progress {
    pub objects_total: AtomicU64,
    pub objects_done: AtomicU64,
    pub bytes_read: AtomicU64,
    pub records: AtomicU64,
}

enum Event {
    Batch(LogKind, RecordBatch),
    Done(Box<ObjectOutcome>),
}

struct ObjectOutcome {
    uri: String,
    done: ObjectDone,
    opened: bool,
    raw_bytes: u64,
    stats: DecodeStats,
    errors: Vec<RecordError>,
    failure: Option<String>,
    /// CPU time spent decoding the object (inflating, parsing, building batches).
    decode_cpu: Duration,
}

/// Lists and reads objects from local paths and S3.
#[derive(Debug, Default)]
pub struct Scanner {
    s3: OnceCell<aws_sdk_s3::Client>,
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses this S3 client instead of one built from the environment.
    pub fn with_s3_client(client: aws_sdk_s3::Client) -> Self {
        Scanner {
            s3: OnceCell::new_with(Some(client)),
        }
    }

    async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(s3::client_from_env).await
    }

    /// Lists every object under the locations, in order.
    ///
    /// # Errors
    /// A location does not exist or cannot be listed.
    pub async fn list(&self, locations: &[Location]) -> Result<Vec<ObjectMeta>> {
        self.list_window(locations, None, None).await
    }

    /// Lists the objects under the locations that may hold records in `[since, until)`.
    /// An S3 prefix that stops where AWS puts the date folders is listed one day prefix
    /// at a time, so a short window never walks the bucket's whole history; otherwise
    /// everything is listed and pruned by key later.
    ///
    /// # Errors
    /// A location does not exist or cannot be listed.
    pub async fn list_window(
        &self,
        locations: &[Location],
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        for loc in locations {
            match loc {
                Location::Local(path) => out.extend(local::list(path)?),
                Location::S3 { bucket, prefix } => {
                    let prefixes = crate::source::key::day_prefixes(prefix, since, until)
                        .unwrap_or_else(|| vec![prefix.clone()]);
                    for p in prefixes {
                        out.extend(s3::list(self.s3().await, bucket, &p).await?);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn open(&self, uri: &str) -> Result<ChunkStream> {
        match s3::split_uri(uri) {
            Some((bucket, key)) => s3::open(self.s3().await, bucket, key).await,
            None => local::open(uri).await,
        }
    }

    /// Lists, prunes and reads everything under `locations`.
    ///
    /// # Errors
    /// Listing failed, or the sink failed. Bad objects and records are not errors.
    pub async fn scan(
        self: &Arc<Self>,
        locations: &[Location],
        opts: &ScanOptions,
        sink: &mut dyn BatchSink,
        progress: &Progress,
    ) -> Result<ScanReport> {
        let started = Instant::now();
        let objects = self.list_window(locations, opts.since, opts.until).await?;
        let mut report = self.read_objects(objects, opts, sink, progress).await?;
        report.duration_secs = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Prunes `objects` by `--since/--until` and reads the rest (what the CLI and the
    /// Lambda handler both call once they know which objects to process).
    ///
    /// # Errors
    /// The sink failed.
    pub async fn read_objects(
        self: &Arc<Self>,
        objects: Vec<ObjectMeta>,
        opts: &ScanOptions,
        sink: &mut dyn BatchSink,
        progress: &Progress,
    ) -> Result<ScanReport> {
        let started = Instant::now();
        let mut report = ScanReport {
            objects_listed: objects.len() as u64,
            ..Default::default()
        };
        let (keep, pruned): (Vec<_>, Vec<_>) = objects
            .into_iter()
            .partition(|o| o.info.may_overlap(opts.since, opts.until));
        report.objects_skipped += pruned.len() as u64;
        progress
            .objects_total
            .fetch_add(keep.len() as u64, Ordering::Relaxed);
        tracing::debug!(
            objects = keep.len(),
            pruned = pruned.len(),
            "Reading objects."
        );

        let concurrency = opts.concurrency.max(1);
        let mut consumer = Consumer {
            sink,
            progress,
            since: opts.since,
            until: opts.until,
            report,
            sink_error: None,
            failed: None,
        };
        match opts.stages {
            Stages::Threads => {
                let (tx, mut rx) = mpsc::channel::<Event>(8);
                let scanner = Arc::clone(self);
                let decode = opts.decode.clone();
                let driver = tokio::spawn(async move {
                    futures::stream::iter(keep)
                        .map(|meta| {
                            let out = Out::Channel(tx.clone());
                            let scanner = Arc::clone(&scanner);
                            let decode = decode.clone();
                            tokio::spawn(async move { scanner.read_one(meta, decode, &out).await })
                        })
                        .buffer_unordered(concurrency)
                        .for_each(|_| async {})
                        .await;
                });
                while let Some(event) = rx.recv().await {
                    consumer.event(event)?;
                }
                let _ = driver.await;
            }
            Stages::Inline => {
                // The object futures all run on this task and share the consumer: a
                // mutex never contended (one of them runs at a time), which keeps
                // the run's future `Send` where a `RefCell` would not.
                let shared = Mutex::new(consumer);
                futures::stream::iter(keep)
                    .map(|meta| {
                        let out = Out::Inline(&shared);
                        let decode = opts.decode.clone();
                        async move { self.read_one(meta, decode, &out).await }
                    })
                    .buffer_unordered(concurrency)
                    .for_each(|_| async {})
                    .await;
                consumer = shared.into_inner().unwrap_or_else(PoisonError::into_inner);
                if let Some(e) = consumer.failed {
                    return Err(e);
                }
            }
        }
        let mut report = consumer.report;
        if let Some(e) = consumer.sink_error {
            return Err(Error::Object {
                object: "sink".into(),
                reason: format!("batch sink failed: {e}"),
            });
        }
        report.duration_secs = started.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn read_one(&self, meta: ObjectMeta, opts: DecodeOptions, out: &Out<'_, '_>) {
        let ctx = ObjectContext {
            object: meta.uri.clone(),
            account_id: meta.info.account_id.clone(),
            region: meta.info.region.clone(),
        };
        let mut outcome = ObjectOutcome {
            uri: meta.uri.clone(),
            done: ObjectDone {
                meta: meta.clone(),
                records: 0,
                status: ObjectStatus::Complete,
            },
            opened: false,
            raw_bytes: 0,
            stats: DecodeStats::default(),
            errors: Vec::new(),
            failure: None,
            decode_cpu: Duration::ZERO,
        };
        let mut stream = match self.open(&meta.uri).await {
            Ok(s) => s,
            Err(e) => {
                let reason = error_chain(&e);
                outcome.done.status = ObjectStatus::Unreadable(reason.clone());
                outcome.failure = Some(reason);
                out.send(Event::Done(Box::new(outcome))).await;
                return;
            }
        };
        outcome.opened = true;
        let mut decoder = ObjectDecoder::new(ctx, opts).with_size_hint(meta.size);
        let mut rows = RowCursor {
            skip: meta.skip_records,
            seen: 0,
        };
        let mut read_error = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => {
                    cpu::timed(&mut outcome.decode_cpu, || decoder.push(&chunk));
                    if !forward(&mut decoder, &mut rows, out, &mut outcome.decode_cpu).await {
                        return;
                    }
                }
                Err(e) => {
                    read_error = Some(format!("read failed part-way: {e}"));
                    break;
                }
            }
        }
        let interrupted = read_error.is_some();
        let result = match read_error {
            Some(reason) => {
                decoder.abort();
                Err(reason)
            }
            None => cpu::timed(&mut outcome.decode_cpu, || decoder.finish())
                .map_err(|e| error_chain(&e)),
        };
        if !forward(&mut decoder, &mut rows, out, &mut outcome.decode_cpu).await {
            return;
        }
        let result = match (result, decoder.take_late_failure()) {
            (Ok(()), Some(e)) => Err(error_chain(&e)),
            (result, _) => result,
        };
        outcome.done.records = rows.seen;
        outcome.done.status = match &result {
            Ok(()) => ObjectStatus::Complete,
            Err(reason) if interrupted => ObjectStatus::Interrupted(reason.clone()),
            Err(reason) => ObjectStatus::Damaged(reason.clone()),
        };
        // The key layout names a kind too; content decides, a disagreement is worth a look.
        if let (Some(by_key), Some(by_content)) = (meta.info.kind, decoder.kind())
            && by_key != by_content
        {
            tracing::warn!(
                object = %meta.uri,
                key = by_key.table(),
                content = by_content.table(),
                "Object key and content disagree on the log kind; decoded by content."
            );
        }
        outcome.raw_bytes = decoder.raw_bytes();
        outcome.stats = decoder.stats();
        outcome.errors = decoder.take_errors();
        outcome.failure = result.err();
        out.send(Event::Done(Box::new(outcome))).await;
    }
}

/// Where an object's events go.
enum Out<'c, 's> {
    /// Over a channel to the consumer on the calling task ([`Stages::Threads`]).
    Channel(mpsc::Sender<Event>),
    /// Straight to the consumer, on the decoding task ([`Stages::Inline`]).
    Inline(&'c Mutex<Consumer<'s>>),
}

impl Out<'_, '_> {
    /// Delivers `event`; false when the consumer stopped (reading should stop too).
    async fn send(&self, event: Event) -> bool {
        match self {
            Out::Channel(tx) => tx.send(event).await.is_ok(),
            Out::Inline(consumer) => {
                let mut c = consumer.lock().unwrap_or_else(PoisonError::into_inner);
                if c.failed.is_some() {
                    return false;
                }
                match c.event(event) {
                    Ok(()) => true,
                    Err(e) => {
                        c.failed = Some(e);
                        false
                    }
                }
            }
        }
    }
}

/// The receiving end of a run: filters batches by time, hands them to the sink, and
/// counts everything in the report.
struct Consumer<'s> {
    sink: &'s mut dyn BatchSink,
    progress: &'s Progress,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    report: ScanReport,
    /// The sink's first error: later batches are dropped, objects still counted.
    sink_error: Option<BoxError>,
    /// What stopped the run (inline stages: the consumer cannot return it).
    failed: Option<Error>,
}

impl Consumer<'_> {
    /// # Errors
    /// A batch's time column has the wrong type.
    fn event(&mut self, event: Event) -> Result<()> {
        let report = &mut self.report;
        match event {
            Event::Batch(kind, batch) => {
                if self.sink_error.is_some() {
                    return Ok(());
                }
                let (batch, outside) = filter_window(kind, batch, self.since, self.until)?;
                report.records_outside_window += outside;
                match kind {
                    LogKind::Flows => report.flow_records += batch.num_rows() as u64,
                    LogKind::Waf => report.waf_records += batch.num_rows() as u64,
                }
                self.progress
                    .records
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                if batch.num_rows() > 0
                    && let Err(e) = self.sink.batch(kind, &batch)
                {
                    self.sink_error = Some(e);
                }
            }
            Event::Done(outcome) => {
                self.progress.objects_done.fetch_add(1, Ordering::Relaxed);
                if self.sink_error.is_none()
                    && let Err(e) = self.sink.object_done(&outcome.done)
                {
                    self.sink_error = Some(e);
                }
                if outcome.opened {
                    report.objects_read += 1;
                }
                report.bytes_read += outcome.raw_bytes;
                report.decode_cpu_secs += outcome.decode_cpu.as_secs_f64();
                report.malformed_records += outcome.stats.malformed;
                for e in outcome.errors {
                    report.push_error(ReportedError {
                        object: outcome.uri.clone(),
                        line: Some(e.line).filter(|l| *l > 0),
                        reason: e.reason,
                    });
                }
                if let Some(reason) = outcome.failure {
                    report.objects_failed += 1;
                    tracing::warn!(object = %outcome.uri, %reason, "Object not read completely.");
                    report.push_error(ReportedError {
                        object: outcome.uri,
                        line: None,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Counts an object's records and drops the first `skip` (delivered by an earlier run).
struct RowCursor {
    skip: u64,
    seen: u64,
}

/// Sends every ready batch; false when the consumer is gone. Taking a batch (its
/// columns finished) counts as decoding in `decode_cpu`.
async fn forward(
    decoder: &mut ObjectDecoder,
    rows: &mut RowCursor,
    out: &Out<'_, '_>,
    decode_cpu: &mut Duration,
) -> bool {
    while let Some((kind, batch)) = cpu::timed(decode_cpu, || decoder.take_batch()) {
        let n = batch.num_rows() as u64;
        let first = rows.seen;
        rows.seen += n;
        let batch = if first + n <= rows.skip {
            continue;
        } else if first < rows.skip {
            let cut = (rows.skip - first) as usize;
            batch.slice(cut, batch.num_rows() - cut)
        } else {
            batch
        };
        if !out.send(Event::Batch(kind, batch)).await {
            return false;
        }
    }
    true
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// Drops rows outside `[since, until)`; rows without a time are kept.
fn filter_window(
    kind: LogKind,
    batch: RecordBatch,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<(RecordBatch, u64)> {
    if since.is_none() && until.is_none() {
        return Ok((batch, 0));
    }
    let (column, scale) = match kind {
        LogKind::Flows => (flows::col::START, 1),
        LogKind::Waf => (waf::col::TIMESTAMP, 1000),
    };
    let lo = since.map_or(i64::MIN, |t| t.timestamp().saturating_mul(scale));
    let hi = until.map_or(i64::MAX, |t| t.timestamp().saturating_mul(scale));
    let col = batch.column(batch.schema().index_of(column)?);
    let keep = |v: i64| v >= lo && v < hi;
    let mask: BooleanArray = match kind {
        LogKind::Flows => {
            let a = col.as_primitive::<Int64Type>();
            (0..a.len())
                .map(|i| Some(a.is_null(i) || keep(a.value(i))))
                .collect()
        }
        LogKind::Waf => {
            let a = col.as_primitive::<TimestampMillisecondType>();
            (0..a.len())
                .map(|i| Some(a.is_null(i) || keep(a.value(i))))
                .collect()
        }
    };
    let kept = mask.true_count();
    if kept == batch.num_rows() {
        return Ok((batch, 0));
    }
    let outside = (batch.num_rows() - kept) as u64;
    Ok((filter_record_batch(&batch, &mask)?, outside))
}
