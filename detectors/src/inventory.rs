//! What the logs tell about the VPC: each interface's instance, subnet, VPC, AZ,
//! account and region, and each private address's interface and AZ. Learned from the
//! flows themselves (a mergeable union; conflicts resolve to the smallest value, so
//! every shard order learns the same map).

use std::collections::BTreeMap;

use arrow::array::{Array, StringViewArray};
use arrow::record_batch::RecordBatch;
use flowlens_model::finding::{Entity, EntityKind};
use flowlens_model::flows::col;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::names::NONE;
use crate::prepare::{self, fact, strs as view};
use crate::stats::{Merge, merge_map, min_opt};

fn get(a: &StringViewArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

/// Rows `i` and `j` hold the same value, judged by the views alone (an all-zero view
/// is a null or an empty string: the validity decides).
#[inline]
fn same_text(a: &StringViewArray, i: usize, j: usize) -> bool {
    let v = a.views();
    v[i] == v[j] && (v[i] != 0 || a.is_valid(i) == a.is_valid(j))
}

/// Every row holds the same value (no nulls, equal views: equal text within an array).
///
/// The views' 32-bit words' differences from the first view's are or-ed together a
/// block at a time ([`prepare::view_words`]): no branch per view.
fn constant(a: &StringViewArray) -> bool {
    let words = prepare::view_words(a);
    let Some(first) = words.first_chunk::<4>() else {
        return true;
    };
    a.null_count() == 0
        && words.chunks(1024).all(|block| {
            let diff = block.chunks_exact(4).fold([0u32; 4], |mut diff, view| {
                for k in 0..4 {
                    diff[k] |= view[k] ^ first[k];
                }
                diff
            });
            diff == [0; 4]
        })
}

/// Bit `i % 64` of word `i / 64` set where row `i` of every array of `fields` holds
/// what row `i - 1` holds (the same text, or null again: [`same_text`]). Row 0 is
/// never a repeat.
///
/// Tested a block of 64 rows at a time ([`prepare::bits_of`]): no branch per row.
fn repeats(fields: &[&StringViewArray], rows: usize) -> Vec<u64> {
    let mut bits = vec![0; rows.div_ceil(64)];
    for (b, out) in bits.iter_mut().enumerate() {
        let (from, to) = ((b * 64).max(1), rows.min(b * 64 + 64));
        if from >= to {
            continue;
        }
        let mut tests = [0u8; 64];
        let tests_in = &mut tests[from - b * 64..to - b * 64];
        tests_in.fill(1);
        for a in fields {
            let pairs = a.views()[from - 1..to].windows(2);
            match a.nulls() {
                // No nulls: equal views, the same text.
                None => {
                    for (t, w) in tests_in.iter_mut().zip(pairs) {
                        *t &= u8::from(w[1] == w[0]);
                    }
                }
                // `same_text`'s rule without its branch per row (instance ids have
                // nulls in v5 logs; calling it cost 20 M instructions more on the
                // six-hour set).
                Some(nulls) => {
                    for (i, (t, w)) in (from..).zip(tests_in.iter_mut().zip(pairs)) {
                        let valid = nulls.is_valid(i) == nulls.is_valid(i - 1);
                        *t &= u8::from((w[1] == w[0]) & ((w[1] != 0) | valid));
                    }
                }
            }
        }
        *out = prepare::bits_of(&tests);
    }
    bits
}

/// Instance, subnet, VPC, AZ, account and region of one interface, borrowed.
type Fields<'a> = [Option<&'a str>; 6];

