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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use flowlens_model::LogKind;
use flowlens_model::finding::{
    DetectorId, Entity, EntityKind, Evidence, Finding, Measure, Severity, finding_id,
};
use flowlens_model::waf::col as wc;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::Result;
use crate::atoms::Atoms;
use crate::config::{Config, ScrapingConfig};
use crate::detector::{Chunk, Detector, saved_state_methods};
use crate::names::Names;
use crate::prepare::derived;
use crate::render;
use crate::rows::{ints, texts};
use crate::stats::{Distinct, Episodes, Merge, Update, Windows, merge_map, min_opt};

const SAMPLE_URIS: usize = 8;

/// One client IP with one fingerprint in one window, as saved and judged (the open
/// windows keep it as a [`Live`]).
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

/// The detector's state as saved (and merged across shards).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    windows: Windows<Open>,
    /// Clients and crawls (finding keys) reported in the window before: one that goes
    /// on is one finding, updated while it does not weaken.
    #[serde(default)]
    episodes: Episodes,
}

impl Merge for Saved {
    fn merge(&mut self, o: Self) {
        self.windows.merge(o.windows);
        self.episodes.merge(o.episodes);
    }
}

/// Counters of a [`Client`], in its field order.
const COUNTERS: usize = 8;

/// One client IP with one fingerprint in an open window: a [`Client`] whose texts are
/// [`Atoms`] ids. A window holds one per client seen in it, and a run keeps every
/// window open until it flushes: a client's strings, sets and maps (user agent, web
/// ACL ARN, countries, sample URIs: some 2.5 KB per client and window) became a few
/// integers (about 200 bytes, and the URI sketch).
#[derive(Debug, Clone, Default)]
struct Live {
    /// `requests`, `blocked`, `automation`, `verified`, `no_language`, `no_referer`,
    /// `catalogue`, `numeric`.
    counts: [u64; COUNTERS],
    uris: Distinct,
    /// The smallest URIs (clipped), in text order.
    sample_uris: SmallVec<[u32; SAMPLE_URIS]>,
    /// (user agent, requests), in order of first appearance.
    user_agents: SmallVec<[(u32, u64); 1]>,
    countries: SmallVec<[u32; 2]>,
    web_acls: SmallVec<[u32; 1]>,
    /// The smallest account and region seen (as [`min_opt`]).
    account: Option<u32>,
    region: Option<u32>,
}

/// Keeps the smaller text of two atoms (as [`min_opt`] does with strings).
fn min_atom(atoms: &Atoms, a: &mut Option<u32>, b: Option<u32>) {
    if let Some(b) = b
        && a.is_none_or(|a| atoms.text(b) < atoms.text(a))
    {
        *a = Some(b);
    }
}

/// Adds `id` to a set of atoms kept as a list.
fn add_atom<A: smallvec::Array<Item = u32>>(set: &mut SmallVec<A>, id: u32) {
    if !set.contains(&id) {
        set.push(id);
    }
}

impl Live {
    /// Adds a (clipped) sample URI, keeping the [`SAMPLE_URIS`] smallest texts.
    fn sample(&mut self, atoms: &mut Atoms, uri: &str) {
        let clipped = render::clip(uri, 200);
        let at = self
            .sample_uris
            .binary_search_by(|&u| atoms.text(u).cmp(clipped.as_str()));
        if let Err(at) = at
            && at < SAMPLE_URIS
        {
            self.sample_uris.insert(at, atoms.id(&clipped));
            self.sample_uris.truncate(SAMPLE_URIS);
        }
    }

    /// The client as saved.
    fn save(&self, atoms: &Atoms) -> Client {
        let text = |id: &u32| atoms.text(*id).to_string();
        let [
            requests,
            blocked,
            automation,
            verified,
            no_language,
            no_referer,
            catalogue,
            numeric,
        ] = self.counts;
        Client {
            requests,
            blocked,
            automation,
            verified,
            no_language,
            no_referer,
            catalogue,
            numeric,
            uris: self.uris.clone(),
            sample_uris: self.sample_uris.iter().map(text).collect(),
            user_agents: self
                .user_agents
                .iter()
                .map(|(ua, n)| (text(ua), *n))
                .collect(),
            countries: self.countries.iter().map(text).collect(),
            web_acls: self.web_acls.iter().map(text).collect(),
            account: self.account.as_ref().map(text),
            region: self.region.as_ref().map(text),
        }
    }

