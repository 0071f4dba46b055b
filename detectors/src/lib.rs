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
//! Flow batches are prepared once per chunk for every flow detector ([`prepare`]:
//! addresses and interfaces as integer codes, [`names`]; per-row facts as bits), and
//! each detector folds the rows it keeps into per-window state keyed by integers
//! ([`prepare::FlowRows::aggregate`], or row by row); WAF batches are handed to polars
//! without copying ([`frame`]: the Arrow C Data Interface) and reduced by its
//! group-bys. Open windows keep texts as the run's name codes (flows) or as ids of
//! the detector's own ([`atoms`], WAF); all state merges
//! ([`stats::Merge`]). No IO, no clock, no AWS: time is a watermark, configuration a
//! [`Config`].

pub mod atoms;
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
mod flat;
mod key_codes;
mod lateral;
mod ports;
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

/// Helpers of the unit tests.
#[cfg(test)]
mod testing {
    use arrow::record_batch::RecordBatch;
    use flowlens_engine::decode::ObjectContext;
    use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};

    /// The default configuration with only detector `id` enabled.
    pub fn only(id: flowlens_model::finding::DetectorId) -> crate::Config {
        use flowlens_model::finding::DetectorId as D;
        let mut c = crate::Config::default();
        c.exfiltration_spike.enabled = id == D::ExfiltrationSpike;
        c.lateral_movement.enabled = id == D::LateralMovement;
        c.cross_az_cost.enabled = id == D::CrossAzCost;
        c.scraping_bot.enabled = id == D::ScrapingBot;
        c.public_exposure.enabled = id == D::PublicExposure;
        c
    }

    /// The state of detector `id` (the only one enabled) after observing `a`, which a
    /// save and restore must keep, and after a merge with the state of a registry
    /// that observed `b`, which must equal one registry's over `a` and `b`.
    pub fn restored_and_merged(
        id: flowlens_model::finding::DetectorId,
        kind: flowlens_model::LogKind,
        a: &RecordBatch,
        b: &RecordBatch,
    ) -> (serde_json::Value, serde_json::Value) {
        let registry = |batches: &[&RecordBatch]| {
            let mut r = crate::Registry::new(only(id));
            for batch in batches {
                r.observe(kind, batch).unwrap();
            }
            r
        };
        let state = |r: &mut crate::Registry| r.state().unwrap()["detectors"][id.as_str()].clone();
        let mut one = registry(&[a]);
        let saved = state(&mut one);
        // Restored, the open windows are the same.
        let mut again = crate::Registry::new(only(id));
        again.restore(one.state().unwrap()).unwrap();
        assert_eq!(state(&mut again), saved);
        // Merged with another shard's state: as if one registry had seen both.
        again.merge(registry(&[b]).state().unwrap()).unwrap();
        let merged = state(&mut again);
        assert_eq!(merged, state(&mut registry(&[a, b])));
        (saved, merged)
    }

    /// An object's `text`, decoded into one batch of `schema`.
    fn decoded(text: String, schema: &arrow::datatypes::SchemaRef) -> RecordBatch {
        let mut d = ObjectDecoder::new(ObjectContext::new("t.log"), DecodeOptions::default());
        d.push(text.as_bytes());
        d.finish().unwrap();
        let mut out = Vec::new();
        while let Some((_, b)) = d.take_batch() {
            out.push(b);
        }
        arrow::compute::concat_batches(schema, &out).unwrap()
    }

    /// Flow log `lines` under the header line `header`, decoded into one batch.
    pub fn flows_batch(header: &str, lines: &[&str]) -> RecordBatch {
        let text = format!("{header}\n{}\n", lines.join("\n"));
        decoded(text, &flowlens_model::flows::schema())
    }

    /// WAF log `lines` (JSON, one per line), decoded into one batch.
    pub fn waf_batch(lines: &[String]) -> RecordBatch {
        decoded(
            format!("{}\n", lines.join("\n")),
            &flowlens_model::waf::schema(),
        )
    }
}
