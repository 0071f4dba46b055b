//! `exfiltration-spike`: bytes an entity sends to public addresses per window, against
//! that entity's own robust baseline.
//!
//! The entity is the packet-level source: the private host itself, also when its
//! traffic leaves through a NAT gateway (`pkt_srcaddr`). A flow through NAT is logged
//! by both the host's and the gateway's interface; per destination the larger of the
//! two counts, so it is counted once, and either log alone is enough.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use polars::prelude::PlRandomState;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::{Config, ExfiltrationConfig};
use crate::detector::{Chunk, Detector, state_methods};
use crate::inventory::Inventory;
use crate::names::NONE;
use crate::net::Scope;
use crate::prepare::{direction, fact};
use crate::render;
use crate::rows::slot;
use crate::stats::{History, Merge, Windows, merge_map};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PeerAcc {
    direct: u64,
    nat: u64,
    direct_flows: u64,
    nat_flows: u64,
}

impl Merge for PeerAcc {
    fn merge(&mut self, o: Self) {
        self.direct += o.direct;
        self.nat += o.nat;
        self.direct_flows += o.direct_flows;
        self.nat_flows += o.nat_flows;
    }
}

impl PeerAcc {
    fn bytes(&self) -> u64 {
        self.direct.max(self.nat)
    }

    fn flows(&self) -> u64 {
        self.direct_flows.max(self.nat_flows)
    }
}

/// Service port → bytes of one destination. Nearly always one port: a sorted vector
/// (one 40-byte allocation) rather than a B-tree (a ~400-byte node per destination,
/// which made the detector's state, and its time, grow with every new peer). Saved as
/// the map it stands for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<i32, PeerAcc>", into = "BTreeMap<i32, PeerAcc>")]
struct Ports(Vec<(i32, PeerAcc)>);

impl From<BTreeMap<i32, PeerAcc>> for Ports {
    fn from(m: BTreeMap<i32, PeerAcc>) -> Self {
        Ports(m.into_iter().collect())
    }
}

impl From<Ports> for BTreeMap<i32, PeerAcc> {
    fn from(p: Ports) -> Self {
        p.0.into_iter().collect()
    }
}

impl Ports {
    /// The accumulator of `port`, inserted empty (in port order) if absent.
    fn entry(&mut self, port: i32) -> &mut PeerAcc {
        let i = match self.0.binary_search_by_key(&port, |(p, _)| *p) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (port, PeerAcc::default()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// (port, accumulator) in port order.
    fn iter(&self) -> impl Iterator<Item = (i32, &PeerAcc)> {
        self.0.iter().map(|(p, a)| (*p, a))
    }
}

impl Merge for Ports {
    fn merge(&mut self, o: Self) {
        for (port, acc) in o.0 {
            self.entry(port).merge(acc);
        }
    }
}

/// destination → service port → bytes. A hash map: every aggregated row looks one
/// destination up, and an entity can have thousands in a window; it is written in key
/// order, so saved state stays deterministic.
type Peers = HashMap<String, Ports, PlRandomState>;

fn sorted<S: serde::Serializer>(peers: &Peers, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(peers.iter().collect::<BTreeMap<_, _>>())
}

/// One entity in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Win {
    #[serde(serialize_with = "sorted")]
    peers: Peers,
    /// Interfaces that logged the entity's own egress.
    enis: BTreeSet<String>,
}

impl Merge for Win {
    fn merge(&mut self, o: Self) {
        for (peer, ports) in o.peers {
            match self.peers.entry(peer) {
                Entry::Occupied(mut e) => e.get_mut().merge(ports),
                Entry::Vacant(e) => {
                    e.insert(ports);
                }
            }
        }
        self.enis.extend(o.enis);
    }
}

impl Win {
    /// Bytes sent in the window, each flow counted once.
    fn bytes(&self) -> u64 {
        self.peers
            .values()
            .flat_map(Ports::iter)
            .map(|(_, acc)| acc.bytes())
            .sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    /// window → entity → its egress.
    windows: Windows<BTreeMap<String, Win>>,
    history: BTreeMap<String, History>,
    inventory: Inventory,
}

impl Merge for State {
    fn merge(&mut self, o: Self) {
        self.windows.merge(o.windows);
        merge_map(&mut self.history, o.history);
        self.inventory.merge(o.inventory);
    }
}

pub struct Exfiltration {
    cfg: ExfiltrationConfig,
    state: State,
}

impl Exfiltration {
    pub fn new(cfg: &Config) -> Self {
        Exfiltration {
            cfg: cfg.exfiltration_spike.clone(),
            state: State::default(),
        }
    }

