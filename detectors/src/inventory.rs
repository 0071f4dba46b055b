//! What the logs tell about the VPC: each interface's instance, subnet, VPC, AZ,
//! account and region, and each private address's interface and AZ. Learned from the
//! flows themselves (a mergeable union; conflicts resolve to the smallest value, so
//! every shard order learns the same map).

use std::collections::BTreeMap;

use flowlens_model::finding::{Entity, EntityKind};
use flowlens_model::flows::col;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::prepare::derived;
use crate::rows::strs;
use crate::stats::{Merge, merge_map, min_opt};

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
    /// Learns from one prepared flows frame.
    pub fn learn(&mut self, df: &DataFrame) -> Result<()> {
        let metas = df
            .clone()
            .lazy()
            .filter(col(col::INTERFACE_ID).is_not_null())
            .group_by([
                col(col::INTERFACE_ID),
                col(col::INSTANCE_ID),
                col(col::SUBNET_ID),
                col(col::VPC_ID),
                col(col::AZ_ID),
                col(col::ACCOUNT_ID),
                col(col::REGION),
            ])
            .agg([len()])
            .collect()?;
        let eni = strs(&metas, col::INTERFACE_ID)?;
        let inst = strs(&metas, col::INSTANCE_ID)?;
        let subnet = strs(&metas, col::SUBNET_ID)?;
        let vpc = strs(&metas, col::VPC_ID)?;
        let az = strs(&metas, col::AZ_ID)?;
        let acct = strs(&metas, col::ACCOUNT_ID)?;
        let region = strs(&metas, col::REGION)?;
        for i in 0..eni.len() {
            let Some(e) = eni[i].clone() else { continue };
            let m = EniMeta {
                instance: inst[i].clone(),
                subnet: subnet[i].clone(),
                vpc: vpc[i].clone(),
                az: az[i].clone(),
                account: acct[i].clone(),
                region: region[i].clone(),
            };
            match self.enis.get_mut(&e) {
                Some(old) => old.merge(m),
                None => {
                    self.enis.insert(e, m);
                }
            }
        }
        // The interface's own address: the source of its egress records, the
        // destination of its ingress ones (private addresses only).
        let own = df
            .clone()
            .lazy()
            .filter(col(col::FLOW_DIRECTION).is_not_null())
            .select([
                col(col::INTERFACE_ID),
                when(col(col::FLOW_DIRECTION).eq(lit("egress")))
                    .then(col(col::SRCADDR))
                    .otherwise(col(col::DSTADDR))
                    .alias("own"),
                when(col(col::FLOW_DIRECTION).eq(lit("egress")))
                    .then(col(derived::SRC_SCOPE))
                    .otherwise(col(derived::DST_SCOPE))
                    .alias("own_scope"),
            ])
            .filter(col("own_scope").eq(lit(crate::net::Scope::Private as i32)))
            .group_by([col("own"), col(col::INTERFACE_ID)])
            .agg([len()])
            .collect()?;
        let ip = strs(&own, "own")?;
        let eni = strs(&own, col::INTERFACE_ID)?;
        for (ip, eni) in ip.into_iter().zip(eni) {
            if let (Some(ip), Some(eni)) = (ip, eni) {
                let o = Owner { eni };
                match self.owners.get_mut(&ip) {
                    Some(old) => old.merge(o),
                    None => {
                        self.owners.insert(ip, o);
                    }
                }
            }
        }
        Ok(())
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
