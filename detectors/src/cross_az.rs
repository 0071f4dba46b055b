//! `cross-az-cost`: bytes crossing Availability Zones per talker pair, priced.
//!
//! An intra-VPC flow is logged by both interfaces; per (source, destination, port)
//! the larger of the interfaces' byte counts is taken, so each crossing is counted
//! once and either log alone is enough. The AZ of an address comes from the logs
//! (`az_id` of the interface that owns it, learned from `flow_direction`), else from
//! `cross_az_cost.az_by_cidr` (for v2 logs, which carry neither).

use std::collections::BTreeMap;

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::{Config, CrossAzConfig};
use crate::detector::{Chunk, Detector, state_methods};
use crate::inventory::Inventory;
use crate::names::Names;
use crate::net::parse_ip;
use crate::prepare::{WindowOf, fact};
use crate::render;
use crate::rows::slot;
use crate::stats::{Episodes, Merge, Update, Windows};

/// interface → bytes, for one (source, destination, port).
type ByEni = BTreeMap<String, u64>;
/// source → destination → port → interface → bytes.
type Talk = BTreeMap<String, BTreeMap<String, BTreeMap<i32, ByEni>>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    windows: Windows<Talk>,
    inventory: Inventory,
    /// Pairs (`a|b`) whose leak goes on: one finding per leak, updated.
    #[serde(default)]
    episodes: Episodes,
}

impl Merge for State {
    fn merge(&mut self, o: Self) {
        self.windows.merge(o.windows);
        self.inventory.merge(o.inventory);
        self.episodes.merge(o.episodes);
    }
}

const MONTH_SECS: f64 = 30.0 * 86_400.0;

pub struct CrossAz {
    cfg: CrossAzConfig,
    state: State,
}

#[derive(Default)]
struct Pair {
    /// (port, a→b?) → bytes
    ports: BTreeMap<(i32, bool), u64>,
    bytes: u64,
}

impl CrossAz {
    pub fn new(cfg: &Config) -> Self {
        CrossAz {
            cfg: cfg.cross_az_cost.clone(),
            state: State::default(),
        }
    }

    fn az_of(&self, ip: &str) -> Option<String> {
        if let Some((_, m)) = self.state.inventory.meta_of_ip(ip)
            && let Some(az) = &m.az
        {
            return Some(az.clone());
        }
        let addr = parse_ip(ip)?;
        self.cfg
            .az_by_cidr
            .iter()
            .find(|(c, _)| c.contains(addr))
            .map(|(_, az)| az.clone())
    }

    fn usd(&self, bytes: u64) -> f64 {
        crate::net::cross_az_usd(bytes as f64, self.cfg.usd_per_gb)
    }

