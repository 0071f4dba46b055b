//! `flowlens scan`: wiring of sources, decoders, sinks and the report.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use flowlens_engine::decode::object::DecodeOptions;
use flowlens_engine::decode::vpc_text::Format;
use flowlens_engine::source::Location;
use flowlens_engine::{Progress, ScanOptions, ScanReport, Scanner};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Local files or folders (read recursively), or s3://bucket/prefix.
    #[arg(required = true, value_name = "SOURCE")]
    sources: Vec<String>,
    /// Only records at or after this time; objects whose key date is earlier are not
    /// fetched. RFC 3339, a date, unix seconds, or a duration before now (6h, 7d).
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only records before this time (same forms as --since).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Write the run report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write findings as ASFF JSON lines to FILE (one finding per line).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Detector configuration (TOML; every key optional, see detectors/flowlens.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Flow-log format for text objects without a header line, as in AWS
    /// (`${version} ${srcaddr} ...`). Default: the v2 default format.
    #[arg(long, value_name = "FORMAT")]
    flow_format: Option<String>,
    /// Objects fetched and decoded at once.
    #[arg(long, default_value_t = flowlens_engine::pipeline::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Exit with status 3 if any record was malformed or any object unreadable.
    #[arg(long)]
    strict: bool,
    /// No progress bar and no summary.
    #[arg(long, short)]
    quiet: bool,
}

fn summary(r: &ScanReport) -> String {
    let records = r.flow_records + r.waf_records;
    let rate = if r.duration_secs > 0.0 {
        records as f64 / r.duration_secs
    } else {
        0.0
    };
    format!(
        "{} objects read ({} skipped, {} failed), {:.1} MB; {} flow records, {} WAF records, \
         {} malformed{}; {} findings; {:.2} s ({:.0} records/s)",
        r.objects_read,
        r.objects_skipped,
        r.objects_failed,
        r.bytes_read as f64 / 1e6,
        r.flow_records,
        r.waf_records,
        r.malformed_records,
        if r.records_outside_window > 0 {
            format!(", {} outside --since/--until", r.records_outside_window)
        } else {
            String::new()
        },
        r.findings,
        r.duration_secs,
        rate
    )
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let parse = |s: &Option<String>| {
        s.as_deref()
            .map(|s| flowlens_engine::time::parse_time(s, now))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let since = parse(&args.since)?;
    let until = parse(&args.until)?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        anyhow::bail!("--since must be before --until");
    }
    let flow_format = args
        .flow_format
        .as_deref()
        .map(Format::parse)
        .transpose()
        .context("--flow-format")?;
    let locations = args
        .sources
        .iter()
        .map(|s| Location::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = ScanOptions {
        since,
        until,
        decode: DecodeOptions {
            flow_format,
            ..Default::default()
        },
        concurrency: args.concurrency.max(1),
    };

    let config = crate::detect::load_config(args.config.as_deref())?;
    let mut sink = crate::detect::DetectSink::new(config);
    let enabled = sink.registry.enabled();

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let progress = Arc::new(Progress::default());
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} objects  {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let report = runtime.block_on(async {
        let ticker = bar.clone().map(|bar| {
            let progress = Arc::clone(&progress);
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let records = progress.records.load(Ordering::Relaxed);
                    bar.set_length(progress.objects_total.load(Ordering::Relaxed));
                    bar.set_position(progress.objects_done.load(Ordering::Relaxed));
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_message(format!(
                        "{records} records  {:.0} records/s",
                        records as f64 / secs
                    ));
                }
            })
        });
        let scanner = Arc::new(Scanner::new());
        let result = scanner.scan(&locations, &opts, &mut sink, &progress).await;
        if let Some(t) = ticker {
            t.abort();
        }
        result
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut report = report?;

    // Every window is complete once all objects are read: close them all.
    let findings = sink
        .registry
        .flush(i64::MAX)
        .context("running the detectors")?;
    report.findings = findings.len() as u64;
    if let Some(path) = &args.out {
        crate::detect::write_asff(path, &findings)?;
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet {
        print!("{}", crate::detect::summary_table(&findings, &enabled));
        for f in findings
            .iter()
            .filter(|f| f.severity.score() >= 40)
            .take(10)
        {
            println!(
                "  {:<8} {}",
                serde_json::to_value(f.severity.label())
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                f.title
            );
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "flowlens scan: {}", summary(&report));
        for e in report.errors.iter().take(5) {
            let _ = match e.line {
                Some(line) => writeln!(err, "  {}: line {line}: {}", e.object, e.reason),
                None => writeln!(err, "  {}: {}", e.object, e.reason),
            };
        }
        let more = report.errors.len().saturating_sub(5);
        if more > 0 || report.errors_truncated {
            let _ = writeln!(
                err,
                "  ... and more problems{}",
                if args.report.is_some() {
                    " (see the report)"
                } else {
                    " (use --report FILE to list them)"
                }
            );
        }
    }
    Ok(if args.strict && report.has_problems() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
