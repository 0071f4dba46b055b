//! AWS Security Finding Format (ASFF) rendering and validation.
//!
//! Rendering respects Security Hub's limits (Title ≤ 256 characters, Description
//! ≤ 1024, 1–32 resources, ProductFields ≤ 50 pairs with keys ≤ 128 and values ≤ 2048
//! characters, ≤ 240 KB per finding) by shortening text and evidence, never by failing.
//! [`validate`] checks a rendered finding against the same rules: the local emulator
//! accepts almost anything, Security Hub does not.

use chrono::{DateTime, SecondsFormat, Utc};
use flowlens_model::finding::{EntityKind, Finding, Measure};
use serde_json::{Map, Value, json};

pub const SCHEMA_VERSION: &str = "2018-10-08";
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
pub const MAX_RESOURCES: usize = 32;
pub const MAX_PRODUCT_FIELDS: usize = 50;
pub const MAX_PRODUCT_FIELD_KEY_CHARS: usize = 128;
pub const MAX_PRODUCT_FIELD_VALUE_CHARS: usize = 2048;
pub const MAX_RECOMMENDATION_CHARS: usize = 512;
pub const MAX_FINDING_BYTES: usize = 240 * 1024;

/// Where and when findings are rendered.
#[derive(Debug, Clone)]
pub struct AsffContext {
    /// The account importing the findings. With the default product ARN, Security Hub
    /// only accepts findings whose `AwsAccountId` is the caller's account, so every
    /// finding is rendered for this account; the account the logs came from stays in
    /// the resource ARNs and in `ProductFields` (`flowlens/log_account`).
    pub account_id: String,
    /// The region of the Security Hub the findings go to.
    pub region: String,
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// UpdatedAt of this import (and CreatedAt of a finding seen for the first time).
    pub now: DateTime<Utc>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn unix(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0).map_or_else(|| "1970-01-01T00:00:00.000Z".into(), ts)
}

