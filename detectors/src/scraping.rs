//! `scraping-bot` (WAF logs): clients and fingerprint clusters that behave like
//! scrapers.
//!
//! Per client IP, and per fingerprint cluster (JA4, else JA3, else user agent) — a
//! distributed crawl of many modest IPs sharing one fingerprint is one finding that
//! lists its IPs. A bot score (0–100) adds up behaviour: automation user agents
//! (35 × share), no `Accept-Language` (15 ×), no `Referer` (5 ×), catalogue/search
//! pages (15 ×), distinct URIs per request (15 ×, from 50 distinct URIs), URIs ending
//! in a numeric id, i.e. enumeration (10 ×), and a rate three times `min_requests` (+5).
//! Bot Control's verified bots are informational; clients the web ACL already blocks
//! are LOW at most.

use std::collections::{BTreeMap, BTreeSet};

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use flowlens_model::waf::col as wc;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::config::{Config, ScrapingConfig};
use crate::detector::{Chunk, Detector, state_methods};
use crate::prepare::derived;
use crate::render;
use crate::rows::{ints, strs};
use crate::stats::{Distinct, Merge, Windows, merge_map, min_opt};

const SAMPLE_URIS: usize = 8;

/// One client IP with one fingerprint in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Client {
    requests: u64,
    blocked: u64,
    automation: u64,
    verified: u64,
    no_language: u64,
    no_referer: u64,
    catalogue: u64,
    numeric: u64,
    uris: Distinct,
    /// The smallest URIs, as examples.
    sample_uris: BTreeSet<String>,
    user_agents: BTreeMap<String, u64>,
    countries: BTreeSet<String>,
    web_acls: BTreeSet<String>,
    account: Option<String>,
    region: Option<String>,
}

impl Merge for Client {
    fn merge(&mut self, o: Self) {
        self.requests += o.requests;
        self.blocked += o.blocked;
        self.automation += o.automation;
        self.verified += o.verified;
        self.no_language += o.no_language;
        self.no_referer += o.no_referer;
        self.catalogue += o.catalogue;
        self.numeric += o.numeric;
        self.uris.merge(o.uris);
        self.sample_uris.extend(o.sample_uris);
        while self.sample_uris.len() > SAMPLE_URIS {
            self.sample_uris.pop_last();
        }
        merge_map(&mut self.user_agents, o.user_agents);
        self.countries.extend(o.countries);
        self.web_acls.extend(o.web_acls);
        min_opt(&mut self.account, o.account);
        min_opt(&mut self.region, o.region);
    }
}

/// A fingerprint cluster: its merged counters and its (ip, requests).
type Cluster<'a> = (Client, Vec<(&'a str, u64)>);

/// ip → fingerprint → client.
type Open = BTreeMap<String, BTreeMap<String, Client>>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    windows: Windows<Open>,
}

impl Merge for State {
    fn merge(&mut self, o: Self) {
        self.windows.merge(o.windows);
    }
}

pub struct Scraping {
    cfg: ScrapingConfig,
    state: State,
}

struct Score {
    score: f64,
    distinct: u64,
}

impl Scraping {
    pub fn new(cfg: &Config) -> Self {
        Scraping {
            cfg: cfg.scraping_bot.clone(),
            state: State::default(),
        }
    }

