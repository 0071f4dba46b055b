//! What the logs tell about the VPC: each interface's instance, subnet, VPC, AZ,
//! account and region, and each private address's interface and AZ. Learned from the
//! flows themselves (a mergeable union; conflicts resolve to the smallest value, so
//! every shard order learns the same map).

use std::collections::BTreeMap;

use arrow::array::builder::make_view;
use arrow::array::{Array, StringViewArray};
use arrow::record_batch::RecordBatch;
use flowlens_model::finding::{Entity, EntityKind};
use flowlens_model::flows::col;
use polars::prelude::PlHashMap;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::net::{Scope, scope_of};
use crate::prepare::strs as view;
use crate::stats::{Merge, merge_map, min_opt};

fn get(a: &StringViewArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

/// Row `i` (> 0) holds the same value as row `i - 1`, judged by the views alone (an
/// all-zero view is a null or an empty string: the validity decides).
#[inline]
fn same_as_previous(a: &StringViewArray, i: usize) -> bool {
    let v = a.views();
    v[i] == v[i - 1] && (v[i] != 0 || a.is_valid(i) == a.is_valid(i - 1))
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
    /// Learns from one flows batch (canonical schema) in a single pass over its columns.
    ///
    /// The registry calls it once per batch and hands the result to every flow
    /// detector ([`crate::Detector::observe`]), instead of each detector grouping every
    /// row by seven string keys. Consecutive records of one interface (the usual order
    /// of a flow log) cost a few view comparisons; the rest one hash lookup.
    ///
    /// # Errors
    /// The batch lacks a column or has it with another type.
    pub fn learn_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let eni = view(batch, col::INTERFACE_ID)?;
        let fields = [
            view(batch, col::INSTANCE_ID)?,
            view(batch, col::SUBNET_ID)?,
            view(batch, col::VPC_ID)?,
            view(batch, col::AZ_ID)?,
            view(batch, col::ACCOUNT_ID)?,
            view(batch, col::REGION)?,
        ];
        let direction = view(batch, col::FLOW_DIRECTION)?;
        let src = view(batch, col::SRCADDR)?;
        let dst = view(batch, col::DSTADDR)?;
        let egress = make_view(b"egress", 0, 0);

        // Per interface of the batch: the smallest value of each field (as `merge`).
        let mut metas: PlHashMap<&str, [Option<&str>; 6]> = PlHashMap::default();
        // Per own address: the smallest interface, or None if it is not private.
        let mut owners: PlHashMap<&str, Option<&str>> = PlHashMap::default();
        let mut last_owner: Option<(bool, u128, u128)> = None;
        for i in 0..batch.num_rows() {
            let Some(e) = get(eni, i) else { continue };
            // A record with the same seven values as the one before (equal views are
            // equal strings; the decoders reuse a repeated value's view) adds nothing.
            if i == 0 || !fields.iter().chain([&eni]).all(|c| same_as_previous(c, i)) {
                let m = metas.entry(e).or_insert([None; 6]);
                for (have, f) in m.iter_mut().zip(fields) {
                    if let Some(new) = get(f, i)
                        && have.is_none_or(|h| new < h)
                    {
                        *have = Some(new);
                    }
                }
            }
            // The interface's own address: the source of its egress records, the
            // destination of its other directed ones (private addresses only).
            if direction.is_null(i) {
                continue;
            }
            let out = direction.views()[i] == egress;
            let own = if out { src } else { dst };
            let Some(o) = get(own, i) else { continue };
            // Views compare text only within one column: the key names the column.
            let key = (out, own.views()[i], eni.views()[i]);
            if last_owner == Some(key) {
                continue;
            }
            last_owner = Some(key);
            let slot = owners
                .entry(o)
                .or_insert_with(|| (scope_of(o) == Scope::Private).then_some(e));
            if let Some(have) = slot
                && e < *have
            {
                *have = e;
            }
        }
        for (e, m) in metas {
            let [instance, subnet, vpc, az, account, region] = m.map(|v| v.map(str::to_string));
            let m = EniMeta {
                instance,
                subnet,
                vpc,
                az,
                account,
                region,
            };
            match self.enis.get_mut(e) {
                Some(old) => old.merge(m),
                None => {
                    self.enis.insert(e.to_string(), m);
                }
            }
        }
        for (ip, eni) in owners {
            let Some(eni) = eni else { continue };
            match self.owners.get_mut(ip) {
                Some(old) => {
                    if eni < old.eni.as_str() {
                        old.eni = eni.to_string();
                    }
                }
                None => {
                    self.owners.insert(
                        ip.to_string(),
                        Owner {
                            eni: eni.to_string(),
                        },
                    );
                }
            }
        }
        Ok(())
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
    use flowlens_engine::decode::ObjectContext;
    use flowlens_engine::decode::object::{DecodeOptions, ObjectDecoder};

    use super::*;

    const HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status flow-direction instance-id subnet-id vpc-id az-id region";

    fn batch(lines: &[&str]) -> RecordBatch {
        let mut d = ObjectDecoder::new(ObjectContext::new("t.log"), DecodeOptions::default());
        d.push(format!("{HEADER}\n{}\n", lines.join("\n")).as_bytes());
        d.finish().unwrap();
        let mut out = Vec::new();
        while let Some((_, b)) = d.take_batch() {
            out.push(b);
        }
        arrow::compute::concat_batches(&flowlens_model::flows::schema(), &out).unwrap()
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