    fn judge(&self, window: i64, entity: &str, win: &Win) -> Option<Finding> {
        let cfg = &self.cfg;
        let w = cfg.window_secs;
        let observed = win.bytes();
        if observed < cfg.min_bytes {
            return None;
        }
        let history = self.state.history.get(entity).cloned().unwrap_or_default();
        let base = history.baseline_before(window, w, cfg.history_windows);
        let has_baseline = base.windows >= cfg.min_history_windows;
        let x = observed as f64;
        let ratio = x / base.median.max(1.0);
        let z = base.z(x, cfg.min_bytes as f64 / 10.0);
        let (score, confidence) = if has_baseline {
            if ratio < cfg.min_ratio || z < cfg.min_z {
                return None;
            }
            let s =
                55.0 + 15.0 * (ratio / cfg.min_ratio).log10() + if x >= 1e9 { 10.0 } else { 0.0 };
            (
                s.clamp(40.0, 95.0) as u32,
                (60.0 + 10.0 * (base.windows as f64).log10()).min(95.0) as u8,
            )
        } else {
            if x < 10.0 * cfg.min_bytes as f64 {
                return None;
            }
            (25, 30)
        };

        let mut peers: Vec<(&String, i32, &PeerAcc)> = win
            .peers
            .iter()
            .flat_map(|(p, ports)| ports.iter().map(move |(port, acc)| (p, port, acc)))
            .collect();
        peers.sort_by(|a, b| {
            b.2.bytes()
                .cmp(&a.2.bytes())
                .then(a.0.cmp(b.0))
                .then(a.1.cmp(&b.1))
        });
        let (top_peer, top_port, top_acc) = peers[0];
        let eni = win
            .enis
            .iter()
            .next()
            .cloned()
            .or_else(|| self.state.inventory.eni_of(entity).map(str::to_string));
        let inv = &self.state.inventory;
        let mut entities = vec![Entity::subject(EntityKind::Ip, entity)];
        let (account, region) = match &eni {
            Some(e) => {
                inv.describe(e, &mut entities, true);
                inv.account_region(e)
            }
            None => (None, None),
        };
        for (p, _, _) in peers.iter().take(5) {
            let e = Entity::peer(EntityKind::Ip, p.as_str());
            if !entities.contains(&e) {
                entities.push(e);
            }
        }
        let label = match eni
            .as_deref()
            .and_then(|e| inv.enis.get(e))
            .and_then(|m| m.instance.clone())
        {
            Some(i) => format!("{entity} ({i})"),
            None => match &eni {
                Some(e) => format!("{entity} ({e})"),
                None => entity.to_string(),
            },
        };
        let destinations = win.peers.len();
        let baseline_text = if has_baseline {
            format!(
                "{:.0}× its median of {} per {}-minute window over its last {} windows (MAD {}, robust z {:.0})",
                ratio,
                render::bytes(base.median),
                w / 60,
                base.windows,
                render::bytes(base.mad),
                z
            )
        } else {
            format!(
                "with no baseline yet ({} earlier windows; {} needed), so reported on volume alone",
                base.windows, cfg.min_history_windows
            )
        };
        let description = format!(
            "{label} sent {} to {destinations} public destination{} in {}, {baseline_text}. \
             Top destination {top_peer}:{top_port} received {} in {} flow{}.",
            render::bytes(x),
            if destinations == 1 { "" } else { "s" },
            render::window(window, window + w),
            render::bytes(top_acc.bytes() as f64),
            top_acc.flows(),
            if top_acc.flows() == 1 { "" } else { "s" },
        );
        let evidence = Evidence {
            columns: ["destination", "port", "bytes", "flows", "path"]
                .map(String::from)
                .to_vec(),
            rows: peers
                .iter()
                .take(10)
                .map(|(p, port, acc)| {
                    vec![
                        p.to_string(),
                        port.to_string(),
                        acc.bytes().to_string(),
                        acc.flows().to_string(),
                        if acc.nat > acc.direct {
                            "nat"
                        } else {
                            "direct"
                        }
                        .to_string(),
                    ]
                })
                .collect(),
        };
        Some(Finding {
            id: finding_id(DetectorId::ExfiltrationSpike, entity, window),
            detector: DetectorId::ExfiltrationSpike,
            severity: Severity::new(score),
            confidence,
            title: format!(
                "Egress spike: {label} sent {} to the internet in {} minutes",
                render::bytes(x),
                w / 60
            ),
            description,
            entities,
            window_start: window,
            window_end: window + w,
            observed: vec![
                Measure {
                    name: "egress_bytes".into(),
                    value: x,
                    unit: "bytes".into(),
                },
                Measure {
                    name: "destinations".into(),
                    value: destinations as f64,
                    unit: "hosts".into(),
                },
            ],
            baseline: vec![
                Measure {
                    name: "median_bytes".into(),
                    value: base.median,
                    unit: "bytes".into(),
                },
                Measure {
                    name: "mad_bytes".into(),
                    value: base.mad,
                    unit: "bytes".into(),
                },
                Measure {
                    name: "baseline_windows".into(),
                    value: base.windows as f64,
                    unit: "windows".into(),
                },
            ],
            evidence,
            recommendation: format!(
                "Confirm what on {label} talks to {top_peer}:{top_port}. If it is not a known \
                 backup or sync job: restrict the instance's egress (security group or NACL), \
                 snapshot its volumes for forensics and rotate credentials used on it. If it \
                 is expected, add {top_peer} to exfiltration_spike.allowed_destinations."
            ),
            account_id: account,
            region,
        })
    }
}

/// A NAT gateway whose log lacks packet-level addresses (v2) reports the traffic of
/// the hosts behind it as its own. When two findings of one window share their top
/// destination and volume (within 10 %), keep the one naming an instance (else the
/// smaller id) and name the other in it.
fn dedup_nat(mut found: Vec<Finding>) -> Vec<Finding> {
    let top = |f: &Finding| {
        f.evidence
            .rows
            .first()
            .map(|r| (r[0].clone(), r[1].clone()))
    };
    let bytes = |f: &Finding| f.observed[0].value;
    let rank = |f: &Finding| (f.subject(EntityKind::Instance).is_none(), f.id.clone());
    found.sort_by_key(rank);
    let mut kept: Vec<Finding> = Vec::new();
    for f in found {
        let twin = kept.iter_mut().find(|k| {
            top(k) == top(&f) && (bytes(k) - bytes(&f)).abs() <= 0.1 * bytes(k).max(bytes(&f))
        });
        match twin {
            Some(k) => {
                if let Some(ip) = f.subject(EntityKind::Ip) {
                    k.entities.push(Entity::peer(EntityKind::Ip, ip));
                    k.description.push_str(&format!(
                        " The same bytes were logged as egress of {ip} (a NAT gateway or proxy)."
                    ));
                }
            }
            None => kept.push(f),
        }
    }
    kept
}

impl Detector for Exfiltration {
    fn id(&self) -> DetectorId {
        DetectorId::ExfiltrationSpike
    }

