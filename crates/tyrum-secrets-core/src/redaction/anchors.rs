//! [`Anchors`]: the set of every pattern's anchor in byte order, persistent,
//! to answer one question: does any anchor begin with these few bytes?
//!
//! A stream's last bytes may be the start of a value still being written
//! even when they are too few to fill a window; the writer must then hold
//! them back, and only then. Kept sorted (as big-endian integers, which
//! sort as their bytes do), the anchors beginning with `t` given bytes are
//! the ones from the first at or after those bytes padded with zeros.
//!
//! Sorted chunks shared between snapshots: a change copies one chunk and
//! the chunk list, not the set.

use std::sync::Arc;

use super::wipe::Wiped;

/// Anchors are a pattern's first bytes: wiped, never left behind.
type Chunk = Wiped<u64>;

/// Chunks split when they grow past this many anchors.
const CHUNK_MAX: usize = 128;

/// A persistent sorted set of anchors; see the [module docs](self).
#[derive(Clone, Default)]
pub(super) struct Anchors {
    /// Sorted, non-empty chunks, each after the one before.
    chunks: Arc<Vec<Arc<Chunk>>>,
}

impl Anchors {
    /// Adds `anchor` (the first bytes of a pattern as a big-endian integer,
    /// zero-padded). Returns the bytes copied to do so.
    pub(super) fn insert(&mut self, anchor: u64) -> usize {
        let mut copied = self.list_cost();
        let chunks = Arc::make_mut(&mut self.chunks);
        let c = chunk_for(chunks, anchor);
        let Some(slot) = chunks.get_mut(c) else {
            let mut chunk = Chunk::default();
            chunk.push(anchor);
            chunks.push(Arc::new(chunk));
            return copied;
        };
        copied += chunk_cost(slot);
        let chunk = Arc::make_mut(slot);
        if let Err(i) = chunk.binary_search(&anchor) {
            chunk.insert(i, anchor);
            if chunk.len() > CHUNK_MAX {
                let upper = chunk.split_off(chunk.len() / 2);
                chunks.insert(c + 1, Arc::new(upper));
            }
        }
        copied
    }

    /// Removes `anchor`. Returns the bytes copied to do so.
    pub(super) fn remove(&mut self, anchor: u64) -> usize {
        let c = chunk_for(&self.chunks, anchor);
        let present = self
            .chunks
            .get(c)
            .is_some_and(|chunk| chunk.binary_search(&anchor).is_ok());
        if !present {
            return 0;
        }
        let mut copied = self.list_cost();
        let chunks = Arc::make_mut(&mut self.chunks);
        if let Some(slot) = chunks.get_mut(c) {
            copied += chunk_cost(slot);
            let chunk = Arc::make_mut(slot);
            if let Ok(i) = chunk.binary_search(&anchor) {
                chunk.remove(i);
            }
            if chunk.is_empty() {
                chunks.remove(c);
            }
        }
        copied
    }

    /// Whether some anchor's first `len` bytes (1 to 7) are those of
    /// `prefix` (big-endian, the rest zero).
    pub(super) fn any_begins_with(&self, prefix: u64, len: usize) -> bool {
        let shift = 8 * (8 - len.clamp(1, 7)) as u32;
        let c = chunk_for(&self.chunks, prefix);
        let Some(chunk) = self.chunks.get(c) else {
            return false;
        };
        let i = chunk.partition_point(|a| *a < prefix);
        let first = chunk
            .get(i)
            .or_else(|| self.chunks.get(c + 1).and_then(|next| next.first()));
        first.is_some_and(|a| a >> shift == prefix >> shift)
    }

    /// What copying the chunk list costs, if another snapshot shares it.
    fn list_cost(&mut self) -> usize {
        if Arc::get_mut(&mut self.chunks).is_some() {
            0
        } else {
            self.chunks.len() * std::mem::size_of::<Arc<Chunk>>()
        }
    }
}

fn chunk_cost(chunk: &mut Arc<Chunk>) -> usize {
    if Arc::get_mut(chunk).is_some() {
        0
    } else {
        chunk.len() * 8
    }
}

/// The chunk `anchor` sorts into: the last whose first anchor is not after
/// it (the first chunk when it sorts before everything).
fn chunk_for(chunks: &[Arc<Chunk>], anchor: u64) -> usize {
    chunks
        .partition_point(|chunk| chunk.first().is_some_and(|a| *a <= anchor))
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn answers_prefix_questions_like_a_linear_search(
            anchors in proptest::collection::btree_set(0u64..1 << 20, 0..600),
            removed in proptest::collection::vec(any::<prop::sample::Index>(), 0..100),
            probes in proptest::collection::vec((0u64..1 << 20, 1usize..8), 1..40),
        ) {
            // Spread the small numbers over the top bytes, where prefixes
            // are compared.
            let spread = |a: u64| a.rotate_right(20);
            let mut set = Anchors::default();
            let mut model: Vec<u64> = Vec::new();
            for a in &anchors {
                set.insert(spread(*a));
                model.push(spread(*a));
            }
            let before = set.clone();
            for which in removed {
                if model.is_empty() {
                    break;
                }
                let gone = model.remove(which.index(model.len()));
                set.remove(gone);
            }
            for (probe, len) in probes {
                let shift = 8 * (8 - len) as u32;
                let prefix = (spread(probe) >> shift) << shift;
                let expected = model.iter().any(|a| a >> shift == prefix >> shift);
                prop_assert_eq!(set.any_begins_with(prefix, len), expected);
            }
            for a in &anchors {
                prop_assert!(before.any_begins_with(spread(*a), 7));
            }
        }
    }
}
