//! [`PagedMap`]: a persistent hash map from `u64` keys, for the matcher's
//! snapshots.
//!
//! A snapshot is cloned for every registration, so cloning must be cheap and
//! a change must copy only what it touches. The map is a three-level table
//! of shared pages: cloning copies one pointer, and a change copies the
//! root and two inner pages (16 pointers each) and one leaf (the few
//! entries whose key hashes there), whatever the size of the map.

use std::sync::Arc;

use super::wipe::Wiped;

const LEVEL_BITS: u32 = 4;
const FANOUT: usize = 1 << LEVEL_BITS;

/// Keys are anchors (a pattern's first bytes): wiped, never left behind.
type Leaf<V> = Wiped<(u64, V)>;
type Lower<V> = Vec<Arc<Leaf<V>>>;
type Upper<V> = Vec<Arc<Lower<V>>>;

/// A persistent map from `u64` to `V`; see the [module docs](self).
pub(super) struct PagedMap<V: Clone> {
    root: Arc<Vec<Arc<Upper<V>>>>,
    len: usize,
    /// Bytes of pages copied (because another snapshot shared them) since
    /// the last [`take_copied`](Self::take_copied).
    copied: usize,
}

impl<V: Clone> Clone for PagedMap<V> {
    fn clone(&self) -> Self {
        Self {
            root: Arc::clone(&self.root),
            len: self.len,
            copied: 0,
        }
    }
}

impl<V: Clone> PagedMap<V> {
    /// An empty map: every slot shares one empty leaf.
    pub(super) fn new() -> Self {
        let leaf: Arc<Leaf<V>> = Arc::new(Wiped::default());
        let lower: Arc<Lower<V>> = Arc::new(vec![leaf; FANOUT]);
        let upper: Arc<Upper<V>> = Arc::new(vec![lower; FANOUT]);
        Self {
            root: Arc::new(vec![upper; FANOUT]),
            len: 0,
            copied: 0,
        }
    }

    /// How many keys the map holds.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The value of `key`.
    #[inline]
    pub(super) fn get(&self, key: u64) -> Option<&V> {
        let (r, u, l) = slots(key);
        self.root
            .get(r)?
            .get(u)?
            .get(l)?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, to change in place. Copies the pages on the way
    /// that other snapshots share, and only when the key is present.
    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        self.get(key)?;
        self.leaf_mut(key)
            .as_mut_slice()
            .iter_mut()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub(super) fn insert(&mut self, key: u64, value: V) -> Option<V> {
        let leaf = self.leaf_mut(key);
        if let Some((_, v)) = leaf.as_mut_slice().iter_mut().find(|(k, _)| *k == key) {
            return Some(std::mem::replace(v, value));
        }
        leaf.push((key, value));
        self.len += 1;
        None
    }

    /// Removes `key`, returning its value.
    pub(super) fn remove(&mut self, key: u64) -> Option<V> {
        self.get(key)?;
        let leaf = self.leaf_mut(key);
        let at = leaf.iter().position(|(k, _)| *k == key)?;
        let (_, value) = leaf.remove(at)?;
        self.len -= 1;
        Some(value)
    }

    /// Every entry, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.root
            .iter()
            .flat_map(|upper| upper.iter())
            .flat_map(|lower| lower.iter())
            .flat_map(|leaf| leaf.iter())
            .map(|(k, v)| (*k, v))
    }

    /// Bytes of pages copied since the last call.
    pub(super) fn take_copied(&mut self) -> usize {
        std::mem::take(&mut self.copied)
    }

    /// The leaf `key` belongs in, unshared.
    fn leaf_mut(&mut self, key: u64) -> &mut Leaf<V> {
        let (r, u, l) = slots(key);
        let pointer = std::mem::size_of::<Arc<()>>();
        let entry = std::mem::size_of::<(u64, V)>();
        let copied = &mut self.copied;
        let root = unshare(&mut self.root, copied, |_| FANOUT * pointer);
        // `slots` yields indices below FANOUT, the length of every page.
        let upper = unshare(&mut root[r], copied, |_| FANOUT * pointer);
        let lower = unshare(&mut upper[u], copied, |_| FANOUT * pointer);
        unshare(&mut lower[l], copied, |leaf| leaf.len() * entry)
    }
}

/// [`Arc::make_mut`], adding to `copied` the `size` of what it copies when
/// another snapshot shares the value.
fn unshare<'a, T: Clone>(
    arc: &'a mut Arc<T>,
    copied: &mut usize,
    size: impl FnOnce(&T) -> usize,
) -> &'a mut T {
    if Arc::get_mut(arc).is_none() {
        *copied += size(arc);
    }
    Arc::make_mut(arc)
}

/// The slot of `key` at each level: the top bits of a multiplicative hash.
#[inline]
fn slots(key: u64) -> (usize, usize, usize) {
    let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 29);
    let h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let slot = |level: u32| ((h >> (64 - level * LEVEL_BITS)) as usize) & (FANOUT - 1);
    (slot(1), slot(2), slot(3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_like_a_hash_map_and_old_snapshots_do_not_change(
            ops in proptest::collection::vec((any::<bool>(), 0u64..64, any::<u32>()), 0..200),
        ) {
            let mut map = PagedMap::new();
            let mut model = HashMap::new();
            let mut snapshots = Vec::new();
            for (insert, key, value) in ops {
                let key = key.wrapping_mul(0x1234_5678_9abc_def1);
                if insert {
                    prop_assert_eq!(map.insert(key, value), model.insert(key, value));
                } else {
                    prop_assert_eq!(map.remove(key), model.remove(&key));
                }
                prop_assert_eq!(map.len(), model.len());
                snapshots.push((map.clone(), model.clone()));
            }
            for (map, model) in snapshots {
                let mut entries: Vec<(u64, u32)> = map.iter().map(|(k, v)| (k, *v)).collect();
                entries.sort_unstable();
                let mut expected: Vec<(u64, u32)> = model.into_iter().collect();
                expected.sort_unstable();
                prop_assert_eq!(entries, expected);
            }
        }
    }

    #[test]
    fn get_mut_changes_only_this_snapshot() {
        let mut a = PagedMap::new();
        a.insert(7, 1u32);
        let b = a.clone();
        *a.get_mut(7).unwrap() = 2;
        assert_eq!((a.get(7), b.get(7)), (Some(&2), Some(&1)));
        assert!(a.get_mut(8).is_none());
    }
}
