//! [`Group`]: the patterns that begin with one anchor (their first window),
//! sorted, in shared chunks, so that a registration copies one chunk and
//! the chunk list rather than the whole group.
//!
//! Sorted order answers both questions the matcher asks at a candidate
//! position: which is the longest pattern that the text continues with, and
//! could the text's last bytes be the start of a pattern (the streaming
//! writer's hold-back).

use std::cmp::Ordering;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A pattern's bytes, wiped when the last snapshot and registry entry that
/// share them let go.
pub(super) type PatternBytes = Zeroizing<Vec<u8>>;

/// One pattern (a value or one of its encodings) and the placeholder of the
/// handle it is attributed to.
#[derive(Debug)]
pub(crate) struct Pattern {
    bytes: Arc<PatternBytes>,
    owner: Arc<str>,
}

impl Pattern {
    pub(super) fn new(bytes: Arc<PatternBytes>, owner: Arc<str>) -> Self {
        Self { bytes, owner }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `[secret:<handle_id>]` of the handle the pattern is attributed to.
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }
}

/// Chunks split when they grow past this many patterns.
const CHUNK_MAX: usize = 64;

type Chunk = Vec<Arc<Pattern>>;

/// The patterns sharing one anchor, sorted by bytes; see the
/// [module docs](self).
#[derive(Clone, Default)]
pub(super) struct Group {
    /// Sorted, non-empty chunks; every pattern of a chunk sorts after every
    /// pattern of the chunk before.
    chunks: Vec<Arc<Chunk>>,
    len: usize,
    /// At least the longest pattern's length (not lowered on removal, so
    /// only ever too generous).
    max_len: usize,
}

