//! VPC Flow Logs in text form: one record per line, fields split on runs of
//! whitespace, `-` for "no value".
//!
//! The column order comes from, in priority:
//! 1. the header line that starts every S3 text object (`version account-id ...`),
//! 2. a `${field}` format string given by the user,
//! 3. the default v2 format.
//!
//! Unknown field names (newer AWS fields, custom ones) are kept in the `extra` map.

use std::sync::Arc;

use arrow::array::builder::{MapBuilder, StringBuilder};
use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use flowlens_model::flows::{self, DEFAULT_FORMAT, FLOW_FIELDS, FieldKind};

use super::num_col::NumCol;
use super::str_col::StrCol;
use super::{DecodeOutput, DecodeStats, ObjectContext, RecordDecoder, quote};
use crate::error::{Error, RecordError, Result};
use crate::util::{const_str_view, null_array};

/// Most fields a line may have (AWS has 42 fields; custom formats cannot repeat them).
const MAX_FIELDS: usize = 96;
/// Longest line kept; a longer one is reported and skipped.
pub const MAX_LINE_BYTES: usize = 1 << 20;
// The fast path takes only records inside one window of the stop index, so it never
// sees a line the general path would reject as over-long.
const _: () = assert!(fast::WINDOW < MAX_LINE_BYTES);
/// Most records one fast run takes. A run fills column after column, so a record that
/// fails late (a bad last field) wastes the work done on the columns before for every
/// record after it in the run; runs therefore start at one record after a failure and
/// double while they succeed, which bounds that waste by the work kept.
const MAX_RUN: usize = super::col_run::RUN_MAX_ROWS;

mod fast;
mod run;

use run::RunEnd;

/// Where a format position goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A known field: index into [`FLOW_FIELDS`].
    Known(usize),
    /// An unknown field: index into [`Format::extra_names`].
    Extra(usize),
}

/// The column order of a flow log: which field each whitespace-separated position holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    slots: Vec<Slot>,
    extra_names: Vec<String>,
}

impl Format {
    /// The default format (v2, 14 fields).
    pub fn default_v2() -> Self {
        Self::from_names(DEFAULT_FORMAT.iter().copied()).expect("the default format is valid")
    }

    /// Parses a format given as `${version} ${srcaddr} ...` (as in the AWS console,
    /// CLI and CloudFormation) or as bare names (`version srcaddr ...`, as in headers).
    ///
    /// # Errors
    /// An empty format, a malformed `${...}` token, a name that is not a field name, or
    /// a field named twice.
    pub fn parse(format: &str) -> Result<Self> {
        let mut names = Vec::new();
        for token in format.split_whitespace() {
            let token = token.replace("$$", "$"); // Terraform escaping
            let name = match token.strip_prefix("${") {
                Some(rest) => rest
                    .strip_suffix('}')
                    .ok_or_else(|| Error::Format(format!("unterminated field `{token}`")))?,
                None => token.as_str(),
            };
            if !is_field_name(name.as_bytes()) {
                return Err(Error::Format(format!("`{name}` is not a field name")));
            }
            names.push(name.to_string());
        }
        Self::from_names(names.iter().map(String::as_str))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        let mut slots = Vec::new();
        let mut extra_names: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        for name in names {
            if seen.contains(&name) {
                return Err(Error::Format(format!("field `{name}` appears twice")));
            }
            seen.push(name);
            match flows::field_index(name) {
                Some(i) => slots.push(Slot::Known(i)),
                None => {
                    slots.push(Slot::Extra(extra_names.len()));
                    extra_names.push(name.replace('-', "_"));
                }
            }
        }
        if slots.is_empty() {
            return Err(Error::Format("the format names no field".into()));
        }
        if slots.len() > MAX_FIELDS {
            return Err(Error::Format(format!(
                "the format names {} fields; at most {MAX_FIELDS} are supported",
                slots.len()
            )));
        }
        Ok(Format { slots, extra_names })
    }

    /// Number of fields per record.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the format has no field (never true for a parsed format).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Recognises a header line: every token is a name and at least one is a known field.
    fn from_header(line: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(line).ok()?;
        let mut any_known = false;
        for token in text.split_ascii_whitespace() {
            if !is_field_name(token.as_bytes()) {
                return None;
            }
            any_known |= flows::field_index(token).is_some();
        }
        if !any_known {
            return None;
        }
        Self::from_names(text.split_ascii_whitespace()).ok()
    }
}

fn is_field_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'a'..=b'z' | b'A'..=b'Z'))
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Inclusive upper bound of a numeric field's value, by column.
fn max_value(column: &str) -> u64 {
    use flows::col::*;
    match column {
        SRCPORT | DSTPORT => 65_535,
        PROTOCOL | VERSION | TCP_FLAGS | TRAFFIC_PATH | ENCRYPTION_STATUS => 255,
        _ => i64::MAX as u64,
    }
}

