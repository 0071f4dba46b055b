//! The object store of a local archive: object_store's `LocalFileSystem`, except that
//! the column-chunk reads of a query happen on the task that asked for them.
//!
//! `LocalFileSystem` runs every read on tokio's blocking pool, so each file of a scan
//! costs a hand-off to another thread and a wake-up back (a one-thread aggregation over
//! 72 files spent about a sixth of its time on them). An archive is read from local disk,
//! almost always from the page cache, where a positional read of a few hundred
//! kilobytes takes microseconds: less than the hand-off itself. Everything else
//! (listing, footers, writes) goes to `LocalFileSystem` unchanged, so paths, errors
//! and object metadata stay exactly as it gives them.

use std::fmt;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::ops::Range;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// [`LocalFileSystem`] with inline range reads (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct LocalArchiveStore {
    inner: LocalFileSystem,
}

impl fmt::Display for LocalArchiveStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalArchiveStore({})", self.inner)
    }
}

/// Reads `ranges` of the file at `path`, each in full.
fn read_ranges(path: &std::path::Path, ranges: &[Range<u64>]) -> std::io::Result<Vec<Bytes>> {
    let mut file = File::open(path)?;
    ranges
        .iter()
        .map(|r| {
            let len = usize::try_from(r.end - r.start)
                .map_err(|_| std::io::Error::other("range larger than memory"))?;
            let mut buf = vec![0; len];
            file.seek(SeekFrom::Start(r.start))?;
            file.read_exact(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .collect()
}

#[async_trait::async_trait]
impl ObjectStore for LocalArchiveStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if let Some(r) = ranges.iter().find(|r| r.start > r.end) {
            // `LocalFileSystem` would overflow on it (a panic in debug builds).
            return Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("invalid range {r:?} of {location}").into(),
            });
        }
        let path = self.inner.path_to_filesystem(location)?;
        match read_ranges(&path, ranges) {
            Ok(bytes) => Ok(bytes),
            // A missing file, a short read, a permission problem: ask the inner store
            // again, so the error is the one (and of the kind) it would have given.
            Err(_) => self.inner.get_ranges(location, ranges).await,
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt as _;
    use object_store::ObjectStoreExt as _;

    #[tokio::test(flavor = "current_thread")]
    async fn ranges_match_the_local_file_system_and_so_do_errors() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("a.parquet"), &data).unwrap();
        let store = LocalArchiveStore::default();
        let local = LocalFileSystem::new();
        let path = Path::from_filesystem_path(dir.path().join("a.parquet")).unwrap();
        let ranges = [0..10, 5..5, 99_990..100_000, 1_000..60_000, 0..100_000];
        // Read on the calling task: done at the first poll, no hand-off to wait for.
        let ours = store.get_ranges(&path, &ranges).now_or_never();
        let ours = ours.expect("read at the first poll").unwrap();
        assert_eq!(ours, local.get_ranges(&path, &ranges).await.unwrap());
        for (r, b) in ranges.iter().zip(&ours) {
            assert_eq!(&b[..], &data[r.start as usize..r.end as usize]);
        }
        // Past the end, or no such file: the inner store's error.
        let past = store.get_ranges(&path, &[99_000..100_001, 0..1]).await;
        assert!(past.is_err(), "{past:?}");
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = store.get_ranges(&path, &[0..1, 9..3]).await.unwrap_err();
        assert!(
            inverted.to_string().contains("invalid range 9..3"),
            "{inverted}"
        );
        let missing = Path::parse(path.as_ref().replace("a.parquet", "b.parquet")).unwrap();
        let err = store.get_ranges(&missing, &[0..1, 2..3]).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        // Everything else is the local file system's.
        let meta = store.head(&path).await.unwrap();
        assert_eq!(meta, local.head(&path).await.unwrap());
        assert_eq!(store.get_range(&path, 3..8).await.unwrap(), &data[3..8]);
    }
}
