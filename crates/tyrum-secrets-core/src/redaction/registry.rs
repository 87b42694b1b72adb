//! [`Registry`]: the registered values, on the writers' side of the
//! redactor, and the bookkeeping that turns registrations and removals
//! into changes of the next [`Matcher`] snapshot.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::group::{Pattern, PatternBytes};
use super::matcher::Matcher;
use crate::handle::HANDLE_PREFIX;
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
    entries: BTreeMap<u64, Value>,
    handles: HashMap<HandleId, HandleState>,
    /// Distinct patterns, by their bytes.
    patterns: HashMap<PatternKey, PatternState>,
    /// Patterns added since the last [`apply_added`](Self::apply_added),
    /// not yet in the next snapshot.
    added: Vec<Arc<Pattern>>,
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

/// A change that adds at least this fraction (1 in `REBUILD_SHARE`) of all
/// patterns builds the snapshot's index afresh, in one pass, rather than
/// copying its pages pattern by pattern: a start-up registration of
/// thousands of values costs a sort, not thousands of page copies, while
/// registering one value among many stays a copy of a few pages.
const REBUILD_SHARE: usize = 4;

/// A registered (handle, value) pair.
struct Value {
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

/// A pattern's bytes as the key of [`Registry::patterns`], found by a
/// `&[u8]`.
struct PatternKey(Arc<PatternBytes>);

impl Hash for PatternKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that `Borrow<[u8]>` lookups find it.
        self.0.as_slice().hash(state);
    }
}

impl PartialEq for PatternKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice() == other.0.as_slice()
    }
}

impl Eq for PatternKey {}

impl Borrow<[u8]> for PatternKey {
    fn borrow(&self) -> &[u8] {
        self.0.as_slice()
    }
}

struct PatternState {
    /// The pattern as the current snapshot holds it (with its owner).
    current: Arc<Pattern>,
    /// The entry that registered the pattern first, with its placeholder:
    /// the pattern's owner.
    owner: (u64, Arc<str>),
    /// The other entries that have it, in registration order (usually
    /// none).
    others: Vec<(u64, Arc<str>)>,
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

    /// Makes room for `values` more values with `forms` forms in all.
    pub(super) fn reserve(&mut self, values: usize, forms: usize) {
        self.handles.reserve(values);
        self.patterns.reserve(forms);
        self.added.reserve(forms);
    }

    /// Registers `value` with its `forms` (distinct) under `handle`. New
    /// patterns reach the next snapshot with
    /// [`apply_added`](Self::apply_added).
    pub(super) fn add(&mut self, handle: &HandleId, value: &[u8], forms: Vec<Arc<PatternBytes>>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let state = self
            .handles
            .entry(handle.clone())
            .or_insert_with(|| HandleState {
                placeholder: placeholder(handle),
                seqs: Vec::new(),
            });
        state.seqs.push(seq);
        let placeholder = Arc::clone(&state.placeholder);
        let mut shared = forms;
        for bytes in &mut shared {
            match self.patterns.entry(PatternKey(Arc::clone(bytes))) {
                Entry::Occupied(known) => {
                    let known = known.into_mut();
                    // Sequence numbers grow, so the owner stays the first.
                    known.others.push((seq, Arc::clone(&placeholder)));
                    // Share the registered copy; this one is dropped.
                    *bytes = Arc::clone(known.current.shared_bytes());
                }
                Entry::Vacant(slot) => {
                    *self.lengths.entry(bytes.len()).or_default() += 1;
                    self.pattern_bytes += bytes.len();
                    let current =
                        Arc::new(Pattern::new(Arc::clone(bytes), Arc::clone(&placeholder)));
                    self.added.push(Arc::clone(&current));
                    slot.insert(PatternState {
                        current,
                        owner: (seq, Arc::clone(&placeholder)),
                        others: Vec::new(),
                    });
                }
            }
        }
        self.entries.insert(
            seq,
            Value {
                handle: handle.clone(),
                value: SecretBytes::from(value.to_vec()),
                variants: shared,
            },
        );
    }

    /// Puts the patterns added since the last call into `next`: one by one
    /// for a few, or by building its index afresh from every pattern when
    /// they are a large share of them (see [`REBUILD_SHARE`]).
    pub(super) fn apply_added(&mut self, next: &mut Matcher) {
        let added = std::mem::take(&mut self.added);
        if added.len().saturating_mul(REBUILD_SHARE) >= self.patterns.len() {
            drop(added);
            next.rebuild(
                self.patterns
                    .values()
                    .map(|state| Arc::clone(&state.current))
                    .collect(),
            );
        } else {
            for pattern in added {
                next.insert(pattern);
            }
        }
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
        self.patterns.len()
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
            let Some(state) = self.patterns.get_mut(bytes.as_slice()) else {
                continue;
            };
            if state.owner.0 != seq {
                state.others.retain(|(s, _)| *s != seq);
                continue;
            }
            if !state.others.is_empty() {
                state.owner = state.others.remove(0);
                state.current =
                    Arc::new(Pattern::new(Arc::clone(bytes), Arc::clone(&state.owner.1)));
                next.insert(Arc::clone(&state.current));
                continue;
            }
            next.remove(bytes);
            self.patterns.remove(bytes.as_slice());
            self.pattern_bytes -= bytes.len();
            if let Some(count) = self.lengths.get_mut(&bytes.len()) {
                *count -= 1;
                if *count == 0 {
                    self.lengths.remove(&bytes.len());
                }
            }
        }
    }
}

/// `[secret:<handle_id>]`, as `format!("[{handle}]")` writes it.
fn placeholder(handle: &HandleId) -> Arc<str> {
    let id = handle.as_str();
    let mut text = String::with_capacity(HANDLE_PREFIX.len() + id.len() + 2);
    text.push('[');
    text.push_str(HANDLE_PREFIX);
    text.push_str(id);
    text.push(']');
    Arc::from(text)
}
