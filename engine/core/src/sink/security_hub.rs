//! The Security Hub sink: BatchImportFindings with batching, retries and a report.
//!
//! ```text
//! rendered ASFF (JSON) ─► validate ─► batches (≤ 100 findings, ≤ 6 MB) ─► BatchImportFindings
//!                                                  ▲                              │
//!                                                  └── FailedFindings, throttling ┘ (bounded backoff)
//! ```
//!
//! Findings are rendered once, as JSON, by [`super::asff`]; [`to_sdk`] translates that JSON
//! into the SDK's types field by field and refuses any field it does not know, so the
//! JSON-lines output, `--dry-run` and what Security Hub receives never drift apart.
//!
//! Security Hub updates a finding in place when it receives the same `Id` with a later
//! `UpdatedAt`, so sending a finding again is an update, never a duplicate.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, FindingProviderFields, FindingProviderSeverity, Partition, Recommendation,
    RecordState, Remediation, Resource, Severity, SeverityLabel,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::asff;

/// BatchImportFindings accepts at most 100 findings per call.
pub const MAX_FINDINGS_PER_CALL: usize = 100;
/// ... and at most 6 MB per request (counted in decimal megabytes, the stricter reading).
pub const MAX_REQUEST_BYTES: usize = 6_000_000;
/// Room kept for the request envelope (`{"Findings":[...]}` and separators).
const ENVELOPE_BYTES: usize = 1024;

/// How often and how long a failed import is retried (on top of the SDK's own retries of
/// throttled or failed HTTP calls).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per finding, the first included.
    pub attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// A finding Security Hub did not take, after every retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedImport {
    pub id: String,
    pub code: String,
    pub message: String,
}

/// What one import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Ids Security Hub accepted (created or updated).
    pub imported: Vec<String>,
    /// Findings refused: invalid before sending, or failed after every retry.
    pub failed: Vec<FailedImport>,
    /// BatchImportFindings calls made.
    pub calls: u32,
    /// Findings sent again after a failure.
    pub retried: u32,
}

/// Splits findings into calls of at most [`MAX_FINDINGS_PER_CALL`] findings and
/// [`MAX_REQUEST_BYTES`] of JSON, in order. `sizes[i]` is finding `i`'s JSON size.
pub fn plan_batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = ENVELOPE_BYTES;
    for (i, &size) in sizes.iter().enumerate() {
        let full = i - start == MAX_FINDINGS_PER_CALL || bytes + size + 1 > MAX_REQUEST_BYTES;
        if full && i > start {
            out.push(start..i);
            start = i;
            bytes = ENVELOPE_BYTES;
        }
        bytes += size + 1;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// Whether a FailedFindings error code is worth another attempt. Invalid input, access
/// and size errors will fail again; anything else (internal errors, throttling,
/// limits) may not.
fn retryable_code(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    !(c.contains("invalid") || c.contains("access") || c.contains("size"))
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{key} is missing or not a string"))
}

fn int_field(v: &Value, key: &str) -> Result<i32, String> {
    v.get(key)
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("{key} is missing or not an integer"))
}

fn str_list(v: &Value, key: &str) -> Result<Vec<String>, String> {
    v.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{key} is missing or not a list"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(String::from)
                .ok_or_else(|| format!("{key} holds a non-string"))
        })
        .collect()
}

fn only_keys(v: &Value, what: &str, allowed: &[&str]) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{what} is not an object"))?;
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what}.{k} has no translation to the SDK")),
        None => Ok(()),
    }
}

