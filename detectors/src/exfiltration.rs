//! `exfiltration-spike`: bytes an entity sends to public addresses per window, against
//! that entity's own robust baseline.
//!
//! The entity is the packet-level source: the private host itself, also when its
//! traffic leaves through a NAT gateway (`pkt_srcaddr`). A flow through NAT is logged
//! by both the host's and the gateway's interface; per destination the larger of the
//! two counts, so it is counted once, and either log alone is enough.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use polars::prelude::PlRandomState;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::Result;
use crate::config::{Config, ExfiltrationConfig};
use crate::detector::{Chunk, Detector, state_from_json, state_to_json};
use crate::flat::{self, FlatKey, FlatMap};
use crate::inventory::Inventory;
use crate::names::{NONE, Names};
use crate::prepare::{WindowOf, fact};
use crate::render;
use crate::stats::{Episodes, History, Merge, Update, Windows, merge_map};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PeerAcc {
    direct: u64,
    nat: u64,
    direct_flows: u64,
    nat_flows: u64,
}

impl Merge for PeerAcc {
    fn merge(&mut self, o: Self) {
        self.direct.merge(o.direct);
        self.nat.merge(o.nat);
        self.direct_flows.merge(o.direct_flows);
        self.nat_flows.merge(o.nat_flows);
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

/// Service port → bytes of one destination. Nearly always one port: kept inline (no
/// allocation) and in port order, rather than in a B-tree (a ~400-byte node per
/// destination, which made the detector's state, and its time, grow with every new
/// peer). Saved as the map it stands for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<i32, PeerAcc>", into = "BTreeMap<i32, PeerAcc>")]
struct Ports(SmallVec<[(i32, PeerAcc); 1]>);

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

/// One entity in one window, as saved: destination → service port → bytes, and the
/// interfaces that logged the entity's own egress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SavedWin {
    peers: BTreeMap<String, Ports>,
    enis: BTreeSet<String>,
}

impl Merge for SavedWin {
    fn merge(&mut self, o: Self) {
        merge_map(&mut self.peers, o.peers);
        self.enis.extend(o.enis);
    }
}

/// The detector's state as saved (and merged across shards).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    /// window → entity → its egress.
    windows: Windows<BTreeMap<String, SavedWin>>,
    history: BTreeMap<String, History>,
    inventory: Inventory,
    /// Entities reported in the window before: egress that goes on is one finding,
    /// updated while it does not weaken.
    #[serde(default)]
    episodes: Episodes,
}

impl Merge for Saved {
    fn merge(&mut self, o: Self) {
        self.windows.merge(o.windows);
        merge_map(&mut self.history, o.history);
        self.inventory.merge(o.inventory);
        self.episodes.merge(o.episodes);
    }
}

/// A [`PeerAcc`] in an open window, its flow counts 32-bit (saturating; a window of
/// minutes cannot log 4 billion flows to one destination): 24 bytes, so that a table
/// entry with its key is 32 bytes, two to a cache line.
#[derive(Debug, Clone, Copy, Default)]
struct LiveAcc {
    direct: u64,
    nat: u64,
    direct_flows: u32,
    nat_flows: u32,
}

impl LiveAcc {
    fn bytes(&self) -> u64 {
        self.direct.max(self.nat)
    }

    fn save(&self) -> PeerAcc {
        PeerAcc {
            direct: self.direct,
            nat: self.nat,
            direct_flows: self.direct_flows.into(),
            nat_flows: self.nat_flows.into(),
        }
    }

    fn load(a: &PeerAcc) -> Self {
        let flows = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        LiveAcc {
            direct: a.direct,
            nat: a.nat,
            direct_flows: flows(a.direct_flows),
            nat_flows: flows(a.nat_flows),
        }
    }
}

/// One entity in one window while it is open: destinations and interfaces by the
/// run's name codes ([`Names`]). An entity can have thousands of destinations in a
/// window, and every row it sends looks one up, which is most of this detector's time
/// (a cache miss per row): the table is keyed by (destination, service port) with
/// 32-byte entries, where it was keyed by destination with a vector of ports (56-byte
/// entries), and each entry holds its key ([`FlatMap`]: one line to load, not a control
/// group and then a bucket).
#[derive(Debug, Clone, Default)]
struct Win {
    /// (destination, service port) → bytes and flows.
    peers: FlatMap<PeerKey, LiveAcc>,
    /// Interfaces that logged the entity's own egress (a few).
    enis: SmallVec<[u32; 2]>,
}