/// The builder of one format position.
enum Column {
    Str(StrCol),
    I32(NumCol<Int32Type>),
    I64(NumCol<Int64Type>),
    /// An unknown field: its values go to the `extra` map.
    Extra,
}

impl Column {
    fn reserve_rows(&mut self, rows: usize) {
        match self {
            Column::Str(c) => c.reserve_rows(rows),
            Column::I32(c) => c.reserve_rows(rows),
            Column::I64(c) => c.reserve_rows(rows),
            Column::Extra => {}
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Column::Str(c) => c.truncate(rows),
            Column::I32(c) => c.truncate(rows),
            Column::I64(c) => c.truncate(rows),
            Column::Extra => {}
        }
    }
}

/// Per-slot decoding plan.
struct SlotPlan {
    kind: FieldKind,
    max: u64,
    /// Value used when the record has `-` (account/region from the object key).
    fill: Option<String>,
}

struct Active {
    format: Format,
    plans: Vec<SlotPlan>,
    columns: Vec<Column>, // by slot
    extra: Option<MapBuilder<StringBuilder, StringBuilder>>,
    rows: usize,
    /// Rows every builder holds without growing.
    capacity: usize,
    /// Whether records can take the fast path ([`Active::fast_run`]): every field is
    /// a known one.
    fast: bool,
    /// Absent and constant columns, by schema index, reused across batches.
    fixed: Vec<Option<ArrayRef>>,
}

impl Active {
    fn reserve_rows(&mut self, rows: usize) {
        for c in &mut self.columns {
            c.reserve_rows(rows);
        }
        self.capacity = self.capacity.max(rows);
    }

    fn new(format: Format, ctx: &ObjectContext, capacity: usize) -> Self {
        let mut plans = Vec::with_capacity(format.len());
        let mut columns = Vec::with_capacity(format.len());
        for slot in &format.slots {
            match *slot {
                Slot::Known(i) => {
                    let f = &FLOW_FIELDS[i];
                    let fill = match f.column {
                        flows::col::ACCOUNT_ID => ctx.account_id.clone(),
                        flows::col::REGION => ctx.region.clone(),
                        _ => None,
                    };
                    plans.push(SlotPlan {
                        kind: f.kind,
                        max: max_value(f.column),
                        fill,
                    });
                    columns.push(match f.kind {
                        FieldKind::Str => Column::Str(StrCol::with_capacity(capacity)),
                        FieldKind::I32 => Column::I32(NumCol::with_capacity(capacity)),
                        FieldKind::I64 => Column::I64(NumCol::with_capacity(capacity)),
                    });
                }
                Slot::Extra(_) => {
                    plans.push(SlotPlan {
                        kind: FieldKind::Str,
                        max: 0,
                        fill: None,
                    });
                    columns.push(Column::Extra);
                }
            }
        }
        let extra = (!format.extra_names.is_empty()).then(super::extra_map_builder);
        Active {
            fast: extra.is_none(),
            format,
            plans,
            columns,
            extra,
            rows: 0,
            capacity,
            fixed: vec![None; flows::schema().fields().len()],
        }
    }

