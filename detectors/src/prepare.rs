//! Batches → polars frames with the derived columns every detector shares.
//!
//! One owner for these derived column names ([`derived`]); the source columns keep
//! their schema names (`flowlens_model::flows::col`, `flowlens_model::waf::col`).
//! Derivations that polars has no kernel for (address scope, CIDR allowlists, TCP
//! direction) are computed here once per batch, in one pass per column.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Array, Int64Array, ListArray,
    StringViewArray,
};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use flowlens_model::{flows, waf};
use polars::prelude::DataFrame;

use crate::config::{Allow, ScrapingConfig};
use crate::net::{Scope, scope_of};
use crate::stats::hash64;
use crate::{Error, Result, frame};

/// Names of the derived columns.
pub mod derived {
    /// Scope ([`crate::net::Scope`] as Int32) of `srcaddr` / `dstaddr`.
    pub const SRC_SCOPE: &str = "src_scope";
    pub const DST_SCOPE: &str = "dst_scope";
    /// Scope of the packet-level addresses (`pkt_*`, else the plain ones).
    pub const PSRC_SCOPE: &str = "psrc_scope";
    pub const PDST_SCOPE: &str = "pdst_scope";
    /// The record is the responder's direction of a connection (SYN-ACK seen, or
    /// service port → ephemeral port).
    pub const RESPONSE: &str = "response";
    /// The service port of the connection (`dstport`, or `srcport` for a response).
    pub const SVC_PORT: &str = "svc_port";
    /// Matched by the global allowlist.
    pub const ALLOWED: &str = "allowed";
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

/// The flow columns the detectors read.
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

/// The scope of each address of `a`. `base` is the plain address column beside a
/// packet-level one, with its scopes: a null takes the base's scope, and so does the
/// same text. Equal views are equal text within one array (the decoders reuse a
/// repeated value's view), and across arrays when the text is inline (at most 12
/// bytes), so a repeat of the previous row or of the base is not parsed again.
fn scopes(a: &StringViewArray, base: Option<(&StringViewArray, &Int32Array)>) -> Int32Array {
    let views = a.views();
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        let s = if a.is_null(i) {
            base.map_or(Scope::Unknown as i32, |(_, s)| s.value(i))
        } else if let Some((b, bs)) = base
            && b.is_valid(i)
            && b.views()[i] == views[i]
            && views[i] as u32 <= 12
        {
            bs.value(i)
        } else if i > 0 && views[i] == views[i - 1] && views[i] != 0 && a.is_valid(i - 1) {
            out[i - 1]
        } else {
            scope_of(a.value(i)) as i32
        };
        out.push(s);
    }
    Int32Array::from(out)
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

/// A flows batch as a polars frame: [`FLOW_COLUMNS`] plus the [`derived`] columns.
///
/// # Errors
/// The batch does not have the canonical `flows` schema.
pub fn flows_frame(batch: &RecordBatch, allow: &Allow) -> Result<DataFrame> {
    let src = strs(batch, flows::col::SRCADDR)?;
    let dst = strs(batch, flows::col::DSTADDR)?;
    let psrc = strs(batch, flows::col::PKT_SRCADDR)?;
    let pdst = strs(batch, flows::col::PKT_DSTADDR)?;
    let eni = strs(batch, flows::col::INTERFACE_ID)?;
    let sport = i32s(batch, flows::col::SRCPORT)?;
    let dport = i32s(batch, flows::col::DSTPORT)?;
    let proto = i32s(batch, flows::col::PROTOCOL)?;
    let flags = i32s(batch, flows::col::TCP_FLAGS)?;

    let src_scope = scopes(src, None);
    let dst_scope = scopes(dst, None);
    let psrc_scope = scopes(psrc, Some((src, &src_scope)));
    let pdst_scope = scopes(pdst, Some((dst, &dst_scope)));
    let n = batch.num_rows();
    let mut response = BooleanBuilder::with_capacity(n);
    let mut svc = Vec::with_capacity(n);
    for i in 0..n {
        let r = is_response(
            proto.is_valid(i).then(|| proto.value(i)),
            flags.is_valid(i).then(|| flags.value(i)),
            sport.is_valid(i).then(|| sport.value(i)),
            dport.is_valid(i).then(|| dport.value(i)),
        );
        response.append_value(r);
        let p = if r { sport } else { dport };
        svc.push(p.is_valid(i).then(|| p.value(i)));
    }
    let svc = Int32Array::from(svc);
    let allowed: BooleanArray = (0..n)
        .map(|i| {
            let addr_hit =
                |a: &StringViewArray| a.is_valid(i) && allow.cidrs.contains_str(a.value(i));
            let hit = (!allow.cidrs.is_empty()
                && (addr_hit(src) || addr_hit(dst) || addr_hit(psrc) || addr_hit(pdst)))
                || (!allow.enis.is_empty()
                    && eni.is_valid(i)
                    && allow.enis.iter().any(|e| e == eni.value(i)))
                || (!allow.ports.is_empty()
                    && svc.is_valid(i)
                    && allow.ports.contains(&(svc.value(i) as u16)));
            Some(hit)
        })
        .collect();

    let mut cols: Vec<(&str, ArrayRef)> = Vec::with_capacity(FLOW_COLUMNS.len() + 7);
    for name in FLOW_COLUMNS {
        cols.push((name, column(batch, name)?.clone()));
    }
    cols.push((derived::SRC_SCOPE, Arc::new(src_scope)));
    cols.push((derived::DST_SCOPE, Arc::new(dst_scope)));
    cols.push((derived::PSRC_SCOPE, Arc::new(psrc_scope)));
    cols.push((derived::PDST_SCOPE, Arc::new(pdst_scope)));
    cols.push((derived::RESPONSE, Arc::new(response.finish())));
    cols.push((derived::SVC_PORT, Arc::new(svc)));
    cols.push((derived::ALLOWED, Arc::new(allowed)));
    frame::frame(&cols)
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

    #[test]
    fn scopes_reuse_only_what_is_the_same_text() {
        // Both long (not inline), same length and 4-byte prefix, each at offset 0 of
        // its own array's buffer: equal views, different text and scope.
        let src = StringViewArray::from(vec![
            Some("100.64.100.100"),
            Some("100.64.100.100"),
            Some("10.0.0.1"),
            None,
            Some("8.8.8.8"),
        ]);
        let psrc = StringViewArray::from(vec![
            Some("100.200.100.10"),
            None,
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("8.8.8.8"),
        ]);
        assert_eq!(src.views()[0], psrc.views()[0]);
        let base = scopes(&src, None);
        let (private, public, unknown) = (
            Scope::Private as i32,
            Scope::Public as i32,
            Scope::Unknown as i32,
        );
        assert_eq!(
            base.values().to_vec(),
            [private, private, private, unknown, public]
        );
        let pkt = scopes(&psrc, Some((&src, &base)));
        assert_eq!(
            pkt.values().to_vec(),
            [public, private, private, private, public]
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
