//! `flowlens archive`: decode log objects into the partitioned parquet archive, and
//! merge `scan --out` findings into its `findings` table.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use flowlens_engine::archive::{self, ArchiveStore};
use flowlens_engine::decode::object::DecodeOptions;
use flowlens_engine::report::ReportedError;
use flowlens_engine::{Progress, ScanOptions, Scanner, aws};

#[derive(Debug, clap::Args)]
pub struct ArchiveArgs {
    /// Local files or folders (read recursively), or s3://bucket/prefix, holding VPC
    /// Flow Log and WAF log objects.
    #[arg(value_name = "SOURCE", required_unless_present = "findings")]
    sources: Vec<String>,
    /// The archive: a folder or s3://bucket/prefix (created if missing).
    #[arg(long, value_name = "DIR|S3")]
    to: String,
    /// ASFF findings as JSON lines (what `scan --out` writes) to merge into the
    /// `findings` table; repeatable.
    #[arg(long, value_name = "FILE")]
    findings: Vec<PathBuf>,
    /// Flow-log format for text objects without a header line (as for `scan`).
    #[arg(long, value_name = "FORMAT")]
    flow_format: Option<String>,
    /// Objects fetched and decoded at once.
    #[arg(long, default_value_t = flowlens_engine::pipeline::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Write the run report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Exit with status 3 if any record was malformed or any object unreadable.
    #[arg(long)]
    strict: bool,
    /// No summary.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let flow_format = crate::wire::flow_format(args.flow_format.as_deref())?;
    let sources = crate::wire::locations(&args.sources)?;
    let needs_aws =
        args.to.starts_with("s3://") || args.sources.iter().any(|s| s.starts_with("s3://"));
    let (outcome, findings, finding_errors) = runtime.block_on(async {
        let conf = if needs_aws {
            Some(aws::load().await)
        } else {
            None
        };
        let store = ArchiveStore::parse(&args.to, || {
            aws::s3_client(
                conf.as_ref()
                    .expect("an s3:// archive loads the AWS config"),
            )
        })?;
        let outcome = if sources.is_empty() {
            None
        } else {
            let scanner = Arc::new(match &conf {
                Some(c) => Scanner::with_s3_client(aws::s3_client(c)),
                None => Scanner::new(),
            });
            let opts = ScanOptions {
                decode: DecodeOptions {
                    flow_format,
                    ..Default::default()
                },
                concurrency: args.concurrency.max(1),
                ..Default::default()
            };
            Some(
                archive::run(
                    &scanner,
                    &sources,
                    &opts,
                    store.clone(),
                    &Progress::default(),
                )
                .await?,
            )
        };
        let mut errors = Vec::new();
        let findings = if args.findings.is_empty() {
            None
        } else {
            let mut values = Vec::new();
            for path in &args.findings {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                values.extend(archive::findings::parse_lines(
                    &path.display().to_string(),
                    &text,
                    &mut errors,
                ));
            }
            Some(archive::findings::archive(&store, values)?)
        };
        anyhow::Ok((outcome, findings, errors))
    })?;

    let mut problems = finding_errors.len() as u64;
    if let Some(path) = &args.report {
        let json = serde_json::json!({
            "logs": outcome,
            "findings": findings,
            "finding_errors": finding_errors,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if outcome.as_ref().is_some_and(|o| o.report.has_problems()) {
        problems += 1;
    }
    if !args.quiet {
        let mut out = std::io::stderr().lock();
        if let Some(o) = &outcome {
            let (r, s) = (&o.report, &o.stats);
            writeln!(
                out,
                "flowlens archive: {} objects archived ({} already archived, {} not archived), \
                 {} flow records and {} WAF records in {} files ({:.1} MB, {:.1} bytes/record), \
                 {} malformed; {:.2} s",
                s.objects_archived,
                o.objects_already_archived,
                s.objects_not_archived,
                s.flow_records,
                s.waf_records,
                s.files_written,
                s.bytes_written as f64 / 1e6,
                s.bytes_written as f64 / (s.flow_records + s.waf_records).max(1) as f64,
                r.malformed_records,
                r.duration_secs
            )?;
            print_errors(&mut out, &r.errors)?;
        }
        if let Some(f) = &findings {
            writeln!(
                out,
                "flowlens archive: findings: {} added, {} updated, {} unchanged ({} files written)",
                f.added, f.updated, f.unchanged, f.files_written
            )?;
        }
        print_errors(&mut out, &finding_errors)?;
        if std::io::stderr().is_terminal() {
            writeln!(out, "Query it with: flowlens sql --data {}", args.to)?;
        }
    }
    Ok(if args.strict && problems > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_errors(out: &mut impl Write, errors: &[ReportedError]) -> std::io::Result<()> {
    for e in errors.iter().take(5) {
        match e.line {
            Some(line) => writeln!(out, "  {}: line {line}: {}", e.object, e.reason)?,
            None => writeln!(out, "  {}: {}", e.object, e.reason)?,
        }
    }
    if errors.len() > 5 {
        writeln!(
            out,
            "  ... and {} more (use --report FILE)",
            errors.len() - 5
        )?;
    }
    Ok(())
}
