//! The parquet archive: decoded records written as zstd parquet in hive partitions
//! (layout in [`flowlens_model::archive`]), readable as they are by `flowlens sql`,
//! Athena, Trino and Spark.
//!
//! ```text
//! objects ─► pipeline ─► ArchiveSink ─(object done)─► partition + sort ─► parquet ─► store
//!                           buffers one object's batches       (write)              manifest
//! ```
//!
//! Idempotent: each source object becomes one file per partition it has records in,
//! named after the object, so writing it again replaces those files; the manifest
//! ([`Manifest`]) records which objects are archived and their files, so a rerun reads
//! only new or changed objects. An object whose reading broke off (or that could not be
//! opened) writes nothing and is not recorded: the next run reads it whole. A damaged
//! object (truncated gzip) keeps the records before the damage, as `scan` does.

pub mod findings;
pub mod store;
pub mod write;

use std::collections::{BTreeMap, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use flowlens_model::LogKind;
use flowlens_model::archive::MANIFEST_FILE;
use serde::{Deserialize, Serialize};

use crate::error::{BoxError, Error, Result};
use crate::pipeline::{BatchSink, ObjectDone, ObjectStatus};
use crate::source::ObjectMeta;
pub use store::ArchiveStore;

/// Version of the manifest format.
pub const MANIFEST_VERSION: u32 = 1;
/// The manifest is saved after this many archived objects (and at the end), so a long
/// run that is killed redoes little.
pub const SAVE_EVERY_OBJECTS: usize = 64;

/// One archived source object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedObject {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub kind: Option<LogKind>,
    /// Records written.
    pub records: u64,
    /// Files written, relative to the archive root.
    pub files: Vec<String>,
    /// Unix seconds.
    pub archived_at: i64,
    /// Why only part of the object could be decoded (a damaged object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// Which source objects the archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub objects: BTreeMap<String, ArchivedObject>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            objects: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// Loads the manifest of `store` (empty when there is none).
    ///
    /// # Errors
    /// It cannot be read or is not a flowlens archive manifest of this version.
    pub fn load(store: &ArchiveStore) -> Result<Self> {
        let Some(bytes) = store.get(MANIFEST_FILE)? else {
            return Ok(Manifest::default());
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Object {
            object: store.uri(MANIFEST_FILE),
            reason: format!("not a flowlens archive manifest: {e}"),
        })?;
        if m.version != MANIFEST_VERSION {
            return Err(Error::Object {
                object: store.uri(MANIFEST_FILE),
                reason: format!(
                    "manifest version {} (this flowlens writes {MANIFEST_VERSION})",
                    m.version
                ),
            });
        }
        Ok(m)
    }

    /// Saves the manifest.
    ///
    /// # Errors
    /// The write failed.
    pub fn save(&self, store: &ArchiveStore) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Object {
            object: store.uri(MANIFEST_FILE),
            reason: e.to_string(),
        })?;
        store.put(MANIFEST_FILE, bytes)
    }

    /// Whether `meta` is archived already, as listed (same size and ETag).
    pub fn has(&self, meta: &ObjectMeta) -> bool {
        self.objects.get(&meta.uri).is_some_and(|a| {
            a.size == meta.size && !matches!((&a.etag, &meta.etag), (Some(x), Some(y)) if x != y)
        })
    }
}

/// The file name an object's records get in every partition: the object's base name
/// (made path-safe, shortened) and a hash of its full URI.
pub fn file_name(uri: &str) -> String {
    let base = uri.rsplit(['/', '\\']).next().unwrap_or(uri);
    let base = base
        .split('.')
        .next()
        .unwrap_or(base)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect::<String>();
    let h = flowlens_model::finding::fnv1a(0xcbf2_9ce4_8422_2325, &[uri]);
    format!("{base}-{h:016x}.parquet")
}

/// What an archive run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveStats {
    pub objects_archived: u64,
    /// Objects read before whose content changed (their old files were replaced).
    pub objects_replaced: u64,
    /// Objects not archived because reading broke off or they could not be opened.
    pub objects_not_archived: u64,
    pub flow_records: u64,
    pub waf_records: u64,
    pub files_written: u64,
    pub bytes_written: u64,
}

struct Pending {
    kind: LogKind,
    batches: Vec<RecordBatch>,
}

/// A [`BatchSink`] that writes every object it receives into the archive.
pub struct ArchiveSink {
    store: ArchiveStore,
    manifest: Manifest,
    pending: HashMap<String, Pending>,
    unsaved: usize,
    now: i64,
    pub stats: ArchiveStats,
}

impl ArchiveSink {
    /// A sink writing to `store`, starting from its `manifest`.
    pub fn new(store: ArchiveStore, manifest: Manifest) -> Self {
        ArchiveSink {
            store,
            manifest,
            pending: HashMap::new(),
            unsaved: 0,
            now: chrono::Utc::now().timestamp(),
            stats: ArchiveStats::default(),
        }
    }

    /// Saves the manifest and returns it with the statistics.
    ///
    /// # Errors
    /// The manifest could not be saved.
    pub fn finish(self) -> Result<(Manifest, ArchiveStats)> {
        self.manifest.save(&self.store)?;
        Ok((self.manifest, self.stats))
    }

