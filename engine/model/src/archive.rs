//! The archive's layout and the `findings` table: what `flowlens archive` writes and
//! `flowlens sql` reads.
//!
//! ```text
//! <root>/kind=flows/account=123456789012/aws_region=us-east-1/date=2025-06-02/hour=10/<object>.parquet
//! <root>/kind=waf/account=.../aws_region=.../date=.../hour=.../<object>.parquet
//! <root>/kind=findings/date=2025-06-02/findings.parquet
//! <root>/_flowlens_archive.json            (manifest: which objects are archived)
//! ```
//!
//! Partition keys are hive-style, so Athena, Trino and Spark read a table's folder
//! (`<root>/kind=flows/`) as it is. The region partition is `aws_region` because the
//! flow and WAF records already have a `region` column (engines refuse a partition
//! column that shadows a file column).

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Partition keys of the log tables, in path order.
pub mod part {
    pub const KIND: &str = "kind";
    pub const ACCOUNT: &str = "account";
    pub const AWS_REGION: &str = "aws_region";
    pub const DATE: &str = "date";
    pub const HOUR: &str = "hour";
    /// The partition keys below `kind=` of the `flows` and `waf` tables.
    pub const LOG_KEYS: [&str; 4] = [ACCOUNT, AWS_REGION, DATE, HOUR];
    /// The partition keys below `kind=findings`.
    pub const FINDING_KEYS: [&str; 1] = [DATE];
}

/// The table name of the findings archive.
pub const FINDINGS_TABLE: &str = "findings";
/// The manifest file at the archive root.
pub const MANIFEST_FILE: &str = "_flowlens_archive.json";
/// The value of a partition key that the records do not give (or give in a form that
/// is not safe in a path).
pub const UNKNOWN: &str = "unknown";

/// Column names of the `findings` table.
pub mod col {
    pub const ID: &str = "id";
    pub const DETECTOR: &str = "detector";
    /// `INFORMATIONAL`, `LOW`, `MEDIUM`, `HIGH`, `CRITICAL`.
    pub const SEVERITY: &str = "severity";
    /// 0–100 (ASFF `Severity.Normalized`).
    pub const SEVERITY_SCORE: &str = "severity_score";
    pub const CONFIDENCE: &str = "confidence";
    pub const TITLE: &str = "title";
    pub const DESCRIPTION: &str = "description";
    pub const RECOMMENDATION: &str = "recommendation";
    /// The detector window, unix seconds (compare with `flows.start`).
    pub const WINDOW_START: &str = "window_start";
    pub const WINDOW_END: &str = "window_end";
    pub const CREATED_AT: &str = "created_at";
    pub const UPDATED_AT: &str = "updated_at";
    /// The account the logs came from.
    pub const ACCOUNT_ID: &str = "account_id";
    pub const REGION: &str = "region";
    /// The finding's subject: its entity kind (`eni`, `instance`, `ip`, ...) and value.
    pub const ENTITY_KIND: &str = "entity_kind";
    pub const ENTITY: &str = "entity";
    /// The first resource's ASFF type and id.
    pub const RESOURCE_TYPE: &str = "resource_type";
    pub const RESOURCE_ID: &str = "resource_id";
    /// The whole ASFF finding, as JSON.
    pub const ASFF: &str = "asff";
}

static FINDINGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let s = |n: &str, nullable: bool| Field::new(n, DataType::Utf8View, nullable);
    let ts = |n: &str| {
        Field::new(
            n,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        )
    };
    Arc::new(Schema::new(vec![
        s(col::ID, false),
        s(col::DETECTOR, false),
        s(col::SEVERITY, false),
        Field::new(col::SEVERITY_SCORE, DataType::Int32, false),
        Field::new(col::CONFIDENCE, DataType::Int32, true),
        s(col::TITLE, false),
        s(col::DESCRIPTION, true),
        s(col::RECOMMENDATION, true),
        Field::new(col::WINDOW_START, DataType::Int64, true),
        Field::new(col::WINDOW_END, DataType::Int64, true),
        ts(col::CREATED_AT),
        ts(col::UPDATED_AT),
        s(col::ACCOUNT_ID, true),
        s(col::REGION, true),
        s(col::ENTITY_KIND, true),
        s(col::ENTITY, true),
        s(col::RESOURCE_TYPE, true),
        s(col::RESOURCE_ID, true),
        s(col::ASFF, false),
    ]))
});

/// The `findings` table schema (partitioned by `date` of `window_start`).
pub fn findings_schema() -> SchemaRef {
    FINDINGS.clone()
}

/// Whether `v` may be written as a partition value as it is: 1–64 characters of
/// `[A-Za-z0-9._-]`, not starting with a dot. Anything else (attacker-controlled log
/// content such as `../x`) is written as [`UNKNOWN`].
pub fn safe_partition_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_path_safe() {
        for ok in ["123456789012", "us-east-1", "2025-06-02", "07"] {
            assert!(safe_partition_value(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "a=b",
            "x\u{1b}[31m",
            ".hidden",
            "a b",
        ] {
            assert!(!safe_partition_value(bad), "{bad:?}");
        }
        assert!(!safe_partition_value(&"9".repeat(65)));
    }

    #[test]
    fn findings_schema_has_unique_names() {
        let s = findings_schema();
        let mut names: Vec<_> = s.fields().iter().map(|f| f.name().clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), s.fields().len());
    }
}
