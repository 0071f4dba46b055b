//! Sans-IO half of the archive: splits an object's records into hive partitions,
//! sorts each by time and encodes it as zstd parquet.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use chrono::DateTime;
use flowlens_model::archive::{UNKNOWN, part, safe_partition_value};
use flowlens_model::{LogKind, flows, waf};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::source::KeyInfo;

/// Rows per row group: small enough that time-range and address filters skip most of
/// a large file (each row group and page carries min/max statistics), large enough
/// that column chunks compress well.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// zstd level of the archive (3 is zstd's default; higher levels buy little on these
/// columns and cost write time).
pub const ZSTD_LEVEL: i32 = 3;

/// One hive partition of a log table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub kind: LogKind,
    pub account: String,
    pub region: String,
    /// `YYYY-MM-DD`, or [`UNKNOWN`] for records without a time.
    pub date: String,
    /// `00`–`23`, or [`UNKNOWN`].
    pub hour: String,
}

impl Partition {
    /// `kind=flows/account=.../aws_region=.../date=.../hour=...`.
    pub fn dir(&self) -> String {
        format!(
            "{}={}/{}={}/{}={}/{}={}/{}={}",
            part::KIND,
            self.kind.table(),
            part::ACCOUNT,
            self.account,
            part::AWS_REGION,
            self.region,
            part::DATE,
            self.date,
            part::HOUR,
            self.hour
        )
    }
}

/// The column a table is sorted by within a file, and its index.
pub fn time_column(kind: LogKind) -> (&'static str, usize) {
    let name = match kind {
        LogKind::Flows => flows::col::START,
        LogKind::Waf => waf::col::TIMESTAMP,
    };
    (name, kind.schema().index_of(name).expect("time column"))
}

/// Per-row time in seconds (None when null).
fn times(kind: LogKind, batch: &RecordBatch) -> Vec<Option<i64>> {
    let (_, idx) = time_column(kind);
    let col = batch.column(idx);
    match kind {
        LogKind::Flows => col.as_primitive::<Int64Type>().iter().collect(),
        LogKind::Waf => col
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .map(|t| t.map(|ms| ms.div_euclid(1000)))
            .collect(),
    }
}

fn str_col<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a arrow::array::StringViewArray> {
    batch
        .schema()
        .index_of(name)
        .ok()
        .and_then(|i| batch.column(i).as_string_view_opt())
}

/// Account, region and hour of one record, borrowed from the batch.
type RowKey<'a> = (Option<&'a str>, Option<&'a str>, Option<i64>);

fn value_at(a: Option<&arrow::array::StringViewArray>, i: usize) -> Option<&str> {
    a.and_then(|a| (!a.is_null(i)).then(|| a.value(i)))
}

fn clean(v: Option<&str>, fallback: Option<&str>) -> String {
    v.filter(|v| safe_partition_value(v))
        .or(fallback.filter(|v| safe_partition_value(v)))
        .unwrap_or(UNKNOWN)
        .to_string()
}

/// Splits one object's records (all of one kind) into partitions, each sorted by time
/// (stable: records of the same second keep their order). Account and region come from
/// the record, else from the object key; values unsafe in a path become `unknown`.
///
/// # Errors
/// Never for batches of the canonical schema; an Arrow error otherwise.
pub fn partition(
    kind: LogKind,
    batch: &RecordBatch,
    key: &KeyInfo,
) -> Result<Vec<(Partition, RecordBatch)>> {
    let (acct_col, region_col) = match kind {
        LogKind::Flows => (flows::col::ACCOUNT_ID, flows::col::REGION),
        LogKind::Waf => (waf::col::ACCOUNT_ID, waf::col::REGION),
    };
    let accounts = str_col(batch, acct_col);
    let regions = str_col(batch, region_col);
    let times = times(kind, batch);
    let mut groups: HashMap<RowKey<'_>, Vec<u32>> = HashMap::new();
    for (i, t) in times.iter().enumerate() {
        groups
            .entry((
                value_at(accounts, i),
                value_at(regions, i),
                t.map(|t| t.div_euclid(3600)),
            ))
            .or_default()
            .push(i as u32);
    }
    let mut out: Vec<(Partition, RecordBatch)> = Vec::with_capacity(groups.len());
    let mut by_partition: HashMap<Partition, Vec<u32>> = HashMap::new();
    for ((account, region, hour), rows) in groups {
        let (date, hour) = match hour.and_then(|h| DateTime::from_timestamp(h * 3600, 0)) {
            Some(t) => (t.format("%Y-%m-%d").to_string(), t.format("%H").to_string()),
            None => (UNKNOWN.to_string(), UNKNOWN.to_string()),
        };
        let p = Partition {
            kind,
            account: clean(account, key.account_id.as_deref()),
            region: clean(region, key.region.as_deref()),
            date,
            hour,
        };
        by_partition.entry(p).or_default().extend(rows);
    }
    for (p, mut rows) in by_partition {
        rows.sort_by_key(|&r| (times[r as usize].unwrap_or(i64::MIN), r));
        let idx = UInt32Array::from(rows);
        out.push((p, take_record_batch(batch, &idx)?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writer settings of the archive: zstd, dictionary strings, delta-encoded times and
/// byte counts, statistics per page, and the sort order recorded in the footer.
pub fn writer_properties(kind: Option<LogKind>) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("flowlens {}", env!("CARGO_PKG_VERSION")));
    if let Some(kind) = kind {
        let (name, idx) = time_column(kind);
        b = b.set_sorting_columns(Some(vec![SortingColumn {
            column_idx: idx as i32,
            descending: false,
            nulls_first: true,
        }]));
        if kind == LogKind::Flows {
            // Sorted start times and nearby end times: deltas are a few bits each.
            for c in [name, flows::col::END] {
                let path = ColumnPath::from(c);
                b = b
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::DELTA_BINARY_PACKED);
            }
            // Byte counts are nearly all distinct: a dictionary is as large as the
            // values, and zstd finds nothing in them. Delta bit-packing stores them in a
            // third less space than dictionary + zstd did (2.5 instead of 3.8 bytes per
            // record on generated traffic), left uncompressed, and a `sum(bytes)` reads
            // about twice as fast (flowlens and DuckDB alike).
            let path = ColumnPath::from(flows::col::BYTES);
            b = b
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path.clone(), Encoding::DELTA_BINARY_PACKED)
                .set_column_compression(path, Compression::UNCOMPRESSED);
        }
    }
    b.build()
}

