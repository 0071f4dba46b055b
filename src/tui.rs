//! `flowlens tui`: the analyst terminal UI over a findings file and an archive.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use flowlens_dashboards::{App, findings};
use flowlens_queries::{Archive, S3Options};

#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    /// ASFF findings as JSON lines (what `scan --out` writes): a file or s3://bucket/key.
    #[arg(long, value_name = "FILE|S3")]
    findings: String,
    /// The archive (what `flowlens archive --to` wrote) for pivots, charts and SQL.
    #[arg(long, value_name = "DIR|S3")]
    data: Option<String>,
}

pub fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("flowlens tui needs a terminal (use `flowlens sql` in scripts)");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let s3 = S3Options::from_env();
        let bytes = flowlens_queries::read_uri(&args.findings, &s3).await?;
        let loaded = findings::parse_lines(&String::from_utf8_lossy(&bytes));
        let archive = match &args.data {
            Some(d) => Some(Arc::new(Archive::open(d, &s3, 0).await?)),
            None => None,
        };
        let mut app = App::new(loaded.findings, archive.is_some());
        if let Some(p) = loaded.problems.first() {
            app.status = format!(
                "{}: {} lines skipped ({p})",
                args.findings,
                loaded.problems.len()
            );
        }
        // ratatui::init restores the terminal on panic too.
        let mut terminal = ratatui::init();
        let result =
            flowlens_dashboards::run(&mut terminal, &mut app, archive, flowlens_dashboards::spawn_key_reader())
                .await;
        ratatui::restore();
        result.context("drawing")?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
