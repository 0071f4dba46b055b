//! `flowlens scan`: wiring of sources, decoders, sinks and the report.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use flowlens_engine::{Progress, ScanReport};
use flowlens_job::RunOutcome;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub job: crate::wire::JobArgs,
    /// Write the run report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write the findings of this run as ASFF JSON lines to FILE (one per line).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
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

/// Where the CPU went: decoding, and the detectors by part (None without detectors).
fn cpu_line(r: &ScanReport) -> Option<String> {
    if r.detector_cpu_secs.is_empty() {
        return None;
    }
    let detectors: f64 = r.detector_cpu_secs.values().sum();
    let share = if r.decode_cpu_secs > 0.0 {
        format!(
            " = {:.0} % of decoding's",
            100.0 * detectors / r.decode_cpu_secs
        )
    } else {
        String::new()
    };
    let mut parts: Vec<(&String, &f64)> = r.detector_cpu_secs.iter().collect();
    parts.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let parts: Vec<String> = parts
        .iter()
        .map(|(name, secs)| format!("{name} {secs:.2}"))
        .collect();
    Some(format!(
        "CPU: decoding {:.2} s, detectors {detectors:.2} s{share} ({})",
        r.decode_cpu_secs,
        parts.join(", ")
    ))
}

/// What happened to the findings: sent, unchanged, failed, or saved in the state.
pub fn delivery_line(o: &RunOutcome) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(i) = &o.import {
        parts.push(format!(
            "Security Hub: {} imported, {} failed, {} unchanged not sent ({} calls, {} retried)",
            i.imported.len(),
            i.failed.len(),
            o.unchanged,
            i.calls,
            i.retried
        ));
        for f in i.failed.iter().take(5) {
            parts.push(format!("    {} {}: {}", f.id, f.code, f.message));
        }
    }
    if !o.retry_objects.is_empty() {
        parts.push(format!(
            "{} objects will be read again next run",
            o.retry_objects.len()
        ));
    }
    if o.state_saved {
        parts.push("run state saved".into());
    }
    (!parts.is_empty()).then(|| parts.join("\n  "))
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
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
    let outcome = runtime.block_on(async {
        let job = args.job.build().await?;
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
        let result = job.run(None, &progress).await;
        if let Some(t) = ticker {
            t.abort();
        }
        anyhow::Ok((
            result?,
            job.config().detectors.clone(),
            job.asff_context().clone(),
        ))
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (outcome, detectors, asff_ctx) = outcome?;
    let report = &outcome.report;
    let findings = &outcome.findings;
    let enabled = flowlens_detectors::Registry::new(detectors).enabled();
    if args.job.dry_run {
        let mut out = std::io::stdout().lock();
        for v in &outcome.to_send {
            writeln!(out, "{v}")?;
        }
    }
    if let Some(path) = &args.out {
        crate::detect::write_asff(path, findings, &asff_ctx)?;
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet {
        // With --dry-run stdout carries the findings; the summary goes to stderr.
        let mut table: Box<dyn Write> = if args.job.dry_run {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        write!(
            table,
            "{}",
            crate::detect::summary_table(findings, &enabled)
        )?;
        for f in findings
            .iter()
            .filter(|f| f.severity.score() >= 40)
            .take(10)
        {
            writeln!(
                table,
                "  {:<8} {}",
                serde_json::to_value(f.severity.label())
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                f.title
            )?;
        }
        drop(table);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "flowlens scan: {}", summary(report));
        if let Some(line) = cpu_line(report) {
            let _ = writeln!(err, "  {line}");
        }
        if let Some(line) = delivery_line(&outcome) {
            let _ = writeln!(err, "  {line}");
        }
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
