//! flowlens detectors: sans-IO, columnar detectors over the `flows` and `waf` batches.
//!
//! | id | input | what it finds |
//! |---|---|---|
//! | `exfiltration-spike` | flows | egress to public addresses far above the entity's own baseline |
//! | `lateral-movement` | flows | internal sweeps of admin ports, port scans of one host |
//! | `cross-az-cost` | flows | bytes crossing AZs per talker pair, in dollars per month |
//! | `scraping-bot` | waf | scraping clients and distributed crawls sharing a fingerprint |
//! | `public-exposure` | flows | internet sources reaching ports that should be private |
//!
//! Batches are gathered into chunks and prepared once ([`prepare`]: derived columns,
//! addresses and interfaces as integer codes, [`names`]), handed to polars without
//! copying ([`frame`]: the Arrow C Data Interface), reduced by polars group-bys to
//! per-window partial aggregates, and folded into mergeable state ([`stats::Merge`]).
//! No IO, no clock, no AWS: time is a watermark, configuration a [`Config`].

pub mod config;
pub mod detector;
pub mod frame;
pub mod inventory;
pub mod names;
pub use flowlens_model::net;
pub mod prepare;
pub mod stats;

mod cross_az;
mod exfiltration;
mod exposure;
mod lateral;
mod render;
mod rows;
mod scraping;

pub use config::Config;
pub use detector::{Chunk, Detector, Registry};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A batch lacks a column the detectors read, or has it with another type.
    #[error("unexpected batch schema: {0}")]
    Schema(String),
    /// polars rejected a frame or a query.
    #[error("columnar engine: {0}")]
    Frame(String),
    /// Saved state could not be read.
    #[error("detector state: {0}")]
    State(String),
}

impl From<polars::prelude::PolarsError> for Error {
    fn from(e: polars::prelude::PolarsError) -> Self {
        Error::Frame(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
