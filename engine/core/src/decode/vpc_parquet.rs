//! VPC Flow Logs delivered as Apache Parquet, mapped onto the canonical `flows` schema.
//!
//! Column names may use AWS's hyphenated field names or the underscored Glue names;
//! types are cast to the canonical ones (`-` strings become null); columns flowlens
//! does not know are kept in the `extra` map. Batches are read lazily, one at a time.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringViewArray};
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use bytes::Bytes;
use flowlens_model::flows::{self, FLOW_FIELDS, FieldKind};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::ObjectContext;
use crate::error::{Error, Result};
use crate::util::{const_str_view, null_array};

/// The four bytes a parquet file starts (and ends) with.
pub const PARQUET_MAGIC: &[u8] = b"PAR1";

/// Where each parquet column goes.
#[derive(Debug, Clone)]
enum Target {
    Known(usize),
    Extra(String),
}

/// Lazily reads and maps the batches of one parquet object.
pub struct ParquetFlows {
    reader: ParquetRecordBatchReader,
    targets: Vec<Target>,
    ctx: ObjectContext,
}

impl ParquetFlows {
    /// Opens a parquet flow-log object held in memory.
    ///
    /// # Errors
    /// The bytes are not a readable parquet file.
    pub fn open(data: Bytes, ctx: &ObjectContext, batch_rows: usize) -> Result<Self> {
        let err = |source| Error::Parquet {
            object: ctx.object.clone(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(err)?;
        let targets = builder
            .schema()
            .fields()
            .iter()
            .map(|f| match flows::field_index(f.name()) {
                Some(i) => Target::Known(i),
                None => Target::Extra(f.name().replace('-', "_")),
            })
            .collect();
        let reader = builder.with_batch_size(batch_rows).build().map_err(err)?;
        Ok(ParquetFlows {
            reader,
            targets,
            ctx: ctx.clone(),
        })
    }

    /// The next mapped batch.
    pub fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(Error::Object {
                    object: self.ctx.object.clone(),
                    reason: format!("unreadable parquet data: {e}"),
                }));
            }
        };
        Some(map_batch(&batch, &self.targets, &self.ctx))
    }
}

fn dash_to_null(a: &StringViewArray) -> ArrayRef {
    if !a.iter().any(|v| v == Some("-")) {
        return Arc::new(a.clone());
    }
    Arc::new(
        a.iter()
            .map(|v| v.filter(|s| *s != "-"))
            .collect::<StringViewArray>(),
    )
}

fn map_batch(batch: &RecordBatch, targets: &[Target], ctx: &ObjectContext) -> Result<RecordBatch> {
    let schema = flows::schema();
    let rows = batch.num_rows();
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    let mut out: Vec<Option<ArrayRef>> = vec![None; schema.fields().len()];
    let mut extras: Vec<(&str, ArrayRef)> = Vec::new();
    for (target, column) in targets.iter().zip(batch.columns()) {
        match target {
            Target::Known(i) => {
                let array = match FLOW_FIELDS[*i].kind {
                    FieldKind::Str => {
                        let a = cast_with_options(column, &DataType::Utf8View, &opts)?;
                        dash_to_null(a.as_string_view())
                    }
                    FieldKind::I32 => cast_with_options(column, &DataType::Int32, &opts)?,
                    FieldKind::I64 => cast_with_options(column, &DataType::Int64, &opts)?,
                };
                out[*i] = Some(array);
            }
            Target::Extra(name) => {
                extras.push((name, cast_with_options(column, &DataType::Utf8, &opts)?));
            }
        }
    }
    if !extras.is_empty() {
        let mut map = super::extra_map_builder();
        for row in 0..rows {
            for (name, values) in &extras {
                let values = values.as_string::<i32>();
                map.keys().append_value(name);
                if values.is_null(row) || values.value(row) == "-" {
                    map.values().append_null();
                } else {
                    map.values().append_value(values.value(row));
                }
            }
            map.append(true)?;
        }
        out[flows::EXTRA_INDEX] = Some(Arc::new(map.finish()));
    }
    // Fill account and region from the object key where the file lacks them.
    for (name, value) in [
        (flows::col::ACCOUNT_ID, ctx.account_id.as_deref()),
        (flows::col::REGION, ctx.region.as_deref()),
    ] {
        let (Some(value), Ok(i)) = (value, schema.index_of(name)) else {
            continue;
        };
        out[i] = Some(match out[i].take() {
            None => const_str_view(value, rows),
            Some(a) if a.null_count() > 0 => {
                let a = a.as_string_view();
                Arc::new(
                    a.iter()
                        .map(|v| Some(v.unwrap_or(value)))
                        .collect::<StringViewArray>(),
                )
            }
            Some(a) => a,
        });
    }
    out[flows::SOURCE_OBJECT_INDEX] = Some(const_str_view(&ctx.object, rows));
    let columns = schema
        .fields()
        .iter()
        .zip(out)
        .map(|(f, a)| a.unwrap_or_else(|| null_array(f.data_type(), rows)))
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}
