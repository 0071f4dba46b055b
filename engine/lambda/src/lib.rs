//! The flowlens Lambda adapter: an event in, the same [`flowlens_job::Job::run`] the CLI
//! calls, a summary (or an SQS partial-batch response) out.
//!
//! | event | what runs |
//! |---|---|
//! | EventBridge schedule (`"detail-type": "Scheduled Event"`) | list the configured prefixes (keys dated within `FLOWLENS_LOOKBACK`), read what the state has not seen |
//! | S3 `ObjectCreated` notification | read the notified objects (within the configured prefixes) |
//! | SQS messages wrapping S3 notifications (also via SNS) | the same, answering `batchItemFailures` with the messages whose objects could not be read |
//! | EventBridge `Object Created` (S3 → EventBridge) | read that object |
//!
//! # Environment
//! - `FLOWLENS_SOURCES` (required): `s3://bucket/prefix` locations, separated by commas or
//!   spaces.
//! - `FLOWLENS_STATE` (required): `s3://bucket/prefix` of the run state.
//! - `FLOWLENS_SECURITY_HUB`: `true` (default) imports findings; `false` only logs them.
//! - `FLOWLENS_CONFIG`: detector configuration, as TOML text or an `s3://` URI of a TOML file.
//! - `FLOWLENS_LATENESS` (default `30m`), `FLOWLENS_LOOKBACK` (default `2d`),
//!   `FLOWLENS_CONCURRENCY` (default 8), `FLOWLENS_ACCOUNT_ID` (default: the function's
//!   own account, from its ARN).
//! - `FLOWLENS_STAGES`: `inline` decodes and detects each batch on one task, `threads`
//!   decodes on worker threads and detects on another (see
//!   [`flowlens_engine::pipeline::Stages`]). Default: `inline` for a function of at most
//!   1,769 MB (at most one vCPU's time), else `inline` only where the function sees
//!   one CPU.
//!
//! Errors are reported as `Retryable` or `NonRetryable` (the Lambda error type): a
//! retried event reads only what the state has not recorded, so retries are safe.

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use flowlens_engine::pipeline::{ScanOptions, Stages};
use flowlens_engine::sink::security_hub::SecurityHub;
use flowlens_engine::source::{Location, ObjectMeta};
use flowlens_engine::state::StateStore;
use flowlens_engine::{Progress, Scanner, aws};
use flowlens_job::{Job, JobConfig, Output, RunOutcome};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

#[cfg(test)]
mod tests;

/// An error the Lambda runtime reports; its type tells whether a retry may help.
#[derive(Debug)]
pub struct HandlerError {
    pub retryable: bool,
    pub message: String,
}

impl HandlerError {
    fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            retryable: true,
            message: message.into(),
        }
    }
    fn fatal(message: impl Into<String>) -> Self {
        HandlerError {
            retryable: false,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: if e.retryable {
                "Retryable"
            } else {
                "NonRetryable"
            }
            .into(),
            error_message: e.message,
        }
    }
}

/// The function's configuration, from environment variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub sources: Vec<Location>,
    pub state: String,
    pub security_hub: bool,
    /// TOML text or an `s3://` URI.
    pub config: Option<String>,
    pub lateness_secs: i64,
    pub lookback_secs: i64,
    pub concurrency: usize,
    /// Where objects are decoded and detected ([`Stages`]).
    pub stages: Stages,
    pub account_id: Option<String>,
}

/// Lambda gives a function the CPU time of one vCPU at 1,769 MB of memory (in
/// proportion below and above), although it shows two vCPUs up to 3,008 MB.
pub const ONE_VCPU_MB: u64 = 1769;

