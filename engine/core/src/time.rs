//! Time arguments: `--since`/`--until` accept RFC 3339, a date, a date and time
//! without zone (UTC), unix seconds, or a duration before now (`90m`, `6h`, `7d`).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};

/// Parses a time argument relative to `now`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    if s.len() >= 9
        && s.bytes().all(|b| b.is_ascii_digit())
        && let Some(t) = s
            .parse()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
    {
        return Ok(t);
    }
    if s.ends_with(|c: char| c.is_ascii_alphabetic())
        && let Ok(d) = parse_duration(s)
    {
        return Ok(now - d);
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2024-06-01T10:00:00Z), a date (2024-06-01), \
         unix seconds, or a duration before now (90m, 6h, 7d)"
    ))
}

/// A duration: `90s`, `30m`, `6h`, `7d`, `2w`, or plain seconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let d = num.parse::<i64>().ok().and_then(|n| match unit {
        "" | "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    });
    d.ok_or_else(|| format!("`{s}` is not a duration: use 90s, 30m, 6h, 7d or 2w"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now = DateTime::parse_from_rfc3339("2024-06-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("2024-06-01T10:00:00Z", "2024-06-01T10:00:00+00:00"),
            ("2024-06-01T12:00:00+02:00", "2024-06-01T10:00:00+00:00"),
            ("2024-06-01T10:00", "2024-06-01T10:00:00+00:00"),
            ("2024-06-01", "2024-06-01T00:00:00+00:00"),
            ("1717236000", "2024-06-01T10:00:00+00:00"),
            ("6h", "2024-06-10T06:00:00+00:00"),
            ("7d", "2024-06-03T12:00:00+00:00"),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_time(input, now).unwrap().to_rfc3339(),
                want,
                "{input}"
            );
        }
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("5x", now).is_err());
    }

    #[test]
    fn durations() {
        for (s, secs) in [
            ("90", 90),
            ("90s", 90),
            ("30m", 1800),
            ("2h", 7200),
            ("7d", 604_800),
            ("1w", 604_800),
        ] {
            assert_eq!(parse_duration(s).unwrap().num_seconds(), secs, "{s}");
        }
        for bad in ["", "m", "5x", "-3m", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
