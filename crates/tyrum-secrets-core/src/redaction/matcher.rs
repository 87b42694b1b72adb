//! The compiled matcher: one Aho-Corasick automaton over every variant of
//! every registered value, and the loop that turns its matches into merged
//! spans to replace.

use std::collections::HashSet;

use crate::HandleId;
use aho_corasick::{AhoCorasick, Input, MatchKind};
use zeroize::Zeroizing;

/// An immutable snapshot of the registered values, compiled.
///
/// Built aside by a registration and swapped in whole; redactions hold an
/// `Arc` to the snapshot they started with.
pub(crate) struct Matcher {
    /// `None` when nothing is registered.
    automaton: Option<AhoCorasick>,
    /// Pattern index → index into `placeholders`.
    owners: Vec<u32>,
    /// `[secret:<id>]` for each handle.
    placeholders: Vec<Box<str>>,
    /// Longest pattern, in bytes.
    max_len: usize,
    /// Every pattern, sorted bytewise: answers whether some text could be
    /// the start of a pattern ([`possible_start_len`](Self::possible_start_len)).
    /// Copies of secret variants, wiped on drop.
    sorted: Vec<Zeroizing<Vec<u8>>>,
}

/// A stretch of the input to replace: the union of overlapping matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The handles whose matches make up the span, in order, without
    /// repeats. A match wholly inside the span so far adds nothing: naming
    /// it would only tell the reader that one secret contains another.
    pub(crate) owners: Vec<u32>,
}

impl Matcher {
    /// The matcher with no patterns.
    pub(crate) fn empty() -> Self {
        Self {
            automaton: None,
            owners: Vec::new(),
            placeholders: Vec::new(),
            max_len: 0,
            sorted: Vec::new(),
        }
    }

    /// Compiles `patterns`, each with the index of its handle in `handles`.
    /// A pattern that appears under several handles is attributed to the
    /// first one listed.
    pub(crate) fn build(
        handles: &[&HandleId],
        patterns: &[(&[u8], u32)],
    ) -> Result<Self, aho_corasick::BuildError> {
        if patterns.is_empty() {
            return Ok(Self::empty());
        }
        let mut seen: HashSet<&[u8]> = HashSet::with_capacity(patterns.len());
        let mut unique: Vec<&[u8]> = Vec::with_capacity(patterns.len());
        let mut owners = Vec::with_capacity(patterns.len());
        for (pattern, owner) in patterns {
            if seen.insert(pattern) {
                unique.push(pattern);
                owners.push(*owner);
            }
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&unique)?;
        let max_len = automaton.max_pattern_len();
        let mut sorted: Vec<Zeroizing<Vec<u8>>> =
            unique.iter().map(|p| Zeroizing::new(p.to_vec())).collect();
        sorted.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        let placeholders = handles
            .iter()
            .map(|h| format!("[{h}]").into_boxed_str())
            .collect();
        Ok(Self {
            automaton: Some(automaton),
            owners,
            placeholders,
            max_len,
            sorted,
        })
    }

    /// The longest pattern, in bytes; 0 when nothing is registered.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// The length of the longest suffix of `tail` that is the start (or
    /// the whole) of some pattern: the bytes a stream must still hold back
    /// because what follows could complete a value there. 0 when no
    /// pattern can start in `tail`.
    pub(crate) fn possible_start_len(&self, tail: &[u8]) -> usize {
        let longest = tail.len().min(self.max_len);
        (1..=longest)
            .rev()
            .find(|&k| {
                let suffix = &tail[tail.len() - k..];
                let at = self.sorted.partition_point(|p| p.as_slice() < suffix);
                self.sorted.get(at).is_some_and(|p| p.starts_with(suffix))
            })
            .unwrap_or(0)
    }

    /// How many distinct patterns the automaton holds.
    pub(crate) fn pattern_count(&self) -> usize {
        self.owners.len()
    }

    /// The merged spans of `haystack`, left to right.
    pub(crate) fn spans<'m, 'h>(&'m self, haystack: &'h [u8]) -> Spans<'m, 'h> {
        Spans {
            matcher: self,
            haystack,
            next: None,
            search_from: 0,
        }
    }

