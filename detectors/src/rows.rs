//! Reading the (small) results of polars aggregations row by row, and filling the
//! detectors' string-keyed maps.

use std::collections::BTreeMap;

use polars::prelude::{DataFrame, DataType, StringChunked};

use crate::Result;

/// `map[key]`, inserted empty if absent: the key is copied only then.
pub fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// A column of an aggregation result as text (read with `iter`, without copying).
pub fn texts(df: &DataFrame, name: &str) -> Result<StringChunked> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?.clone())
}

/// A column of an aggregation result as i64 (booleans and counts cast).
pub fn ints(df: &DataFrame, name: &str) -> Result<Vec<i64>> {
    let c = df.column(name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
}
