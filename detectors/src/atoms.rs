//! Texts as small integer ids that hold across chunks.
//!
//! [`crate::names::Names`] numbers the strings of one chunk; a detector whose open
//! windows outlive many chunks keys them by [`Atoms`] ids instead of owned strings, so a
//! peer or entity seen again costs an integer in its maps rather than a string
//! allocation, hash and comparison per window.

use std::collections::HashMap;
use std::sync::Arc;

use polars::prelude::PlRandomState;

/// Distinct texts, numbered in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Atoms {
    texts: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32, PlRandomState>,
}

impl Atoms {
    /// The id of `text`, new if it was not seen yet.
    pub fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 distinct texts");
        let text: Arc<str> = Arc::from(text);
        self.texts.push(Arc::clone(&text));
        self.ids.insert(text, id);
        id
    }

    /// The text of `id`.
    ///
    /// # Panics
    /// `id` was not given out by these atoms.
    pub fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }

    /// Number of distinct texts.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// No text yet.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Time to renumber the texts still in use into fresh atoms: there are more than
    /// twice the `live` ones of the last renumbering, and at least [`Atoms::COMPACT_AT`]
    /// (a run over months of logs keeps the texts of its open windows, not of every
    /// text it ever saw).
    pub fn outgrown(&self, live: usize) -> bool {
        self.len() > (2 * live).max(Self::COMPACT_AT)
    }

    /// Atoms below which [`Atoms::outgrown`] never asks for a renumbering.
    pub const COMPACT_AT: usize = 64 * 1024;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_id() {
        let mut a = Atoms::default();
        assert!(a.is_empty());
        let x = a.id("203.0.113.7");
        let y = a.id("eni-0123456789abcdef0");
        assert_eq!(a.id("203.0.113.7"), x);
        assert_ne!(x, y);
        assert_eq!(a.text(y), "eni-0123456789abcdef0");
        assert_eq!(a.len(), 2);
    }
}
