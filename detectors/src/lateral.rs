//! `lateral-movement`: an internal source reaching many internal hosts on admin ports
//! (a sweep), or many ports of one host (a port scan), within minutes.
//!
//! Each window is judged together with the one before it, so a sweep is seen whole
//! however it straddles a boundary, and only peers new to the source count: a
//! monitoring host scraping every host and a bastion with its usual sessions reach
//! the same peers every window and stay quiet. Rejections and SYN-only/short flows
//! (probes that found nothing) raise the severity. Where the peers use fixed hourly
//! thresholds (≥ 100 or ≥ 250 hosts), a ten-minute sweep of a dozen hosts is enough.

use std::collections::{BTreeMap, BTreeSet};

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::{Config, LateralConfig};
use crate::detector::{Chunk, Detector, state_methods};
use crate::inventory::Inventory;
use crate::names::Names;
use crate::prepare::{WindowOf, fact};
use crate::render;
use crate::rows::slot;
use crate::stats::{Merge, Windows, merge_map, upsert};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Acc {
    flows: u64,
    rejected: u64,
    short: u64,
}

impl Merge for Acc {
    fn merge(&mut self, o: Self) {
        self.flows += o.flows;
        self.rejected += o.rejected;
        self.short += o.short;
    }
}

/// destination → port → counters.
type Peers = BTreeMap<String, BTreeMap<i32, Acc>>;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Seen {
    first: i64,
    last: i64,
}

impl Merge for Seen {
    fn merge(&mut self, o: Self) {
        self.first = self.first.min(o.first);
        self.last = self.last.max(o.last);
    }
}

/// What a source has reached before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Known {
    /// First window the source was seen in.
    since: Option<i64>,
    /// destination → port → first/last window it was reached.
    peers: BTreeMap<String, BTreeMap<i32, Seen>>,
    /// The source's last closed window (judged with the next one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<(i64, Peers)>,
    /// The last window a finding covered and the window its incident started in: a
    /// continuing sweep is one finding (same id), updated as it grows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alerted: Option<(i64, i64)>,
    /// That finding as last reported: its start and its count of hosts (the first
    /// measure). A later window of the sweep replaces it only with a count as large,
    /// in this run or a later one (a run restored from saved state reports what one run
    /// over all the input would).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported: Option<(i64, f64)>,
}

impl Merge for Known {
    fn merge(&mut self, o: Self) {
        self.since = match (self.since, o.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        merge_map(&mut self.peers, o.peers);
        match (&mut self.previous, o.previous) {
            (Some((wa, pa)), Some((wb, pb))) => {
                if wb > *wa {
                    *wa = wb;
                    *pa = pb;
                } else if wb == *wa {
                    merge_map(pa, pb);
                }
            }
            (None, Some(p)) => self.previous = Some(p),
            _ => {}
        }
        // The report goes with the later alert; for the same one, the larger count
        // (then the earlier start).
        self.reported = match self.alerted.cmp(&o.alerted) {
            std::cmp::Ordering::Less => o.reported,
            std::cmp::Ordering::Greater => self.reported,
            std::cmp::Ordering::Equal => match (self.reported, o.reported) {
                (Some(a), Some(b)) => Some(if b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)).is_gt() {
                    b
                } else {
                    a
                }),
                (a, b) => a.or(b),
            },
        };
        self.alerted = self.alerted.max(o.alerted);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    /// window → source → its peers.
    windows: Windows<BTreeMap<String, Peers>>,
    known: BTreeMap<String, Known>,
    inventory: Inventory,
}

impl Merge for State {
    fn merge(&mut self, o: Self) {
        self.windows.merge(o.windows);
        merge_map(&mut self.known, o.known);
        self.inventory.merge(o.inventory);
    }
}

pub struct Lateral {
    cfg: LateralConfig,
    state: State,
}

impl Lateral {
    pub fn new(cfg: &Config) -> Self {
        Lateral {
            cfg: cfg.lateral_movement.clone(),
            state: State::default(),
        }
    }