impl Settings {
    /// Reads the settings through `var` (the process environment in `bootstrap`).
    ///
    /// # Errors
    /// A required variable is missing or a value is malformed; the message names it.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let sources: Vec<Location> = var("FLOWLENS_SOURCES")
            .ok_or("FLOWLENS_SOURCES is not set (s3://bucket/prefix, comma-separated)")?
            .split([',', ' ', '\n'])
            .filter(|s| !s.is_empty())
            .map(|s| match Location::parse(s) {
                Ok(l @ Location::S3 { .. }) => Ok(l),
                _ => Err(format!("FLOWLENS_SOURCES: `{s}` is not an s3:// location")),
            })
            .collect::<Result<_, _>>()?;
        if sources.is_empty() {
            return Err("FLOWLENS_SOURCES names no location".into());
        }
        let state =
            var("FLOWLENS_STATE").ok_or("FLOWLENS_STATE is not set (s3://bucket/prefix)")?;
        if !state.starts_with("s3://") {
            return Err(format!(
                "FLOWLENS_STATE: `{state}` is not an s3:// location"
            ));
        }
        let duration = |name: &str, default: &str| -> Result<i64, String> {
            let v = var(name).unwrap_or_else(|| default.to_string());
            flowlens_engine::time::parse_duration(&v)
                .map(|d| d.num_seconds())
                .map_err(|e| format!("{name}: {e}"))
        };
        let security_hub = match var("FLOWLENS_SECURITY_HUB").as_deref().map(str::trim) {
            None | Some("" | "true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(format!(
                    "FLOWLENS_SECURITY_HUB: `{other}` is not true or false"
                ));
            }
        };
        let concurrency = match var("FLOWLENS_CONCURRENCY") {
            None => flowlens_engine::pipeline::DEFAULT_CONCURRENCY,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("FLOWLENS_CONCURRENCY: `{v}` is not a positive number"))?,
        };
        let stages = match var("FLOWLENS_STAGES").as_deref().map(str::trim) {
            Some("inline") => Stages::Inline,
            Some("threads") => Stages::Threads,
            None | Some("") => {
                let memory = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                    .and_then(|m| m.trim().parse::<u64>().ok());
                match memory {
                    // At most one vCPU's time: decoding and detecting cannot overlap.
                    Some(mb) if mb <= ONE_VCPU_MB => Stages::Inline,
                    _ => Stages::for_this_machine(),
                }
            }
            Some(other) => {
                return Err(format!(
                    "FLOWLENS_STAGES: `{other}` is not inline or threads"
                ));
            }
        };
        Ok(Settings {
            sources,
            state,
            security_hub,
            config: var("FLOWLENS_CONFIG").filter(|s| !s.trim().is_empty()),
            lateness_secs: duration("FLOWLENS_LATENESS", "30m")?,
            lookback_secs: duration("FLOWLENS_LOOKBACK", "2d")?,
            concurrency,
            stages,
            account_id: var("FLOWLENS_ACCOUNT_ID").filter(|s| !s.is_empty()),
        })
    }
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Scan the configured prefixes.
    Scheduled,
    /// Read these objects; `message` is the SQS message that named each one.
    Objects {
        objects: Vec<(ObjectMeta, Option<String>)>,
        sqs: bool,
        /// SQS messages that hold no S3 notification we can read (reported as failed,
        /// so they reach the dead-letter queue instead of vanishing).
        unreadable_messages: Vec<String>,
    },
}

