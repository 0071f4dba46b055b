//! `flowlens watch`: a long-running poller for a Fargate service (or any host). Every
//! `--interval` it runs the same incremental job as `scan --state`: new objects only,
//! findings sent once. SIGTERM or Ctrl-C stop it gracefully: when idle at once; in the
//! middle of a run, after the run finishes (up to `--grace`; a run cut short saves no
//! state and is simply redone by the next start).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use flowlens_engine::Progress;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub job: crate::wire::JobArgs,
    /// Time between the starts of two runs (90s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    interval: String,
    /// On SIGTERM, how long a run in progress may take to finish (ECS waits 30 s by
    /// default before SIGKILL).
    #[arg(long, value_name = "DURATION", default_value = "25s")]
    grace: String,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub fn run(args: WatchArgs) -> anyhow::Result<ExitCode> {
    if args.job.state.is_none() {
        anyhow::bail!(
            "watch needs --state DIR|s3://bucket/prefix (or every run would read everything again)"
        );
    }
    let interval = Duration::from_secs(
        crate::wire::duration_secs(&args.interval)
            .context("--interval")?
            .max(1) as u64,
    );
    let grace = Duration::from_secs(
        crate::wire::duration_secs(&args.grace)
            .context("--grace")?
            .max(0) as u64,
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let job = args.job.build().await?;
        let signal = shutdown_signal();
        tokio::pin!(signal);
        loop {
            let started = tokio::time::Instant::now();
            let progress = Progress::default();
            let run = job.run(None, &progress);
            tokio::pin!(run);
            let result = tokio::select! {
                r = &mut run => r,
                () = &mut signal => {
                    tracing::info!(grace_secs = grace.as_secs(), "Shutdown requested; letting the current run finish.");
                    match tokio::time::timeout(grace, &mut run).await {
                        Ok(r) => {
                            report(r);
                        }
                        Err(_) => tracing::warn!("Run cut short at shutdown; the next start redoes it (nothing was saved)."),
                    }
                    return anyhow::Ok(ExitCode::SUCCESS);
                }
            };
            report(result);
            tokio::select! {
                () = tokio::time::sleep_until(started + interval) => {}
                () = &mut signal => {
                    tracing::info!("Shutdown requested while idle.");
                    return anyhow::Ok(ExitCode::SUCCESS);
                }
            }
        }
    })
}

fn report(result: flowlens_job::Result<flowlens_job::RunOutcome>) {
    match result {
        Ok(o) => {
            let r = &o.report;
            eprintln!(
                "{} flowlens watch: {} objects read ({} skipped, {} failed), {} records, {} malformed; {} findings",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
                r.objects_read,
                r.objects_skipped,
                r.objects_failed,
                r.flow_records + r.waf_records,
                r.malformed_records,
                o.findings.len(),
            );
            if let Some(line) = crate::scan::delivery_line(&o) {
                eprintln!("  {line}");
            }
        }
        // A failed run (state conflict, AWS outage) is retried at the next interval.
        Err(e) => eprintln!(
            "{} flowlens watch: run failed{}: {e}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            if e.is_retryable() {
                " (will retry)"
            } else {
                ""
            }
        ),
    }
}
