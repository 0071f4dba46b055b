//! Saved queries: the `.sql` files in `queries/sql/`, embedded in the binary.
//!
//! Each file starts with a header of `--` comments:
//!
//! ```sql
//! -- name: TrafficFrmSrcAddr
//! -- description: Flows from one source address, newest first.
//! -- source: AWS VPC console Athena integration
//! -- param: addr ip : the source address
//! -- param: limit int = 100 : rows to show
//! SELECT ... WHERE srcaddr = ${addr} ... LIMIT ${limit}
//! ```
//!
//! A parameter is `name type [= default] : description`, with type `int`, `float`, `ip`,
//! `cidr` or `text`; values are checked against the type and written into the query
//! as literals (`ip`, `cidr` and `text` quoted), so a parameter cannot change the
//! query's shape.

use std::str::FromStr;
use std::sync::LazyLock;

use crate::error::{QueryError, Result};

mod files {
    include!(concat!(env!("OUT_DIR"), "/saved_files.rs"));
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Int,
    Float,
    Ip,
    Cidr,
    Text,
}

/// One parameter of a saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub kind: ParamKind,
    pub default: Option<String>,
    pub description: String,
}

/// One saved query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    pub name: String,
    /// The file it came from (`top_talkers.sql`).
    pub file: String,
    pub description: String,
    /// Where the query comes from (`AWS VPC console Athena integration`, `flowlens`).
    pub source: String,
    pub params: Vec<Param>,
    /// The whole file, header included.
    pub sql: String,
}

fn parse_param(file: &str, spec: &str) -> std::result::Result<Param, String> {
    let (head, description) = spec.split_once(" : ").unwrap_or((spec, ""));
    let (decl, default) = match head.split_once('=') {
        Some((d, v)) => (d.trim(), Some(v.trim().to_string())),
        None => (head.trim(), None),
    };
    let mut words = decl.split_whitespace();
    let (Some(name), Some(kind), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "{file}: bad parameter line `{spec}` (name type [= default] : description)"
        ));
    };
    let kind = match kind {
        "int" => ParamKind::Int,
        "float" => ParamKind::Float,
        "ip" => ParamKind::Ip,
        "cidr" => ParamKind::Cidr,
        "text" => ParamKind::Text,
        other => return Err(format!("{file}: parameter {name}: unknown type {other}")),
    };
    Ok(Param {
        name: name.to_string(),
        kind,
        default,
        description: description.trim().to_string(),
    })
}

/// Parses one saved query file.
///
/// # Errors
/// The header lacks a name or has a malformed parameter, or the body uses a parameter
/// the header does not declare.
pub fn parse(file: &str, text: &str) -> std::result::Result<SavedQuery, String> {
    let mut q = SavedQuery {
        name: String::new(),
        file: file.to_string(),
        description: String::new(),
        source: String::new(),
        params: Vec::new(),
        sql: text.to_string(),
    };
    for line in text.lines() {
        let Some(c) = line.trim().strip_prefix("--") else {
            break;
        };
        let c = c.trim();
        if let Some(v) = c.strip_prefix("name:") {
            q.name = v.trim().to_string();
        } else if let Some(v) = c.strip_prefix("description:") {
            q.description = v.trim().to_string();
        } else if let Some(v) = c.strip_prefix("source:") {
            q.source = v.trim().to_string();
        } else if let Some(v) = c.strip_prefix("param:") {
            q.params.push(parse_param(file, v.trim())?);
        }
    }
    if q.name.is_empty() {
        return Err(format!("{file}: no `-- name:` header"));
    }
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let name = after.split('}').next().unwrap_or_default();
        if !q.params.iter().any(|p| p.name == name) {
            return Err(format!("{file}: ${{{name}}} is not a declared parameter"));
        }
        rest = after;
    }
    Ok(q)
}

static ALL: LazyLock<Vec<SavedQuery>> = LazyLock::new(|| {
    files::FILES
        .iter()
        .map(|(file, text)| parse(file, text).unwrap_or_else(|e| panic!("saved query {e}")))
        .collect()
});

/// Every saved query, by file name.
pub fn all() -> &'static [SavedQuery] {
    &ALL
}

/// The saved query called `name` (case-insensitive; the file stem also matches).
pub fn find(name: &str) -> Option<&'static SavedQuery> {
    all().iter().find(|q| {
        q.name.eq_ignore_ascii_case(name)
            || q.file.trim_end_matches(".sql").eq_ignore_ascii_case(name)
    })
}

