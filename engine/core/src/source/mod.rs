//! Where objects come from: local files and folders, or S3 prefixes.
//!
//! Both are seen through the same two operations: list the objects under a location,
//! then open one as a stream of byte chunks. Nothing here decodes.

pub mod key;
pub mod local;
pub mod s3;

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::error::{BoxError, Error, Result};
pub use key::{KeyInfo, parse_key};

/// A stream of an object's raw bytes.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// One object to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `s3://bucket/key` or a local path: how the object is named in reports and rows.
    pub uri: String,
    /// Size in bytes, as listed.
    pub size: u64,
    /// S3 ETag (quotes stripped), when listed from S3.
    pub etag: Option<String>,
    /// What the key says.
    pub info: KeyInfo,
    /// Records to skip at the start: an earlier run already read them before reading
    /// broke off (see the run state's manifest).
    pub skip_records: u64,
}

impl ObjectMeta {
    /// An object named by URI (`s3://bucket/key` or a path), with what its key says.
    pub fn new(uri: impl Into<String>, size: u64, etag: Option<String>) -> Self {
        let uri = uri.into();
        let key = uri
            .strip_prefix("s3://")
            .and_then(|r| r.split_once('/'))
            .map_or_else(|| uri.replace('\\', "/"), |(_, k)| k.to_string());
        ObjectMeta {
            info: parse_key(&key),
            uri,
            size,
            etag,
            skip_records: 0,
        }
    }
}

/// A location given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a local path.
    ///
    /// # Errors
    /// An `s3://` URI without a bucket.
    pub fn parse(s: &str) -> Result<Self> {
        match s.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::InvalidSource {
                        uri: s.to_string(),
                        reason: "no bucket name".into(),
                    });
                }
                Ok(Location::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                })
            }
            None => Ok(Location::Local(s.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("s3://b/p/q").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert!(Location::parse("s3:///x").is_err());
        assert_eq!(
            Location::parse("./logs").unwrap(),
            Location::Local("./logs".into())
        );
    }
}
