//! The `flowlens` binary as users run it (one test binary for the root package).

mod archive_sql;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// This package's folder: `CARGO_MANIFEST_DIR` as cargo sets it when it runs the
/// tests (this checkout's), else as it was when they were compiled. A test binary
/// reused from a target dir shared between checkouts carries the compiling one's.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn flowlens() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowlens"));
    c.current_dir(manifest_dir())
        .env_remove("AWS_PROFILE")
        .env("FLOWLENS_LOG", "warn");
    c
}

fn samples() -> PathBuf {
    manifest_dir().join("sample-logs/data")
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
    assert_eq!(lines.len(), 8, "{stderr}");
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

#[test]
fn archive_then_sql_on_the_bundled_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("archive");
    let findings = tmp.path().join("findings.jsonl");
    ok(&flowlens()
        .args(["scan", "--quiet", "--out"])
        .arg(&findings)
        .arg(samples())
        .output()
        .unwrap());
    let (_, stderr) = ok(&flowlens()
        .arg("archive")
        .arg(samples())
        .arg("--to")
        .arg(&data)
        .arg("--findings")
        .arg(&findings)
        .output()
        .unwrap());
    assert!(stderr.contains("96 objects archived"), "{stderr}");
    assert!(stderr.contains("10048 flow records and"), "{stderr}");
    let (_, again) = ok(&flowlens()
        .arg("archive")
        .arg(samples())
        .arg("--to")
        .arg(&data)
        .output()
        .unwrap());
    assert!(
        again.contains("0 objects archived (96 already archived"),
        "{again}"
    );

    let sql = |args: &[&str]| {
        let mut c = flowlens();
        c.arg("sql").arg("--data").arg(&data).args(args);
        c.output().unwrap()
    };
    let (out, _) = ok(&sql(&[
        "--format",
        "csv",
        "SELECT count(*) AS n FROM flows",
    ]));
    assert_eq!(out, "n\n10048\n");
    let (out, _) = ok(&sql(&[
        "--query",
        "TopTalkers",
        "--param",
        "limit=3",
        "--format",
        "json",
    ]));
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|l| l.starts_with("{\"srcaddr\":")), "{out}");
    let (out, _) = ok(&sql(&["-q", "FindingsByDetector"]));
    for d in [
        "exfiltration-spike",
        "lateral-movement",
        "cross-az-cost",
        "scraping-bot",
        "public-exposure",
    ] {
        assert!(out.contains(d), "{d} missing:\n{out}");
    }
    // A script on stdin, several statements.
    let mut child = flowlens()
        .args(["sql", "--format", "csv", "--data"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        b"SELECT 1 AS a; -- one\nSELECT 'x;y' AS b;",
    )
    .unwrap();
    let (out, _) = ok(&child.wait_with_output().unwrap());
    assert_eq!(out, "a\n1\nb\nx;y\n");

    // Refused and wrong queries: exit 2 with the reason and the position.
    let out = sql(&["DELETE FROM flows"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    let out = sql(&["SELECT nosuch FROM flows"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("line 1, column 8") && err.contains('^'),
        "{err}"
    );
    let (list, _) = ok(&flowlens().args(["sql", "--list"]).output().unwrap());
    for name in [
        "TopTalkers",
        "TrafficFrmSrcAddr",
        "WafRequestsPerIp5Min",
        "CrossAzByPair",
    ] {
        assert!(list.contains(name), "{list}");
    }
}

/// The analyst's path from a fresh clone: generate, scan, archive, then the terminal UI
/// driven by keys alone reaches each kind of finding's evidence and its raw records.
#[test]
fn generate_scan_archive_then_tui_reaches_evidence_and_raw_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, data, findings) = (
        tmp.path().join("logs"),
        tmp.path().join("archive"),
        tmp.path().join("findings.jsonl"),
    );
    ok(&flowlens()
        .args(["generate", "--hours", "2", "--out"])
        .arg(&logs)
        .output()
        .unwrap());
    ok(&flowlens()
        .args(["scan", "--quiet", "--out"])
        .arg(&findings)
        .arg(&logs)
        .output()
        .unwrap());
    ok(&flowlens()
        .args(["archive", "--quiet", "--to"])
        .arg(&data)
        .arg("--findings")
        .arg(&findings)
        .arg(&logs)
        .output()
        .unwrap());
    let tui = |keys: &str| {
        let (out, _) = ok(&flowlens()
            .arg("tui")
            .arg("--findings")
            .arg(&findings)
            .arg("--data")
            .arg(&data)
            .args(["--size", "160x40", "--script", keys])
            .output()
            .unwrap());
        out
    };
    let main = tui("");
    assert!(
        main.contains("SEVERITY") && main.contains("CRITICAL"),
        "{main}"
    );
    for (detector, raw) in [
        ("exfiltration-spike", "dstaddr"),
        ("lateral-movement", "dstport"),
        ("cross-az-cost", "srcaddr"),
        ("public-exposure", "dstport"),
        ("scraping-bot", "client_ip"),
    ] {
        // Filter to the detector, open the top finding: its evidence.
        let detail = tui(&format!("/{detector} Enter Enter"));
        assert!(
            detail.contains(&format!("detector      {detector}")) && detail.contains("Evidence"),
            "{detector}:\n{detail}"
        );
        // Then pivot into the archive: its raw records, at least one row.
        let pivot = tui(&format!("/{detector} Enter Enter p"));
        assert!(pivot.contains("archive rows for"), "{detector}:\n{pivot}");
        assert!(pivot.contains(raw), "{detector}:\n{pivot}");
        assert!(
            pivot.contains("(rows 1–") && !pivot.contains("No rows."),
            "{detector}:\n{pivot}"
        );
    }
    // The boards and the SQL console answer from the archive.
    let costs = tui("c");
    assert!(
        costs.contains("dollars by AZ pair") && costs.contains('$'),
        "{costs}"
    );
    let waf = tui("w");
    assert!(
        waf.contains("top clients") && waf.contains("requests"),
        "{waf}"
    );
    let sql = tui(": SELECT Space count(*) Space AS Space n Space FROM Space flows Enter");
    assert!(sql.contains("(rows 1–1 of 1)"), "{sql}");
    // Not a terminal and no script: a clear refusal.
    let out = flowlens()
        .arg("tui")
        .arg("--findings")
        .arg(&findings)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a terminal"));
}

#[test]
fn archiving_into_a_source_folder_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = flowlens()
        .arg("archive")
        .arg(tmp.path())
        .arg("--to")
        .arg(tmp.path().join("archive"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the sources"));
}

#[test]
#[ignore = "needs the local AWS emulator (moto): run .ci/run, or start `moto_server` and set FLOWLENS_TEST_S3_ENDPOINT"]
fn archive_to_s3_and_query_it_there() {
    let endpoint = std::env::var("FLOWLENS_TEST_S3_ENDPOINT").expect("FLOWLENS_TEST_S3_ENDPOINT");
    let bucket = format!("archive-{}", std::process::id());
    let aws = |c: &mut Command| {
        c.env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN");
    };
    // Create the bucket through the S3 API the way a user would (PUT /bucket).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    });
    let to = format!("s3://{bucket}/archive");
    for expect in [
        "96 objects archived",
        "0 objects archived (96 already archived",
    ] {
        let mut c = flowlens();
        c.arg("archive").arg(samples()).arg("--to").arg(&to);
        aws(&mut c);
        let (_, stderr) = ok(&c.output().unwrap());
        assert!(stderr.contains(expect), "{stderr}");
    }
    let mut c = flowlens();
    c.args(["sql", "--format", "csv", "--data", &to]).arg(
        "SELECT count(*) AS n, count(DISTINCT hour) AS hours FROM flows WHERE date = '2025-06-02'",
    );
    aws(&mut c);
    let (out, _) = ok(&c.output().unwrap());
    assert_eq!(out, "n,hours\n10048,2\n");
    let mut c = flowlens();
    c.args([
        "sql",
        "--format",
        "csv",
        "--data",
        &to,
        "-q",
        "WafBlocksByCountry",
    ]);
    aws(&mut c);
    let (out, _) = ok(&c.output().unwrap());
    assert!(
        out.starts_with("country,blocked,clients\n") && out.lines().count() > 2,
        "{out}"
    );
}
