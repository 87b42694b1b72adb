//! [`Filter`]: the prefilter that rejects almost every position of ordinary
//! text with one multiply and one load from a small table.
//!
//! A blocked Bloom filter over hashes of short windows: each window sets two
//! bits in one 64-bit word, so a lookup is one multiply and one load, and a
//! window never added is admitted only when both its bits happen to be set
//! (about 1% at the filter's sizing).
//!
//! The table is one flat array, so a lookup is a single load. A snapshot
//! that adds windows copies it (one `memcpy` of at most [`MAX_WORDS`] words;
//! a few KiB for a few hundred values, about 1.5 MiB at 10,000 values of
//! distinct random bytes) rather than share pieces of it, which would cost
//! the scan a second, dependent load at every probe.

use std::sync::Arc;

/// 4 KiB: the smallest table.
const MIN_WORDS: usize = 1 << 9;
/// 2 MiB: past this the table fills up (and admits more false candidates)
/// rather than grow, and copying it stays well under a millisecond.
const MAX_WORDS: usize = 1 << 18;

/// A blocked Bloom filter of window hashes; see the [module docs](self).
#[derive(Clone)]
pub(super) struct Filter {
    words: Arc<Vec<u64>>,
    /// `64 - log2(words)`: a hash's top bits pick the word.
    shift: u32,
    /// Bits per entry the table was sized for.
    bits_per_entry: usize,
}

impl Filter {
    /// An empty filter sized for `entries` windows at `bits_per_entry` bits
    /// each.
    pub(super) fn for_entries(entries: usize, bits_per_entry: usize) -> Self {
        let words = (entries.saturating_mul(bits_per_entry) / 64)
            .next_power_of_two()
            .clamp(MIN_WORDS, MAX_WORDS);
        Self {
            words: Arc::new(vec![0; words]),
            shift: 64 - words.trailing_zeros(),
            bits_per_entry,
        }
    }

    /// How many windows the filter is sized for; past this it should be
    /// rebuilt larger.
    pub(super) fn capacity(&self) -> usize {
        if self.words.len() >= MAX_WORDS {
            usize::MAX
        } else {
            self.words.len() * 64 / self.bits_per_entry
        }
    }

    /// The table's size in bytes.
    pub(super) fn size_bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// Adds a window by its [`hash`]. Returns the bytes copied to do so: the
    /// table, when another snapshot shares it.
    pub(super) fn insert(&mut self, hash: u64) -> usize {
        let copied = if Arc::get_mut(&mut self.words).is_some() {
            0
        } else {
            self.size_bytes()
        };
        let (word, mask) = locate(hash, self.shift);
        if let Some(w) = Arc::make_mut(&mut self.words).get_mut(word) {
            *w |= mask;
        }
        copied
    }

    /// A borrowed view for the scan loop.
    #[inline(always)]
    pub(super) fn probe(&self) -> Probe<'_> {
        Probe {
            words: &self.words,
            shift: self.shift,
        }
    }
}

/// A [`Filter`]'s table, borrowed for lookups.
#[derive(Clone, Copy)]
pub(super) struct Probe<'f> {
    words: &'f [u64],
    shift: u32,
}

impl Probe<'_> {
    /// Whether the window with this [`hash`] may have been added. Never
    /// false for one that was.
    #[inline(always)]
    pub(super) fn may_contain(self, hash: u64) -> bool {
        let word = (hash >> self.shift) as usize;
        // The index is below the table's size (the top `64 - shift` bits of
        // a u64); a miss would only admit a candidate.
        self.words.get(word).is_none_or(|w| {
            let a = (hash >> 34) & 63;
            let b = (hash >> 40) & 63;
            (w >> a) & (w >> b) & 1 == 1
        })
    }
}

/// The word is picked by the hash's top bits (at most 18), the two bits by
/// the 12 below them: bits of a multiplicative hash are the better mixed
/// the higher they are.
#[inline(always)]
fn locate(hash: u64, shift: u32) -> (usize, u64) {
    let word = (hash >> shift) as usize;
    let mask = (1u64 << ((hash >> 34) & 63)) | (1u64 << ((hash >> 40) & 63));
    (word, mask)
}

/// The hash of a window (its bytes read little-endian into a `u64`, bytes
/// past the window zero): a multiply by an odd `seed`, one instruction.
#[inline(always)]
pub(super) fn hash(window: u64, seed: u64) -> u64 {
    window.wrapping_mul(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

    #[test]
    fn holds_every_window_and_rejects_most_others() {
        let mut filter = Filter::for_entries(1000, 24);
        for window in 0..1000u64 {
            filter.insert(hash(window * 7919, SEED));
        }
        let probe = filter.probe();
        assert!((0..1000u64).all(|w| probe.may_contain(hash(w * 7919, SEED))));
        let admitted = (0..100_000u64)
            .filter(|w| w % 7919 != 0 && probe.may_contain(hash(*w, SEED)))
            .count();
        // Under 1% expected; the bound only guards against a broken hash.
        assert!(admitted < 3_000, "{admitted} false candidates");
    }

    #[test]
    fn is_sized_between_its_bounds_and_copied_only_when_shared() {
        assert_eq!(Filter::for_entries(0, 24).size_bytes(), MIN_WORDS * 8);
        assert_eq!(
            Filter::for_entries(usize::MAX, 24).size_bytes(),
            MAX_WORDS * 8
        );
        let mut filter = Filter::for_entries(100_000, 24);
        assert!(filter.capacity() >= 100_000);
        assert_eq!(filter.insert(hash(1, SEED)), 0);
        let snapshot = filter.clone();
        assert_eq!(filter.insert(hash(2, SEED)), filter.size_bytes());
        assert_eq!(filter.insert(hash(3, SEED)), 0);
        assert!(snapshot.probe().may_contain(hash(1, SEED)));
        assert!(filter.probe().may_contain(hash(3, SEED)));
    }
}
