//! Run state: what a scheduled run carries to the next one.
//!
//! - the manifest of processed objects (URI → size, ETag, records read), so a rerun reads
//!   only new objects;
//! - the detectors' state (baselines and open windows), opaque here;
//! - the findings already sent (id → digest, CreatedAt), so an unchanged finding is never
//!   sent twice and a changed one is sent as an update of the same `Id`;
//! - findings the sink has not accepted yet, sent again by the next run.
//!
//! [`StateStore`] keeps it in a local folder or under an S3 prefix, written atomically:
//! locally a temporary file renamed over the old one; in S3 a conditional PutObject
//! (`If-Match` the ETag that was loaded, or `If-None-Match: *` for the first save), so
//! two runs that overlap cannot silently overwrite each other — the later save fails
//! with [`Error::StateConflict`] and that run's objects are read again next time.
//!
//! A run that is killed before its save leaves the previous state in place: the rerun
//! reads the same objects again from the same detector state, produces the same findings
//! with the same ids, and Security Hub updates them in place.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use flowlens_model::finding::Finding;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::source::{Location, ObjectMeta, parse_key};

/// Version of the state layout; a state of another version is refused, not guessed at.
pub const STATE_VERSION: u32 = 1;
/// File name of the state, in the folder or under the prefix.
pub const STATE_FILE: &str = "flowlens-state.json";

/// One processed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Records decoded from it (all of them when `complete`).
    pub records: u64,
    /// False when reading broke off part-way (a network error): the next run reads the
    /// object again and skips the first `records` records.
    pub complete: bool,
    /// Unix seconds.
    pub processed_at: i64,
}

/// A finding that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentFinding {
    /// Digest of the finding's content (see [`digest`]).
    pub digest: String,
    /// CreatedAt of the first import, unix milliseconds.
    pub created_at_ms: i64,
    /// UpdatedAt of the last import, unix milliseconds.
    pub updated_at_ms: i64,
    /// End of the finding's window, unix seconds (for pruning).
    pub window_end: i64,
}

/// What a run reads at its start and writes at its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    /// Incremented by every save.
    pub generation: u64,
    /// Unix seconds of the last save.
    pub saved_at: i64,
    /// Processed objects by URI.
    pub objects: BTreeMap<String, ObjectRecord>,
    /// The detector registry's state (baselines, open windows, watermark).
    pub detectors: Option<Value>,
    /// Findings sent, by id.
    pub sent: BTreeMap<String, SentFinding>,
    /// Findings produced but not accepted by the sink yet: sent again next run.
    pub pending: Vec<Finding>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            version: STATE_VERSION,
            generation: 0,
            saved_at: 0,
            objects: BTreeMap::new(),
            detectors: None,
            sent: BTreeMap::new(),
            pending: Vec::new(),
        }
    }
}

/// What the manifest says about a listed object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Never read.
    New,
    /// Read completely; skip it.
    Done,
    /// Read part-way: read again, skipping this many records.
    Partial(u64),
    /// Read before, but its size or ETag changed since (objects AWS delivers never
    /// change; read again and say so).
    Changed,
}

impl RunState {
    /// Looks a listed object up in the manifest.
    pub fn seen(&self, meta: &ObjectMeta) -> Seen {
        let Some(rec) = self.objects.get(&meta.uri) else {
            return Seen::New;
        };
        let etag_differs = matches!((&rec.etag, &meta.etag), (Some(a), Some(b)) if a != b);
        if rec.size != meta.size || etag_differs {
            Seen::Changed
        } else if rec.complete {
            Seen::Done
        } else {
            Seen::Partial(rec.records)
        }
    }

    /// Forgets objects whose key dates them before `horizon` minus a day (a listing from
    /// `horizon` never returns them again) and sent findings whose window ended before
    /// it. Keeps the state's size bounded for a job that lists a moving window.
    pub fn prune_before(&mut self, horizon: DateTime<Utc>) {
        let cut = horizon - chrono::Duration::days(1);
        self.objects.retain(|uri, _| {
            parse_key(uri.strip_prefix("s3://").unwrap_or(uri))
                .span
                .is_none_or(|(_, end)| end >= cut)
        });
        let cut = cut.timestamp();
        self.sent.retain(|_, s| s.window_end >= cut);
    }
}

