//! Realistic VPC Flow Log and AWS WAF log objects, written in AWS's S3 layout.
//!
//! This crate is the oracle the engine's decoders are tested against, so it shares no
//! code with them: it renders records itself and writes a manifest of what it wrote
//! (records, byte and packet sums per object) for tests to compare with.
//!
//! The traffic is a small production VPC ([`topology`]): internet users browsing the
//! web tier, web → app → data calls across three AZs (each intra-VPC flow recorded by
//! both ENIs), app servers reaching the internet through NAT gateways, a monitoring host
//! scraping every host, admin SSH through a bastion, internet scanners rejected at the
//! edge. Each tier has its own subnet-level flow log, each in a different format:
//!
//! | tier | format | layout |
//! |---|---|---|
//! | web  | default v2 text, gzip | `AWSLogs/ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/` |
//! | app  | v5 custom order text, gzip | hive-style, hourly |
//! | data | parquet | hive-style |
//! | WAF  | JSON lines, gzip | `AWSLogs/ACCOUNT/WAFLogs/REGION/ACL/YYYY/MM/DD/HH/mm/` |

pub mod bench;
pub mod flow;
pub mod incidents;
pub mod topology;
pub mod waf;
pub mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use flow::{Conversation, Endpoint, FlowRecord, PARQUET_FORMAT, V2_FORMAT, V5_CUSTOM_FORMAT};
use topology::{ACCOUNT, REGION, Role, Tier, Topology};

/// Name of the manifest written at the top of the output folder (hidden, so scans of
/// the folder skip it).
pub const MANIFEST: &str = ".flowlens-manifest.json";

/// Length of one delivery window (AWS publishes flow-log and WAF files every 5 minutes).
pub const WINDOW_SECS: u64 = 300;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub out: PathBuf,
    /// First window start (UTC).
    pub start: DateTime<Utc>,
    pub hours: u32,
    pub seed: u64,
    /// Multiplies the number of conversations and requests per window.
    pub scale: f64,
    /// Adds the detectors' incidents and look-alikes ([`incidents`]).
    pub incidents: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            out: PathBuf::from("sample-logs/data"),
            start: DateTime::parse_from_rfc3339("2025-06-02T10:00:00Z")
                .expect("valid constant")
                .with_timezone(&Utc),
            hours: 1,
            seed: 1,
            scale: 1.0,
            incidents: true,
        }
    }
}

/// The format an object was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectFormat {
    V2Text,
    V5Text,
    Parquet,
    WafJson,
}

/// What one object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Path relative to the output folder (the S3 key, if uploaded as is).
    pub key: String,
    pub format: ObjectFormat,
    pub records: u64,
    /// Sum of the `bytes` field (flows) — a value check for decoders.
    pub sum_bytes: u64,
    pub sum_packets: u64,
    pub nodata: u64,
    pub skipdata: u64,
}

/// Everything the generator wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub objects: Vec<ObjectEntry>,
    pub flow_records: u64,
    pub waf_records: u64,
}

impl Manifest {
    /// Reads the manifest of a generated folder.
    pub fn read(dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(dir.join(MANIFEST))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }
}

/// One window's worth of traffic before rendering.
struct Window<'t> {
    start: u64,
    conversations: Vec<Conversation<'t>>,
    waf: Vec<(u64, String)>,
}

fn public_ip(rng: &mut SmallRng, pool: u32) -> String {
    // Documentation and ordinary public ranges, stable per pool index.
    let i = rng.random_range(0..pool);
    let blocks = [
        (198, 51, 100),
        (203, 0, 113),
        (81, 2, 69),
        (92, 40, 12),
        (151, 101, 1),
    ];
    let (a, b, c) = blocks[(i % blocks.len() as u32) as usize];
    format!("{a}.{b}.{}.{}", c + (i / 250) % 4, 1 + i % 250)
}

fn public_ip6(rng: &mut SmallRng) -> String {
    format!(
        "2001:db8:{:x}:{:x}::{:x}",
        rng.random_range(1..0xfff),
        rng.random_range(1..0xff),
        rng.random_range(1..0xffff)
    )
}

fn ephemeral(rng: &mut SmallRng) -> u16 {
    rng.random_range(32768..61000)
}

