//! The matcher: an immutable snapshot of the registered patterns, and the
//! loop that turns their occurrences into merged spans to replace.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

use super::group::Pattern;
use super::index::{Index, OpenTail};

/// An immutable snapshot of the registered patterns.
///
/// A registration clones the current snapshot (sharing all its pages),
/// changes the clone and swaps it in; redactions hold an `Arc` to the
/// snapshot they started with.
#[derive(Clone)]
pub(crate) struct Matcher {
    index: Index,
    /// The same patterns compiled with aho-corasick, while there are only a
    /// few of them: its SIMD prefilter then scans faster than the index.
    few: Option<Arc<Few>>,
    /// Longest pattern, in bytes.
    max_len: usize,
}

/// A handful of patterns compiled with aho-corasick; see [`Matcher`].
struct Few {
    automaton: AhoCorasick,
    /// Pattern id → pattern.
    patterns: Vec<Arc<Pattern>>,
}

/// A stretch of the input to replace: the union of overlapping matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span<'m> {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// The placeholders of the handles whose matches make up the span, in
    /// order, without repeats. A match wholly inside the span so far adds
    /// nothing: naming it would only tell the reader that one secret
    /// contains another.
    pub(crate) owners: Vec<&'m str>,
}

impl Matcher {
    /// The matcher with no patterns, for patterns of at least `min_len`
    /// bytes.
    pub(crate) fn empty(min_len: usize, seed: u64) -> Self {
        Self {
            index: Index::new(min_len, seed),
            few: None,
            max_len: 0,
        }
    }

    /// Adds `pattern`, or gives the pattern with the same bytes a new owner.
    pub(super) fn insert(&mut self, pattern: Arc<Pattern>) {
        self.index.insert(pattern);
    }

    /// Removes the pattern with these bytes.
    pub(super) fn remove(&mut self, bytes: &[u8]) -> bool {
        self.index.remove(bytes)
    }

    /// Starts counting the work of a change to this snapshot (a clone of
    /// the published one).
    pub(super) fn begin_change(&mut self) {
        self.index.begin_change();
    }

    /// Bytes of structure the change since
    /// [`begin_change`](Self::begin_change) copied or built, beyond the
    /// patterns it added: what keeps a registration cheap however much is
    /// registered already.
    #[cfg(test)]
    pub(crate) fn change_work(&self) -> usize {
        self.index.change_work()
    }

