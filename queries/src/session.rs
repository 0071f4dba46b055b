//! A DataFusion session over one archive: the `flows`, `waf` and `findings` tables with
//! their hive partitions, the analyst functions, and read-only query execution.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use flowlens_model::LogKind;
use flowlens_model::archive::{FINDINGS_TABLE, findings_schema, part};

use crate::error::{Position, QueryError, Result, parse_position};
use crate::local_group::LocalGroupRule;
use crate::local_store::LocalArchiveStore;

/// How to reach S3 (credentials come from the environment: `AWS_ACCESS_KEY_ID`, ...,
/// the ECS container or the EC2 instance role).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// A custom endpoint (an S3-compatible store or a local emulator).
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl S3Options {
    /// From `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` and `AWS_REGION` /
    /// `AWS_DEFAULT_REGION`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        S3Options {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
        }
    }
}

/// An object store for one bucket (credentials from the environment).
fn s3_store(bucket: &str, s3: &S3Options) -> object_store::Result<object_store::aws::AmazonS3> {
    let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(ep) = &s3.endpoint {
        b = b
            .with_endpoint(ep)
            .with_allow_http(ep.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let Some(r) = &s3.region {
        b = b.with_region(r);
    }
    b.build()
}

/// Reads a whole object: a local path or `s3://bucket/key` (a findings file, say).
///
/// # Errors
/// It cannot be read.
pub async fn read_uri(uri: &str, s3: &S3Options) -> Result<Vec<u8>> {
    let bad = |reason: String| QueryError::Archive {
        location: uri.to_string(),
        reason,
    };
    match uri.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("no key".into()))?;
            use object_store::ObjectStoreExt as _;
            let store = s3_store(bucket, s3).map_err(|e| bad(e.to_string()))?;
            let got = store
                .get(&object_store::path::Path::from(key))
                .await
                .map_err(|e| bad(e.to_string()))?;
            Ok(got.bytes().await.map_err(|e| bad(e.to_string()))?.to_vec())
        }
        None => tokio::fs::read(uri).await.map_err(|e| bad(e.to_string())),
    }
}

/// The tables of the archive, with their file schemas and partition keys.
pub fn tables() -> Vec<(&'static str, SchemaRef, &'static [&'static str])> {
    vec![
        (
            LogKind::Flows.table(),
            LogKind::Flows.schema(),
            &part::LOG_KEYS,
        ),
        (LogKind::Waf.table(), LogKind::Waf.schema(), &part::LOG_KEYS),
        (FINDINGS_TABLE, findings_schema(), &part::FINDING_KEYS),
    ]
}

/// An open archive.
pub struct Archive {
    ctx: SessionContext,
    location: String,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("location", &self.location)
            .finish()
    }
}

/// The first keyword of a statement, comments and whitespace skipped, uppercased.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    rest.trim_start_matches('(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect::<String>()
        .to_ascii_uppercase()
}

/// Statements that write, change the session or run something: refused before they
/// reach the planner (which refuses them too), so the message says why. Anything else
/// goes to the parser, which points at a typo.
const WRITE_STATEMENTS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "REPLACE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "COPY",
    "UNLOAD",
    "SET",
    "RESET",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "ATTACH",
    "DETACH",
    "LOAD",
    "INSTALL",
    "GRANT",
    "REVOKE",
    "USE",
    "BEGIN",
    "START",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "CALL",
    "VACUUM",
    "ANALYZE",
    "OPTIMIZE",
    "MSCK",
    "CACHE",
    "UNCACHE",
    "DECLARE",
    "FETCH",
    "CLOSE",
    "LISTEN",
    "NOTIFY",
    "LOCK",
    "KILL",
    "PRAGMA",
];

fn classify(e: DataFusionError) -> QueryError {
    // A diagnostic with a span (the planner's errors about columns, tables, types).
    let spanned = e.iter().find_map(|e| {
        e.diagnostic()
            .and_then(|d| d.span.map(|s| (d.message.clone(), s)))
    });
    let root = e.find_root().to_string();
    let mut message = root
        .strip_prefix("Error during planning: ")
        .or_else(|| root.strip_prefix("SQL error: "))
        .unwrap_or(&root)
        .to_string();
    if let Some(inner) = message
        .strip_prefix("ParserError(\"")
        .and_then(|m| m.strip_suffix("\")"))
    {
        message = format!("syntax error: {}", inner.replace("\\\"", "\""));
    }
    let parsed = parse_position(&message);
    if let Some(i) = message.find(" at Line: ") {
        message.truncate(i);
    }
    if let Some((_, span)) = spanned {
        return QueryError::Invalid {
            message,
            position: Some(Position {
                line: span.start.line,
                column: span.start.column,
            }),
        };
    }
    if let Some(p) = parsed {
        return QueryError::Invalid {
            message,
            position: Some(p),
        };
    }
    if message.contains("not supported:")
        && (message.starts_with("DDL")
            || message.starts_with("DML")
            || message.starts_with("Statement"))
    {
        return QueryError::ReadOnly {
            statement: message
                .split_whitespace()
                .next()
                .unwrap_or("this")
                .to_string(),
        };
    }
    match e.find_root() {
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => QueryError::Invalid {
            message,
            position: None,
        },
        _ => QueryError::DataFusion(e),
    }
}

