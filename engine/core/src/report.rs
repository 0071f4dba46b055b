//! The run report: what `scan --report FILE` writes. Automation depends on these keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// At most this many errors are listed in a report (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 1000;

/// One reported problem: a malformed record (with its line) or an object that could
/// not be read or decoded completely (no line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedError {
    pub object: String,
    pub line: Option<u64>,
    pub reason: String,
}

/// Totals of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Objects listed under the sources.
    pub objects_listed: u64,
    /// Objects opened and read (including those that failed part-way).
    pub objects_read: u64,
    /// Objects not read: outside `--since/--until` by their key, or already processed.
    pub objects_skipped: u64,
    /// Objects that could not be read or decoded completely (also listed in `errors`).
    pub objects_failed: u64,
    /// Raw (compressed) bytes read.
    pub bytes_read: u64,
    /// VPC Flow Log records decoded (NODATA/SKIPDATA lines included).
    pub flow_records: u64,
    /// AWS WAF log records decoded.
    pub waf_records: u64,
    /// Records skipped as malformed.
    pub malformed_records: u64,
    /// Records decoded but outside `--since/--until`, dropped.
    pub records_outside_window: u64,
    /// The first [`MAX_REPORTED_ERRORS`] problems.
    pub errors: Vec<ReportedError>,
    /// Whether `errors` was cut at [`MAX_REPORTED_ERRORS`].
    pub errors_truncated: bool,
    /// Findings emitted by the detectors.
    pub findings: u64,
    pub duration_secs: f64,
    /// CPU seconds spent decoding objects (inflating, parsing, building batches; not
    /// reading them), summed over the decoding tasks.
    #[serde(default)]
    pub decode_cpu_secs: f64,
    /// CPU seconds of the detectors, by part: `prepare` (the work they share:
    /// preparing batches, coding addresses, learning the inventory) and each enabled
    /// detector's id. Empty where no detectors ran (`flowlens archive`); only
    /// `prepare` (near zero) where every detector is disabled.
    #[serde(default)]
    pub detector_cpu_secs: BTreeMap<String, f64>,
}

impl ScanReport {
    pub(crate) fn push_error(&mut self, e: ReportedError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(e);
        } else {
            self.errors_truncated = true;
        }
    }

    /// Whether anything was malformed or failed (what `--strict` turns into a failure).
    pub fn has_problems(&self) -> bool {
        self.malformed_records > 0 || self.objects_failed > 0
    }
}
