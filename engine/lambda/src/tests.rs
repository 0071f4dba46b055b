//! The handler in-process, with the event shapes AWS sends (from the Lambda, S3, SQS and
//! EventBridge documentation). The end-to-end test runs against the local AWS emulator
//! (moto on 127.0.0.1, started by `.ci/run`).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

const KEY: &str = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/02/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20250602T1005Z_a1b2c3d4.log.gz";

fn s3_notification(bucket: &str, key: &str, size: u64) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-06-02T10:05:12.345Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "flowlens-new-logs",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": format!("arn:aws:s3:::{bucket}")
            },
            "object": {
                "key": key,
                "size": size,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": "0055AED6DCD90281E5"
            }
        }
    }]})
}

fn sqs_message(id: &str, body: &str) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": "MessageReceiptHandle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1523232000000",
            "SenderId": "123456789012",
            "ApproximateFirstReceiveTimestamp": "1523232000001"
        },
        "messageAttributes": {},
        "md5OfBody": "7b270e59b47ff90a553787216d55d91d",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:flowlens-new-logs",
        "awsRegion": "us-east-1"
    })
}

fn scheduled() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2025-06-03T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/flowlens-schedule"],
        "detail": {}
    })
}

fn test_event() -> Value {
    json!({
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2025-06-02T10:00:00.000Z",
        "Bucket": "my-logs",
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
    })
}

#[test]
fn s3_notifications_name_their_objects_with_decoded_keys() {
    let t = parse_event(&s3_notification(
        "my-logs",
        "logs/My+Folder/a%3Db%2B.log.gz",
        12,
    ))
    .unwrap();
    let Trigger::Objects { objects, sqs, .. } = t else {
        panic!("not objects")
    };
    assert!(!sqs);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].0.uri, "s3://my-logs/logs/My Folder/a=b+.log.gz");
    assert_eq!(objects[0].0.size, 12);
    assert_eq!(
        objects[0].0.etag.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    // The key layout is understood (account, region, date) as when listed.
    let t = parse_event(&s3_notification("my-logs", KEY, 1)).unwrap();
    let Trigger::Objects { objects, .. } = t else {
        panic!("not objects")
    };
    assert_eq!(
        objects[0].0.info.account_id.as_deref(),
        Some("123456789012")
    );
    assert!(objects[0].0.info.span.is_some());
    // Removals are not work.
    let mut removed = s3_notification("my-logs", KEY, 1);
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
    let Trigger::Objects { objects, .. } = parse_event(&removed).unwrap() else {
        panic!("not objects")
    };
    assert!(objects.is_empty());
}

#[test]
fn sqs_messages_map_objects_to_message_ids() {
    let sns = json!({
        "Type": "Notification",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:new-logs",
        "Message": s3_notification("b", "p/two.log", 2).to_string(),
        "Timestamp": "2025-06-02T10:05:13.000Z"
    });
    let event = json!({"Records": [
        sqs_message("m1", &s3_notification("b", "p/one.log", 1).to_string()),
        sqs_message("m2", &sns.to_string()),
        sqs_message("m3", &test_event().to_string()),
        sqs_message("m4", "not json"),
    ]});
    let Trigger::Objects {
        objects,
        sqs,
        unreadable_messages,
    } = parse_event(&event).unwrap()
    else {
        panic!("not objects")
    };
    assert!(sqs);
    let got: Vec<(&str, Option<&str>)> = objects
        .iter()
        .map(|(o, m)| (o.uri.as_str(), m.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("s3://b/p/one.log", Some("m1")),
            ("s3://b/p/two.log", Some("m2"))
        ]
    );
    assert_eq!(unreadable_messages, vec!["m4".to_string()]);
}

#[test]
fn eventbridge_schedules_and_object_created_events() {
    assert_eq!(parse_event(&scheduled()).unwrap(), Trigger::Scheduled);
    let created = json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2025-06-02T10:05:13Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::my-logs"],
        "detail": {
            "version": "0",
            "bucket": {"name": "my-logs"},
            "object": {"key": "a%20b.log", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "00617F08299329D189"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject"
        }
    });
    let Trigger::Objects { objects, .. } = parse_event(&created).unwrap() else {
        panic!("not objects")
    };
    assert_eq!(objects[0].0.uri, "s3://my-logs/a b.log");
    assert!(parse_event(&json!({"hello": "world"})).is_err());
}