    fn judge(
        &self,
        window: i64,
        src: &str,
        span: &Peers,
        span_start: i64,
        incident: i64,
    ) -> Option<Finding> {
        let cfg = &self.cfg;
        let known = self.state.known.get(src);
        let is_novel = |dst: &str, port: i32| {
            known
                .and_then(|k| k.peers.get(dst))
                .and_then(|p| p.get(&port))
                .is_none_or(|s| s.first >= span_start)
        };
        let admin = |p: i32| cfg.admin_ports.contains(&(p as u16));
        let mut sweep_hosts: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        let mut widest: Option<(&str, usize)> = None;
        let (mut flows, mut rejected, mut short) = (0u64, 0u64, 0u64);
        for (dst, ports) in span {
            let novel: Vec<i32> = ports
                .keys()
                .copied()
                .filter(|p| is_novel(dst, *p))
                .collect();
            let novel_admin: Vec<i32> = novel.iter().copied().filter(|p| admin(*p)).collect();
            if !novel_admin.is_empty() {
                sweep_hosts.insert(dst, novel_admin);
            }
            if widest.is_none_or(|(_, n)| novel.len() > n) {
                widest = Some((dst, novel.len()));
            }
            for (p, acc) in ports {
                if novel.contains(p) {
                    flows += acc.flows;
                    rejected += acc.rejected;
                    short += acc.short;
                }
            }
        }
        let hosts = sweep_hosts.len() as u32;
        let (scan_host, scan_ports) = widest.unwrap_or(("", 0));
        let is_sweep = hosts >= cfg.min_hosts;
        let is_scan = scan_ports as u32 >= cfg.min_ports;
        if !is_sweep && !is_scan {
            return None;
        }
        let rej_frac = rejected as f64 / flows.max(1) as f64;
        let short_frac = short as f64 / flows.max(1) as f64;
        let new_source = known.and_then(|k| k.since).is_none_or(|s| s >= span_start);
        let mut score =
            45.0 + if is_sweep {
                (2.0 * (hosts - cfg.min_hosts) as f64).min(25.0)
            } else {
                0.0
            } + if is_scan {
                ((scan_ports as u32 - cfg.min_ports.min(scan_ports as u32)) as f64).min(15.0)
            } else {
                0.0
            } + 15.0 * rej_frac
                + 10.0 * short_frac
                + if is_sweep && is_scan { 5.0 } else { 0.0 };
        let mut confidence = 70.0 + 20.0 * rej_frac.max(short_frac);
        if new_source {
            // No history: everything is "new"; still worth a look, not an alarm.
            score = score.min(60.0);
            confidence = 40.0;
        }
        let w = cfg.window_secs;
        let inv = &self.state.inventory;
        let label = inv.label(src);
        let mut entities = vec![Entity::subject(EntityKind::Ip, src)];
        let eni = inv.eni_of(src).map(str::to_string);
        let (account, region) = match &eni {
            Some(e) => {
                inv.describe(e, &mut entities, true);
                inv.account_region(e)
            }
            None => (None, None),
        };
        let targets: Vec<&str> = if is_sweep {
            sweep_hosts.keys().copied().collect()
        } else {
            vec![scan_host]
        };
        for t in targets.iter().take(10) {
            entities.push(Entity::peer(EntityKind::Ip, *t));
        }
        let ports_seen: BTreeSet<i32> = sweep_hosts.values().flatten().copied().collect();
        let ports_text = ports_seen
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let what = if is_sweep {
            format!(
                "reached {hosts} internal hosts it had not reached before on admin ports ({ports_text})"
            )
        } else {
            format!(
                "probed {scan_ports} ports of {} it had not reached before",
                inv.label(scan_host)
            )
        };
        let scan_text = if is_sweep && is_scan {
            format!(" It also probed {scan_ports} ports of {scan_host}.")
        } else {
            String::new()
        };
        let description = format!(
            "{label} {what} in {} (threshold {} hosts / {} ports of one host). {:.0}% of these \
             flows were rejected and {:.0}% were SYN-only or at most two packets.{scan_text}{}",
            render::window(span_start, window + w),
            cfg.min_hosts,
            cfg.min_ports,
            100.0 * rej_frac,
            100.0 * short_frac,
            if new_source {
                " The source has no earlier history in these logs."
            } else {
                ""
            },
        );
        let mut rows = Vec::new();
        let evidence_hosts: Vec<&str> = if is_sweep {
            sweep_hosts.keys().copied().collect()
        } else {
            vec![scan_host]
        };
        for dst in evidence_hosts.iter().take(25) {
            let ports = &span[*dst];
            let acc = ports.values().fold(Acc::default(), |mut a, b| {
                a.merge(*b);
                a
            });
            let plist: Vec<String> = ports.keys().take(12).map(i32::to_string).collect();
            rows.push(vec![
                dst.to_string(),
                plist.join(" "),
                acc.flows.to_string(),
                acc.rejected.to_string(),
                acc.short.to_string(),
            ]);
        }
        Some(Finding {
            id: finding_id(DetectorId::LateralMovement, src, incident),
            detector: DetectorId::LateralMovement,
            severity: Severity::new(score.round() as u32),
            confidence: confidence.round().min(100.0) as u8,
            title: if is_sweep {
                format!(
                    "Internal admin-port sweep: {label} reached {hosts} new hosts in {} minutes",
                    (window + w - span_start) / 60
                )
            } else {
                format!("Internal port scan: {label} probed {scan_ports} ports of {scan_host}")
            },
            description,
            entities,
            window_start: span_start,
            window_end: window + w,
            observed: vec![
                Measure {
                    name: "new_admin_hosts".into(),
                    value: hosts as f64,
                    unit: "hosts".into(),
                },
                Measure {
                    name: "max_new_ports_one_host".into(),
                    value: scan_ports as f64,
                    unit: "ports".into(),
                },
                Measure {
                    name: "rejected_fraction".into(),
                    value: rej_frac,
                    unit: "ratio".into(),
                },
                Measure {
                    name: "short_flow_fraction".into(),
                    value: short_frac,
                    unit: "ratio".into(),
                },
            ],
            baseline: vec![Measure {
                name: "known_peers".into(),
                value: known.map_or(0, |k| k.peers.values().map(BTreeMap::len).sum::<usize>())
                    as f64,
                unit: "host-ports".into(),
            }],
            evidence: Evidence {
                columns: ["destination", "ports", "flows", "rejected", "short_flows"]
                    .map(String::from)
                    .to_vec(),
                rows,
            },
            recommendation: format!(
                "Find the process on {label} that opened these connections (EDR, process \
                 accounting, SSM session logs). If it is not a sanctioned scanner or config \
                 tool, isolate the instance and check the reached hosts for logins from it. \
                 A sanctioned tool belongs in allow.cidrs."
            ),
            account_id: account,
            region,
        })
    }

