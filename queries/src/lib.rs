//! flowlens queries: SQL (DataFusion) over the partitioned parquet archive that
//! `flowlens archive` writes, the analyst functions, and the saved `.sql` queries.
//!
//! ```text
//! Archive::open(DIR | s3://bucket/prefix) ─► tables flows, waf, findings (hive partitions)
//!        │                                  + is_private, in_cidr, az_pair, cross_az_cost
//!        └─► Archive::query(sql) ─► read-only check ─► plan ─► Vec<RecordBatch>
//! ```

pub mod error;
mod local_group;
mod local_store;
pub mod output;
pub mod saved;
pub mod session;
pub mod udf;

pub use error::{QueryError, Result};
pub use saved::SavedQuery;
pub use session::{Archive, S3Options, read_uri};
