//! [`Index`]: every registered pattern, arranged for the scan, as a
//! persistent structure so that a registration copies only what it changes.
//!
//! Every pattern begins with an *anchor*, its first `W` bytes (`W` is 8, or
//! the minimum value length if that is smaller; no pattern is shorter).
//!
//! - The scan looks at one position in `S` (`S = ⌊(W + 1) / 2⌋`, 4 for
//!   `W = 8`): the `L = W - S + 1` bytes there (5) lie inside the anchor of
//!   any pattern starting in the `S` positions up to it, so the *coarse*
//!   filter, which holds those `S` sub-windows of every anchor, rejects all
//!   `S` starts at once for ordinary text.
//! - Where it admits them, the *fine* filter, over whole anchors, checks
//!   each of the `S` starts.
//! - Where that admits one, `groups` maps the anchor to the sorted
//!   [`Group`] of patterns that begin with it, and the position is verified
//!   there exactly.
//! - [`Anchors`] holds every anchor in byte order: a stream's last few
//!   bytes may begin a pattern even though they are too few to fill a
//!   window.
//!
//! Registering one value copies, per new pattern, a 4 KiB block of each
//! filter and the pages, group list and chunk it lands in. Nothing is
//! proportional to the length of other patterns and nothing is rebuilt,
//! except the filters when the number of anchors doubles (or many were
//! removed).

use std::sync::Arc;

use super::anchors::Anchors;
use super::filter::{Filter, Probe, hash};
use super::group::{Group, Pattern};
use super::pmap::PagedMap;

/// The scan's window, in bytes, when the minimum value length allows it.
const WINDOW: usize = 8;
/// Filter sizing, in bits per window held.
const FINE_BITS: usize = 24;
const COARSE_BITS: usize = 16;
/// Removed anchors tolerated in the filters (each only admits false
/// candidates) before they are rebuilt: at least this many, and at least
/// half the live anchors.
const STALE_MIN: usize = 256;

/// The patterns, arranged for the scan; see the [module docs](self).
#[derive(Clone)]
pub(super) struct Index {
    /// `W`: bytes per anchor; every pattern is at least this long.
    window: usize,
    /// `S`: the coarse scan looks at one position in this many.
    stride: usize,
    /// Keeps the low `W` bytes of a little-endian load.
    mask: u64,
    /// Keeps the low `L = W - S + 1` bytes.
    coarse_mask: u64,
    /// Odd multiplier of the window hash, random per redactor.
    seed: u64,
    fine: Filter,
    coarse: Filter,
    groups: PagedMap<Arc<Group>>,
    /// The keys of `groups`, big-endian, sorted.
    anchors: Anchors,
    patterns: usize,
    /// Anchors removed since the filters were built.
    stale: usize,
    /// Bytes of structure copied or built since the last
    /// [`begin_change`](Self::begin_change).
    work: usize,
}

/// Tracks, during a scan of a stream's buffered bytes, the first position
/// from which the rest of the buffer is a proper prefix of some pattern:
/// everything before it can be passed on, everything from it must wait.
#[derive(Debug, Default)]
pub(super) struct OpenTail {
    /// Whether to look at all (only streams need it).
    pub(super) watch: bool,
    /// The first such position seen.
    pub(super) at: Option<usize>,
}

impl Index {
    /// An empty index for patterns of at least `min_len` bytes.
    pub(super) fn new(min_len: usize, seed: u64) -> Self {
        let window = min_len.clamp(1, WINDOW);
        let stride = window.div_ceil(2).max(1);
        Self {
            window,
            stride,
            mask: low_bytes_mask(window),
            coarse_mask: low_bytes_mask(window - stride + 1),
            seed: seed | 1,
            fine: Filter::for_entries(0, FINE_BITS),
            coarse: Filter::for_entries(0, COARSE_BITS),
            groups: PagedMap::new(),
            anchors: Anchors::default(),
            patterns: 0,
            stale: 0,
            work: 0,
        }
    }

    /// How many patterns the index holds.
    pub(super) fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// Starts counting the work of a change to this snapshot.
    pub(super) fn begin_change(&mut self) {
        self.work = 0;
        self.groups.take_copied();
    }

    /// Bytes of structure copied or built since
    /// [`begin_change`](Self::begin_change): what a change costs beyond the
    /// patterns it adds.
    #[cfg(test)]
    pub(super) fn change_work(&self) -> usize {
        self.work
    }

