//! S3 prefixes through the AWS SDK: ListObjectsV2 with pagination, streaming GetObject.
//!
//! Credentials, region, profile, retries and endpoint come from the standard AWS chain
//! and environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...). With a custom
//! endpoint (an S3-compatible store or a local emulator) path-style addressing is used.

use aws_sdk_s3::Client;
use futures::TryStreamExt;

use super::{ChunkStream, ObjectMeta};
use crate::error::{BoxError, Error, Result};

/// Builds an S3 client from the standard AWS configuration chain.
pub async fn client_from_env() -> Client {
    crate::aws::s3_client(&crate::aws::load().await)
}

/// `s3://bucket/key`.
pub fn uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Lists every object under `s3://bucket/prefix` (all pages). Folder markers (keys
/// ending in `/`) are left out.
///
/// # Errors
/// A ListObjectsV2 call failed after the SDK's retries.
pub async fn list(client: &Client, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::List {
            uri: uri(bucket, prefix),
            source: aws_sdk_s3::error::DisplayErrorContext(e).to_string().into(),
        })?;
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            if key.ends_with('/') {
                continue;
            }
            out.push(ObjectMeta::new(
                uri(bucket, key),
                obj.size().unwrap_or(0).max(0) as u64,
                obj.e_tag().map(|e| e.trim_matches('"').to_string()),
            ));
        }
    }
    Ok(out)
}

/// Opens `s3://bucket/key` as a stream of body chunks (never buffered whole).
///
/// # Errors
/// GetObject failed after the SDK's retries (missing object, access denied, ...).
pub async fn open(client: &Client, bucket: &str, key: &str) -> Result<ChunkStream> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| Error::Read {
            object: uri(bucket, key),
            source: aws_sdk_s3::error::DisplayErrorContext(e).to_string().into(),
        })?;
    let body = out.body;
    Ok(Box::pin(
        futures::stream::try_unfold(body, |mut body| async move {
            Ok(body.try_next().await?.map(|chunk| (chunk, body)))
        })
        .map_err(|e: aws_smithy_types::byte_stream::error::Error| -> BoxError { Box::new(e) }),
    ))
}

/// Splits an `s3://bucket/key` URI.
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    uri.strip_prefix("s3://")?.split_once('/')
}