impl Archive {
    /// Opens the archive at `location` (a folder or `s3://bucket/prefix`), with
    /// `threads` execution threads (0: one per core).
    ///
    /// # Errors
    /// The location is not a valid URL or path, or S3 could not be configured.
    pub async fn open(location: &str, s3: &S3Options, threads: usize) -> Result<Self> {
        // DataFusion's own options can be tuned from the environment
        // (`DATAFUSION_EXECUTION_BATCH_SIZE=32768`, ...); ours are set over them.
        let mut config = SessionConfig::from_env()
            .map_err(|e| QueryError::Archive {
                location: "DATAFUSION_* environment".into(),
                reason: e.to_string(),
            })?
            .with_information_schema(true)
            .with_default_catalog_and_schema("flowlens", "archive");
        if threads > 0 {
            config = config.with_target_partitions(threads);
        }
        config.options_mut().sql_parser.collect_spans = true;
        config.options_mut().sql_parser.enable_ident_normalization = true;
        // Each query lists the tables afresh. DataFusion would keep the first listing for
        // the whole session: a TUI left open would never see the parts archived since,
        // and would read a part rewritten in place (a day's findings) with the size and
        // footer it had before. What was read from a part's footer (its statistics and
        // metadata) is kept while the part's size and modification time stay the same.
        let bad = |reason: String| QueryError::Archive {
            location: location.to_string(),
            reason,
        };
        let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(caches)
            .build_arc()
            .map_err(|e| bad(e.to_string()))?;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(LocalGroupRule))
            .build();
        let ctx = SessionContext::new_with_state(state);
        for f in crate::udf::all() {
            ctx.register_udf(f);
        }
        let root = if let Some(rest) = location.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let store = s3_store(bucket, s3).map_err(|e| bad(e.to_string()))?;
            let url = url::Url::parse(&format!("s3://{bucket}")).map_err(|e| bad(e.to_string()))?;
            ctx.register_object_store(&url, Arc::new(store));
            format!("{}/", location.trim_end_matches('/'))
        } else {
            let dir = std::path::Path::new(location);
            if !dir.is_dir() {
                return Err(bad(
                    "no such folder (write one with `flowlens archive SOURCE --to DIR`)".into(),
                ));
            }
            let abs = dir.canonicalize().map_err(|e| bad(e.to_string()))?;
            let url = url::Url::parse("file://").map_err(|e| bad(e.to_string()))?;
            ctx.register_object_store(&url, Arc::new(LocalArchiveStore::default()));
            format!("{}/", abs.display())
        };
        for (name, schema, keys) in tables() {
            let dir = format!("{root}{}={name}/", part::KIND);
            let partition_cols: Vec<(String, DataType)> = keys
                .iter()
                .map(|k| (k.to_string(), DataType::Utf8))
                .collect();
            let local_missing = !dir.starts_with("s3://") && !std::path::Path::new(&dir).is_dir();
            if local_missing {
                // No such table yet: an empty one with the same columns, so saved
                // queries run (and return nothing) instead of failing.
                let mut fields: Vec<Field> =
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.extend(keys.iter().map(|k| Field::new(*k, DataType::Utf8, false)));
                let table = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]])?;
                ctx.register_table(name, Arc::new(table))?;
                continue;
            }
            let url = ListingTableUrl::parse(&dir)?;
            // The session's parquet options (so `DATAFUSION_EXECUTION_PARQUET_*` apply).
            let format =
                ParquetFormat::default().with_options(ctx.state().default_table_options().parquet);
            let options = ListingOptions::new(Arc::new(format))
                .with_file_extension(".parquet")
                .with_table_partition_cols(partition_cols);
            let config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(schema);
            let statistics = ctx.runtime_env().cache_manager.get_file_statistic_cache();
            let table = ListingTable::try_new(config)?.with_cache(statistics);
            ctx.register_table(name, Arc::new(table))?;
        }
        Ok(Archive {
            ctx,
            location: location.to_string(),
        })
    }

    /// The archive's location, as opened.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The DataFusion session (for callers that stream results themselves).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Plans `sql` after refusing anything but a read: DDL, DML, COPY and `SET`.
    ///
    /// # Errors
    /// [`QueryError::ReadOnly`], or [`QueryError::Invalid`] with the position.
    pub async fn plan(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        let kw = first_keyword(sql);
        if WRITE_STATEMENTS.contains(&kw.as_str()) {
            return Err(QueryError::ReadOnly { statement: kw });
        }
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        self.ctx
            .sql_with_options(sql, options)
            .await
            .map_err(classify)
    }

    /// Runs `sql` and collects the result.
    ///
    /// # Errors
    /// As [`Archive::plan`]; reading the archive failed.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.plan(sql).await?.collect().await.map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_keyword_skips_comments() {
        assert_eq!(first_keyword("-- name: x\n-- y\n  select 1"), "SELECT");
        assert_eq!(first_keyword("/* a */ (SELECT 1)"), "SELECT");
        assert_eq!(first_keyword("insert into flows values (1)"), "INSERT");
        assert_eq!(first_keyword("COPY flows TO 'x'"), "COPY");
        assert_eq!(first_keyword(""), "");
    }
}
