//! `flowlens sql`: SQL over the archive, saved queries, and an interactive prompt.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use flowlens_queries::output::{self, Format};
use flowlens_queries::{Archive, QueryError, S3Options, saved};

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The archive (what `flowlens archive --to` wrote): a folder or s3://bucket/prefix.
    #[arg(long, value_name = "DIR|S3", required_unless_present = "list")]
    data: Option<String>,
    /// The query to run (omit it, and --query and -f, for an interactive prompt).
    #[arg(value_name = "QUERY", conflicts_with_all = ["query", "file"])]
    sql: Option<String>,
    /// Run a saved query by name (see --list).
    #[arg(long, short = 'q', value_name = "NAME", conflicts_with = "file")]
    query: Option<String>,
    /// A saved query's parameter, NAME=VALUE; repeatable.
    #[arg(long, short = 'p', value_name = "NAME=VALUE", requires = "query")]
    param: Vec<String>,
    /// Run the statements in FILE (separated by `;`).
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// table, csv or json (one JSON object per line).
    #[arg(long, default_value = "table", value_parser = clap::value_parser!(String))]
    format: String,
    /// List the saved queries and their parameters.
    #[arg(long)]
    list: bool,
    /// Execution threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print each statement's rows and time (planning and execution) on stderr.
    #[arg(long)]
    timing: bool,
}

/// Splits a script into statements at `;` outside quotes and comments.
pub fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = script.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    cur.push('-');
                    for c in chars.by_ref() {
                        cur.push(c);
                        if c == '\n' {
                            break;
                        }
                    }
                }
                ';' => {
                    if !cur.trim().is_empty() {
                        out.push(std::mem::take(&mut cur).trim().to_string());
                    }
                    cur.clear();
                }
                _ => cur.push(c),
            },
        }
    }
    if !strip_comments(&cur).trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn list(out: &mut dyn Write) -> std::io::Result<()> {
    for q in saved::all() {
        writeln!(out, "{:<34} {}", q.name, q.description)?;
        if !q.params.is_empty() {
            writeln!(out, "{:<34}   params: {}", "", q.usage())?;
        }
    }
    Ok(())
}

fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

async fn run_one(
    archive: &Archive,
    sql: &str,
    format: Format,
    timing: bool,
) -> Result<(), QueryError> {
    let started = std::time::Instant::now();
    let batches = archive.query(sql).await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    match output::write(&batches, format, &mut out).and_then(|()| out.flush()) {
        Err(e) if !is_broken_pipe(&e) => {
            return Err(QueryError::Archive {
                location: "stdout".into(),
                reason: e.to_string(),
            });
        }
        _ => {}
    }
    if timing || (format == Format::Table && std::io::stderr().is_terminal()) {
        eprintln!("{rows} rows ({secs:.3} s)");
    }
    Ok(())
}

fn params(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    args.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .with_context(|| format!("--param {p}: expected NAME=VALUE"))
        })
        .collect()
}

async fn prompt(archive: &Archive, format: Format, timing: bool) -> anyhow::Result<()> {
    let interactive = std::io::stdin().is_terminal();
    if !interactive {
        let mut script = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut script)?;
        for stmt in split_statements(&script) {
            if let Err(e) = run_one(archive, &stmt, format, timing).await {
                anyhow::bail!("{}", e.render(&stmt));
            }
        }
        return Ok(());
    }
    eprintln!(
        "flowlens sql on {} — tables flows, waf, findings. End statements with `;`. \
         \\l saved queries, \\r NAME [k=v ...] run one, \\d tables, \\q quit.",
        archive.location()
    );
    let stdin = std::io::stdin();
    let mut buf = String::new();
    loop {
        eprint!(
            "{}",
            if buf.is_empty() {
                "flowlens> "
            } else {
                "      ... "
            }
        );
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let t = line.trim();
        if buf.is_empty() && t.starts_with('\\') {
            let mut words = t.split_whitespace();
            match words.next() {
                Some("\\q") => break,
                Some("\\l") => list(&mut std::io::stderr())?,
                Some("\\d") => {
                    if let Err(e) = run_one(archive, "SHOW TABLES", format, timing).await {
                        eprintln!("{e}");
                    }
                }
                Some("\\r") => {
                    let Some(name) = words.next() else {
                        eprintln!("usage: \\r NAME [param=value ...]");
                        continue;
                    };
                    let rest: Vec<String> = words.map(String::from).collect();
                    let result = match (saved::find(name), params(&rest)) {
                        (None, _) => Err(format!("no saved query `{name}` (\\l lists them)")),
                        (_, Err(e)) => Err(e.to_string()),
                        (Some(q), Ok(p)) => match q.render(&p) {
                            Ok(sql) => run_one(archive, &sql, format, timing)
                                .await
                                .map_err(|e| e.render(&sql)),
                            Err(e) => Err(e.to_string()),
                        },
                    };
                    if let Err(e) = result {
                        eprintln!("{e}");
                    }
                }
                _ => eprintln!("unknown command {t} (\\l, \\r, \\d, \\q)"),
            }
            continue;
        }
        buf.push_str(&line);
        if t.ends_with(';') {
            for stmt in split_statements(&std::mem::take(&mut buf)) {
                if let Err(e) = run_one(archive, &stmt, format, timing).await {
                    eprintln!("{}", e.render(&stmt));
                }
            }
        }
    }
    Ok(())
}

pub fn run(args: SqlArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        let mut out = std::io::stdout().lock();
        if let Err(e) = list(&mut out)
            && !is_broken_pipe(&e)
        {
            return Err(e.into());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let format: Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let data = args.data.as_deref().expect("clap requires --data");
    // `--threads 1` runs the whole query on this thread (file reads aside): no hand-offs
    // between worker threads, as in a single-threaded engine.
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
    .context("starting the async runtime")?;
    runtime.block_on(async {
        let archive = Archive::open(data, &S3Options::from_env(), args.threads).await?;
        let statements: Vec<String> = if let Some(sql) = &args.sql {
            vec![sql.clone()]
        } else if let Some(name) = &args.query {
            let q = saved::find(name).with_context(|| {
                format!("no saved query `{name}` (flowlens sql --list shows them)")
            })?;
            vec![q.render(&params(&args.param)?)?]
        } else if let Some(file) = &args.file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            split_statements(&text)
        } else {
            prompt(&archive, format, args.timing).await?;
            return Ok(ExitCode::SUCCESS);
        };
        for stmt in &statements {
            if let Err(e) = run_one(&archive, stmt, format, args.timing).await {
                eprintln!("flowlens sql: {}", e.render(stmt));
                return Ok(ExitCode::from(match e {
                    QueryError::ReadOnly { .. } | QueryError::Invalid { .. } => 2,
                    _ => 1,
                }));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        assert_eq!(
            split_statements("SELECT 'a;b'; -- x;y\nSELECT \"c;\" ;\n-- only a comment"),
            vec!["SELECT 'a;b'", "-- x;y\nSELECT \"c;\""]
        );
    }
}