    fn finish(&mut self, ctx: &ObjectContext) -> Result<RecordBatch> {
        let schema = flows::schema();
        let rows = std::mem::take(&mut self.rows);
        self.capacity = rows;
        let mut arrays: Vec<Option<ArrayRef>> = vec![None; schema.fields().len()];
        for (slot, column) in self.format.slots.iter().zip(self.columns.iter_mut()) {
            if let Slot::Known(i) = slot {
                // Builders restart with the last batch's capacity, so the next batch
                // does not regrow every column from zero.
                arrays[*i] = match column {
                    Column::Str(b) => Some(Arc::new(b.finish()) as ArrayRef),
                    Column::I32(b) => Some(Arc::new(b.finish())),
                    Column::I64(b) => Some(Arc::new(b.finish())),
                    Column::Extra => None,
                };
            }
        }
        if let Some(extra) = &mut self.extra {
            arrays[flows::EXTRA_INDEX] = Some(Arc::new(extra.finish()));
        }
        let columns = schema
            .fields()
            .iter()
            .zip(arrays)
            .enumerate()
            .map(|(i, (field, array))| {
                if let Some(array) = array {
                    return array;
                }
                // Absent and constant columns are the same for every batch of the object:
                // built once (full batches all have `batch_rows` rows), the short last
                // batch takes a slice.
                let cached = self.fixed[i].as_ref().filter(|a| a.len() >= rows);
                let full = match cached {
                    Some(a) => a.clone(),
                    None => {
                        let from_key = match field.name().as_str() {
                            flows::col::ACCOUNT_ID => ctx.account_id.as_deref(),
                            flows::col::REGION => ctx.region.as_deref(),
                            flows::col::SOURCE_OBJECT => Some(ctx.object.as_str()),
                            _ => None,
                        };
                        let a = match from_key {
                            Some(v) => const_str_view(v, rows),
                            None => null_array(field.data_type(), rows),
                        };
                        self.fixed[i] = Some(a.clone());
                        a
                    }
                };
                if full.len() == rows {
                    full
                } else {
                    full.slice(0, rows)
                }
            })
            .collect();
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// Decodes VPC Flow Log text (see the module docs).
pub struct VpcTextDecoder {
    ctx: ObjectContext,
    configured: Format,
    active: Option<Active>,
    pending: Vec<u8>,
    /// Set while skipping the rest of an over-long line.
    skipping_long_line: bool,
    line: u64,
    batch_rows: usize,
    out: DecodeOutput,
    finished: bool,
    /// Per-line scratch, reused: token spans and parsed numbers.
    spans: Vec<(usize, usize)>,
    nums: Vec<i64>,
    /// Off only in tests that compare the fast path with the general one.
    fast_path: bool,
    /// The fast path's index of token ends, reused.
    stops: fast::Stops,
    /// Most records the next fast run may take: doubles after each run that was not
    /// cut, back to 1 after one that was (see [`MAX_RUN`]).
    run_limit: usize,
    /// Records the fast path decoded (tests check that plain records take it).
    #[cfg(test)]
    fast_records: u64,
    /// Tokens the fast path took, kept or not (tests bound the wasted work).
    #[cfg(test)]
    fast_tokens: u64,
}

impl VpcTextDecoder {
    /// A decoder for one object. `format` applies when the object has no header line
    /// (`None`: the default v2 format).
    pub fn new(ctx: ObjectContext, format: Option<Format>) -> Self {
        VpcTextDecoder {
            ctx,
            configured: format.unwrap_or_else(Format::default_v2),
            active: None,
            pending: Vec::new(),
            skipping_long_line: false,
            line: 0,
            batch_rows: super::DEFAULT_BATCH_ROWS,
            out: DecodeOutput::default(),
            finished: false,
            spans: Vec::with_capacity(MAX_FIELDS + 1),
            nums: Vec::with_capacity(MAX_FIELDS),
            fast_path: true,
            stops: fast::Stops::default(),
            run_limit: 1,
            #[cfg(test)]
            fast_records: 0,
            #[cfg(test)]
            fast_tokens: 0,
        }
    }

    /// Sets the number of rows per batch.
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    fn process_line(&mut self, raw: &[u8]) {
        self.line += 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            return;
        }
        if self.active.is_none() {
            if line.iter().all(u8::is_ascii_whitespace) {
                return; // blank lines before the header
            }
            let (format, is_header) = match Format::from_header(line) {
                Some(f) => (f, true),
                None => (self.configured.clone(), false),
            };
            let cap = self.batch_rows.min(4096);
            let mut active = Active::new(format, &self.ctx, cap);
            active.fast &= self.fast_path;
            self.active = Some(active);
            if is_header {
                return;
            }
        }
        let n = tokenize(line, &mut self.spans);
        self.record_line(line, n);
    }

    /// Decodes a line whose tokens are in `self.spans` (`n` counts them all, even past
    /// the spans kept) and flushes a full batch.
    fn record_line(&mut self, line: &[u8], n: usize) {
        if self.decode_record(line, n)
            && self
                .active
                .as_ref()
                .is_some_and(|a| a.rows >= self.batch_rows)
        {
            self.flush();
        }
    }

    /// A run of complete lines (`region` ends with `\n`): runs of plain records take
    /// the fast path ([`Active::fast_run`]), every other line the general one.
    fn push_lines(&mut self, region: &[u8]) {
        let mut stops = std::mem::take(&mut self.stops);
        // Where the current window of the stop index starts.
        let mut indexed: Option<usize> = None;
        let mut at = 0;
        while at < region.len() {
            if let Some(active) = self.active.as_mut().filter(|a| a.fast) {
                if indexed.is_none() {
                    stops.index(region, at);
                    indexed = Some(at);
                }
                let room = (self.batch_rows - active.rows).min(self.run_limit);
                if active.rows + room > active.capacity {
                    // Grow once to a whole batch rather than doubling from the
                    // object's first small capacity.
                    active.reserve_rows(self.batch_rows);
                }
                let run = active.fast_run(region, at, &mut stops, room);
                let full = active.rows >= self.batch_rows;
                self.run_limit = match run.end {
                    RunEnd::General => 1,
                    _ => (self.run_limit * 2).min(MAX_RUN),
                };
                #[cfg(test)]
                {
                    self.fast_records += run.rows as u64;
                    self.fast_tokens += run.taken as u64;
                }
                self.out.records += run.rows as u64;
                self.line += run.rows as u64;
                at = run.next;
                if full {
                    self.flush();
                }
                match run.end {
                    RunEnd::Limit | RunEnd::End => continue,
                    // The window ended inside the record at `at`: index on from its
                    // start, unless the window already started there (the line is
                    // longer than a window).
                    RunEnd::Window if !stops.covers_to_end(region) && indexed != Some(at) => {
                        stops.index(region, at);
                        indexed = Some(at);
                        continue;
                    }
                    RunEnd::Window | RunEnd::General => {}
                }
            }
            let end = memchr::memchr(b'\n', &region[at..]).map_or(region.len(), |i| at + i);
            self.process_raw_line(&region[at..end]);
            at = end + 1;
            if indexed.is_some() {
                stops.seek(at);
            }
        }
        self.stops = stops;
    }

    /// A complete line through the general path, over-long lines reported.
    fn process_raw_line(&mut self, line: &[u8]) {
        if line.len() > MAX_LINE_BYTES {
            self.skip_long_line();
        } else {
            self.process_line(line);
        }
    }

    /// Counts and reports one over-long line (its content is never kept).
    fn skip_long_line(&mut self) {
        self.line += 1;
        let n = self.line;
        self.out.errors.record(n, || {
            format!("line longer than {MAX_LINE_BYTES} bytes skipped")
        });
    }

    /// Decodes one non-empty line into the builders; false if it was malformed.
    fn decode_record(&mut self, line: &[u8], n: usize) -> bool {
        let VpcTextDecoder {
            active,
            spans,
            nums,
            out,
            line: line_no,
            ..
        } = self;
        let errors = &mut out.errors;
        let Some(active) = active else { return false };
        let line_no = *line_no;
        if n == 0 {
            return false; // a blank line
        }
        let expected = active.format.len();
        if n != expected {
            errors.record(line_no, || {
                format!(
                    "expected {expected} fields, found {}{}: {}",
                    if n > MAX_FIELDS { "more than " } else { "" },
                    n.min(MAX_FIELDS),
                    quote(line)
                )
            });
            return false;
        }
        // One UTF-8 check per line; tokens are sub-slices split at ASCII bytes.
        let Ok(text) = std::str::from_utf8(line) else {
            errors.record(line_no, || {
                format!("not text (invalid UTF-8): {}", quote(line))
            });
            return false;
        };

        // Validate every number before appending anything, so a bad record leaves no trace.
        nums.clear();
        for (k, plan) in active.plans.iter().enumerate() {
            if plan.kind == FieldKind::Str {
                nums.push(0);
                continue;
            }
            let tok = &line[spans[k].0..spans[k].1];
            if tok == b"-" {
                nums.push(-1);
                continue;
            }
            match parse_uint(tok) {
                Some(v) if v <= plan.max => nums.push(v as i64),
                parsed => {
                    let slot = active.format.slots[k];
                    errors.record(line_no, || {
                        let name = match slot {
                            Slot::Known(i) => FLOW_FIELDS[i].aws_name,
                            Slot::Extra(_) => "?",
                        };
                        match parsed {
                            Some(_) => format!(
                                "field `{name}`: {} is out of range (0..={})",
                                quote(tok),
                                plan.max
                            ),
                            None => format!("field `{name}`: `{}` is not a number", quote(tok)),
                        }
                    });
                    return false;
                }
            }
        }

        for (k, (plan, column)) in active
            .plans
            .iter()
            .zip(active.columns.iter_mut())
            .enumerate()
        {
            let (a, b) = spans[k];
            match column {
                Column::Str(builder) => {
                    let tok = text.get(a..b).unwrap_or_default();
                    if tok == "-" {
                        match &plan.fill {
                            Some(v) => builder.append_value(v),
                            None => builder.append_null(),
                        }
                    } else {
                        builder.append_value(tok);
                    }
                }
                Column::I32(builder) => {
                    if nums[k] < 0 {
                        builder.append_null()
                    } else {
                        builder.append_value(nums[k] as i32)
                    }
                }
                Column::I64(builder) => {
                    if nums[k] < 0 {
                        builder.append_null()
                    } else {
                        builder.append_value(nums[k])
                    }
                }
                Column::Extra => {}
            }
        }
        if let Some(extra) = &mut active.extra {
            for (k, slot) in active.format.slots.iter().enumerate() {
                if let Slot::Extra(e) = slot {
                    let tok = text.get(spans[k].0..spans[k].1).unwrap_or_default();
                    extra.keys().append_value(&active.format.extra_names[*e]);
                    if tok == "-" {
                        extra.values().append_null();
                    } else {
                        extra.values().append_value(tok);
                    }
                }
            }
            // Appending a map entry cannot fail once keys and values are balanced.
            let _ = extra.append(true);
        }
        active.rows += 1;
        out.records += 1;
        true
    }

    fn flush(&mut self) {
        if let Some(active) = &mut self.active
            && active.rows > 0
        {
            match active.finish(&self.ctx) {
                Ok(batch) => self.out.ready.push_back(batch),
                Err(e) => {
                    // Only reachable through a schema bug; report instead of panicking.
                    let line = self.line;
                    self.out
                        .errors
                        .record(line, || format!("internal error: {e}"));
                }
            }
        }
    }

    fn push_pending(&mut self, bytes: &[u8]) {
        if self.skipping_long_line {
            return;
        }
        if self.pending.len() + bytes.len() > MAX_LINE_BYTES {
            self.skipping_long_line = true;
            self.pending.clear();
            return;
        }
        self.pending.extend_from_slice(bytes);
    }

    fn end_pending_line(&mut self) {
        if self.skipping_long_line {
            self.skipping_long_line = false;
            self.skip_long_line();
        } else {
            let pending = std::mem::take(&mut self.pending);
            self.process_line(&pending);
            self.pending = pending;
            self.pending.clear();
        }
    }
}

/// Splits `line` on runs of spaces and tabs into `spans` (at most `MAX_FIELDS + 1`
/// kept); returns the number of tokens.
fn tokenize(line: &[u8], spans: &mut Vec<(usize, usize)>) -> usize {
    spans.clear();
    let mut n = 0;
    let mut i = 0;
    let len = line.len();
    while i < len {
        while i < len && (line[i] == b' ' || line[i] == b'\t') {
            i += 1;
        }
        if i == len {
            break;
        }
        let start = i;
        while i < len && line[i] != b' ' && line[i] != b'\t' {
            i += 1;
        }
        if n <= MAX_FIELDS {
            spans.push((start, i));
        }
        n += 1;
    }
    n
}

/// Parses an unsigned decimal of at most 19 digits.
#[inline]
fn parse_uint(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || tok.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in tok {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    Some(v)
}

impl RecordDecoder for VpcTextDecoder {
    fn push(&mut self, mut chunk: &[u8]) {
        if self.finished || chunk.is_empty() {
            return;
        }
        if !self.pending.is_empty() || self.skipping_long_line {
            match memchr::memchr(b'\n', chunk) {
                None => {
                    self.push_pending(chunk);
                    return;
                }
                Some(i) => {
                    self.push_pending(&chunk[..i]);
                    self.end_pending_line();
                    chunk = &chunk[i + 1..];
                }
            }
        }
        let start = match memchr::memrchr(b'\n', chunk) {
            Some(last) => {
                self.push_lines(&chunk[..=last]);
                last + 1
            }
            None => 0,
        };
        self.push_pending(&chunk[start..]);
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        if !self.pending.is_empty() || self.skipping_long_line {
            self.end_pending_line();
        }
        self.flush();
        self.finished = true;
    }

    fn abandon_partial(&mut self) {
        self.pending.clear();
        self.skipping_long_line = false;
        self.flush();
        self.finished = true;
    }

    fn take_batch(&mut self) -> Option<RecordBatch> {
        self.out.take_batch()
    }

    fn take_errors(&mut self) -> Vec<RecordError> {
        self.out.take_errors()
    }

    fn stats(&self) -> DecodeStats {
        self.out.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, Int64Type};
    use proptest::prelude::Strategy;
    use proptest::prop_oneof;
    use proptest::strategy::Just;

    fn decode(input: &str, format: Option<&str>) -> (Vec<RecordBatch>, Vec<RecordError>) {
        let mut d = VpcTextDecoder::new(
            ObjectContext {
                object: "s3://b/k".into(),
                account_id: Some("111122223333".into()),
                region: Some("eu-west-1".into()),
            },
            format.map(|f| Format::parse(f).unwrap()),
        );
        d.push(input.as_bytes());
        d.finish();
        let mut out = vec![];
        while let Some(b) = d.take_batch() {
            out.push(b);
        }
        (out, d.take_errors())
    }

    /// One line of a property test: a record in the plain shape or bent by one of the
    /// anomalies the fast path hands to the general one.
    fn line_strategy() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            4 => "[0-9]{1,10}",
            2 => "[a-z0-9.:-]{1,24}",
            1 => Just("-".to_string()),
            1 => "[0-9]{11,21}",
            1 => "[ -~]{0,6}",
            1 => "[\\x00-\\x1f\\x7f-\\u{3b1}]{1,3}",
            1 => "[0-9a-z]{1,3}[\\x00-\\x08\\x0b-\\x1f\\x7f-\\u{3b1}][0-9a-z]{1,3}",
        ];
        let sep = || prop_oneof![8 => Just(" "), 1 => Just("  "), 1 => Just("\t")];
        let end = || prop_oneof![6 => Just(""), 1 => Just("\r"), 1 => Just(" ")];
        // A plain record with one token replaced (and maybe another dropped) and one
        // separator changed: the fast path gets as far as that token before it has to
        // let go.
        let bent = (
            0..14usize,
            token.clone(),
            0..13usize,
            sep(),
            end(),
            proptest::option::of(0..14usize),
        )
            .prop_map(|(at, t, sep_at, sep, end, drop)| {
                let mut tokens: Vec<String> = PLAIN.split(' ').map(str::to_string).collect();
                tokens[at] = t;
                if let Some(drop) = drop.filter(|d| *d != at) {
                    tokens.remove(drop);
                }
                let mut line = String::new();
                for (i, t) in tokens.iter().enumerate() {
                    if i > 0 {
                        line.push_str(if i == sep_at + 1 { sep } else { " " });
                    }
                    line.push_str(t);
                }
                line + end
            });
        let random =
            (proptest::collection::vec((token, sep()), 12..16), end()).prop_map(|(tokens, end)| {
                let mut line = String::new();
                for (i, (t, sep)) in tokens.iter().enumerate() {
                    if i > 0 {
                        line.push_str(sep);
                    }
                    line.push_str(t);
                }
                line + end
            });
        prop_oneof![bent, random]
    }