/// Translates a finding rendered by [`asff::render`] into the SDK's type.
///
/// # Errors
/// A field is missing, mistyped, or unknown to this translation (a test keeps the
/// renderer and this translation in step).
pub fn to_sdk(v: &Value) -> Result<AwsSecurityFinding, String> {
    only_keys(
        v,
        "finding",
        &[
            "SchemaVersion",
            "Id",
            "ProductArn",
            "GeneratorId",
            "AwsAccountId",
            "Types",
            "CreatedAt",
            "UpdatedAt",
            "FirstObservedAt",
            "LastObservedAt",
            "Severity",
            "Confidence",
            "Title",
            "Description",
            "Remediation",
            "ProductFields",
            "Resources",
            "Region",
            "RecordState",
            "FindingProviderFields",
        ],
    )?;
    let severity = v.get("Severity").ok_or("Severity is missing")?;
    only_keys(severity, "Severity", &["Label", "Normalized"])?;
    let remediation = v.get("Remediation").ok_or("Remediation is missing")?;
    only_keys(remediation, "Remediation", &["Recommendation"])?;
    let recommendation = remediation
        .get("Recommendation")
        .ok_or("Remediation.Recommendation is missing")?;
    only_keys(recommendation, "Remediation.Recommendation", &["Text"])?;
    let fpf = v
        .get("FindingProviderFields")
        .ok_or("FindingProviderFields is missing")?;
    only_keys(
        fpf,
        "FindingProviderFields",
        &["Types", "Severity", "Confidence"],
    )?;
    let fps = fpf
        .get("Severity")
        .ok_or("FindingProviderFields.Severity is missing")?;
    only_keys(
        fps,
        "FindingProviderFields.Severity",
        &["Label", "Original"],
    )?;

    let mut fields = HashMap::new();
    for (k, val) in v
        .get("ProductFields")
        .and_then(Value::as_object)
        .ok_or("ProductFields is missing")?
    {
        let val = val
            .as_str()
            .ok_or_else(|| format!("ProductFields.{k} is not a string"))?;
        fields.insert(k.clone(), val.to_string());
    }
    let mut resources = Vec::new();
    for r in v
        .get("Resources")
        .and_then(Value::as_array)
        .ok_or("Resources is missing")?
    {
        only_keys(r, "Resources[]", &["Type", "Id", "Partition", "Region"])?;
        resources.push(
            Resource::builder()
                .r#type(str_field(r, "Type")?)
                .id(str_field(r, "Id")?)
                .partition(Partition::from(str_field(r, "Partition")?))
                .region(str_field(r, "Region")?)
                .build(),
        );
    }
    Ok(AwsSecurityFinding::builder()
        .schema_version(str_field(v, "SchemaVersion")?)
        .id(str_field(v, "Id")?)
        .product_arn(str_field(v, "ProductArn")?)
        .generator_id(str_field(v, "GeneratorId")?)
        .aws_account_id(str_field(v, "AwsAccountId")?)
        .set_types(Some(str_list(v, "Types")?))
        .created_at(str_field(v, "CreatedAt")?)
        .updated_at(str_field(v, "UpdatedAt")?)
        .first_observed_at(str_field(v, "FirstObservedAt")?)
        .last_observed_at(str_field(v, "LastObservedAt")?)
        .severity(
            Severity::builder()
                .label(SeverityLabel::from(str_field(severity, "Label")?))
                .normalized(int_field(severity, "Normalized")?)
                .build(),
        )
        .confidence(int_field(v, "Confidence")?)
        .title(str_field(v, "Title")?)
        .description(str_field(v, "Description")?)
        .remediation(
            Remediation::builder()
                .recommendation(
                    Recommendation::builder()
                        .text(str_field(recommendation, "Text")?)
                        .build(),
                )
                .build(),
        )
        .set_product_fields(Some(fields))
        .set_resources(Some(resources))
        .region(str_field(v, "Region")?)
        .record_state(RecordState::from(str_field(v, "RecordState")?))
        .finding_provider_fields(
            FindingProviderFields::builder()
                .set_types(Some(str_list(fpf, "Types")?))
                .severity(
                    FindingProviderSeverity::builder()
                        .label(SeverityLabel::from(str_field(fps, "Label")?))
                        .original(str_field(fps, "Original")?)
                        .build(),
                )
                .confidence(int_field(fpf, "Confidence")?)
                .build(),
        )
        .build())
}

/// Sends findings to Security Hub.
#[derive(Debug, Clone)]
pub struct SecurityHub {
    client: Client,
    retry: RetryPolicy,
}

impl SecurityHub {
    pub fn new(client: Client) -> Self {
        SecurityHub {
            client,
            retry: RetryPolicy::default(),
        }
    }

