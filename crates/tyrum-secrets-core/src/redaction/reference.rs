//! The reference the matcher is tested against: the first milestone's
//! engine, one aho-corasick leftmost-longest automaton over every pattern,
//! with the same merge of overlapping matches, written as plainly as
//! possible.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

/// Patterns compiled with aho-corasick; see the [module docs](self).
pub(super) struct Reference {
    automaton: Option<AhoCorasick>,
    /// Pattern index → placeholder of its owner.
    owners: Vec<String>,
}

impl Reference {
    /// Compiles `patterns`, each with its owner's placeholder; a pattern
    /// listed twice belongs to its first owner.
    pub(super) fn new(patterns: &[(Vec<u8>, String)]) -> Self {
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        let mut owners = Vec::new();
        for (pattern, owner) in patterns {
            if seen.insert(pattern.clone()) {
                unique.push(pattern.clone());
                owners.push(owner.clone());
            }
        }
        let automaton = (!unique.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&unique)
                .expect("reference patterns compile")
        });
        Self { automaton, owners }
    }

    /// `haystack` with every merged span replaced by its owners'
    /// placeholders.
    pub(super) fn replace_bytes(&self, haystack: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut cursor = 0;
        for (start, end, owners) in self.spans(haystack) {
            out.extend_from_slice(&haystack[cursor..start]);
            for owner in owners {
                out.extend_from_slice(owner.as_bytes());
            }
            cursor = end;
        }
        out.extend_from_slice(&haystack[cursor..]);
        out
    }

    /// Merged spans: after each match, search again from its start plus
    /// one; a match starting inside the span extends it (and names its
    /// owner) when it ends past it.
    fn spans(&self, haystack: &[u8]) -> Vec<(usize, usize, Vec<&str>)> {
        let mut spans: Vec<(usize, usize, Vec<&str>)> = Vec::new();
        let mut from = 0;
        while let Some(m) = self.find(haystack, from) {
            let owner = self.owners[m.pattern().as_usize()].as_str();
            match spans.last_mut() {
                Some((_, end, owners)) if m.start() < *end => {
                    if m.end() > *end {
                        *end = m.end();
                        if !owners.contains(&owner) {
                            owners.push(owner);
                        }
                    }
                }
                _ => spans.push((m.start(), m.end(), vec![owner])),
            }
            from = m.start() + 1;
        }
        spans
    }

    fn find(&self, haystack: &[u8], from: usize) -> Option<aho_corasick::Match> {
        let automaton = self.automaton.as_ref()?;
        if from >= haystack.len() {
            return None;
        }
        automaton.find(Input::new(haystack).span(from..haystack.len()))
    }
}
