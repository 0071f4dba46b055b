//! Numbers with units, for titles and descriptions.

use chrono::DateTime;

/// Bytes in decimal units (`1.23 GB`).
pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = b;
    let mut u = 0;
    while v.abs() >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// US dollars (`$1,234.56`).
pub fn usd(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("${grouped}.{:02}", (cents % 100).abs())
}

/// A unix time as `2025-06-02T10:00Z`.
pub fn time(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// The sentence that ends the description of a finding that goes on (its run of
/// windows from `first`, `windows` of them, this one included; see
/// [`crate::stats::Episodes`]): `" {what} in every window since 2025-06-02T10:00Z (3
/// windows, this one included)."`, or nothing for one window.
pub fn going_on(what: &str, first: i64, windows: i64) -> String {
    if windows > 1 {
        format!(
            " {what} in every window since {} ({windows} windows, this one included).",
            time(first)
        )
    } else {
        String::new()
    }
}

/// A window as `2025-06-02T10:00Z–10:10Z`.
pub fn window(start: i64, end: i64) -> String {
    let e = time(end);
    format!("{}–{}", time(start), e.split('T').nth(1).unwrap_or(&e))
}

/// At most `max` characters of a log-borne string, control characters dropped (log
/// text is attacker-controlled; findings travel to consoles and terminals).
pub fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    if s.chars().filter(|c| !c.is_control()).count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(bytes(1_234_567_890.0), "1.23 GB");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(usd(0.004), "$0.00");
        assert_eq!(
            window(1_748_858_400, 1_748_859_000),
            "2025-06-02T10:00Z–10:10Z"
        );
    }
}
