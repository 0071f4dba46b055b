//! Arguments shared by `scan` and `watch`, and the [`Job`] they build.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use flowlens_engine::decode::object::DecodeOptions;
use flowlens_engine::decode::vpc_text::Format;
use flowlens_engine::pipeline::Stages;
use flowlens_engine::source::Location;
use flowlens_engine::state::StateStore;
use flowlens_engine::{ScanOptions, Scanner, aws};
use flowlens_job::{Job, JobConfig, Output};

/// `--stages`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StagesArg {
    Auto,
    Inline,
    Threads,
}

impl From<StagesArg> for Stages {
    fn from(s: StagesArg) -> Self {
        match s {
            StagesArg::Auto => Stages::for_this_machine(),
            StagesArg::Inline => Stages::Inline,
            StagesArg::Threads => Stages::Threads,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// Local files or folders (read recursively), or s3://bucket/prefix.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,
    /// Only records at or after this time; objects whose key date is earlier are not
    /// fetched. RFC 3339, a date, unix seconds, or a duration before now (6h, 7d).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Detector configuration (TOML; every key optional, see detectors/flowlens.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Flow-log format for text objects without a header line, as in AWS
    /// (`${version} ${srcaddr} ...`). Default: the v2 default format.
    #[arg(long, value_name = "FORMAT")]
    pub flow_format: Option<String>,
    /// Objects fetched and decoded at once.
    #[arg(long, default_value_t = flowlens_engine::pipeline::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Where batches are decoded and detected: `inline` on one task, each batch
    /// detected as soon as it is decoded (best on one CPU); `threads` decodes on worker
    /// threads while another detects; `auto` is `inline` where the process may use
    /// one CPU only.
    #[arg(long, value_enum, default_value_t = StagesArg::Auto)]
    pub stages: StagesArg,
    /// Run state (a folder or s3://bucket/prefix): objects already read are skipped,
    /// detector baselines carry over, findings already sent are not sent again.
    #[arg(long, value_name = "DIR|S3")]
    pub state: Option<String>,
    /// With --state, windows close this long before now, to wait for late log
    /// delivery (seconds, or 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub lateness: String,
    /// Only list objects whose key date is within this long before now (7d, 48h); the
    /// state forgets older objects. Default: list everything.
    #[arg(long, value_name = "DURATION")]
    pub lookback: Option<String>,
    /// Import new and changed findings into AWS Security Hub (BatchImportFindings).
    #[arg(long, conflicts_with = "dry_run")]
    pub security_hub: bool,
    /// Print the ASFF findings that would be sent, as JSON lines on stdout; send
    /// nothing and save no state.
    #[arg(long)]
    pub dry_run: bool,
    /// The account findings are rendered and imported for (default: the caller's, from
    /// STS, with --security-hub; otherwise $AWS_ACCOUNT_ID or 000000000000).
    #[arg(long, env = "FLOWLENS_ACCOUNT_ID", value_name = "ID")]
    pub account_id: Option<String>,
}

/// `--flow-format`, parsed.
pub fn flow_format(arg: Option<&str>) -> anyhow::Result<Option<Format>> {
    arg.map(Format::parse).transpose().context("--flow-format")
}

/// The SOURCE arguments as locations.
pub fn locations(sources: &[String]) -> anyhow::Result<Vec<Location>> {
    Ok(sources
        .iter()
        .map(|s| Location::parse(s))
        .collect::<Result<Vec<_>, _>>()?)
}

/// A duration argument in seconds.
pub fn duration_secs(s: &str) -> anyhow::Result<i64> {
    Ok(flowlens_engine::time::parse_duration(s)
        .map_err(anyhow::Error::msg)?
        .num_seconds())
}

impl JobArgs {
    fn needs_aws(&self) -> bool {
        self.security_hub
            || self.sources.iter().any(|s| s.starts_with("s3://"))
            || self
                .state
                .as_deref()
                .is_some_and(|s| s.starts_with("s3://"))
    }

    /// Builds the job (and the AWS clients it needs, from the standard chain).
    pub async fn build(&self) -> anyhow::Result<Job> {
        let now = chrono::Utc::now();
        let parse = |s: &Option<String>| {
            s.as_deref()
                .map(|s| flowlens_engine::time::parse_time(s, now))
                .transpose()
                .map_err(anyhow::Error::msg)
        };
        let since = parse(&self.since)?;
        let until = parse(&self.until)?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            anyhow::bail!("--since must be before --until");
        }
        let flow_format = flow_format(self.flow_format.as_deref())?;
        let sources = locations(&self.sources)?;
        let config = JobConfig {
            sources,
            scan: ScanOptions {
                since,
                until,
                decode: DecodeOptions {
                    flow_format,
                    ..Default::default()
                },
                concurrency: self.concurrency.max(1),
                stages: self.stages.into(),
            },
            detectors: crate::detect::load_config(self.config.as_deref())?,
            lateness_secs: duration_secs(&self.lateness).context("--lateness")?,
            lookback_secs: self
                .lookback
                .as_deref()
                .map(duration_secs)
                .transpose()
                .context("--lookback")?,
        };

        let conf = if self.needs_aws() {
            Some(aws::load().await)
        } else {
            None
        };
        let scanner = match &conf {
            Some(c) => Scanner::with_s3_client(aws::s3_client(c)),
            None => Scanner::new(),
        };
        let store = self
            .state
            .as_deref()
            .map(|s| {
                StateStore::parse(s, || {
                    aws::s3_client(conf.as_ref().expect("S3 state implies AWS config"))
                })
            })
            .transpose()?;
        let region = conf
            .as_ref()
            .and_then(|c| c.region().map(|r| r.to_string()))
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| aws::FALLBACK_REGION.into());
        let output = match &conf {
            Some(c) if self.security_hub => Output::SecurityHub(
                flowlens_engine::sink::security_hub::SecurityHub::from_conf(c).await,
            ),
            _ if self.dry_run => Output::DryRun,
            _ => Output::Report,
        };
        let account_id = match (&self.account_id, &conf) {
            (Some(a), _) => a.clone(),
            (None, Some(c)) if self.security_hub => aws::caller_account(c)
                .await
                .context("finding the account to import findings into (or pass --account-id)")?,
            _ => std::env::var("AWS_ACCOUNT_ID").unwrap_or_else(|_| "000000000000".into()),
        };
        Ok(Job::new(
            config,
            Arc::new(scanner),
            store,
            output,
            account_id,
            region,
        ))
    }
}