impl Group {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// An upper bound on the longest pattern's length.
    pub(super) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Adds `pattern`, or replaces the pattern with the same bytes (to
    /// change its owner). Returns the bytes of chunk copied because another
    /// snapshot shared it.
    pub(super) fn insert(&mut self, pattern: Arc<Pattern>) -> usize {
        self.max_len = self.max_len.max(pattern.bytes().len());
        let c = self.chunk_for(pattern.bytes());
        let Some(slot) = self.chunks.get_mut(c) else {
            self.chunks.push(Arc::new(vec![pattern]));
            self.len += 1;
            return 0;
        };
        let copied = shared_size(slot);
        let chunk = Arc::make_mut(slot);
        match chunk.binary_search_by(|p| p.bytes().cmp(pattern.bytes())) {
            Ok(i) => chunk[i] = pattern,
            Err(i) => {
                chunk.insert(i, pattern);
                self.len += 1;
                if chunk.len() > CHUNK_MAX {
                    let upper = chunk.split_off(chunk.len() / 2);
                    self.chunks.insert(c + 1, Arc::new(upper));
                }
            }
        }
        copied
    }

    /// Removes the pattern with these bytes. Returns whether it was there,
    /// and the bytes of chunk copied because another snapshot shared it.
    pub(super) fn remove(&mut self, bytes: &[u8]) -> (bool, usize) {
        let c = self.chunk_for(bytes);
        let Some(slot) = self.chunks.get_mut(c) else {
            return (false, 0);
        };
        let Ok(i) = slot.binary_search_by(|p| p.bytes().cmp(bytes)) else {
            return (false, 0);
        };
        let copied = shared_size(slot);
        let chunk = Arc::make_mut(slot);
        chunk.remove(i);
        if chunk.is_empty() {
            self.chunks.remove(c);
        }
        self.len -= 1;
        (true, copied)
    }

    /// The bytes a copy of the group itself (its chunk list) takes.
    pub(super) fn list_size(&self) -> usize {
        self.chunks.len() * std::mem::size_of::<Arc<Chunk>>()
    }

    /// The longest pattern that `text` begins with. Every pattern of the
    /// group begins with the same `anchor_len` bytes.
    ///
    /// The greatest pattern not after `text` is the answer if `text` begins
    /// with it. Otherwise no pattern longer than their common prefix can be
    /// one `text` begins with (it would sort between the two), so the
    /// search repeats on that prefix, which is strictly shorter each time.
    #[inline]
    pub(super) fn longest_prefix_of(&self, text: &[u8], anchor_len: usize) -> Option<&Pattern> {
        let mut probe = text;
        loop {
            let candidate = self.last_not_after(probe)?;
            let bytes = candidate.bytes();
            if probe.starts_with(bytes) {
                return Some(candidate);
            }
            let common = bytes.iter().zip(probe).take_while(|(a, b)| a == b).count();
            if common < anchor_len {
                return None;
            }
            probe = &probe[..common];
        }
    }

    /// Whether a pattern longer than `tail` begins with it: then `tail`, at
    /// the end of a stream, may be the start of a value still being
    /// written.
    pub(super) fn extends(&self, tail: &[u8]) -> bool {
        // The patterns beginning with `tail` sort together, first among
        // those not before it.
        let c = self.chunk_for(tail);
        let Some(chunk) = self.chunks.get(c) else {
            return false;
        };
        let i = chunk.partition_point(|p| p.bytes() < tail);
        let mut following = chunk[i..].iter().chain(
            self.chunks
                .get(c + 1)
                .into_iter()
                .flat_map(|next| next.iter()),
        );
        // At most the first two: `tail` itself, then its first extension.
        following
            .by_ref()
            .take(2)
            .any(|p| p.bytes().len() > tail.len() && p.bytes().starts_with(tail))
    }

    /// Every pattern, in order.
    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<Pattern>> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The greatest pattern that sorts before or equal to `probe`.
    fn last_not_after(&self, probe: &[u8]) -> Option<&Pattern> {
        let c = self.chunk_for(probe);
        let chunk = self.chunks.get(c)?;
        let i = chunk.partition_point(|p| p.bytes() <= probe);
        i.checked_sub(1).and_then(|i| chunk.get(i)).map(|p| &**p)
    }

    /// The chunk `bytes` sorts into: the last one whose first pattern is
    /// not after it (the first chunk when it sorts before everything).
    fn chunk_for(&self, bytes: &[u8]) -> usize {
        self.chunks
            .partition_point(|chunk| {
                chunk
                    .first()
                    .is_some_and(|p| p.bytes().cmp(bytes) != Ordering::Greater)
            })
            .saturating_sub(1)
    }
}

/// What copying `chunk` costs if another snapshot shares it, else 0.
fn shared_size(chunk: &mut Arc<Chunk>) -> usize {
    if Arc::get_mut(chunk).is_some() {
        0
    } else {
        chunk.len() * std::mem::size_of::<Arc<Pattern>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn pattern(bytes: &[u8]) -> Arc<Pattern> {
        Arc::new(Pattern::new(
            Arc::new(Zeroizing::new(bytes.to_vec())),
            Arc::from("[p]"),
        ))
    }

    proptest! {
        #[test]
        fn answers_like_a_linear_search(
            patterns in proptest::collection::btree_set("ab[ab]{0,6}", 1..200),
            removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..50),
            texts in proptest::collection::vec("ab[ab]{0,8}", 1..20),
        ) {
            let mut group = Group::default();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for p in &patterns {
                group.insert(pattern(p.as_bytes()));
                model.push(p.clone().into_bytes());
            }
            let before = group.clone();
            for index in removed {
                if model.is_empty() {
                    break;
                }
                let gone = model.remove(index.index(model.len()));
                prop_assert!(group.remove(&gone).0);
                prop_assert!(!group.remove(&gone).0);
            }
            prop_assert_eq!(group.len(), model.len());
            prop_assert_eq!(before.len(), patterns.len());
            let listed: Vec<&[u8]> = group.iter().map(|p| p.bytes()).collect();
            let mut sorted: Vec<&[u8]> = model.iter().map(Vec::as_slice).collect();
            sorted.sort_unstable();
            prop_assert_eq!(listed, sorted);
            for text in &texts {
                let text = text.as_bytes();
                let longest = model
                    .iter()
                    .filter(|p| text.starts_with(p))
                    .max_by_key(|p| p.len())
                    .map(Vec::as_slice);
                prop_assert_eq!(group.longest_prefix_of(text, 2).map(Pattern::bytes), longest);
                let extends = model.iter().any(|p| p.len() > text.len() && p.starts_with(text));
                prop_assert_eq!(group.extends(text), extends);
            }
        }
    }
}