    fn remember(&mut self, window: i64, src: &str, peers: &Peers) {
        let cfg = &self.cfg;
        let horizon = window - cfg.history_windows as i64 * cfg.window_secs;
        let known = self.state.known.entry(src.to_string()).or_default();
        known.since = Some(known.since.map_or(window, |s| s.min(window)));
        for (dst, ports) in peers {
            for (port, acc) in ports {
                // Rejected-only attempts never make a peer "known".
                if acc.rejected < acc.flows {
                    known
                        .peers
                        .entry(dst.clone())
                        .or_default()
                        .entry(*port)
                        .and_modify(|s| s.last = s.last.max(window))
                        .or_insert(Seen {
                            first: window,
                            last: window,
                        });
                }
            }
        }
        // Forget old peers, then the least recently seen beyond the cap.
        known.peers.retain(|_, ports| {
            ports.retain(|_, s| s.last >= horizon);
            !ports.is_empty()
        });
        let total: usize = known.peers.values().map(BTreeMap::len).sum();
        if total > cfg.max_known_peers {
            let mut all: Vec<(i64, String, i32)> = known
                .peers
                .iter()
                .flat_map(|(d, ps)| ps.iter().map(move |(p, s)| (s.last, d.clone(), *p)))
                .collect();
            all.sort();
            for (_, d, p) in all.into_iter().take(total - cfg.max_known_peers) {
                if let Some(ps) = known.peers.get_mut(&d) {
                    ps.remove(&p);
                    if ps.is_empty() {
                        known.peers.remove(&d);
                    }
                }
            }
        }
        known.previous = Some((window, peers.clone()));
    }
}

