//! Integration tests of a run (one test binary for the crate).
//!
//! `local`: run state in a folder, offline. `emulator`: S3 sources, S3 state and
//! Security Hub through the real AWS SDK against the local AWS emulator (moto server on
//! 127.0.0.1); marked `#[ignore = "needs the local AWS emulator ..."]`, run by `.ci/run`
//! (the README's test command), which installs and starts it and passes
//! `--include-ignored`.

mod emulator;
mod local;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use flowlens_engine::Progress;
use flowlens_engine::state::digest;
use flowlens_job::{Job, Result, RunOutcome};
use flowlens_model::finding::Finding;

/// The fixed wall clock of the tests: a day after the generated logs.
pub fn clock() -> DateTime<Utc> {
    "2025-06-03T12:00:00Z".parse().expect("valid constant")
}

/// Writes `hours` of generated logs (with incidents) starting at `start` into `dir`.
pub fn generate(dir: &Path, start: &str, hours: u32) -> flowlens_samples::Manifest {
    flowlens_samples::generate(&flowlens_samples::Config {
        out: dir.to_path_buf(),
        start: start.parse().expect("valid time"),
        hours,
        seed: 3,
        scale: 0.5,
        incidents: true,
    })
    .expect("generate samples")
}

/// Findings by id, as content digests: what "the same findings" means.
pub fn digests(findings: &[Finding]) -> BTreeMap<String, String> {
    findings.iter().map(|f| (f.id.clone(), digest(f))).collect()
}

/// Runs `job` but drops the run (as a kill would) once `objects` objects are done.
/// Returns the outcome if the run finished first.
pub async fn run_killed_after(job: &Job, objects: u64) -> Option<Result<RunOutcome>> {
    let progress = Progress::default();
    tokio::select! {
        r = job.run(None, &progress) => Some(r),
        () = async {
            while progress.objects_done.load(Ordering::Relaxed) < objects {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        } => None,
    }
}
