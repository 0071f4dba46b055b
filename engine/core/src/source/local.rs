//! Local files and folders (walked recursively, in path order).

use std::path::{Path, PathBuf};

use std::io::Read;

use bytes::Bytes;

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
///
/// Each chunk is read by blocking `read`s into its own buffer, on tokio's blocking
/// pool (`tokio::fs::File` reads into a buffer of its own and copies from it: one
/// more copy of every byte, about 1 % of a decode-only scan's instructions). A short
/// chunk is the end of the file: no further read is sent to the pool.
pub async fn open(path: &str) -> Result<ChunkStream> {
    let err = |e: std::io::Error| Error::Read {
        object: path.to_string(),
        source: Box::new(e),
    };
    let owned = path.to_string();
    let file = tokio::task::spawn_blocking(move || std::fs::File::open(owned))
        .await
        .map_err(|e| err(std::io::Error::other(e)))?
        .map_err(err)?;
    let stream = futures::stream::try_unfold(Some(file), |file| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        let (file, buf) = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(CHUNK_BYTES);
            (&mut file)
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut buf)
                .map(|_| (file, buf))
        })
        .await
        .map_err(std::io::Error::other)??;
        if buf.is_empty() {
            return Ok(None);
        }
        let more = buf.len() == CHUNK_BYTES;
        Ok(Some((Bytes::from(buf), more.then_some(file))))
    });
    Ok(Box::pin(futures::TryStreamExt::map_err(
        stream,
        |e: std::io::Error| -> crate::error::BoxError { Box::new(e) },
    )))
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    async fn chunks(path: &Path) -> Vec<Bytes> {
        let stream = open(path.to_str().unwrap()).await.unwrap();
        stream.try_collect().await.unwrap()
    }

    #[tokio::test]
    async fn a_file_streams_whole_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        // Two and a half chunks, no two of them alike; exactly one chunk; nothing.
        let sizes = [CHUNK_BYTES * 5 / 2, CHUNK_BYTES, 0];
        let expected: [&[usize]; 3] = [
            &[CHUNK_BYTES, CHUNK_BYTES, CHUNK_BYTES / 2],
            &[CHUNK_BYTES],
            &[],
        ];
        for (size, expected) in sizes.into_iter().zip(expected) {
            let path = dir.path().join(format!("object-{size}.log"));
            let data: Vec<u8> = (0..size)
                .map(|i| (i % 251) as u8 ^ (i / CHUNK_BYTES) as u8)
                .collect();
            std::fs::write(&path, &data).unwrap();
            let got = chunks(&path).await;
            let lens: Vec<usize> = got.iter().map(Bytes::len).collect();
            assert_eq!(lens, expected, "{size} bytes");
            assert_eq!(got.concat(), data);
        }
        // A missing file is an error naming it.
        let missing = dir.path().join("missing.log");
        let err = open(missing.to_str().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("missing.log"), "{err}");
    }
}
