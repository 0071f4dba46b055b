//! The AWS configuration every client of a run shares: loaded once from the standard
//! chain and environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...), with a
//! fallback region, and the clients built from it.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::error::{Error, Result};

/// Region used when the environment names none (S3 listing needs one).
pub const FALLBACK_REGION: &str = "us-east-1";

/// Loads the shared configuration from the standard AWS chain.
pub async fn load() -> SdkConfig {
    let conf = aws_config::defaults(BehaviorVersion::latest()).load().await;
    if conf.region().is_some() {
        return conf;
    }
    conf.into_builder()
        .region(Region::new(FALLBACK_REGION))
        .build()
}

/// An S3 client; path-style addressing with a custom endpoint (an S3-compatible store
/// or a local emulator).
pub fn s3_client(conf: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(conf);
    if conf.endpoint_url().is_some() {
        builder = builder.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The account the credentials belong to (STS GetCallerIdentity): Security Hub only
/// accepts findings for the calling account.
///
/// # Errors
/// The call failed (no credentials, no network).
pub async fn caller_account(conf: &SdkConfig) -> Result<String> {
    let out = aws_sdk_sts::Client::new(conf)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| Error::Aws {
            what: "sts:GetCallerIdentity".into(),
            source: aws_sdk_sts::error::DisplayErrorContext(e)
                .to_string()
                .into(),
        })?;
    out.account().map(String::from).ok_or_else(|| Error::Aws {
        what: "sts:GetCallerIdentity".into(),
        source: "the response names no account".into(),
    })
}