impl Win {
    /// Bytes sent in the window, each flow counted once.
    fn bytes(&self) -> u64 {
        self.peers
            .values()
            .fold(0, |sum: u64, acc| sum.saturating_add(acc.bytes()))
    }
}

/// A destination's name code and a service port, as one word (a [`FlatMap`] key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerKey(u64);

impl PeerKey {
    fn new(peer: u32, port: i32) -> Self {
        PeerKey(u64::from(peer) << 32 | u64::from(port as u32))
    }

    fn peer(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn port(self) -> i32 {
        self.0 as u32 as i32
    }
}

impl FlatKey for PeerKey {
    /// The destination [`NONE`], never a row's peer.
    const EMPTY: PeerKey = PeerKey(u64::MAX);

    #[inline]
    fn hash(self) -> u64 {
        flat::mix(self.0)
    }
}

/// The open windows by entity code.
type Ents = HashMap<u32, Win, PlRandomState>;

/// The detector's state while it runs: open windows keyed by the run's name codes.
/// The registry's [`Names`] outlive every chunk, so a destination met again costs no
/// text hash (the detector once interned every destination again into atoms of its
/// own: a quarter of its time, most destinations being one-off IPv6 addresses, session
/// 31). Saving, restoring and merging go through texts; when the registry starts its
/// codes over, the open windows are re-keyed ([`Detector::rename`]).
#[derive(Debug, Clone, Default)]
struct State {
    /// window → entity → its egress.
    windows: Windows<Ents>,
    history: BTreeMap<String, History>,
    inventory: Inventory,
    episodes: Episodes,
    /// Whether each code met so far names an allowed destination.
    allowed: AllowedCodes,
}

/// Code → whether it names an allowed destination ([`KEEP`], [`SKIP`], or
/// [`UNJUDGED`] yet), for the epoch of the names ([`Names::epoch`]) it was filled
/// under. Unused without allowed destinations.
#[derive(Debug, Clone, Default)]
struct AllowedCodes {
    epoch: Option<u64>,
    judged: Vec<u8>,
}

const UNJUDGED: u8 = 0;
const KEEP: u8 = 1;
const SKIP: u8 = 2;

impl State {
    fn save(&self, names: &Names) -> Saved {
        let text = |code: &u32| names.get(*code).to_string();
        let win = |w: &Win| {
            let mut peers: BTreeMap<String, Ports> = BTreeMap::new();
            for (k, acc) in w.peers.iter() {
                *crate::rows::slot(&mut peers, names.get(k.peer())).entry(k.port()) = acc.save();
            }
            SavedWin {
                peers,
                enis: w.enis.iter().map(text).collect(),
            }
        };
        let open = self.windows.open.iter().map(|(start, ents)| {
            let ents = ents.iter().map(|(e, w)| (text(e), win(w))).collect();
            (*start, ents)
        });
        Saved {
            windows: self.windows.with_open(open.collect()),
            history: self.history.clone(),
            inventory: self.inventory.clone(),
            episodes: self.episodes.clone(),
        }
    }