    fn input(&self) -> LogKind {
        LogKind::Flows
    }

    fn observe(&mut self, chunk: &Chunk<'_>) -> Result<()> {
        let (rows, learned) = chunk.flows()?;
        self.state.inventory.absorb(learned);
        let w = self.cfg.window_secs;
        let forbid = if self.cfg.exclude_aws_services {
            fact::ALLOWED | fact::DST_AWS_SERVICE
        } else {
            fact::ALLOWED
        };
        // Accepted egress from a private packet-level source to a public destination,
        // per (window, entity, via NAT, peer, service port, interface): (bytes, flows).
        let groups = rows.aggregate(
            |i| {
                let dir = rows.direction[i];
                if !(rows.is(i, fact::ACCEPT, forbid)
                    && rows.scope(rows.pdst[i]) == Scope::Public
                    && rows.scope(rows.psrc[i]) == Scope::Private
                    && (dir == direction::UNKNOWN || dir == direction::EGRESS))
                {
                    return None;
                }
                // The packet-level source differs from the interface's own address.
                let via_nat = rows.src[i] != NONE && rows.psrc[i] != rows.src[i];
                let port = rows.svc_port[i].unwrap_or(0);
                let (entity, peer, eni) = (rows.psrc[i], rows.pdst[i], rows.eni[i]);
                Some((rows.window(i, w)?, entity, via_nat, peer, port, eni))
            },
            |acc: &mut (u64, u64), i| {
                acc.0 += rows.bytes[i].max(0) as u64;
                acc.1 += 1;
            },
        );
        for ((win, entity, via_nat, peer, port, eni), (b, flows)) in groups {
            let (Some(ent), Some(p)) = (rows.name(entity), rows.name(peer)) else {
                continue;
            };
            if self.cfg.allowed_destinations.contains_str(p) {
                continue;
            }
            let Some(open) = self.state.windows.slot(win, flows) else {
                continue;
            };
            let slot_ = slot(open, ent);
            if !slot_.peers.contains_key(p) {
                slot_.peers.insert(p.to_string(), Ports::default());
            }
            let acc = slot_.peers.get_mut(p).expect("inserted above");
            let acc = acc.entry(port);
            if via_nat {
                acc.nat += b;
                acc.nat_flows += flows;
            } else {
                acc.direct += b;
                acc.direct_flows += flows;
                if let Some(e) = rows.name(eni)
                    && !slot_.enis.contains(e)
                {
                    slot_.enis.insert(e.to_string());
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, watermark: i64) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, ents) in self.state.windows.close(watermark, w) {
            let found: Vec<Finding> = ents
                .iter()
                .filter_map(|(entity, win)| self.judge(start, entity, win))
                .collect();
            out.extend(dedup_nat(found));
            for (entity, win) in ents {
                self.state.history.entry(entity).or_default().record(
                    start,
                    win.bytes(),
                    self.cfg.history_windows,
                );
            }
        }
        Ok(out)
    }

    state_methods!();
}
