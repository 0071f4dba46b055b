//! AWS WAF logs: JSON objects, one per line (S3, CloudWatch) or concatenated with no
//! separator (Firehose), also pretty-printed (as in the AWS documentation).
//!
//! Records are framed by a string-aware brace scanner, then parsed one by one, so a
//! broken record costs only itself. Resynchronisation rules:
//! - a raw newline inside a JSON string ends a broken record (JSON strings cannot hold
//!   one, so the line was cut);
//! - while a record is open, a line that starts with `{` starts the next record (a cut
//!   record followed by a good one; pretty-printed records indent their inner braces);
//! - bytes outside any object are skipped to the end of their line and reported.

mod columns;
mod record;

use arrow::array::RecordBatch;

use super::{DecodeOutput, DecodeStats, ObjectContext, RecordDecoder, quote};
use crate::error::RecordError;
use columns::WafColumns;
use record::RawWaf;

/// Largest record accepted; a larger one is reported and skipped.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// Decodes AWS WAF JSON logs (see the module docs).
pub struct WafJsonDecoder {
    ctx: ObjectContext,
    buf: Vec<u8>,
    /// Scan position in `buf`.
    pos: usize,
    /// Start of the open record in `buf`.
    obj_start: Option<usize>,
    obj_line: u64,
    depth: u32,
    in_string: bool,
    /// Skipping the rest of an oversized record.
    skipping: bool,
    /// 1-based line at `pos`.
    line: u64,
    columns: WafColumns,
    batch_rows: usize,
    out: DecodeOutput,
    finished: bool,
}

impl WafJsonDecoder {
    pub fn new(ctx: ObjectContext) -> Self {
        WafJsonDecoder {
            columns: WafColumns::new(&ctx),
            ctx,
            buf: Vec::new(),
            pos: 0,
            obj_start: None,
            obj_line: 0,
            depth: 0,
            in_string: false,
            skipping: false,
            line: 1,
            batch_rows: super::WAF_BATCH_ROWS,
            out: DecodeOutput::default(),
            finished: false,
        }
    }

    /// Sets the number of rows per batch.
    pub fn with_batch_rows(mut self, rows: usize) -> Self {
        self.batch_rows = rows.max(1);
        self
    }

    fn close_broken(&mut self, reason: impl FnOnce() -> String) {
        self.obj_start = None;
        self.in_string = false;
        self.depth = 0;
        let line = self.obj_line;
        self.out.errors.record(line, reason);
    }

