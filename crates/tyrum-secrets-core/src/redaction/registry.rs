//! [`Registry`]: the registered values, on the writers' side of the
//! redactor, and the bookkeeping that turns registrations and removals
//! into changes of the next [`Matcher`] snapshot.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use super::group::{Pattern, PatternBytes};
use super::matcher::Matcher;
use crate::{ExposeSecret as _, HandleId, SecretBytes};

/// The registered values, in registration order (the order decides which
/// handle a pattern shared by several values is attributed to), indexed by
/// handle, so that re-registering a known value, as every resolve does, is
/// a lookup; and every distinct pattern with the values it comes from.
#[derive(Default)]
pub(super) struct Registry {
    /// Registration sequence numbers only grow: a value registered again
    /// after removal goes to the end, as a new value would.
    next_seq: u64,
    entries: BTreeMap<u64, Entry>,
    handles: HashMap<HandleId, HandleState>,
    /// Distinct patterns by a keyed hash of their bytes.
    patterns: HashMap<u64, Vec<PatternState>>,
    hasher: RandomState,
    /// How many distinct patterns have each length, for the longest.
    lengths: BTreeMap<usize, usize>,
    /// The distinct patterns' total length.
    pattern_bytes: usize,
    /// Tests turn the few-patterns path off to exercise the index alone.
    #[cfg(test)]
    pub(super) index_only: bool,
}

/// Up to this many distinct patterns, totalling at most [`SMALL_BYTES`],
/// are also compiled with aho-corasick, whose SIMD prefilter beats the
/// hashed windows for a handful of values; its compilation over so few
/// bytes stays well under a millisecond.
const SMALL_PATTERNS: usize = 64;
const SMALL_BYTES: usize = 8 << 10;

struct Entry {
    handle: HandleId,
    value: SecretBytes,
    /// The value's variants: the patterns it contributes.
    variants: Vec<Arc<PatternBytes>>,
}

struct HandleState {
    /// `[secret:<handle_id>]`, shared by the handle's patterns.
    placeholder: Arc<str>,
    /// The handle's entries, in order.
    seqs: Vec<u64>,
}

struct PatternState {
    bytes: Arc<PatternBytes>,
    /// The pattern as the current snapshot holds it (with its owner).
    current: Arc<Pattern>,
    /// The entries that have this pattern, in registration order, with
    /// their placeholders: the first is the pattern's owner.
    owners: Vec<(u64, Arc<str>)>,
}

impl Registry {
    /// Whether `handle` already has `value`.
    pub(super) fn contains(&self, handle: &HandleId, value: &[u8]) -> bool {
        self.handles.get(handle).is_some_and(|state| {
            state
                .seqs
                .iter()
                .filter_map(|seq| self.entries.get(seq))
                .any(|e| e.value.expose_secret() == value)
        })
    }

    /// Registers `value` with its `variants` under `handle`, applying the
    /// new patterns to `next`.
    pub(super) fn add(
        &mut self,
        next: &mut Matcher,
        handle: &HandleId,
        value: &[u8],
        variants: Vec<PatternBytes>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let state = self
            .handles
            .entry(handle.clone())
            .or_insert_with(|| HandleState {
                placeholder: Arc::from(format!("[{handle}]")),
                seqs: Vec::new(),
            });
        state.seqs.push(seq);
        let placeholder = Arc::clone(&state.placeholder);
        let mut shared = Vec::with_capacity(variants.len());
        for variant in variants {
            let key = self.hasher.hash_one(variant.as_slice());
            let states = self.patterns.entry(key).or_default();
            if let Some(known) = states
                .iter_mut()
                .find(|s| s.bytes.as_slice() == variant.as_slice())
            {
                // Sequence numbers grow, so the owner stays the first.
                known.owners.push((seq, Arc::clone(&placeholder)));
                shared.push(Arc::clone(&known.bytes));
                continue;
            }
            let bytes = Arc::new(variant);
            *self.lengths.entry(bytes.len()).or_default() += 1;
            self.pattern_bytes += bytes.len();
            let current = Arc::new(Pattern::new(Arc::clone(&bytes), Arc::clone(&placeholder)));
            next.insert(Arc::clone(&current));
            states.push(PatternState {
                bytes: Arc::clone(&bytes),
                current,
                owners: vec![(seq, Arc::clone(&placeholder))],
            });
            shared.push(bytes);
        }
        self.entries.insert(
            seq,
            Entry {
                handle: handle.clone(),
                value: SecretBytes::from(value.to_vec()),
                variants: shared,
            },
        );
    }