    /// Records the longest pattern's length (the registry keeps count).
    pub(super) fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }

    /// Compiles `patterns` (every pattern of this snapshot, when there are
    /// only a few) with aho-corasick, or drops the automaton (`None`).
    pub(super) fn set_few(&mut self, patterns: Option<Vec<Arc<Pattern>>>) {
        self.few = patterns.and_then(|patterns| {
            // Never a DFA: aho-corasick picks one for a few patterns, and
            // builds it in time super-linear in a repetitive pattern. The
            // contiguous NFA builds in linear time. Should it fail anyway,
            // the index serves.
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(patterns.iter().map(|p| p.bytes()))
                .ok()
                .map(|automaton| {
                    Arc::new(Few {
                        automaton,
                        patterns,
                    })
                })
        });
    }

    /// Which automaton aho-corasick built; `None` when the index serves
    /// alone.
    #[cfg(test)]
    pub(crate) fn automaton_kind(&self) -> Option<AhoCorasickKind> {
        self.few.as_ref().map(|few| few.automaton.kind())
    }

    /// The leftmost occurrence at or after `from`, with the longest pattern
    /// there; see [`Index::find`] for `open`.
    #[inline]
    fn find(&self, haystack: &[u8], from: usize, open: &mut OpenTail) -> Option<Found<'_>> {
        let Some(few) = &self.few else {
            return self.index.find(haystack, from, open);
        };
        if from >= haystack.len() {
            return None;
        }
        let found = few
            .automaton
            .find(Input::new(haystack).span(from..haystack.len()))?;
        let pattern = few.patterns.get(found.pattern().as_usize())?;
        Some((found.start(), pattern))
    }

    /// The first position from which the rest of `haystack` is a proper
    /// prefix of some pattern, or `haystack.len()`: asked of the index,
    /// over the last `max_len - 1` bytes only (the few-patterns path keeps
    /// them short).
    fn open_tail(&self, haystack: &[u8]) -> usize {
        let mut open = OpenTail {
            watch: true,
            at: None,
        };
        let mut from = haystack
            .len()
            .saturating_sub(self.max_len.saturating_sub(1));
        while let Some((at, _)) = self.index.find(haystack, from, &mut open) {
            if open.at.is_some() {
                break;
            }
            from = at + 1;
        }
        open.at.unwrap_or(haystack.len())
    }

    /// The longest pattern, in bytes; 0 when nothing is registered.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// How many distinct patterns the matcher holds.
    pub(crate) fn pattern_count(&self) -> usize {
        self.index.pattern_count()
    }

    /// The merged spans of `haystack`, left to right.
    pub(crate) fn spans<'m, 'h>(&'m self, haystack: &'h [u8]) -> Spans<'m, 'h> {
        Spans {
            matcher: self,
            haystack,
            next: None,
            search_from: 0,
            open: OpenTail::default(),
        }
    }

    /// The merged spans of the bytes a stream has buffered so far, and
    /// where its open tail begins: the first position from which the rest
    /// is a proper prefix of some pattern, which the next bytes may still
    /// complete (`haystack.len()` when there is none). A span that ends
    /// before that position is final; one that reaches past it may grow.
    pub(crate) fn stream_spans<'m>(&'m self, haystack: &[u8]) -> (Vec<Span<'m>>, usize) {
        let mut spans = Spans {
            matcher: self,
            haystack,
            next: None,
            search_from: 0,
            open: OpenTail {
                watch: true,
                at: None,
            },
        };
        let found: Vec<Span<'m>> = spans.by_ref().collect();
        let open = match self.few {
            Some(_) => self.open_tail(haystack),
            None => spans.open.at.unwrap_or(haystack.len()),
        };
        (found, open)
    }

    /// Writes the placeholders of `span` to `out`.
    pub(crate) fn write_placeholders(&self, span: &Span<'_>, out: &mut Vec<u8>) {
        for placeholder in &span.owners {
            out.extend_from_slice(placeholder.as_bytes());
        }
    }

    /// The placeholders of `span`, one per handle, in order.
    pub(crate) fn placeholders<'a>(&self, span: &'a Span<'_>) -> impl Iterator<Item = &'a str> {
        span.owners.iter().copied()
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
            for placeholder in &span.owners {
                out.push_str(placeholder);
            }
        }
        out.push_str(text.get(cursor..).unwrap_or_default());
        Some(out)
    }
}

/// A pattern occurrence: where it starts and the (longest) pattern there.
type Found<'m> = (usize, &'m Pattern);

/// Iterator over merged spans; see [`Matcher::spans`].
///
/// After each match it searches again from the match's start plus one, not
/// from its end: leftmost-longest search alone would resume at the end and
/// miss a second value that begins inside the first and runs past it,
/// leaking that value's tail. Every occurrence of every pattern therefore
/// lies inside some span. Each position is visited once, in order.
pub(crate) struct Spans<'m, 'h> {
    matcher: &'m Matcher,
    haystack: &'h [u8],
    /// A match found while extending the previous span that starts the next.
    next: Option<Found<'m>>,
    search_from: usize,
    open: OpenTail,
}

impl<'m> Iterator for Spans<'m, '_> {
    type Item = Span<'m>;

    fn next(&mut self) -> Option<Span<'m>> {
        let (start, first) = match self.next.take() {
            Some(found) => found,
            None => self
                .matcher
                .find(self.haystack, self.search_from, &mut self.open)?,
        };
        let mut span = Span {
            start,
            end: start + first.bytes().len(),
            owners: vec![first.owner()],
        };
        let mut last_start = start;
        loop {
            match self
                .matcher
                .find(self.haystack, last_start + 1, &mut self.open)
            {
                Some((at, pattern)) if at < span.end => {
                    let end = at + pattern.bytes().len();
                    if end > span.end {
                        span.end = end;
                        let owner = pattern.owner();
                        if !span.owners.contains(&owner) {
                            span.owners.push(owner);
                        }
                    }
                    last_start = at;
                }
                Some(found) => {
                    self.search_from = found.0 + 1;
                    self.next = Some(found);
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
