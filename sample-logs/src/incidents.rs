//! The detectors' incidents and their benign look-alikes, on top of the baseline
//! traffic. Every incident is placed relative to the generated period so that the
//! detectors have earlier windows to learn from:
//!
//! | detector | incident | look-alikes |
//! |---|---|---|
//! | exfiltration-spike | `app-5` sends 4 GB through its NAT gateway in the 10 minutes 20 minutes before the end | `backup` sends 350 MB offsite every 5 minutes; web servers answer users |
//! | lateral-movement | `app-3` sweeps 30 addresses of the app subnets on 22/445/3389 over 8 minutes, mid-period | `monitoring` scrapes every host every window; the bastion's SSH sessions |
//! | cross-az-cost | `app-1` (use1-az1) pulls 15 GB per 5 minutes from `cache` (use1-az4) | web → app calls across AZs |
//! | scraping-bot | `203.0.113.77` (python-requests) walks product ids; 24 IPs sharing one JA4 crawl the catalogue | a verified Googlebot burst; blocked credential stuffing; browsers |
//! | public-exposure | `inference` accepts 8000/tcp from 24 internet addresses in the second half | the bastion's SSH from one admin address |

use rand::Rng;
use rand::rngs::SmallRng;

use crate::flow::{Conversation, Endpoint};
use crate::topology::{Role, Topology};
use crate::{WINDOW_SECS, waf};

/// Where the incidents sit in a generated period of `windows` 5-minute windows.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub windows: u64,
}

impl Plan {
    /// First 5-minute window of the exfiltration (aligned to 10 minutes).
    pub fn exfiltration(&self) -> u64 {
        self.windows.saturating_sub(4) & !1
    }

    pub fn lateral(&self) -> u64 {
        self.windows / 2
    }

    /// First 5-minute window of the scraping (aligned to 10 minutes).
    pub fn scraping(&self) -> u64 {
        self.windows.saturating_sub(6) & !1
    }
}

pub const EXFIL_DESTINATION: &str = "203.0.113.250";
pub const SCRAPER_IP: &str = "203.0.113.77";
pub const BACKUP_DESTINATION: &str = "198.51.100.200";

/// The crawl nodes' addresses.
pub fn crawl_ips() -> Vec<String> {
    (0..24)
        .map(|i| format!("81.2.{}.{}", 70 + i % 3, 10 + i * 7))
        .collect()
}

