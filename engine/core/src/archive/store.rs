//! Where the archive lives: a local folder or an S3 prefix, seen through four
//! operations on paths relative to the archive root.
//!
//! The methods are synchronous because the archive sink runs inside the pipeline's
//! (synchronous) [`crate::BatchSink`] calls; S3 calls block the current worker with
//! `block_in_place`, so they need a multi-threaded tokio runtime.

use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;

use crate::error::{Error, Result};
use crate::source::Location;

/// A local folder or an S3 prefix.
#[derive(Debug, Clone)]
pub enum ArchiveStore {
    Local(PathBuf),
    S3 {
        client: Client,
        bucket: String,
        /// Empty, or ends with `/`.
        prefix: String,
    },
}

fn io_err(uri: String, e: impl std::fmt::Display) -> Error {
    Error::Object {
        object: uri,
        reason: e.to_string(),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

impl ArchiveStore {
    /// `DIR` or `s3://bucket/prefix`; the S3 client is only built for S3.
    ///
    /// # Errors
    /// An `s3://` URI without a bucket.
    pub fn parse(location: &str, s3: impl FnOnce() -> Client) -> Result<Self> {
        Ok(match Location::parse(location)? {
            Location::Local(dir) => ArchiveStore::Local(dir),
            Location::S3 { bucket, prefix } => {
                let prefix = prefix.trim_end_matches('/');
                ArchiveStore::S3 {
                    client: s3(),
                    bucket,
                    prefix: if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("{prefix}/")
                    },
                }
            }
        })
    }

    /// The root, as given (`DIR` or `s3://bucket/prefix/`).
    pub fn root(&self) -> String {
        match self {
            ArchiveStore::Local(dir) => dir.display().to_string(),
            ArchiveStore::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// The full name of `rel`, for messages.
    pub fn uri(&self, rel: &str) -> String {
        match self {
            ArchiveStore::Local(dir) => dir.join(rel).display().to_string(),
            ArchiveStore::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}{rel}"),
        }
    }

    /// Whether a local source folder holds this (local) archive: archiving into one of
    /// the folders being read would read the archive back as logs.
    pub fn is_inside(&self, source: &Path) -> bool {
        let ArchiveStore::Local(dir) = self else {
            return false;
        };
        let canon = |p: &Path| {
            // The archive folder may not exist yet: resolve its nearest existing parent.
            let mut p = p.to_path_buf();
            let mut tail = Vec::new();
            loop {
                if let Ok(c) = p.canonicalize() {
                    return tail
                        .into_iter()
                        .rev()
                        .fold(c, |acc, t: std::ffi::OsString| acc.join(t));
                }
                match (p.file_name().map(|f| f.to_os_string()), p.parent()) {
                    (Some(name), Some(parent)) => {
                        tail.push(name);
                        p = if parent.as_os_str().is_empty() {
                            PathBuf::from(".")
                        } else {
                            parent.to_path_buf()
                        };
                    }
                    _ => return p,
                }
            }
        };
        let archive = canon(dir);
        let source = canon(source);
        archive.starts_with(&source) || source.starts_with(&archive)
    }

    /// Writes `bytes` at `rel`, replacing what was there. Local writes go through a
    /// temporary file and a rename, so readers never see half a file.
    ///
    /// # Errors
    /// The write failed.
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            ArchiveStore::Local(dir) => {
                let path = dir.join(rel);
                let parent = path.parent().unwrap_or(dir);
                std::fs::create_dir_all(parent).map_err(|e| io_err(self.uri(rel), e))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
                std::fs::write(&tmp, &bytes).map_err(|e| io_err(self.uri(rel), e))?;
                std::fs::rename(&tmp, &path).map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    io_err(self.uri(rel), e)
                })
            }
            ArchiveStore::S3 {
                client,
                bucket,
                prefix,
            } => block_on(
                client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .body(bytes.into())
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| io_err(self.uri(rel), aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }

    /// Reads `rel`; `None` when it does not exist.
    ///
    /// # Errors
    /// The read failed for another reason.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self {
            ArchiveStore::Local(dir) => match std::fs::read(dir.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err(self.uri(rel), e)),
            },
            ArchiveStore::S3 {
                client,
                bucket,
                prefix,
            } => block_on(async {
                let out = match client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e)
                        if e.as_service_error().is_some_and(
                            aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                        ) =>
                    {
                        return Ok(None);
                    }
                    Err(e) => {
                        return Err(io_err(
                            self.uri(rel),
                            aws_sdk_s3::error::DisplayErrorContext(e),
                        ));
                    }
                };
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| io_err(self.uri(rel), e))?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }),
        }
    }

    /// Deletes `rel`; a missing file is not an error.
    ///
    /// # Errors
    /// The delete failed.
    pub fn delete(&self, rel: &str) -> Result<()> {
        match self {
            ArchiveStore::Local(dir) => match std::fs::remove_file(dir.join(rel)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err(self.uri(rel), e)),
            },
            ArchiveStore::S3 {
                client,
                bucket,
                prefix,
            } => block_on(
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| io_err(self.uri(rel), aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
}