    /// Builds the client from the standard AWS configuration chain.
    pub async fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(conf))
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Imports rendered findings: each is validated, then sent in batches; findings in
    /// `FailedFindings` with a retryable code, and whole calls that failed after the
    /// SDK's retries, are sent again with exponential backoff up to
    /// [`RetryPolicy::attempts`] times. Never fails as a whole: what was not imported is
    /// in [`ImportReport::failed`].
    pub async fn import(&self, findings: &[Value]) -> ImportReport {
        let mut report = ImportReport::default();
        let mut todo: Vec<(String, AwsSecurityFinding, usize)> = Vec::new();
        for v in findings {
            let id = v
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let checked = asff::validate(v)
                .map_err(|p| p.join("; "))
                .and_then(|()| to_sdk(v));
            match checked {
                Ok(sdk) => todo.push((id, sdk, v.to_string().len())),
                Err(message) => report.failed.push(FailedImport {
                    id,
                    code: "FlowlensInvalidFinding".into(),
                    message,
                }),
            }
        }
        let mut attempt = 0;
        while !todo.is_empty() {
            attempt += 1;
            if attempt > 1 {
                report.retried += todo.len() as u32;
                tokio::time::sleep(self.retry.delay(attempt - 1)).await;
            }
            let last = attempt >= self.retry.attempts;
            let sizes: Vec<usize> = todo.iter().map(|t| t.2).collect();
            let mut again = Vec::new();
            let mut rest = todo.into_iter();
            for range in plan_batches(&sizes) {
                let batch: Vec<_> = rest.by_ref().take(range.len()).collect();
                report.calls += 1;
                let sent = self
                    .client
                    .batch_import_findings()
                    .set_findings(Some(batch.iter().map(|t| t.1.clone()).collect()))
                    .send()
                    .await;
                match sent {
                    Ok(out) => {
                        let failed: HashMap<&str, (&str, &str)> = out
                            .failed_findings()
                            .iter()
                            .map(|f| {
                                (
                                    f.id().unwrap_or_default(),
                                    (
                                        f.error_code().unwrap_or("Unknown"),
                                        f.error_message().unwrap_or_default(),
                                    ),
                                )
                            })
                            .collect();
                        for item in batch {
                            match failed.get(item.0.as_str()) {
                                None => report.imported.push(item.0),
                                Some((code, message)) => {
                                    tracing::warn!(
                                        id = %item.0, code, message, attempt,
                                        "Security Hub refused a finding."
                                    );
                                    if last || !retryable_code(code) {
                                        report.failed.push(FailedImport {
                                            id: item.0,
                                            code: code.to_string(),
                                            message: message.to_string(),
                                        });
                                    } else {
                                        again.push(item);
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        let message =
                            aws_sdk_securityhub::error::DisplayErrorContext(&e).to_string();
                        let code = e
                            .as_service_error()
                            .and_then(|s| aws_sdk_securityhub::error::ProvideErrorMetadata::code(s))
                            .unwrap_or("RequestFailed")
                            .to_string();
                        tracing::warn!(%code, %message, attempt, findings = batch.len(), "BatchImportFindings failed.");
                        for item in batch {
                            if last || !retryable_code(&code) {
                                report.failed.push(FailedImport {
                                    id: item.0,
                                    code: code.clone(),
                                    message: message.clone(),
                                });
                            } else {
                                again.push(item);
                            }
                        }
                    }
                }
            }
            todo = again;
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_100_findings_and_6_mb() {
        assert!(plan_batches(&[]).is_empty());
        assert_eq!(plan_batches(&[10; 250]), vec![0..100, 100..200, 200..250]);
        // 240 KB findings: 24 fit in 6 MB with the envelope, not 25.
        let big = plan_batches(&[240 * 1024; 60]);
        assert_eq!(big[0], 0..24);
        for r in &big {
            let bytes: usize = r.len() * (240 * 1024 + 1) + ENVELOPE_BYTES;
            assert!(bytes <= MAX_REQUEST_BYTES && r.len() <= MAX_FINDINGS_PER_CALL);
        }
        assert_eq!(big.iter().map(|r| r.len()).sum::<usize>(), 60);
        // A single finding always goes alone, whatever its size.
        assert_eq!(plan_batches(&[7_000_000]), vec![0..1]);
    }

    #[test]
    fn retry_delays_grow_and_stop_at_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1), Duration::from_millis(250));
        assert_eq!(p.delay(2), Duration::from_millis(500));
        assert_eq!(p.delay(10), Duration::from_secs(5));
    }

    #[test]
    fn error_codes() {
        for c in [
            "InvalidInput",
            "InvalidAccessException",
            "FindingSizeExceeded",
        ] {
            assert!(!retryable_code(c), "{c}");
        }
        for c in [
            "InternalException",
            "TooManyRequestsException",
            "LimitExceeded",
        ] {
            assert!(retryable_code(c), "{c}");
        }
    }
}