    fn scan(&mut self, at_eof: bool) {
        let buf = std::mem::take(&mut self.buf);
        let len = buf.len();
        let mut i = self.pos;
        'scan: while i < len {
            match self.obj_start {
                None if self.skipping => {
                    // Inside an oversized record: skip to the next line starting a record.
                    match memchr::memmem::find(&buf[i..], b"\n{") {
                        Some(off) => {
                            i += off;
                            self.skipping = false;
                        }
                        None if at_eof => i = len,
                        None => {
                            i = len.saturating_sub(1).max(i);
                            break 'scan;
                        }
                    }
                }
                None => {
                    let b = buf[i];
                    if b == b'\n' {
                        self.line += 1;
                        i += 1;
                    } else if b.is_ascii_whitespace() {
                        i += 1;
                    } else if b == b'{' {
                        self.obj_start = Some(i);
                        self.obj_line = self.line;
                        self.depth = 1;
                        self.in_string = false;
                        i += 1;
                    } else {
                        let end = match memchr::memchr(b'\n', &buf[i..]) {
                            Some(off) => i + off,
                            None if at_eof => len,
                            None => break 'scan,
                        };
                        let line = self.line;
                        let junk = &buf[i..end];
                        self.out
                            .errors
                            .record(line, || format!("not a JSON object: {}", quote(junk)));
                        i = end;
                    }
                }
                Some(start) => {
                    if i - start > MAX_RECORD_BYTES {
                        let limit = MAX_RECORD_BYTES;
                        self.close_broken(|| format!("record larger than {limit} bytes skipped"));
                        self.skipping = true;
                        continue;
                    }
                    if self.in_string {
                        match memchr::memchr3(b'"', b'\\', b'\n', &buf[i..]) {
                            None => {
                                i = len;
                            }
                            Some(off) => {
                                i += off;
                                match buf[i] {
                                    b'"' => {
                                        self.in_string = false;
                                        i += 1;
                                    }
                                    b'\\' => {
                                        if i + 1 < len {
                                            i += 2;
                                        } else if at_eof {
                                            i = len;
                                        } else {
                                            break 'scan;
                                        }
                                    }
                                    _ => {
                                        // Newline inside a string: the record was cut.
                                        self.close_broken(|| {
                                            "broken JSON record: line ends inside a string".into()
                                        });
                                    }
                                }
                            }
                        }
                        continue;
                    }
                    match buf[i] {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                self.obj_start = None;
                                self.parse_record(&buf[start..=i]);
                            }
                        }
                        b'\n' => {
                            if i + 1 == len && !at_eof {
                                break 'scan;
                            }
                            self.line += 1;
                            if buf.get(i + 1) == Some(&b'{') {
                                let next = self.line;
                                self.close_broken(|| {
                                    format!("incomplete JSON record (the next record starts on line {next})")
                                });
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
        }
        if at_eof && self.obj_start.is_some() {
            self.close_broken(|| "incomplete JSON record at end of object".into());
        }
        self.buf = buf;
        // Keep only the open record (or the unscanned tail).
        let keep_from = self.obj_start.unwrap_or(i).min(i);
        self.buf.drain(..keep_from);
        self.pos = i - keep_from;
        if let Some(s) = &mut self.obj_start {
            *s -= keep_from;
        }
    }

    fn parse_record(&mut self, json: &[u8]) {
        let line = self.obj_line;
        match serde_json::from_slice::<RawWaf<'_>>(json) {
            Ok(rec) => match rec.check() {
                Ok(()) => {
                    self.columns.append(&rec, &self.ctx);
                    self.out.records += 1;
                    if self.columns.rows() >= self.batch_rows {
                        self.flush();
                    }
                }
                Err(missing) => self.out.errors.record(line, || {
                    format!("not a WAF log record: missing `{missing}`")
                }),
            },
            Err(e) => self.out.errors.record(line, || {
                let msg = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
                if e.line() > 1 {
                    format!(
                        "invalid WAF JSON record: {msg} (line {} of the record, column {})",
                        e.line(),
                        e.column()
                    )
                } else {
                    format!("invalid WAF JSON record: {msg} (column {})", e.column())
                }
            }),
        }
    }

    fn flush(&mut self) {
        if self.columns.rows() == 0 {
            return;
        }
        match self.columns.finish(&self.ctx) {
            Ok(batch) => self.out.ready.push_back(batch),
            Err(e) => {
                let line = self.line;
                self.out
                    .errors
                    .record(line, || format!("internal error: {e}"));
            }
        }
    }
}

impl RecordDecoder for WafJsonDecoder {
    fn push(&mut self, chunk: &[u8]) {
        if self.finished || chunk.is_empty() {
            return;
        }
        self.buf.extend_from_slice(chunk);
        self.scan(false);
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.scan(true);
        self.flush();
        self.finished = true;
    }

