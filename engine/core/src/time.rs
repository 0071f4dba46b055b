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
    if let Some(unit) = s.chars().last()
        && let Ok(n) = s[..s.len() - unit.len_utf8()].parse::<i64>()
    {
        let d = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            'w' => Duration::try_weeks(n),
            _ => None,
        };
        if let Some(d) = d {
            return Ok(now - d);
        }
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2024-06-01T10:00:00Z), a date (2024-06-01), \
         unix seconds, or a duration before now (90m, 6h, 7d)"
    ))
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
}