/// Adds the incidents and look-alikes of window `wi` (starting at `start`).
pub fn add<'t>(
    rng: &mut SmallRng,
    topo: &'t Topology,
    plan: Plan,
    wi: u64,
    start: u64,
    conversations: &mut Vec<Conversation<'t>>,
    waf_out: &mut Vec<(u64, String)>,
) {
    let host = |name: &str| topo.by_name(name).expect("topology host");
    let nat_of = |az: usize| topo.with_role(Role::Nat)[az];
    let ep = |ip: &str, port: u16, h| Endpoint {
        ip: ip.to_string(),
        port,
        host: h,
    };
    let eph = |rng: &mut SmallRng| rng.random_range(32768..61000u16);
    let at = |rng: &mut SmallRng| start + rng.random_range(0..WINDOW_SECS - 60);
    let conv =
        |client: Endpoint<'t>, server: Endpoint<'t>, s: u64, out: u64, back: u64, ok: bool, nat| {
            Conversation {
                client,
                server,
                protocol: 6,
                packets_out: (out / 1400).max(1),
                bytes_out: out,
                packets_back: (back / 1400).max(if ok { 1 } else { 0 }),
                bytes_back: back,
                start: s,
                end: s + 50,
                accepted: ok,
                nat,
            }
        };

    // Look-alike: a steady offsite backup through the NAT gateway, every window.
    let backup = host("backup");
    let s = at(rng);
    conversations.push(conv(
        ep(&backup.ip, eph(rng), Some(backup)),
        ep(BACKUP_DESTINATION, 443, None),
        s,
        350_000_000 + rng.random_range(0..20_000_000),
        2_000_000,
        true,
        Some(nat_of(backup.az)),
    ));

    // Cross-AZ: app-1 pulls from the cache in another AZ all the time.
    let app1 = host("app-1");
    let cache = host("cache");
    for _ in 0..5 {
        let s = at(rng);
        conversations.push(conv(
            ep(&app1.ip, eph(rng), Some(app1)),
            ep(&cache.ip, 6379, Some(cache)),
            s,
            40_000_000,
            3_000_000_000 + rng.random_range(0..100_000_000),
            true,
            None,
        ));
    }

    // Exfiltration: 4 GB from app-5 through its NAT gateway, over two windows.
    let e = plan.exfiltration();
    if wi == e || wi == e + 1 {
        let app5 = host("app-5");
        for _ in 0..4 {
            let s = at(rng);
            conversations.push(conv(
                ep(&app5.ip, eph(rng), Some(app5)),
                ep(EXFIL_DESTINATION, 443, None),
                s,
                500_000_000 + rng.random_range(0..1_000_000),
                3_000_000,
                true,
                Some(nat_of(app5.az)),
            ));
        }
    }

    // Lateral movement: app-3 sweeps the app subnets' addresses on admin ports.
    let l = plan.lateral();
    if wi == l || wi == l + 1 {
        let app3 = host("app-3");
        let half = if wi == l { 0..15 } else { 15..30 };
        for i in half {
            let ip = format!("10.0.{}.{}", 10 + i % 3, 20 + i / 3);
            if ip == app3.ip {
                continue;
            }
            let target = topo.hosts.iter().find(|h| h.ip == ip);
            for port in [22u16, 445, 3389] {
                let s = at(rng);
                conversations.push(Conversation {
                    packets_out: 1,
                    bytes_out: 60,
                    packets_back: 0,
                    bytes_back: 0,
                    ..conv(
                        ep(&app3.ip, eph(rng), Some(app3)),
                        ep(&ip, port, target),
                        s,
                        60,
                        0,
                        false,
                        None,
                    )
                });
            }
        }
    }

    // Public exposure: the inference server answers on 8000 to internet addresses.
    if wi >= plan.windows / 2 {
        let inference = host("inference");
        for k in 0..3 {
            let n = (wi - plan.windows / 2) * 3 + k;
            let client = format!("92.40.{}.{}", 100 + n % 8, 10 + n % 24 * 9);
            let s = at(rng);
            conversations.push(conv(
                ep(&client, eph(rng), None),
                ep(&inference.ip, 8000, Some(inference)),
                s,
                3_000,
                40_000,
                true,
                None,
            ));
        }
    }

    // WAF: the single scraper and the distributed crawl, in one 10-minute window.
    let sc = plan.scraping();
    if wi == sc || wi == sc + 1 {
        let base = if wi == sc { 1000 } else { 1700 };
        for k in 0..700u64 {
            let t = start * 1000 + k * (WINDOW_SECS * 1000 / 700);
            waf_out.push((
                t,
                waf::request(
                    rng,
                    waf::Kind::Scraper {
                        id: base + k as u32,
                    },
                    SCRAPER_IP,
                    t,
                ),
            ));
        }
        for ip in crawl_ips() {
            for _ in 0..25 {
                let t = start * 1000 + rng.random_range(0..WINDOW_SECS * 1000);
                waf_out.push((t, waf::request(rng, waf::Kind::StealthCrawler, &ip, t)));
            }
        }
    }
    // Look-alikes: a verified Googlebot burst and blocked credential stuffing.
    if wi == plan.lateral() {
        for _ in 0..400 {
            let t = start * 1000 + rng.random_range(0..WINDOW_SECS * 1000);
            let ip = format!("66.249.66.{}", rng.random_range(1..200));
            waf_out.push((t, waf::request(rng, waf::Kind::Crawler, &ip, t)));
        }
        for _ in 0..600 {
            let t = start * 1000 + rng.random_range(0..WINDOW_SECS * 1000);
            let ip = format!("185.220.101.{}", rng.random_range(1..40));
            waf_out.push((t, waf::request(rng, waf::Kind::CredentialStuffing, &ip, t)));
        }
    }
}