    fn score(&self, c: &Client, per_ip_requests: u64) -> Score {
        let r = c.requests.max(1) as f64;
        let distinct = c.uris.estimate();
        let mut s = 35.0 * c.automation as f64 / r
            + 15.0 * c.no_language as f64 / r
            + 5.0 * c.no_referer as f64 / r
            + 15.0 * c.catalogue as f64 / r
            + 10.0 * c.numeric as f64 / r;
        if distinct >= 50 {
            s += 15.0 * (distinct as f64 / r).min(1.0);
        }
        if per_ip_requests >= 3 * self.cfg.min_requests {
            s += 5.0;
        }
        Score {
            score: s.min(100.0),
            distinct,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        window: i64,
        key: String,
        subject: Entity,
        c: &Client,
        sc: &Score,
        ips: &[(&str, u64)],
        fingerprints: &[&str],
    ) -> Finding {
        let w = self.cfg.window_secs;
        let r = c.requests.max(1) as f64;
        let pct = |n: u64| 100.0 * n as f64 / r;
        let blocked_share = c.blocked as f64 / r;
        let verified_share = c.verified as f64 / r;
        let mut severity = sc.score;
        let mut note = String::new();
        if verified_share >= 0.9 {
            severity = 0.0;
            note = " AWS Bot Control labels it a verified bot.".into();
        } else if blocked_share >= 0.9 {
            severity = severity.min(30.0);
            note = " The web ACL already blocks it; check the rule keeps holding.".into();
        }
        let mut uas: Vec<(&String, &u64)> = c.user_agents.iter().collect();
        uas.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top_ua = uas.first().map_or("(none)", |(u, _)| u.as_str());
        let who = if ips.len() > 1 {
            format!(
                "{} client IPs sharing fingerprint {}",
                ips.len(),
                fingerprints.first().copied().unwrap_or("-")
            )
        } else {
            format!(
                "{} ({})",
                ips[0].0,
                fingerprints.first().copied().unwrap_or("-")
            )
        };
        let description = format!(
            "{who} sent {} requests in {} ({:.1}/s) to {} distinct URIs: {:.0}% catalogue or \
             search pages, {:.0}% ending in a numeric id; {:.0}% from automation user agents \
             (top: {}); {:.0}% without Accept-Language, {:.0}% without Referer; {:.0}% blocked \
             or challenged by the web ACL. Bot score {:.0} (threshold {}).{}{note}",
            c.requests,
            render::window(window, window + w),
            c.requests as f64 / w as f64,
            sc.distinct,
            pct(c.catalogue),
            pct(c.numeric),
            pct(c.automation),
            crate::render::clip(top_ua, 120),
            pct(c.no_language),
            pct(c.no_referer),
            100.0 * blocked_share,
            sc.score,
            self.cfg.min_score,
            if ips.len() > 1 {
                format!(" The busiest IP sent {} requests.", ips[0].1)
            } else {
                String::new()
            }
        );
        let mut entities = vec![subject];
        for f in fingerprints.iter().take(5) {
            let e = Entity::subject(EntityKind::Fingerprint, *f);
            if !entities.contains(&e) {
                entities.push(e);
            }
        }
        for acl in &c.web_acls {
            entities.push(Entity::peer(EntityKind::WebAcl, acl.as_str()));
        }
        if ips.len() > 1 {
            for (ip, _) in ips.iter().take(25) {
                entities.push(Entity::subject(EntityKind::Ip, *ip));
            }
        }
        let mut rows: Vec<Vec<String>> = ips
            .iter()
            .take(25)
            .map(|(ip, n)| vec!["client_ip".into(), ip.to_string(), n.to_string()])
            .collect();
        for u in &c.sample_uris {
            rows.push(vec!["uri".into(), u.clone(), String::new()]);
        }
        for (ua, n) in uas.iter().take(3) {
            rows.push(vec![
                "user_agent".into(),
                crate::render::clip(ua, 200),
                n.to_string(),
            ]);
        }
        Finding {
            id: finding_id(DetectorId::ScrapingBot, &key, window),
            detector: DetectorId::ScrapingBot,
            severity: Severity::new(severity.round() as u32),
            confidence: (sc.score.min(95.0)) as u8,
            title: if ips.len() > 1 {
                format!(
                    "Distributed crawl: {} IPs sharing one fingerprint sent {} requests in {} minutes",
                    ips.len(),
                    c.requests,
                    w / 60
                )
            } else {
                format!(
                    "Scraping client {} sent {} requests in {} minutes",
                    ips[0].0,
                    c.requests,
                    w / 60
                )
            },
            description,
            entities,
            window_start: window,
            window_end: window + w,
            observed: vec![
                Measure {
                    name: "requests".into(),
                    value: c.requests as f64,
                    unit: "requests".into(),
                },
                Measure {
                    name: "distinct_uris".into(),
                    value: sc.distinct as f64,
                    unit: "uris".into(),
                },
                Measure {
                    name: "client_ips".into(),
                    value: ips.len() as f64,
                    unit: "hosts".into(),
                },
                Measure {
                    name: "bot_score".into(),
                    value: sc.score,
                    unit: "score".into(),
                },
            ],
            baseline: vec![Measure {
                name: "min_requests".into(),
                value: if ips.len() > 1 {
                    self.cfg.min_cluster_requests
                } else {
                    self.cfg.min_requests
                } as f64,
                unit: "requests".into(),
            }],
            evidence: Evidence {
                columns: ["kind", "value", "requests"].map(String::from).to_vec(),
                rows,
            },
            recommendation: if ips.len() > 1 {
                "Add a rate-based rule keyed on the JA4 fingerprint (or the AWS Bot Control \
                 targeted rule group) to the web ACL, and a CAPTCHA or challenge on catalogue \
                 and search paths. If the crawler is a partner, list its fingerprint in \
                 allow.fingerprints."
                    .into()
            } else {
                "Rate-limit or block this client in the web ACL (rate-based rule, IP set), and \
                 challenge automation user agents on catalogue and search paths. If it is a \
                 sanctioned crawler, add it to allow.cidrs or allow.user_agents."
                    .into()
            },
            account_id: c.account.clone(),
            region: c.region.clone(),
        }
    }

    fn judge_window(&self, window: i64, open: &Open) -> Vec<Finding> {
        let cfg = &self.cfg;
        let mut out = Vec::new();
        let mut clusters: BTreeMap<&str, Cluster<'_>> = BTreeMap::new();
        for (ip, fps) in open {
            let mut all = Client::default();
            for (fp, c) in fps {
                all.merge(c.clone());
                let cl = clusters.entry(fp.as_str()).or_default();
                cl.0.merge(c.clone());
                cl.1.push((ip.as_str(), c.requests));
            }
            if all.requests < cfg.min_requests {
                continue;
            }
            let sc = self.score(&all, all.requests);
            if sc.score < cfg.min_score as f64 {
                continue;
            }
            let fps: Vec<&str> = fps.keys().map(String::as_str).collect();
            out.push(self.finding(
                window,
                format!("ip:{ip}"),
                Entity::subject(EntityKind::Ip, ip.as_str()),
                &all,
                &sc,
                &[(ip.as_str(), all.requests)],
                &fps,
            ));
        }
        for (fp, (c, mut ips)) in clusters {
            if (ips.len() as u64) < cfg.min_cluster_ips || c.requests < cfg.min_cluster_requests {
                continue;
            }
            ips.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            // One IP carrying most of it is a single client, reported above.
            if ips[0].1 * 2 > c.requests {
                continue;
            }
            let sc = self.score(&c, ips[0].1);
            if sc.score < cfg.min_score as f64 {
                continue;
            }
            out.push(self.finding(
                window,
                format!("fp:{fp}"),
                Entity::subject(EntityKind::Fingerprint, fp),
                &c,
                &sc,
                &ips,
                &[fp],
            ));
        }
        out
    }
}

impl Detector for Scraping {
    fn id(&self) -> DetectorId {
        DetectorId::ScrapingBot
    }

