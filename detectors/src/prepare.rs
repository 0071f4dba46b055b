//! Decoded batches → what the detectors read, with the derivations they share.
//!
//! Flows: a chunk of batches becomes [`FlowRows`] — addresses and interfaces as
//! integer codes ([`Names`]), judged once per distinct value (scope, allowlists), and
//! per-row facts (accepted, responder, short probe, ...) as bits, derived once for all
//! four flow detectors. WAF: each batch becomes a polars frame with the [`derived`]
//! columns (one owner for their names; source columns keep their schema names,
//! `flowlens_model::waf::col`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Array, Int64Array, ListArray,
    StringViewArray,
};
use arrow::datatypes::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use flowlens_model::{flows, waf};
use polars::prelude::DataFrame;

use crate::config::{Allow, ScrapingConfig};
use crate::flat::{FlatKey, FlatMap, mix};
use crate::names::{NONE, Names};
use crate::net::{Scope, scope_of};
use crate::ports::PortSet;
use crate::stats::hash64;
use crate::{Error, Result, frame};

/// Names of the derived columns of a WAF frame ([`waf_frame`]).
pub mod derived {
    /// Event time in unix seconds.
    pub const TS: &str = "ts";
    /// The client fingerprint (JA4, else JA3, else `ua:<hash>`).
    pub const FINGERPRINT: &str = "fingerprint";
    /// The user agent is an automation tool.
    pub const AUTOMATION: &str = "automation";
    /// Bot Control labelled the client a verified bot.
    pub const VERIFIED_BOT: &str = "verified_bot";
    /// The URI is a catalogue or search path.
    pub const CATALOGUE: &str = "catalogue";
    /// The URI's last segment is a number (enumerable ids).
    pub const NUMERIC_TAIL: &str = "numeric_tail";
    /// The request was blocked, challenged or sent a CAPTCHA.
    pub const BLOCKED: &str = "blocked";
    /// Matched by the global allowlist (client address or user agent).
    pub const ALLOWED: &str = "allowed";
}

/// The event times (unix seconds) the detectors place in windows: from 1970 to about
/// the year 36,800. A record outside (a damaged or hostile value: the decoders take
/// any 64-bit number) is in no window, as one without a time: window arithmetic on
/// it would overflow.
pub const TIMES: std::ops::Range<i64> = 0..1 << 40;

/// Values of [`FlowRows::direction`].
pub mod direction {
    /// The log has no `flow-direction` field (or the record no value).
    pub const UNKNOWN: i32 = 0;
    pub const INGRESS: i32 = 1;
    pub const EGRESS: i32 = 2;
    /// A value AWS does not write.
    pub const OTHER: i32 = 3;
}

/// The flow columns the detectors read (the registry keeps only these of each batch):
/// the inventory's ([`Inventory::learn`]) and those of [`FlowRows`].
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

/// The views of `a` as 32-bit words, four per row, as its buffer holds them: loops
/// comparing them word by word run on vector instructions, where a 128-bit compare is
/// two scalar ones.
pub(crate) fn view_words(a: &StringViewArray) -> &[u32] {
    a.views().inner().typed_data()
}

/// The 32-bit words of `view` in the order [`view_words`] gives them (on any byte
/// order).
pub(crate) fn words_of(view: u128) -> [u32; 4] {
    let b = view.to_ne_bytes();
    std::array::from_fn(|k| u32::from_ne_bytes(b[4 * k..4 * k + 4].try_into().expect("4 bytes")))
}

fn i32s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int32Array> {
    column(batch, name)?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| Error::Schema(format!("`{name}` is not Int32")))
}

fn i64s<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    column(batch, name)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| Error::Schema(format!("`{name}` is not Int64")))
}

/// An Int32 value that is null: [`with_nulls_as`] writes it in place of a null, and no
/// port, protocol or flag value is negative.
const NULL32: i32 = i32::MIN;

/// The values of `a` with `null` in place of each null: the array's own buffer when
/// it has none (the usual case), so the facts loop reads plain slices.
fn with_nulls_as<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &arrow::array::PrimitiveArray<T>,
    null: T::Native,
) -> Cow<'_, [T::Native]> {
    match a.nulls() {
        None => Cow::Borrowed(a.values()),
        Some(n) => Cow::Owned(
            a.values()
                .iter()
                .zip(n.iter())
                .map(|(v, ok)| if ok { *v } else { null })
                .collect(),
        ),
    }
}

/// The values of `a` for a loop over plain slices: its own buffer, unless it is null
/// throughout (a field the log format lacks: `null` everywhere). Where only some rows
/// are null (NODATA records, which have no ports, protocol or counts), the buffer
/// holds arbitrary values there, and the rows are listed in `fix` for the caller to
/// judge again with [`value_or`].
fn values_or<'a, T: arrow::datatypes::ArrowPrimitiveType>(
    a: &'a arrow::array::PrimitiveArray<T>,
    null: T::Native,
    fix: &mut Vec<usize>,
) -> Cow<'a, [T::Native]> {
    match a.nulls() {
        None => Cow::Borrowed(a.values()),
        Some(n) if n.null_count() == n.len() => Cow::Owned(vec![null; a.len()]),
        Some(n) => {
            fix.extend((0..n.len()).filter(|&i| n.is_null(i)));
            Cow::Borrowed(a.values())
        }
    }
}

/// Row `i` of `a`, or `null`.
#[inline]
fn value_or<T: arrow::datatypes::ArrowPrimitiveType>(
    a: &arrow::array::PrimitiveArray<T>,
    i: usize,
    null: T::Native,
) -> T::Native {
    if a.is_valid(i) { a.value(i) } else { null }
}

/// The facts of a record derived from its protocol, TCP flags, ports and packets
/// ([`fact::RESPONSE`], [`fact::TCP_OR_UDP`], [`fact::SHORT`]) and its service port
/// ([`NULL32`]: none); a null Int32 is [`NULL32`], a null packet count `i64::MAX`.
///
/// Without a branch, so that the loop over a batch's rows runs on vector
/// instructions.
#[inline(always)]
fn record_facts(p: i32, f: i32, sp: i32, dp: i32, pk: i64) -> (u32, i32) {
    let r = is_response(p, f, sp, dp);
    let bit = |yes: bool, f: u32| u32::from(yes) * f;
    (
        bit(r, fact::RESPONSE)
            | bit((p == 6) | (p == 17), fact::TCP_OR_UDP)
            | bit((f == 2) | (pk <= 2), fact::SHORT),
        if r { sp } else { dp },
    )
}

