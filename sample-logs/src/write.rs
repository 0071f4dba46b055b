//! Object writers: gzip text with the header line AWS puts first, and parquet.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use flate2::Compression;
use flate2::write::GzEncoder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, GzipLevel};
use parquet::file::properties::WriterProperties;

use crate::flow::FlowRecord;

fn create(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path)
}

/// Writes `lines` gzip-compressed, one per line.
pub fn lines_gz(path: &Path, lines: &[String]) -> std::io::Result<()> {
    let mut gz = GzEncoder::new(BufWriter::new(create(path)?), Compression::default());
    for l in lines {
        gz.write_all(l.as_bytes())?;
        gz.write_all(b"\n")?;
    }
    gz.finish()?.flush()
}

/// Writes flow records as gzip text: a header line of field names, then one record per line.
pub fn text_gz(
    path: &Path,
    format: &[&str],
    version: u8,
    records: &[FlowRecord],
) -> std::io::Result<()> {
    let mut lines = Vec::with_capacity(records.len() + 1);
    lines.push(format.join(" "));
    lines.extend(records.iter().map(|r| r.line(format, version)));
    lines_gz(path, &lines)
}

fn int_kind(name: &str) -> Option<bool> {
    match name {
        "version" | "srcport" | "dstport" | "protocol" | "tcp-flags" | "traffic-path" => {
            Some(false)
        }
        "packets" | "bytes" | "start" | "end" => Some(true),
        _ => None,
    }
}

/// Writes flow records as parquet with the AWS field types (INT_32, INT_64, STRING) and
/// the Glue column names (`-` → `_`), gzip-compressed.
pub fn parquet(path: &Path, format: &[&str], records: &[FlowRecord]) -> std::io::Result<()> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for name in format {
        let col = name.replace('-', "_");
        let values = records.iter().map(|r| {
            if *name == "version" {
                Some("5".to_string())
            } else {
                r.field(name)
            }
        });
        match int_kind(name) {
            Some(false) => {
                fields.push(Field::new(col, DataType::Int32, true));
                columns.push(Arc::new(
                    values
                        .map(|v| v.and_then(|s| s.parse().ok()))
                        .collect::<Int32Array>(),
                ));
            }
            Some(true) => {
                fields.push(Field::new(col, DataType::Int64, true));
                columns.push(Arc::new(
                    values
                        .map(|v| v.and_then(|s| s.parse().ok()))
                        .collect::<Int64Array>(),
                ));
            }
            None => {
                fields.push(Field::new(col, DataType::Utf8, true));
                columns.push(Arc::new(values.collect::<StringArray>()));
            }
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(std::io::Error::other)?;
    let props = WriterProperties::builder()
        .set_compression(PqCompression::GZIP(GzipLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(create(path)?, batch.schema(), Some(props))
        .map_err(std::io::Error::other)?;
    w.write(&batch).map_err(std::io::Error::other)?;
    w.close().map_err(std::io::Error::other)?;
    Ok(())
}
