//! Making log-derived strings safe to draw: no control characters, no terminal escape
//! sequences, no bidirectional overrides (log lines are attacker-controlled).

use flowlens_queries::output::inert;

/// A single-line cell: escapes made visible (`\u{1b}`), line breaks and tabs as spaces.
pub fn cell(s: &str) -> String {
    inert(&s.replace(['\n', '\r', '\t'], " ")).into_owned()
}

/// A block of text that may keep its line breaks; everything else as [`cell`].
pub fn inert_block(s: &str) -> String {
    s.split('\n').map(cell).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        let ua = "Mozilla/5.0\u{1b}]0;pwned\u{7}\u{1b}[2J\r\ncurl";
        let c = cell(ua);
        assert!(c.chars().all(|ch| !ch.is_control()), "{c:?}");
        assert!(c.contains("\\u{1b}]0;pwned"), "{c}");
        let b = inert_block("a\u{1b}[31m\nb");
        assert_eq!(b.lines().count(), 2);
        assert!(!b.contains('\u{1b}'));
    }
}