    /// A saved client, its texts as atoms.
    fn load(c: Client, atoms: &mut Atoms) -> Live {
        Live {
            counts: [
                c.requests,
                c.blocked,
                c.automation,
                c.verified,
                c.no_language,
                c.no_referer,
                c.catalogue,
                c.numeric,
            ],
            uris: c.uris,
            // A BTreeSet iterates in text order, as `sample_uris` is kept.
            sample_uris: c.sample_uris.iter().map(|u| atoms.id(u)).collect(),
            user_agents: c
                .user_agents
                .iter()
                .map(|(ua, n)| (atoms.id(ua), *n))
                .collect(),
            countries: c.countries.iter().map(|x| atoms.id(x)).collect(),
            web_acls: c.web_acls.iter().map(|x| atoms.id(x)).collect(),
            account: c.account.as_deref().map(|x| atoms.id(x)),
            region: c.region.as_deref().map(|x| atoms.id(x)),
        }
    }
}

/// An open window: (client IP, fingerprint) atoms → client.
type LiveOpen = HashMap<(u32, u32), Live, PlRandomState>;

/// The detector's state while it runs: open windows keyed and filled with atoms.
#[derive(Debug, Clone, Default)]
struct State {
    windows: Windows<LiveOpen>,
    episodes: Episodes,
    /// Texts of the open windows (and, until the next compaction, of closed ones).
    atoms: Atoms,
    /// Number of atoms after the last compaction.
    live_atoms: usize,
}

impl State {
    /// One open window as saved and judged.
    fn save_window(&self, open: &LiveOpen) -> Open {
        let mut out = Open::new();
        for ((ip, fp), live) in open {
            out.entry(self.atoms.text(*ip).to_string())
                .or_default()
                .insert(self.atoms.text(*fp).to_string(), live.save(&self.atoms));
        }
        out
    }

    fn save(&self) -> Saved {
        let open = self
            .windows
            .open
            .iter()
            .map(|(start, o)| (*start, self.save_window(o)));
        Saved {
            windows: self.windows.with_open(open.collect()),
            episodes: self.episodes.clone(),
        }
    }

