//! `public-exposure`: accepted inbound flows from public addresses to interfaces and
//! ports that should be private (model-serving endpoints, databases, admin ports, or
//! any port of a configured private block).
//!
//! AWS-service sources (`pkt_src_aws_service`: CloudFront, Route 53 health checks) and
//! `trusted_sources` are not the internet; `public_ports` of interfaces outside
//! `private_cidrs` and `public_enis` are meant to be reached. Severity follows what
//! is exposed and how widely: one known peer reaching a bastion's SSH is LOW, twenty
//! strangers reaching a model server is HIGH.

use std::collections::{BTreeMap, BTreeSet};

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::{Config, ExposureConfig};
use crate::detector::{Chunk, Detector, state_methods};
use crate::inventory::Inventory;
use crate::names::Names;
use crate::ports::PortSet;
use crate::prepare::{WindowOf, fact};
use crate::render;
use crate::rows::slot;
use crate::stats::{Distinct, Episodes, Merge, Update, Windows, merge_map};

/// Sources kept by address for evidence (the smallest addresses: deterministic).
const EVIDENCE_SOURCES: usize = 50;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Acc {
    flows: u64,
    bytes: u64,
}

impl Merge for Acc {
    fn merge(&mut self, o: Self) {
        self.flows += o.flows;
        self.bytes.merge(o.bytes);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Exposed {
    enis: BTreeSet<String>,
    total: Acc,
    distinct_sources: Distinct,
    sources: BTreeMap<String, Acc>,
}

impl Merge for Exposed {
    fn merge(&mut self, o: Self) {
        self.enis.extend(o.enis);
        self.total.merge(o.total);
        self.distinct_sources.merge(o.distinct_sources);
        merge_map(&mut self.sources, o.sources);
        while self.sources.len() > EVIDENCE_SOURCES {
            self.sources.pop_last();
        }
    }
}

/// destination → port → exposure.
type Open = BTreeMap<String, BTreeMap<i32, Exposed>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    windows: Windows<Open>,
    inventory: Inventory,
    /// Exposed ports (`address:port`) reported in the window before: an exposure that
    /// goes on is one finding, updated.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    ModelServing,
    Database,
    Admin,
    PrivateBlock,
}

impl Class {
    fn text(self) -> &'static str {
        match self {
            Class::ModelServing => "a model-serving / ML tooling port",
            Class::Database => "a database port",
            Class::Admin => "a remote-access port",
            Class::PrivateBlock => "a port in a private address block",
        }
    }

    fn base(self) -> f64 {
        match self {
            Class::ModelServing | Class::Database => 70.0,
            Class::Admin => 50.0,
            Class::PrivateBlock => 45.0,
        }
    }
}

pub struct Exposure {
    cfg: ExposureConfig,
    /// `cfg.public_ports`, tested per row.
    public_ports: PortSet,
    state: State,
}

impl Exposure {
    pub fn new(cfg: &Config) -> Self {
        Exposure {
            cfg: cfg.public_exposure.clone(),
            public_ports: PortSet::new(&cfg.public_exposure.public_ports),
            state: State::default(),
        }
    }

    fn class(&self, dst: &str, port: i32) -> Option<Class> {
        let p = port as u16;
        if self.cfg.model_serving_ports.contains(&p) {
            Some(Class::ModelServing)
        } else if self.cfg.database_ports.contains(&p) {
            Some(Class::Database)
        } else if self.cfg.admin_ports.contains(&p) {
            Some(Class::Admin)
        } else if self.cfg.private_cidrs.contains_str(dst) {
            Some(Class::PrivateBlock)
        } else {
            None
        }
    }

