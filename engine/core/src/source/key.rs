//! What an object key says about its content: log kind, account, region, web ACL and
//! the time it covers. Pure functions over the AWS S3 key layouts:
//!
//! ```text
//! AWSLogs/[o-org/]ACCOUNT/vpcflowlogs/REGION/YYYY/MM/DD/[HH/]FILE            default, hourly
//! AWSLogs/[o-org/]aws-account-id=A/aws-service=vpcflowlogs/aws-region=R/
//!         year=Y/month=M/day=D/[hour=H/]FILE                                 hive-style
//! AWSLogs/ACCOUNT/WAFLogs/REGION/WEBACL/YYYY/MM/DD/HH/mm/FILE                WAF to S3
//! [prefix/]YYYY/MM/DD/HH/STREAM-...                                          Firehose
//! FILE = ACCOUNT_vpcflowlogs_REGION_FLOWLOGID_YYYYMMDDTHHmmZ_HASH.log.gz
//!      | ACCOUNT_waflogs_REGION_WEBACL_YYYYMMDDTHHmmZ_HASH.log.gz
//! ```

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use flowlens_model::LogKind;

/// Everything a key tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInfo {
    pub kind: Option<LogKind>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub org_id: Option<String>,
    pub web_acl: Option<String>,
    /// The time span the key's date (folders or file name) names, if any.
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Whether the file name says parquet.
    pub parquet: bool,
}

/// How far outside its key's date an object may hold records: the aggregation window
/// (up to 10 minutes) plus delivery delay. Pruning keeps objects within this margin.
pub const PRUNE_MARGIN: Duration = Duration::hours(1);

impl KeyInfo {
    /// Whether the object may hold records in `[since, until)`; keys without a date
    /// always may.
    pub fn may_overlap(&self, since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
        let Some((start, end)) = self.span else {
            return true;
        };
        let (start, end) = (start - PRUNE_MARGIN, end + PRUNE_MARGIN);
        since.is_none_or(|s| end > s) && until.is_none_or(|u| start < u)
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str, digits: usize) -> Option<u32> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn hive<'a>(seg: &'a str, name: &str) -> Option<&'a str> {
    seg.strip_prefix(name)?.strip_prefix('=')
}

/// `YYYYMMDDTHHmmZ` inside a file name, as AWS names flow-log and WAF files.
fn file_stamp(file: &str) -> Option<DateTime<Utc>> {
    file.split('_').find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(
            num(&part[0..4], 4)? as i32,
            num(&part[4..6], 2)?,
            num(&part[6..8], 2)?,
        )?;
        let t = date.and_hms_opt(num(&part[9..11], 2)?, num(&part[11..13], 2)?, 0)?;
        Some(Utc.from_utc_datetime(&t))
    })
}

/// Finds a `YYYY/MM/DD[/HH[/mm]]` run of segments (or the hive equivalent) and returns
/// the span it names.
fn folder_span(segs: &[&str]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    for i in 0..segs.len() {
        let (y, m, d) = match (
            segs.get(i)
                .and_then(|s| num(hive(s, "year").unwrap_or(s), 4)),
            segs.get(i + 1)
                .and_then(|s| num(hive(s, "month").unwrap_or(s), 2)),
            segs.get(i + 2)
                .and_then(|s| num(hive(s, "day").unwrap_or(s), 2)),
        ) {
            (Some(y), Some(m), Some(d)) => (y, m, d),
            _ => continue,
        };
        let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d) else {
            continue;
        };
        let day = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?);
        // An hour folder only counts if a file follows it (not the file name itself).
        let hour = segs
            .get(i + 3)
            .filter(|_| i + 4 < segs.len())
            .and_then(|s| num(hive(s, "hour").unwrap_or(s), 2))
            .filter(|h| *h < 24);
        return Some(match hour {
            Some(h) => {
                let start = day + Duration::hours(h as i64);
                (start, start + Duration::hours(1))
            }
            None => (day, day + Duration::days(1)),
        });
    }
    None
}