    /// The state of `saved`, its texts coded by `names` (interned if new).
    fn load(mut saved: Saved, names: &mut Names) -> State {
        let open = std::mem::take(&mut saved.windows.open)
            .into_iter()
            .map(|(start, ents)| {
                let ents = ents
                    .into_iter()
                    .map(|(e, w)| {
                        let mut peers = FlatMap::default();
                        for (p, ports) in w.peers {
                            let p = names.intern(&p);
                            for (port, acc) in ports.iter() {
                                peers.insert_new(PeerKey::new(p, port), LiveAcc::load(acc));
                            }
                        }
                        let win = Win {
                            peers,
                            enis: w.enis.iter().map(|e| names.intern(e)).collect(),
                        };
                        (names.intern(&e), win)
                    })
                    .collect();
                (start, ents)
            })
            .collect();
        State {
            windows: saved.windows.with_open(open),
            history: saved.history,
            inventory: saved.inventory,
            episodes: saved.episodes,
            allowed: AllowedCodes::default(),
        }
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

    fn judge(&self, window: i64, entity: &str, win: &Win, names: &Names) -> Option<Finding> {
        let cfg = &self.cfg;
        let w = cfg.window_secs;
        let observed = win.bytes();
        if observed < cfg.min_bytes {
            return None;
        }
        let (first, windows_on) = self.state.episodes.run(entity, window, w);
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

        let mut peers: Vec<(&str, i32, PeerAcc)> = win
            .peers
            .iter()
            .map(|(k, acc)| (names.get(k.peer()), k.port(), acc.save()))
            .collect();
        peers.sort_by(|a, b| {
            b.2.bytes()
                .cmp(&a.2.bytes())
                .then(a.0.cmp(b.0))
                .then(a.1.cmp(&b.1))
        });
        let (top_peer, top_port, top_acc) = (peers[0].0, peers[0].1, &peers[0].2);
        let eni = win
            .enis
            .iter()
            .map(|e| names.get(*e))
            .min()
            .or_else(|| self.state.inventory.eni_of(entity))
            .map(str::to_string);
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
            let e = Entity::peer(EntityKind::Ip, *p);
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
        let destinations = {
            let mut d: Vec<u32> = win.peers.iter().map(|(k, _)| k.peer()).collect();
            d.sort_unstable();
            d.dedup();
            d.len()
        };
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
             Top destination {top_peer}:{top_port} received {} in {} flow{}.{}",
            render::bytes(x),
            if destinations == 1 { "" } else { "s" },
            render::window(window, window + w),
            render::bytes(top_acc.bytes() as f64),
            top_acc.flows(),
            if top_acc.flows() == 1 { "" } else { "s" },
            render::going_on("Reported", first, windows_on),
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
            id: finding_id(DetectorId::ExfiltrationSpike, entity, first),
            detector: DetectorId::ExfiltrationSpike,
            severity: Severity::new(score),
            confidence,
            title: format!(
                "{}: {label} sent {} to the internet in {} minutes",
                // Without a baseline there is no spike to speak of, only a volume.
                if has_baseline {
                    "Egress spike"
                } else {
                    "High egress, no baseline yet"
                },
                render::bytes(x),
                w / 60
            ),
            description,
            entities,
            window_start: first,
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
                Measure {
                    name: "windows_reported".into(),
                    value: windows_on as f64,
                    unit: "windows".into(),
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
        // Whether a destination is allowed, judged once per code and epoch (only if
        // any is).
        let names = rows.names();
        let State {
            windows, allowed, ..
        } = &mut self.state;
        let allowlist = &self.cfg.allowed_destinations;
        if !allowlist.is_empty() {
            if allowed.epoch != Some(names.epoch()) {
                *allowed = AllowedCodes {
                    epoch: Some(names.epoch()),
                    judged: Vec::new(),
                };
            }
            allowed.judged.resize(names.len(), UNJUDGED);
        }
        let mut skip = |code: u32| {
            if allowlist.is_empty() {
                return false;
            }
            let j = &mut allowed.judged[code as usize];
            if *j == UNJUDGED {
                *j = if allowlist.contains_str(names.get(code)) {
                    SKIP
                } else {
                    KEEP
                };
            }
            *j == SKIP
        };
        // Accepted egress from a private packet-level source to a public destination,
        // folded row by row into the open windows: (window, entity) → (peer, service
        // port) → bytes and flows, direct or via NAT, and the interfaces that logged
        // the entity's own egress. Folding each row where it lands costs a lookup of its
        // entity (a few per window) and of the peer in the entity's map (the window is
        // the row before's, nearly always); a group-by of the chunk first and a fold
        // of the groups cost a lookup keyed by six values per row and three per group
        // (`detectors/bench/README.md`, session 25).
        let mut window = WindowOf::new(w);
        // The open window of the row before (its start, and its entities unless it
        // was closed).
        let mut open: Option<(i64, Option<&mut Ents>)> = None;
        let mut late = 0;
        let kept = rows.kept(
            fact::ACCEPT | fact::PDST_PUBLIC | fact::PSRC_PRIVATE,
            forbid | fact::INGRESS | fact::OTHER_DIRECTION,
        );
        for i in kept {
            let (entity, peer) = (rows.psrc(i), rows.pdst(i));
            if entity == NONE || peer == NONE {
                continue;
            }
            let Some(start) = rows.start(i) else {
                continue;
            };
            if skip(peer) {
                continue;
            }
            let win = window.of(start);
            if open.as_ref().is_none_or(|(at, _)| *at != win) {
                open = Some((win, windows.slot(win, 0)));
            }
            let Some((_, Some(ents))) = open.as_mut() else {
                late += 1;
                continue;
            };
            let ent = ents.entry(entity).or_default();
            // The packet-level source differs from the interface's own address.
            let via_nat = rows.src[i] != NONE && entity != rows.src[i];
            let port = rows.svc_port(i).unwrap_or(0);
            let bytes = rows.bytes[i].max(0) as u64;
            let acc = ent.peers.entry_or_default(PeerKey::new(peer, port));
            if via_nat {
                acc.nat.merge(bytes);
                acc.nat_flows = acc.nat_flows.saturating_add(1);
            } else {
                acc.direct.merge(bytes);
                acc.direct_flows = acc.direct_flows.saturating_add(1);
                let eni = rows.eni[i];
                if eni != NONE && !ent.enis.contains(&eni) {
                    ent.enis.push(eni);
                }
            }
        }
        windows.late_rows += late;
        Ok(())
    }

    fn flush(&mut self, watermark: i64, names: &Names) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, ents) in self.state.windows.close(watermark, w) {
            let found: Vec<Finding> = ents
                .iter()
                .filter_map(|(e, win)| self.judge(start, names.get(*e), win, names))
                .collect();
            for f in dedup_nat(found) {
                // Egress that goes on is one finding: updated unless this window is
                // weaker than the one reported.
                // (The subject is the entity; a finding without one, which `judge` never
                // makes, is keyed by its id rather than lost.)
                let entity = f.subject(EntityKind::Ip).unwrap_or(&f.id).to_string();
                let episodes = &mut self.state.episodes;
                episodes.emit(&mut out, entity, start, w, f, Update::WhileAsStrong);
            }
            self.state.episodes.close(start);
            for (e, win) in ents {
                let entity = names.get(e).to_string();
                self.state.history.entry(entity).or_default().record(
                    start,
                    win.bytes(),
                    self.cfg.history_windows,
                );
            }
        }
        Ok(out)
    }

