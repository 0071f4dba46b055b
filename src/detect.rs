//! The outputs of `scan` and `watch`: the detector configuration file, ASFF JSON lines,
//! the summary table.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use flowlens_detectors::Config;
use flowlens_engine::sink::asff::{self, AsffContext};
use flowlens_model::finding::{DetectorId, EntityRole, Finding};

/// Reads `--config FILE` (or the defaults).
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        None => Ok(Config::default()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Config::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

/// Writes one ASFF finding per line (rendered for `ctx`'s account and region, now);
/// every finding is validated first.
pub fn write_asff(path: &Path, findings: &[Finding], ctx: &AsffContext) -> anyhow::Result<()> {
    let ctx = AsffContext {
        now: chrono::Utc::now(),
        ..ctx.clone()
    };
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
    );
    for f in findings {
        let v = asff::render(f, &ctx);
        if let Err(problems) = asff::validate(&v) {
            anyhow::bail!(
                "finding {} does not render as valid ASFF: {}",
                f.id,
                problems.join("; ")
            );
        }
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// The summary table: one row per detector and severity, with the top entity.
pub fn summary_table(findings: &[Finding], enabled: &[DetectorId]) -> String {
    let mut rows: BTreeMap<(DetectorId, std::cmp::Reverse<u8>), (String, usize, String)> =
        BTreeMap::new();
    for f in findings {
        let label = serde_json::to_value(f.severity.label())
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let entity = f
            .entities
            .iter()
            .find(|e| e.role == EntityRole::Subject)
            .map(|e| e.value.clone())
            .unwrap_or_default();
        let key = (f.detector, std::cmp::Reverse(f.severity.label() as u8));
        let row = rows.entry(key).or_insert((label, 0, entity));
        row.1 += 1;
    }
    let mut out = format!(
        "{:<20} {:<14} {:>6}  {}\n",
        "DETECTOR", "SEVERITY", "COUNT", "TOP ENTITY"
    );
    for d in enabled {
        let mut any = false;
        for ((det, _), (label, n, entity)) in &rows {
            if det == d {
                any = true;
                out.push_str(&format!(
                    "{:<20} {:<14} {:>6}  {}\n",
                    d.as_str(),
                    label,
                    n,
                    entity
                ));
            }
        }
        if !any {
            out.push_str(&format!("{:<20} {:<14} {:>6}  -\n", d.as_str(), "-", 0));
        }
    }
    out
}
