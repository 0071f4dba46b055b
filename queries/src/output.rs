//! Writing results: an aligned table for people, CSV or JSON lines for programs.

use std::borrow::Cow;
use std::io::Write;

use arrow::array::RecordBatch;

/// How `flowlens sql` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format `{other}` (table, csv or json)")),
        }
    }
}

/// `s` with every control character (but newline), and every bidirectional override,
/// written as a visible escape (`\u{1b}`): log fields are attacker-controlled and must
/// never drive the terminal they are shown on.
pub fn inert(s: &str) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if bad(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Writes `batches` in `format`.
///
/// # Errors
/// Writing failed (a closed pipe is the caller's to treat as success).
pub fn write(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    let other = |e: arrow::error::ArrowError| std::io::Error::other(e.to_string());
    match format {
        Format::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches).map_err(other)?;
            writeln!(out, "{}", inert(&table.to_string()))?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for b in batches {
                w.write(b).map_err(other)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b).map_err(other)?;
            }
            w.finish().map_err(other)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_made_inert() {
        assert_eq!(inert("curl/8.0"), "curl/8.0");
        let s = inert("a\u{1b}[2J\u{7}b\rc\u{202e}d\ne");
        assert!(!s.contains('\u{1b}') && !s.contains('\r') && !s.contains('\u{202e}'));
        assert!(s.contains("\\u{1b}[2J") && s.contains('\n'), "{s}");
    }
}