    fn state(&self, names: &Names) -> Result<serde_json::Value> {
        state_to_json(&self.state.save(names))
    }

    fn restore(&mut self, state: serde_json::Value, names: &mut Names) -> Result<()> {
        self.state = State::load(state_from_json(state)?, names);
        Ok(())
    }

    fn merge(&mut self, other: serde_json::Value, names: &mut Names) -> Result<()> {
        let mut saved = self.state.save(names);
        saved.merge(state_from_json(other)?);
        self.state = State::load(saved, names);
        Ok(())
    }

    fn rename(&mut self, old: &Names, new: &mut Names) {
        self.state = State::load(self.state.save(old), new);
    }
}

#[cfg(test)]
mod tests {
    use flowlens_model::LogKind;

    use crate::names::Names;
    use crate::testing::flows_batch;
    use crate::{Config, Detector, Registry};

    const HEADER: &str = "version account-id interface-id srcaddr dstaddr srcport dstport \
                          protocol packets bytes start end action log-status";

    fn only_exfiltration() -> Config {
        crate::testing::only(flowlens_model::finding::DetectorId::ExfiltrationSpike)
    }

    #[test]
    fn a_volume_without_a_baseline_is_not_called_a_spike() {
        let cfg = only_exfiltration();
        let bytes = 10 * cfg.exfiltration_spike.min_bytes + 1;
        let line = format!(
            "2 123456789012 eni-0aaa 10.0.0.5 203.0.113.9 40001 443 6 10 {bytes} 1700000000 \
             1700000060 ACCEPT OK"
        );
        let mut r = Registry::new(cfg);
        r.observe(LogKind::Flows, &flows_batch(HEADER, &[line.as_str()]))
            .unwrap();
        let found = r.flush(i64::MAX).unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .title
                .starts_with("High egress, no baseline yet: 10.0.0.5"),
            "{}",
            found[0].title
        );
        assert!(found[0].description.contains("with no baseline yet"));
    }

