//! Detector configuration (`--config flowlens.toml`). Every key is optional; the
//! defaults are documented on each field and in `detectors/flowlens.toml`, which a test
//! keeps equal to [`Config::default`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::net::{Cidr, CidrSet};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Allowlists shared by every detector.
    pub allow: Allow,
    pub exfiltration_spike: ExfiltrationConfig,
    pub lateral_movement: LateralConfig,
    pub cross_az_cost: CrossAzConfig,
    pub scraping_bot: ScrapingConfig,
    pub public_exposure: ExposureConfig,
}

impl Config {
    /// Parses a TOML document.
    ///
    /// # Errors
    /// Invalid TOML, an unknown key, or a value of the wrong type (the message names it).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        let windows = [
            ("exfiltration_spike", self.exfiltration_spike.window_secs),
            ("lateral_movement", self.lateral_movement.window_secs),
            ("cross_az_cost", self.cross_az_cost.window_secs),
            ("scraping_bot", self.scraping_bot.window_secs),
            ("public_exposure", self.public_exposure.window_secs),
        ];
        for (name, w) in windows {
            if !(60..=86_400).contains(&w) || 86_400 % w != 0 {
                return Err(format!(
                    "{name}.window_secs = {w}: must divide a day and be 60–86400 seconds"
                ));
            }
        }
        if self.cross_az_cost.usd_per_gb < 0.0 {
            return Err("cross_az_cost.usd_per_gb must not be negative".into());
        }
        Ok(())
    }
}

/// Traffic matching an allowlist is never reported by any detector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Allow {
    /// Addresses or CIDR blocks, on either side of a flow or as a WAF client.
    pub cidrs: CidrSet,
    /// Network interface ids (`eni-...`).
    pub enis: Vec<String>,
    /// Destination (service) ports.
    pub ports: Vec<u16>,
    /// WAF JA3/JA4 fingerprints.
    pub fingerprints: Vec<String>,
    /// WAF user-agent substrings (case-insensitive).
    pub user_agents: Vec<String>,
}

/// `exfiltration-spike`: bytes an entity sends to public addresses per window against
/// its own robust baseline (median and MAD of its earlier windows, across runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExfiltrationConfig {
    pub enabled: bool,
    /// Window length. Default 600 (10 minutes).
    pub window_secs: i64,
    /// Minimum bytes sent to public destinations in one window. Default 100 MB.
    pub min_bytes: u64,
    /// Minimum ratio of observed bytes to the baseline median. Default 10.
    pub min_ratio: f64,
    /// Minimum robust z-score, (observed − median) / (1.4826 · MAD). Default 6.
    pub min_z: f64,
    /// Earlier windows kept per entity for its baseline. Default 432 (3 days of 10 min).
    pub history_windows: usize,
    /// With fewer earlier windows the entity has no baseline yet: a spike is reported
    /// as LOW at most, and only above 10 × `min_bytes`. Default 6.
    pub min_history_windows: usize,
    /// Ignore flows whose `pkt_dst_aws_service` is set (S3, DynamoDB, ...). Default true.
    pub exclude_aws_services: bool,
    /// Destinations that are not exfiltration (AWS service ranges, partners, CDNs).
    pub allowed_destinations: CidrSet,
}

impl Default for ExfiltrationConfig {
    fn default() -> Self {
        ExfiltrationConfig {
            enabled: true,
            window_secs: 600,
            min_bytes: 100_000_000,
            min_ratio: 10.0,
            min_z: 6.0,
            history_windows: 432,
            min_history_windows: 6,
            exclude_aws_services: true,
            allowed_destinations: CidrSet::default(),
        }
    }
}

/// `lateral-movement`: an internal source reaching many internal hosts on admin
/// ports, or many ports of one host, weighted by rejections, SYN-only flows and novelty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LateralConfig {
    pub enabled: bool,
    /// Window length; each window is judged together with the one before it, so a
    /// sweep is seen whole however it straddles a boundary. Default 300.
    pub window_secs: i64,
    /// Remote-access and admin ports.
    pub admin_ports: Vec<u16>,
    /// Distinct internal hosts reached on admin ports, not seen from this source
    /// before, that make a sweep. Default 8.
    pub min_hosts: u32,
    /// Distinct ports of a single host that make a port scan. Default 15.
    pub min_ports: u32,
    /// Earlier windows whose peers count as "seen before". Default 2016 (7 days of 5 min).
    pub history_windows: usize,
    /// Peers remembered per source. Default 4096.
    pub max_known_peers: usize,
}

impl Default for LateralConfig {
    fn default() -> Self {
        LateralConfig {
            enabled: true,
            window_secs: 300,
            admin_ports: vec![22, 23, 135, 139, 445, 3389, 5985, 5986, 5900, 2222],
            min_hosts: 8,
            min_ports: 15,
            history_windows: 2016,
            max_known_peers: 4096,
        }
    }
}

/// `cross-az-cost`: bytes crossing Availability Zones per talker pair, in dollars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossAzConfig {
    pub enabled: bool,
    /// Window length. Default 3600.
    pub window_secs: i64,
    /// Price per GB (2^30 bytes) in each direction; AWS charges both sides. Default 0.01.
    pub usd_per_gb: f64,
    /// Report a pair whose window cost, projected to a 30-day month, reaches this.
    /// Default 100.
    pub min_monthly_usd: f64,
    /// AZ (id or name) of address blocks, for logs without `az-id` (v2 default format).
    /// Example: `"10.0.0.0/24" = "use1-az1"`.
    pub az_by_cidr: BTreeMap<Cidr, String>,
}