/// The baseline traffic of one window.
fn baseline<'t>(rng: &mut SmallRng, topo: &'t Topology, start: u64, scale: f64) -> Window<'t> {
    let n = |base: f64, rng: &mut SmallRng| -> usize {
        let x = base * scale * rng.random_range(0.8..1.2);
        x.round() as usize
    };
    let mut w = Window {
        start,
        conversations: Vec::new(),
        waf: Vec::new(),
    };
    let when = |rng: &mut SmallRng| {
        let s = start + rng.random_range(0..WINDOW_SECS - 60);
        (s, s + rng.random_range(2..60))
    };
    let webs = topo.with_role(Role::Web);
    let apps = topo.with_role(Role::App);
    let nats = topo.with_role(Role::Nat);
    let ep = |ip: String, port: u16, host| Endpoint { ip, port, host };

    // Internet users → web tier (HTTPS), with their WAF requests.
    for _ in 0..n(40.0, rng) {
        let ip = if rng.random_bool(0.05) {
            public_ip6(rng)
        } else {
            public_ip(rng, 400)
        };
        let web = webs[rng.random_range(0..webs.len())];
        let (s, e) = when(rng);
        let reqs = rng.random_range(1..4);
        for k in 0..reqs {
            w.waf.push((
                s * 1000 + k * 700,
                waf::request(rng, waf::Kind::Browse, &ip, s * 1000 + k * 700),
            ));
        }
        w.conversations.push(Conversation {
            client: ep(ip, ephemeral(rng), None),
            server: ep(web.ip.clone(), 443, Some(web)),
            protocol: 6,
            packets_out: 8 + reqs * 4,
            bytes_out: 900 + reqs * rng.random_range(300..1500),
            packets_back: 10 + reqs * 12,
            bytes_back: reqs * rng.random_range(8_000..120_000),
            start: s,
            end: e,
            accepted: true,
            nat: None,
        });
    }
    // Verified crawler, credential stuffing and probes: WAF only.
    for _ in 0..n(3.0, rng) {
        let ip = format!("66.249.66.{}", rng.random_range(1..200));
        let t = (start + rng.random_range(0..WINDOW_SECS)) * 1000;
        w.waf
            .push((t, waf::request(rng, waf::Kind::Crawler, &ip, t)));
    }
    for _ in 0..n(6.0, rng) {
        let ip = format!("185.220.101.{}", rng.random_range(1..40));
        let t = (start + rng.random_range(0..WINDOW_SECS)) * 1000;
        w.waf
            .push((t, waf::request(rng, waf::Kind::CredentialStuffing, &ip, t)));
    }
    for _ in 0..n(4.0, rng) {
        let ip = format!("45.155.205.{}", rng.random_range(1..250));
        let t = (start + rng.random_range(0..WINDOW_SECS)) * 1000;
        w.waf.push((t, waf::request(rng, waf::Kind::Probe, &ip, t)));
    }
    // Web → app (8080), often across AZs.
    for _ in 0..n(30.0, rng) {
        let web = webs[rng.random_range(0..webs.len())];
        let app = apps[rng.random_range(0..apps.len())];
        let (s, e) = when(rng);
        w.conversations.push(Conversation {
            client: ep(web.ip.clone(), ephemeral(rng), Some(web)),
            server: ep(app.ip.clone(), 8080, Some(app)),
            protocol: 6,
            packets_out: rng.random_range(6..40),
            bytes_out: rng.random_range(1_000..20_000),
            packets_back: rng.random_range(6..60),
            bytes_back: rng.random_range(2_000..150_000),
            start: s,
            end: e,
            accepted: true,
            nat: None,
        });
    }
    // App → data tier.
    let db = topo.with_role(Role::Db);
    let cache = topo.with_role(Role::Cache);
    for _ in 0..n(20.0, rng) {
        let app = apps[rng.random_range(0..apps.len())];
        let (server, port) = match rng.random_range(0..4) {
            0 => (cache[0], 6379),
            1 => (db[1], 5432),
            _ => (db[0], 5432),
        };
        let (s, e) = when(rng);
        w.conversations.push(Conversation {
            client: ep(app.ip.clone(), ephemeral(rng), Some(app)),
            server: ep(server.ip.clone(), port, Some(server)),
            protocol: 6,
            packets_out: rng.random_range(4..30),
            bytes_out: rng.random_range(500..8_000),
            packets_back: rng.random_range(4..80),
            bytes_back: rng.random_range(1_000..400_000),
            start: s,
            end: e,
            accepted: true,
            nat: None,
        });
    }
    // App → internet APIs through the AZ's NAT gateway.
    for _ in 0..n(8.0, rng) {
        let app = apps[rng.random_range(0..apps.len())];
        let nat = nats[app.az];
        let (s, e) = when(rng);
        w.conversations.push(Conversation {
            client: ep(app.ip.clone(), ephemeral(rng), Some(app)),
            server: ep(
                format!(
                    "52.94.{}.{}",
                    rng.random_range(0..8),
                    rng.random_range(1..250)
                ),
                443,
                None,
            ),
            protocol: 6,
            packets_out: rng.random_range(5..30),
            bytes_out: rng.random_range(800..12_000),
            packets_back: rng.random_range(5..40),
            bytes_back: rng.random_range(1_000..60_000),
            start: s,
            end: e,
            accepted: true,
            nat: Some(nat),
        });
    }
    // Monitoring scrapes every instance (node exporter) once per window.
    let mon = topo.by_name("monitoring").expect("topology has monitoring");
    for target in topo
        .hosts
        .iter()
        .filter(|h| h.instance.is_some() && h.name != "monitoring")
    {
        let (s, e) = when(rng);
        w.conversations.push(Conversation {
            client: ep(mon.ip.clone(), ephemeral(rng), Some(mon)),
            server: ep(target.ip.clone(), 9100, Some(target)),
            protocol: 6,
            packets_out: 6,
            bytes_out: 420,
            packets_back: 8,
            bytes_back: rng.random_range(9_000..14_000),
            start: s,
            end: e,
            accepted: true,
            nat: None,
        });
    }
    // An admin's SSH session through the bastion, now and then.
    let bastion = topo.by_name("bastion").expect("topology has a bastion");
    if rng.random_bool(0.3) {
        let (s, e) = when(rng);
        let target = apps[rng.random_range(0..apps.len())];
        w.conversations.push(Conversation {
            client: ep("198.51.100.77".into(), ephemeral(rng), None),
            server: ep(bastion.ip.clone(), 22, Some(bastion)),
            protocol: 6,
            packets_out: 60,
            bytes_out: 7_000,
            packets_back: 70,
            bytes_back: 24_000,
            start: s,
            end: e,
            accepted: true,
            nat: None,
        });
        w.conversations.push(Conversation {
            client: ep(bastion.ip.clone(), ephemeral(rng), Some(bastion)),
            server: ep(target.ip.clone(), 22, Some(target)),
            protocol: 6,
            packets_out: 50,
            bytes_out: 6_000,
            packets_back: 60,
            bytes_back: 20_000,
            start: s,
            end: e,
            accepted: true,
            nat: None,
        });
    }
    // Internet scanners, rejected at the edge (security groups).
    for _ in 0..n(15.0, rng) {
        let target = webs[rng.random_range(0..webs.len())];
        let port = [22, 23, 3389, 445, 8080, 5900, 6379][rng.random_range(0..7)];
        let (s, e) = when(rng);
        w.conversations.push(Conversation {
            client: ep(
                format!("45.155.205.{}", rng.random_range(1..250)),
                ephemeral(rng),
                None,
            ),
            server: ep(target.ip.clone(), port, Some(target)),
            protocol: 6,
            packets_out: rng.random_range(1..3),
            bytes_out: 44 * rng.random_range(1..3),
            packets_back: 0,
            bytes_back: 0,
            start: s,
            end: e,
            accepted: false,
            nat: None,
        });
    }
    w
}

