//! The leaf of the flowlens workspace: the Arrow schemas every other crate reads and
//! writes, with their column-name constants.
//!
//! One owner per schema: [`flows`] for VPC Flow Logs, [`waf`] for AWS WAF logs.
//! Strings are `Utf8View`, which polars and DataFusion take without copying.

pub mod archive;
pub mod finding;
pub mod flows;
pub mod net;
pub mod waf;

/// The kind of log a record, object or batch holds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// VPC Flow Logs (`flows` table).
    Flows,
    /// AWS WAF logs (`waf` table).
    Waf,
}

impl LogKind {
    /// The table name (`flows`, `waf`).
    pub fn table(self) -> &'static str {
        match self {
            LogKind::Flows => "flows",
            LogKind::Waf => "waf",
        }
    }

    /// The canonical schema of this kind.
    pub fn schema(self) -> arrow::datatypes::SchemaRef {
        match self {
            LogKind::Flows => flows::schema(),
            LogKind::Waf => waf::schema(),
        }
    }
}