/// Parses a key (or a local path mirroring one).
pub fn parse_key(key: &str) -> KeyInfo {
    let segs: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let mut info = KeyInfo::default();
    let file = segs.last().copied().unwrap_or("");
    info.parquet = file.ends_with(".parquet");

    if let Some(at) = segs.iter().position(|s| *s == "AWSLogs") {
        let mut rest = &segs[at + 1..];
        if let Some(org) = rest.first().filter(|s| s.starts_with("o-")) {
            info.org_id = Some(org.to_string());
            rest = &rest[1..];
        }
        if let Some(acc) = rest.first() {
            let acc = hive(acc, "aws-account-id").unwrap_or(acc);
            if is_account(acc) {
                info.account_id = Some(acc.to_string());
            }
        }
        if let Some(service) = rest.get(1) {
            let service = hive(service, "aws-service").unwrap_or(service);
            info.kind = match service.to_ascii_lowercase().as_str() {
                "vpcflowlogs" => Some(LogKind::Flows),
                "waflogs" => Some(LogKind::Waf),
                _ => None,
            };
        }
        if info.kind.is_some()
            && let Some(region) = rest.get(2)
        {
            let region = hive(region, "aws-region").unwrap_or(region);
            info.region = Some(region.to_string());
            if info.kind == Some(LogKind::Waf) {
                info.web_acl = rest.get(3).map(|s| s.to_string());
            }
        }
    }

    // File names carry account, service and region too (and win over nothing).
    let parts: Vec<&str> = file.split('_').collect();
    if parts.len() >= 4 {
        let kind = match parts[1] {
            "vpcflowlogs" => Some(LogKind::Flows),
            "waflogs" => Some(LogKind::Waf),
            _ => None,
        };
        if kind.is_some() && is_account(parts[0]) {
            info.kind = info.kind.or(kind);
            info.account_id.get_or_insert_with(|| parts[0].to_string());
            info.region.get_or_insert_with(|| parts[2].to_string());
        }
    }

    info.span = match file_stamp(file) {
        // Files hold the records that ended in the 5 minutes after the stamp; a 1-minute
        // or 10-minute aggregation window is absorbed by PRUNE_MARGIN.
        Some(t) => Some((t, t + Duration::minutes(5))),
        None => folder_span(&segs),
    };
    info
}

/// At most this many day prefixes are listed one by one; a longer window lists the
/// whole prefix.
pub const MAX_DAY_PREFIXES: i64 = 400;