/// The entity kind's serde name (`eni`, `web_acl`, ...).
fn kind_name(kind: EntityKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn resource(f: &Finding, kind: EntityKind, value: &str, ctx: &AsffContext, account: &str) -> Value {
    let region = f.region.as_deref().unwrap_or(&ctx.region);
    let p = &ctx.partition;
    let (ty, id) = match kind {
        EntityKind::Eni => (
            "AwsEc2NetworkInterface",
            format!("arn:{p}:ec2:{region}:{account}:network-interface/{value}"),
        ),
        EntityKind::Instance => (
            "AwsEc2Instance",
            format!("arn:{p}:ec2:{region}:{account}:instance/{value}"),
        ),
        EntityKind::Subnet => (
            "AwsEc2Subnet",
            format!("arn:{p}:ec2:{region}:{account}:subnet/{value}"),
        ),
        EntityKind::Vpc => (
            "AwsEc2Vpc",
            format!("arn:{p}:ec2:{region}:{account}:vpc/{value}"),
        ),
        EntityKind::WebAcl if value.starts_with("arn:") => ("AwsWafv2WebAcl", value.to_string()),
        other => ("Other", format!("{}:{value}", kind_name(other))),
    };
    json!({"Type": ty, "Id": shorten(&id, 512), "Partition": p, "Region": region})
}

/// Renders a finding seen for the first time as an ASFF object (CreatedAt = UpdatedAt =
/// `ctx.now`).
pub fn render(f: &Finding, ctx: &AsffContext) -> Value {
    render_update(f, ctx, ctx.now)
}

/// Renders a finding that was first imported at `created_at`: same `Id`, the original
/// `CreatedAt`, `UpdatedAt` = `ctx.now` (Security Hub updates a finding in place when
/// its `UpdatedAt` is later).
pub fn render_update(f: &Finding, ctx: &AsffContext, created_at: DateTime<Utc>) -> Value {
    let log_account = f
        .account_id
        .as_deref()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    let account = log_account.unwrap_or(&ctx.account_id).to_string();
    let region = f.region.clone().unwrap_or_else(|| ctx.region.clone());
    let severity = f.severity;
    let label = serde_json::to_value(severity.label()).unwrap_or(Value::Null);

    let mut resources: Vec<Value> = Vec::new();
    for e in &f.entities {
        if resources.len() == MAX_RESOURCES {
            break;
        }
        let r = resource(f, e.kind, &e.value, ctx, &account);
        if !resources.contains(&r) {
            resources.push(r);
        }
    }
    if resources.is_empty() {
        resources.push(json!({"Type": "Other", "Id": format!("account:{account}"), "Partition": ctx.partition, "Region": region}));
    }

    let mut fields = Map::new();
    let mut put = |k: String, v: String| {
        if fields.len() < MAX_PRODUCT_FIELDS {
            fields.insert(
                shorten(&k, MAX_PRODUCT_FIELD_KEY_CHARS),
                Value::String(shorten(&v, MAX_PRODUCT_FIELD_VALUE_CHARS)),
            );
        }
    };
    put("flowlens/detector".into(), f.detector.as_str().into());
    if account != ctx.account_id {
        put("flowlens/log_account".into(), account.clone());
    }
    // The subject, `<kind>/<value>` (what the findings table's `entity` columns hold).
    if let Some(e) = f
        .entities
        .iter()
        .find(|e| e.role == flowlens_model::finding::EntityRole::Subject)
    {
        put(
            "flowlens/subject".into(),
            format!("{}/{}", kind_name(e.kind), e.value),
        );
    }
    // Every subject, as a JSON list of `<kind>/<value>` (what a pivot into the logs
    // filters on: the IPs of a distributed crawl, both ends of a cross-AZ pair).
    let mut subjects = String::from("[");
    for e in f
        .entities
        .iter()
        .filter(|e| e.role == flowlens_model::finding::EntityRole::Subject)
    {
        let item = json!(format!("{}/{}", kind_name(e.kind), e.value)).to_string();
        if subjects.chars().count() + item.chars().count() + 2 > MAX_PRODUCT_FIELD_VALUE_CHARS {
            break;
        }
        if subjects.len() > 1 {
            subjects.push(',');
        }
        subjects.push_str(&item);
    }
    subjects.push(']');
    put("flowlens/subjects".into(), subjects);
    put("flowlens/window_start".into(), unix(f.window_start));
    put("flowlens/window_end".into(), unix(f.window_end));
    // Evidence: as many whole rows as fit in one field value (JSON, built once).
    let mut table = format!("{{\"columns\":{},\"rows\":[", json!(f.evidence.columns));
    let mut kept = 0;
    for row in &f.evidence.rows {
        let row = json!(row).to_string();
        let sep = usize::from(kept > 0);
        if table.chars().count() + sep + row.chars().count() + 2 > MAX_PRODUCT_FIELD_VALUE_CHARS {
            break;
        }
        if sep == 1 {
            table.push(',');
        }
        table.push_str(&row);
        kept += 1;
    }
    table.push_str("]}");
    put("flowlens/evidence".into(), table);
    if kept < f.evidence.rows.len() {
        put(
            "flowlens/evidence_rows_omitted".into(),
            (f.evidence.rows.len() - kept).to_string(),
        );
    }

    // The first entity of each kind (all of them are in Resources, up to 32).
    let mut kinds_seen = Vec::new();
    for e in &f.entities {
        if !kinds_seen.contains(&e.kind) {
            kinds_seen.push(e.kind);
            put(
                format!("flowlens/entity/{}", kind_name(e.kind)),
                e.value.clone(),
            );
        }
    }
    // Measures last: when the 50 pairs run out, evidence and entities are already in.
    for m in &f.observed {
        put(format!("flowlens/observed/{}", m.name), measure_text(m));
    }
    for m in &f.baseline {
        put(format!("flowlens/baseline/{}", m.name), measure_text(m));
    }
    json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": shorten(&f.id, 512),
        "ProductArn": format!("arn:{}:securityhub:{}:{}:product/{}/default", ctx.partition, ctx.region, ctx.account_id, ctx.account_id),
        "GeneratorId": format!("flowlens/{}", f.detector.as_str()),
        "AwsAccountId": ctx.account_id,
        "Types": [f.detector.asff_type()],
        "CreatedAt": ts(created_at.min(ctx.now)),
        "UpdatedAt": ts(ctx.now),
        "FirstObservedAt": unix(f.window_start),
        "LastObservedAt": unix(f.window_end),
        "Severity": {"Label": label, "Normalized": severity.score()},
        "Confidence": f.confidence.min(100),
        "Title": shorten(&f.title, MAX_TITLE_CHARS),
        "Description": shorten(if f.description.is_empty() { &f.title } else { &f.description }, MAX_DESCRIPTION_CHARS),
        "Remediation": {"Recommendation": {"Text": shorten(&f.recommendation, MAX_RECOMMENDATION_CHARS)}},
        "ProductFields": fields,
        "Resources": resources,
        "Region": region,
        "RecordState": "ACTIVE",
        "FindingProviderFields": {
            "Types": [f.detector.asff_type()],
            "Severity": {"Label": label, "Original": severity.score().to_string()},
            "Confidence": f.confidence.min(100),
        },
    })
}