/// Decodes an S3 event key (URL-encoded, `+` for space).
pub fn decode_key(key: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn object(bucket: &str, key: &str, size: Option<i64>, etag: Option<&str>) -> ObjectMeta {
    ObjectMeta::new(
        flowlens_engine::source::s3::uri(bucket, &decode_key(key)),
        size.unwrap_or(0).max(0) as u64,
        etag.map(|e| e.trim_matches('"').to_string()),
    )
}

/// The created objects an S3 notification names (other event names are ignored).
fn s3_objects(event: &S3Event) -> Vec<ObjectMeta> {
    event
        .records
        .iter()
        .filter(|r| {
            r.event_name
                .as_deref()
                .is_some_and(|n| n.starts_with("ObjectCreated"))
        })
        .filter_map(|r| {
            let bucket = r.s3.bucket.name.as_deref()?;
            let key = r.s3.object.key.as_deref()?;
            Some(object(
                bucket,
                key,
                r.s3.object.size,
                r.s3.object.e_tag.as_deref(),
            ))
        })
        .collect()
}

/// The object of an S3 → EventBridge `Object Created` event.
fn eventbridge_object(event: &EventBridgeEvent<Value>) -> Option<ObjectMeta> {
    let d = &event.detail;
    let bucket = d.pointer("/bucket/name")?.as_str()?;
    let key = d.pointer("/object/key")?.as_str()?;
    Some(object(
        bucket,
        key,
        d.pointer("/object/size").and_then(Value::as_i64),
        d.pointer("/object/etag").and_then(Value::as_str),
    ))
}

/// One SQS message body: an S3 notification, an SNS envelope around one, an S3 →
/// EventBridge event, or the `s3:TestEvent` S3 sends when notifications are set up
/// (`Ok(vec![])`).
fn message_objects(body: &str) -> Result<Vec<ObjectMeta>, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))?;
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    if v.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(inner) = v.get("Message").and_then(Value::as_str)
    {
        return message_objects(inner);
    }
    if v.get("Records").is_some() {
        let e: S3Event =
            serde_json::from_value(v).map_err(|e| format!("not an S3 notification: {e}"))?;
        return Ok(s3_objects(&e));
    }
    if v.get("detail-type").is_some() {
        let e: EventBridgeEvent<Value> =
            serde_json::from_value(v).map_err(|e| format!("not an EventBridge event: {e}"))?;
        return eventbridge_object(&e)
            .map(|o| vec![o])
            .ok_or_else(|| "EventBridge event names no S3 object".into());
    }
    Err("neither an S3 notification nor an EventBridge event".into())
}

/// Classifies an invocation's payload.
///
/// # Errors
/// The payload is none of the supported events.
pub fn parse_event(v: &Value) -> Result<Trigger, String> {
    let source = v
        .pointer("/Records/0/eventSource")
        .or_else(|| v.pointer("/Records/0/EventSource"))
        .and_then(Value::as_str);
    match source {
        Some("aws:sqs") => {
            let e: SqsEvent =
                serde_json::from_value(v.clone()).map_err(|e| format!("SQS event: {e}"))?;
            let mut objects = Vec::new();
            let mut unreadable_messages = Vec::new();
            for m in &e.records {
                let id = m.message_id.clone().unwrap_or_default();
                match message_objects(m.body.as_deref().unwrap_or_default()) {
                    Ok(objs) => objects.extend(objs.into_iter().map(|o| (o, Some(id.clone())))),
                    Err(reason) => {
                        tracing::warn!(message = %id, %reason, "SQS message holds no readable S3 notification.");
                        unreadable_messages.push(id);
                    }
                }
            }
            return Ok(Trigger::Objects {
                objects,
                sqs: true,
                unreadable_messages,
            });
        }
        Some("aws:s3") => {
            let e: S3Event =
                serde_json::from_value(v.clone()).map_err(|e| format!("S3 event: {e}"))?;
            return Ok(Trigger::Objects {
                objects: s3_objects(&e).into_iter().map(|o| (o, None)).collect(),
                sqs: false,
                unreadable_messages: Vec::new(),
            });
        }
        _ => {}
    }
    if v.get("detail-type").is_some() {
        let e: EventBridgeEvent<Value> =
            serde_json::from_value(v.clone()).map_err(|e| format!("EventBridge event: {e}"))?;
        if e.source == "aws.s3" {
            let objects = eventbridge_object(&e)
                .map(|o| vec![(o, None)])
                .ok_or("EventBridge S3 event names no object")?;
            return Ok(Trigger::Objects {
                objects,
                sqs: false,
                unreadable_messages: Vec::new(),
            });
        }
        // A schedule (aws.events / aws.scheduler) or any other rule target: scan.
        return Ok(Trigger::Scheduled);
    }
    Err(
        "unsupported event: expected an EventBridge schedule, an S3 notification or SQS messages"
            .into(),
    )
}

/// The account in a Lambda function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    arn.split(':')
        .nth(4)
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

/// The handler: settings and AWS clients built once per container.
pub struct Handler {
    settings: Settings,
    conf: SdkConfig,
    s3: aws_sdk_s3::Client,
    detectors: flowlens_detectors::Config,
    job: OnceCell<Job>,
    clock: Option<Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>>,
}

