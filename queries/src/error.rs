//! Errors of the query crate: each names where in the query it happened, when known.

/// Result alias of the query crate.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// A position in a query: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The statement would change something; `flowlens sql` only reads.
    #[error(
        "flowlens sql is read-only: {statement} statements are refused (the archive is \
         written by `flowlens archive`)"
    )]
    ReadOnly { statement: String },
    /// The query is wrong (syntax, unknown column or table, types), at `position`.
    #[error("{message}")]
    Invalid {
        message: String,
        position: Option<Position>,
    },
    /// A saved query does not exist or its parameters are wrong.
    #[error("{0}")]
    Saved(String),
    /// The archive could not be opened or read.
    #[error("archive {location}: {reason}")]
    Archive { location: String, reason: String },
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl QueryError {
    /// Where in the query the error is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            QueryError::Invalid { position, .. } => *position,
            _ => None,
        }
    }

    /// The message followed by the query line it points at and a caret under the
    /// column (`line 1, column 8:` ...).
    pub fn render(&self, sql: &str) -> String {
        let Some(p) = self.position() else {
            return self.to_string();
        };
        let Some(text) = sql.lines().nth(p.line.saturating_sub(1) as usize) else {
            return self.to_string();
        };
        let pad: String = text
            .chars()
            .take(p.column.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "{self}\n  at line {}, column {}:\n  {text}\n  {pad}^",
            p.line, p.column
        )
    }
}

/// Finds `Line: N, Column: M` (how the SQL parser reports positions) in a message.
pub(crate) fn parse_position(msg: &str) -> Option<Position> {
    let rest = &msg[msg.find("Line: ")? + 6..];
    let (line, rest) = rest.split_once(',')?;
    let rest = rest.trim_start().strip_prefix("Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Position {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_from_parser_messages() {
        assert_eq!(
            parse_position(
                "sql parser error: Expected: end of statement, found: x at Line: 2, Column: 17"
            ),
            Some(Position {
                line: 2,
                column: 17
            })
        );
        assert_eq!(parse_position("no position here"), None);
        let e = QueryError::Invalid {
            message: "bad".into(),
            position: Some(Position { line: 2, column: 3 }),
        };
        assert_eq!(
            e.render("SELECT 1\nFRM x"),
            "bad\n  at line 2, column 3:\n  FRM x\n    ^"
        );
    }
}