    const PLAIN: &str = "2 123456789010 eni-0a1b2c3d4e5f60718 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 ACCEPT OK";

    fn decode_all(
        input: &[u8],
        fast_path: bool,
    ) -> (Vec<RecordBatch>, Vec<RecordError>, DecodeStats) {
        decode_chunked(input, fast_path, 97)
    }

    fn decode_chunked(
        input: &[u8],
        fast_path: bool,
        chunk: usize,
    ) -> (Vec<RecordBatch>, Vec<RecordError>, DecodeStats) {
        let mut d = VpcTextDecoder::new(ObjectContext::new("s3://b/k"), None).with_batch_rows(7);
        d.fast_path = fast_path;
        for chunk in input.chunks(chunk) {
            d.push(chunk);
        }
        d.finish();
        let mut batches = vec![];
        while let Some(b) = d.take_batch() {
            batches.push(b);
        }
        (batches, d.take_errors(), d.stats())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// The fast path decodes exactly what the general path does — values, nulls,
        /// errors and counts — whatever the lines look like.
        #[test]
        fn fast_path_agrees_with_the_general_path(
            lines in proptest::collection::vec(line_strategy(), 1..40),
            good in proptest::collection::vec(proptest::bool::ANY, 40),
        ) {
            let mut input = String::new();
            for (line, good) in lines.iter().zip(good) {
                input.push_str(if good { PLAIN } else { line });
                input.push('\n');
            }
            let general = decode_all(input.as_bytes(), false);
            // Small pieces send many lines through the pending-line buffer; the whole
            // input at once gives the fast path runs of many records.
            proptest::prop_assert_eq!(&decode_all(input.as_bytes(), true), &general);
            let whole = decode_chunked(input.as_bytes(), true, input.len());
            proptest::prop_assert_eq!(&whole, &general);
        }

        /// The same across the end of a stop-index window: plain lines first (from
        /// three quarters of a window to three windows' worth) put the generated lines
        /// at every distance from a window's end.
        #[test]
        fn fast_path_agrees_across_index_windows(
            lines in proptest::collection::vec(line_strategy(), 1..40),
            good in proptest::collection::vec(proptest::bool::ANY, 40),
            lead in (fast::WINDOW / PLAIN.len() - 40)..(3 * fast::WINDOW / PLAIN.len()),
        ) {
            let mut input = format!("{PLAIN}\n").repeat(lead);
            for (line, good) in lines.iter().zip(good) {
                input.push_str(if good { PLAIN } else { line });
                input.push('\n');
            }
            let general = decode_chunked(input.as_bytes(), false, input.len());
            let whole = decode_chunked(input.as_bytes(), true, input.len());
            proptest::prop_assert_eq!(&whole, &general);
            let chunked = decode_chunked(input.as_bytes(), true, 4093);
            proptest::prop_assert_eq!(&chunked, &general);
        }
    }

