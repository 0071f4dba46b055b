//! The S3 path through the real `aws-sdk-s3`, against the local AWS emulator (moto
//! server on 127.0.0.1, started by `.ci/run`): pagination past 1,000 objects, a 100 MB
//! object, gzip and parquet objects, a missing object, key-date pruning.

use std::fmt::Write as _;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use chrono::Duration;
use flowlens_engine::pipeline::{CountingSink, Stages};
use flowlens_engine::source::{Location, ObjectMeta};
use flowlens_engine::{Progress, ScanOptions, ScanReport, Scanner};
use futures::StreamExt;

use super::generated::generate;

const GATE: &str = "needs the local AWS emulator (moto): run .ci/run, or start `moto_server` and set FLOWLENS_TEST_S3_ENDPOINT";

fn client() -> Client {
    let endpoint = std::env::var("FLOWLENS_TEST_S3_ENDPOINT").unwrap_or_else(|_| panic!("{GATE}"));
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

async fn bucket(client: &Client, name: &str) -> String {
    let name = format!("{name}-{}", std::process::id());
    client
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

async fn put_all(client: &Client, bucket: &str, objects: Vec<(String, Vec<u8>)>) {
    futures::stream::iter(objects)
        .map(|(key, body)| async move {
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

async fn scan(client: &Client, uri: &str, opts: &ScanOptions) -> ScanReport {
    let scanner = Arc::new(Scanner::with_s3_client(client.clone()));
    let mut sink = CountingSink::default();
    let r = scanner
        .scan(
            &[Location::parse(uri).unwrap()],
            opts,
            &mut sink,
            &Progress::default(),
        )
        .await
        .expect("scan");
    assert_eq!(sink.rows, r.flow_records + r.waf_records);
    r
}

fn v2_line(out: &mut String, i: u64) {
    let _ = writeln!(
        out,
        "2 123456789012 eni-0a1b2c3d4e5f60718 10.0.{}.{} 52.94.{}.{} {} 443 6 {} {} {} {} ACCEPT OK",
        (i / 250) % 250,
        i % 250 + 1,
        i % 7,
        i % 200 + 1,
        32768 + i % 20000,
        1 + i % 50,
        40 + i % 100_000,
        1748858400 + i % 300,
        1748858460 + i % 300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto): run .ci/run, or start `moto_server` and set FLOWLENS_TEST_S3_ENDPOINT"]
async fn s3_prefix_gz_parquet_and_pagination() {
    let client = client();
    let b = bucket(&client, "flowlens-it-mixed").await;
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 2, 21, 0.3);
    let objects = m
        .objects
        .iter()
        .map(|o| {
            (
                format!("logs/{}", o.key),
                std::fs::read(dir.path().join(&o.key)).unwrap(),
            )
        })
        .collect();
    put_all(&client, &b, objects).await;
    // Many small objects: ListObjectsV2 returns at most 1,000 keys a page.
    let many: Vec<(String, Vec<u8>)> = (0..1_050u64)
        .map(|i| {
            let mut s = String::from("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
            v2_line(&mut s, i);
            v2_line(&mut s, i + 1);
            (format!("many/AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/02/obj-{i:05}.log"), s.into_bytes())
        })
        .collect();
    put_all(&client, &b, many).await;

    // Decoded on worker threads, and on the calling task (as on one CPU).
    for stages in [Stages::Threads, Stages::Inline] {
        let opts = ScanOptions {
            stages,
            ..Default::default()
        };
        let r = scan(&client, &format!("s3://{b}/logs/"), &opts).await;
        assert_eq!(r.objects_read, m.objects.len() as u64, "{stages:?}");
        assert_eq!(r.flow_records, m.flow_records, "{stages:?}");
        assert_eq!(r.waf_records, m.waf_records, "{stages:?}");
        assert_eq!(
            (r.malformed_records, r.objects_failed),
            (0, 0),
            "{stages:?}: {:?}",
            r.errors
        );

        let r = scan(&client, &format!("s3://{b}/many/"), &opts).await;
        assert_eq!(r.objects_listed, 1_050, "{stages:?}");
        assert_eq!(r.objects_read, 1_050, "{stages:?}");
        assert_eq!(r.flow_records, 2_100, "{stages:?}");
        assert_eq!(r.malformed_records, 0, "{stages:?}");
    }

    // Key-date pruning happens before any GET.
    let since =
        flowlens_samples::Config::default().start + Duration::hours(2) + Duration::minutes(30);
    let r = scan(
        &client,
        &format!("s3://{b}/logs/"),
        &ScanOptions {
            since: Some(since),
            ..Default::default()
        },
    )
    .await;
    assert!(
        r.objects_skipped > 0 && r.objects_read < m.objects.len() as u64,
        "{r:?}"
    );

    // A missing object is reported; the others are read.
    let scanner = Arc::new(Scanner::with_s3_client(client.clone()));
    let mut listed = scanner
        .list(&[Location::parse(&format!("s3://{b}/many/")).unwrap()])
        .await
        .unwrap();
    listed.truncate(3);
    let missing_key = "many/AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/02/gone.log";
    listed.push(ObjectMeta::new(format!("s3://{b}/{missing_key}"), 10, None));
    for stages in [Stages::Threads, Stages::Inline] {
        let r = scanner
            .read_objects(
                listed.clone(),
                &ScanOptions {
                    stages,
                    ..Default::default()
                },
                &mut CountingSink::default(),
                &Progress::default(),
            )
            .await
            .unwrap();
        assert_eq!(r.objects_failed, 1);
        assert_eq!(r.objects_read, 3);
        assert_eq!(r.flow_records, 6);
        assert_eq!(r.errors.len(), 1);
        assert!(r.errors[0].object.ends_with("gone.log"), "{:?}", r.errors);
        assert!(r.errors[0].reason.contains("NoSuchKey"), "{:?}", r.errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local AWS emulator (moto): run .ci/run, or start `moto_server` and set FLOWLENS_TEST_S3_ENDPOINT"]
async fn s3_hundred_megabyte_object_streams() {
    let client = client();
    let b = bucket(&client, "flowlens-it-big").await;
    let mut text = String::with_capacity(101 << 20);
    let mut n = 0u64;
    while text.len() < 100 << 20 {
        v2_line(&mut text, n);
        n += 1;
    }
    let key = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2025/06/02/big.log";
    put_all(&client, &b, vec![(key.into(), text.into_bytes())]).await;
    let r = scan(
        &client,
        &format!("s3://{b}/AWSLogs/"),
        &ScanOptions::default(),
    )
    .await;
    assert_eq!(r.objects_read, 1);
    assert!(r.bytes_read >= 100 << 20);
    assert_eq!(r.flow_records, n);
    assert_eq!(r.malformed_records, 0);
}