/// When `prefix` stops where AWS puts the date folders (after the region of a flow-log
/// layout, or after the web ACL of a WAF layout), the per-day prefixes covering
/// `[since, until)` (with [`PRUNE_MARGIN`]), so a listing never walks the whole history.
/// `None` when the prefix is elsewhere or the window is unbounded or too long.
pub fn day_prefixes(
    prefix: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Option<Vec<String>> {
    let since = since? - PRUNE_MARGIN;
    let until = until.unwrap_or_else(Utc::now) + PRUNE_MARGIN;
    let segs: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    if !prefix.ends_with('/') {
        return None;
    }
    let last = *segs.last()?;
    let hive = last.starts_with("aws-region=");
    let at = segs.iter().position(|s| *s == "AWSLogs")?;
    let rest = &segs[at + 1..];
    let rest = if rest.first().is_some_and(|s| s.starts_with("o-")) {
        &rest[1..]
    } else {
        rest
    };
    let service = rest
        .get(1)
        .map(|s| hive_value(s, "aws-service").to_ascii_lowercase());
    let depth_ok = match service.as_deref() {
        Some("vpcflowlogs") => rest.len() == 3,
        Some("waflogs") => rest.len() == 4,
        _ => false,
    };
    if !depth_ok {
        return None;
    }
    let first = since.date_naive();
    let days = (until.date_naive() - first).num_days();
    if !(0..=MAX_DAY_PREFIXES).contains(&days) {
        return None;
    }
    Some(
        (0..=days)
            .map(|d| {
                let day = first + Duration::days(d);
                if hive {
                    format!(
                        "{prefix}year={}/month={:02}/day={:02}/",
                        day.year(),
                        day.month(),
                        day.day()
                    )
                } else {
                    format!(
                        "{prefix}{}/{:02}/{:02}/",
                        day.year(),
                        day.month(),
                        day.day()
                    )
                }
            })
            .collect(),
    )
}

fn hive_value<'a>(seg: &'a str, name: &str) -> &'a str {
    hive(seg, name).unwrap_or(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn layouts() {
        let cases = [
            (
                "AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz",
                Some(LogKind::Flows),
                Some("123456789012"),
                Some("us-east-1"),
                Some(("2018-06-20T16:20:00Z", "2018-06-20T16:25:00Z")),
            ),
            (
                "prefix/AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=eu-west-1/year=2024/month=03/day=05/hour=07/x.log.parquet",
                Some(LogKind::Flows),
                Some("123456789012"),
                Some("eu-west-1"),
                Some(("2024-03-05T07:00:00Z", "2024-03-05T08:00:00Z")),
            ),
            (
                "AWSLogs/o-abc123/123456789012/vpcflowlogs/us-west-2/2024/03/05/part.log.gz",
                Some(LogKind::Flows),
                Some("123456789012"),
                Some("us-west-2"),
                Some(("2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z")),
            ),
            (
                "AWSLogs/123456789012/vpcflowlogs/us-west-2/2024/03/05/09/part.log.gz",
                Some(LogKind::Flows),
                Some("123456789012"),
                Some("us-west-2"),
                Some(("2024-03-05T09:00:00Z", "2024-03-05T10:00:00Z")),
            ),
            (
                "AWSLogs/11111111111/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/11111111111_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz",
                Some(LogKind::Waf),
                None, // 11 digits in the AWS example: not an account id
                Some("us-east-1"),
                Some(("2021-10-28T19:50:00Z", "2021-10-28T19:55:00Z")),
            ),
            (
                "firehose/2024/01/02/03/aws-waf-logs-stream-1-2024-01-02-03-04-05-uuid",
                None,
                None,
                None,
                Some(("2024-01-02T03:00:00Z", "2024-01-02T04:00:00Z")),
            ),
            ("random/file.txt", None, None, None, None),
        ];
        for (key, kind, account, region, span) in cases {
            let i = parse_key(key);
            assert_eq!(i.kind, kind, "{key}");
            assert_eq!(i.account_id.as_deref(), account, "{key}");
            assert_eq!(i.region.as_deref(), region, "{key}");
            assert_eq!(i.span, span.map(|(a, b)| (t(a), t(b))), "{key}");
        }
        assert_eq!(
            parse_key("AWSLogs/o-abc123/123456789012/vpcflowlogs/r/2024/01/01/f")
                .org_id
                .as_deref(),
            Some("o-abc123")
        );
        assert_eq!(
            parse_key("AWSLogs/123456789012/WAFLogs/cloudfront/my-acl/2024/01/01/00/00/f")
                .web_acl
                .as_deref(),
            Some("my-acl")
        );
    }

    #[test]
    fn day_prefixes_for_date_layouts() {
        let (s, u) = (
            Some(t("2024-03-05T00:30:00Z")),
            Some(t("2024-03-06T12:00:00Z")),
        );
        assert_eq!(
            day_prefixes("b/AWSLogs/123456789012/vpcflowlogs/us-east-1/", s, u).unwrap(),
            [
                "b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/04/",
                "b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/05/",
                "b/AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/06/",
            ]
        );
        let hive = "AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=eu-west-1/";
        assert_eq!(
            day_prefixes(hive, s, u).unwrap()[1],
            format!("{hive}year=2024/month=03/day=05/")
        );
        let waf = "AWSLogs/o-x/123456789012/WAFLogs/us-east-1/acl/";
        assert_eq!(day_prefixes(waf, s, u).unwrap().len(), 3);
        // Not at the date level, unbounded, or no trailing slash: list the prefix.
        assert_eq!(
            day_prefixes("AWSLogs/123456789012/vpcflowlogs/", s, u),
            None
        );
        assert_eq!(
            day_prefixes("AWSLogs/123456789012/vpcflowlogs/us-east-1/", None, u),
            None
        );
        assert_eq!(
            day_prefixes("AWSLogs/123456789012/vpcflowlogs/us-east-1", s, u),
            None
        );
        assert_eq!(day_prefixes("logs/", s, u), None);
    }

    #[test]
    fn pruning_keeps_a_margin() {
        let i = parse_key("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/03/05/f.log.gz");
        assert!(i.may_overlap(Some(t("2024-03-05T12:00:00Z")), None));
        assert!(i.may_overlap(Some(t("2024-03-06T00:30:00Z")), None)); // margin
        assert!(!i.may_overlap(Some(t("2024-03-06T02:00:00Z")), None));
        assert!(!i.may_overlap(None, Some(t("2024-03-04T22:00:00Z"))));
        assert!(parse_key("x/y.log").may_overlap(Some(t("2030-01-01T00:00:00Z")), None));
    }
}