/// A stable digest of a finding's content: what decides whether a finding seen again
/// must be sent again.
pub fn digest(f: &Finding) -> String {
    let json = serde_json::to_string(f).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}{:08x}", json.len())
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub enum StateStore {
    Local(PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
    },
}

/// A loaded state and the version to save over (generation locally, ETag in S3).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub state: RunState,
    pub version: Option<String>,
}

impl StateStore {
    /// `DIR` or `s3://bucket/prefix`; the S3 client is only used for S3.
    ///
    /// # Errors
    /// An `s3://` URI without a bucket.
    pub fn parse(location: &str, s3: impl FnOnce() -> aws_sdk_s3::Client) -> Result<Self> {
        Ok(match Location::parse(location)? {
            Location::Local(dir) => StateStore::Local(dir),
            Location::S3 { bucket, prefix } => {
                let prefix = prefix.trim_end_matches('/');
                let key = if prefix.is_empty() {
                    STATE_FILE.to_string()
                } else {
                    format!("{prefix}/{STATE_FILE}")
                };
                StateStore::S3 {
                    client: s3(),
                    bucket,
                    key,
                }
            }
        })
    }

    /// Where the state file is, for messages.
    pub fn location(&self) -> String {
        match self {
            StateStore::Local(dir) => dir.join(STATE_FILE).display().to_string(),
            StateStore::S3 { bucket, key, .. } => crate::source::s3::uri(bucket, key),
        }
    }