/// Learns the fields of interface `e` from row `i` of batch `b` (`fields`, of which
/// `live` are not null throughout and `varying` not constant): a first record is
/// taken whole; a later one adds each field smaller than what the interface has, and
/// within one batch only the varying fields that differ from its last record.
#[inline(always)]
fn learn_fields<'a>(
    at: &mut [u32],
    metas: &mut Vec<(u32, Fields<'a>, (usize, usize))>,
    e: u32,
    fields: &[&'a StringViewArray; 6],
    (live, varying): (&[usize], &[usize]),
    (b, i): (usize, usize),
) {
    if at[e as usize] == UNSET {
        at[e as usize] = metas.len() as u32;
        metas.push((e, fields.map(|f| get(f, i)), (b, i)));
        return;
    }
    let (_, m, last) = &mut metas[at[e as usize] as usize];
    // A field with the same value as this interface's previous record adds nothing
    // (views compare within one batch only).
    let same_batch = last.0 == b;
    for &k in if same_batch { varying } else { live } {
        let f = fields[k];
        if same_batch && same_text(f, i, last.1) {
            continue;
        }
        if let Some(new) = get(f, i)
            && m[k].is_none_or(|h| new < h)
        {
            m[k] = Some(new);
        }
    }
    *last = (b, i);
}

/// Metadata of one network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EniMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl EniMeta {
    /// The six fields, in the order `Inventory::learn` reads them.
    fn fields_mut(&mut self) -> [&mut Option<String>; 6] {
        [
            &mut self.instance,
            &mut self.subnet,
            &mut self.vpc,
            &mut self.az,
            &mut self.account,
            &mut self.region,
        ]
    }
}

impl Merge for EniMeta {
    fn merge(&mut self, o: Self) {
        min_opt(&mut self.instance, o.instance);
        min_opt(&mut self.subnet, o.subnet);
        min_opt(&mut self.vpc, o.vpc);
        min_opt(&mut self.az, o.az);
        min_opt(&mut self.account, o.account);
        min_opt(&mut self.region, o.region);
    }
}

/// The interface that owns a private address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub eni: String,
}

impl Merge for Owner {
    fn merge(&mut self, o: Self) {
        if o.eni < self.eni {
            self.eni = o.eni;
        }
    }
}

/// An unset entry of [`Tables`].
const UNSET: u32 = u32::MAX;

/// Per-code tables of [`Inventory::learn`], kept from chunk to chunk: every entry is
/// unset between chunks (a chunk resets those it set).
#[derive(Debug, Default)]
pub struct Tables {
    /// Interface code → index of its entry in the chunk's list.
    at: Vec<u32>,
    /// Own address code → smallest interface code.
    owners: Vec<u32>,
    /// Codes set in `owners`.
    owned: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub enis: BTreeMap<String, EniMeta>,
    /// Own address of an interface (from records with `flow_direction`).
    pub owners: BTreeMap<String, Owner>,
}

impl Merge for Inventory {
    fn merge(&mut self, o: Self) {
        merge_map(&mut self.enis, o.enis);
        merge_map(&mut self.owners, o.owners);
    }
}