    // Allowed destinations send nothing to the windows, judged once per code and
    // again after the codes start over.
    #[test]
    fn allowed_destinations_are_left_out() {
        let mut cfg = only_exfiltration();
        cfg.exfiltration_spike.allowed_destinations =
            flowlens_model::net::CidrSet(vec!["203.0.113.0/24".parse().unwrap()]);
        let bytes = 10 * cfg.exfiltration_spike.min_bytes + 1;
        let batch = |t: i64| {
            let lines = [
                format!(
                    "2 123456789012 eni-0aaa 10.0.0.5 203.0.113.9 40001 443 6 10 {bytes} {t} {} ACCEPT OK",
                    t + 60
                ),
                format!(
                    "2 123456789012 eni-0bbb 10.0.0.6 198.51.100.1 40001 443 6 10 {bytes} {t} {} ACCEPT OK",
                    t + 60
                ),
            ];
            flows_batch(
                HEADER,
                &lines.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        };
        // A bound of one name: every chunk starts the codes over.
        let mut r = Registry::new(cfg).with_name_bound(1);
        for t in [1_700_000_000, 1_700_000_100] {
            r.observe(LogKind::Flows, &batch(t)).unwrap();
            r.state().unwrap();
        }
        let state = r.state().unwrap();
        let open = &state["detectors"]["exfiltration-spike"]["windows"]["open"]["1699999800"];
        assert_eq!(open.as_object().unwrap().len(), 1, "{open}");
        assert_eq!(
            open["10.0.0.6"]["peers"]["198.51.100.1"]["443"]["direct_flows"],
            2
        );
        let found = r.flush(i64::MAX).unwrap();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].title.contains("10.0.0.6"), "{}", found[0].title);
    }

    #[test]
    fn a_restored_registry_teaches_the_inventory_again() {
        let a = flows_batch(
            HEADER,
            &[
                "2 123456789012 eni-0aaa 10.0.0.5 203.0.113.9 40001 443 6 10 5000 1700000000 1700000060 ACCEPT OK",
            ],
        );
        let mut r = Registry::new(only_exfiltration());
        let empty = r.state().unwrap();
        r.observe(LogKind::Flows, &a).unwrap();
        let enis = |r: &mut Registry| {
            r.state().unwrap()["detectors"]["exfiltration-spike"]["inventory"]["enis"].clone()
        };
        assert!(enis(&mut r).get("eni-0aaa").is_some());
        // The state restored lacks the interface; the same rows teach it again.
        r.restore(empty).unwrap();
        assert!(enis(&mut r).get("eni-0aaa").is_none());
        r.observe(LogKind::Flows, &a).unwrap();
        assert!(enis(&mut r).get("eni-0aaa").is_some());
    }

    #[test]
    fn renaming_keeps_the_open_windows_and_drops_closed_texts() {
        let line = |i: u32, t: i64| {
            format!(
                "2 123456789012 eni-0aaa 10.0.0.5 203.0.{}.{} 40001 443 6 10 5000 {t} {} ACCEPT OK",
                i / 250,
                i % 250,
                t + 60
            )
        };
        // Window 1699999800 gets 300 destinations and closes; 1700000400 stays open.
        let closed: Vec<String> = (0..300).map(|i| line(i, 1_700_000_000)).collect();
        let open: Vec<String> = (0..3).map(|i| line(1000 + i, 1_700_000_500)).collect();
        let batch =
            |v: &[String]| flows_batch(HEADER, &v.iter().map(String::as_str).collect::<Vec<_>>());
        let mut r = Registry::new(only_exfiltration());
        r.observe(LogKind::Flows, &batch(&closed)).unwrap();
        r.observe(LogKind::Flows, &batch(&open)).unwrap();
        let state = r.state().unwrap()["detectors"]["exfiltration-spike"].clone();
        let mut d = super::Exfiltration::new(&only_exfiltration());
        let mut old = Names::default();
        d.restore(state, &mut old).unwrap();
        assert_eq!(old.len(), 300 + 3 + 2); // destinations, entity, interface
        d.flush(1_700_000_400, &old).unwrap();
        let before = d.state(&old).unwrap();
        // The names start over: the open window's texts only, under new codes.
        let mut new = Names::default();
        new.intern("198.51.100.1");
        d.rename(&old, &mut new);
        assert_eq!(new.len(), 1 + 3 + 2);
        assert_eq!(d.state(&new).unwrap(), before);
    }

    // A restored window's texts are interned into the run's names: the same entity,
    // destination and interface met again in rows take the same codes, and so fold
    // into the same accumulators.
    #[test]
    fn rows_after_a_restore_fold_into_the_restored_windows() {
        let a = flows_batch(
            HEADER,
            &[
                "2 123456789012 eni-0aaa 10.0.0.5 203.0.113.9 40001 443 6 10 5000 1700000000 1700000060 ACCEPT OK",
                "2 123456789012 eni-0aaa 10.0.0.5 2001:db8::7 40002 443 6 10 700 1700000010 1700000060 ACCEPT OK",
            ],
        );
        let mut one = Registry::new(only_exfiltration());
        one.observe(LogKind::Flows, &a).unwrap();
        let mut again = Registry::new(only_exfiltration());
        again.restore(one.state().unwrap()).unwrap();
        again.observe(LogKind::Flows, &a).unwrap();
        let state = again.state().unwrap();
        let win = &state["detectors"]["exfiltration-spike"]["windows"]["open"]["1699999800"];
        assert_eq!(win.as_object().unwrap().len(), 1, "{win}");
        let peers = &win["10.0.0.5"]["peers"];
        assert_eq!(peers.as_object().unwrap().len(), 2, "{peers}");
        assert_eq!(peers["203.0.113.9"]["443"]["direct"], 10_000);
        assert_eq!(peers["203.0.113.9"]["443"]["direct_flows"], 2);
        assert_eq!(peers["2001:db8::7"]["443"]["direct"], 1_400);
        assert_eq!(win["10.0.0.5"]["enis"], serde_json::json!(["eni-0aaa"]));
    }

    #[test]
    fn open_windows_survive_save_restore_and_merge() {
        let a = flows_batch(
            HEADER,
            &[
                "2 123456789012 eni-0aaa 10.0.0.5 203.0.113.9 40001 443 6 10 5000 1700000000 1700000060 ACCEPT OK",
                "2 123456789012 eni-0bbb 10.0.0.5 203.0.113.9 40002 443 6 10 7000 1700000010 1700000060 ACCEPT OK",
                "2 123456789012 eni-0aaa 10.0.0.5 198.51.100.1 40003 8443 6 10 900 1700000020 1700000060 ACCEPT OK",
            ],
        );
        let b = flows_batch(
            HEADER,
            &[
                "2 123456789012 eni-0ccc 10.0.0.6 203.0.113.9 40004 443 6 10 300 1700000030 1700000060 ACCEPT OK",
            ],
        );
        let (saved, merged) = crate::testing::restored_and_merged(
            flowlens_model::finding::DetectorId::ExfiltrationSpike,
            LogKind::Flows,
            &a,
            &b,
        );
        let win = &saved["windows"]["open"]["1699999800"]["10.0.0.5"];
        assert_eq!(win["enis"], serde_json::json!(["eni-0aaa", "eni-0bbb"]));
        assert_eq!(win["peers"]["203.0.113.9"]["443"]["direct"], 12000);
        assert_eq!(win["peers"]["198.51.100.1"]["8443"]["direct_flows"], 1);
        // The other shard's entity joins the window.
        let other = &merged["windows"]["open"]["1699999800"]["10.0.0.6"];
        assert_eq!(other["peers"]["203.0.113.9"]["443"]["direct"], 300);
    }
}