    fn write_object(&mut self, done: &ObjectDone, damaged: Option<String>) -> Result<()> {
        let uri = &done.meta.uri;
        let pending = self.pending.remove(uri);
        let kind = pending.as_ref().map(|p| p.kind).or(done.meta.info.kind);
        let mut files = Vec::new();
        let mut records = 0u64;
        if let Some(p) = pending
            && !p.batches.is_empty()
        {
            let batch = arrow::compute::concat_batches(&p.kind.schema(), &p.batches)?;
            records = batch.num_rows() as u64;
            let name = file_name(uri);
            for (part, rows) in write::partition(p.kind, &batch, &done.meta.info)? {
                let rel = format!("{}/{name}", part.dir());
                let bytes = write::encode(Some(p.kind), &rows, &self.store.uri(&rel))?;
                self.stats.bytes_written += bytes.len() as u64;
                self.stats.files_written += 1;
                self.store.put(&rel, bytes)?;
                files.push(rel);
            }
            match p.kind {
                LogKind::Flows => self.stats.flow_records += records,
                LogKind::Waf => self.stats.waf_records += records,
            }
        }
        if let Some(old) = self.manifest.objects.get(uri) {
            self.stats.objects_replaced += 1;
            for f in old.files.iter().filter(|f| !files.contains(f)) {
                self.store.delete(f)?;
            }
        }
        self.manifest.objects.insert(
            uri.clone(),
            ArchivedObject {
                size: done.meta.size,
                etag: done.meta.etag.clone(),
                kind,
                records,
                files,
                archived_at: self.now,
                damaged,
            },
        );
        self.stats.objects_archived += 1;
        self.unsaved += 1;
        if self.unsaved >= SAVE_EVERY_OBJECTS {
            self.manifest.save(&self.store)?;
            self.unsaved = 0;
        }
        Ok(())
    }
}

impl BatchSink for ArchiveSink {
    fn batch(&mut self, kind: LogKind, batch: &RecordBatch) -> Result<(), BoxError> {
        let idx = kind
            .schema()
            .index_of(flowlens_model::flows::col::SOURCE_OBJECT)
            .map_err(|e| Box::new(e) as BoxError)?;
        let col = batch.column(idx).as_string_view();
        if col.is_empty() {
            return Ok(());
        }
        let uri = col.value(0).to_string();
        self.pending
            .entry(uri)
            .or_insert_with(|| Pending {
                kind,
                batches: Vec::new(),
            })
            .batches
            .push(batch.clone());
        Ok(())
    }

    fn object_done(&mut self, done: &ObjectDone) -> Result<(), BoxError> {
        match &done.status {
            ObjectStatus::Complete => self.write_object(done, None)?,
            ObjectStatus::Damaged(why) => self.write_object(done, Some(why.clone()))?,
            ObjectStatus::Unreadable(_) | ObjectStatus::Interrupted(_) => {
                self.pending.remove(&done.meta.uri);
                self.stats.objects_not_archived += 1;
            }
        }
        Ok(())
    }
}

/// What `flowlens archive` did.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveOutcome {
    /// The ingest report (objects and records read, malformed records, errors).
    pub report: crate::ScanReport,
    pub stats: ArchiveStats,
    /// Objects listed that the archive already holds (not read again).
    pub objects_already_archived: u64,
}

/// Archives every object under `locations` that the archive does not hold yet.
///
/// # Errors
/// A source lies inside a local archive, listing failed, the manifest is unreadable, or
/// a write failed. Bad objects and records are counted in the report, not errors.
pub async fn run(
    scanner: &std::sync::Arc<crate::Scanner>,
    locations: &[crate::source::Location],
    opts: &crate::ScanOptions,
    store: ArchiveStore,
    progress: &crate::Progress,
) -> Result<ArchiveOutcome> {
    for loc in locations {
        if let crate::source::Location::Local(dir) = loc
            && store.is_inside(dir)
        {
            return Err(Error::InvalidSource {
                uri: dir.display().to_string(),
                reason: format!(
                    "the archive {} would be inside it (or it inside the archive): \
                     archive to a folder outside the sources",
                    store.root()
                ),
            });
        }
    }
    let started = std::time::Instant::now();
    let manifest = Manifest::load(&store)?;
    let listed = scanner.list(locations).await?;
    let listed_count = listed.len() as u64;
    let (done, todo): (Vec<_>, Vec<_>) = listed.into_iter().partition(|m| manifest.has(m));
    let mut sink = ArchiveSink::new(store, manifest);
    let mut report = scanner
        .read_objects(todo, opts, &mut sink, progress)
        .await?;
    report.objects_listed = listed_count;
    report.objects_skipped += done.len() as u64;
    let (_, stats) = sink.finish()?;
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(ArchiveOutcome {
        report,
        stats,
        objects_already_archived: done.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a =
            file_name("s3://b/AWSLogs/1/vpcflowlogs/us-east-1/2025/06/02/1_vpcflowlogs_x.log.gz");
        let b =
            file_name("s3://c/AWSLogs/1/vpcflowlogs/us-east-1/2025/06/02/1_vpcflowlogs_x.log.gz");
        assert!(
            a.starts_with("1_vpcflowlogs_x-") && a.ends_with(".parquet"),
            "{a}"
        );
        assert_ne!(a, b);
        let hostile = file_name("/tmp/../\u{1b}[31m evil;rm -rf.log");
        assert!(
            hostile
                .trim_end_matches(".parquet")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{hostile}"
        );
    }
}
