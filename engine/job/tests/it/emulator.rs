//! S3 sources, S3 run state and Security Hub through the real AWS SDK, against the
//! local AWS emulator (moto server on 127.0.0.1, started by `.ci/run`).
//!
//! The emulator is lax: it accepts findings Security Hub would refuse, so the job
//! validates every finding itself (and these tests check what arrives). Failures are
//! injected with SDK interceptors — the same hook point AWS's own request pipeline has —
//! so the real SDK and the real emulator are exercised around them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use flowlens_engine::sink::security_hub::{RetryPolicy, SecurityHub};
use flowlens_engine::source::Location;
use flowlens_engine::state::StateStore;
use flowlens_engine::{Progress, Scanner};
use flowlens_job::{Job, JobConfig, Output};
use serde_json::{Value, json};

use super::{clock, generate, run_killed_after};

const GATE: &str = "needs the local AWS emulator (moto): run .ci/run, or start `moto_server` and set FLOWLENS_TEST_S3_ENDPOINT";
const ACCOUNT: &str = "123456789012";

fn endpoint() -> String {
    std::env::var("FLOWLENS_TEST_S3_ENDPOINT").unwrap_or_else(|_| panic!("{GATE}"))
}

fn creds() -> Credentials {
    Credentials::new("testing", "testing", None, None, "test")
}

fn s3(interceptor: Option<SharedInterceptor>) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds())
        .force_path_style(true);
    if let Some(i) = interceptor {
        b.push_interceptor(i);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// Security Hub in `region` (the emulator keeps one hub per region: tests that compare
/// runs use one region each).
fn hub_client(region: &str, interceptor: Option<SharedInterceptor>) -> aws_sdk_securityhub::Client {
    let mut b = aws_sdk_securityhub::Config::builder()
        .behavior_version(aws_sdk_securityhub::config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_sdk_securityhub::config::Region::new(region.to_string()))
        .credentials_provider(creds());
    if let Some(i) = interceptor {
        b.push_interceptor(i);
    }
    aws_sdk_securityhub::Client::from_conf(b.build())
}

/// Fails every request whose method and path match (a GetObject of one key, the
/// PutObject of the run state).
#[derive(Debug)]
struct FailRequests {
    method: &'static str,
    path_contains: String,
    hits: Arc<AtomicU32>,
}

impl Intercept for FailRequests {
    fn name(&self) -> &'static str {
        "FailRequests"
    }
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request();
        let path = req.uri().split('?').next().unwrap_or_default();
        if req.method() == self.method && path.contains(&self.path_contains) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Err(format!("injected failure of {} {path}", self.method).into());
        }
        Ok(())
    }
}

/// Makes Security Hub refuse findings: the chosen ids are taken out of the
/// BatchImportFindings request (so they are not imported) and reported back in
/// `FailedFindings` with `code`, for the first `times` calls that carry them.
#[derive(Debug)]
struct RefuseFindings {
    ids: BTreeSet<String>,
    code: &'static str,
    times: u32,
    calls: AtomicU32,
    refused: Mutex<Vec<String>>,
}

impl Intercept for RefuseFindings {
    fn name(&self) -> &'static str {
        "RefuseFindings"
    }
    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        if !req.uri().contains("/findings/import") {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(req.body().bytes().ok_or("streaming body")?)?;
        let findings = body["Findings"].as_array().cloned().unwrap_or_default();
        let mut refused = Vec::new();
        if self.calls.fetch_add(1, Ordering::Relaxed) < self.times {
            refused = findings
                .iter()
                .filter_map(|f| f["Id"].as_str())
                .filter(|id| self.ids.contains(*id))
                .map(String::from)
                .collect();
        }
        let kept: Vec<&Value> = findings
            .iter()
            .filter(|f| !refused.iter().any(|id| f["Id"] == id.as_str()))
            .collect();
        let bytes = serde_json::to_vec(&json!({ "Findings": kept }))?;
        req.headers_mut()
            .insert("content-length", bytes.len().to_string());
        *req.body_mut() = SdkBody::from(bytes);
        *self.refused.lock().unwrap() = refused;
        Ok(())
    }
    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let refused = std::mem::take(&mut *self.refused.lock().unwrap());
        if refused.is_empty() {
            return Ok(());
        }
        let failed: Vec<Value> = refused
            .iter()
            .map(|id| json!({"Id": id, "ErrorCode": self.code, "ErrorMessage": "injected by the test"}))
            .collect();
        let resp = ctx.response_mut();
        if resp.status().as_u16() != 200 {
            return Ok(());
        }
        // The emulator answered for the findings it got; answer for all of them.
        let bytes = serde_json::to_vec(&json!({
            "FailedCount": failed.len(),
            "SuccessCount": 0,
            "FailedFindings": failed,
        }))?;
        resp.headers_mut()
            .insert("content-length", bytes.len().to_string());
        *resp.body_mut() = SdkBody::from(bytes);
        Ok(())
    }
}

