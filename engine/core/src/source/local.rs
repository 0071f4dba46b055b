//! Local files and folders (walked recursively, in path order).

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use super::{ChunkStream, ObjectMeta};
use crate::error::{Error, Result};

/// Bytes read from a local file per chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// Lists the files at `path`: the file itself, or every file below a folder. Hidden
/// entries (`.name`) are skipped; symlinked folders are not followed.
///
/// # Errors
/// The path does not exist or a folder cannot be read.
pub fn list(path: &Path) -> Result<Vec<ObjectMeta>> {
    let err = |e: std::io::Error| Error::List {
        uri: path.display().to_string(),
        source: Box::new(e),
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    let mut files = Vec::new();
    if meta.is_file() {
        files.push((path.to_path_buf(), meta.len()));
    } else {
        walk(path, &mut files).map_err(err)?;
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|(p, size)| ObjectMeta::new(p.display().to_string(), size, None))
        .collect())
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() {
            walk(&path, out)?;
        } else if let Ok(meta) = std::fs::metadata(&path)
            && meta.is_file()
        {
            out.push((path, meta.len()));
        }
    }
    Ok(())
}

/// Opens a local file as a chunk stream.
pub async fn open(path: &str) -> Result<ChunkStream> {
    let file = tokio::fs::File::open(path).await.map_err(|e| Error::Read {
        object: path.to_string(),
        source: Box::new(e),
    })?;
    let stream = futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = BytesMut::with_capacity(CHUNK_BYTES);
        while buf.len() < CHUNK_BYTES {
            if file.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            Ok(None)
        } else {
            Ok(Some((buf.freeze(), file)))
        }
    });
    Ok(Box::pin(futures::TryStreamExt::map_err(
        stream,
        |e: std::io::Error| -> crate::error::BoxError { Box::new(e) },
    )))
}
