//! flowlens queries: DataFusion over the partitioned parquet archive, analyst UDFs and
//! the saved `.sql` queries. Lands with the SQL issue; the crate fixes its place in the
//! workspace (it may depend on the model and DataFusion only).