/// Encodes `batch` as one parquet file.
///
/// # Errors
/// The parquet writer failed (it does not for the canonical schemas).
pub fn encode(kind: Option<LogKind>, batch: &RecordBatch, what: &str) -> Result<Vec<u8>> {
    let err = |e: parquet::errors::ParquetError| Error::Parquet {
        object: what.to_string(),
        source: e,
    };
    let mut buf = Vec::with_capacity(batch.get_array_memory_size() / 8 + 4096);
    let mut w = ArrowWriter::try_new(
        &mut buf,
        Arc::clone(&batch.schema()),
        Some(writer_properties(kind)),
    )
    .map_err(err)?;
    w.write(batch).map_err(err)?;
    w.close().map_err(err)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::ObjectContext;
    use crate::decode::object::{DecodeOptions, ObjectDecoder};

    fn decode(text: &str) -> RecordBatch {
        let mut d = ObjectDecoder::new(ObjectContext::new("t.log"), DecodeOptions::default());
        d.push(text.as_bytes());
        d.finish().unwrap();
        let mut batches = Vec::new();
        while let Some((_, b)) = d.take_batch() {
            batches.push(b);
        }
        arrow::compute::concat_batches(&flows::schema(), &batches).unwrap()
    }

    #[test]
    fn splits_by_account_and_hour_and_sorts_by_start() {
        let text = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
2 123456789012 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 10 1748862000 1748862060 ACCEPT OK\n\
2 123456789012 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 10 1748858399 1748858460 ACCEPT OK\n\
2 ../../etc eni-a 10.0.0.1 10.0.0.2 1 2 6 1 10 1748858401 1748858460 ACCEPT OK\n\
2 123456789012 eni-a 10.0.0.1 10.0.0.2 1 2 6 1 10 1748858300 1748858460 ACCEPT OK\n";
        let batch = decode(text);
        let key = KeyInfo {
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let parts = partition(LogKind::Flows, &batch, &key).unwrap();
        let dirs: Vec<_> = parts.iter().map(|(p, b)| (p.dir(), b.num_rows())).collect();
        assert_eq!(
            dirs,
            vec![
                (
                    "kind=flows/account=123456789012/aws_region=eu-west-1/date=2025-06-02/hour=09"
                        .to_string(),
                    2
                ),
                (
                    "kind=flows/account=123456789012/aws_region=eu-west-1/date=2025-06-02/hour=11"
                        .to_string(),
                    1
                ),
                (
                    "kind=flows/account=unknown/aws_region=eu-west-1/date=2025-06-02/hour=10"
                        .to_string(),
                    1
                ),
            ]
        );
        let starts: Vec<_> = parts[0]
            .1
            .column(time_column(LogKind::Flows).1)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        assert_eq!(starts, vec![1748858300, 1748858399]);
        let bytes = encode(Some(LogKind::Flows), &parts[0].1, "t").unwrap();
        let back = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap();
        assert_eq!(back.metadata().file_metadata().num_rows(), 2);
        let group = back.metadata().row_group(0);
        assert!(group.sorting_columns().is_some());
        let chunk = |name: &str| {
            let found = group
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name);
            found.expect("column chunk").clone()
        };
        let bytes_col = chunk(flows::col::BYTES);
        assert_eq!(bytes_col.compression(), Compression::UNCOMPRESSED);
        assert!(
            bytes_col
                .encodings()
                .any(|e| e == Encoding::DELTA_BINARY_PACKED)
        );
        assert!(bytes_col.dictionary_page_offset().is_none());
        let addr = chunk(flows::col::SRCADDR);
        assert!(matches!(addr.compression(), Compression::ZSTD(_)));
        assert!(addr.dictionary_page_offset().is_some());
    }
}