    fn input(&self) -> LogKind {
        LogKind::Waf
    }

    fn observe(&mut self, chunk: &Chunk<'_>) -> Result<()> {
        let w = self.cfg.window_secs;
        let base = chunk
            .waf()?
            .clone()
            .lazy()
            .filter(
                col(derived::ALLOWED)
                    .not()
                    .and(col(wc::CLIENT_IP).is_not_null()),
            )
            .with_column((col(derived::TS) - col(derived::TS) % lit(w)).alias("win"));
        let keys = [
            col("win"),
            col(wc::CLIENT_IP),
            col(derived::FINGERPRINT),
            col(wc::USER_AGENT),
            col(wc::COUNTRY),
            col(wc::WEBACL_ID),
            col(wc::ACCOUNT_ID),
            col(wc::REGION),
        ];
        let sum = |e: Expr, name: &str| e.cast(DataType::Int64).sum().alias(name);
        let agg = base
            .clone()
            .group_by(keys)
            .agg([
                len().alias("requests"),
                sum(col(derived::BLOCKED), "blocked"),
                sum(col(derived::AUTOMATION), "automation"),
                sum(col(derived::VERIFIED_BOT), "verified"),
                sum(col(wc::ACCEPT_LANGUAGE).is_null(), "no_language"),
                sum(col(wc::REFERER).is_null(), "no_referer"),
                sum(col(derived::CATALOGUE), "catalogue"),
                sum(col(derived::NUMERIC_TAIL), "numeric"),
            ])
            .collect()?;
        let uris = base
            .group_by([
                col("win"),
                col(wc::CLIENT_IP),
                col(derived::FINGERPRINT),
                col(wc::URI),
            ])
            .agg([len().alias("n")])
            .collect()?;

        let win = ints(&agg, "win")?;
        let ip = strs(&agg, wc::CLIENT_IP)?;
        let fp = strs(&agg, derived::FINGERPRINT)?;
        let ua = strs(&agg, wc::USER_AGENT)?;
        let country = strs(&agg, wc::COUNTRY)?;
        let acl = strs(&agg, wc::WEBACL_ID)?;
        let account = strs(&agg, wc::ACCOUNT_ID)?;
        let region = strs(&agg, wc::REGION)?;
        let cols: Vec<Vec<i64>> = [
            "requests",
            "blocked",
            "automation",
            "verified",
            "no_language",
            "no_referer",
            "catalogue",
            "numeric",
        ]
        .iter()
        .map(|n| ints(&agg, n))
        .collect::<Result<_>>()?;
        for i in 0..win.len() {
            let (Some(ip), Some(fp)) = (&ip[i], &fp[i]) else {
                continue;
            };
            let v = |k: usize| cols[k][i] as u64;
            let Some(open) = self.state.windows.slot(win[i], v(0)) else {
                continue;
            };
            let mut c = Client {
                requests: v(0),
                blocked: v(1),
                automation: v(2),
                verified: v(3),
                no_language: v(4),
                no_referer: v(5),
                catalogue: v(6),
                numeric: v(7),
                account: account[i].clone(),
                region: region[i].clone(),
                ..Client::default()
            };
            c.user_agents
                .insert(ua[i].clone().unwrap_or_default(), v(0));
            c.countries.extend(country[i].clone());
            c.web_acls.extend(acl[i].clone());
            open.entry(ip.clone())
                .or_default()
                .entry(fp.clone())
                .or_default()
                .merge(c);
        }
        let win = ints(&uris, "win")?;
        let ip = strs(&uris, wc::CLIENT_IP)?;
        let fp = strs(&uris, derived::FINGERPRINT)?;
        let uri = strs(&uris, wc::URI)?;
        for i in 0..win.len() {
            let (Some(ip), Some(fp), Some(u)) = (&ip[i], &fp[i], &uri[i]) else {
                continue;
            };
            // Late rows were counted with the request counters above.
            let Some(open) = self.state.windows.slot(win[i], 0) else {
                continue;
            };
            let c = open
                .entry(ip.clone())
                .or_default()
                .entry(fp.clone())
                .or_default();
            c.uris.insert(u);
            if c.sample_uris.len() < SAMPLE_URIS || c.sample_uris.last().is_some_and(|l| u < l) {
                c.sample_uris.insert(crate::render::clip(u, 200));
                while c.sample_uris.len() > SAMPLE_URIS {
                    c.sample_uris.pop_last();
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, watermark: i64) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, open) in self.state.windows.close(watermark, w) {
            out.extend(self.judge_window(start, &open));
        }
        Ok(out)
    }

    state_methods!();
}