impl Handler {
    /// Settings from the process environment, clients from the standard AWS chain.
    ///
    /// # Errors
    /// The settings or the detector configuration are invalid.
    pub async fn from_env() -> Result<Self, String> {
        let settings = Settings::from_vars(|k| std::env::var(k).ok())?;
        Self::new(settings, aws::load().await).await
    }

    /// # Errors
    /// The detector configuration cannot be read or is invalid.
    pub async fn new(settings: Settings, conf: SdkConfig) -> Result<Self, String> {
        let s3 = aws::s3_client(&conf);
        let detectors = match settings.config.as_deref() {
            None => flowlens_detectors::Config::default(),
            Some(c) if c.starts_with("s3://") => {
                let (bucket, key) = flowlens_engine::source::s3::split_uri(c)
                    .ok_or_else(|| format!("FLOWLENS_CONFIG: `{c}` names no object"))?;
                let body = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "FLOWLENS_CONFIG: reading {c}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(e)
                        )
                    })?
                    .body
                    .collect()
                    .await
                    .map_err(|e| format!("FLOWLENS_CONFIG: reading {c}: {e}"))?;
                let text = String::from_utf8(body.to_vec())
                    .map_err(|_| format!("FLOWLENS_CONFIG: {c} is not UTF-8"))?;
                flowlens_detectors::Config::from_toml(&text)
                    .map_err(|e| format!("FLOWLENS_CONFIG ({c}): {e}"))?
            }
            Some(text) => flowlens_detectors::Config::from_toml(text)
                .map_err(|e| format!("FLOWLENS_CONFIG: {e}"))?,
        };
        Ok(Handler {
            settings,
            conf,
            s3,
            detectors,
            job: OnceCell::new(),
            clock: None,
        })
    }

    /// Replaces the wall clock of the job (tests).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync + 'static,
    ) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    async fn job(&self, function_arn: &str) -> Result<&Job, HandlerError> {
        self.job
            .get_or_try_init(|| async {
                let account = match (&self.settings.account_id, account_of_arn(function_arn)) {
                    (Some(a), _) => a.clone(),
                    (None, Some(a)) => a.to_string(),
                    (None, None) => aws::caller_account(&self.conf).await.map_err(|e| {
                        HandlerError::retryable(format!("finding the account: {e}"))
                    })?,
                };
                let region = self
                    .conf
                    .region()
                    .map_or_else(|| aws::FALLBACK_REGION.to_string(), |r| r.to_string());
                let store = StateStore::parse(&self.settings.state, || self.s3.clone())
                    .map_err(|e| HandlerError::fatal(e.to_string()))?;
                let output = if self.settings.security_hub {
                    Output::SecurityHub(SecurityHub::from_conf(&self.conf).await)
                } else {
                    Output::Report
                };
                let config = JobConfig {
                    sources: self.settings.sources.clone(),
                    scan: ScanOptions {
                        concurrency: self.settings.concurrency,
                        stages: self.settings.stages,
                        ..Default::default()
                    },
                    detectors: self.detectors.clone(),
                    lateness_secs: self.settings.lateness_secs,
                    lookback_secs: Some(self.settings.lookback_secs),
                };
                let mut job = Job::new(
                    config,
                    Arc::new(Scanner::with_s3_client(self.s3.clone())),
                    Some(store),
                    output,
                    account,
                    region,
                );
                if let Some(clock) = &self.clock {
                    let clock = Arc::clone(clock);
                    job = job.with_clock(move || clock());
                }
                Ok(job)
            })
            .await
    }

    /// Handles one invocation.
    ///
    /// # Errors
    /// The event is not supported (NonRetryable), or the run failed: a state conflict
    /// with a concurrent run, an AWS failure, or (for a direct S3 notification) an
    /// object that could not be read (Retryable: the retry reads only what is missing).
    pub async fn handle(&self, event: Value, function_arn: &str) -> Result<Value, HandlerError> {
        let trigger = parse_event(&event).map_err(HandlerError::fatal)?;
        let job = self.job(function_arn).await?;
        let progress = Progress::default();
        match trigger {
            Trigger::Scheduled => {
                let outcome = job.run(None, &progress).await.map_err(|e| HandlerError {
                    retryable: e.is_retryable(),
                    message: e.to_string(),
                })?;
                log_outcome(&outcome);
                Ok(summary(&outcome))
            }
            Trigger::Objects {
                objects,
                sqs,
                unreadable_messages,
            } => {
                let (ours, foreign): (Vec<_>, Vec<_>) =
                    objects.into_iter().partition(|(o, _)| job.covers(&o.uri));
                for (o, _) in &foreign {
                    tracing::info!(object = %o.uri, "Object outside FLOWLENS_SOURCES; ignored.");
                }
                let mut failed_messages = unreadable_messages;
                let metas: Vec<ObjectMeta> = ours.iter().map(|(o, _)| o.clone()).collect();
                let result = job.run(Some(metas), &progress).await;
                match result {
                    Ok(outcome) => {
                        log_outcome(&outcome);
                        let mut out = summary(&outcome);
                        if sqs {
                            for (o, m) in &ours {
                                if outcome.retry_objects.contains(&o.uri)
                                    && let Some(m) = m
                                    && !failed_messages.contains(m)
                                {
                                    failed_messages.push(m.clone());
                                }
                            }
                            out["batchItemFailures"] = batch_failures(&failed_messages);
                            Ok(out)
                        } else if !outcome.retry_objects.is_empty() {
                            Err(HandlerError::retryable(format!(
                                "{} objects could not be read: {}",
                                outcome.retry_objects.len(),
                                outcome.retry_objects.join(", ")
                            )))
                        } else {
                            Ok(out)
                        }
                    }
                    Err(e) if sqs => {
                        // Nothing was recorded: every message comes back.
                        tracing::error!(error = %e, "Run failed; returning every message to the queue.");
                        for (_, m) in &ours {
                            if let Some(m) = m
                                && !failed_messages.contains(m)
                            {
                                failed_messages.push(m.clone());
                            }
                        }
                        Ok(
                            json!({ "error": e.to_string(), "batchItemFailures": batch_failures(&failed_messages) }),
                        )
                    }
                    Err(e) => Err(HandlerError {
                        retryable: e.is_retryable(),
                        message: e.to_string(),
                    }),
                }
            }
        }
    }
}