    /// The findings of a closed window, each with its pair's key (`a|b`). A pair whose
    /// leak went on from the window before keeps that leak's first window (its id and
    /// start).
    fn judge_window(&self, window: i64, talk: &Talk) -> Vec<(String, Finding)> {
        let w = self.cfg.window_secs;
        let mut azs: BTreeMap<&str, Option<String>> = BTreeMap::new();
        let mut pairs: BTreeMap<(&str, &str), Pair> = BTreeMap::new();
        let mut by_az_pair: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (src, dsts) in talk {
            for (dst, ports) in dsts {
                let sa = azs.entry(src).or_insert_with(|| self.az_of(src)).clone();
                let da = azs.entry(dst).or_insert_with(|| self.az_of(dst)).clone();
                let (Some(sa), Some(da)) = (sa, da) else {
                    continue;
                };
                if sa == da {
                    continue;
                }
                let forward = src.as_str() < dst.as_str();
                let key = if forward {
                    (src.as_str(), dst.as_str())
                } else {
                    (dst.as_str(), src.as_str())
                };
                let pair = pairs.entry(key).or_default();
                for (port, enis) in ports {
                    let b = enis.values().copied().max().unwrap_or(0);
                    pair.ports.entry((*port, forward)).or_default().merge(b);
                    pair.bytes.merge(b);
                    let azk = if sa < da {
                        (sa.clone(), da.clone())
                    } else {
                        (da.clone(), sa.clone())
                    };
                    by_az_pair.entry(azk).or_default().merge(b);
                }
            }
        }
        let total = pairs
            .values()
            .fold(0, |sum: u64, p| sum.saturating_add(p.bytes));
        let scale = MONTH_SECS / w as f64;
        let inv = &self.state.inventory;
        let mut out = Vec::new();
        for ((a, b), pair) in &pairs {
            let cost = self.usd(pair.bytes);
            let monthly = cost * scale;
            if monthly < self.cfg.min_monthly_usd || pair.bytes == 0 {
                continue;
            }
            let key = format!("{a}|{b}");
            let (first, windows_on) = self.state.episodes.run(&key, window, w);
            let ratio = monthly / self.cfg.min_monthly_usd.max(0.01);
            let score = if ratio >= 100.0 {
                75
            } else if ratio >= 10.0 {
                45
            } else {
                (15.0 + 10.0 * ratio.log10()) as u32
            };
            let (az_a, az_b) = (
                azs[a].clone().unwrap_or_default(),
                azs[b].clone().unwrap_or_default(),
            );
            let mut entities = vec![
                Entity::subject(EntityKind::Ip, *a),
                Entity::subject(EntityKind::Ip, *b),
            ];
            let mut account = None;
            let mut region = None;
            for ip in [a, b] {
                if let Some(eni) = inv.eni_of(ip) {
                    inv.describe(eni, &mut entities, true);
                    if account.is_none() {
                        (account, region) = inv.account_region(eni);
                    }
                }
            }
            entities.sort();
            entities.dedup();
            let mut ports: Vec<(&(i32, bool), &u64)> = pair.ports.iter().collect();
            ports.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
            let ((top_port, _), top_bytes) = ports[0];
            let (la, lb) = (inv.label(a), inv.label(b));
            let azk = if az_a < az_b {
                (az_a.clone(), az_b.clone())
            } else {
                (az_b.clone(), az_a.clone())
            };
            let az_total = by_az_pair.get(&azk).copied().unwrap_or(0);
            let description = format!(
                "{la} in {az_a} and {lb} in {az_b} exchanged {} across Availability Zones in {} \
                 ({}: {:.2} GiB billed at {}/GiB in each direction), {} per month at this \
                 rate. Port {top_port} carried {} ({:.0}%). The pair is {:.0}% of the {} \
                 crossing {az_a}↔{az_b} and {:.0}% of all {} crossing AZs in this window.{}",
                render::bytes(pair.bytes as f64),
                render::window(window, window + w),
                render::usd(cost),
                // AWS bills data transfer per GB of 2^30 bytes (a GiB): the figure the
                // price applies to, so that the sum can be checked.
                pair.bytes as f64 / flowlens_model::net::BYTES_PER_GB,
                render::usd(self.cfg.usd_per_gb),
                render::usd(monthly),
                render::bytes(*top_bytes as f64),
                100.0 * *top_bytes as f64 / pair.bytes as f64,
                100.0 * pair.bytes as f64 / az_total.max(1) as f64,
                render::bytes(az_total as f64),
                100.0 * pair.bytes as f64 / total.max(1) as f64,
                render::bytes(total as f64),
                render::going_on(
                    "The pair has crossed above the threshold",
                    first,
                    windows_on
                ),
            );
            let rows = ports
                .iter()
                .take(10)
                .map(|((port, fwd), bytes)| {
                    let (from, to) = if *fwd { (a, b) } else { (b, a) };
                    vec![
                        format!("{from} → {to}"),
                        port.to_string(),
                        bytes.to_string(),
                        format!("{:.2}", self.usd(**bytes) * scale),
                    ]
                })
                .collect();
            out.push((
                key.clone(),
                Finding {
                    id: finding_id(DetectorId::CrossAzCost, &key, first),
                    detector: DetectorId::CrossAzCost,
                    severity: Severity::new(score),
                    confidence: 90,
                    title: format!(
                        "Cross-AZ traffic {la} ↔ {lb}: {} per month ({az_a} ↔ {az_b})",
                        render::usd(monthly)
                    ),
                    description,
                    entities,
                    window_start: first,
                    window_end: window + w,
                    observed: vec![
                        Measure {
                            name: "cross_az_bytes".into(),
                            value: pair.bytes as f64,
                            unit: "bytes".into(),
                        },
                        Measure {
                            name: "window_cost".into(),
                            value: cost,
                            unit: "usd".into(),
                        },
                        Measure {
                            name: "monthly_cost".into(),
                            value: monthly,
                            unit: "usd".into(),
                        },
                        Measure {
                            name: "windows_above_threshold".into(),
                            value: windows_on as f64,
                            unit: "windows".into(),
                        },
                    ],
                    baseline: vec![Measure {
                        name: "min_monthly_usd".into(),
                        value: self.cfg.min_monthly_usd,
                        unit: "usd".into(),
                    }],
                    evidence: Evidence {
                        columns: ["direction", "port", "bytes", "monthly_usd"]
                            .map(String::from)
                            .to_vec(),
                        rows,
                    },
                    recommendation: format!(
                        "Keep this traffic inside one AZ: point {la} at an endpoint in {az_a} \
                     (AZ-aware client routing, a replica or cache per AZ, topology-aware \
                     service routing), or co-locate the two. If the pair must cross AZs, \
                     compress or batch what port {top_port} carries."
                    ),
                    account_id: account,
                    region,
                },
            ));
        }
        out
    }
}

