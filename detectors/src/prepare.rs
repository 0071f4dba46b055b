//! Batches → polars frames with the derived columns every detector shares.
//!
//! One owner for these derived column names ([`derived`]); the source columns keep
//! their schema names (`flowlens_model::flows::col`, `flowlens_model::waf::col`).
//! Derivations that polars has no kernel for (address scope, CIDR allowlists, TCP
//! direction) are computed here once per chunk, in one pass per column; addresses and
//! interfaces arrive as integer codes ([`Names`]), judged once per distinct value.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::PrimitiveArray;
use arrow::array::builder::NullBufferBuilder;
use arrow::array::builder::make_view;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Array, Int64Array, ListArray,
    StringViewArray,
};
use arrow::buffer::ScalarBuffer;
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Int32Type, Int64Type, TimestampMillisecondType,
};
use arrow::record_batch::RecordBatch;
use flowlens_model::{flows, waf};
use polars::prelude::DataFrame;

use crate::config::{Allow, ScrapingConfig};
use crate::names::{NONE, Names, to_array};
use crate::net::scope_of;
use crate::stats::hash64;
use crate::{Error, Result, frame};

/// Names of the derived columns.
pub mod derived {
    /// Codes ([`crate::names::Names`]) of `srcaddr` / `dstaddr`.
    pub const SRC_ID: &str = "src_id";
    pub const DST_ID: &str = "dst_id";
    /// Codes of the packet-level addresses (`pkt_*`, else the plain ones).
    pub const PSRC_ID: &str = "psrc_id";
    pub const PDST_ID: &str = "pdst_id";
    /// Code of `interface_id`.
    pub const ENI_ID: &str = "eni_id";
    /// Scope ([`crate::net::Scope`] as Int32) of `srcaddr` / `dstaddr`.
    pub const SRC_SCOPE: &str = "src_scope";
    pub const DST_SCOPE: &str = "dst_scope";
    /// Scope of the packet-level addresses (`pkt_*`, else the plain ones).
    pub const PSRC_SCOPE: &str = "psrc_scope";
    pub const PDST_SCOPE: &str = "pdst_scope";
    /// `action` is ACCEPT / REJECT (false when it is missing).
    pub const ACCEPT: &str = "accept";
    pub const REJECT: &str = "reject";
    /// `flow_direction` as Int32: [`super::direction`].
    pub const DIRECTION: &str = "direction";
    /// The record is the responder's direction of a connection (SYN-ACK seen, or
    /// service port → ephemeral port).
    pub const RESPONSE: &str = "response";
    /// The service port of the connection (`dstport`, or `srcport` for a response).
    pub const SVC_PORT: &str = "svc_port";
    /// Matched by the global allowlist.
    pub const ALLOWED: &str = "allowed";
    /// `pkt_src_aws_service` / `pkt_dst_aws_service` is set (an AWS service's range).
    pub const SRC_AWS_SERVICE: &str = "src_aws_service";
    pub const DST_AWS_SERVICE: &str = "dst_aws_service";
    /// WAF: event time in unix seconds.
    pub const TS: &str = "ts";
    /// WAF: the client fingerprint (JA4, else JA3, else `ua:<hash>`).
    pub const FINGERPRINT: &str = "fingerprint";
    /// WAF: the user agent is an automation tool.
    pub const AUTOMATION: &str = "automation";
    /// WAF: Bot Control labelled the client a verified bot.
    pub const VERIFIED_BOT: &str = "verified_bot";
    /// WAF: the URI is a catalogue or search path.
    pub const CATALOGUE: &str = "catalogue";
    /// WAF: the URI's last segment is a number (enumerable ids).
    pub const NUMERIC_TAIL: &str = "numeric_tail";
    /// WAF: the request was blocked, challenged or sent a CAPTCHA.
    pub const BLOCKED: &str = "blocked";
}

