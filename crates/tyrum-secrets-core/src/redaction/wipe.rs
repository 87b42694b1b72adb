//! Vectors of anchors (a pattern's first bytes, as integers) and buffers of
//! value bytes that never leave a copy of one in freed memory.
//!
//! `Vec` leaves copies behind when it grows (the old buffer is freed as it
//! is) and when it removes (the vacated slot past the end keeps its bytes).
//! These helpers grow by hand, wiping the old buffer, and wipe a slot
//! before giving it up; [`Wiped`] wipes every element when dropped, and
//! [`WipedBuf`] its whole capacity.

use std::ops::Range;

use zeroize::{Zeroize, Zeroizing};

/// An element with secret bytes that can be wiped in place.
pub(super) trait Wipe: Clone {
    /// Overwrites the secret part with zeros.
    fn wipe(&mut self);
}

impl Wipe for u64 {
    fn wipe(&mut self) {
        self.zeroize();
    }
}

impl<V: Clone> Wipe for (u64, V) {
    fn wipe(&mut self) {
        self.0.zeroize();
    }
}

/// A `Vec` whose elements are wiped when it is dropped; change it only
/// through the functions of this module.
#[derive(Clone)]
pub(super) struct Wiped<T: Wipe>(Vec<T>);

impl<T: Wipe> Default for Wiped<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Wipe> Drop for Wiped<T> {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(Wipe::wipe);
    }
}

impl<T: Wipe> std::ops::Deref for Wiped<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Wipe> Wiped<T> {
    /// A copy of `items`, in a buffer of exactly their size.
    pub(super) fn from_slice(items: &[T]) -> Self {
        let mut vec = Vec::with_capacity(items.len());
        vec.extend_from_slice(items);
        Self(vec)
    }

    /// The elements, to change in place (not to add or remove).
    pub(super) fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.0
    }

    /// Inserts `item` at `at` (at most the length).
    pub(super) fn insert(&mut self, at: usize, item: T) {
        self.reserve_one();
        self.0.insert(at.min(self.0.len()), item);
    }

    /// Appends `item`.
    pub(super) fn push(&mut self, item: T) {
        self.reserve_one();
        self.0.push(item);
    }

    /// Removes and returns the element at `at`, keeping the order, and
    /// wipes the slot it vacates.
    pub(super) fn remove(&mut self, at: usize) -> Option<T> {
        let item = self.0.get(at)?.clone();
        let last = self.0.len() - 1;
        for i in at..last {
            self.0[i] = self.0[i + 1].clone();
        }
        self.0[last].wipe();
        self.0.pop();
        Some(item)
    }

    /// Splits off the elements from `at` into a new vector, wiping their
    /// slots here.
    pub(super) fn split_off(&mut self, at: usize) -> Self {
        let at = at.min(self.0.len());
        let upper = Self(self.0[at..].to_vec());
        while self.0.len() > at {
            if let Some(last) = self.0.last_mut() {
                last.wipe();
            }
            self.0.pop();
        }
        upper
    }

    /// Makes room for one more element, moving to a larger buffer by hand
    /// (the old one wiped) when full.
    fn reserve_one(&mut self) {
        if self.0.len() < self.0.capacity() {
            return;
        }
        let mut bigger = Vec::with_capacity((2 * self.0.capacity()).max(4));
        bigger.extend(self.0.iter().cloned());
        self.0.iter_mut().for_each(Wipe::wipe);
        self.0 = bigger;
    }
}

/// A byte buffer for values and their encodings: it grows by hand (the old
/// buffer wiped) and is wiped to its whole capacity when dropped, so a
/// value never stays behind in freed memory, whatever is written to it.
#[derive(Default)]
pub(super) struct WipedBuf(Zeroizing<Vec<u8>>);

impl std::ops::Deref for WipedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl WipedBuf {
    /// Appends `byte`.
    #[inline]
    pub(super) fn push(&mut self, byte: u8) {
        self.reserve(1);
        self.0.push(byte);
    }

    /// Appends `bytes`.
    #[inline]
    pub(super) fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Appends a copy of the bytes at `range` (within the buffer).
    pub(super) fn extend_from_within(&mut self, range: Range<usize>) {
        self.reserve(range.len());
        self.0.extend_from_within(range);
    }

    /// Appends what `write` writes into a zeroed slice of `max` bytes; it
    /// returns how many of them it wrote. Faster than pushing byte by byte.
    #[inline]
    pub(super) fn write_with(&mut self, max: usize, write: impl FnOnce(&mut [u8]) -> usize) {
        self.reserve(max);
        let start = self.0.len();
        self.0.resize(start + max, 0);
        let written = write(self.0.get_mut(start..).unwrap_or_default());
        // What lies past the end stays within the capacity, wiped with it.
        self.0.truncate(start + written.min(max));
    }

    /// Empties the buffer, keeping its capacity. The bytes stay until
    /// overwritten or the buffer is dropped (and wiped).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Makes room for `additional` more bytes, moving to a larger buffer by
    /// hand (the old one wiped) when full: `Vec`'s own growth would free
    /// the old buffer as it is.
    #[inline]
    pub(super) fn reserve(&mut self, additional: usize) {
        if self.0.capacity() - self.0.len() < additional {
            self.grow(additional);
        }
    }

    #[cold]
    fn grow(&mut self, additional: usize) {
        let needed = self.0.len().saturating_add(additional);
        let mut bigger = Vec::with_capacity(needed.max(2 * self.0.capacity()).max(64));
        bigger.extend_from_slice(&self.0);
        // Dropping the old `Zeroizing` wipes it, to its capacity.
        self.0 = Zeroizing::new(bigger);
    }
}

/// Lets `write!` append to a [`WipedBuf`] (Rust's `Debug` escaping).
impl std::fmt::Write for WipedBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_through_inserts_removals_and_splits() {
        let mut v: Wiped<u64> = Wiped::default();
        for i in (0..20).rev() {
            v.insert(0, i);
        }
        v.push(20);
        assert_eq!(&v[..], (0..=20).collect::<Vec<u64>>());
        assert_eq!(v.remove(3), Some(3));
        assert_eq!(v.remove(99), None);
        let upper = v.split_off(10);
        assert_eq!(&v[..], [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(&upper[..], (11..=20).collect::<Vec<u64>>());
        v.as_mut_slice()[0] = 7;
        assert_eq!(v[0], 7);
    }

    #[test]
    fn byte_buffer_keeps_its_bytes_through_growth() {
        let mut buf = WipedBuf::default();
        for i in 0..200u8 {
            buf.push(i);
        }
        buf.extend_from_slice(b"tail");
        buf.extend_from_within(0..3);
        buf.write_with(4, |slot| {
            slot[..2].copy_from_slice(b"ab");
            2
        });
        let mut expected: Vec<u8> = (0..200u8).collect();
        expected.extend_from_slice(b"tail\x00\x01\x02ab");
        assert_eq!(&buf[..], &expected[..]);
        buf.clear();
        assert!(buf.is_empty());
    }
}