#[test]
fn settings_from_the_environment() {
    let env = |pairs: &[(&str, &str)]| {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    };
    let s = Settings::from_vars(env(&[
        ("FLOWLENS_SOURCES", "s3://logs/AWSLogs/, s3://waf/logs"),
        ("FLOWLENS_STATE", "s3://state/flowlens"),
        ("FLOWLENS_SECURITY_HUB", "false"),
        ("FLOWLENS_LOOKBACK", "6h"),
    ]))
    .unwrap();
    assert_eq!(s.sources.len(), 2);
    assert!(!s.security_hub);
    assert_eq!(s.lookback_secs, 6 * 3600);
    assert_eq!(s.lateness_secs, 1800);
    // Decoding and detecting on one task where the function has one vCPU's time.
    let base = [
        ("FLOWLENS_SOURCES", "s3://l/p"),
        ("FLOWLENS_STATE", "s3://s/p"),
    ];
    let stages = |more: &[(&str, &str)]| {
        Settings::from_vars(env(&[&base[..], more].concat()))
            .unwrap()
            .stages
    };
    assert_eq!(
        stages(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]),
        Stages::Inline
    );
    assert_eq!(
        stages(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1769")]),
        Stages::Inline
    );
    assert_eq!(
        stages(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")]),
        Stages::for_this_machine()
    );
    assert_eq!(stages(&[]), Stages::for_this_machine());
    assert_eq!(
        stages(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
            ("FLOWLENS_STAGES", "threads")
        ]),
        Stages::Threads
    );
    assert_eq!(stages(&[("FLOWLENS_STAGES", "inline")]), Stages::Inline);
    for (bad, needle) in [
        (vec![("FLOWLENS_STATE", "s3://s/p")], "FLOWLENS_SOURCES"),
        (vec![("FLOWLENS_SOURCES", "s3://l/p")], "FLOWLENS_STATE"),
        (
            vec![
                ("FLOWLENS_SOURCES", "/local"),
                ("FLOWLENS_STATE", "s3://s/p"),
            ],
            "not an s3://",
        ),
        (
            vec![
                ("FLOWLENS_SOURCES", "s3://l/p"),
                ("FLOWLENS_STATE", "s3://s/p"),
                ("FLOWLENS_LATENESS", "soon"),
            ],
            "FLOWLENS_LATENESS",
        ),
        (
            vec![
                ("FLOWLENS_SOURCES", "s3://l/p"),
                ("FLOWLENS_STATE", "s3://s/p"),
                ("FLOWLENS_SECURITY_HUB", "maybe"),
            ],
            "FLOWLENS_SECURITY_HUB",
        ),
        (
            vec![
                ("FLOWLENS_SOURCES", "s3://l/p"),
                ("FLOWLENS_STATE", "s3://s/p"),
                ("FLOWLENS_STAGES", "fast"),
            ],
            "FLOWLENS_STAGES",
        ),
    ] {
        let e = Settings::from_vars(env(&bad)).unwrap_err();
        assert!(e.contains(needle), "{e}");
    }
    assert_eq!(
        account_of_arn("arn:aws:lambda:us-east-1:123456789012:function:flowlens"),
        Some("123456789012")
    );
    assert_eq!(account_of_arn("nope"), None);
}

#[test]
fn errors_say_whether_to_retry() {
    let d: lambda_runtime::Diagnostic = HandlerError::retryable("x").into();
    assert_eq!(d.error_type, "Retryable");
    let d: lambda_runtime::Diagnostic = HandlerError::fatal("y").into();
    assert_eq!(d.error_type, "NonRetryable");
}