/// Values of [`derived::DIRECTION`].
pub mod direction {
    /// The log has no `flow-direction` field (or the record no value).
    pub const UNKNOWN: i32 = 0;
    pub const INGRESS: i32 = 1;
    pub const EGRESS: i32 = 2;
    /// A value AWS does not write.
    pub const OTHER: i32 = 3;
}

/// The flow columns the detectors read (the registry keeps only these of each batch):
/// the inventory's ([`Inventory::learn`]) and the frame's (addresses, interface, action,
/// direction and AWS-service fields arrive as derived columns, [`FRAME_COLUMNS`] as
/// they are).
///
/// [`Inventory::learn`]: crate::inventory::Inventory::learn
pub const FLOW_COLUMNS: &[&str] = &[
    flows::col::ACCOUNT_ID,
    flows::col::REGION,
    flows::col::VPC_ID,
    flows::col::SUBNET_ID,
    flows::col::AZ_ID,
    flows::col::INTERFACE_ID,
    flows::col::INSTANCE_ID,
    flows::col::SRCADDR,
    flows::col::DSTADDR,
    flows::col::PKT_SRCADDR,
    flows::col::PKT_DSTADDR,
    flows::col::SRCPORT,
    flows::col::DSTPORT,
    flows::col::PROTOCOL,
    flows::col::PACKETS,
    flows::col::BYTES,
    flows::col::START,
    flows::col::ACTION,
    flows::col::TCP_FLAGS,
    flows::col::FLOW_DIRECTION,
    flows::col::PKT_SRC_AWS_SERVICE,
    flows::col::PKT_DST_AWS_SERVICE,
];

/// The source columns of a flows frame, beside the [`derived`] ones.
pub const FRAME_COLUMNS: &[&str] = &[
    flows::col::SRCPORT,
    flows::col::DSTPORT,
    flows::col::PROTOCOL,
    flows::col::PACKETS,
    flows::col::BYTES,
    flows::col::START,
    flows::col::TCP_FLAGS,
];

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::Schema(format!("batch has no `{name}` column")))
}

pub(crate) fn strs<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringViewArray> {
    column(batch, name)?
        .as_string_view_opt()
        .ok_or_else(|| Error::Schema(format!("`{name}` is not Utf8View")))
}

fn i32s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int32Array> {
    column(batch, name)?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| Error::Schema(format!("`{name}` is not Int32")))
}

/// The TCP responder heuristic, per record.
fn is_response(
    protocol: Option<i32>,
    flags: Option<i32>,
    sport: Option<i32>,
    dport: Option<i32>,
) -> bool {
    if protocol == Some(6)
        && let Some(f) = flags
    {
        // AWS logs SYN (2), SYN-ACK (18), FIN (1), RST (4): ACK only as part of SYN-ACK.
        if f & 0x12 == 0x12 {
            return true;
        }
        if f & 0x02 != 0 {
            return false;
        }
    }
    match (sport, dport) {
        (Some(s), Some(d)) if s > 0 && d > 0 => {
            (s <= 1024 && d > 1024) || (s < 32768 && d >= 32768)
        }
        _ => false,
    }
}

/// A flows chunk's addresses and interfaces as codes ([`Names`]; [`NONE`] for a null),
/// one per row across the chunk's batches, with what is judged once per distinct value.
pub struct Coded<'a> {
    pub names: Names<'a>,
    /// Codes of `srcaddr`, `dstaddr`, the packet-level addresses (`pkt_*`, else the
    /// plain ones) and `interface_id`.
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub psrc: Vec<u32>,
    pub pdst: Vec<u32>,
    pub eni: Vec<u32>,
    /// [`Scope`](crate::net::Scope) of each name, by code (as Int32).
    pub scope: Vec<i32>,
    /// `flow_direction` per row ([`direction`]).
    pub direction: Vec<i32>,
}

/// `codes[i]`, or `base[i]` where it is [`NONE`].
fn fill_none(codes: &mut [u32], base: &[u32]) {
    for (c, b) in codes.iter_mut().zip(base) {
        if *c == NONE {
            *c = *b;
        }
    }
}