/// The TCP responder heuristic, per record; a null value is [`NULL32`]. (A null's
/// bits are neither SYN nor ACK, and it is no port.)
#[inline(always)]
fn is_response(protocol: i32, flags: i32, sport: i32, dport: i32) -> bool {
    // AWS logs SYN (2), SYN-ACK (18), FIN (1), RST (4): ACK only as part of SYN-ACK.
    // A TCP SYN-ACK is a response, a TCP SYN without the ACK is not; anything else is
    // judged by its ports (service port → ephemeral port).
    let tcp = protocol == 6;
    let syn_ack = tcp & (flags & 0x12 == 0x12);
    let syn = tcp & (flags & 0x02 != 0);
    let by_ports = (sport > 0)
        & (dport > 0)
        & (((sport <= 1024) & (dport > 1024)) | ((sport < 32768) & (dport >= 32768)));
    syn_ack | (!syn & by_ports)
}

/// Sets `bit` in `facts[i]` for every row `i` where `a` is valid.
fn set_where_valid(facts: &mut [u32], a: &dyn Array, bit: u32) {
    match a.logical_nulls() {
        None => facts.iter_mut().for_each(|f| *f |= bit),
        Some(n) if n.null_count() == n.len() => {}
        Some(n) => n.valid_indices().for_each(|i| facts[i] |= bit),
    }
}

/// Bits of [`FlowRows::facts`]: what each record is, judged once per chunk.
pub mod fact {
    /// `action` is ACCEPT.
    pub const ACCEPT: u32 = 1 << 0;
    /// `action` is REJECT.
    pub const REJECT: u32 = 1 << 1;
    /// The record is the responder's direction of a connection (SYN-ACK seen, or
    /// service port → ephemeral port).
    pub const RESPONSE: u32 = 1 << 2;
    /// Matched by the global allowlist (an address, the interface or the service port).
    pub const ALLOWED: u32 = 1 << 3;
    /// `pkt_src_aws_service` / `pkt_dst_aws_service` is set (an AWS service's range).
    pub const SRC_AWS_SERVICE: u32 = 1 << 4;
    pub const DST_AWS_SERVICE: u32 = 1 << 5;
    /// The protocol is TCP (6) or UDP (17).
    pub const TCP_OR_UDP: u32 = 1 << 6;
    /// A probe rather than a session: SYN only (`tcp_flags` 2) or at most 2 packets.
    pub const SHORT: u32 = 1 << 7;
    /// `start` is null, or outside [`TIMES`](super::TIMES): the record is in no
    /// window.
    pub const NO_START: u32 = 1 << 8;
    /// Scope of `srcaddr`, `dstaddr` and the packet-level addresses (neither bit:
    /// missing or not an address). Each pair is [`Scope`] (1 private, 2 public)
    /// shifted to its place.
    ///
    /// [`Scope`]: crate::net::Scope
    pub const SRC_PRIVATE: u32 = 1 << 9;
    pub const SRC_PUBLIC: u32 = 1 << 10;
    pub const DST_PRIVATE: u32 = 1 << 11;
    pub const DST_PUBLIC: u32 = 1 << 12;
    pub const PSRC_PRIVATE: u32 = 1 << 13;
    pub const PSRC_PUBLIC: u32 = 1 << 14;
    pub const PDST_PRIVATE: u32 = 1 << 15;
    pub const PDST_PUBLIC: u32 = 1 << 16;
    /// `flow_direction` (none of the three: the log has no such field, or the
    /// record no value).
    pub const INGRESS: u32 = 1 << 17;
    pub const EGRESS: u32 = 1 << 18;
    /// A value AWS does not write.
    pub const OTHER_DIRECTION: u32 = 1 << 19;
}

/// The run's addresses and interfaces as codes ([`Names`]), with what is judged once
/// per distinct name: its [`Scope`] and whether the global allowlist names it. The
/// registry keeps one for the whole run and [`flow_rows`] codes each chunk with it.
#[derive(Debug)]
pub struct FlowNames {
    names: Names,
    allow: Allow,
    /// By code, for the codes judged so far.
    scope: Vec<Scope>,
    /// By code: the address is in an allowed CIDR / the interface is allowed (empty
    /// when the allowlist has none).
    cidr_hit: Vec<bool>,
    eni_hit: Vec<bool>,
    /// The allowed service ports as a set (none when the allowlist has none).
    allowed_ports: Option<PortSet>,
}

impl FlowNames {
    /// Distinct names past which the registry starts the codes over
    /// ([`FlowNames::start_over`]): about 50 MB with what each detector keeps per
    /// code. Interfaces and the addresses of a VPC and its usual peers are far fewer;
    /// a run that meets more (months of internet scanners) re-learns the codes of the
    /// ones it meets again.
    pub const MAX: usize = 1 << 20;

    /// Empty, judging names against `allow` (the global allowlist).
    pub fn new(allow: Allow) -> Self {
        FlowNames {
            names: Names::default(),
            allowed_ports: (!allow.ports.is_empty()).then(|| PortSet::new(&allow.ports)),
            allow,
            scope: Vec::new(),
            cidr_hit: Vec::new(),
            eni_hit: Vec::new(),
        }
    }

    /// The names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The names, to intern texts a detector restores ([`crate::Detector::restore`]).
    /// Their scopes are judged with the next chunk's.
    pub fn names_mut(&mut self) -> &mut Names {
        &mut self.names
    }

    /// Starts the codes over (a new [`Names::epoch`]), handing back the names so far:
    /// a detector that keeps codes across chunks re-keys them
    /// ([`crate::Detector::rename`]).
    pub fn start_over(&mut self) -> Names {
        self.scope.clear();
        self.cidr_hit.clear();
        self.eni_hit.clear();
        std::mem::take(&mut self.names)
    }

    /// The scope of a code's name ([`Scope::Unknown`] for [`NONE`]), as judged by
    /// [`FlowNames::judge_new`]. (Rows carry it as [`fact`] bits.)
    #[inline]
    fn scope(&self, code: u32) -> Scope {
        self.scope
            .get(code as usize)
            .copied()
            .unwrap_or(Scope::Unknown)
    }

    /// Judges the names interned since the last call.
    fn judge_new(&mut self) {
        let new = self.scope.len()..self.names.len();
        let texts = || new.clone().map(|c| self.names.get(c as u32));
        self.scope.extend(texts().map(scope_of));
        if !self.allow.cidrs.is_empty() {
            self.cidr_hit
                .extend(texts().map(|s| self.allow.cidrs.contains_str(s)));
        }
        if !self.allow.enis.is_empty() {
            self.eni_hit
                .extend(texts().map(|s| self.allow.enis.iter().any(|e| e == s)));
        }
    }
}