impl Detector for CrossAz {
    fn id(&self) -> DetectorId {
        DetectorId::CrossAzCost
    }

    fn input(&self) -> LogKind {
        LogKind::Flows
    }

    fn observe(&mut self, chunk: &Chunk<'_>) -> Result<()> {
        let (rows, learned) = chunk.flows()?;
        self.state.inventory.absorb(learned);
        let w = self.cfg.window_secs;
        // Accepted private → private flows carrying bytes, per (window, source,
        // destination, service port, interface): (bytes, flows).
        let mut window = WindowOf::new(w);
        let groups = rows.aggregate(
            fact::ACCEPT | fact::SRC_PRIVATE | fact::DST_PRIVATE,
            fact::ALLOWED,
            |i| {
                if rows.bytes[i] <= 0 {
                    return None;
                }
                let port = rows.svc_port(i).unwrap_or(0);
                Some((
                    window.of(rows.start(i)?),
                    rows.src[i],
                    rows.dst[i],
                    port,
                    rows.eni[i],
                ))
            },
            |acc: &mut (u64, u64), i| {
                acc.0.merge(rows.bytes[i] as u64);
                acc.1 += 1;
            },
        );
        for ((win, s, d, port, eni), (bytes, flows)) in groups {
            let (Some(s), Some(d)) = (rows.name(s), rows.name(d)) else {
                continue;
            };
            let Some(open) = self.state.windows.slot(win, flows) else {
                continue;
            };
            let by_eni = slot(slot(open, s), d).entry(port).or_default();
            slot(by_eni, rows.name(eni).unwrap_or_default()).merge(bytes);
        }
        Ok(())
    }

    fn flush(&mut self, watermark: i64, _: &Names) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, talk) in self.state.windows.close(watermark, w) {
            for (pair, f) in self.judge_window(start, &talk) {
                let episodes = &mut self.state.episodes;
                episodes.emit(&mut out, pair, start, w, f, Update::Every);
            }
            self.state.episodes.close(start);
        }
        Ok(out)
    }

    state_methods!();
}