/// Interns the addresses and interfaces of a chunk's flow batches (canonical schema).
///
/// # Errors
/// A batch does not have the canonical `flows` schema.
pub fn code(batches: &[RecordBatch]) -> Result<Coded<'_>> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut names = Names::default();
    let [mut src, mut dst, mut psrc, mut pdst, mut eni] =
        std::array::from_fn(|_| Vec::with_capacity(rows));
    let mut dirs = Vec::with_capacity(rows);
    let (ingress, egress) = (make_view(b"ingress", 0, 0), make_view(b"egress", 0, 0));
    for batch in batches {
        let start = src.len();
        names.append_codes(strs(batch, flows::col::SRCADDR)?, &mut src);
        names.append_codes(strs(batch, flows::col::DSTADDR)?, &mut dst);
        names.append_codes(strs(batch, flows::col::PKT_SRCADDR)?, &mut psrc);
        names.append_codes(strs(batch, flows::col::PKT_DSTADDR)?, &mut pdst);
        names.append_codes(strs(batch, flows::col::INTERFACE_ID)?, &mut eni);
        fill_none(&mut psrc[start..], &src[start..]);
        fill_none(&mut pdst[start..], &dst[start..]);
        let dir = strs(batch, flows::col::FLOW_DIRECTION)?;
        dirs.extend(dir.views().iter().enumerate().map(|(i, v)| match *v {
            _ if dir.is_null(i) => direction::UNKNOWN,
            v if v == ingress => direction::INGRESS,
            v if v == egress => direction::EGRESS,
            _ => direction::OTHER,
        }));
    }
    // Judged once per distinct string (interfaces included: a handful).
    let scope: Vec<i32> = names.values().iter().map(|s| scope_of(s) as i32).collect();
    Ok(Coded {
        names,
        src,
        dst,
        psrc,
        pdst,
        eni,
        scope,
        direction: dirs,
    })
}

/// One numeric column of every batch, as one array (a copy of the value buffers and
/// validity bitmaps).
fn concat_numbers<T: ArrowPrimitiveType>(batches: &[RecordBatch], name: &str) -> Result<ArrayRef> {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let mut values: Vec<T::Native> = Vec::with_capacity(rows);
    let mut nulls = NullBufferBuilder::new(rows);
    for batch in batches {
        let a = column(batch, name)?
            .as_primitive_opt::<T>()
            .ok_or_else(|| Error::Schema(format!("`{name}` is not {}", T::DATA_TYPE)))?;
        values.extend_from_slice(a.values());
        match a.nulls() {
            Some(n) => nulls.append_buffer(n),
            None => nulls.append_n_non_nulls(a.len()),
        }
    }
    Ok(Arc::new(PrimitiveArray::<T>::new(
        ScalarBuffer::from(values),
        nulls.finish(),
    )))
}

