//! The `findings` table: ASFF findings (as `scan --out` writes them) archived one file
//! per day of their window, one row per finding id (the latest `UpdatedAt` wins), so
//! archiving the same findings again, or updates of them, never duplicates a finding.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringViewArray, TimestampMillisecondArray,
};
use chrono::DateTime;
use flowlens_model::archive::{FINDINGS_TABLE, col, findings_schema, part};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::report::ReportedError;

use super::store::ArchiveStore;

/// The file of one day's findings.
pub fn day_file(date: &str) -> String {
    format!(
        "{}={FINDINGS_TABLE}/{}={date}/findings.parquet",
        part::KIND,
        part::DATE
    )
}

fn millis(v: &Value, key: &str) -> Option<i64> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_millis())
}

/// The subject, `(kind, value)`, from `flowlens/subject` (`eni/eni-0abc`).
fn subject(v: &Value) -> Option<(&str, &str)> {
    product_field(v, "flowlens/subject").and_then(|s| s.split_once('/'))
}

fn product_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("ProductFields")
        .and_then(|p| p.get(key))
        .and_then(Value::as_str)
}

/// Checks that `v` is an ASFF finding this table can hold (an `Id`, a `Title`, a
/// severity label and a `FirstObservedAt`), and returns its id and window date.
///
/// # Errors
/// What is missing.
pub fn key(v: &Value) -> Result<(String, String), String> {
    let id = v
        .get("Id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("no Id")?;
    v.get("Title").and_then(Value::as_str).ok_or("no Title")?;
    v.pointer("/Severity/Label")
        .and_then(Value::as_str)
        .ok_or("no Severity.Label")?;
    let start = millis(v, "FirstObservedAt").ok_or("no FirstObservedAt timestamp")?;
    let date = DateTime::from_timestamp_millis(start)
        .ok_or("FirstObservedAt out of range")?
        .format("%Y-%m-%d")
        .to_string();
    Ok((id.to_string(), date))
}

/// Parses ASFF JSON lines; bad lines are reported (object and line) and skipped.
pub fn parse_lines(object: &str, text: &str, errors: &mut Vec<ReportedError>) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let problem = match serde_json::from_str::<Value>(line) {
            Ok(v) => match key(&v) {
                Ok(_) => {
                    out.push(v);
                    continue;
                }
                Err(why) => format!("not a flowlens ASFF finding: {why}"),
            },
            Err(e) => format!("not JSON: {e}"),
        };
        errors.push(ReportedError {
            object: object.to_string(),
            line: Some(i as u64 + 1),
            reason: problem,
        });
    }
    out
}

/// The `findings` rows of `findings` (in the given order).
///
/// # Errors
/// Never for findings that passed [`key`]; an Arrow error otherwise.
pub fn to_batch(findings: &[Value]) -> Result<RecordBatch> {
    let s = |f: &dyn Fn(&Value) -> Option<String>| -> ArrayRef {
        Arc::new(findings.iter().map(f).collect::<StringViewArray>())
    };
    let str_at =
        |p: &'static str| move |v: &Value| v.pointer(p).and_then(Value::as_str).map(String::from);
    let secs = |key: &'static str| {
        findings
            .iter()
            .map(|v| millis(v, key).map(|m| m.div_euclid(1000)))
            .collect::<Int64Array>()
    };
    let ts = |key: &'static str| {
        findings
            .iter()
            .map(|v| millis(v, key))
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC")
    };
    let columns: Vec<ArrayRef> = vec![
        s(&str_at("/Id")),
        s(&|v| {
            product_field(v, "flowlens/detector")
                .map(String::from)
                .or_else(|| {
                    v.get("GeneratorId")
                        .and_then(Value::as_str)
                        .map(|g| g.trim_start_matches("flowlens/").to_string())
                })
                .or(Some(String::new()))
        }),
        s(&str_at("/Severity/Label")),
        Arc::new(
            findings
                .iter()
                .map(|v| {
                    v.pointer("/Severity/Normalized")
                        .and_then(Value::as_i64)
                        .map_or(0, |n| n.clamp(0, 100) as i32)
                })
                .collect::<Int32Array>(),
        ),
        Arc::new(
            findings
                .iter()
                .map(|v| {
                    v.get("Confidence")
                        .and_then(Value::as_i64)
                        .map(|n| n as i32)
                })
                .collect::<Int32Array>(),
        ),
        s(&str_at("/Title")),
        s(&str_at("/Description")),
        s(&str_at("/Remediation/Recommendation/Text")),
        Arc::new(secs("FirstObservedAt")),
        Arc::new(secs("LastObservedAt")),
        Arc::new(ts("CreatedAt")),
        Arc::new(ts("UpdatedAt")),
        s(&|v| {
            product_field(v, "flowlens/log_account")
                .or_else(|| v.get("AwsAccountId").and_then(Value::as_str))
                .map(String::from)
        }),
        s(&str_at("/Region")),
        s(&|v| subject(v).map(|(k, _)| k.to_string())),
        s(&|v| subject(v).map(|(_, e)| e.to_string())),
        s(&str_at("/Resources/0/Type")),
        s(&str_at("/Resources/0/Id")),
        s(&|v| Some(v.to_string())),
    ];
    Ok(RecordBatch::try_new(findings_schema(), columns)?)
}