fn literal(p: &Param, v: &str) -> Result<String> {
    let bad = |what: &str| QueryError::Saved(format!("parameter {}: `{v}` is not {what}", p.name));
    Ok(match p.kind {
        ParamKind::Int => v
            .trim()
            .parse::<i64>()
            .map_err(|_| bad("an integer"))?
            .to_string(),
        ParamKind::Float => {
            let f = v.trim().parse::<f64>().map_err(|_| bad("a number"))?;
            if !f.is_finite() {
                return Err(bad("a finite number"));
            }
            format!("{f:?}")
        }
        ParamKind::Ip => {
            let ip = flowlens_model::net::parse_ip(v.trim()).ok_or_else(|| bad("an IP address"))?;
            format!("'{ip}'")
        }
        ParamKind::Cidr => {
            let c =
                flowlens_model::net::Cidr::from_str(v.trim()).map_err(|_| bad("a CIDR block"))?;
            format!("'{c}'")
        }
        ParamKind::Text => text_literal(v),
    })
}

/// `s` as a SQL string literal (quotes doubled): the one way flowlens puts text from
/// a user, a log or a finding into SQL.
pub fn text_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl SavedQuery {
    /// The query with `values` (name → value) and the defaults filled in.
    ///
    /// # Errors
    /// An unknown parameter, a missing one without default, or a value of the wrong
    /// type.
    pub fn render(&self, values: &[(String, String)]) -> Result<String> {
        for (k, _) in values {
            if !self.params.iter().any(|p| &p.name == k) {
                return Err(QueryError::Saved(format!(
                    "{} has no parameter `{k}` (it takes: {})",
                    self.name,
                    self.usage()
                )));
            }
        }
        let mut sql = self.sql.clone();
        for p in &self.params {
            let v = values
                .iter()
                .rev()
                .find(|(k, _)| k == &p.name)
                .map(|(_, v)| v.as_str())
                .or(p.default.as_deref())
                .ok_or_else(|| {
                    QueryError::Saved(format!(
                        "{} needs --param {}=VALUE ({})",
                        self.name, p.name, p.description
                    ))
                })?;
            sql = sql.replace(&format!("${{{}}}", p.name), &literal(p, v)?);
        }
        Ok(sql)
    }

    /// `addr=IP limit=INT(100)`: the parameters in one line.
    pub fn usage(&self) -> String {
        if self.params.is_empty() {
            return "no parameters".into();
        }
        self.params
            .iter()
            .map(|p| {
                let kind = format!("{:?}", p.kind).to_uppercase();
                match &p.default {
                    Some(d) => format!("{}={kind}({d})", p.name),
                    None => format!("{}={kind}", p.name),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_saved_query_parses_and_names_are_unique() {
        let mut names: Vec<_> = all().iter().map(|q| q.name.to_lowercase()).collect();
        assert!(names.len() >= 24, "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all().len());
        for q in all() {
            assert!(!q.description.is_empty(), "{} has no description", q.file);
        }
    }

    #[test]
    fn parameters_are_typed_literals() {
        let q = parse(
            "t.sql",
            "-- name: T\n-- param: addr ip : a\n-- param: n int = 5 : rows\n-- param: s text = x : t\nSELECT ${addr}, ${n}, ${s}",
        )
        .unwrap();
        let sql = q.render(&[("addr".into(), "10.0.0.1".into())]).unwrap();
        assert!(sql.ends_with("SELECT '10.0.0.1', 5, 'x'"), "{sql}");
        let sql = q
            .render(&[
                ("addr".into(), "::1".into()),
                ("s".into(), "a'; DROP".into()),
            ])
            .unwrap();
        assert!(sql.ends_with("SELECT '::1', 5, 'a''; DROP'"), "{sql}");
        assert!(q.render(&[]).is_err());
        assert!(
            q.render(&[("addr".into(), "1.2.3.4; DROP".into())])
                .is_err()
        );
        assert!(
            q.render(&[
                ("addr".into(), "1.2.3.4".into()),
                ("n".into(), "5 OR 1=1".into())
            ])
            .is_err()
        );
        assert!(q.render(&[("nope".into(), "1".into())]).is_err());
        assert!(parse("u.sql", "-- name: U\nSELECT ${x}").is_err());
    }
}