fn tier_of(records: &FlowRecord, topo: &Topology) -> Option<Tier> {
    topo.hosts
        .iter()
        .find(|h| h.eni == records.interface_id)
        .map(|h| h.tier)
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%MZ").to_string()
}

fn hash8(seed: u64, name: &str) -> String {
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf29ce484222325 ^ seed;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", h as u32)
}

/// The flow records of the baseline traffic, in generation order, without writing
/// anything (benchmarks build large objects from them).
pub fn flow_records(cfg: &Config) -> Vec<FlowRecord> {
    let topo = Topology::default();
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let windows = cfg.hours as u64 * 3600 / WINDOW_SECS;
    let t0 = cfg.start.timestamp() as u64;
    let mut out = Vec::new();
    for wi in 0..windows {
        let w = baseline(&mut rng, &topo, t0 + wi * WINDOW_SECS, cfg.scale);
        out.extend(
            w.conversations
                .iter()
                .flat_map(FlowRecord::from_conversation),
        );
    }
    out
}

/// Generates the objects and the manifest; returns the manifest.
///
/// # Errors
/// Writing a file failed.
pub fn generate(cfg: &Config) -> std::io::Result<Manifest> {
    let topo = Topology::default();
    let mut rng = SmallRng::seed_from_u64(cfg.seed);
    let mut manifest = Manifest::default();
    let windows = cfg.hours as u64 * 3600 / WINDOW_SECS;
    let t0 = cfg.start.timestamp() as u64;
    for wi in 0..windows {
        let start = t0 + wi * WINDOW_SECS;
        let mut w = baseline(&mut rng, &topo, start, cfg.scale);
        if cfg.incidents {
            incidents::add(
                &mut rng,
                &topo,
                incidents::Plan { windows },
                wi,
                start,
                &mut w.conversations,
                &mut w.waf,
            );
        }
        let t = DateTime::from_timestamp(w.start as i64, 0).expect("valid time");
        let (y, m, d, h) = (t.year(), t.month(), t.day(), t.hour());

        let mut by_tier: BTreeMap<u8, Vec<FlowRecord>> = BTreeMap::new();
        for c in &w.conversations {
            for r in FlowRecord::from_conversation(c) {
                let tier = tier_of(&r, &topo).expect("records are written by VPC interfaces");
                by_tier.entry(tier as u8).or_default().push(r);
            }
        }
        // Idle interfaces report NODATA; now and then a SKIPDATA window.
        for host in &topo.hosts {
            let busy = by_tier
                .get(&(host.tier as u8))
                .is_some_and(|rs| rs.iter().any(|r| r.interface_id == host.eni));
            if !busy {
                by_tier
                    .entry(host.tier as u8)
                    .or_default()
                    .push(FlowRecord::nodata(host, start, start + WINDOW_SECS - 1));
            } else if rng.random_bool(0.01) {
                let mut r = FlowRecord::nodata(host, start, start + WINDOW_SECS - 1);
                r.log_status = "SKIPDATA";
                by_tier.entry(host.tier as u8).or_default().push(r);
            }
        }

        let prefix_default = format!("AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{y:04}/{m:02}/{d:02}");
        let prefix_hive = format!(
            "AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/aws-region={REGION}/year={y:04}/month={m:02}/day={d:02}"
        );
        let file = |fl: &str, ext: &str| {
            let base = format!("{ACCOUNT}_vpcflowlogs_{REGION}_{fl}_{}", stamp(t));
            format!("{base}_{}.{ext}", hash8(cfg.seed, &base))
        };
        for (tier, records) in by_tier {
            let (key, format) = match tier {
                t if t == Tier::Web as u8 => (
                    format!(
                        "{prefix_default}/{}",
                        file("fl-0e1b2a3c4d5e6f701", "log.gz")
                    ),
                    ObjectFormat::V2Text,
                ),
                t if t == Tier::App as u8 => (
                    format!(
                        "{prefix_hive}/hour={h:02}/{}",
                        file("fl-0a2b3c4d5e6f70812", "log.gz")
                    ),
                    ObjectFormat::V5Text,
                ),
                _ => (
                    format!(
                        "{prefix_hive}/{}",
                        file("fl-0d3c4b5a6f7e80923", "log.parquet")
                    ),
                    ObjectFormat::Parquet,
                ),
            };
            let path = cfg.out.join(&key);
            match format {
                ObjectFormat::V2Text => write::text_gz(&path, V2_FORMAT, 2, &records)?,
                ObjectFormat::V5Text => write::text_gz(&path, V5_CUSTOM_FORMAT, 5, &records)?,
                _ => write::parquet(&path, PARQUET_FORMAT, &records)?,
            }
            manifest.flow_records += records.len() as u64;
            manifest.objects.push(ObjectEntry {
                key,
                format,
                records: records.len() as u64,
                sum_bytes: records.iter().filter_map(|r| r.bytes).sum(),
                sum_packets: records.iter().filter_map(|r| r.packets).sum(),
                nodata: records.iter().filter(|r| r.log_status == "NODATA").count() as u64,
                skipdata: records
                    .iter()
                    .filter(|r| r.log_status == "SKIPDATA")
                    .count() as u64,
            });
        }

        let mut waf = w.waf;
        waf.sort_by_key(|(ts, _)| *ts);
        let base = format!("{ACCOUNT}_waflogs_{REGION}_{}_{}", waf::WEB_ACL, stamp(t));
        let key = format!(
            "AWSLogs/{ACCOUNT}/WAFLogs/{REGION}/{}/{y:04}/{m:02}/{d:02}/{h:02}/{:02}/{base}_{}.log.gz",
            waf::WEB_ACL,
            t.minute(),
            hash8(cfg.seed, &base)
        );
        let lines: Vec<String> = waf.into_iter().map(|(_, l)| l).collect();
        write::lines_gz(&cfg.out.join(&key), &lines)?;
        manifest.waf_records += lines.len() as u64;
        manifest.objects.push(ObjectEntry {
            key,
            format: ObjectFormat::WafJson,
            records: lines.len() as u64,
            sum_bytes: 0,
            sum_packets: 0,
            nodata: 0,
            skipdata: 0,
        });
    }
    std::fs::create_dir_all(&cfg.out)?;
    std::fs::write(
        cfg.out.join(MANIFEST),
        serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?,
    )?;
    Ok(manifest)
}