    /// Adds `pattern`, or replaces the one with the same bytes (a new
    /// owner). The pattern is at least `min_len` bytes long.
    pub(super) fn insert(&mut self, pattern: Arc<Pattern>) {
        let anchor = self.anchor(pattern.bytes());
        if let Some(slot) = self.groups.get_mut(anchor) {
            let mut copied = shared_size(slot);
            let group = Arc::make_mut(slot);
            let before = group.len();
            copied += group.insert(pattern);
            self.patterns += group.len() - before;
            self.work += copied + self.groups.take_copied();
            return;
        }
        let mut group = Group::default();
        group.insert(pattern);
        self.groups.insert(anchor, Arc::new(group));
        self.patterns += 1;
        self.work += self.groups.take_copied() + self.anchors.insert(anchor.swap_bytes());
        let anchors = self.groups.len();
        if anchors > self.fine.capacity() || anchors * self.stride > self.coarse.capacity() {
            self.rebuild_filters();
        } else {
            self.work += self.fine.insert(hash(anchor, self.seed));
            for k in 0..self.stride {
                let sub = (anchor >> (8 * k)) & self.coarse_mask;
                self.work += self.coarse.insert(hash(sub, self.seed));
            }
        }
    }

    /// Removes the pattern with these bytes; reports whether it was there.
    pub(super) fn remove(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() < self.window {
            return false;
        }
        let anchor = self.anchor(bytes);
        let Some(slot) = self.groups.get_mut(anchor) else {
            return false;
        };
        let mut copied = shared_size(slot);
        let group = Arc::make_mut(slot);
        let (removed, chunk) = group.remove(bytes);
        copied += chunk;
        let empty = group.len() == 0;
        self.work += copied + self.groups.take_copied();
        if !removed {
            return false;
        }
        self.patterns -= 1;
        if empty {
            self.groups.remove(anchor);
            self.work += self.groups.take_copied() + self.anchors.remove(anchor.swap_bytes());
            self.stale += 1;
            if self.stale > STALE_MIN.max(self.groups.len() / 2) {
                self.rebuild_filters();
            }
        }
        true
    }

    /// The leftmost position at or after `from` where a pattern occurs, and
    /// the longest pattern there. With `open.watch`, also records in
    /// `open.at` the first position passed from which the rest of
    /// `haystack` is a proper prefix of a pattern.
    #[inline]
    pub(super) fn find<'s>(
        &'s self,
        haystack: &[u8],
        from: usize,
        open: &mut OpenTail,
    ) -> Option<(usize, &'s Pattern)> {
        let len = haystack.len();
        let (window, stride) = (self.window, self.stride);
        // Starts with a whole anchor after them: `..=last`.
        if let Some(last) = len.checked_sub(window) {
            let fine = self.fine.probe();
            // Block `b` (a multiple of the stride) covers the starts
            // `b + 1 - stride ..= b`; its coarse window begins at `b`.
            let last_block = last + stride - 1;
            let mut at = from;
            let mut block = from.next_multiple_of(stride);
            while at <= last {
                block = self.next_block(haystack, block, last_block);
                if block > last_block {
                    break;
                }
                let end = block.min(last);
                for start in at.max((block + 1).saturating_sub(stride))..=end {
                    let anchor = load(haystack, start) & self.mask;
                    if fine.may_contain(hash(anchor, self.seed))
                        && let Some(found) = self.verify(haystack, start, anchor, open)
                    {
                        return Some(found);
                    }
                }
                at = end + 1;
                block += stride;
            }
        }
        // Streams: starts with fewer than a window's bytes left.
        if open.watch && open.at.is_none() {
            for start in from.max(len.saturating_sub(window - 1))..len {
                let rest = haystack.get(start..).unwrap_or_default();
                if self
                    .anchors
                    .any_begins_with(load(rest, 0).swap_bytes(), rest.len())
                {
                    open.at = Some(start);
                    break;
                }
            }
        }
        None
    }

    /// The first block from `block` to `last_block` (in steps of the
    /// stride) whose coarse window may be an anchor's, or a block past
    /// `last_block`. This loop is where the time goes for ordinary text.
    #[inline]
    fn next_block(&self, haystack: &[u8], block: usize, last_block: usize) -> usize {
        let (mask, seed, coarse) = (self.coarse_mask, self.seed, self.coarse.probe());
        // The stride is 1 to 4 (half the window, rounded up); a constant
        // lets the compiler drop every bounds check in the loop.
        match self.stride {
            1 => next_block::<1>(haystack, block, last_block, mask, seed, coarse),
            2 => next_block::<2>(haystack, block, last_block, mask, seed, coarse),
            3 => next_block::<3>(haystack, block, last_block, mask, seed, coarse),
            _ => next_block::<4>(haystack, block, last_block, mask, seed, coarse),
        }
    }

    /// Checks a candidate position exactly.
    #[inline]
    fn verify<'s>(
        &'s self,
        haystack: &[u8],
        at: usize,
        anchor: u64,
        open: &mut OpenTail,
    ) -> Option<(usize, &'s Pattern)> {
        let group = self.groups.get(anchor)?;
        let rest = haystack.get(at..).unwrap_or_default();
        let found = group.longest_prefix_of(rest, self.window);
        if open.watch && open.at.is_none() && rest.len() < group.max_len() && group.extends(rest) {
            open.at = Some(at);
        }
        found.map(|pattern| (at, pattern))
    }

    fn anchor(&self, bytes: &[u8]) -> u64 {
        load(bytes, 0) & self.mask
    }

    fn rebuild_filters(&mut self) {
        let anchors = self.groups.len().saturating_mul(2);
        let mut fine = Filter::for_entries(anchors, FINE_BITS);
        let mut coarse = Filter::for_entries(anchors.saturating_mul(self.stride), COARSE_BITS);
        for (anchor, _) in self.groups.iter() {
            fine.insert(hash(anchor, self.seed));
            for k in 0..self.stride {
                coarse.insert(hash((anchor >> (8 * k)) & self.coarse_mask, self.seed));
            }
        }
        self.work += fine.size_bytes() + coarse.size_bytes() + 8 * self.groups.len();
        self.fine = fine;
        self.coarse = coarse;
        self.stale = 0;
    }
}