/// A flows chunk as the flow detectors read it: one entry per row in every column,
/// across the chunk's batches; addresses and interfaces as codes ([`FlowNames`]), with
/// what every detector filters and groups on derived once per row.
///
/// The detectors aggregate these columns with [`FlowRows::aggregate`].
#[derive(Debug)]
pub struct FlowRows<'a> {
    /// The run's names, which the code columns index.
    lex: &'a FlowNames,
    /// Codes of `srcaddr`, `dstaddr` and `interface_id` ([`NONE`] for a null).
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub eni: Vec<u32>,
    /// Codes of the packet-level addresses (`pkt_*`, else the plain ones), read
    /// through [`FlowRows::psrc`] and [`FlowRows::pdst`]: empty where the chunk has
    /// none (default-format logs), whose codes are then `src` and `dst`.
    psrc: Vec<u32>,
    pdst: Vec<u32>,
    /// `start` (unix seconds) where [`fact::NO_START`] is clear (read through
    /// [`FlowRows::start`]); the batch's own buffer when the chunk is one batch.
    start: Cow<'a, [i64]>,
    /// `bytes` (0 for a null); the batch's own buffer when the chunk is one batch
    /// without nulls.
    pub bytes: Cow<'a, [i64]>,
    /// The service port of the connection (`dstport`, or `srcport` for a response;
    /// [`NULL32`]: none), read through [`FlowRows::svc_port`].
    svc: Vec<i32>,
    /// [`fact`] bits.
    pub facts: Vec<u32>,
}

impl<'a> FlowRows<'a> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }

    /// The text of a code column's value ([`NONE`]: none).
    pub fn name(&self, code: u32) -> Option<&'a str> {
        (code != NONE).then(|| self.lex.names.get(code))
    }

    /// The run's names (codes of every chunk of this epoch).
    pub fn names(&self) -> &'a Names {
        &self.lex.names
    }

    /// Row `i` has every bit of `all` and none of `none` ([`fact`]).
    #[inline]
    pub fn is(&self, i: usize, all: u32, none: u32) -> bool {
        self.facts[i] & (all | none) == all
    }

    /// `flow_direction` of row `i` ([`direction`]).
    pub fn direction(&self, i: usize) -> i32 {
        let f = self.facts[i];
        if f & fact::INGRESS != 0 {
            direction::INGRESS
        } else if f & fact::EGRESS != 0 {
            direction::EGRESS
        } else if f & fact::OTHER_DIRECTION != 0 {
            direction::OTHER
        } else {
            direction::UNKNOWN
        }
    }

    /// The rows that have every [`fact`] bit of `all` and none of `none`, in row order.
    ///
    /// The facts are tested 64 rows at a time on vector instructions ([`Kept`]), and
    /// only the rows kept are visited (which rows a detector keeps follows no pattern a
    /// processor could predict): 34 instructions per default-format record fewer, for
    /// the four flow detectors, than the scalar test of a block of rows before
    /// (`detectors/bench/README.md`, session 27).
    pub fn kept(&self, all: u32, none: u32) -> Kept<'_> {
        Kept {
            facts: &self.facts,
            all,
            mask: all | none,
            next: 0,
            base: 0,
            bits: 0,
        }
    }

    /// Groups the rows that have every [`fact`] bit of `all` and none of `none` by
    /// `key` (rows without one are left out too) and folds each group with `add`: the
    /// flow detectors' group-by — a `FlatMap` keyed by a few integers (window,
    /// codes, port; each key beside its sums in one slot), over the rows
    /// [`FlowRows::kept`] keeps. The groups come in slot order: a consumer merges them.
    ///
    /// It replaced a polars lazy query per detector (filter, group-by on four to six
    /// keys, sums), whose kernels cost several times the work itself: polars
    /// row-encodes multi-column keys and materialises every filter. Measured in
    /// `detectors/bench/README.md`.
    pub fn aggregate<K, V>(
        &self,
        all: u32,
        none: u32,
        mut key: impl FnMut(usize) -> Option<K>,
        mut add: impl FnMut(&mut V, usize),
    ) -> FlatMap<K, V>
    where
        K: FlatKey,
        V: Copy + Default,
    {
        // Room for a group per 128 rows before the table grows (a detector that
        // keeps few rows clears a small table per chunk).
        let mut groups = FlatMap::with_capacity(self.len() / 128);
        for i in self.kept(all, none) {
            if let Some(k) = key(i) {
                add(groups.entry_or_default(k), i);
            }
        }
        groups
    }

    /// The code of row `i`'s packet-level source address (`pkt_srcaddr`, else
    /// `srcaddr`).
    #[inline]
    pub fn psrc(&self, i: usize) -> u32 {
        packet_level(&self.psrc, &self.src, i)
    }

    /// The code of row `i`'s packet-level destination address (`pkt_dstaddr`, else
    /// `dstaddr`).
    #[inline]
    pub fn pdst(&self, i: usize) -> u32 {
        packet_level(&self.pdst, &self.dst, i)
    }

    /// The service port of row `i`'s connection (`dstport`, or `srcport` for a
    /// response), if it has one.
    #[inline]
    pub fn svc_port(&self, i: usize) -> Option<i32> {
        let port = self.svc[i];
        (port != NULL32).then_some(port)
    }

    /// `start` of row `i` (unix seconds; none where [`fact::NO_START`] is set).
    #[inline]
    pub fn start(&self, i: usize) -> Option<i64> {
        (self.facts[i] & fact::NO_START == 0).then(|| self.start[i])
    }
}

/// Row `i` of a packet-level code column, or of its interface-level one where the
/// chunk has none (empty).
#[inline]
fn packet_level(pkt: &[u32], plain: &[u32], i: usize) -> u32 {
    if pkt.is_empty() { plain[i] } else { pkt[i] }
}

/// The hash of a group key of [`FlowRows::aggregate`]: a window start, two codes and
/// up to 64 more bits (a port, a code).
#[inline]
fn group_hash(window: i64, a: u32, b: u32, rest: u64) -> u64 {
    mix(u64::from(a) << 32 | u64::from(b)) ^ mix(window as u64 ^ rest.rotate_left(40))
}

/// (window start, source, destination, port): no window starts before 1970
/// ([`TIMES`]), so the empty key is no group's.
impl FlatKey for (i64, u32, u32, i32) {
    const EMPTY: Self = (i64::MIN, NONE, NONE, i32::MIN);

    #[inline]
    fn hash(self) -> u64 {
        group_hash(self.0, self.1, self.2, u64::from(self.3 as u32))
    }

    #[inline(always)]
    fn same(self, o: Self) -> bool {
        (self.0 == o.0) & (self.1 == o.1) & (self.2 == o.2) & (self.3 == o.3)
    }
}

/// (window start, two codes, port, code), as above.
impl FlatKey for (i64, u32, u32, i32, u32) {
    const EMPTY: Self = (i64::MIN, NONE, NONE, i32::MIN, NONE);

    #[inline]
    fn hash(self) -> u64 {
        group_hash(
            self.0,
            self.1,
            self.2,
            u64::from(self.3 as u32) | u64::from(self.4) << 32,
        )
    }