/// A flows chunk as a polars frame — [`FRAME_COLUMNS`] plus the [`derived`] columns —
/// and the [`Names`] its code columns refer to.
///
/// Addresses and interfaces arrive interned ([`code`]), so their scope and allowlist
/// membership are judged once per distinct value, and the detectors group by
/// integers; the frame holds no strings.
///
/// # Errors
/// A batch does not have the canonical `flows` schema.
pub fn flows_frame<'a>(
    batches: &'a [RecordBatch],
    coded: Coded<'a>,
    allow: &Allow,
) -> Result<(DataFrame, Names<'a>)> {
    let Coded {
        names,
        src,
        dst,
        psrc,
        pdst,
        eni,
        scope,
        direction,
    } = coded;
    let n = src.len();
    let mut response = Vec::with_capacity(n);
    let mut svc: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut accept = Vec::with_capacity(n);
    let mut reject = Vec::with_capacity(n);
    let mut src_service = Vec::with_capacity(n);
    let mut dst_service = Vec::with_capacity(n);
    let (accept_view, reject_view) = (make_view(b"ACCEPT", 0, 0), make_view(b"REJECT", 0, 0));
    for batch in batches {
        let sport = i32s(batch, flows::col::SRCPORT)?;
        let dport = i32s(batch, flows::col::DSTPORT)?;
        let proto = i32s(batch, flows::col::PROTOCOL)?;
        let flags = i32s(batch, flows::col::TCP_FLAGS)?;
        for i in 0..batch.num_rows() {
            let r = is_response(
                proto.is_valid(i).then(|| proto.value(i)),
                flags.is_valid(i).then(|| flags.value(i)),
                sport.is_valid(i).then(|| sport.value(i)),
                dport.is_valid(i).then(|| dport.value(i)),
            );
            response.push(r);
            let p = if r { sport } else { dport };
            svc.push(p.is_valid(i).then(|| p.value(i)));
        }
        // ACCEPT and REJECT are inline views: equal views, equal text.
        let action = strs(batch, flows::col::ACTION)?;
        for (i, v) in action.views().iter().enumerate() {
            let valid = action.is_valid(i);
            accept.push(valid && *v == accept_view);
            reject.push(valid && *v == reject_view);
        }
        let s = strs(batch, flows::col::PKT_SRC_AWS_SERVICE)?;
        src_service.extend((0..s.len()).map(|i| s.is_valid(i)));
        let d = strs(batch, flows::col::PKT_DST_AWS_SERVICE)?;
        dst_service.extend((0..d.len()).map(|i| d.is_valid(i)));
    }

    let cidr_hit: Vec<bool> = if allow.cidrs.is_empty() {
        Vec::new()
    } else {
        names
            .values()
            .iter()
            .map(|s| allow.cidrs.contains_str(s))
            .collect()
    };
    let eni_hit: Vec<bool> = if allow.enis.is_empty() {
        Vec::new()
    } else {
        names
            .values()
            .iter()
            .map(|s| allow.enis.iter().any(|e| e == s))
            .collect()
    };
    let hit = |codes: &[u32], table: &[bool], i: usize| {
        !table.is_empty() && codes[i] != NONE && table[codes[i] as usize]
    };
    let allowed: Vec<bool> = if cidr_hit.is_empty() && eni_hit.is_empty() && allow.ports.is_empty()
    {
        vec![false; n]
    } else {
        (0..n)
            .map(|i| {
                hit(&src, &cidr_hit, i)
                    || hit(&dst, &cidr_hit, i)
                    || hit(&psrc, &cidr_hit, i)
                    || hit(&pdst, &cidr_hit, i)
                    || hit(&eni, &eni_hit, i)
                    || svc[i].is_some_and(|p| allow.ports.contains(&(p as u16)))
            })
            .collect()
    };
    let per_code = |codes: &[u32]| -> ArrayRef {
        let out: Vec<i32> = codes
            .iter()
            .map(|&c| if c == NONE { 0 } else { scope[c as usize] })
            .collect();
        Arc::new(Int32Array::from(out))
    };
    let bools = |v: Vec<bool>| -> ArrayRef { Arc::new(BooleanArray::from(v)) };

    let mut cols: Vec<(&str, ArrayRef)> = Vec::with_capacity(FRAME_COLUMNS.len() + 17);
    for name in FRAME_COLUMNS {
        let array = match flows::schema().field_with_name(name).map(|f| f.data_type()) {
            Ok(DataType::Int32) => concat_numbers::<Int32Type>(batches, name)?,
            _ => concat_numbers::<Int64Type>(batches, name)?,
        };
        cols.push((name, array));
    }
    cols.push((derived::SRC_SCOPE, per_code(&src)));
    cols.push((derived::DST_SCOPE, per_code(&dst)));
    cols.push((derived::PSRC_SCOPE, per_code(&psrc)));
    cols.push((derived::PDST_SCOPE, per_code(&pdst)));
    cols.push((derived::SRC_ID, Arc::new(to_array(src))));
    cols.push((derived::DST_ID, Arc::new(to_array(dst))));
    cols.push((derived::PSRC_ID, Arc::new(to_array(psrc))));
    cols.push((derived::PDST_ID, Arc::new(to_array(pdst))));
    cols.push((derived::ENI_ID, Arc::new(to_array(eni))));
    cols.push((derived::ACCEPT, bools(accept)));
    cols.push((derived::REJECT, bools(reject)));
    cols.push((derived::DIRECTION, Arc::new(Int32Array::from(direction))));
    cols.push((derived::RESPONSE, bools(response)));
    cols.push((derived::SVC_PORT, Arc::new(Int32Array::from(svc))));
    cols.push((derived::ALLOWED, bools(allowed)));
    cols.push((derived::SRC_AWS_SERVICE, bools(src_service)));
    cols.push((derived::DST_AWS_SERVICE, bools(dst_service)));
    Ok((frame::frame(&cols)?, names))
}

