//! One object, whatever it holds: recognises compression and log kind by content and
//! drives the right record decoder. Still sans-IO: raw object bytes in, batches out.
//!
//! ```text
//! raw bytes ─► sniff ─┬─ 1f 8b ──► GzipStream ─┐
//!                     ├─ PAR1 ───► buffer ─────┼──► parquet mapping (at finish)
//!                     └─ other ────────────────┴─► content sniff ─┬─ `{` ─► WAF JSON
//!                                                                 └─ else ─► VPC text
//! ```

use std::io::{self, Write};

use arrow::array::RecordBatch;
use flowlens_model::LogKind;

use super::gzip::{GzipStream, is_gzip};
use super::inflate::{self, FAST_GZIP_MAX_BYTES};
use super::vpc_parquet::{PARQUET_MAGIC, ParquetFlows};
use super::vpc_text::{Format, VpcTextDecoder};
use super::waf_json::WafJsonDecoder;
use super::{DEFAULT_BATCH_ROWS, DecodeStats, ObjectContext, RecordDecoder, WAF_BATCH_ROWS};
use crate::error::{Error, RecordError, Result};

/// Inflated bytes handed to the record decoder per step.
const INFLATED_SLICE: usize = 1 << 20;

/// Options shared by every object of a run.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Flow-log format for text objects without a header line (default: v2).
    pub flow_format: Option<Format>,
    /// Rows per flows batch.
    pub batch_rows: usize,
    /// Rows per WAF batch.
    pub waf_batch_rows: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            flow_format: None,
            batch_rows: DEFAULT_BATCH_ROWS,
            waf_batch_rows: WAF_BATCH_ROWS,
        }
    }
}

/// Picks the record decoder from the first non-blank byte of the decompressed content.
struct ContentSniffer {
    ctx: ObjectContext,
    opts: DecodeOptions,
    decoder: Option<(LogKind, Box<dyn RecordDecoder>)>,
    leading_newlines: usize,
}

impl ContentSniffer {
    fn new(ctx: ObjectContext, opts: DecodeOptions) -> Self {
        ContentSniffer {
            ctx,
            opts,
            decoder: None,
            leading_newlines: 0,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        if self.decoder.is_none() {
            let Some(first) = chunk.iter().position(|b| !b.is_ascii_whitespace()) else {
                self.leading_newlines += chunk.iter().filter(|b| **b == b'\n').count();
                return;
            };
            let newlines = std::mem::take(&mut self.leading_newlines);
            let d = self.choose(chunk[first]);
            if newlines > 0 {
                // Replayed so that line numbers in error reports stay right.
                d.push(&b"\n".repeat(newlines));
            }
        }
        if let Some((_, d)) = &mut self.decoder {
            d.push(chunk);
        }
    }

    fn choose(&mut self, first: u8) -> &mut Box<dyn RecordDecoder> {
        let (kind, d): (LogKind, Box<dyn RecordDecoder>) = if first == b'{' {
            (
                LogKind::Waf,
                Box::new(
                    WafJsonDecoder::new(self.ctx.clone()).with_batch_rows(self.opts.waf_batch_rows),
                ),
            )
        } else {
            (
                LogKind::Flows,
                Box::new(
                    VpcTextDecoder::new(self.ctx.clone(), self.opts.flow_format.clone())
                        .with_batch_rows(self.opts.batch_rows),
                ),
            )
        };
        &mut self.decoder.get_or_insert((kind, d)).1
    }
}

impl Write for ContentSniffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Stage {
    /// Fewer than 4 bytes seen: compression not known yet.
    Sniffing(Vec<u8>),
    /// Gzip, small so far: buffered for the fast whole-buffer inflate.
    GzipBuffered(Vec<u8>),
    /// Gzip inflated whole; pushed to the record decoder a slice at a time, each slice's
    /// checksum share computed right after it is decoded (still in the cache).
    Inflated {
        sniffer: ContentSniffer,
        data: Vec<u8>,
        checksums: inflate::Checksums,
        pos: usize,
        done: bool,
    },
    Gzip(Box<GzipStream<ContentSniffer>>),
    Plain(ContentSniffer),
    Parquet(Vec<u8>),
    /// A fatal error stopped decoding; later bytes are ignored.
    Failed(Option<ContentSniffer>),
    /// Parquet, opened at finish and read lazily.
    ParquetOpen(Box<ParquetFlows>, DecodeStats),
}

/// Keeps the first checksum failure of an inflated object as its late failure.
fn note_checksum(late: &mut Option<Error>, ctx: &ObjectContext, checked: Result<(), String>) {
    if let Err(reason) = checked
        && late.is_none()
    {
        *late = Some(Error::Object {
            object: ctx.object.clone(),
            reason,
        });
    }
}

/// Decodes one object of any supported kind (see the module docs).
pub struct ObjectDecoder {
    ctx: ObjectContext,
    opts: DecodeOptions,
    stage: Stage,
    error: Option<Error>,
    /// An object error found after [`ObjectDecoder::finish`], while batches were taken
    /// (see [`ObjectDecoder::take_late_failure`]).
    late_failure: Option<Error>,
    late_errors: Vec<RecordError>,
    raw_bytes: u64,
    finished: bool,
    /// The object is known to be too large for the whole-buffer gzip fast path.
    stream_only: bool,
    /// The object's size as hinted, at most the fast path's limit: what the fast
    /// path's buffer reserves (rather than growing, a copy at each doubling).
    size_hint: usize,
}

impl ObjectDecoder {
    pub fn new(ctx: ObjectContext, opts: DecodeOptions) -> Self {
        ObjectDecoder {
            ctx,
            opts,
            stage: Stage::Sniffing(Vec::with_capacity(4)),
            error: None,
            late_failure: None,
            late_errors: Vec::new(),
            raw_bytes: 0,
            finished: false,
            stream_only: false,
            size_hint: 0,
        }
    }