impl Detector for Lateral {
    fn id(&self) -> DetectorId {
        DetectorId::LateralMovement
    }

    fn input(&self) -> LogKind {
        LogKind::Flows
    }

    fn observe(&mut self, chunk: &Chunk<'_>) -> Result<()> {
        let (rows, learned) = chunk.flows()?;
        self.state.inventory.absorb(learned);
        let w = self.cfg.window_secs;
        // Initiators' TCP/UDP records between two private addresses, per (window,
        // source, destination, service port): flows, rejected, short.
        let mut window = WindowOf::new(w);
        let groups = rows.aggregate(
            fact::TCP_OR_UDP | fact::SRC_PRIVATE | fact::DST_PRIVATE,
            fact::ALLOWED | fact::RESPONSE,
            |i| {
                if rows.src[i] == rows.dst[i] {
                    return None;
                }
                let port = rows.svc_port(i).unwrap_or(0);
                Some((window.of(rows.start(i)?), rows.src[i], rows.dst[i], port))
            },
            |acc: &mut Acc, i| {
                acc.flows += 1;
                acc.rejected += u64::from(rows.is(i, fact::REJECT, 0));
                acc.short += u64::from(rows.is(i, fact::SHORT, 0));
            },
        );
        for ((win, s, d, port), acc) in groups {
            let (Some(s), Some(d)) = (rows.name(s), rows.name(d)) else {
                continue;
            };
            let Some(open) = self.state.windows.slot(win, acc.flows) else {
                continue;
            };
            slot(slot(open, s), d).entry(port).or_default().merge(acc);
        }
        Ok(())
    }

    fn flush(&mut self, watermark: i64, _: &Names) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, srcs) in self.state.windows.close(watermark, w) {
            for (src, peers) in &srcs {
                let prev = self
                    .state
                    .known
                    .get(src)
                    .and_then(|k| k.previous.as_ref())
                    .filter(|(pw, _)| *pw == start - w);
                let (span, span_start) = match prev {
                    Some((pw, pp)) => {
                        let mut u = pp.clone();
                        merge_map(&mut u, peers.clone());
                        (u, *pw)
                    }
                    None => (peers.clone(), start),
                };
                // A sweep that goes on from the previous window updates its finding
                // (same id, its first start), when it has grown.
                let known = self.state.known.get(src);
                let going_on = known
                    .and_then(|k| k.alerted)
                    .filter(|(last, _)| *last >= start - w);
                let incident = going_on.map_or(start, |(_, first)| first);
                let reported = going_on.and(known.and_then(|k| k.reported));
                if let Some(mut f) = self.judge(start, src, &span, span_start, incident) {
                    let count = f.observed[0].value;
                    let grown = reported.is_none_or(|(_, peak)| count >= peak);
                    let known = self.state.known.entry(src.clone()).or_default();
                    known.alerted = Some((start, incident));
                    if grown {
                        if let Some((from, _)) = reported
                            && from < f.window_start
                        {
                            f.window_start = from;
                            f.description.push_str(&format!(
                                " The sweep began in the window from {}.",
                                render::time(from)
                            ));
                        }
                        known.reported = Some((f.window_start, count));
                        upsert(&mut out, f);
                    }
                }
            }
            for (src, peers) in &srcs {
                self.remember(start, src, peers);
            }
        }
        Ok(out)
    }

    state_methods!();
}