    #[test]
    fn plain_records_of_every_format_take_the_fast_path() {
        let v5 = "version srcaddr dstaddr srcport dstport protocol start end type packets bytes account-id vpc-id subnet-id instance-id interface-id region az-id sublocation-type sublocation-id action tcp-flags pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service traffic-path flow-direction log-status
5 10.0.0.10 10.0.11.21 59202 8080 6 1748861221 1748861247 IPv4 35 8748 123456789012 vpc-0a1b2c3d4e5f60718 subnet-021a2b3c4d5e6f7a8 i-00081deadbeef0008 eni-00081c0ffee00008 us-east-1 use1-az2 - - ACCEPT 3 10.0.0.10 10.0.11.21 - - - ingress OK
5 10.0.11.21 10.0.0.10 8080 59202 6 1748861221 1748861247 IPv4 21 137179 123456789012 vpc-0a1b2c3d4e5f60718 subnet-021a2b3c4d5e6f7a8 i-00081deadbeef0008 eni-00081c0ffee00008 us-east-1 use1-az2 - - ACCEPT 19 10.0.11.21 10.0.0.10 - - 1 egress OK
";
        // (Without a header the first line takes the general path: it settles the format.)
        let v2 = format!(
            "{}\n{PLAIN}\n2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n",
            DEFAULT_FORMAT.join(" ")
        );
        for input in [v5, v2.as_str()] {
            let mut d = VpcTextDecoder::new(ObjectContext::new("x"), None);
            d.push(input.as_bytes());
            d.finish();
            assert_eq!((d.stats().records, d.stats().malformed), (2, 0));
            assert_eq!(d.fast_records, 2, "{input}");
        }
    }