fn is_timestamp(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok())
}

/// Checks a rendered finding against ASFF's required fields and Security Hub's limits.
///
/// # Errors
/// Every problem found, as sentences naming the field.
pub fn validate(v: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let chars = |k: &str| s(k).map(|x| x.chars().count());
    if s("SchemaVersion") != Some(SCHEMA_VERSION) {
        problems.push(format!("SchemaVersion must be {SCHEMA_VERSION}"));
    }
    for (k, max) in [("Id", 512), ("GeneratorId", 512), ("ProductArn", 2048)] {
        match chars(k) {
            Some(n) if (1..=max).contains(&n) => {}
            _ => problems.push(format!("{k} must be 1 to {max} characters")),
        }
    }
    if !s("AwsAccountId").is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())) {
        problems.push("AwsAccountId must be 12 digits".into());
    }
    if !s("ProductArn").is_some_and(|a| a.starts_with("arn:") && a.contains(":securityhub:")) {
        problems.push("ProductArn must be a Security Hub product ARN".into());
    }
    match v.get("Types").and_then(Value::as_array) {
        Some(t)
            if !t.is_empty()
                && t.len() <= 50
                && t.iter().all(|x| {
                    x.as_str()
                        .is_some_and(|x| !x.is_empty() && x.split('/').count() <= 3)
                }) => {}
        _ => problems.push("Types must hold 1 to 50 namespace/category/classifier strings".into()),
    }
    for k in ["CreatedAt", "UpdatedAt"] {
        if !v.get(k).is_some_and(is_timestamp) {
            problems.push(format!("{k} must be an RFC 3339 timestamp"));
        }
    }
    let label = v.pointer("/Severity/Label").and_then(Value::as_str);
    if !matches!(
        label,
        Some("INFORMATIONAL" | "LOW" | "MEDIUM" | "HIGH" | "CRITICAL")
    ) {
        problems.push("Severity.Label must be INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL".into());
    }
    match chars("Title") {
        Some(n) if (1..=MAX_TITLE_CHARS).contains(&n) => {}
        _ => problems.push(format!("Title must be 1 to {MAX_TITLE_CHARS} characters")),
    }
    match chars("Description") {
        Some(n) if (1..=MAX_DESCRIPTION_CHARS).contains(&n) => {}
        _ => problems.push(format!(
            "Description must be 1 to {MAX_DESCRIPTION_CHARS} characters"
        )),
    }
    match v.get("Resources").and_then(Value::as_array) {
        Some(r) if (1..=MAX_RESOURCES).contains(&r.len()) => {
            for (i, r) in r.iter().enumerate() {
                if r.get("Type")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                    || r.get("Id")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    problems.push(format!("Resources[{i}] needs a Type and an Id"));
                }
            }
        }
        _ => problems.push(format!("Resources must hold 1 to {MAX_RESOURCES} items")),
    }
    if let Some(fields) = v.get("ProductFields").and_then(Value::as_object) {
        if fields.len() > MAX_PRODUCT_FIELDS {
            problems.push(format!(
                "ProductFields holds more than {MAX_PRODUCT_FIELDS} pairs"
            ));
        }
        for (k, val) in fields {
            let ok = k.chars().count() <= MAX_PRODUCT_FIELD_KEY_CHARS
                && val
                    .as_str()
                    .is_some_and(|x| x.chars().count() <= MAX_PRODUCT_FIELD_VALUE_CHARS);
            if !ok {
                problems.push(format!(
                    "ProductFields entry `{}` is too long or not a string",
                    shorten(k, 40)
                ));
            }
        }
    }
    let size = v.to_string().len();
    if size > MAX_FINDING_BYTES {
        problems.push(format!(
            "the finding is {size} bytes; at most {MAX_FINDING_BYTES} are accepted"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// A measure as a `ProductFields` value: the number and its unit. Whole numbers are
/// exact (byte counts); others are rounded to four decimals (`54.85 score`, not
/// `54.849999999999994 score`), or written with an exponent where that would leave
/// nothing of them.
fn measure_text(m: &Measure) -> String {
    let v = m.value;
    let number = if !v.is_finite() || v.fract() == 0.0 {
        format!("{v}")
    } else {
        let rounded = format!("{v:.4}");
        let rounded = rounded.trim_end_matches('0').trim_end_matches('.');
        if rounded == "0" || rounded == "-0" {
            format!("{v:.3e}")
        } else {
            rounded.to_string()
        }
    };
    format!("{number} {}", m.unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowlens_model::finding::{DetectorId, Entity, Evidence, Measure, Severity, finding_id};

    fn ctx() -> AsffContext {
        AsffContext {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
            now: DateTime::parse_from_rfc3339("2025-06-02T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn finding() -> Finding {
        Finding {
            id: finding_id(DetectorId::ExfiltrationSpike, "eni-0abc", 1_748_858_400),
            detector: DetectorId::ExfiltrationSpike,
            severity: Severity::new(75),
            confidence: 80,
            title: "eni-0abc sent 12.4 GB to the internet in 1 hour, 40x its baseline".into(),
            description: "Observed 12.4 GB against a median of 310 MB.".into(),
            entities: vec![
                Entity::subject(EntityKind::Eni, "eni-0abc"),
                Entity::subject(EntityKind::Instance, "i-0def"),
                Entity::peer(EntityKind::Ip, "203.0.113.9"),
            ],
            window_start: 1_748_858_400,
            window_end: 1_748_862_000,
            observed: vec![Measure {
                name: "bytes".into(),
                value: 1.24e10,
                unit: "bytes".into(),
            }],
            baseline: vec![Measure {
                name: "median_bytes".into(),
                value: 3.1e8,
                unit: "bytes".into(),
            }],
            evidence: Evidence {
                columns: vec!["dstaddr".into(), "dstport".into(), "bytes".into()],
                rows: vec![vec![
                    "203.0.113.9".into(),
                    "443".into(),
                    "12400000000".into(),
                ]],
            },
            recommendation: "Confirm with the owner of i-0def whether this transfer is expected."
                .into(),
            account_id: Some("123456789012".into()),
            region: Some("us-east-1".into()),
        }
    }

    #[test]
    fn every_rendered_field_reaches_the_sdk() {
        let v = render(&finding(), &ctx());
        let sdk = crate::sink::security_hub::to_sdk(&v).unwrap();
        assert_eq!(sdk.id(), v["Id"].as_str());
        assert_eq!(
            sdk.resources().len(),
            v["Resources"].as_array().unwrap().len()
        );
        assert_eq!(
            sdk.product_fields().unwrap().len(),
            v["ProductFields"].as_object().unwrap().len()
        );
        assert_eq!(sdk.severity().unwrap().normalized(), Some(75));
        assert_eq!(
            sdk.finding_provider_fields()
                .unwrap()
                .severity()
                .unwrap()
                .original(),
            Some("75")
        );
        // A field the translation does not know is refused, not dropped.
        let mut extra = v.clone();
        extra["Note"] = serde_json::json!({"Text": "x"});
        assert!(
            crate::sink::security_hub::to_sdk(&extra)
                .unwrap_err()
                .contains("Note")
        );
    }

    #[test]
    fn findings_are_imported_for_the_caller_and_updates_keep_created_at() {
        let mut f = finding();
        f.account_id = Some("210987654321".into());
        let created = DateTime::parse_from_rfc3339("2025-06-02T11:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = render_update(&f, &ctx(), created);
        validate(&v).unwrap();
        assert_eq!(v["AwsAccountId"], "123456789012");
        assert_eq!(v["ProductFields"]["flowlens/log_account"], "210987654321");
        assert!(
            v["Resources"][0]["Id"]
                .as_str()
                .unwrap()
                .contains(":210987654321:")
        );
        assert_eq!(v["CreatedAt"], "2025-06-02T11:00:00.000Z");
        assert_eq!(v["UpdatedAt"], "2025-06-02T12:00:00.000Z");
        // The caller's own logs carry no log_account field.
        assert!(
            render(&finding(), &ctx())["ProductFields"]
                .get("flowlens/log_account")
                .is_none()
        );
    }

    #[test]
    fn renders_required_fields() {
        let v = render(&finding(), &ctx());
        validate(&v).unwrap();
        assert_eq!(
            v["ProductArn"],
            "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
        );
        assert_eq!(v["GeneratorId"], "flowlens/exfiltration-spike");
        assert_eq!(v["Severity"]["Label"], "HIGH");
        assert_eq!(v["Types"][0], "Effects/Data Exfiltration/EgressVolumeSpike");
        assert_eq!(v["Resources"][0]["Type"], "AwsEc2NetworkInterface");
        assert_eq!(
            v["Resources"][0]["Id"],
            "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-0abc"
        );
        assert_eq!(v["Resources"][1]["Type"], "AwsEc2Instance");
        assert_eq!(v["Resources"][2]["Type"], "Other");
        assert_eq!(v["FirstObservedAt"], "2025-06-02T10:00:00.000Z");
        assert_eq!(
            v["ProductFields"]["flowlens/observed/bytes"],
            "12400000000 bytes"
        );
    }

    #[test]
    fn measures_read_as_numbers_a_person_would_write() {
        let text = |value: f64, unit: &str| {
            measure_text(&Measure {
                name: "m".into(),
                value,
                unit: unit.into(),
            })
        };
        assert_eq!(text(12_400_000_000.0, "bytes"), "12400000000 bytes");
        assert_eq!(text(54.849999999999994, "score"), "54.85 score");
        assert_eq!(text(2492.511341187358, "usd"), "2492.5113 usd");
        assert_eq!(text(1.0, "ratio"), "1 ratio");
        assert_eq!(text(0.5, "ratio"), "0.5 ratio");
        assert_eq!(text(-3.25, "x"), "-3.25 x");
        assert_eq!(text(0.000012, "ratio"), "1.200e-5 ratio");
        assert_eq!(text(f64::INFINITY, "x"), "inf x");
    }

    #[test]
    fn limits_are_respected_by_shortening() {
        let mut f = finding();
        f.title = "t".repeat(1000);
        f.description = "é".repeat(5000);
        f.recommendation = "r".repeat(5000);
        f.entities = (0..100)
            .map(|i| Entity::peer(EntityKind::Ip, format!("10.0.0.{i}")))
            .collect();
        f.evidence.rows = (0..10_000)
            .map(|i| {
                vec![
                    format!("10.0.{}.{}", i / 250, i % 250),
                    "22".into(),
                    "60".into(),
                ]
            })
            .collect();
        f.observed = (0..200)
            .map(|i| Measure {
                name: format!("m{i}"),
                value: i as f64,
                unit: "x".into(),
            })
            .collect();
        let v = render(&f, &ctx());
        validate(&v).unwrap();
        assert_eq!(
            v["Title"].as_str().unwrap().chars().count(),
            MAX_TITLE_CHARS
        );
        assert_eq!(
            v["Description"].as_str().unwrap().chars().count(),
            MAX_DESCRIPTION_CHARS
        );
        assert_eq!(v["Resources"].as_array().unwrap().len(), MAX_RESOURCES);
        let evidence = v["ProductFields"]["flowlens/evidence"].as_str().unwrap();
        assert!(evidence.chars().count() <= MAX_PRODUCT_FIELD_VALUE_CHARS);
        let table: Value = serde_json::from_str(evidence).expect("whole rows, valid JSON");
        let kept = table["rows"].as_array().unwrap().len();
        assert!(kept > 10, "{kept}");
        assert_eq!(
            v["ProductFields"]["flowlens/evidence_rows_omitted"],
            (10_000 - kept).to_string()
        );
    }

    #[test]
    fn validation_catches_what_aws_rejects() {
        let good = render(&finding(), &ctx());
        let cases: Vec<(&str, Value, &str)> = vec![
            ("/AwsAccountId", json!("EXAMPLE"), "AwsAccountId"),
            ("/Title", json!(""), "Title"),
            ("/Description", json!("d".repeat(1025)), "Description"),
            ("/Resources", json!([]), "Resources"),
            ("/Severity/Label", json!("SEVERE"), "Severity.Label"),
            ("/CreatedAt", json!("yesterday"), "CreatedAt"),
            ("/Types", json!(["a/b/c/d"]), "Types"),
            ("/SchemaVersion", json!("2020-01-01"), "SchemaVersion"),
        ];
        for (path, bad, field) in cases {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = bad;
            let problems = validate(&v).unwrap_err();
            assert!(
                problems.iter().any(|p| p.contains(field)),
                "{path}: {problems:?}"
            );
        }
        let mut huge = good.clone();
        huge["Note"] = json!("x".repeat(MAX_FINDING_BYTES));
        assert!(validate(&huge).unwrap_err()[0].contains("bytes"));
    }
}
