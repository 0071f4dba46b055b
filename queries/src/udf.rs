//! Functions for analysts, registered in every `flowlens sql` session:
//!
//! | function | returns |
//! |---|---|
//! | `is_private(ip)` | true for RFC 1918, 100.64/10, link-local, loopback, IPv6 ULA/link-local; NULL for what is not an address |
//! | `is_public(ip)` | the opposite, for addresses; NULL otherwise |
//! | `in_cidr(ip, cidr)` | whether `ip` is in `cidr` (`10.0.0.0/8`, `2001:db8::/32`, or a bare address); NULL for a bad address or block |
//! | `az_pair(az_a, az_b)` | the unordered pair `use1-az1 <-> use1-az2` (NULL when either is NULL or both are equal) |
//! | `cross_az_cost(bytes [, usd_per_gb])` | dollars for `bytes` crossing AZs, charged in each direction (default $0.01/GB, as the cross-AZ detector) |
//!
//! Address semantics are the detectors' own ([`flowlens_model::net`]).

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use flowlens_model::net::{self, Cidr};

/// Default price of the `cross_az_cost` function, in dollars per GB and direction.
pub const DEFAULT_USD_PER_GB: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    IsPrivate,
    IsPublic,
    InCidr,
    AzPair,
    CrossAzCost,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Udf {
    kind: Kind,
    signature: Signature,
}

impl Udf {
    fn new(kind: Kind) -> Self {
        let s = DataType::Utf8;
        let signature = match kind {
            Kind::IsPrivate | Kind::IsPublic => Signature::exact(vec![s], Volatility::Immutable),
            Kind::InCidr | Kind::AzPair => {
                Signature::exact(vec![s.clone(), s], Volatility::Immutable)
            }
            Kind::CrossAzCost => Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Float64]),
                    TypeSignature::Exact(vec![DataType::Float64, DataType::Float64]),
                ],
                Volatility::Immutable,
            ),
        };
        Udf { kind, signature }
    }
}

/// Strings of any string type as `Option<&str>` per row.
fn strings(a: &ArrayRef) -> Result<Vec<Option<&str>>> {
    Ok(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().collect(),
        DataType::Utf8View => a.as_string_view().iter().collect(),
        DataType::Null => vec![None; a.len()],
        other => return exec_err!("expected a string, got {other}"),
    })
}

impl ScalarUDFImpl for Udf {
    fn name(&self) -> &str {
        match self.kind {
            Kind::IsPrivate => "is_private",
            Kind::IsPublic => "is_public",
            Kind::InCidr => "in_cidr",
            Kind::AzPair => "az_pair",
            Kind::CrossAzCost => "cross_az_cost",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::IsPrivate | Kind::IsPublic | Kind::InCidr => DataType::Boolean,
            Kind::AzPair => DataType::Utf8,
            Kind::CrossAzCost => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.kind {
            Kind::IsPrivate | Kind::IsPublic => {
                let want_private = self.kind == Kind::IsPrivate;
                Arc::new(
                    strings(&arrays[0])?
                        .into_iter()
                        .map(|s| {
                            s.and_then(net::parse_ip)
                                .map(|ip| net::is_private(ip) == want_private)
                        })
                        .collect::<BooleanArray>(),
                )
            }
            Kind::InCidr => {
                let ips = strings(&arrays[0])?;
                let cidrs = strings(&arrays[1])?;
                let mut last: Option<(&str, Option<Cidr>)> = None;
                let mut out = Vec::with_capacity(ips.len());
                for (ip, cidr) in ips.into_iter().zip(cidrs) {
                    let (Some(ip), Some(cidr)) = (ip, cidr) else {
                        out.push(None);
                        continue;
                    };
                    let block = match last {
                        Some((text, block)) if text == cidr => block,
                        _ => {
                            let block = Cidr::from_str(cidr.trim()).ok();
                            last = Some((cidr, block));
                            block
                        }
                    };
                    out.push(match (net::parse_ip(ip), block) {
                        (Some(ip), Some(block)) => Some(block.contains(ip)),
                        _ => None,
                    });
                }
                Arc::new(BooleanArray::from(out))
            }
            Kind::AzPair => {
                let a = strings(&arrays[0])?;
                let b = strings(&arrays[1])?;
                Arc::new(
                    a.into_iter()
                        .zip(b)
                        .map(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) if a != b => {
                                let (x, y) = if a < b { (a, b) } else { (b, a) };
                                Some(format!("{x} <-> {y}"))
                            }
                            _ => None,
                        })
                        .collect::<StringArray>(),
                )
            }
            Kind::CrossAzCost => {
                let bytes = arrays[0].as_primitive::<arrow::datatypes::Float64Type>();
                let rate = arrays
                    .get(1)
                    .map(|r| r.as_primitive::<arrow::datatypes::Float64Type>());
                Arc::new(
                    (0..bytes.len())
                        .map(|i| {
                            let usd_per_gb = match rate {
                                Some(r) if r.is_null(i) => return None,
                                Some(r) => r.value(i),
                                None => DEFAULT_USD_PER_GB,
                            };
                            (!bytes.is_null(i))
                                .then(|| net::cross_az_usd(bytes.value(i), usd_per_gb))
                        })
                        .collect::<Float64Array>(),
                )
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Every flowlens function.
pub fn all() -> Vec<ScalarUDF> {
    [
        Kind::IsPrivate,
        Kind::IsPublic,
        Kind::InCidr,
        Kind::AzPair,
        Kind::CrossAzCost,
    ]
    .into_iter()
    .map(|k| ScalarUDF::from(Udf::new(k)))
    .collect()
}