    #[test]
    fn lines_failing_late_cost_no_more_than_one_record_each() {
        // Every line bent at its end (CRLF, a trailing space, an out-of-range last
        // number in a custom format): the fast path must not re-fill the run's
        // columns for every later record each time.
        for (format, fields, line) in [
            (None, 14, format!("{PLAIN}\r\n")),
            (None, 14, format!("{PLAIN} \n")),
            (
                Some("${action} ${srcport}"),
                2,
                "ACCEPT 65536\n".to_string(),
            ),
        ] {
            let input = line.repeat(3000);
            let format = format.map(|f| Format::parse(f).unwrap());
            let mut d = VpcTextDecoder::new(ObjectContext::new("x"), format);
            d.push(input.as_bytes());
            d.finish();
            assert!(
                d.fast_tokens <= 3000 * fields,
                "{line:?}: {} tokens for 3000 lines",
                d.fast_tokens
            );
        }
        // Plain lines still go in long runs.
        let mut d = VpcTextDecoder::new(ObjectContext::new("x"), None);
        d.push(format!("{PLAIN}\n").repeat(3000).as_bytes());
        d.finish();
        assert_eq!(d.fast_records, 2999); // the first line settles the format
        assert_eq!(d.fast_tokens, 2999 * 14);
    }

    #[test]
    fn lines_across_index_windows() {
        let mut input = format!("{PLAIN}\n").repeat(2000);
        // A line longer than a whole window (malformed: one field too many).
        input.push_str(&format!("{PLAIN} {}\n", "x".repeat(fast::WINDOW + 10)));
        input.push_str(&format!("{PLAIN}\n").repeat(10));
        let fast = decode_chunked(input.as_bytes(), true, input.len());
        assert_eq!((fast.2.records, fast.2.malformed), (2010, 1));
        assert_eq!(fast, decode_chunked(input.as_bytes(), false, input.len()));
    }

