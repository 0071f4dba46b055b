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
    /// Without a terminal: replay these keys (`Enter`, `Esc`, `Up`, `Down`, `PgUp`,
    /// `PgDn`, `Home`, `End`, `Backspace`, `Tab`, `Space`; other words are typed, e.g.
    /// "/ssh Enter"), wait for the queries they start, and print the last screen as text.
    #[arg(long, value_name = "KEYS")]
    script: Option<String>,
    /// The screen size for --script, COLUMNSxROWS.
    #[arg(long, value_name = "COLSxROWS", default_value = "120x30", value_parser = parse_size)]
    size: (u16, u16),
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}`: expected COLUMNSxROWS, e.g. 120x30"))?;
    let n = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|n| (10..=1000).contains(n))
            .ok_or_else(|| format!("`{v}`: expected a number from 10 to 1000"))
    };
    Ok((n(w)?, n(h)?))
}

pub fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    if args.script.is_none() && !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!(
            "flowlens tui needs a terminal (use --script KEYS to print a screen, or `flowlens sql` in scripts)"
        );
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
                "{} lines of {} skipped ({p})",
                loaded.problems.len(),
                args.findings
            );
        }
        match &args.script {
            Some(keys) => {
                let (w, h) = args.size;
                let keys = flowlens_dashboards::parse_keys(keys);
                let text = flowlens_dashboards::run_script(&mut app, archive, keys, w, h).await;
                print!("{text}");
            }
            None => flowlens_dashboards::run_terminal(&mut app, archive)
                .await
                .context("terminal")?,
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