/// The WAF columns the detectors read.
pub const WAF_COLUMNS: &[&str] = &[
    waf::col::ACCOUNT_ID,
    waf::col::REGION,
    waf::col::WEBACL_ID,
    waf::col::WEBACL_NAME,
    waf::col::CLIENT_IP,
    waf::col::COUNTRY,
    waf::col::URI,
    waf::col::HTTP_METHOD,
    waf::col::HOST,
    waf::col::USER_AGENT,
    waf::col::ACCEPT_LANGUAGE,
    waf::col::REFERER,
    waf::col::ACTION,
    waf::col::JA3_FINGERPRINT,
    waf::col::JA4_FINGERPRINT,
];

const VERIFIED_LABEL: &str = "awswaf:managed:aws:bot-control:bot:verified";

fn numeric_tail(uri: &str) -> bool {
    let last = uri.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    !last.is_empty() && last.len() <= 20 && last.bytes().all(|b| b.is_ascii_digit())
}

/// A WAF batch as a polars frame: [`WAF_COLUMNS`] plus the [`derived`] WAF columns.
///
/// # Errors
/// The batch does not have the canonical `waf` schema.
pub fn waf_frame(batch: &RecordBatch, allow: &Allow, cfg: &ScrapingConfig) -> Result<DataFrame> {
    let n = batch.num_rows();
    let ts = column(batch, waf::col::TIMESTAMP)?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| Error::Schema("`timestamp` is not a millisecond timestamp".into()))?;
    let ts: Int64Array = ts.unary::<_, Int64Type>(|ms| ms.div_euclid(1000));
    let ua = strs(batch, waf::col::USER_AGENT)?;
    let ip = strs(batch, waf::col::CLIENT_IP)?;
    let uri = strs(batch, waf::col::URI)?;
    let ja3 = strs(batch, waf::col::JA3_FINGERPRINT)?;
    let ja4 = strs(batch, waf::col::JA4_FINGERPRINT)?;
    let action = strs(batch, waf::col::ACTION)?;
    let labels = column(batch, waf::col::LABELS)?
        .as_list_opt::<i32>()
        .ok_or_else(|| Error::Schema("`labels` is not a list".into()))?;

    let agents: Vec<String> = cfg
        .automation_agents
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    let allowed_agents: Vec<String> = allow
        .user_agents
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    // User agents repeat heavily: classify each distinct one once per batch.
    let mut ua_cache: HashMap<u64, (bool, bool)> = HashMap::new();
    let mut automation = BooleanBuilder::with_capacity(n);
    let mut fp: Vec<Option<String>> = Vec::with_capacity(n);
    let mut allowed = BooleanBuilder::with_capacity(n);
    for i in 0..n {
        let agent = ua.is_valid(i).then(|| ua.value(i));
        let (auto, ua_allowed) = match agent {
            None => (false, false),
            Some(a) => *ua_cache.entry(hash64(a)).or_insert_with(|| {
                let lower = a.to_ascii_lowercase();
                (
                    agents.iter().any(|n| lower.contains(n.as_str())),
                    allowed_agents.iter().any(|n| lower.contains(n.as_str())),
                )
            }),
        };
        automation.append_value(auto || agent.is_none());
        let f = if ja4.is_valid(i) {
            Some(ja4.value(i).to_string())
        } else if ja3.is_valid(i) {
            Some(ja3.value(i).to_string())
        } else {
            Some(format!("ua:{:016x}", agent.map_or(0, hash64)))
        };
        let fp_allowed = f
            .as_deref()
            .is_some_and(|f| allow.fingerprints.iter().any(|a| a == f));
        let ip_allowed = ip.is_valid(i) && allow.cidrs.contains_str(ip.value(i));
        allowed.append_value(ua_allowed || fp_allowed || ip_allowed);
        fp.push(f);
    }
    let verified: BooleanArray = (0..n)
        .map(|i| Some(labels.is_valid(i) && list_has(labels, i, VERIFIED_LABEL)))
        .collect();
    let catalogue: BooleanArray = (0..n)
        .map(|i| {
            Some(
                uri.is_valid(i)
                    && cfg
                        .catalogue_paths
                        .iter()
                        .any(|p| uri.value(i).starts_with(p.as_str())),
            )
        })
        .collect();
    let numeric: BooleanArray = (0..n)
        .map(|i| Some(uri.is_valid(i) && numeric_tail(uri.value(i))))
        .collect();
    let blocked: BooleanArray = (0..n)
        .map(|i| {
            Some(action.is_valid(i) && matches!(action.value(i), "BLOCK" | "CAPTCHA" | "CHALLENGE"))
        })
        .collect();

    let mut cols: Vec<(&str, ArrayRef)> = Vec::with_capacity(WAF_COLUMNS.len() + 8);
    for name in WAF_COLUMNS {
        cols.push((name, column(batch, name)?.clone()));
    }
    cols.push((derived::TS, Arc::new(ts)));
    cols.push((derived::FINGERPRINT, Arc::new(StringViewArray::from(fp))));
    cols.push((derived::AUTOMATION, Arc::new(automation.finish())));
    cols.push((derived::VERIFIED_BOT, Arc::new(verified)));
    cols.push((derived::CATALOGUE, Arc::new(catalogue)));
    cols.push((derived::NUMERIC_TAIL, Arc::new(numeric)));
    cols.push((derived::BLOCKED, Arc::new(blocked)));
    cols.push((derived::ALLOWED, Arc::new(allowed.finish())));
    frame::frame(&cols)
}