    fn load(mut saved: Saved) -> State {
        let mut atoms = Atoms::default();
        let open = std::mem::take(&mut saved.windows.open)
            .into_iter()
            .map(|(start, ips)| {
                let mut o = LiveOpen::default();
                for (ip, fps) in ips {
                    let ip = atoms.id(&ip);
                    for (fp, c) in fps {
                        let fp = atoms.id(&fp);
                        o.insert((ip, fp), Live::load(c, &mut atoms));
                    }
                }
                (start, o)
            })
            .collect();
        State {
            windows: saved.windows.with_open(open),
            episodes: saved.episodes,
            live_atoms: atoms.len(),
            atoms,
        }
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
        let (first, windows_on) = self.state.episodes.run(&key, window, w);
        let r = c.requests.max(1) as f64;
        let pct = |n: u64| 100.0 * n as f64 / r;
        let blocked_share = c.blocked as f64 / r;
        let verified_share = c.verified as f64 / r;
        let cluster = ips.len() > 1;
        let (severity, note, recommendation) = if verified_share >= 0.9 {
            (
                0.0,
                " AWS Bot Control labels it a verified bot.",
                "No action needed: AWS Bot Control verified this crawler (a search engine or \
                 monitoring service), and blocking it costs search visibility. If its rate \
                 strains the origin, slow it where it comes from (the search engine's crawl \
                 settings) or rate-limit the verified-bot label rather than block it; to \
                 silence these findings, list its fingerprint in allow.fingerprints.",
            )
        } else if blocked_share >= 0.9 {
            (
                sc.score.min(30.0),
                " The web ACL already blocks it; check the rule keeps holding.",
                "No action needed while the web ACL keeps blocking or challenging it: watch \
                 that share in later windows (a client that starts passing the challenge, or \
                 moves to new addresses with the same fingerprint, has beaten the rule).",
            )
        } else if cluster {
            (
                sc.score,
                "",
                "Add a rate-based rule keyed on the JA4 fingerprint (or the AWS Bot Control \
                 targeted rule group) to the web ACL, and a CAPTCHA or challenge on catalogue \
                 and search paths. If the crawler is a partner, list its fingerprint in \
                 allow.fingerprints.",
            )
        } else {
            (
                sc.score,
                "",
                "Rate-limit or block this client in the web ACL (rate-based rule, IP set), and \
                 challenge automation user agents on catalogue and search paths. If it is a \
                 sanctioned crawler, add it to allow.cidrs or allow.user_agents.",
            )
        };
        let mut uas: Vec<(&String, &u64)> = c.user_agents.iter().collect();
        uas.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top_ua = uas.first().map_or("(none)", |(u, _)| u.as_str());
        let who = if cluster {
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
             or challenged by the web ACL. Bot score {:.0} (threshold {}).{}{note}{}",
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
            if cluster {
                format!(" The busiest IP sent {} requests.", ips[0].1)
            } else {
                String::new()
            },
            render::going_on("Active", first, windows_on),
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
        if cluster {
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
            id: finding_id(DetectorId::ScrapingBot, &key, first),
            detector: DetectorId::ScrapingBot,
            severity: Severity::new(severity.round() as u32),
            confidence: (sc.score.min(95.0)) as u8,
            title: if cluster {
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
            window_start: first,
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
                Measure {
                    name: "windows_active".into(),
                    value: windows_on as f64,
                    unit: "windows".into(),
                },
            ],
            baseline: vec![Measure {
                name: "min_requests".into(),
                value: if cluster {
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
            recommendation: recommendation.into(),
            account_id: c.account.clone(),
            region: c.region.clone(),
        }
    }

    /// The findings of a closed window, each with its key (`ip:…`, `fp:…`).
    fn judge_window(&self, window: i64, open: &Open) -> Vec<(String, Finding)> {
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
            let key = format!("ip:{ip}");
            out.push((
                key.clone(),
                self.finding(
                    window,
                    key,
                    Entity::subject(EntityKind::Ip, ip.as_str()),
                    &all,
                    &sc,
                    &[(ip.as_str(), all.requests)],
                    &fps,
                ),
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
            let key = format!("fp:{fp}");
            out.push((
                key.clone(),
                self.finding(
                    window,
                    key,
                    Entity::subject(EntityKind::Fingerprint, fp),
                    &c,
                    &sc,
                    &ips,
                    &[fp],
                ),
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
                    .and(col(wc::CLIENT_IP).is_not_null())
                    .and(col(derived::TS).is_not_null()),
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

        let State { windows, atoms, .. } = &mut self.state;
        let win = ints(&agg, "win")?;
        let text_columns = [
            wc::CLIENT_IP,
            derived::FINGERPRINT,
            wc::USER_AGENT,
            wc::COUNTRY,
            wc::WEBACL_ID,
            wc::ACCOUNT_ID,
            wc::REGION,
        ]
        .iter()
        .map(|name| texts(&agg, name))
        .collect::<Result<Vec<_>>>()?;
        let [ip, fp, ua, country, acl, account, region]: [Vec<Option<&str>>; 7] =
            std::array::from_fn(|k| text_columns[k].iter().collect());
        let counts: Vec<Vec<i64>> = [
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
            let (Some(ip), Some(fp)) = (ip[i], fp[i]) else {
                continue;
            };
            let requests = counts[0][i] as u64;
            let Some(open) = windows.slot(win[i], requests) else {
                continue;
            };
            let key = (atoms.id(ip), atoms.id(fp));
            let c = open.entry(key).or_default();
            for (have, n) in c.counts.iter_mut().zip(&counts) {
                *have += n[i] as u64;
            }
            let ua = atoms.id(ua[i].unwrap_or_default());
            match c.user_agents.iter_mut().find(|(u, _)| *u == ua) {
                Some((_, n)) => *n += requests,
                None => c.user_agents.push((ua, requests)),
            }
            if let Some(country) = country[i] {
                add_atom(&mut c.countries, atoms.id(country));
            }
            if let Some(acl) = acl[i] {
                add_atom(&mut c.web_acls, atoms.id(acl));
            }
            let account = account[i].map(|a| atoms.id(a));
            min_atom(atoms, &mut c.account, account);
            let region = region[i].map(|r| atoms.id(r));
            min_atom(atoms, &mut c.region, region);
        }
        let win = ints(&uris, "win")?;
        let (ip, fp, uri) = (
            texts(&uris, wc::CLIENT_IP)?,
            texts(&uris, derived::FINGERPRINT)?,
            texts(&uris, wc::URI)?,
        );
        for (i, ((ip, fp), u)) in ip.iter().zip(fp.iter()).zip(uri.iter()).enumerate() {
            let (Some(ip), Some(fp), Some(u)) = (ip, fp, u) else {
                continue;
            };
            // Late rows were counted with the request counters above.
            let Some(open) = windows.slot(win[i], 0) else {
                continue;
            };
            let key = (atoms.id(ip), atoms.id(fp));
            let c = open.entry(key).or_default();
            c.uris.insert(u);
            // A URI past the largest sample (as clipped) is not one of the smallest.
            if c.sample_uris.len() < SAMPLE_URIS
                || c.sample_uris.last().is_some_and(|&l| u < atoms.text(l))
            {
                c.sample(atoms, u);
            }
        }
        Ok(())
    }

    fn flush(&mut self, watermark: i64, _: &Names) -> Result<Vec<Finding>> {
        let w = self.cfg.window_secs;
        let mut out = Vec::new();
        for (start, open) in self.state.windows.close(watermark, w) {
            let open = self.state.save_window(&open);
            for (key, f) in self.judge_window(start, &open) {
                // A client that goes on is one finding: updated unless this window is
                // weaker than the one reported (its tail must not lower the finding).
                let episodes = &mut self.state.episodes;
                episodes.emit(&mut out, key, start, w, f, Update::WhileAsStrong);
            }
            self.state.episodes.close(start);
        }
        if self.state.atoms.outgrown(self.state.live_atoms) {
            self.state = State::load(self.state.save());
        }
        Ok(out)
    }

    saved_state_methods!();
}

#[cfg(test)]
mod tests {
    use flowlens_model::LogKind;
    use flowlens_model::finding::SeverityLabel;
    use flowlens_samples::waf::{Kind, request};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use crate::testing::waf_batch;
    use crate::{Config, Detector, Registry};

    fn only_scraping() -> Config {
        crate::testing::only(flowlens_model::finding::DetectorId::ScrapingBot)
    }

    /// `n` requests of `kind` from `ip`, a second apart from `t` (unix seconds).
    fn requests(
        rng: &mut SmallRng,
        n: u64,
        ip: &str,
        t: u64,
        kind: fn(u64) -> Kind,
    ) -> Vec<String> {
        (0..n)
            .map(|k| request(rng, kind(k), ip, (t + k) * 1000))
            .collect()
    }

    fn state(r: &mut Registry) -> serde_json::Value {
        r.state().unwrap()["detectors"]["scraping-bot"].clone()
    }

    /// A scraper that goes on from window to window is one finding: named by its first
    /// window, updated with a window as strong, kept when a weaker one follows (in one
    /// run, or in a run restored from the state saved between them).
    #[test]
    fn a_scraper_that_goes_on_is_one_finding() {
        let mut rng = SmallRng::seed_from_u64(9);
        let w = 600;
        let t0 = 1_699_999_800; // a window start
        let mut window = |k: u64, walk: fn(u64) -> Kind| {
            requests(&mut rng, 500, "203.0.113.77", t0 + k * w, walk)
        };
        // Walking 500 product ids; then the same 10 over and over (a lower score: few
        // distinct URIs); then walking again.
        let walk = |i: u64| Kind::Scraper {
            id: 1000 + i as u32,
        };
        let repeat = |i: u64| Kind::Scraper {
            id: 1000 + (i % 10) as u32,
        };
        let batches = [window(0, walk), window(1, repeat), window(2, walk)];
        let run = |parts: &[&[Vec<String>]]| {
            let mut found = Vec::new();
            let mut saved = None;
            for part in parts {
                let mut r = Registry::new(only_scraping());
                if let Some(s) = saved.take() {
                    r.restore(s).unwrap();
                }
                for b in *part {
                    r.observe(LogKind::Waf, &waf_batch(b)).unwrap();
                }
                found.extend(r.flush(i64::MAX).unwrap());
                saved = Some(r.state().unwrap());
            }
            found
        };
        let whole = run(&[&batches[..2]]);
        assert_eq!(whole.len(), 1, "{whole:#?}");
        let f = &whole[0];
        // The weaker second window did not replace the first.
        assert_eq!(f.window_end, (t0 + w) as i64);
        assert_eq!(f.window_start, t0 as i64);
        let split = run(&[&batches[..1], &batches[1..2]]);
        assert_eq!(split.len(), 1, "the weaker window is not sent again");
        assert_eq!(split[0], *f);

        // A third window as strong as the first updates it, under the same id.
        let three = run(&[&batches[..]]);
        assert_eq!(three.len(), 1);
        assert_eq!(three[0].id, f.id);
        assert_eq!(three[0].window_end, (t0 + 3 * w) as i64);
        let active = three[0]
            .observed
            .iter()
            .find(|m| m.name == "windows_active");
        assert_eq!(active.map(|m| m.value), Some(3.0));
        assert!(
            three[0]
                .description
                .contains("Active in every window since 2023-11-14T22:10Z (3 windows"),
            "{}",
            three[0].description
        );
    }

    /// The next step follows the client's standing: one the web ACL already blocks is
    /// LOW and needs no new rule; the same client let through is to be rate-limited.
    #[test]
    fn a_scraper_the_web_acl_blocks_needs_no_new_rule() {
        let mut rng = SmallRng::seed_from_u64(5);
        let allowed = requests(&mut rng, 500, "203.0.113.77", 1_699_999_800, |k| {
            Kind::Scraper {
                id: 1000 + k as u32,
            }
        });
        assert!(allowed.iter().all(|l| l.contains(r#""action":"ALLOW""#)));
        let blocked: Vec<String> = allowed
            .iter()
            .map(|l| l.replace(r#""action":"ALLOW""#, r#""action":"BLOCK""#))
            .collect();
        let judge = |lines: &[String]| {
            let mut r = Registry::new(only_scraping());
            r.observe(LogKind::Waf, &waf_batch(lines)).unwrap();
            let found = r.flush(i64::MAX).unwrap();
            assert_eq!(found.len(), 1, "{found:#?}");
            found.into_iter().next().unwrap()
        };
        let (open, shut) = (judge(&allowed), judge(&blocked));
        assert!(open.severity.label() >= SeverityLabel::High, "{open:#?}");
        assert!(open.recommendation.starts_with("Rate-limit or block"));
        assert_eq!(shut.severity.label(), SeverityLabel::Low, "{shut:#?}");
        assert!(shut.description.contains("already blocks it"));
        assert!(
            shut.recommendation.starts_with("No action needed while"),
            "{}",
            shut.recommendation
        );
    }

    #[test]
    fn open_windows_survive_save_restore_and_merge() {
        let mut rng = SmallRng::seed_from_u64(3);
        let a = waf_batch(
            &[
                requests(&mut rng, 40, "203.0.113.77", 1_700_000_000, |k| {
                    Kind::Scraper {
                        id: 1000 + k as u32,
                    }
                }),
                requests(&mut rng, 5, "198.51.100.4", 1_700_000_010, |_| Kind::Browse),
            ]
            .concat(),
        );
        let b = waf_batch(&requests(&mut rng, 7, "203.0.113.77", 1_700_000_100, |k| {
            Kind::Scraper {
                id: 2000 - k as u32,
            }
        }));

        let (saved, merged) = crate::testing::restored_and_merged(
            flowlens_model::finding::DetectorId::ScrapingBot,
            LogKind::Waf,
            &a,
            &b,
        );
        let client = &saved["windows"]["open"]["1699999800"]["203.0.113.77"]["t13d1812h1_85036bcba153_b26ce05bbdd6"];
        assert_eq!(client["requests"], 40);
        assert_eq!(client["automation"], 40);
        assert_eq!(client["user_agents"]["python-requests/2.31.0"], 40);
        // The eight smallest URIs, in text order.
        let samples: Vec<String> = (1000..1008).map(|i| format!("/products/{i}")).collect();
        assert_eq!(client["sample_uris"], serde_json::json!(samples));

        let client = &merged["windows"]["open"]["1699999800"]["203.0.113.77"]["t13d1812h1_85036bcba153_b26ce05bbdd6"];
        assert_eq!(client["requests"], 47);
        assert_eq!(client["sample_uris"][0], "/products/1000");
        assert_eq!(client["sample_uris"][7], "/products/1007");
        // The second batch's URIs (1994-2000) are larger: not among the samples.
        assert_eq!(client["sample_uris"].as_array().unwrap().len(), 8);
    }

    #[test]
    fn compacting_keeps_the_open_windows_and_drops_closed_texts() {
        let mut rng = SmallRng::seed_from_u64(5);
        // Window 1699999800 holds 300 clients and closes; 1700000400 stays open.
        let closed: Vec<String> = (0..300)
            .flat_map(|i| {
                let ip = format!("198.51.{}.{}", i / 250, i % 250);
                requests(&mut rng, 1, &ip, 1_700_000_000, |_| Kind::Probe)
            })
            .collect();
        let open = requests(&mut rng, 3, "203.0.113.9", 1_700_000_500, |_| Kind::Probe);
        let mut r = Registry::new(only_scraping());
        r.observe(LogKind::Waf, &waf_batch(&closed)).unwrap();
        r.observe(LogKind::Waf, &waf_batch(&open)).unwrap();
        let mut d = super::Scraping::new(&only_scraping());
        let mut names = crate::names::Names::default();
        d.restore(state(&mut r), &mut names).unwrap();
        d.flush(1_700_000_400, &names).unwrap();
        let before = d.state(&names).unwrap();
        let atoms = d.state.atoms.len();
        assert!(atoms > 300, "{atoms}");
        d.state = super::State::load(d.state.save());
        // One client left: its IP, fingerprint, web ACL, account and region, and up
        // to three user agents, countries and URIs.
        assert!(d.state.atoms.len() <= 14, "{}", d.state.atoms.len());
        assert_eq!(d.state(&names).unwrap(), before);
    }
}