    fn abandon_partial(&mut self) {
        self.obj_start = None;
        self.buf.clear();
        self.pos = 0;
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

    const REC: &str = r#"{"timestamp":1576280412771,"formatVersion":1,"webaclId":"arn:aws:wafv2:ap-southeast-2:111122223333:regional/webacl/STMTest/1EXAMPLE","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"ALLOW","httpSourceName":"ALB","httpSourceId":"x","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"httpRequest":{"clientIp":"1.2.3.4","country":"AU","headers":[{"name":"Host","value":"a"},{"name":"user-agent","value":"curl/8"}],"uri":"/","args":"","httpVersion":"HTTP/1.1","httpMethod":"GET","requestId":"rid"},"labels":[{"name":"l1"}]}"#;

    fn run(input: &[u8], chunk: usize) -> (u64, Vec<RecordError>, Vec<RecordBatch>) {
        let mut d = WafJsonDecoder::new(ObjectContext::new("obj")).with_batch_rows(2);
        for c in input.chunks(chunk.max(1)) {
            d.push(c);
        }
        d.finish();
        let mut batches = vec![];
        while let Some(b) = d.take_batch() {
            batches.push(b);
        }
        (d.stats().records, d.take_errors(), batches)
    }

    #[test]
    fn ndjson_and_concatenated() {
        let nd = format!("{REC}\n{REC}\n{REC}\n");
        let cat = format!("{REC}{REC}{REC}");
        for input in [nd, cat] {
            for chunk in [1, 7, 100, usize::MAX / 2] {
                let (n, e, b) = run(input.as_bytes(), chunk);
                assert_eq!(n, 3);
                assert!(e.is_empty(), "{e:?}");
                assert_eq!(b.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
            }
        }
    }

    #[test]
    fn resync_table() {
        let cut = &REC[..REC.find(r#","httpRequest""#).unwrap()];
        let cases: Vec<(String, u64, u64, &str)> = vec![
            (
                format!("{REC}\n{cut}\n{REC}\n"),
                2,
                2,
                "incomplete JSON record",
            ),
            (
                format!("{REC}\n{}\n{REC}\n", &REC[..40]),
                2,
                2,
                "broken JSON record: line ends inside a string",
            ),
            (
                format!("{REC}\ngarbage here\n{REC}\n"),
                2,
                2,
                "not a JSON object: garbage here",
            ),
            (
                format!("{REC}\n[1,2,3]\n{REC}\n"),
                2,
                2,
                "not a JSON object",
            ),
            (
                format!("{REC}\n{{\"foo\":1}}\n{REC}\n"),
                2,
                2,
                "not a WAF log record: missing `timestamp`",
            ),
            (
                format!("{REC}\n{{\"timestamp\":\"soon\",\"httpRequest\":{{}}}}\n{REC}\n"),
                2,
                2,
                "invalid WAF JSON record",
            ),
            (
                format!("{REC}\n{cut}"),
                1,
                2,
                "incomplete JSON record at end",
            ),
        ];
        for (input, records, line, reason) in cases {
            for chunk in [1, 13, input.len()] {
                let (n, e, _) = run(input.as_bytes(), chunk);
                assert_eq!(n, records, "{input} / {chunk}");
                assert_eq!(e.len(), 1, "{input} / {chunk}: {e:?}");
                assert_eq!(e[0].line, line, "{input}");
                assert!(
                    e[0].reason.starts_with(reason),
                    "{} vs {reason}",
                    e[0].reason
                );
            }
        }
    }

    #[test]
    fn flattened_columns() {
        let (_, _, b) = run(REC.as_bytes(), 1000);
        let b = &b[0];
        let s = b.schema();
        let get = |name: &str| b.column(s.index_of(name).unwrap()).clone();
        assert_eq!(get("client_ip").as_string_view().value(0), "1.2.3.4");
        assert_eq!(get("user_agent").as_string_view().value(0), "curl/8");
        assert_eq!(get("webacl_name").as_string_view().value(0), "STMTest");
        assert_eq!(get("account_id").as_string_view().value(0), "111122223333");
        assert_eq!(get("region").as_string_view().value(0), "ap-southeast-2");
        assert!(get("referer").is_null(0));
        let labels = get("labels");
        let labels = labels.as_list::<i32>().value(0);
        assert_eq!(labels.as_string_view().value(0), "l1");
    }

    #[test]
    fn very_large_field() {
        let uri = "/".to_string() + &"a".repeat(5 << 20);
        let rec = REC.replace(r#""uri":"/""#, &format!(r#""uri":"{uri}""#));
        let (n, e, b) = run(rec.as_bytes(), 1 << 16);
        assert_eq!((n, e.len()), (1, 0));
        let s = b[0].schema();
        assert_eq!(
            b[0].column(s.index_of("uri").unwrap())
                .as_string_view()
                .value(0)
                .len(),
            uri.len()
        );
    }
}
