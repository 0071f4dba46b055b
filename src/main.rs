//! `flowlens`: the thin command-line front of the engine. It parses arguments, wires
//! the crates together and maps outcomes to exit codes; the logic lives in the libraries.
//!
//! Exit codes: 0 success; 1 the run failed; 2 bad arguments; 3 `--strict` and some
//! records were malformed or some objects could not be read.

mod archive;
mod detect;
mod scan;
mod sql;
mod tui;
mod watch;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "flowlens",
    version,
    about = "Finds threats and cost leaks in AWS VPC Flow Logs and WAF logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read the log objects under the sources, run the detectors, report the findings
    /// (with --state: only new objects; with --security-hub: import the findings).
    Scan(scan::ScanArgs),
    /// Poll the sources every --interval and run the incremental job (a Fargate
    /// service); stops gracefully on SIGTERM.
    Watch(watch::WatchArgs),
    /// Decode log objects into a partitioned zstd parquet archive (and merge findings
    /// into its `findings` table); idempotent.
    Archive(archive::ArchiveArgs),
    /// SQL over the archive (tables flows, waf, findings): a query, a saved query
    /// (--query NAME; --list shows them) or an interactive prompt; read-only.
    Sql(sql::SqlArgs),
    /// The analyst terminal UI: findings, evidence, pivots into the archive, cost and
    /// WAF boards, SQL console.
    Tui(tui::TuiArgs),
    /// Write realistic sample logs in AWS's S3 layout.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Hours of traffic to generate.
    #[arg(long, default_value_t = 1)]
    hours: u32,
    /// Random seed: the same seed writes the same objects.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Traffic volume multiplier.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Baseline traffic only: leave out the detectors' incidents and look-alikes.
    #[arg(long)]
    no_incidents: bool,
    /// Start of the first 5-minute window (RFC 3339 or a date).
    #[arg(long, default_value = "2025-06-02T10:00:00Z")]
    start: String,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWLENS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let start = flowlens_engine::time::parse_time(&args.start, chrono::Utc::now())
        .map_err(anyhow::Error::msg)?;
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        anyhow::bail!("--scale must be a positive number");
    }
    let cfg = flowlens_samples::Config {
        out: args.out.clone(),
        start,
        hours: args.hours,
        seed: args.seed,
        scale: args.scale,
        incidents: !args.no_incidents,
    };
    let m = flowlens_samples::generate(&cfg)?;
    eprintln!(
        "Wrote {} objects to {} ({} flow records, {} WAF records).",
        m.objects.len(),
        args.out.display(),
        m.flow_records,
        m.waf_records
    );
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Before any thread starts (see the module's measurements).
    flowlens_engine::malloc::tune();
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Generate(args) => generate(args),
        Command::Archive(args) => archive::run(args),
        Command::Sql(args) => sql::run(args),
        Command::Tui(args) => tui::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowlens: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