fn batch_failures(ids: &[String]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| json!({ "itemIdentifier": id }))
            .collect(),
    )
}

fn summary(o: &RunOutcome) -> Value {
    let r = &o.report;
    json!({
        "objects_listed": r.objects_listed,
        "objects_read": r.objects_read,
        "objects_skipped": r.objects_skipped,
        "objects_failed": r.objects_failed,
        "flow_records": r.flow_records,
        "waf_records": r.waf_records,
        "malformed_records": r.malformed_records,
        "findings": o.findings.len(),
        "findings_sent": o.import.as_ref().map_or(0, |i| i.imported.len()),
        "findings_unchanged": o.unchanged,
        "findings_failed": o.import.as_ref().map_or(0, |i| i.failed.len()),
        "retry_objects": o.retry_objects,
        "watermark": o.watermark,
    })
}

fn log_outcome(o: &RunOutcome) {
    let r = &o.report;
    tracing::info!(
        objects_read = r.objects_read,
        objects_skipped = r.objects_skipped,
        objects_failed = r.objects_failed,
        records = r.flow_records + r.waf_records,
        malformed = r.malformed_records,
        findings = o.findings.len(),
        sent = o.import.as_ref().map_or(0, |i| i.imported.len()),
        failed = o.import.as_ref().map_or(0, |i| i.failed.len()),
        "Run finished."
    );
    for e in r.errors.iter().take(20) {
        tracing::warn!(object = %e.object, line = e.line, reason = %e.reason, "Bad input.");
    }
    for f in o.import.iter().flat_map(|i| &i.failed) {
        tracing::warn!(id = %f.id, code = %f.code, message = %f.message, "Finding not imported; kept for the next run.");
    }
}