    #[inline(always)]
    fn same(self, o: Self) -> bool {
        (self.0 == o.0) & (self.1 == o.1) & (self.2 == o.2) & (self.3 == o.3) & (self.4 == o.4)
    }
}

/// The rows of a [`FlowRows`] with and without given facts ([`FlowRows::kept`]).
///
/// The facts are tested 64 rows at a time into a word of bits, without a branch per
/// row (the compiler turns the test into vector compares), and only the kept rows'
/// bits are visited.
pub struct Kept<'r> {
    facts: &'r [u32],
    all: u32,
    mask: u32,
    /// First row of the next word to test.
    next: usize,
    /// First row of the current word, and its kept rows not handed out yet as bits.
    base: usize,
    bits: u64,
}

/// Bit `j` set where `block[j]` (at most 64 rows) has every bit of `all` under `mask`.
///
/// The tests first as 64 bytes of 0 or 1 (a loop the compiler turns into vector
/// compares), then each eight of them gathered into a byte by one multiplication: byte
/// `i` of the word lands on bit `56 + i` of the product, and no two partial products
/// meet, so nothing carries into the top byte.
#[inline]
fn kept_bits(block: &[u32], mask: u32, all: u32) -> u64 {
    let mut tests = [0u8; 64];
    for (t, &f) in tests.iter_mut().zip(block) {
        *t = u8::from(f & mask == all);
    }
    bits_of(&tests)
}

/// Bit `j` set where `tests[j]` is 1 (every test is 0 or 1): each eight of them
/// gathered into a byte by one multiplication (see [`kept_bits`]).
#[inline]
pub(crate) fn bits_of(tests: &[u8; 64]) -> u64 {
    tests
        .chunks_exact(8)
        .enumerate()
        .fold(0, |bits, (k, eight)| {
            let word = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
            bits | ((word.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k))
        })
}

/// The positions of the set bits of `bits`, lowest first: the rows of a block of 64 that
/// [`bits_of`] marked, each found by counting trailing zeros.
#[inline]
pub(crate) fn ones(mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let j = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            j
        })
    })
}

impl Kept<'_> {
    /// Tests the next words until one keeps a row; false at the end of the rows.
    #[inline(never)]
    fn refill(&mut self) -> bool {
        while self.bits == 0 {
            let from = self.next;
            if from >= self.facts.len() {
                return false;
            }
            let to = self.facts.len().min(from + 64);
            (self.base, self.next) = (from, to);
            self.bits = kept_bits(&self.facts[from..to], self.mask, self.all);
        }
        true
    }
}

impl Iterator for Kept<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.bits == 0 && !self.refill() {
            return None;
        }
        let row = self.base + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(row)
    }
}

/// Start of the `secs`-second window of each time of a run of them (unix seconds):
/// the window of the time before is reused while the next falls in it (rows come
/// nearly in time order), which saves a division per row.
#[derive(Debug, Clone, Copy)]
pub struct WindowOf {
    secs: i64,
    /// The last window start handed out.
    last: Option<i64>,
}

impl WindowOf {
    /// Windows of `secs` seconds (more than 0), aligned to the epoch.
    pub fn new(secs: i64) -> Self {
        WindowOf { secs, last: None }
    }

    /// Start of the window holding `t` (saturating at `i64::MIN`: no time of
    /// [`TIMES`] comes near).
    #[inline]
    pub fn of(&mut self, t: i64) -> i64 {
        match self.last {
            Some(lo)
                if t.checked_sub(lo)
                    .is_some_and(|d| (0..self.secs).contains(&d)) =>
            {
                lo
            }
            _ => {
                let lo = t.saturating_sub(t.rem_euclid(self.secs));
                self.last = Some(lo);
                lo
            }
        }
    }
}

