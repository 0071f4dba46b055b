//! Errors of the engine crate. Every error names the object (and line) it concerns.

/// A boxed error from a dependency (AWS SDK, IO, parquet).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias for the engine crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong outside a single record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to list {uri}")]
    List {
        uri: String,
        #[source]
        source: BoxError,
    },
    #[error("failed to read {object}")]
    Read {
        object: String,
        #[source]
        source: BoxError,
    },
    #[error("{object}: {reason}")]
    Object { object: String, reason: String },
    #[error("invalid source {uri}: {reason}")]
    InvalidSource { uri: String, reason: String },
    #[error("invalid flow log format: {0}")]
    Format(String),
    #[error("failed to decode parquet {object}")]
    Parquet {
        object: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{what} failed")]
    Aws {
        what: String,
        #[source]
        source: BoxError,
    },
    #[error("run state {location}: {reason}")]
    State { location: String, reason: String },
    /// Another run saved the state since this one loaded it.
    #[error("run state {location} was changed by another run since it was loaded")]
    StateConflict { location: String },
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

/// One malformed record: skipped, counted and reported with its line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordError {
    /// 1-based line where the record starts (0 when not line-addressed, e.g. parquet).
    pub line: u64,
    /// What was wrong, with the offending value where it helps.
    pub reason: String,
}