const GATE: &str = "needs the local AWS emulator (moto): run .ci/run, or start `moto_server` and set FLOWLENS_TEST_S3_ENDPOINT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto); run by .ci/run"]
async fn handler_end_to_end_against_the_emulator() {
    let endpoint = std::env::var("FLOWLENS_TEST_S3_ENDPOINT").unwrap_or_else(|_| panic!("{GATE}"));
    let conf = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-2"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .build();
    let s3 = aws::s3_client(&conf);
    let bucket = format!("fl-lambda-{}", std::process::id());
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsEast2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let m = flowlens_samples::generate(&flowlens_samples::Config {
        out: tmp.path().to_path_buf(),
        start: "2025-06-02T10:00:00Z".parse().unwrap(),
        hours: 1,
        seed: 4,
        scale: 0.5,
        incidents: true,
    })
    .unwrap();
    let mut etags = Vec::new();
    for o in &m.objects {
        let put = s3
            .put_object()
            .bucket(&bucket)
            .key(format!("logs/{}", o.key))
            .body(std::fs::read(tmp.path().join(&o.key)).unwrap().into())
            .send()
            .await
            .unwrap();
        etags.push(put.e_tag().unwrap().trim_matches('"').to_string());
    }
    let settings = Settings::from_vars(|k| match k {
        "FLOWLENS_SOURCES" => Some(format!("s3://{bucket}/logs/")),
        "FLOWLENS_STATE" => Some(format!("s3://{bucket}/state")),
        _ => None,
    })
    .unwrap();
    let handler = Handler::new(settings, conf.clone())
        .await
        .unwrap()
        .with_clock(|| "2025-06-03T12:00:00Z".parse().unwrap());
    let arn = "arn:aws:lambda:us-east-2:123456789012:function:flowlens";
    let key = |i: usize| format!("logs/{}", m.objects[i].key);
    let size = |i: usize| {
        std::fs::metadata(tmp.path().join(&m.objects[i].key))
            .unwrap()
            .len()
    };
    // A notification as S3 sends it for object i (its real size and ETag).
    let notify = |i: usize| {
        let mut n = s3_notification(&bucket, &key(i), size(i));
        n["Records"][0]["s3"]["object"]["eTag"] = etags[i].clone().into();
        n
    };

    // An S3 notification: that object alone.
    let out = handler.handle(notify(0), arn).await.unwrap();
    assert_eq!(out["objects_read"], 1, "{out}");

    // SQS: one good object, one missing object, a test event and garbage. The missing
    // object's message and the garbage come back as failures; the rest is done.
    let missing = "logs/AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/02/gone.log.gz";
    let event = json!({"Records": [
        sqs_message("good", &notify(1).to_string()),
        sqs_message("missing", &s3_notification(&bucket, missing, 10).to_string()),
        sqs_message("test", &test_event().to_string()),
        sqs_message("garbage", "{"),
        sqs_message("elsewhere", &s3_notification("another-bucket", &key(2), 1).to_string()),
    ]});
    let out = handler.handle(event, arn).await.unwrap();
    assert_eq!(out["objects_read"], 1, "{out}");
    assert_eq!(out["objects_failed"], 1, "{out}");
    let failures: Vec<&str> = out["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(failures, vec!["garbage", "missing"]);

    // The schedule reads everything else, and imports the findings.
    let out = handler.handle(scheduled(), arn).await.unwrap();
    assert_eq!(out["objects_read"], m.objects.len() as u64 - 2, "{out}");
    assert_eq!(out["objects_skipped"], 2, "{out}");
    assert!(out["findings_sent"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(out["findings_failed"], 0, "{out}");
    let held = aws_sdk_securityhub::Client::new(&conf)
        .get_findings()
        .send()
        .await
        .unwrap()
        .findings()
        .len();
    assert!(held as u64 >= out["findings_sent"].as_u64().unwrap());

    // The same notification again reads nothing.
    let out = handler.handle(notify(0), arn).await.unwrap();
    assert_eq!(out["objects_read"], 0, "{out}");
    assert_eq!(out["objects_skipped"], 1, "{out}");

    // An unsupported payload is a non-retryable error.
    let e = handler.handle(json!({"hello": 1}), arn).await.unwrap_err();
    assert!(!e.retryable);
}

/// This package's folder: `CARGO_MANIFEST_DIR` as cargo sets it when it runs the
/// tests (this checkout's), else as it was when they were compiled. A test binary
/// reused from a target dir shared between checkouts carries the compiling one's.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn template() -> (std::path::PathBuf, String) {
    let path = manifest_dir().join("../../deploy/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn the_template_configures_the_function_as_it_reads_its_settings() {
    let (_, t) = template();
    for var in [
        "FLOWLENS_SOURCES",
        "FLOWLENS_STATE",
        "FLOWLENS_SECURITY_HUB",
        "FLOWLENS_CONFIG",
        "FLOWLENS_LOOKBACK",
        "FLOWLENS_LATENESS",
        "FLOWLENS_CONCURRENCY",
    ] {
        assert!(
            t.contains(&format!("{var}:")),
            "{var} not set by the template"
        );
    }
    for needle in [
        "Runtime: provided.al2023",
        "Handler: bootstrap",
        "ReportBatchItemFailures",
        "Action: securityhub:BatchImportFindings",
        "RetentionInDays",
    ] {
        assert!(t.contains(needle), "{needle}");
    }
    // Least privilege: no wildcard actions, no write outside the state prefix.
    assert!(!t.contains("Action: \"*\"") && !t.contains("Action: '*'"));
    assert_eq!(t.matches("s3:PutObject").count(), 1);
}

#[test]
#[ignore = "needs cfn-lint (installed by .ci/run, path in FLOWLENS_CFN_LINT)"]
fn the_template_passes_cfn_lint() {
    let lint =
        std::env::var("FLOWLENS_CFN_LINT").expect("FLOWLENS_CFN_LINT: the cfn-lint executable");
    let (path, _) = template();
    let out = std::process::Command::new(lint)
        .arg(&path)
        .output()
        .expect("run cfn-lint");
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
