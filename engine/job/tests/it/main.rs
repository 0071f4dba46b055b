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
use std::task::Poll;

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
///
/// The count is checked on every wake of this task, before the run is polled again and
/// after each time it stops: a timer alone is not enough, since the timer only fires
/// when a worker thread is idle and the decoding tasks can keep both busy to the end.
pub async fn run_killed_after(job: &Job, objects: u64) -> Option<Result<RunOutcome>> {
    let progress = Progress::default();
    let done = |p: &Progress| p.objects_done.load(Ordering::SeqCst) >= objects;
    let mut run = std::pin::pin!(job.run(None, &progress));
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(1));
    std::future::poll_fn(|cx| {
        if done(&progress) {
            return Poll::Ready(None);
        }
        if let Poll::Ready(r) = run.as_mut().poll(cx) {
            return Poll::Ready(Some(r));
        }
        if done(&progress) {
            return Poll::Ready(None);
        }
        while tick.poll_tick(cx).is_ready() {}
        Poll::Pending
    })
    .await
}
