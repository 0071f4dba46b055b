//! Findings as the UI shows them: read from ASFF JSON lines (what `scan --out` writes),
//! every string made inert (log content is attacker-controlled).

use serde_json::Value;

use crate::text::{cell, inert_block};

/// One finding, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingView {
    pub id: String,
    pub detector: String,
    /// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `INFORMATIONAL`.
    pub severity: String,
    pub score: i64,
    /// The subject's kind (`eni`, `ip`, `fingerprint`, ...) and value.
    pub entity_kind: String,
    pub entity: String,
    /// Unix seconds.
    pub window_start: i64,
    pub window_end: i64,
    pub title: String,
    pub description: String,
    pub recommendation: String,
    pub account: String,
    pub region: String,
    /// Evidence table: column names and rows.
    pub evidence_columns: Vec<String>,
    pub evidence_rows: Vec<Vec<String>>,
    /// `(measure, value with unit)`: what was observed, and the baseline it is held against.
    pub observed: Vec<(String, String)>,
    pub baseline: Vec<(String, String)>,
    /// Resource ids (ARNs) the finding names.
    pub resources: Vec<String>,
    /// Every subject as `(kind, value)`, **raw** (not made inert): only for building
    /// pivot queries (as SQL literals), never drawn.
    pub subjects: Vec<(String, String)>,
}

fn secs(v: &Value, key: &str) -> i64 {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or(0, |t| t.timestamp())
}

fn text(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(cell)
        .unwrap_or_default()
}

/// Severity order for sorting (higher is worse).
pub fn severity_rank(label: &str) -> u8 {
    match label {
        "CRITICAL" => 5,
        "HIGH" => 4,
        "MEDIUM" => 3,
        "LOW" => 2,
        "INFORMATIONAL" => 1,
        _ => 0,
    }
}

impl FindingView {
    /// Reads one ASFF finding; `None` when it has no `Id` or `Title`.
    pub fn from_asff(v: &Value) -> Option<Self> {
        let id = v.get("Id")?.as_str()?;
        v.get("Title")?.as_str()?;
        let fields = v.get("ProductFields").and_then(Value::as_object);
        let field = |k: &str| {
            fields
                .and_then(|f| f.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (entity_kind, entity) = field("flowlens/subject")
            .split_once('/')
            .map(|(k, e)| (cell(k), cell(e)))
            .unwrap_or_default();
        let measures = |prefix: &str| -> Vec<(String, String)> {
            fields
                .map(|f| {
                    f.iter()
                        .filter_map(|(k, v)| {
                            let name = k.strip_prefix(prefix)?;
                            Some((cell(name), cell(v.as_str()?)))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let raw_subject = |s: &str| {
            s.split_once('/')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        };
        let mut subjects: Vec<(String, String)> =
            serde_json::from_str::<Vec<String>>(field("flowlens/subjects"))
                .unwrap_or_default()
                .iter()
                .filter_map(|s| raw_subject(s))
                .collect();
        if subjects.is_empty() {
            subjects.extend(raw_subject(field("flowlens/subject")));
        }
        let evidence: Value =
            serde_json::from_str(field("flowlens/evidence")).unwrap_or(Value::Null);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| match x {
                            Value::String(s) => cell(s),
                            other => cell(&other.to_string()),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let detector = match field("flowlens/detector") {
            "" => v
                .get("GeneratorId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim_start_matches("flowlens/")
                .to_string(),
            d => d.to_string(),
        };
        let account = match field("flowlens/log_account") {
            "" => text(v, "/AwsAccountId"),
            a => cell(a),
        };
        Some(FindingView {
            id: cell(id),
            detector: cell(&detector),
            severity: text(v, "/Severity/Label"),
            score: v
                .pointer("/Severity/Normalized")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            entity_kind,
            entity,
            window_start: secs(v, "FirstObservedAt"),
            window_end: secs(v, "LastObservedAt"),
            title: text(v, "/Title"),
            description: v
                .get("Description")
                .and_then(Value::as_str)
                .map(inert_block)
                .unwrap_or_default(),
            recommendation: v
                .pointer("/Remediation/Recommendation/Text")
                .and_then(Value::as_str)
                .map(inert_block)
                .unwrap_or_default(),
            account,
            region: text(v, "/Region"),
            evidence_columns: strings(evidence.get("columns").unwrap_or(&Value::Null)),
            evidence_rows: evidence
                .get("rows")
                .and_then(Value::as_array)
                .map(|rows| rows.iter().map(strings).collect())
                .unwrap_or_default(),
            observed: measures("flowlens/observed/"),
            baseline: measures("flowlens/baseline/"),
            resources: v
                .get("Resources")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|x| x.get("Id").and_then(Value::as_str).map(cell))
                        .collect()
                })
                .unwrap_or_default(),
            subjects,
        })
    }

    /// The raw subject values of one kind (`ip`, `eni`, `fingerprint`, ...).
    pub fn subjects_of(&self, kind: &str) -> Vec<&str> {
        self.subjects
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What loading a findings file gave: the findings, and the lines that were not findings.
#[derive(Debug, Default)]
pub struct Loaded {
    pub findings: Vec<FindingView>,
    /// `line N: reason`, for the status bar.
    pub problems: Vec<String>,
}

/// Parses ASFF JSON lines; bad lines are reported by number and skipped.
pub fn parse_lines(text: &str) -> Loaded {
    let mut out = Loaded::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line)
            .ok()
            .as_ref()
            .and_then(FindingView::from_asff)
        {
            Some(f) => out.findings.push(f),
            None => out
                .problems
                .push(format!("line {}: not an ASFF finding", i + 1)),
        }
    }
    out
}