/// What archiving findings did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FindingsStats {
    /// Findings not in the archive before.
    pub added: u64,
    /// Findings replaced by a later update (same id, later `UpdatedAt`).
    pub updated: u64,
    /// Findings already archived as they are (or older than the archived version).
    pub unchanged: u64,
    pub files_written: u64,
}

fn read_day(store: &ArchiveStore, rel: &str) -> Result<Vec<Value>> {
    let Some(bytes) = store.get(rel)? else {
        return Ok(Vec::new());
    };
    let bad = |reason: String| Error::Object {
        object: store.uri(rel),
        reason,
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .and_then(|b| b.build())
    .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let idx = batch.schema().index_of(col::ASFF)?;
        let asff = arrow::compute::cast(batch.column(idx), &arrow::datatypes::DataType::Utf8)?;
        for s in arrow::array::AsArray::as_string::<i32>(&asff)
            .iter()
            .flatten()
        {
            out.push(serde_json::from_str(s).map_err(|e| bad(e.to_string()))?);
        }
    }
    Ok(out)
}

/// Merges `findings` into the archive's `findings` table: per id, the version with the
/// latest `UpdatedAt` is kept; a day's file is rewritten only when it changes.
///
/// # Errors
/// Reading or writing a day's file failed.
pub fn archive(store: &ArchiveStore, findings: Vec<Value>) -> Result<FindingsStats> {
    let mut by_day: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for v in findings {
        if let Ok((_, date)) = key(&v) {
            by_day.entry(date).or_default().push(v);
        }
    }
    let mut stats = FindingsStats::default();
    for (date, new) in by_day {
        let rel = day_file(&date);
        let mut rows: BTreeMap<String, Value> = BTreeMap::new();
        for v in read_day(store, &rel)? {
            if let Ok((id, _)) = key(&v) {
                rows.insert(id, v);
            }
        }
        let mut changed = false;
        for v in new {
            let (id, _) = key(&v).expect("checked");
            match rows.get(&id) {
                None => {
                    stats.added += 1;
                    changed = true;
                    rows.insert(id, v);
                }
                Some(old) if old == &v => stats.unchanged += 1,
                Some(old) if millis(&v, "UpdatedAt") > millis(old, "UpdatedAt") => {
                    stats.updated += 1;
                    changed = true;
                    rows.insert(id, v);
                }
                Some(_) => stats.unchanged += 1,
            }
        }
        if changed {
            let mut values: Vec<Value> = rows.into_values().collect();
            values.sort_by_key(|v| {
                (
                    millis(v, "FirstObservedAt"),
                    v.get("Id").map(Value::to_string),
                )
            });
            let batch = to_batch(&values)?;
            let bytes = super::write::encode(None, &batch, &store.uri(&rel))?;
            store.put(&rel, bytes)?;
            stats.files_written += 1;
        }
    }
    Ok(stats)
}
