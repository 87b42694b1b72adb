//! Vectors of anchors (a pattern's first bytes, as integers) that never
//! leave a copy of one in freed memory.
//!
//! `Vec` leaves copies behind when it grows (the old buffer is freed as it
//! is) and when it removes (the vacated slot past the end keeps its bytes).
//! These helpers grow by hand, wiping the old buffer, and wipe a slot
//! before giving it up; [`Wiped`] wipes every element when dropped.

use zeroize::Zeroize;

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
}
