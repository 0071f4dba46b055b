//! The one finding model every detector emits and every sink renders.
//!
//! A finding explains itself: what was observed against what baseline (numbers with
//! units), the entities involved, the rows that prove it, and what to do next. Its id is
//! deterministic — detector, entity and window start — so a rerun, or the same input
//! split differently, yields the same id (and Security Hub updates instead of
//! duplicating).

use serde::{Deserialize, Serialize};

/// The detectors flowlens ships, by their stable ids (`GeneratorId` is `flowlens/<id>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorId {
    ExfiltrationSpike,
    LateralMovement,
    CrossAzCost,
    ScrapingBot,
    PublicExposure,
}

impl DetectorId {
    pub const ALL: [DetectorId; 5] = [
        DetectorId::ExfiltrationSpike,
        DetectorId::LateralMovement,
        DetectorId::CrossAzCost,
        DetectorId::ScrapingBot,
        DetectorId::PublicExposure,
    ];

    /// The stable id (`exfiltration-spike`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorId::ExfiltrationSpike => "exfiltration-spike",
            DetectorId::LateralMovement => "lateral-movement",
            DetectorId::CrossAzCost => "cross-az-cost",
            DetectorId::ScrapingBot => "scraping-bot",
            DetectorId::PublicExposure => "public-exposure",
        }
    }

    /// The ASFF finding type (namespace/category/classifier).
    pub fn asff_type(self) -> &'static str {
        match self {
            DetectorId::ExfiltrationSpike => "Effects/Data Exfiltration/EgressVolumeSpike",
            DetectorId::LateralMovement => "TTPs/Discovery/InternalPortSweep",
            DetectorId::CrossAzCost => "Effects/Resource Consumption/CrossAZDataTransfer",
            DetectorId::ScrapingBot => "Unusual Behaviors/Application/ScrapingBot",
            DetectorId::PublicExposure => "Effects/Data Exposure/PublicAccessToPrivatePort",
        }
    }
}

impl std::fmt::Display for DetectorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ASFF severity labels, from a 0–100 score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeverityLabel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

/// Severity: a 0–100 score and its label (Security Hub's normalized ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Severity(u8);

impl Severity {
    /// A score, clamped to 0–100.
    pub fn new(score: u32) -> Self {
        Severity(score.min(100) as u8)
    }

    pub fn score(self) -> u8 {
        self.0
    }

    /// 0 informational, 1–39 low, 40–69 medium, 70–89 high, 90–100 critical.
    pub fn label(self) -> SeverityLabel {
        match self.0 {
            0 => SeverityLabel::Informational,
            1..=39 => SeverityLabel::Low,
            40..=69 => SeverityLabel::Medium,
            70..=89 => SeverityLabel::High,
            _ => SeverityLabel::Critical,
        }
    }
}

/// What kind of thing an entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Eni,
    Instance,
    Ip,
    Subnet,
    Az,
    Vpc,
    Account,
    Region,
    WebAcl,
    Fingerprint,
    Port,
}

/// One entity a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub value: String,
    /// `subject` (the actor the finding is about) or `peer` (what it touched).
    pub role: EntityRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityRole {
    Subject,
    Peer,
}

impl Entity {
    pub fn subject(kind: EntityKind, value: impl Into<String>) -> Self {
        Entity {
            kind,
            value: value.into(),
            role: EntityRole::Subject,
        }
    }

    pub fn peer(kind: EntityKind, value: impl Into<String>) -> Self {
        Entity {
            kind,
            value: value.into(),
            role: EntityRole::Peer,
        }
    }
}

/// A measured quantity with its unit (`bytes`, `requests`, `usd`, `hosts`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// The rows that prove a finding: a small table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Deterministic: see [`finding_id`].
    pub id: String,
    pub detector: DetectorId,
    pub severity: Severity,
    /// 0–100: how sure the detector is that this is what the title says.
    pub confidence: u8,
    pub title: String,
    /// What was observed against what baseline, with numbers and units.
    pub description: String,
    pub entities: Vec<Entity>,
    /// Window start and end, unix seconds (end exclusive).
    pub window_start: i64,
    pub window_end: i64,
    /// Observed values (`observed_bytes`, ...).
    pub observed: Vec<Measure>,
    /// Baseline values to compare against (`baseline_median_bytes`, ...).
    pub baseline: Vec<Measure>,
    pub evidence: Evidence,
    /// What an analyst should do next.
    pub recommendation: String,
    /// Account and region the finding belongs to (from the logs).
    pub account_id: Option<String>,
    pub region: Option<String>,
}

impl Finding {
    /// The subject entity of a kind, if any.
    pub fn subject(&self, kind: EntityKind) -> Option<&str> {
        self.entities
            .iter()
            .find(|e| e.kind == kind && e.role == EntityRole::Subject)
            .map(|e| e.value.as_str())
    }
}

/// FNV-1a, 64-bit, from a given basis (each part followed by a 0xff separator):
/// stable across platforms and releases.
pub fn fnv1a(basis: u64, parts: &[&str]) -> u64 {
    let mut h = basis;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// The deterministic id of a finding: `flowlens/<detector>/<128-bit hex>` of the detector,
/// the entity key (what the finding is about, e.g. an ENI or a fingerprint) and the
/// window start. Independent of input order, sharding and rerun.
pub fn finding_id(detector: DetectorId, entity_key: &str, window_start: i64) -> String {
    let start = window_start.to_string();
    let parts = [detector.as_str(), entity_key, start.as_str()];
    let a = fnv1a(0xcbf2_9ce4_8422_2325, &parts);
    let b = fnv1a(0x6c62_272e_07bb_0142, &parts);
    format!("flowlens/{}/{a:016x}{b:016x}", detector.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_ranges() {
        let cases = [
            (0, SeverityLabel::Informational),
            (1, SeverityLabel::Low),
            (39, SeverityLabel::Low),
            (40, SeverityLabel::Medium),
            (69, SeverityLabel::Medium),
            (70, SeverityLabel::High),
            (89, SeverityLabel::High),
            (90, SeverityLabel::Critical),
            (250, SeverityLabel::Critical),
        ];
        for (score, label) in cases {
            assert_eq!(Severity::new(score).label(), label, "{score}");
        }
        assert_eq!(Severity::new(250).score(), 100);
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let a = finding_id(DetectorId::ExfiltrationSpike, "eni-1", 1_700_000_000);
        assert_eq!(
            a,
            finding_id(DetectorId::ExfiltrationSpike, "eni-1", 1_700_000_000)
        );
        // Pinned (computed independently): ids must never change between releases, or
        // Security Hub would hold duplicates after an upgrade.
        assert_eq!(
            finding_id(DetectorId::CrossAzCost, "subnet-a|subnet-b", 0),
            "flowlens/cross-az-cost/cd90fea60b11bc53498d7f6622e25648"
        );
        assert!(a.starts_with("flowlens/exfiltration-spike/"));
        assert_eq!(a.len(), "flowlens/exfiltration-spike/".len() + 32);
        for other in [
            finding_id(DetectorId::LateralMovement, "eni-1", 1_700_000_000),
            finding_id(DetectorId::ExfiltrationSpike, "eni-2", 1_700_000_000),
            finding_id(DetectorId::ExfiltrationSpike, "eni-1", 1_700_000_300),
            // Part boundaries matter: ("ab","c") is not ("a","bc").
            finding_id(DetectorId::ExfiltrationSpike, "eni-", 11_700_000_000),
        ] {
            assert_ne!(a, other);
        }
    }
}