impl Default for CrossAzConfig {
    fn default() -> Self {
        CrossAzConfig {
            enabled: true,
            window_secs: 3600,
            usd_per_gb: 0.01,
            min_monthly_usd: 100.0,
            az_by_cidr: BTreeMap::new(),
        }
    }
}

/// `scraping-bot` (WAF): per client IP and per fingerprint cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapingConfig {
    pub enabled: bool,
    /// Window length. Default 600.
    pub window_secs: i64,
    /// Requests from one client IP in a window before it is judged. Default 300.
    pub min_requests: u64,
    /// Distinct client IPs sharing a fingerprint that make a distributed crawl. Default 8.
    pub min_cluster_ips: u64,
    /// Requests of a fingerprint cluster in a window before it is judged. Default 300.
    pub min_cluster_requests: u64,
    /// Bot score (0–100, see the README) from which a client is reported. Default 50.
    pub min_score: u32,
    /// Path prefixes of catalogue and search pages (what scrapers harvest).
    pub catalogue_paths: Vec<String>,
    /// User-agent substrings of automation tools (case-insensitive).
    pub automation_agents: Vec<String>,
}

impl Default for ScrapingConfig {
    fn default() -> Self {
        ScrapingConfig {
            enabled: true,
            window_secs: 600,
            min_requests: 300,
            min_cluster_ips: 8,
            min_cluster_requests: 300,
            min_score: 50,
            catalogue_paths: [
                "/product",
                "/search",
                "/catalog",
                "/item",
                "/category",
                "/api/product",
            ]
            .map(String::from)
            .to_vec(),
            automation_agents: [
                "python-requests",
                "python-urllib",
                "aiohttp",
                "httpx",
                "curl/",
                "wget/",
                "go-http-client",
                "scrapy",
                "headlesschrome",
                "phantomjs",
                "selenium",
                "playwright",
                "puppeteer",
                "okhttp",
                "java/",
                "libwww-perl",
                "node-fetch",
                "axios/",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// `public-exposure`: accepted inbound flows from public addresses to ports or
/// interfaces that should be private.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExposureConfig {
    pub enabled: bool,
    /// Window length. Default 3600.
    pub window_secs: i64,
    /// Ports meant for the internet (never reported unless the interface is in
    /// `private_cidrs`). Default [80, 443].
    pub public_ports: Vec<u16>,
    /// Model-serving and ML tooling ports (Triton/TGI, TF Serving, Gradio, Ollama,
    /// Jupyter, TensorBoard, MLflow, Ray).
    pub model_serving_ports: Vec<u16>,
    /// Database and cache ports.
    pub database_ports: Vec<u16>,
    /// Remote-access and admin ports.
    pub admin_ports: Vec<u16>,
    /// Address blocks that must never accept internet traffic, on any port.
    pub private_cidrs: CidrSet,
    /// Interfaces meant to be public (load balancers, a bastion): not reported.
    pub public_enis: Vec<String>,
    /// Sources that are not "the internet" (CloudFront, Route 53 health checkers,
    /// partners), for logs without `pkt-src-aws-service`.
    pub trusted_sources: CidrSet,
    /// Distinct public sources from which an exposure is HIGH (reachable by anyone)
    /// rather than reached by a few known peers. Default 5.
    pub wide_open_sources: u64,
}

impl Default for ExposureConfig {
    fn default() -> Self {
        ExposureConfig {
            enabled: true,
            window_secs: 3600,
            public_ports: vec![80, 443],
            model_serving_ports: vec![8000, 8001, 8500, 8501, 7860, 11434, 8888, 6006, 5000, 8265],
            database_ports: vec![
                3306, 5432, 1433, 1521, 27017, 6379, 9200, 9300, 5984, 11211, 2379, 9042,
            ],
            admin_ports: vec![22, 23, 3389, 5985, 5986, 5900, 445, 135, 139, 2375, 10250],
            private_cidrs: CidrSet::default(),
            public_enis: Vec::new(),
            trusted_sources: CidrSet::default(),
            wide_open_sources: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_is_the_default() {
        let text = include_str!("../flowlens.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = Config::from_toml("[lateral_movement]\nmin_host = 3\n").unwrap_err();
        assert!(e.contains("min_host"), "{e}");
        let e = Config::from_toml("[allow]\ncidrs = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert!(e.contains("10.0.0.0/40"), "{e}");
        let e = Config::from_toml("[cross_az_cost]\nwindow_secs = 7\n").unwrap_err();
        assert!(e.contains("window_secs"), "{e}");
    }

    #[test]
    fn partial_files_keep_the_other_defaults() {
        let cfg = Config::from_toml(
            "[scraping_bot]\nenabled = false\n[cross_az_cost.az_by_cidr]\n\"10.0.0.0/24\" = \"use1-az1\"\n",
        )
        .unwrap();
        assert!(!cfg.scraping_bot.enabled);
        assert_eq!(cfg.scraping_bot.min_requests, 300);
        assert_eq!(cfg.cross_az_cost.az_by_cidr.len(), 1);
    }
}