    fn parse_state(&self, bytes: &[u8]) -> Result<RunState> {
        let state: RunState = serde_json::from_slice(bytes).map_err(|e| Error::State {
            location: self.location(),
            reason: format!("not a flowlens run state: {e}"),
        })?;
        if state.version != STATE_VERSION {
            return Err(Error::State {
                location: self.location(),
                reason: format!(
                    "written by state version {}, this flowlens reads version {STATE_VERSION}",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Loads the state; a missing state is an empty one.
    ///
    /// # Errors
    /// The state cannot be read or is not a flowlens state of this version.
    pub async fn load(&self) -> Result<Loaded> {
        match self {
            StateStore::Local(dir) => {
                let path = dir.join(STATE_FILE);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => {
                        let state = self.parse_state(&bytes)?;
                        Ok(Loaded {
                            version: Some(state.generation.to_string()),
                            state,
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Loaded {
                        state: RunState::default(),
                        version: None,
                    }),
                    Err(e) => Err(Error::State {
                        location: self.location(),
                        reason: e.to_string(),
                    }),
                }
            }
            StateStore::S3 {
                client,
                bucket,
                key,
            } => {
                let out = match client.get_object().bucket(bucket).key(key).send().await {
                    Ok(out) => out,
                    Err(e)
                        if e.as_service_error().is_some_and(
                            aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                        ) =>
                    {
                        return Ok(Loaded {
                            state: RunState::default(),
                            version: None,
                        });
                    }
                    Err(e) => {
                        return Err(Error::State {
                            location: self.location(),
                            reason: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                        });
                    }
                };
                let etag = out.e_tag().map(String::from);
                let bytes = out.body.collect().await.map_err(|e| Error::State {
                    location: self.location(),
                    reason: e.to_string(),
                })?;
                Ok(Loaded {
                    state: self.parse_state(&bytes.into_bytes())?,
                    version: etag,
                })
            }
        }
    }

    /// Saves `state` over the version that was loaded (`None`: there was none) and
    /// returns the new version.
    ///
    /// # Errors
    /// [`Error::StateConflict`] when another run saved in between; [`Error::State`]
    /// when writing failed. Either way the stored state is the old one or the new one,
    /// never a mix.
    pub async fn save(&self, state: &RunState, loaded: Option<&str>) -> Result<String> {
        let bytes = serde_json::to_vec(state).map_err(|e| Error::State {
            location: self.location(),
            reason: e.to_string(),
        })?;
        match self {
            // Synchronous on purpose: a run dropped at an await point (killed, or cut
            // short at shutdown) must not leave a save finishing behind its back.
            StateStore::Local(dir) => {
                save_local(dir, &bytes, loaded, &self.location())?;
                Ok(state.generation.to_string())
            }
            StateStore::S3 {
                client,
                bucket,
                key,
            } => {
                let mut put = client
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/json")
                    .body(bytes.into());
                put = match loaded {
                    Some(etag) => put.if_match(etag),
                    None => put.if_none_match("*"),
                };
                match put.send().await {
                    Ok(out) => Ok(out.e_tag().unwrap_or_default().to_string()),
                    Err(e) => {
                        let status = e.raw_response().map(|r| r.status().as_u16());
                        if matches!(status, Some(409 | 412)) {
                            Err(Error::StateConflict {
                                location: self.location(),
                            })
                        } else {
                            Err(Error::State {
                                location: self.location(),
                                reason: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                            })
                        }
                    }
                }
            }
        }
    }
}

/// Local save: write a temporary file beside the state, flush it to disk, check that
/// nobody saved since we loaded, rename it over the state.
fn save_local(
    dir: &std::path::Path,
    bytes: &[u8],
    loaded: Option<&str>,
    location: &str,
) -> Result<()> {
    use std::io::Write;
    let err = |e: std::io::Error| Error::State {
        location: location.to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!(".{STATE_FILE}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    let current = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice::<RunState>(&b)
            .ok()
            .map(|s| s.generation.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err(e)),
    };
    if current.as_deref() != loaded {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::StateConflict {
            location: location.to_string(),
        });
    }
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uri: &str, size: u64, etag: Option<&str>) -> ObjectMeta {
        ObjectMeta::new(uri, size, etag.map(String::from))
    }

    #[test]
    fn manifest_lookup() {
        let mut s = RunState::default();
        let rec = |size, etag: Option<&str>, records, complete| ObjectRecord {
            size,
            etag: etag.map(String::from),
            records,
            complete,
            processed_at: 0,
        };
        s.objects.insert("a".into(), rec(10, Some("e1"), 5, true));
        s.objects.insert("b".into(), rec(10, None, 3, false));
        assert_eq!(s.seen(&meta("a", 10, Some("e1"))), Seen::Done);
        assert_eq!(s.seen(&meta("a", 10, None)), Seen::Done);
        assert_eq!(s.seen(&meta("a", 10, Some("e2"))), Seen::Changed);
        assert_eq!(s.seen(&meta("a", 11, Some("e1"))), Seen::Changed);
        assert_eq!(s.seen(&meta("b", 10, None)), Seen::Partial(3));
        assert_eq!(s.seen(&meta("c", 1, None)), Seen::New);
    }

    #[test]
    fn pruning_keeps_what_a_listing_can_return() {
        let mut s = RunState::default();
        let old = "s3://b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/01/x.log.gz";
        let new = "s3://b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/05/y.log.gz";
        for uri in [old, new, "/local/undated.log"] {
            s.objects.insert(
                uri.into(),
                ObjectRecord {
                    size: 1,
                    etag: None,
                    records: 1,
                    complete: true,
                    processed_at: 0,
                },
            );
        }
        let horizon = "2025-06-04T00:00:00Z".parse().unwrap();
        s.prune_before(horizon);
        assert_eq!(
            s.objects.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["/local/undated.log", new]
        );
    }

    #[tokio::test]
    async fn local_saves_are_atomic_and_detect_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::Local(dir.path().join("state"));
        let first = store.load().await.unwrap();
        assert_eq!(first.version, None);
        assert_eq!(first.state, RunState::default());
        let mut s = first.state;
        s.generation = 1;
        let v1 = store.save(&s, None).await.unwrap();
        // A second writer that loaded nothing cannot overwrite.
        assert!(matches!(
            store.save(&s, None).await,
            Err(Error::StateConflict { .. })
        ));
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.version.as_deref(), Some(v1.as_str()));
        s.generation = 2;
        store.save(&s, Some(&v1)).await.unwrap();
        // Saving over a stale version fails and leaves the newer state.
        assert!(matches!(
            store.save(&s, Some(&v1)).await,
            Err(Error::StateConflict { .. })
        ));
        assert_eq!(store.load().await.unwrap().state.generation, 2);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[tokio::test]
    async fn a_foreign_or_newer_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::Local(dir.path().to_path_buf());
        std::fs::write(dir.path().join(STATE_FILE), b"{\"hello\":1}").unwrap();
        let e = store.load().await.unwrap_err().to_string();
        assert!(e.contains("not a flowlens run state"), "{e}");
        let mut s = serde_json::to_value(RunState::default()).unwrap();
        s["version"] = 99.into();
        std::fs::write(dir.path().join(STATE_FILE), s.to_string()).unwrap();
        let e = store.load().await.unwrap_err().to_string();
        assert!(e.contains("state version 99"), "{e}");
    }
}