    /// The finding of an exposed port in a closed window, if it is one: named by the
    /// first window of the exposure when it goes on from the window before.
    fn judge(&self, window: i64, dst: &str, port: i32, e: &Exposed) -> Option<Finding> {
        let class = self.class(dst, port)?;
        let w = self.cfg.window_secs;
        let key = format!("{dst}:{port}");
        let (first, windows_on) = self.state.episodes.run(&key, window, w);
        let sources = e.distinct_sources.estimate();
        let wide = sources >= self.cfg.wide_open_sources;
        let mut score = class.base();
        if wide {
            score += 15.0;
        } else if sources <= 1 {
            score -= 25.0;
        } else {
            score -= 10.0;
        }
        let inv = &self.state.inventory;
        let label = inv.label(dst);
        let mut entities = vec![
            Entity::subject(EntityKind::Ip, dst),
            Entity::subject(EntityKind::Port, port.to_string()),
        ];
        let mut account = None;
        let mut region = None;
        for eni in &e.enis {
            inv.describe(eni, &mut entities, true);
            if account.is_none() {
                (account, region) = inv.account_region(eni);
            }
        }
        for s in e.sources.keys().take(10) {
            entities.push(Entity::peer(EntityKind::Ip, s.as_str()));
        }
        entities.dedup();
        let description = format!(
            "{label} accepted {} inbound flow{} ({}) on port {port}, {}, from {sources} public \
             source{} in {}{}{}",
            e.total.flows,
            if e.total.flows == 1 { "" } else { "s" },
            render::bytes(e.total.bytes as f64),
            class.text(),
            if sources == 1 { "" } else { "s" },
            render::window(window, window + w),
            if wide {
                ": it is open to anyone. Security groups or NACLs let the internet reach it."
            } else {
                ". Security groups or NACLs let these public addresses reach it: the rule may \
                 admit them alone, or the whole internet."
            },
            render::going_on("Reached from the internet", first, windows_on),
        );
        let rows = e
            .sources
            .iter()
            .take(20)
            .map(|(s, a)| {
                vec![
                    s.clone(),
                    port.to_string(),
                    a.flows.to_string(),
                    a.bytes.to_string(),
                ]
            })
            .collect();
        Some(Finding {
            id: finding_id(DetectorId::PublicExposure, &key, first),
            detector: DetectorId::PublicExposure,
            severity: Severity::new(score.clamp(1.0, 100.0) as u32),
            confidence: if wide { 90 } else { 70 },
            title: format!(
                "{label} port {port} reachable from the internet ({sources} source{})",
                if sources == 1 { "" } else { "s" }
            ),
            description,
            entities,
            window_start: first,
            window_end: window + w,
            observed: vec![
                Measure {
                    name: "public_sources".into(),
                    value: sources as f64,
                    unit: "hosts".into(),
                },
                Measure {
                    name: "accepted_flows".into(),
                    value: e.total.flows as f64,
                    unit: "flows".into(),
                },
                Measure {
                    name: "inbound_bytes".into(),
                    value: e.total.bytes as f64,
                    unit: "bytes".into(),
                },
                Measure {
                    name: "windows_reached".into(),
                    value: windows_on as f64,
                    unit: "windows".into(),
                },
            ],
            baseline: vec![Measure {
                name: "wide_open_sources".into(),
                value: self.cfg.wide_open_sources as f64,
                unit: "hosts".into(),
            }],
            evidence: Evidence {
                columns: ["source", "port", "flows", "bytes"]
                    .map(String::from)
                    .to_vec(),
                rows,
            },
            recommendation: if wide {
                format!(
                    "Remove the inbound rule that admits 0.0.0.0/0 (or these sources) to port \
                     {port} on {label}'s security group; serve it through a load balancer, \
                     VPN, SSM Session Manager or PrivateLink instead. If it is meant to be \
                     public, list its interface in public_exposure.public_enis."
                )
            } else {
                format!(
                    "Check which addresses the security group of {label} admits to port \
                     {port}: if 0.0.0.0/0, remove that rule and serve it through a load \
                     balancer, VPN, SSM Session Manager or PrivateLink instead. If it admits \
                     only these sources and they are yours (an administrator's address, a \
                     partner), list them in public_exposure.trusted_sources."
                )
            },
            account_id: account,
            region,
        })
    }
}

impl Detector for Exposure {
    fn id(&self) -> DetectorId {
        DetectorId::PublicExposure
    }

    fn input(&self) -> LogKind {
        LogKind::Flows
    }

    fn observe(&mut self, chunk: &Chunk<'_>) -> Result<()> {
        let (rows, learned) = chunk.flows()?;
        self.state.inventory.absorb(learned);
        let w = self.cfg.window_secs;
        // Without private CIDRs, the public tiers' ports are left out here (with them,
        // per destination below).
        let skip_public_ports =
            self.cfg.private_cidrs.is_empty() && !self.cfg.public_ports.is_empty();
        // Accepted inbound requests from public sources (not AWS services) to private
        // destinations, per (window, destination, service port, interface, source):
        // (bytes, flows).
        let mut window = WindowOf::new(w);
        let groups = rows.aggregate(
            fact::ACCEPT | fact::SRC_PUBLIC | fact::PDST_PRIVATE,
            fact::RESPONSE
                | fact::ALLOWED
                | fact::SRC_AWS_SERVICE
                | fact::EGRESS
                | fact::OTHER_DIRECTION,
            |i| {
                let port = rows.svc_port(i);
                if skip_public_ports && port.is_none_or(|p| self.public_ports.contains(p)) {
                    return None;
                }
                let (dst, eni, src) = (rows.pdst(i), rows.eni[i], rows.src[i]);
                Some((window.of(rows.start(i)?), dst, src, port.unwrap_or(0), eni))
            },
            |acc: &mut (u64, u64), i| {
                acc.0.merge(rows.bytes[i].max(0) as u64);
                acc.1 += 1;
            },
        );
        for ((win, d, s, p, eni), (bytes, flows)) in groups {
            let (Some(d), Some(s)) = (rows.name(d), rows.name(s)) else {
                continue;
            };
            let eni = rows.name(eni);
            if self.cfg.trusted_sources.contains_str(s)
                || eni.is_some_and(|e| self.cfg.public_enis.iter().any(|x| x == e))
            {
                continue;
            }
            let public_port = self.public_ports.contains(p);
            if self.class(d, p).is_none()
                || (public_port && !self.cfg.private_cidrs.contains_str(d))
            {
                continue;
            }
            let acc = Acc { flows, bytes };
            let Some(open) = self.state.windows.slot(win, flows) else {
                continue;
            };
            // The same as merging a one-row `Exposed`, without building one.
            let e = slot(open, d).entry(p).or_default();
            if let Some(x) = eni
                && !e.enis.contains(x)
            {
                e.enis.insert(x.to_string());
            }
            e.total.merge(acc);
            e.distinct_sources.insert(s);
            slot(&mut e.sources, s).merge(acc);
            while e.sources.len() > EVIDENCE_SOURCES {
                e.sources.pop_last();
            }
        }
        Ok(())
    }

    fn flush(&mut self, watermark: i64, _: &Names) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, dsts) in self.state.windows.close(watermark, w) {
            for (dst, ports) in &dsts {
                for (port, e) in ports {
                    if let Some(f) = self.judge(start, dst, *port, e) {
                        let key = format!("{dst}:{port}");
                        let episodes = &mut self.state.episodes;
                        episodes.emit(&mut out, key, start, w, f, Update::Every);
                    }
                }
            }
            self.state.episodes.close(start);
        }
        Ok(out)
    }

    state_methods!();
}