    /// The object's size, when known (from a listing): a gzip object larger than the
    /// fast path's limit then streams from its first byte, so memory stays bounded by
    /// one chunk's worth of batches instead of the fast path's buffer; a smaller one's
    /// buffer is reserved at once.
    pub fn with_size_hint(mut self, size: u64) -> Self {
        self.stream_only = size > FAST_GZIP_MAX_BYTES as u64;
        self.size_hint = size.min(FAST_GZIP_MAX_BYTES as u64) as usize;
        self
    }

    /// The object's name, as stamped on its rows.
    pub fn object(&self) -> &str {
        &self.ctx.object
    }

    /// Feeds the next chunk of the raw (possibly compressed) object.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        self.raw_bytes += chunk.len() as u64;
        if let Stage::Sniffing(head) = &mut self.stage {
            let need = 4 - head.len();
            if chunk.len() < need {
                head.extend_from_slice(chunk);
                return;
            }
            let mut head = std::mem::take(head);
            head.extend_from_slice(&chunk[..need]);
            self.start(&head);
            self.feed(&head);
            self.feed(&chunk[need..]);
        } else {
            self.feed(chunk);
        }
    }

    fn start(&mut self, head: &[u8]) {
        let sniffer = ContentSniffer::new(self.ctx.clone(), self.opts.clone());
        self.stage = if is_gzip(head) && self.stream_only {
            Stage::Gzip(Box::new(GzipStream::new(sniffer)))
        } else if is_gzip(head) {
            Stage::GzipBuffered(Vec::with_capacity(self.size_hint))
        } else if head.starts_with(PARQUET_MAGIC) {
            Stage::Parquet(Vec::new())
        } else {
            Stage::Plain(sniffer)
        };
    }

    fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if let Stage::GzipBuffered(buf) = &mut self.stage {
            if buf.len() + chunk.len() <= FAST_GZIP_MAX_BYTES {
                buf.extend_from_slice(chunk);
                return;
            }
            self.stream_buffered_gzip();
        }
        match &mut self.stage {
            Stage::Gzip(gz) => {
                if let Err(e) = gz.push(chunk) {
                    self.fail_gzip(e);
                }
            }
            Stage::Plain(s) => s.push(chunk),
            Stage::Parquet(buf) => buf.extend_from_slice(chunk),
            Stage::Sniffing(_) | Stage::Failed(_) | Stage::ParquetOpen(..) => {}
            Stage::GzipBuffered(_) | Stage::Inflated { .. } => {}
        }
    }

    /// Leaves the fast path: the buffered bytes go through the streaming inflater.
    fn stream_buffered_gzip(&mut self) {
        let Stage::GzipBuffered(buf) = std::mem::replace(&mut self.stage, Stage::Failed(None))
        else {
            return;
        };
        let sniffer = ContentSniffer::new(self.ctx.clone(), self.opts.clone());
        self.stage = Stage::Gzip(Box::new(GzipStream::new(sniffer)));
        self.feed(&buf);
    }

    fn fail_gzip(&mut self, e: io::Error) {
        let stage = std::mem::replace(&mut self.stage, Stage::Failed(None));
        if let Stage::Gzip(mut gz) = stage {
            let reason = format!(
                "gzip stream broken after {} compressed bytes ({e}); records before the break were kept",
                gz.compressed_in()
            );
            let mut sniffer = std::mem::replace(
                gz.get_mut(),
                ContentSniffer::new(ObjectContext::default(), DecodeOptions::default()),
            );
            if let Some((_, d)) = &mut sniffer.decoder {
                d.abandon_partial();
            }
            self.stage = Stage::Failed(Some(sniffer));
            self.error = Some(Error::Object {
                object: self.ctx.object.clone(),
                reason,
            });
        }
    }

    /// Ends the object. Batches decoded before an error stay available.
    ///
    /// # Errors
    /// A truncated or corrupt gzip stream, or an unreadable parquet file. Malformed
    /// records are not errors here: see [`ObjectDecoder::take_errors`].
    pub fn finish(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if let Stage::Sniffing(head) = &mut self.stage {
            let head = std::mem::take(head);
            self.start(&head);
            self.feed(&head);
        }
        if let Stage::GzipBuffered(buf) = &mut self.stage {
            let buf = std::mem::take(buf);
            let mut data = inflate::buffer();
            match inflate::gunzip_all(&buf, &mut data) {
                Ok(members) => {
                    let mut sniffer = ContentSniffer::new(self.ctx.clone(), self.opts.clone());
                    let first = data.len().min(INFLATED_SLICE);
                    sniffer.push(&data[..first]);
                    let mut checksums = inflate::Checksums::new(members);
                    let checked = checksums.verify(&data, first);
                    note_checksum(&mut self.late_failure, &self.ctx, checked);
                    self.stage = Stage::Inflated {
                        sniffer,
                        data,
                        checksums,
                        pos: first,
                        done: false,
                    };
                }
                Err(_) => {
                    inflate::recycle(data);
                    // Corrupt, truncated or huge: the streaming path keeps every record
                    // before a break and reports it the same way as for large objects.
                    self.stage = Stage::GzipBuffered(buf);
                    self.stream_buffered_gzip();
                }
            }
        }
        match &mut self.stage {
            Stage::Gzip(gz) => match gz.finish() {
                Ok(()) => {
                    if let Some((_, d)) = &mut gz.get_mut().decoder {
                        d.finish();
                    }
                }
                Err(e) => self.fail_gzip(e),
            },
            Stage::Plain(s) => {
                if let Some((_, d)) = &mut s.decoder {
                    d.finish();
                }
            }
            Stage::Parquet(buf) => {
                let bytes = bytes::Bytes::from(std::mem::take(buf));
                match ParquetFlows::open(bytes, &self.ctx, self.opts.batch_rows) {
                    Ok(p) => self.stage = Stage::ParquetOpen(Box::new(p), DecodeStats::default()),
                    Err(e) => {
                        self.stage = Stage::Failed(None);
                        self.error = Some(e);
                    }
                }
            }
            Stage::Sniffing(_) | Stage::Failed(_) | Stage::ParquetOpen(..) => {}
            Stage::GzipBuffered(_) | Stage::Inflated { .. } => {}
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops after a read error: whatever partial record is buffered is dropped, every
    /// complete record stays available.
    pub fn abort(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        // A buffered gzip prefix still yields its complete records.
        self.stream_buffered_gzip();
        if let Some((_, d)) = self.sniffer().and_then(|s| s.decoder.as_mut()) {
            d.abandon_partial();
        }
        if matches!(self.stage, Stage::Parquet(_) | Stage::Sniffing(_)) {
            self.stage = Stage::Failed(None);
        }
    }

    fn sniffer(&mut self) -> Option<&mut ContentSniffer> {
        match &mut self.stage {
            Stage::Gzip(gz) => Some(gz.get_mut()),
            Stage::Plain(s) | Stage::Inflated { sniffer: s, .. } => Some(s),
            Stage::Failed(s) => s.as_mut(),
            _ => None,
        }
    }

    /// The log kind, once the content has been recognised.
    pub fn kind(&self) -> Option<LogKind> {
        match &self.stage {
            Stage::Gzip(gz) => gz.get_ref().decoder.as_ref().map(|d| d.0),
            Stage::Plain(s) | Stage::Inflated { sniffer: s, .. } => s.decoder.as_ref().map(|d| d.0),
            Stage::Failed(s) => s.as_ref().and_then(|s| s.decoder.as_ref().map(|d| d.0)),
            Stage::ParquetOpen(..) | Stage::Parquet(_) => Some(LogKind::Flows),
            Stage::Sniffing(_) | Stage::GzipBuffered(_) => None,
        }
    }

    /// The next ready batch and its kind.
    pub fn take_batch(&mut self) -> Option<(LogKind, RecordBatch)> {
        if let Stage::ParquetOpen(p, stats) = &mut self.stage {
            loop {
                match p.next_batch()? {
                    Ok(b) => {
                        stats.records += b.num_rows() as u64;
                        return Some((LogKind::Flows, b));
                    }
                    Err(e) => {
                        stats.malformed += 1;
                        self.late_errors.push(RecordError {
                            line: 0,
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        if let Stage::Inflated {
            sniffer,
            data,
            checksums,
            pos,
            done,
        } = &mut self.stage
        {
            loop {
                if let Some((kind, d)) = &mut sniffer.decoder
                    && let Some(b) = d.take_batch()
                {
                    return Some((*kind, b));
                }
                if *pos < data.len() {
                    let end = (*pos + INFLATED_SLICE).min(data.len());
                    sniffer.push(&data[*pos..end]);
                    *pos = end;
                    let checked = checksums.verify(data, end);
                    note_checksum(&mut self.late_failure, &self.ctx, checked);
                } else if !*done {
                    *done = true;
                    inflate::recycle(std::mem::take(data));
                    if let Some((_, d)) = &mut sniffer.decoder {
                        d.finish();
                    }
                } else {
                    return None;
                }
            }
        }
        let (kind, d) = self.sniffer()?.decoder.as_mut()?;
        d.take_batch().map(|b| (*kind, b))
    }

    /// An object error found while the batches were taken after [`ObjectDecoder::finish`]:
    /// the fast gzip path verifies each member's checksum as the record decoder takes
    /// its output, so a corrupt object is known only once its last batch has been taken.
    /// Call after the last batch; the batches taken stay valid (as with a gzip stream
    /// that breaks part-way, the records before the error are kept).
    pub fn take_late_failure(&mut self) -> Option<Error> {
        self.late_failure.take()
    }

    /// Malformed-record reports since the last call.
    pub fn take_errors(&mut self) -> Vec<RecordError> {
        let mut errors = std::mem::take(&mut self.late_errors);
        if let Some((_, d)) = self.sniffer().and_then(|s| s.decoder.as_mut()) {
            errors.extend(d.take_errors());
        }
        errors
    }

    /// Records decoded and skipped so far.
    pub fn stats(&self) -> DecodeStats {
        match &self.stage {
            Stage::Gzip(gz) => gz.get_ref().decoder.as_ref().map(|d| d.1.stats()),
            Stage::Plain(s) | Stage::Inflated { sniffer: s, .. } => {
                s.decoder.as_ref().map(|d| d.1.stats())
            }
            Stage::Failed(s) => s
                .as_ref()
                .and_then(|s| s.decoder.as_ref().map(|d| d.1.stats())),
            Stage::ParquetOpen(_, stats) => Some(*stats),
            _ => None,
        }
        .unwrap_or_default()
    }

    /// Raw (compressed) bytes pushed so far.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes
    }
}