    #[test]
    fn control_bytes_do_not_split_tokens() {
        // 13 fields, one of them holding a control byte: malformed on both paths.
        for line in [
            "2 12\u{1}34 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 ACCEPT OK\n",
            "2 12\u{3b1}34 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 ACCEPT OK\n",
        ] {
            let input = format!("{PLAIN}\n{line}{PLAIN}\n");
            for fast_path in [true, false] {
                let (_, errors, stats) = decode_all(input.as_bytes(), fast_path);
                assert_eq!((stats.records, stats.malformed), (2, 1), "{line}");
                assert!(errors[0].reason.starts_with("expected 14 fields, found 13"));
            }
        }
    }

    #[test]
    fn format_strings() {
        let f = Format::parse("${version} ${srcaddr} ${next-hop-az-id}").unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.extra_names, vec!["next_hop_az_id"]);
        assert!(Format::parse("${version").is_err());
        assert!(Format::parse("${version} ${version}").is_err());
        assert!(Format::parse("").is_err());
        assert!(Format::parse("$${version} $${srcaddr}").is_ok());
    }

    #[test]
    fn header_detection() {
        assert!(Format::from_header(b"version account-id interface-id").is_some());
        assert!(Format::from_header(b"i-0123 eni-1111").is_none());
        assert!(Format::from_header(b"2 123 eni-1 1.2.3.4").is_none());
    }

    #[test]
    fn table_of_bad_lines() {
        let good = "2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 ACCEPT OK";
        let cases = [
            (
                "2 123456789010 eni-1 10.0.0.1",
                "expected 14 fields, found 4",
            ),
            (
                "2 123456789010 eni-1 10.0.0.1 10.0.0.2 http 49152 6 10 840 1418530010 1418530070 ACCEPT OK",
                "field `srcport`: `http` is not a number",
            ),
            (
                "2 123456789010 eni-1 10.0.0.1 10.0.0.2 70000 49152 6 10 840 1418530010 1418530070 ACCEPT OK",
                "field `srcport`: 70000 is out of range (0..=65535)",
            ),
            (
                "2 123456789010 eni-1 10.0.0.1 10.0.0.2 1 2 6 10 99999999999999999999 1 2 ACCEPT OK",
                "field `bytes`: `99999999999999999999` is not a number",
            ),
            (
                "2 123456789010 eni-\u{1}\u{7f} 10.0.0.1 10.0.0.2 1 2 6 10 9 1 2 ACCEPT OK extra",
                "expected 14 fields, found 15",
            ),
        ];
        for (bad, reason) in cases {
            let input = format!("{good}\n{bad}\n{good}\n");
            let (batches, errors) = decode(&input, None);
            assert_eq!(
                batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                2,
                "{bad}"
            );
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(errors[0].line, 2);
            assert!(
                errors[0].reason.starts_with(reason),
                "{} vs {reason}",
                errors[0].reason
            );
        }
    }

    #[test]
    fn binary_junk_is_malformed_and_neighbours_survive() {
        let good = b"2 123456789010 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1418530010 1418530070 ACCEPT OK\n";
        let mut input = good.to_vec();
        input.extend_from_slice(b"\xff\xfe\x00 1 2 3 4 5 6 7 8 9 10 11 12 13\n");
        input.extend_from_slice(good);
        let mut d = VpcTextDecoder::new(ObjectContext::new("x"), None);
        d.push(&input);
        d.finish();
        let b = d.take_batch().unwrap();
        assert_eq!(b.num_rows(), 2);
        let errors = d.take_errors();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].reason.contains("invalid UTF-8"), "{errors:?}");
        assert!(errors[0].reason.contains("\\xff"));
    }

    #[test]
    fn nodata_keeps_status_and_nulls() {
        let (b, e) = decode(
            "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA\n",
            None,
        );
        assert!(e.is_empty());
        let b = &b[0];
        let s = b.schema();
        let status = b.column(s.index_of("log_status").unwrap()).as_string_view();
        assert_eq!(status.value(0), "NODATA");
        assert!(b.column(s.index_of("srcaddr").unwrap()).is_null(0));
        assert!(b.column(s.index_of("bytes").unwrap()).is_null(0));
        let start = b
            .column(s.index_of("start").unwrap())
            .as_primitive::<Int64Type>();
        assert_eq!(start.value(0), 1431280876);
        // region is not in the v2 format: it comes from the object key.
        let region = b.column(s.index_of("region").unwrap()).as_string_view();
        assert_eq!(region.value(0), "eu-west-1");
        assert_eq!(
            b.column(s.index_of("source_object").unwrap())
                .as_string_view()
                .value(0),
            "s3://b/k"
        );
    }

    #[test]
    fn header_custom_order_and_unknown_fields() {
        let input =
            "version srcport dstaddr next-hop-az-id account-id\n5 443 10.0.0.1 use1-az2 -\n";
        let (b, e) = decode(input, None);
        assert!(e.is_empty(), "{e:?}");
        let b = &b[0];
        let s = b.schema();
        assert_eq!(
            b.column(s.index_of("srcport").unwrap())
                .as_primitive::<Int32Type>()
                .value(0),
            443
        );
        // `-` account falls back to the key's.
        assert_eq!(
            b.column(s.index_of("account_id").unwrap())
                .as_string_view()
                .value(0),
            "111122223333"
        );
        let extra = b.column(s.index_of("extra").unwrap()).as_map();
        let entries = extra.value(0);
        assert_eq!(
            entries.column(0).as_string::<i32>().value(0),
            "next_hop_az_id"
        );
        assert_eq!(entries.column(1).as_string::<i32>().value(0), "use1-az2");
    }

    #[test]
    fn overlong_line_is_reported() {
        let good = "2 1 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT OK\n";
        let mut input = good.to_string();
        input.push_str(&"x".repeat(MAX_LINE_BYTES + 10));
        input.push('\n');
        input.push_str(good);
        for chunk in [usize::MAX, 4096] {
            let mut d = VpcTextDecoder::new(ObjectContext::new("x"), None);
            for c in input.as_bytes().chunks(chunk.min(input.len())) {
                d.push(c);
            }
            d.finish();
            assert_eq!(
                d.stats(),
                DecodeStats {
                    records: 2,
                    malformed: 1
                }
            );
            assert_eq!(d.take_errors()[0].line, 2);
        }
    }
}