    /// Removes every value of `handle`, applying the changes to `next`, and
    /// returns how many there were.
    pub(super) fn remove_handle(&mut self, next: &mut Matcher, handle: &HandleId) -> usize {
        let seqs = self
            .handles
            .get(handle)
            .map(|s| s.seqs.clone())
            .unwrap_or_default();
        for seq in &seqs {
            self.remove_entry(next, *seq);
        }
        seqs.len()
    }

    /// Removes one value of `handle`; reports whether it was registered.
    pub(super) fn remove_value(
        &mut self,
        next: &mut Matcher,
        handle: &HandleId,
        value: &[u8],
    ) -> bool {
        let seq = self.handles.get(handle).and_then(|state| {
            state.seqs.iter().copied().find(|seq| {
                self.entries
                    .get(seq)
                    .is_some_and(|e| e.value.expose_secret() == value)
            })
        });
        let Some(seq) = seq else {
            return false;
        };
        self.remove_entry(next, seq);
        true
    }

    /// How many handles have at least one value.
    pub(super) fn handle_count(&self) -> usize {
        self.handles.len()
    }

    /// How many (handle, value) pairs are registered.
    pub(super) fn value_count(&self) -> usize {
        self.entries.len()
    }

    /// How many distinct patterns there are.
    fn pattern_count(&self) -> usize {
        self.lengths.values().sum()
    }

    /// Completes a change of `next` before it is published: its longest
    /// pattern, and whether the few-patterns path applies.
    pub(super) fn finish(&self, next: &mut Matcher) {
        next.set_max_len(self.lengths.keys().next_back().copied().unwrap_or(0));
        let few = self.pattern_count() <= SMALL_PATTERNS && self.pattern_bytes <= SMALL_BYTES;
        #[cfg(test)]
        let few = few && !self.index_only;
        let patterns = few.then(|| {
            self.patterns
                .values()
                .flatten()
                .map(|state| Arc::clone(&state.current))
                .collect()
        });
        next.set_few(patterns);
    }

    fn remove_entry(&mut self, next: &mut Matcher, seq: u64) {
        let Some(entry) = self.entries.remove(&seq) else {
            return;
        };
        if let Some(state) = self.handles.get_mut(&entry.handle) {
            state.seqs.retain(|s| *s != seq);
            if state.seqs.is_empty() {
                self.handles.remove(&entry.handle);
            }
        }
        for bytes in &entry.variants {
            let key = self.hasher.hash_one(bytes.as_slice());
            let Some(states) = self.patterns.get_mut(&key) else {
                continue;
            };
            let Some(i) = states.iter().position(|s| Arc::ptr_eq(&s.bytes, bytes)) else {
                continue;
            };
            let state = &mut states[i];
            let was_owner = state.owners.first().is_some_and(|(s, _)| *s == seq);
            state.owners.retain(|(s, _)| *s != seq);
            match state.owners.first() {
                None => {
                    next.remove(bytes);
                    states.swap_remove(i);
                    if states.is_empty() {
                        self.patterns.remove(&key);
                    }
                    self.pattern_bytes -= bytes.len();
                    if let Some(count) = self.lengths.get_mut(&bytes.len()) {
                        *count -= 1;
                        if *count == 0 {
                            self.lengths.remove(&bytes.len());
                        }
                    }
                }
                Some((_, owner)) if was_owner => {
                    state.current = Arc::new(Pattern::new(Arc::clone(bytes), Arc::clone(owner)));
                    next.insert(Arc::clone(&state.current));
                }
                Some(_) => {}
            }
        }
    }
}
