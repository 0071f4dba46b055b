//! The `flowlens` binary as users run it (one test binary for the root package).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn flowlens() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowlens"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("AWS_PROFILE")
        .env("FLOWLENS_LOG", "warn");
    c
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-logs/data")
}

fn ok(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn scan_reports_the_five_incidents_of_the_samples() {
    let (stdout, stderr) = ok(&flowlens().arg("scan").arg(samples()).output().unwrap());
    for (detector, severity) in [
        ("exfiltration-spike", "CRITICAL"),
        ("lateral-movement", "CRITICAL"),
        ("cross-az-cost", "MEDIUM"),
        ("scraping-bot", "CRITICAL"),
        ("public-exposure", "HIGH"),
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(detector) && l.contains(severity)),
            "{detector} {severity}:\n{stdout}"
        );
    }
    assert!(
        stderr.contains("96 objects read (0 skipped, 0 failed)"),
        "{stderr}"
    );
}

#[test]
fn with_a_state_the_second_scan_reads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let run = || {
        flowlens()
            .args(["scan", "--state"])
            .arg(&state)
            .arg(samples())
            .output()
            .unwrap()
    };
    let (_, first) = ok(&run());
    assert!(first.contains("96 objects read (0 skipped"), "{first}");
    assert!(first.contains("run state saved"), "{first}");
    let (_, second) = ok(&run());
    assert!(second.contains("0 objects read (96 skipped"), "{second}");
    assert!(second.contains("; 0 findings;"), "{second}");
}

#[test]
fn dry_run_prints_valid_asff_and_saves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = flowlens()
        .args([
            "scan",
            "--dry-run",
            "--account-id",
            "111122223333",
            "--state",
        ])
        .arg(&state)
        .arg(samples())
        .output()
        .unwrap();
    let (stdout, stderr) = ok(&out);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON finding per line"))
        .collect();
    assert_eq!(lines.len(), 10, "{stderr}");
    for v in &lines {
        assert_eq!(v["SchemaVersion"], "2018-10-08");
        assert_eq!(v["AwsAccountId"], "111122223333");
    }
    assert!(
        stderr.contains("DETECTOR"),
        "the summary goes to stderr: {stderr}"
    );
    assert!(!state.exists());
}

#[cfg(unix)]
#[test]
fn watch_stops_gracefully_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut child = flowlens()
        .args(["watch", "--interval", "1s", "--state"])
        .arg(&state)
        .arg(samples())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !state.join("flowlens-state.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no run finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "watch ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("96 objects read"), "{err}");
}

#[test]
fn watch_without_state_is_refused() {
    let out = flowlens().arg("watch").arg(samples()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--state"));
}