    /// Writes the placeholders of `span` to `out`.
    pub(crate) fn write_placeholders(&self, span: &Span, out: &mut Vec<u8>) {
        for placeholder in self.placeholders(span) {
            out.extend_from_slice(placeholder.as_bytes());
        }
    }

    /// The placeholders of `span`, one per handle, in order.
    pub(crate) fn placeholders<'a>(&'a self, span: &'a Span) -> impl Iterator<Item = &'a str> {
        span.owners
            .iter()
            .filter_map(|&owner| self.placeholders.get(owner as usize).map(|p| &p[..]))
    }

    /// Replaces every span of `haystack` with its placeholders. `None` when
    /// nothing matched, so callers can hand back the input unchanged.
    pub(crate) fn replace_bytes(&self, haystack: &[u8]) -> Option<Vec<u8>> {
        let mut spans = self.spans(haystack).peekable();
        spans.peek()?;
        let mut out = Vec::with_capacity(haystack.len());
        let mut cursor = 0;
        for span in spans {
            out.extend_from_slice(&haystack[cursor..span.start]);
            self.write_placeholders(&span, &mut out);
            cursor = span.end;
        }
        out.extend_from_slice(&haystack[cursor..]);
        Some(out)
    }

    /// [`replace_bytes`](Self::replace_bytes) for text: each span is first
    /// widened to the enclosing character boundaries, so the output is text
    /// even when a non-UTF-8 value matched inside a multi-byte character.
    /// Built from `&str` pieces, so the output is never re-validated.
    pub(crate) fn replace_str(&self, text: &str) -> Option<String> {
        let haystack = text.as_bytes();
        let mut spans = self.spans(haystack).peekable();
        spans.peek()?;
        let mut out = String::with_capacity(text.len());
        let mut cursor = 0;
        for span in spans {
            let mut start = span.start.max(cursor);
            let mut end = span.end;
            while start > cursor && !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            if end > cursor {
                // Both ends are character boundaries (the loops stop only at
                // one, and `cursor` always is one), so `get` cannot fail; an
                // empty fallback would drop text, never leak it.
                out.push_str(text.get(cursor..start).unwrap_or_default());
                cursor = end;
            }
            // A span swallowed by widening the previous one still names its
            // handles.
            for placeholder in self.placeholders(&span) {
                out.push_str(placeholder);
            }
        }
        out.push_str(text.get(cursor..).unwrap_or_default());
        Some(out)
    }

    fn find(&self, haystack: &[u8], from: usize) -> Option<aho_corasick::Match> {
        let automaton = self.automaton.as_ref()?;
        if from >= haystack.len() {
            return None;
        }
        automaton.find(Input::new(haystack).span(from..haystack.len()))
    }
}

/// Iterator over merged spans; see [`Matcher::spans`].
///
/// After each match it searches again from the match's start plus one, not
/// from its end: leftmost-longest search alone would resume at the end and
/// miss a second value that begins inside the first and runs past it,
/// leaking that value's tail. Every occurrence of every pattern therefore
/// lies inside some span. Text without matches is scanned once.
pub(crate) struct Spans<'m, 'h> {
    matcher: &'m Matcher,
    haystack: &'h [u8],
    /// A match found while extending the previous span that starts the next.
    next: Option<aho_corasick::Match>,
    search_from: usize,
}

impl Iterator for Spans<'_, '_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let first = match self.next.take() {
            Some(m) => m,
            None => self.matcher.find(self.haystack, self.search_from)?,
        };
        let owner = |m: &aho_corasick::Match| {
            self.matcher
                .owners
                .get(m.pattern().as_usize())
                .copied()
                .unwrap_or(0)
        };
        let mut span = Span {
            start: first.start(),
            end: first.end(),
            owners: vec![owner(&first)],
        };
        let mut last_start = first.start();
        loop {
            match self.matcher.find(self.haystack, last_start + 1) {
                Some(m) if m.start() < span.end => {
                    if m.end() > span.end {
                        span.end = m.end();
                        let o = owner(&m);
                        if !span.owners.contains(&o) {
                            span.owners.push(o);
                        }
                    }
                    last_start = m.start();
                }
                Some(m) => {
                    self.search_from = m.start() + 1;
                    self.next = Some(m);
                    break;
                }
                None => {
                    self.search_from = self.haystack.len();
                    break;
                }
            }
        }
        Some(span)
    }
}