async fn bucket(client: &aws_sdk_s3::Client, name: &str) -> String {
    let name = format!("{name}-{}", std::process::id());
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

async fn upload(client: &aws_sdk_s3::Client, bucket: &str, dir: &Path, keys: &[String]) {
    for key in keys {
        client
            .put_object()
            .bucket(bucket)
            .key(format!("logs/{key}"))
            .body(ByteStream::from(std::fs::read(dir.join(key)).unwrap()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
    }
}

/// Every finding the hub in `region` holds, by id.
async fn hub_findings(region: &str) -> BTreeMap<String, Value> {
    let client = hub_client(region, None);
    let mut out = BTreeMap::new();
    let mut pages = client
        .get_findings()
        .max_results(100)
        .into_paginator()
        .send();
    let mut total = 0;
    while let Some(page) = pages.next().await {
        for f in page.expect("GetFindings").findings() {
            total += 1;
            out.insert(
                f.id().unwrap_or_default().to_string(),
                json!({
                    "title": f.title(),
                    "description": f.description(),
                    "severity": f.severity().and_then(|s| s.normalized()),
                    "generator": f.generator_id(),
                    "account": f.aws_account_id(),
                    "created": f.created_at(),
                    "updated": f.updated_at(),
                }),
            );
        }
    }
    assert_eq!(total, out.len(), "the hub holds a duplicate id");
    out
}

/// The content that must match between two hubs (timestamps and region differ).
fn content(findings: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    findings
        .iter()
        .map(|(id, v)| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("created");
            v.as_object_mut().unwrap().remove("updated");
            (id.clone(), v)
        })
        .collect()
}

struct Setup {
    _tmp: tempfile::TempDir,
    bucket: String,
    keys: Vec<String>,
    records: u64,
}

async fn setup(name: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let m = generate(&logs, "2025-06-02T10:00:00Z", 2);
    let client = s3(None);
    let bucket = bucket(&client, name).await;
    let keys: Vec<String> = m.objects.iter().map(|o| o.key.clone()).collect();
    upload(&client, &bucket, &logs, &keys).await;
    Setup {
        _tmp: tmp,
        bucket,
        keys,
        records: m.flow_records + m.waf_records,
    }
}

fn job(
    setup: &Setup,
    state_prefix: &str,
    region: &str,
    s3_interceptor: Option<SharedInterceptor>,
    hub_interceptor: Option<SharedInterceptor>,
) -> Job {
    let client = s3(s3_interceptor);
    let config = JobConfig {
        sources: vec![Location::parse(&format!("s3://{}/logs/", setup.bucket)).unwrap()],
        ..Default::default()
    };
    let hub = SecurityHub::new(hub_client(region, hub_interceptor)).with_retry(RetryPolicy {
        attempts: 3,
        base_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(50),
    });
    Job::new(
        config,
        Arc::new(Scanner::with_s3_client(client.clone())),
        Some(StateStore::S3 {
            client,
            bucket: setup.bucket.clone(),
            key: format!("{state_prefix}/flowlens-state.json"),
        }),
        Output::SecurityHub(hub),
        ACCOUNT.into(),
        region.into(),
    )
    .with_clock(clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto); run by .ci/run"]
async fn scan_imports_findings_and_reruns_send_nothing_twice() {
    let setup = setup("fl-job-rerun").await;
    let region = "ap-southeast-1";
    let job = job(&setup, "state", region, None, None);

    let first = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(first.report.objects_read, setup.keys.len() as u64);
    assert_eq!(
        first.report.flow_records + first.report.waf_records,
        setup.records
    );
    let import = first.import.as_ref().unwrap();
    assert!(import.failed.is_empty(), "{:?}", import.failed);
    assert_eq!(import.imported.len(), first.findings.len());
    assert!(first.findings.len() >= 5);
    let held = hub_findings(region).await;
    let ids: BTreeSet<&String> = first.findings.iter().map(|f| &f.id).collect();
    assert_eq!(held.keys().collect::<BTreeSet<_>>(), ids);
    for (id, f) in &held {
        assert_eq!(f["account"], ACCOUNT, "{id}");
        assert!(
            f["generator"].as_str().unwrap().starts_with("flowlens/"),
            "{id}"
        );
    }

    // A second run reads no object again and imports nothing.
    let second = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(second.report.objects_read, 0);
    assert_eq!(second.report.objects_skipped, setup.keys.len() as u64);
    assert_eq!(second.import.as_ref().unwrap().calls, 0);
    assert_eq!(hub_findings(region).await, held);

    // A new object is read alone.
    let tmp = tempfile::tempdir().unwrap();
    let extra = generate(tmp.path(), "2025-06-02T12:00:00Z", 1);
    let key = extra.objects[0].key.clone();
    upload(&s3(None), &setup.bucket, tmp.path(), &[key]).await;
    let third = job.run(None, &Progress::default()).await.unwrap();
    assert_eq!(third.report.objects_read, 1);
    assert_eq!(third.report.objects_skipped, setup.keys.len() as u64);
    assert_eq!(
        third.report.flow_records + third.report.waf_records,
        extra.objects[0].records
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto); run by .ci/run"]
async fn killed_runs_leave_security_hub_as_an_uninterrupted_run() {
    let setup = setup("fl-job-kill").await;
    let reference_region = "eu-west-1";
    let reference = job(&setup, "reference", reference_region, None, None)
        .run(None, &Progress::default())
        .await
        .unwrap();
    assert!(reference.import.unwrap().failed.is_empty());
    let want = content(&hub_findings(reference_region).await);
    assert_eq!(want.len(), reference.findings.len());

    // Killed while reading, then rerun.
    let region = "eu-west-2";
    let n = setup.keys.len() as u64;
    for kill_at in [1, n / 2] {
        let killed = job(&setup, "killed-reading", region, None, None);
        assert!(
            run_killed_after(&killed, kill_at).await.is_none(),
            "run finished before the kill"
        );
        let resumed = killed.run(None, &Progress::default()).await.unwrap();
        assert_eq!(resumed.report.objects_read, n);
        // Each rerun after a kill is a fresh state: restart from nothing next time.
        s3(None)
            .delete_object()
            .bucket(&setup.bucket)
            .key("killed-reading/flowlens-state.json")
            .send()
            .await
            .unwrap();
    }
    assert_eq!(content(&hub_findings(region).await), want);

    // Killed after the import, before the state was saved: the rerun reads everything
    // again and updates the same findings in place.
    let region = "eu-central-1";
    let hits = Arc::new(AtomicU32::new(0));
    let crash = job(
        &setup,
        "killed-saving",
        region,
        Some(SharedInterceptor::new(FailRequests {
            method: "PUT",
            path_contains: "killed-saving/flowlens-state.json".into(),
            hits: Arc::clone(&hits),
        })),
        None,
    );
    let e = crash.run(None, &Progress::default()).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(hits.load(Ordering::Relaxed) >= 1);
    let before = hub_findings(region).await;
    assert_eq!(content(&before), want);
    let rerun = job(&setup, "killed-saving", region, None, None)
        .run(None, &Progress::default())
        .await
        .unwrap();
    assert_eq!(rerun.report.objects_read, n);
    let after = hub_findings(region).await;
    assert_eq!(content(&after), want);
    for (id, f) in &after {
        assert!(
            f["updated"].as_str() >= before[id]["updated"].as_str(),
            "{id}"
        );
    }
    // And a further run sends nothing.
    let quiet = job(&setup, "killed-saving", region, None, None)
        .run(None, &Progress::default())
        .await
        .unwrap();
    assert_eq!(quiet.report.objects_read, 0);
    assert_eq!(quiet.import.unwrap().calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto); run by .ci/run"]
async fn refused_findings_are_retried_then_kept_for_the_next_run() {
    let setup = setup("fl-job-refuse").await;
    // Find the ids this data produces (a dry run in a throwaway region).
    let probe = job(&setup, "probe", "sa-east-1", None, None)
        .run(None, &Progress::default())
        .await
        .unwrap();
    let ids: Vec<String> = probe.findings.iter().map(|f| f.id.clone()).collect();
    assert!(ids.len() >= 4);

    // Transient: the first call refuses three findings; the retry delivers them.
    let region = "ca-central-1";
    let transient: BTreeSet<String> = ids[..3].iter().cloned().collect();
    let run = job(
        &setup,
        "transient",
        region,
        None,
        Some(SharedInterceptor::new(RefuseFindings {
            ids: transient,
            code: "InternalException",
            times: 1,
            calls: AtomicU32::new(0),
            refused: Mutex::new(Vec::new()),
        })),
    )
    .run(None, &Progress::default())
    .await
    .unwrap();
    let import = run.import.unwrap();
    assert_eq!(import.retried, 3);
    assert!(import.failed.is_empty(), "{:?}", import.failed);
    assert_eq!(hub_findings(region).await.len(), ids.len());

    // Persistent: one finding is refused on every attempt; it is reported, kept in the
    // state, and the next run (Security Hub healthy again) sends it alone.
    let region = "ap-northeast-1";
    let stuck: BTreeSet<String> = [ids[0].clone()].into();
    let run = job(
        &setup,
        "persistent",
        region,
        None,
        Some(SharedInterceptor::new(RefuseFindings {
            ids: stuck,
            code: "InternalException",
            times: u32::MAX,
            calls: AtomicU32::new(0),
            refused: Mutex::new(Vec::new()),
        })),
    )
    .run(None, &Progress::default())
    .await
    .unwrap();
    let import = run.import.unwrap();
    assert_eq!(import.failed.len(), 1);
    assert_eq!(import.failed[0].id, ids[0]);
    assert_eq!(import.failed[0].code, "InternalException");
    assert_eq!(hub_findings(region).await.len(), ids.len() - 1);
    let next = job(&setup, "persistent", region, None, None)
        .run(None, &Progress::default())
        .await
        .unwrap();
    assert_eq!(next.report.objects_read, 0);
    assert_eq!(next.import.unwrap().imported, vec![ids[0].clone()]);
    assert_eq!(hub_findings(region).await.len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto); run by .ci/run"]
async fn a_failing_get_object_is_reported_and_retried_next_run() {
    let setup = setup("fl-job-getfail").await;
    let region = "us-west-1";
    let victim = setup.keys[setup.keys.len() / 2].clone();
    let hits = Arc::new(AtomicU32::new(0));
    let failing = job(
        &setup,
        "state",
        region,
        Some(SharedInterceptor::new(FailRequests {
            method: "GET",
            path_contains: victim.clone(),
            hits: Arc::clone(&hits),
        })),
        None,
    );
    let first = failing.run(None, &Progress::default()).await.unwrap();
    assert!(hits.load(Ordering::Relaxed) >= 1);
    assert_eq!(first.report.objects_failed, 1);
    assert_eq!(first.report.objects_read, setup.keys.len() as u64 - 1);
    assert_eq!(
        first.retry_objects,
        vec![format!("s3://{}/logs/{victim}", setup.bucket)]
    );
    assert!(
        first
            .report
            .errors
            .iter()
            .any(|e| e.object.ends_with(&victim)),
        "{:?}",
        first.report.errors
    );
    assert!(first.state_saved);

    let second = job(&setup, "state", region, None, None)
        .run(None, &Progress::default())
        .await
        .unwrap();
    assert_eq!(second.report.objects_read, 1);
    assert_eq!(second.report.objects_failed, 0);
    assert!(second.retry_objects.is_empty());
}
