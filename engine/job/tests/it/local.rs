//! Runs with the state in a local folder.

use std::sync::Arc;

use flowlens_engine::pipeline::Stages;
use flowlens_engine::source::Location;
use flowlens_engine::state::{STATE_FILE, StateStore};
use flowlens_engine::{Progress, ScanOptions, Scanner};
use flowlens_job::{Job, JobConfig, Output};

use super::{clock, digests, generate, run_killed_after};

fn job(logs: &std::path::Path, state: &std::path::Path) -> Job {
    job_with(logs, state, ScanOptions::default())
}

fn job_with(logs: &std::path::Path, state: &std::path::Path, scan: ScanOptions) -> Job {
    let config = JobConfig {
        sources: vec![Location::Local(logs.to_path_buf())],
        scan,
        ..Default::default()
    };
    Job::new(
        config,
        Arc::new(Scanner::new()),
        Some(StateStore::Local(state.to_path_buf())),
        Output::Report,
        "123456789012".into(),
        "us-east-1".into(),
    )
    .with_clock(clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_reads_nothing_and_a_new_object_is_read_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let m = generate(&logs, "2025-06-02T10:00:00Z", 2);
    let job = job(&logs, &tmp.path().join("state"));

    let first = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(first.report.objects_read, m.objects.len() as u64);
    assert_eq!(
        first.report.flow_records + first.report.waf_records,
        m.flow_records + m.waf_records
    );
    assert!(first.findings.len() >= 5, "{}", first.findings.len());
    // Where the CPU went: decoding, the shared preparation and each detector.
    let cpu = &first.report.detector_cpu_secs;
    assert!(first.report.decode_cpu_secs > 0.0);
    assert_eq!(cpu.len(), 6, "{cpu:?}");
    assert!(
        cpu["prepare"] > 0.0 && cpu["exfiltration-spike"] > 0.0,
        "{cpu:?}"
    );
    assert!(first.state_saved);
    assert!(tmp.path().join("state").join(STATE_FILE).is_file());

    let second = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(second.report.objects_read, 0);
    assert_eq!(second.report.objects_skipped, m.objects.len() as u64);
    assert!(second.findings.is_empty(), "{:?}", second.findings);

    // One more object (an hour later) is the only one read.
    let more = tmp.path().join("more");
    let extra = generate(&more, "2025-06-02T12:00:00Z", 1);
    let entry = &extra.objects[0];
    let to = logs.join(&entry.key);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(more.join(&entry.key), &to).unwrap();
    let third = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(third.report.objects_read, 1);
    assert_eq!(
        third.report.flow_records + third.report.waf_records,
        entry.records
    );
    assert_eq!(third.report.objects_skipped, m.objects.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_anywhere_resumes_to_the_findings_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let m = generate(&logs, "2025-06-02T10:00:00Z", 2);
    let reference = job(&logs, &tmp.path().join("reference"))
        .run(None, &Progress::default())
        .await
        .unwrap();
    let want = digests(&reference.findings);
    assert!(!want.is_empty());

    let n = m.objects.len() as u64;
    for kill_at in [0, 1, n / 3, n / 2] {
        let state = tmp.path().join(format!("killed-{kill_at}"));
        let job = job(&logs, &state);
        assert!(
            run_killed_after(&job, kill_at).await.is_none(),
            "the run finished before the kill at {kill_at}"
        );
        assert!(!state.join(STATE_FILE).exists(), "kill at {kill_at} saved");
        let resumed = job.run(None, &Progress::default()).await.unwrap();
        assert_eq!(resumed.report.objects_read, n, "kill at {kill_at}");
        assert_eq!(digests(&resumed.findings), want, "kill at {kill_at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_saves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    generate(&logs, "2025-06-02T10:00:00Z", 1);
    let state = tmp.path().join("state");
    let config = JobConfig {
        sources: vec![Location::Local(logs.clone())],
        ..Default::default()
    };
    let dry = Job::new(
        config,
        Arc::new(Scanner::new()),
        Some(StateStore::Local(state.clone())),
        Output::DryRun,
        "123456789012".into(),
        "us-east-1".into(),
    )
    .with_clock(clock);
    let out = dry.run(None, &Progress::default()).await.unwrap();
    assert!(!out.state_saved);
    assert!(!state.join(STATE_FILE).exists());
    // What would be sent is rendered and valid.
    assert_eq!(out.to_send.len(), out.findings.len());
    for v in &out.to_send {
        flowlens_engine::sink::asff::validate(v).unwrap();
        assert_eq!(v["AwsAccountId"], "123456789012");
    }
}

/// Detecting each batch on the task that decoded it gives the findings of decoding on
/// worker threads, also when such a run is killed and resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stages_find_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let m = generate(&logs, "2025-06-02T10:00:00Z", 2);
    let scan = |stages, concurrency| ScanOptions {
        stages,
        concurrency,
        ..Default::default()
    };
    let threads = job_with(&logs, &tmp.path().join("threads"), scan(Stages::Threads, 4))
        .run(None, &Progress::default())
        .await
        .unwrap();
    let want = digests(&threads.findings);
    assert!(want.len() >= 5, "{}", want.len());
    for concurrency in [1, 4] {
        let state = tmp.path().join(format!("inline-{concurrency}"));
        let inline = job_with(&logs, &state, scan(Stages::Inline, concurrency))
            .run(None, &Progress::default())
            .await
            .unwrap();
        assert_eq!(digests(&inline.findings), want, "concurrency {concurrency}");
        assert_eq!(
            (inline.report.flow_records, inline.report.waf_records),
            (threads.report.flow_records, threads.report.waf_records)
        );
        assert!(inline.report.detector_cpu_secs["prepare"] > 0.0);
    }
    let state = tmp.path().join("inline-killed");
    let job = job_with(&logs, &state, scan(Stages::Inline, 2));
    let n = m.objects.len() as u64;
    assert!(run_killed_after(&job, n / 2).await.is_none());
    let resumed = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(resumed.report.objects_read, n);
    assert_eq!(digests(&resumed.findings), want);
}