/// A flows chunk's rows ([`FlowRows`]) from its batches (canonical schema): addresses
/// and interfaces interned into the run's `lex`, the per-row facts derived, each new
/// distinct name judged once.
///
/// # Errors
/// A batch does not have the canonical `flows` schema.
pub fn flow_rows<'a>(batches: &'a [RecordBatch], lex: &'a mut FlowNames) -> Result<FlowRows<'a>> {
    let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let names = &mut lex.names;
    // No batch has packet-level addresses (their columns null throughout): their
    // codes are the interface-level ones, and are not copied.
    let mut pkt_copied = true;
    for batch in batches {
        for c in [flows::col::PKT_SRCADDR, flows::col::PKT_DSTADDR] {
            let a = strs(batch, c)?;
            pkt_copied &= a.null_count() == a.len();
        }
    }
    let pkt_rows = if pkt_copied { 0 } else { n };
    let [mut src, mut dst, mut eni] = std::array::from_fn(|_| Vec::with_capacity(n));
    let [mut psrc, mut pdst] = std::array::from_fn(|_| Vec::with_capacity(pkt_rows));
    let (ingress, egress) = (make_view(b"ingress", 0, 0), make_view(b"egress", 0, 0));
    let mut facts: Vec<u32> = Vec::with_capacity(n);
    let mut svc: Vec<i32> = Vec::with_capacity(n);
    let mut start: Vec<Cow<'a, [i64]>> = Vec::with_capacity(batches.len());
    let mut bytes: Vec<Cow<'a, [i64]>> = Vec::with_capacity(batches.len());
    // ACCEPT and REJECT are inline views (equal views, equal text), compared as words.
    let [accept, reject] = [b"ACCEPT", b"REJECT"].map(|a| words_of(make_view(a, 0, 0)));
    // The rows of a batch to judge again for nulls.
    let mut fix = Vec::new();
    for batch in batches {
        let first = src.len();
        let (s, d) = (
            strs(batch, flows::col::SRCADDR)?,
            strs(batch, flows::col::DSTADDR)?,
        );
        names.append_codes(s, &mut src);
        names.append_codes(d, &mut dst);
        if !pkt_copied {
            // A null packet-level address is the interface-level one.
            let (ps, pd) = (
                strs(batch, flows::col::PKT_SRCADDR)?,
                strs(batch, flows::col::PKT_DSTADDR)?,
            );
            names.append_codes_or(ps, s, &src[first..], &mut psrc);
            names.append_codes_or(pd, d, &dst[first..], &mut pdst);
        }
        names.append_codes(strs(batch, flows::col::INTERFACE_ID)?, &mut eni);
        // Facts, column by column over plain slices; the rows where some of these
        // columns are null are judged again below, with nulls as sentinels.
        let columns = (
            i32s(batch, flows::col::SRCPORT)?,
            i32s(batch, flows::col::DSTPORT)?,
            i32s(batch, flows::col::PROTOCOL)?,
            i32s(batch, flows::col::TCP_FLAGS)?,
            i64s(batch, flows::col::PACKETS)?,
        );
        fix.clear();
        let sport = values_or(columns.0, NULL32, &mut fix);
        let dport = values_or(columns.1, NULL32, &mut fix);
        let proto = values_or(columns.2, NULL32, &mut fix);
        let flags = values_or(columns.3, NULL32, &mut fix);
        let packets = values_or(columns.4, i64::MAX, &mut fix);
        let rows = batch.num_rows();
        // Written in place over zipped slices: no bounds or capacity checks per row.
        facts.resize(first + rows, 0);
        svc.resize(first + rows, NULL32);
        let inputs = proto.iter().zip(&*flags).zip(&*sport).zip(&*dport);
        let outputs = facts[first..].iter_mut().zip(&mut svc[first..]);
        for ((((&p, &f), &sp), &dp), (&pk, (fact_out, svc_out))) in
            inputs.zip(packets.iter().zip(outputs))
        {
            (*fact_out, *svc_out) = record_facts(p, f, sp, dp, pk);
        }
        // A NODATA record is null in several of these columns: judged once.
        fix.sort_unstable();
        fix.dedup();
        for &i in &fix {
            let (sp, dp, p, f) = (
                value_or(columns.0, i, NULL32),
                value_or(columns.1, i, NULL32),
                value_or(columns.2, i, NULL32),
                value_or(columns.3, i, NULL32),
            );
            let pk = value_or(columns.4, i, i64::MAX);
            (facts[first + i], svc[first + i]) = record_facts(p, f, sp, dp, pk);
        }
        let batch_facts = &mut facts[first..];
        // Compared word by word, without a branch.
        let action = strs(batch, flows::col::ACTION)?;
        let action_bits = |w: &[u32]| {
            let is = |x: [u32; 4]| (0..4).fold(true, |same, k| same & (w[k] == x[k]));
            (u32::from(is(accept)) * fact::ACCEPT) | (u32::from(is(reject)) * fact::REJECT)
        };
        let view_words = view_words(action);
        match action.nulls() {
            None => batch_facts
                .iter_mut()
                .zip(view_words.chunks_exact(4))
                .for_each(|(f, w)| *f |= action_bits(w)),
            Some(n) => n
                .valid_indices()
                .for_each(|i| batch_facts[i] |= action_bits(&view_words[4 * i..4 * i + 4])),
        }
        set_where_valid(
            batch_facts,
            strs(batch, flows::col::PKT_SRC_AWS_SERVICE)?,
            fact::SRC_AWS_SERVICE,
        );
        set_where_valid(
            batch_facts,
            strs(batch, flows::col::PKT_DST_AWS_SERVICE)?,
            fact::DST_AWS_SERVICE,
        );
        let dir = strs(batch, flows::col::FLOW_DIRECTION)?;
        if dir.null_count() < rows {
            for (i, (f, v)) in batch_facts.iter_mut().zip(dir.views()).enumerate() {
                *f |= match *v {
                    _ if dir.is_null(i) => 0,
                    v if v == ingress => fact::INGRESS,
                    v if v == egress => fact::EGRESS,
                    _ => fact::OTHER_DIRECTION,
                };
            }
        }
        let s = i64s(batch, flows::col::START)?;
        if let Some(n) = s.nulls() {
            for (f, ok) in batch_facts.iter_mut().zip(n.iter()) {
                if !ok {
                    *f |= fact::NO_START;
                }
            }
        }
        for (f, t) in batch_facts.iter_mut().zip(s.values().iter()) {
            if !TIMES.contains(t) {
                *f |= fact::NO_START;
            }
        }
        start.push(Cow::Borrowed(s.values()));
        bytes.push(with_nulls_as(i64s(batch, flows::col::BYTES)?, 0));
    }
    // One batch (the usual chunk): its buffers as they are; else one copy.
    let joined = |mut parts: Vec<Cow<'a, [i64]>>| match parts.len() {
        1 => parts.remove(0),
        _ => Cow::Owned(parts.concat()),
    };
    let (start, bytes) = (joined(start), joined(bytes));

    // Scope and allowlists: judged once per distinct name of the run, then per row
    // by code.
    lex.judge_new();
    // Each column's pair of scope bits is the Scope (1 private, 2 public) times its
    // private bit.
    const _: () = assert!(Scope::Private as u32 == 1 && Scope::Public as u32 == 2);
    let scope = |code: u32| lex.scope(code) as u32;
    if pkt_copied {
        // No packet-level addresses (default-format logs): their codes, and so their
        // scope bits, are the interface-level ones', shifted to their place.
        const PKT: u32 = fact::PSRC_PRIVATE.trailing_zeros() - fact::SRC_PRIVATE.trailing_zeros();
        const _: () = assert!(
            fact::PDST_PRIVATE == fact::DST_PRIVATE << PKT
                && fact::PSRC_PUBLIC == fact::SRC_PUBLIC << PKT
                && fact::PDST_PUBLIC == fact::DST_PUBLIC << PKT
        );
        for (f, (&s, &d)) in facts.iter_mut().zip(src.iter().zip(&dst)) {
            let x = (scope(s) * fact::SRC_PRIVATE) | (scope(d) * fact::DST_PRIVATE);
            *f |= x | (x << PKT);
        }
    } else {
        let codes = src.iter().zip(&dst).zip(psrc.iter().zip(&pdst));
        for (f, ((&s, &d), (&ps, &pd))) in facts.iter_mut().zip(codes) {
            *f |= (scope(s) * fact::SRC_PRIVATE)
                | (scope(d) * fact::DST_PRIVATE)
                | (scope(ps) * fact::PSRC_PRIVATE)
                | (scope(pd) * fact::PDST_PRIVATE);
        }
    }
    let (cidr_hit, eni_hit, ports) = (&lex.cidr_hit, &lex.eni_hit, &lex.allowed_ports);
    if !(cidr_hit.is_empty() && eni_hit.is_empty() && ports.is_none()) {
        let hit = |codes: &[u32], table: &[bool], i: usize| {
            !table.is_empty() && codes[i] != NONE && table[codes[i] as usize]
        };
        let (ps, pd) = if pkt_copied {
            (&src, &dst)
        } else {
            (&psrc, &pdst)
        };
        for (i, f) in facts.iter_mut().enumerate() {
            let allowed = hit(&src, cidr_hit, i)
                || hit(&dst, cidr_hit, i)
                || hit(ps, cidr_hit, i)
                || hit(pd, cidr_hit, i)
                || hit(&eni, eni_hit, i)
                || ports
                    .as_ref()
                    .is_some_and(|p| svc[i] != NULL32 && p.contains(svc[i]));
            if allowed {
                *f |= fact::ALLOWED;
            }
        }
    }
    Ok(FlowRows {
        lex,
        src,
        dst,
        psrc,
        pdst,
        eni,
        start,
        bytes,
        svc,
        facts,
    })
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
    // Null outside `TIMES`, as a record without a time (the detector skips both).
    let ts: Int64Array = ts.unary_opt::<_, Int64Type>(|ms| {
        let secs = ms.div_euclid(1000);
        TIMES.contains(&secs).then_some(secs)
    });
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
    use proptest::prelude::{Just, any};

    use super::*;

    /// Every row's service port.
    fn svc_ports(rows: &FlowRows<'_>) -> Vec<Option<i32>> {
        (0..rows.len()).map(|i| rows.svc_port(i)).collect()
    }

    /// The responder heuristic as first written, with branches: the branch-free one
    /// must agree with it.
    fn is_response_reference(protocol: i32, flags: i32, sport: i32, dport: i32) -> bool {
        if protocol == 6 {
            if flags & 0x12 == 0x12 {
                return true;
            }
            if flags & 0x02 != 0 {
                return false;
            }
        }
        sport > 0
            && dport > 0
            && ((sport <= 1024 && dport > 1024) || (sport < 32768 && dport >= 32768))
    }

    proptest::proptest! {
        #[test]
        fn responder_direction_without_branches(
            protocol in proptest::prop_oneof![Just(6), Just(17), Just(1), Just(NULL32), any::<i32>()],
            flags in proptest::prop_oneof![0..64i32, Just(NULL32), any::<i32>()],
            sport in proptest::prop_oneof![-2..70000i32, Just(NULL32)],
            dport in proptest::prop_oneof![-2..70000i32, Just(NULL32)],
        ) {
            proptest::prop_assert_eq!(
                is_response(protocol, flags, sport, dport),
                is_response_reference(protocol, flags, sport, dport)
            );
        }
    }

    #[test]
    fn responder_direction() {
        // SYN-ACK seen: responder.
        assert!(is_response(6, 19, 443, 50000));
        // SYN only: initiator, whatever the ports.
        assert!(!is_response(6, 2, 22, 40000));
        // No flags (v2): ports decide.
        assert!(is_response(6, NULL32, 8080, 40000));
        assert!(!is_response(6, NULL32, 40000, 8080));
        assert!(is_response(17, NULL32, 53, 5353));
        assert!(!is_response(6, NULL32, 45000, 50000));
        assert!(!is_response(1, NULL32, 0, 0));
        // No ports (ICMP, NODATA): never.
        assert!(!is_response(6, NULL32, NULL32, 40000));
        // No protocol: ports decide.
        assert!(is_response(NULL32, NULL32, 8080, 40000));
    }

    /// Start of the `secs`-second window of row `i` of `rows` (none without a start).
    fn window(rows: &FlowRows<'_>, i: usize, secs: i64) -> Option<i64> {
        rows.start(i).map(|s| WindowOf::new(secs).of(s))
    }

    fn batch(lines: &[&str]) -> RecordBatch {
        const HEADER: &str = "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction tcp-flags";
        crate::testing::flows_batch(HEADER, lines)
    }

    #[test]
    fn allowed_service_ports_mark_their_rows() {
        let b = [batch(&[
            "5 eni-a 10.0.0.1 10.0.0.2 - - 40000 443 6 3 100 1 2 ACCEPT OK egress 2",
            // The response: its service port is its source port, 443.
            "5 eni-a 10.0.0.2 10.0.0.1 - - 443 40000 6 3 100 1 2 ACCEPT OK ingress 18",
            "5 eni-a 10.0.0.1 10.0.0.2 - - 40001 22 6 3 100 1 2 ACCEPT OK egress 2",
            // No destination port: no service port, although port 0 is allowed.
            "5 eni-a 10.0.0.1 10.0.0.2 - - 40002 - 6 3 100 1 2 ACCEPT OK egress 2",
        ])];
        let allow = Allow {
            ports: vec![443, 0],
            ..Allow::default()
        };
        let mut lex = FlowNames::new(allow);
        let rows = flow_rows(&b, &mut lex).unwrap();
        let allowed: Vec<bool> = (0..rows.len())
            .map(|i| rows.is(i, fact::ALLOWED, 0))
            .collect();
        assert_eq!(allowed, [true, true, false, false]);
    }

    #[test]
    fn flow_rows_derive_what_the_detectors_read() {
        let b = batch(&[
            // Through a NAT gateway: the packet-level source is the private host.
            "5 eni-a 100.64.100.100 8.8.8.8 10.0.0.1 - 40000 443 6 3 100 1 2 ACCEPT OK egress 2",
            // Same length and 4-byte prefix as row 0's srcaddr, different text.
            "5 eni-b 100.64.100.200 10.0.0.1 - - 443 40000 6 3 100 1 2 REJECT OK ingress 18",
            "5 - - - - - - - - - - - - - NODATA - -",
            "5 eni-a 10.0.0.1 203.0.113.9 - - 50000 22 17 9 60 301 302 ACCEPT OK sideways -",
        ]);
        let allow = Allow {
            cidrs: "203.0.113.0/24"
                .parse::<crate::net::Cidr>()
                .map(|c| crate::net::CidrSet(vec![c]))
                .unwrap(),
            ..Allow::default()
        };
        let b = [b];
        let mut lex = FlowNames::new(allow.clone());
        let rows = flow_rows(&b, &mut lex).unwrap();
        assert_eq!(rows.len(), 4);
        let text = |codes: &[u32]| codes.iter().map(|c| rows.name(*c)).collect::<Vec<_>>();
        assert_eq!(
            text(&rows.src),
            [
                Some("100.64.100.100"),
                Some("100.64.100.200"),
                None,
                Some("10.0.0.1")
            ]
        );
        assert_eq!(
            text(&rows.psrc),
            [
                Some("10.0.0.1"),
                Some("100.64.100.200"),
                None,
                Some("10.0.0.1")
            ]
        );
        assert_eq!(
            text(&rows.pdst),
            [Some("8.8.8.8"), Some("10.0.0.1"), None, Some("203.0.113.9")]
        );
        assert_eq!(
            text(&rows.eni),
            [Some("eni-a"), Some("eni-b"), None, Some("eni-a")]
        );
        // One code per text across columns.
        assert_eq!(rows.psrc[0], rows.dst[1]);
        use Scope::{Private, Public, Unknown};
        let scopes = |codes: &[u32]| codes.iter().map(|c| rows.lex.scope(*c)).collect::<Vec<_>>();
        assert_eq!(scopes(&rows.src), [Private, Private, Unknown, Private]);
        assert_eq!(scopes(&rows.psrc), [Private, Private, Unknown, Private]);
        assert_eq!(scopes(&rows.dst), [Public, Private, Unknown, Public]);
        assert_eq!(scopes(&rows.pdst), [Public, Private, Unknown, Public]);
        assert_eq!(
            (0..rows.len())
                .map(|i| rows.direction(i))
                .collect::<Vec<_>>(),
            [
                direction::EGRESS,
                direction::INGRESS,
                direction::UNKNOWN,
                direction::OTHER
            ]
        );
        let starts: Vec<_> = (0..rows.len()).map(|i| window(&rows, i, 1)).collect();
        assert_eq!(starts, [Some(1), Some(1), None, Some(301)]);
        assert_eq!(window(&rows, 3, 300), Some(300));
        assert_eq!(window(&rows, 2, 300), None);
        assert_eq!(*rows.bytes, [100, 100, 0, 60]);
        // Row 1 answers (SYN-ACK): its service port is its source port.
        assert_eq!(svc_ports(&rows), [Some(443), Some(443), None, Some(22)]);
        use fact::*;
        assert_eq!(
            rows.facts,
            [
                ACCEPT
                    | TCP_OR_UDP
                    | SHORT
                    | EGRESS
                    | SRC_PRIVATE
                    | DST_PUBLIC
                    | PSRC_PRIVATE
                    | PDST_PUBLIC,
                REJECT
                    | RESPONSE
                    | TCP_OR_UDP
                    | INGRESS
                    | SRC_PRIVATE
                    | DST_PRIVATE
                    | PSRC_PRIVATE
                    | PDST_PRIVATE,
                NO_START,
                // 203.0.113.9 is allowlisted; 9 packets, no flags: not short.
                ACCEPT
                    | TCP_OR_UDP
                    | ALLOWED
                    | OTHER_DIRECTION
                    | SRC_PRIVATE
                    | DST_PUBLIC
                    | PSRC_PRIVATE
                    | PDST_PUBLIC
            ]
        );
        assert!(rows.is(0, ACCEPT | SHORT, REJECT));
        assert!(!rows.is(0, ACCEPT, SHORT));

        // The same rows in two batches (copied columns rather than the batch's own)
        // read the same.
        let two = [b[0].slice(0, 2), b[0].slice(2, 2)];
        let mut lex2 = FlowNames::new(allow.clone());
        let split = flow_rows(&two, &mut lex2).unwrap();
        let windows =
            |r: &FlowRows<'_>| (0..r.len()).map(|i| window(r, i, 300)).collect::<Vec<_>>();
        assert_eq!(windows(&split), windows(&rows));
        assert_eq!(split.bytes, rows.bytes);
        assert_eq!(split.facts, rows.facts);
        let split_text = split
            .psrc
            .iter()
            .map(|c| split.name(*c))
            .collect::<Vec<_>>();
        assert_eq!(split_text, text(&rows.psrc));

        // The next chunk coded with the same names: the same codes, judged as before,
        // and a new name judged too.
        let (codes, facts) = (rows.psrc.clone(), rows.facts.clone());
        let (epoch, known) = (lex.names().epoch(), lex.names().len());
        let next = [batch(&[
            "5 eni-a 100.64.100.100 8.8.8.8 10.0.0.1 - 40000 443 6 3 100 1 2 ACCEPT OK egress 2",
            "5 eni-b 100.64.100.200 10.0.0.1 - - 443 40000 6 3 100 1 2 REJECT OK ingress 18",
            "5 - - - - - - - - - - - - - NODATA - -",
            "5 eni-a 10.0.0.1 203.0.113.9 - - 50000 22 17 9 60 301 302 ACCEPT OK sideways -",
            "5 eni-c 203.0.113.77 10.0.0.1 - - 50000 22 17 9 60 301 302 ACCEPT OK ingress -",
        ])];
        let again = flow_rows(&next, &mut lex).unwrap();
        assert_eq!(again.psrc[..4], codes);
        assert_eq!(again.facts[..4], facts);
        assert_eq!(
            again.facts[4],
            ACCEPT
                | TCP_OR_UDP
                | ALLOWED
                | INGRESS
                | SRC_PUBLIC
                | DST_PRIVATE
                | PSRC_PUBLIC
                | PDST_PRIVATE
        );
        assert_eq!(again.lex.scope(again.src[4]), Public);
        assert_eq!(again.names().epoch(), epoch);
        assert_eq!(again.names().len(), known + 2);
        let again_facts = again.facts.clone();
        // Started over: the names so far handed back, the codes anew under a new epoch.
        let old = lex.start_over();
        assert_eq!((old.epoch(), old.len()), (epoch, known + 2));
        assert_ne!(lex.names().epoch(), epoch);
        assert!(lex.names().is_empty());
        let fresh = flow_rows(&next, &mut lex).unwrap();
        assert_eq!(fresh.psrc[..4], codes);
        assert_eq!(fresh.facts, again_facts);
        assert_eq!(fresh.lex.scope(fresh.src[4]), Public);
    }

    #[test]
    fn default_format_rows_read_as_with_packet_level_columns() {
        // v2 logs have no packet-level addresses, and NODATA records no ports,
        // protocol or counts: the same rows with the packet-level addresses written
        // out, and with every null in its own column, read the same.
        let v2 = crate::testing::flows_batch(
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
            &[
                "2 123456789012 eni-a 10.0.0.1 203.0.113.9 40000 443 6 1 60 10 11 ACCEPT OK",
                "2 123456789012 eni-a 203.0.113.9 10.0.0.1 443 40000 6 9 60 10 11 ACCEPT OK",
                "2 123456789012 eni-a - - - - - - - 10 11 - NODATA",
                "2 123456789012 eni-a 10.0.0.1 - 40000 - 6 - 60 10 11 REJECT OK",
                "2 123456789012 eni-a 198.51.100.7 10.0.0.1 53 53 17 2 - 10 11 ACCEPT OK",
            ],
        );
        let v5 = batch(&[
            "5 eni-a 10.0.0.1 203.0.113.9 10.0.0.1 203.0.113.9 40000 443 6 1 60 10 11 ACCEPT OK - -",
            "5 eni-a 203.0.113.9 10.0.0.1 203.0.113.9 10.0.0.1 443 40000 6 9 60 10 11 ACCEPT OK - -",
            "5 eni-a - - - - - - - - - 10 11 - NODATA - -",
            "5 eni-a 10.0.0.1 - 10.0.0.1 - 40000 - 6 - 60 10 11 REJECT OK - -",
            "5 eni-a 198.51.100.7 10.0.0.1 198.51.100.7 10.0.0.1 53 53 17 2 - 10 11 ACCEPT OK - -",
        ]);
        let (v2, v5) = ([v2], [v5]);
        let (mut a, mut b) = (
            FlowNames::new(Allow::default()),
            FlowNames::new(Allow::default()),
        );
        let (r2, r5) = (
            flow_rows(&v2, &mut a).unwrap(),
            flow_rows(&v5, &mut b).unwrap(),
        );
        assert_eq!(r2.facts, r5.facts);
        // The packet-level codes are the interface-level ones, not copied; a chunk
        // with both kinds of batches has them all.
        fn pkt_text(r: &FlowRows<'_>) -> Vec<(Option<String>, Option<String>)> {
            let text = |c: u32| r.name(c).map(str::to_string);
            (0..r.len())
                .map(|i| (text(r.psrc(i)), text(r.pdst(i))))
                .collect()
        }
        assert!(r2.psrc.is_empty() && r2.pdst.is_empty());
        assert_eq!(pkt_text(&r2), pkt_text(&r5));
        let both = [v2[0].clone(), v5[0].clone()];
        let mut c = FlowNames::new(Allow::default());
        let rb = flow_rows(&both, &mut c).unwrap();
        assert_eq!(rb.psrc.len(), 10);
        assert_eq!(pkt_text(&rb), [pkt_text(&r2), pkt_text(&r5)].concat());
        assert_eq!(rb.facts, [r2.facts.clone(), r5.facts.clone()].concat());
        assert_eq!(svc_ports(&r2), svc_ports(&r5));
        assert_eq!(svc_ports(&r2), [Some(443), Some(443), None, None, Some(53)]);
        use fact::*;
        // One packet, no flags: short. NODATA: no fact. A null destination port: no
        // service port, and the null packet count is not short.
        assert_eq!(
            r2.facts[0],
            ACCEPT | TCP_OR_UDP | SHORT | SRC_PRIVATE | DST_PUBLIC | PSRC_PRIVATE | PDST_PUBLIC
        );
        assert_eq!(r2.facts[2], 0);
        assert_eq!(
            r2.facts[3],
            REJECT | TCP_OR_UDP | SRC_PRIVATE | PSRC_PRIVATE
        );
    }

    proptest::proptest! {
        // The kept rows are those a row-by-row test keeps, across blocks.
        #[test]
        fn kept_rows_are_the_rows_with_the_facts(
            facts in proptest::collection::vec(0u32..16, 0..3000),
            all in 0u32..4,
            none in 0u32..4,
        ) {
            let none = none << 2;
            let rows = FlowRows {
                lex: &FlowNames::new(Allow::default()),
                src: vec![NONE; facts.len()],
                dst: Vec::new(),
                psrc: Vec::new(),
                pdst: Vec::new(),
                eni: Vec::new(),
                start: Cow::Owned(Vec::new()),
                bytes: Cow::Owned(Vec::new()),
                svc: Vec::new(),
                facts: facts.clone(),
            };
            let want: Vec<usize> = (0..facts.len())
                .filter(|&i| facts[i] & all == all && facts[i] & none == 0)
                .collect();
            proptest::prop_assert_eq!(rows.kept(all, none).collect::<Vec<_>>(), want);
        }

        // The set bits of a word, lowest first.
        #[test]
        fn ones_are_the_set_bits(bits in proptest::num::u64::ANY) {
            let want: Vec<usize> = (0..64).filter(|j| bits & (1 << j) != 0).collect();
            proptest::prop_assert_eq!(ones(bits).collect::<Vec<_>>(), want);
        }

        // Window starts reused from one time to the next are those computed afresh.
        #[test]
        fn window_starts_follow_the_times(
            times in proptest::collection::vec(-2000i64..2000, 0..200),
            secs in 1i64..700,
        ) {
            let mut w = WindowOf::new(secs);
            for t in times {
                proptest::prop_assert_eq!(w.of(t), t - t.rem_euclid(secs));
            }
        }
    }

    proptest::proptest! {
        /// The group keys' branch-free comparison is their equality, field by field
        /// (small ranges, so that keys often share some fields and not others).
        #[test]
        fn group_keys_are_the_same_when_equal(
            a in (0i64..3, 0u32..3, 0u32..3, 0i32..3, 0u32..3),
            b in (0i64..3, 0u32..3, 0u32..3, 0i32..3, 0u32..3),
        ) {
            proptest::prop_assert_eq!(a.same(b), a == b);
            let (a4, b4) = ((a.0, a.1, a.2, a.3), (b.0, b.1, b.2, b.3));
            proptest::prop_assert_eq!(a4.same(b4), a4 == b4);
        }
    }

    #[test]
    fn aggregate_groups_the_kept_rows() {
        let b = [batch(&[
            "5 eni-a 10.0.0.1 10.0.0.2 - - 40000 22 6 1 60 10 11 REJECT OK egress 2",
            "5 eni-a 10.0.0.1 10.0.0.2 - - 40001 22 6 1 60 20 21 REJECT OK egress 2",
            "5 eni-a 10.0.0.1 10.0.0.3 - - 40002 22 6 1 60 30 31 ACCEPT OK egress 2",
            "5 eni-a 10.0.0.1 10.0.0.2 - - 40003 22 6 1 60 400 401 REJECT OK egress 2",
        ])];
        let mut lex = FlowNames::new(Allow::default());
        let rows = flow_rows(&b, &mut lex).unwrap();
        let groups = rows.aggregate(
            fact::REJECT,
            0,
            |i| Some((window(&rows, i, 300)?, rows.dst[i], NONE, 22)),
            |n: &mut u32, _| *n += 1,
        );
        let mut got: Vec<_> = groups
            .into_iter()
            .map(|((w, d, _, _), n)| (w, rows.name(d), n))
            .collect();
        got.sort();
        assert_eq!(got, [(0, Some("10.0.0.2"), 2), (300, Some("10.0.0.2"), 1)]);
    }

    #[test]
    fn aggregate_keeps_the_right_rows_across_blocks() {
        // More rows than one block of the facts test, the kept ones spread over all.
        let lines: Vec<String> = (0..2500)
            .map(|i| {
                let action = if i % 3 == 0 { "REJECT" } else { "ACCEPT" };
                format!(
                    "5 eni-a 10.0.0.1 10.0.1.{} - - {} 22 6 1 60 {i} {i} {action} OK egress 2",
                    i % 2,
                    40000 + i
                )
            })
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let b = [batch(&lines)];
        let mut lex = FlowNames::new(Allow::default());
        let rows = flow_rows(&b, &mut lex).unwrap();
        let groups = rows.aggregate(
            fact::REJECT,
            fact::ACCEPT,
            |i| Some((0, rows.dst[i], NONE, 0)),
            |acc: &mut (u32, i64), i| {
                acc.0 += 1;
                acc.1 += window(&rows, i, 1).unwrap();
            },
        );
        let mut got: Vec<_> = groups
            .into_iter()
            .map(|((_, d, _, _), a)| (rows.name(d), a))
            .collect();
        got.sort();
        // Rows 0, 3, 6, ...: the even ones to 10.0.1.0, the odd ones to 10.0.1.1.
        let sum = |parity: i64| (0..2500).filter(|i| i % 3 == 0 && i % 2 == parity).sum();
        let count = |parity: i64| (0..2500).filter(|i| i % 3 == 0 && i % 2 == parity).count();
        assert_eq!(
            got,
            [
                (Some("10.0.1.0"), (count(0) as u32, sum(0))),
                (Some("10.0.1.1"), (count(1) as u32, sum(1)))
            ]
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