fn list_has(list: &ListArray, i: usize, needle: &str) -> bool {
    let values = list.value(i);
    values
        .as_string_view_opt()
        .is_some_and(|v| (0..v.len()).any(|j| v.is_valid(j) && v.value(j) == needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_direction() {
        // SYN-ACK seen: responder.
        assert!(is_response(Some(6), Some(19), Some(443), Some(50000)));
        // SYN only: initiator, whatever the ports.
        assert!(!is_response(Some(6), Some(2), Some(22), Some(40000)));
        // No flags (v2): ports decide.
        assert!(is_response(Some(6), None, Some(8080), Some(40000)));
        assert!(!is_response(Some(6), None, Some(40000), Some(8080)));
        assert!(is_response(Some(17), None, Some(53), Some(5353)));
        assert!(!is_response(Some(6), None, Some(45000), Some(50000)));
        assert!(!is_response(Some(1), None, Some(0), Some(0)));
    }

    fn batch(lines: &[&str]) -> RecordBatch {
        const HEADER: &str = "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction tcp-flags";
        crate::testing::flows_batch(HEADER, lines)
    }

    fn ints(df: &DataFrame, name: &str) -> Vec<Option<i64>> {
        let c = df
            .column(name)
            .unwrap()
            .cast(&polars::prelude::DataType::Int64)
            .unwrap();
        c.i64().unwrap().iter().collect()
    }

    fn text(df: &DataFrame, names: &Names, name: &str) -> Vec<Option<String>> {
        let c = df.column(name).unwrap().u32().unwrap();
        c.iter()
            .map(|c| c.map(|c| names.get(c).to_string()))
            .collect()
    }

    #[test]
    fn derived_flow_columns() {
        use crate::net::Scope;
        let b = batch(&[
            // Through a NAT gateway: the packet-level source is the private host.
            "5 eni-a 100.64.100.100 8.8.8.8 10.0.0.1 - 40000 443 6 3 100 1 2 ACCEPT OK egress 2",
            // Same length and 4-byte prefix as row 0's srcaddr, different text.
            "5 eni-b 100.64.100.200 10.0.0.1 - - 443 40000 6 3 100 1 2 REJECT OK ingress 18",
            "5 - - - - - - - - - - 1 2 - NODATA - -",
            "5 eni-a 10.0.0.1 203.0.113.9 - - 50000 22 6 1 60 1 2 ACCEPT OK sideways 2",
        ]);
        let allow = Allow {
            cidrs: "203.0.113.0/24"
                .parse::<crate::net::Cidr>()
                .map(|c| crate::net::CidrSet(vec![c]))
                .unwrap(),
            ..Allow::default()
        };
        let b = [b];
        let (df, names) = flows_frame(&b, code(&b).unwrap(), &allow).unwrap();
        let s = |v: &[Option<&str>]| v.iter().map(|x| x.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(
            text(&df, &names, derived::SRC_ID),
            s(&[
                Some("100.64.100.100"),
                Some("100.64.100.200"),
                None,
                Some("10.0.0.1")
            ])
        );
        assert_eq!(
            text(&df, &names, derived::PSRC_ID),
            s(&[
                Some("10.0.0.1"),
                Some("100.64.100.200"),
                None,
                Some("10.0.0.1")
            ])
        );
        assert_eq!(
            text(&df, &names, derived::PDST_ID),
            s(&[Some("8.8.8.8"), Some("10.0.0.1"), None, Some("203.0.113.9")])
        );
        assert_eq!(
            text(&df, &names, derived::ENI_ID),
            s(&[Some("eni-a"), Some("eni-b"), None, Some("eni-a")])
        );
        let (private, public, unknown) = (
            Some(Scope::Private as i64),
            Some(Scope::Public as i64),
            Some(Scope::Unknown as i64),
        );
        assert_eq!(
            ints(&df, derived::SRC_SCOPE),
            [private, private, unknown, private]
        );
        assert_eq!(
            ints(&df, derived::PSRC_SCOPE),
            [private, private, unknown, private]
        );
        assert_eq!(
            ints(&df, derived::DST_SCOPE),
            [public, private, unknown, public]
        );
        assert_eq!(
            ints(&df, derived::ACCEPT),
            [Some(1), Some(0), Some(0), Some(1)]
        );
        assert_eq!(
            ints(&df, derived::REJECT),
            [Some(0), Some(1), Some(0), Some(0)]
        );
        assert_eq!(
            ints(&df, derived::DIRECTION),
            [
                Some(direction::EGRESS as i64),
                Some(direction::INGRESS as i64),
                Some(direction::UNKNOWN as i64),
                Some(direction::OTHER as i64)
            ]
        );
        assert_eq!(
            ints(&df, derived::RESPONSE),
            [Some(0), Some(1), Some(0), Some(0)]
        );
        assert_eq!(
            ints(&df, derived::SVC_PORT),
            [Some(443), Some(443), None, Some(22)]
        );
        assert_eq!(
            ints(&df, derived::ALLOWED),
            [Some(0), Some(0), Some(0), Some(1)]
        );
    }

    #[test]
    fn numeric_tails() {
        assert!(numeric_tail("/products/1234"));
        assert!(numeric_tail("/products/1234/"));
        assert!(!numeric_tail("/products/abc"));
        assert!(!numeric_tail("/"));
    }
}