impl Inventory {
    /// Learns from one flows batch (canonical schema): [`Inventory::learn`] after
    /// preparing its rows.
    ///
    /// # Errors
    /// The batch lacks a column or has it with another type.
    pub fn learn_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let batches = [batch.clone()];
        let mut lex = prepare::FlowNames::new(crate::config::Allow::default());
        let rows = prepare::flow_rows(&batches, &mut lex)?;
        self.learn(&batches, &rows, &mut Tables::default())
            .map(|_| ())
    }

    /// Learns from one flows chunk (canonical schema) and its prepared rows
    /// ([`prepare::flow_rows`]), in a single pass, and returns what changed: the
    /// entries that are new or became smaller, as they now stand. `tables` are
    /// per-code tables kept from chunk to chunk (the run's codes are many; a chunk
    /// touches few of them).
    ///
    /// The registry keeps one inventory of everything learned in the run, calls this
    /// once per chunk and hands the change (nearly always empty) to every flow
    /// detector ([`crate::Detector::observe`]), which merges it into its own. Merging
    /// keeps the smallest value, so merging what changed equals merging all that was
    /// learned. Interfaces and addresses are codes: per row a few array lookups, and
    /// a view comparison per field with the interface's previous record of the same
    /// batch (equal views are equal strings; the decoders reuse a repeated value's
    /// view); only a differing value is compared as text.
    ///
    /// # Errors
    /// A batch lacks a column or has it with another type.
    pub fn learn(
        &mut self,
        batches: &[RecordBatch],
        rows: &prepare::FlowRows<'_>,
        tables: &mut Tables,
    ) -> Result<Inventory> {
        let names = rows.names();
        // Every batch's columns first: the tables are not touched before nothing
        // can fail.
        let columns = batches
            .iter()
            .map(|batch| {
                let fields = [
                    view(batch, col::INSTANCE_ID)?,
                    view(batch, col::SUBNET_ID)?,
                    view(batch, col::VPC_ID)?,
                    view(batch, col::AZ_ID)?,
                    view(batch, col::ACCOUNT_ID)?,
                    view(batch, col::REGION)?,
                ];
                Ok((fields, view(batch, col::INTERFACE_ID)?))
            })
            .collect::<Result<Vec<_>>>()?;
        // Per interface seen: its code, the smallest value of each field (as
        // `merge`), and the (batch, row) it last learned from; `at` indexes it by code.
        let mut metas: Vec<(u32, Fields<'_>, (usize, usize))> = Vec::new();
        let Tables { at, owners, owned } = tables;
        at.resize(at.len().max(names.len()), UNSET);
        // Per own address code: the smallest interface code (`owned` lists the
        // addresses set).
        owners.resize(owners.len().max(names.len()), UNSET);
        owned.clear();
        let mut row = 0;
        for (b, (batch, (fields, interfaces))) in batches.iter().zip(columns).enumerate() {
            // Fields null throughout the batch (absent from its log format) teach
            // nothing: only the others are compared row by row.
            let live: Vec<usize> = (0..fields.len())
                .filter(|&k| fields[k].null_count() < fields[k].len())
                .collect();
            // Fields with one value throughout the batch (account and region nearly
            // always, often the VPC) are learned from an interface's first record of
            // the batch; only the others are compared on its later records.
            let varying: Vec<usize> = live
                .iter()
                .copied()
                .filter(|&k| !constant(fields[k]))
                .collect();
            // A record of the row before's interface teaches nothing new where each
            // field that varies repeats the row before's (interfaces log runs of
            // records, and instance, subnet and AZ go with the interface).
            let mut varying_fields: Vec<&StringViewArray> =
                varying.iter().map(|&k| fields[k]).collect();
            let n = batch.num_rows();
            let directed = fact::EGRESS | fact::INGRESS | fact::OTHER_DIRECTION;
            if rows.facts[row..row + n].iter().fold(0, |any, f| any | f) & directed == 0 {
                // Without directions in the batch (default-format logs) a record
                // teaches only its interface's fields: only the rows where the
                // interface or a varying field differs from the row before's are
                // visited (a third of default-format records).
                let enis = &rows.eni[row..row + n];
                row += n;
                varying_fields.push(interfaces);
                let fields_k = (&live[..], &varying[..]);
                for (w, same) in repeats(&varying_fields, n).into_iter().enumerate() {
                    let rows_in = u64::MAX >> (64 - (n - w * 64).min(64));
                    for i in prepare::ones(!same & rows_in).map(|j| w * 64 + j) {
                        if enis[i] != NONE {
                            learn_fields(at, &mut metas, enis[i], &fields, fields_k, (b, i));
                        }
                    }
                }
                continue;
            }
            // `steady` marks the rows whose varying fields repeat the row before's;
            // None where no field varies, every row a repeat.
            let steady = (!varying.is_empty()).then(|| repeats(&varying_fields, n));
            let mut prev = NONE;
            for i in 0..n {
                let r = row;
                row += 1;
                let e = rows.eni[r];
                if e == NONE {
                    // The next row's interface is not the row before's.
                    prev = NONE;
                    continue;
                }
                if e == prev
                    && steady
                        .as_ref()
                        .is_none_or(|s| s[i / 64] & (1 << (i % 64)) != 0)
                {
                    // Only its own address, below. (The interface's last record
                    // stays the row before, whose varying fields are this row's.)
                } else {
                    learn_fields(at, &mut metas, e, &fields, (&live, &varying), (b, i));
                }
                prev = e;
                // The interface's own address: the source of its egress records, the
                // destination of its other directed ones (private addresses only).
                let f = rows.facts[r];
                let (o, private) = if f & fact::EGRESS != 0 {
                    (rows.src[r], fact::SRC_PRIVATE)
                } else if f & (fact::INGRESS | fact::OTHER_DIRECTION) != 0 {
                    (rows.dst[r], fact::DST_PRIVATE)
                } else {
                    continue;
                };
                if f & private == 0 {
                    continue;
                }
                let have = &mut owners[o as usize];
                if *have == UNSET {
                    owned.push(o);
                    *have = e;
                } else if *have != e && names.get(e) < names.get(*have) {
                    *have = e;
                }
            }
        }
        let mut changed = Inventory::default();
        for (e, m, _) in metas {
            at[e as usize] = UNSET;
            let e = names.get(e);
            if let Some(old) = self.enis.get_mut(e) {
                let mut any = false;
                for (have, new) in old.fields_mut().into_iter().zip(m) {
                    if let Some(new) = new
                        && have.as_deref().is_none_or(|h| new < h)
                    {
                        *have = Some(new.to_string());
                        any = true;
                    }
                }
                if any {
                    changed.enis.insert(e.to_string(), old.clone());
                }
                continue;
            }
            let [instance, subnet, vpc, az, account, region] = m.map(|v| v.map(str::to_string));
            let m = EniMeta {
                instance,
                subnet,
                vpc,
                az,
                account,
                region,
            };
            self.enis.insert(e.to_string(), m.clone());
            changed.enis.insert(e.to_string(), m);
        }
        for &ip in owned.iter() {
            let eni = std::mem::replace(&mut owners[ip as usize], UNSET);
            let (ip, eni) = (names.get(ip), names.get(eni));
            match self.owners.get_mut(ip) {
                Some(old) if old.eni.as_str() <= eni => {}
                Some(old) => {
                    old.eni = eni.to_string();
                    changed.owners.insert(ip.to_string(), old.clone());
                }
                None => {
                    let owner = Owner {
                        eni: eni.to_string(),
                    };
                    self.owners.insert(ip.to_string(), owner.clone());
                    changed.owners.insert(ip.to_string(), owner);
                }
            }
        }
        Ok(changed)
    }

    /// Merges what another inventory learned, without consuming it.
    pub fn absorb(&mut self, other: &Inventory) {
        for (k, v) in &other.enis {
            match self.enis.get_mut(k) {
                Some(old) if old == v => {}
                Some(old) => old.merge(v.clone()),
                None => {
                    self.enis.insert(k.clone(), v.clone());
                }
            }
        }
        for (k, v) in &other.owners {
            match self.owners.get_mut(k) {
                Some(old) => old.merge(v.clone()),
                None => {
                    self.owners.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// The interface owning a private address, if learned.
    pub fn eni_of(&self, ip: &str) -> Option<&str> {
        self.owners.get(ip).map(|o| o.eni.as_str())
    }

    /// The metadata of an address's interface.
    pub fn meta_of_ip(&self, ip: &str) -> Option<(&str, &EniMeta)> {
        let eni = self.eni_of(ip)?;
        self.enis.get(eni).map(|m| (eni, m))
    }

    /// The entities describing an interface (ENI, instance, subnet, VPC, AZ) as subjects.
    pub fn describe(&self, eni: &str, out: &mut Vec<Entity>, subject: bool) {
        let mk = |k, v: &str| {
            if subject {
                Entity::subject(k, v)
            } else {
                Entity::peer(k, v)
            }
        };
        out.push(mk(EntityKind::Eni, eni));
        if let Some(m) = self.enis.get(eni) {
            for (k, v) in [
                (EntityKind::Instance, &m.instance),
                (EntityKind::Subnet, &m.subnet),
                (EntityKind::Vpc, &m.vpc),
                (EntityKind::Az, &m.az),
            ] {
                if let Some(v) = v {
                    out.push(mk(k, v));
                }
            }
        }
    }

    /// Account and region of an interface.
    pub fn account_region(&self, eni: &str) -> (Option<String>, Option<String>) {
        self.enis
            .get(eni)
            .map_or((None, None), |m| (m.account.clone(), m.region.clone()))
    }

    /// A short label for an address: `10.0.11.20 (i-0123…)`.
    pub fn label(&self, ip: &str) -> String {
        match self.meta_of_ip(ip) {
            Some((_, m)) if m.instance.is_some() => {
                format!("{ip} ({})", m.instance.as_deref().unwrap_or_default())
            }
            Some((eni, _)) => format!("{ip} ({eni})"),
            None => ip.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction instance-id subnet-id vpc-id az-id region";

    fn batch(lines: &[&str]) -> RecordBatch {
        crate::testing::flows_batch(HEADER, lines)
    }

    fn learned(lines: &[&str]) -> Inventory {
        let mut inv = Inventory::default();
        inv.learn_batch(&batch(lines)).unwrap();
        inv
    }

    const ROWS: &[&str] = &[
        // Egress of eni-b: its own address is the source.
        "5 111 eni-b 10.0.1.5 203.0.113.9 40000 443 6 1 100 1 2 ACCEPT OK egress i-2 subnet-1 vpc-1 use1-az1 us-east-1",
        // Ingress of eni-b: its own address is the destination.
        "5 111 eni-b 198.51.100.7 10.0.1.5 50000 22 6 1 100 1 2 ACCEPT OK ingress i-2 subnet-1 vpc-1 use1-az1 us-east-1",
        // The same address claimed by a smaller interface: the smallest wins.
        "5 111 eni-a 10.0.1.5 10.0.2.6 40001 443 6 1 100 1 2 ACCEPT OK egress - subnet-0 vpc-1 use1-az2 us-east-1",
        // A later record of eni-a with the instance: fills the missing field.
        "5 111 eni-a 10.0.9.9 10.0.2.6 40002 443 6 1 100 1 2 ACCEPT OK - i-1 subnet-0 vpc-1 use1-az2 us-east-1",
        // Public own address: no owner. No direction: no owner.
        "5 111 eni-c 54.1.2.3 10.0.2.6 40003 443 6 1 100 1 2 ACCEPT OK egress i-3 subnet-2 vpc-1 use1-az3 us-east-1",
        // No interface: nothing learned.
        "5 111 - 10.0.7.7 10.0.2.6 40004 443 6 1 100 1 2 ACCEPT OK egress i-4 subnet-2 vpc-1 use1-az3 us-east-1",
    ];

    proptest::proptest! {
        // A row repeats the row before where every field holds its text again, or
        // is null again.
        #[test]
        fn repeats_are_rows_whose_fields_hold_the_row_befores_text(
            rows in proptest::collection::vec(
                proptest::collection::vec(0usize..5, 2),
                0..200,
            ),
            fields in 1usize..=2,
        ) {
            let texts = [None, Some(""), Some("i-1"), Some("subnet-0123456789abcdef0"), Some("subnet-0123456789abcdef1")];
            let arrays: Vec<StringViewArray> = (0..fields)
                .map(|k| {
                    let mut b = arrow::array::builder::StringViewBuilder::new()
                        .with_deduplicate_strings();
                    for row in &rows {
                        b.append_option(texts[row[k]]);
                    }
                    b.finish()
                })
                .collect();
            let refs: Vec<&StringViewArray> = arrays.iter().collect();
            let bits = repeats(&refs, rows.len());
            proptest::prop_assert_eq!(bits.len(), rows.len().div_ceil(64));
            for i in 0..rows.len() {
                let want = i > 0 && (0..fields).all(|k| texts[rows[i][k]] == texts[rows[i - 1][k]]);
                proptest::prop_assert_eq!(bits[i / 64] & (1 << (i % 64)) != 0, want, "row {}", i);
            }
        }

        // Learning a batch at once (runs of an interface's records skipped) equals
        // learning each of its records on its own and merging: with directions (every
        // row visited) and without (only the rows where the interface or a varying
        // field changes), with fields that vary and without.
        #[test]
        fn a_batch_teaches_what_its_records_teach_one_by_one(
            rows in proptest::collection::vec((0usize..3, 0usize..3, 0usize..3, 0usize..2), 1..200),
            directed in proptest::bool::ANY,
            varying in proptest::bool::ANY,
        ) {
            let enis = ["eni-0a", "eni-0b", "-"];
            let instances = ["-", "i-1", "i-0123456789abcdef0"];
            let subnets = ["subnet-1", "subnet-0123456789abcdef0", "-"];
            let lines: Vec<String> = rows
                .iter()
                .map(|&(e, i, s, dir)| {
                    format!(
                        "5 111 {} 10.0.1.{e} 10.0.2.6 40000 443 6 1 100 1 2 ACCEPT OK {} {} {} vpc-1 use1-az1 us-east-1",
                        enis[e],
                        if directed { ["egress", "ingress"][dir] } else { "-" },
                        if varying { instances[i] } else { "i-1" },
                        if varying { subnets[s] } else { "-" },
                    )
                })
                .collect();
            let all: Vec<&str> = lines.iter().map(String::as_str).collect();
            let mut one_by_one = Inventory::default();
            for line in &all {
                one_by_one.merge(learned(&[line]));
            }
            proptest::prop_assert_eq!(learned(&all), one_by_one);
        }
    }

    #[test]
    fn a_column_is_constant_when_every_view_is_the_first() {
        // Long values share a view only where the builder reuses it (as the decoders
        // do): built here with arrow's deduplicating builder.
        let array = |values: &[&str]| {
            let mut b = arrow::array::builder::StringViewBuilder::new().with_deduplicate_strings();
            values.iter().for_each(|v| b.append_value(v));
            b.finish()
        };
        let n = 3000;
        for value in ["123456789012", "123456789012-long-account"] {
            let same = array(&vec![value; n]);
            assert!(constant(&same));
            assert!(constant(&same.slice(17, 1000)));
            assert!(constant(&array(&[])));
            // One other value anywhere (in any block, any word of its view) is seen.
            for at in [0, 1, 255, 256, 1023, 1024, n - 1] {
                for other in [
                    "123456789013",
                    "923456789012",
                    "12345678901",
                    "x",
                    "123456789012-long-accounu",
                ] {
                    let mut values = vec![value; n];
                    values[at] = other;
                    let a = array(&values);
                    assert!(!constant(&a), "{at} {other}");
                    assert!(constant(&a.slice(at + 1, n - at - 1)), "{at}");
                }
            }
            let with_null = StringViewArray::from(vec![Some(value), None, Some(value)]);
            assert!(!constant(&with_null));
        }
    }

    #[test]
    fn learns_interfaces_and_private_owners_smallest_first() {
        let inv = learned(ROWS);
        assert_eq!(
            inv.enis.keys().collect::<Vec<_>>(),
            ["eni-a", "eni-b", "eni-c"]
        );
        let a = &inv.enis["eni-a"];
        assert_eq!(a.instance.as_deref(), Some("i-1"));
        assert_eq!(a.subnet.as_deref(), Some("subnet-0"));
        assert_eq!(a.az.as_deref(), Some("use1-az2"));
        assert_eq!(a.account.as_deref(), Some("111"));
        assert_eq!(inv.enis["eni-b"].instance.as_deref(), Some("i-2"));
        assert_eq!(inv.eni_of("10.0.1.5"), Some("eni-a"));
        assert_eq!(inv.eni_of("54.1.2.3"), None);
        assert_eq!(inv.eni_of("10.0.9.9"), None);
        assert_eq!(inv.eni_of("10.0.7.7"), None);
        assert_eq!(inv.owners.len(), 1);
    }

    #[test]
    fn learning_returns_only_what_changed() {
        let learn = |inv: &mut Inventory, lines: &[&str]| {
            let batches = [batch(lines)];
            let mut lex = prepare::FlowNames::new(crate::config::Allow::default());
            let rows = prepare::flow_rows(&batches, &mut lex).unwrap();
            inv.learn(&batches, &rows, &mut Tables::default()).unwrap()
        };
        let mut known = Inventory::default();
        // Everything is new at first: the change is all that was learned.
        assert_eq!(learn(&mut known, &ROWS[..3]), learned(&ROWS[..3]));
        // Again: nothing changes.
        assert_eq!(learn(&mut known, &ROWS[..3]), Inventory::default());
        // eni-a gains its instance; eni-c and its fields are new; eni-b is as known.
        let changed = learn(&mut known, ROWS);
        assert_eq!(changed.enis.keys().collect::<Vec<_>>(), ["eni-a", "eni-c"]);
        assert_eq!(changed.enis["eni-a"], learned(ROWS).enis["eni-a"]);
        assert!(changed.owners.is_empty());
        assert_eq!(known, learned(ROWS));
        // A smaller owner of a known address is a change, the larger one is not.
        let mut known = learned(&ROWS[..1]);
        assert_eq!(known.eni_of("10.0.1.5"), Some("eni-b"));
        let changed = learn(&mut known, &ROWS[2..3]);
        assert_eq!(changed.eni_of("10.0.1.5"), Some("eni-a"));
        assert!(learn(&mut known, &ROWS[..1]).owners.is_empty());
        // Merging each change into a detector's inventory equals learning it all.
        let mut detector = Inventory::default();
        let mut known = Inventory::default();
        for lines in [&ROWS[3..], &ROWS[..2], ROWS] {
            detector.absorb(&learn(&mut known, lines));
        }
        assert_eq!(detector, learned(ROWS));
    }

    #[test]
    fn a_field_constant_in_each_batch_is_learned_from_every_batch() {
        // One chunk of two batches; each batch has one account and one VPC throughout,
        // and the second's are smaller for the same interface.
        let batches = [
            batch(&[ROWS[0], ROWS[1]]),
            batch(&[&ROWS[0].replace(" 111 ", " 110 ").replace("vpc-1", "vpc-0")]),
        ];
        let mut lex = prepare::FlowNames::new(crate::config::Allow::default());
        let rows = prepare::flow_rows(&batches, &mut lex).unwrap();
        let mut inv = Inventory::default();
        inv.learn(&batches, &rows, &mut Tables::default()).unwrap();
        let b = &inv.enis["eni-b"];
        assert_eq!(b.account.as_deref(), Some("110"));
        assert_eq!(b.vpc.as_deref(), Some("vpc-0"));
        assert_eq!(b.instance.as_deref(), Some("i-2"));
    }

    #[test]
    fn order_and_batching_do_not_matter() {
        let whole = learned(ROWS);
        let mut reversed: Vec<&str> = ROWS.to_vec();
        reversed.reverse();
        assert_eq!(learned(&reversed), whole);
        let mut split = learned(&ROWS[3..]);
        split.absorb(&learned(&ROWS[..3]));
        assert_eq!(split, whole);
        let mut merged = learned(&ROWS[..2]);
        merged.merge(learned(&ROWS[2..]));
        assert_eq!(merged, whole);
    }
}
