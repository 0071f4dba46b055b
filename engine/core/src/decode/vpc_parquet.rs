//! VPC Flow Logs delivered as Apache Parquet, mapped onto the canonical `flows` schema.
//!
//! Column names may use AWS's hyphenated field names or the underscored Glue names;
//! types are cast to the canonical ones (`-` strings become null); columns flowlens
//! does not know are kept in the `extra` map. Batches are read lazily, one at a time.

use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringViewArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::compute::nullif;
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use flowlens_model::flows::{self, FLOW_FIELDS, FieldKind};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};

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
        // The file's own types (an embedded Arrow schema is ignored: AWS writes none),
        // then string columns read straight into views instead of being cast after.
        let plain = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
        let metadata = ArrowReaderMetadata::load(&data, plain).map_err(err)?;
        let hint = string_views(metadata.schema());
        let metadata = match hint {
            Some(hint) => ArrowReaderMetadata::try_new(
                metadata.metadata().clone(),
                ArrowReaderOptions::new().with_schema(hint),
            )
            .map_err(err)?,
            None => metadata,
        };
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(data, metadata);
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

/// `schema` with the `Utf8` and `LargeUtf8` columns that go to text fields of the
/// `flows` schema as `Utf8View`; `None` if it has none. (Unknown columns go to the
/// `extra` map as `Utf8`: reading them as views would only mean a copy back.)
fn string_views(schema: &Schema) -> Option<Arc<Schema>> {
    let is_text = |f: &Field| {
        matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8)
            && flows::field_index(f.name()).is_some_and(|i| FLOW_FIELDS[i].kind == FieldKind::Str)
    };
    if !schema.fields().iter().any(|f| is_text(f)) {
        return None;
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match is_text(f) {
            true => f.as_ref().clone().with_data_type(DataType::Utf8View),
            false => f.as_ref().clone(),
        })
        .collect();
    Some(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

/// `a` with its `-` values null. A `-` is recognised by its view alone (one compare
/// per row, no string is touched: a string this short is held inside its view); the
/// values stay where they are, only the validity changes.
fn dash_to_null(a: &StringViewArray) -> Result<ArrayRef> {
    let (views, dash) = (a.views(), make_view(b"-", 0, 0));
    let dashes = BooleanBuffer::collect_bool(views.len(), |i| views[i] == dash);
    if dashes.count_set_bits() == 0 {
        return Ok(Arc::new(a.clone()));
    }
    Ok(nullif(a, &BooleanArray::new(dashes, None))?)
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
                        dash_to_null(a.as_string_view())?
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BinaryArray, Int32Array, Int64Array, LargeStringArray, MapArray, StringArray,
    };
    use parquet::arrow::ArrowWriter;

    /// A parquet object with the column names and types a writer might use.
    fn object(columns: Vec<(&str, ArrayRef)>) -> Bytes {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    fn read(data: Bytes, ctx: &ObjectContext) -> RecordBatch {
        let mut flows = ParquetFlows::open(data, ctx, 1024).unwrap();
        let batch = flows.next_batch().unwrap().unwrap();
        assert!(flows.next_batch().is_none());
        batch
    }

    fn texts(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
        let a = batch.column_by_name(column).unwrap();
        assert_eq!(a.data_type(), &DataType::Utf8View, "{column}");
        a.as_string_view()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    #[test]
    fn names_types_dashes_and_extras() {
        let data = object(vec![
            (
                "interface-id",
                Arc::new(StringArray::from(vec![
                    Some("eni-0123456789abcdef0"),
                    Some("-"),
                    None,
                    Some("-x"),
                ])) as ArrayRef,
            ),
            (
                "srcaddr",
                Arc::new(LargeStringArray::from(vec![
                    "10.0.0.1",
                    "-",
                    "2001:db8::1234:5678:9abc",
                    "--",
                ])),
            ),
            (
                "action",
                Arc::new(BinaryArray::from(vec![
                    b"ACCEPT".as_ref(),
                    b"-",
                    b"REJECT",
                    b"ACCEPT",
                ])),
            ),
            (
                "bytes",
                Arc::new(Int32Array::from(vec![Some(10), None, Some(0), Some(7)])),
            ),
            ("start", Arc::new(Int64Array::from(vec![1, 2, 3, 4]))),
            (
                "account_id",
                Arc::new(StringArray::from(vec!["-", "123456789012", "-", "-"])),
            ),
            (
                "my-field",
                Arc::new(StringArray::from(vec!["a", "-", "c", "-"])),
            ),
        ]);
        let ctx = ObjectContext {
            object: "s3://bucket/o.parquet".into(),
            account_id: Some("999999999999".into()),
            region: Some("eu-west-1".into()),
        };
        let batch = read(data, &ctx);
        assert_eq!(batch.schema(), flows::schema());
        let some = |v: &str| Some(v.to_string());
        assert_eq!(
            texts(&batch, "interface_id"),
            [some("eni-0123456789abcdef0"), None, None, some("-x")]
        );
        assert_eq!(
            texts(&batch, "srcaddr"),
            [
                some("10.0.0.1"),
                None,
                some("2001:db8::1234:5678:9abc"),
                some("--")
            ]
        );
        assert_eq!(
            texts(&batch, "action"),
            [some("ACCEPT"), None, some("REJECT"), some("ACCEPT")]
        );
        let account = [
            some("999999999999"),
            some("123456789012"),
            some("999999999999"),
            some("999999999999"),
        ];
        assert_eq!(texts(&batch, "account_id"), account);
        assert_eq!(texts(&batch, "region"), vec![some("eu-west-1"); 4]);
        assert_eq!(
            texts(&batch, "source_object"),
            vec![some("s3://bucket/o.parquet"); 4]
        );
        let bytes = batch
            .column_by_name("bytes")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(
            bytes.iter().collect::<Vec<_>>(),
            [Some(10), None, Some(0), Some(7)]
        );
        let extra = batch.column(flows::EXTRA_INDEX);
        let extra = extra.as_any().downcast_ref::<MapArray>().unwrap();
        let values: Vec<Option<String>> = (0..4)
            .map(|row| {
                let entry = extra.value(row);
                let keys = entry.column(0).as_string::<i32>();
                assert_eq!(keys.value(0), "my_field");
                let v = entry.column(1).as_string::<i32>();
                v.is_valid(0).then(|| v.value(0).to_string())
            })
            .collect();
        assert_eq!(values, [some("a"), None, some("c"), None]);
    }

    #[test]
    fn not_parquet_is_an_error_naming_the_object() {
        let ctx = ObjectContext::new("s3://bucket/bad.parquet");
        let Err(e) = ParquetFlows::open(Bytes::from_static(b"PAR1 not really"), &ctx, 16) else {
            panic!("opened");
        };
        assert!(e.to_string().contains("s3://bucket/bad.parquet"), "{e}");
    }
}