/// [`Index::next_block`] for stride `S`, with everything it needs in
/// arguments so that it all stays in registers.
#[inline(always)]
fn next_block<const S: usize>(
    haystack: &[u8],
    mut block: usize,
    last_block: usize,
    mask: u64,
    seed: u64,
    coarse: Probe<'_>,
) -> usize {
    /// Bytes read per round of four blocks: `3 S + 8` for `S` up to 8.
    const CHUNK: usize = 32;
    #[inline(always)]
    fn window(chunk: &[u8; CHUNK], at: usize, mask: u64, seed: u64) -> u64 {
        let bytes: [u8; 8] = chunk[at..at + 8].try_into().unwrap_or_default();
        hash(u64::from_le_bytes(bytes) & mask, seed)
    }
    // Four blocks a round, one branch for the four.
    while block + 3 * S <= last_block {
        let Some(chunk) = haystack
            .get(block..block + CHUNK)
            .and_then(|c| <&[u8; CHUNK]>::try_from(c).ok())
        else {
            break;
        };
        let hits = [
            coarse.may_contain(window(chunk, 0, mask, seed)),
            coarse.may_contain(window(chunk, S, mask, seed)),
            coarse.may_contain(window(chunk, 2 * S, mask, seed)),
            coarse.may_contain(window(chunk, 3 * S, mask, seed)),
        ];
        if hits[0] | hits[1] | hits[2] | hits[3] {
            return block + S * hits.iter().take_while(|&&hit| !hit).count();
        }
        block += 4 * S;
    }
    while block <= last_block {
        if coarse.may_contain(hash(load(haystack, block) & mask, seed)) {
            return block;
        }
        block += S;
    }
    block
}

/// What copying the group in `slot` costs if another snapshot shares it.
fn shared_size(slot: &mut Arc<Group>) -> usize {
    if Arc::get_mut(slot).is_some() {
        0
    } else {
        slot.list_size()
    }
}

/// Up to 8 bytes of `bytes` from `at`, little-endian, zero-padded.
#[inline(always)]
fn load(bytes: &[u8], at: usize) -> u64 {
    if let Some(eight) = bytes
        .get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
    {
        return u64::from_le_bytes(eight);
    }
    let mut buf = [0u8; 8];
    let rest = bytes.get(at..).unwrap_or_default();
    let n = rest.len().min(8);
    buf[..n].copy_from_slice(&rest[..n]);
    u64::from_le_bytes(buf)
}

fn low_bytes_mask(bytes: usize) -> u64 {
    if bytes >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * bytes)) - 1
    }
}
