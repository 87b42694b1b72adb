//! Redaction: replacing every known secret value, and its common encodings,
//! with a placeholder naming its handle, before bytes cross a persistence or
//! egress boundary.
//!
//! ```
//! use tyrum_secrets_core::{HandleId, Redactor, SecretBytes};
//!
//! let redactor = Redactor::new();
//! let handle = HandleId::generate()?;
//! redactor.register(&handle, &SecretBytes::from(b"sk-live-4f9a8b7c".to_vec()))?;
//!
//! let line = redactor.redact_str("calling api with key=sk-live-4f9a8b7c");
//! assert_eq!(line.as_str(), format!("calling api with key=[{handle}]"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is matched
//!
//! Each registered value and the variants listed in [`encoded_variants`]:
//! base64 (standard and URL-safe, at byte offsets 0, 1 and 2, the stable
//! core only), lower and upper hex, percent-encodings, JSON and Rust `{:?}`
//! string escapes, and each line of a multi-line value. Variants shorter
//! than the minimum value length are skipped, not registered.
//!
//! Matching is one pass of an Aho-Corasick automaton with leftmost-longest
//! semantics. Where matches overlap (two values sharing bytes, or one
//! value's encoding running into another's) they are merged into one span,
//! replaced by one placeholder per handle that extends the span, so no
//! value's tail survives: `[secret:A][secret:B]`. A value wholly inside a
//! longer one is replaced by the longer one's placeholder.
//!
//! Not matched: encodings other than those listed (base32, mixed-case hex,
//! other percent-encoding sets such as one that leaves `/` raw, other
//! escaping schemes), a value cut into pieces with other text between them,
//! and values that were never registered.
//!
//! # Concurrency
//!
//! Registration and removal build a new automaton aside, under a mutex that
//! only writers take, and swap it in with [`arc_swap::ArcSwap`]. Redactions
//! load the current automaton without locking and keep using that snapshot
//! until they finish, so readers never wait for a rebuild, and a writer that
//! stalls mid-swap cannot stall them either (as a writer holding an
//! `RwLock` could). When `register` returns, every redaction that starts
//! afterwards sees the value. A rebuild costs time linear in the total size
//! of all patterns; register in bulk with [`Redactor::register_all`].
//!
//! # Where the values live
//!
//! The redactor keeps each value, and its encodings, in buffers that are
//! wiped on drop ([`SecretBytes`], [`Zeroizing`]). The compiled automaton
//! cannot avoid holding the same bytes in its transition tables and pattern
//! store, and the `aho-corasick` crate does not wipe them when a snapshot is
//! dropped. A process that can redact a value necessarily holds it in memory
//! in recognisable form; protect the process's memory (no core dumps, no
//! swap) accordingly.

mod error;
mod json;
mod matcher;
mod redacted;
#[cfg(feature = "tracing")]
mod tracing_writer;
mod variants;
mod writer;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
#[cfg(feature = "tracing")]
mod tracing_tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use zeroize::Zeroizing;

use crate::{ExposeSecret as _, HandleId, SecretBytes};

pub use error::RedactionError;
pub use redacted::Redacted;
#[cfg(feature = "tracing")]
pub use tracing_writer::{RedactingEventWriter, RedactingMakeWriter};
pub use variants::encoded_variants;
pub use writer::RedactingWriter;

use matcher::Matcher;

/// The minimum value length a [`Redactor::new`] accepts, in bytes.
pub const DEFAULT_MIN_VALUE_LEN: usize = 8;

/// Replaces registered secret values, and their encodings, with
/// `[secret:<handle_id>]`.
///
/// A handle id may hold several values: [`register`](Self::register) adds,
/// so every version of a rotated secret that is still resolvable stays
/// redacted, and [`remove`](Self::remove) drops all of them. The same value
/// may be registered under several handles; a match is attributed to the
/// handle that registered it first.
///
/// Clones share one registry: register through any clone and every clone
/// (and every [`RedactingWriter`] made from one) redacts the value.
///
/// `Debug` shows counts only.
#[derive(Clone)]
pub struct Redactor {
    shared: Arc<Shared>,
}

struct Shared {
    min_len: usize,
    /// Registered values in registration order. Only writers lock it.
    registry: Mutex<Registry>,
    /// The automaton over `registry`, rebuilt and swapped by writers.
    matcher: ArcSwap<Matcher>,
}

/// The registered values, in registration order (the order decides which
/// handle a shared value is attributed to), with an index by handle so that
/// re-registering a known value — what every resolve does — is a lookup, not
/// a pass over every registered value.
#[derive(Default)]
struct Registry {
    entries: Vec<Entry>,
    by_handle: HashMap<HandleId, Vec<usize>>,
}

impl Registry {
    fn contains(&self, handle: &HandleId, value: &[u8]) -> bool {
        self.by_handle.get(handle).is_some_and(|positions| {
            positions
                .iter()
                .filter_map(|&i| self.entries.get(i))
                .any(|e| e.handle == *handle && e.value.expose_secret() == value)
        })
    }

    fn push(&mut self, entry: Entry) {
        self.by_handle
            .entry(entry.handle.clone())
            .or_default()
            .push(self.entries.len());
        self.entries.push(entry);
    }

    /// Keeps the entries `keep` accepts, in order.
    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.entries.retain(keep);
        self.reindex();
    }

    fn truncate(&mut self, len: usize) {
        self.entries.truncate(len);
        self.reindex();
    }

    fn reindex(&mut self) {
        self.by_handle.clear();
        for (i, entry) in self.entries.iter().enumerate() {
            self.by_handle
                .entry(entry.handle.clone())
                .or_default()
                .push(i);
        }
    }
}

struct Entry {
    handle: HandleId,
    value: SecretBytes,
    /// The value's variants, kept so a rebuild need not recompute them.
    variants: Vec<Zeroizing<Vec<u8>>>,
}

impl Redactor {
    /// A redactor with nothing registered that refuses values shorter than
    /// [`DEFAULT_MIN_VALUE_LEN`] bytes.
    pub fn new() -> Self {
        Self::with_min_value_len(DEFAULT_MIN_VALUE_LEN)
    }

    /// A redactor that refuses values shorter than `min` bytes and skips
    /// variants shorter than `min`. A minimum of 0 is taken as 1: an empty
    /// pattern would match everywhere.
    pub fn with_min_value_len(min: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                min_len: min.max(1),
                registry: Mutex::new(Registry::default()),
                matcher: ArcSwap::from_pointee(Matcher::empty()),
            }),
        }
    }

    /// Registers `value` under `handle`, in addition to any values the
    /// handle already has. Registering a (handle, value) pair again is a
    /// no-op. The redactor keeps its own copy, wiped when the value is
    /// removed or the last clone of the redactor is dropped.
    ///
    /// When this returns, every redaction that starts afterwards, on any
    /// thread and through any clone, replaces the value.
    ///
    /// # Errors
    /// [`RedactionError::ValueTooShort`] when the value is shorter than the
    /// minimum; [`RedactionError::MatcherBuild`] when the automaton cannot
    /// be built. Nothing is registered on error.
    pub fn register(&self, handle: &HandleId, value: &SecretBytes) -> Result<(), RedactionError> {
        self.register_all([(handle, value)])
    }

    /// Registers several values with a single rebuild: what a gateway does
    /// at start-up. All or nothing: if one value is refused, none is
    /// registered.
    ///
    /// # Errors
    /// As [`register`](Self::register), for the first value refused.
    pub fn register_all<'a, I>(&self, values: I) -> Result<(), RedactionError>
    where
        I: IntoIterator<Item = (&'a HandleId, &'a SecretBytes)>,
    {
        let min = self.shared.min_len;
        let mut new = Vec::new();
        for (handle, value) in values {
            let bytes = value.expose_secret();
            if bytes.len() < min {
                return Err(RedactionError::ValueTooShort {
                    handle: handle.clone(),
                    min,
                });
            }
            new.push((handle, bytes));
        }
        let mut registry = self.lock_registry();
        let old_len = registry.entries.len();
        for (handle, bytes) in new {
            if !registry.contains(handle, bytes) {
                registry.push(Entry {
                    handle: handle.clone(),
                    value: SecretBytes::from(bytes.to_vec()),
                    variants: variants::variants(bytes, min),
                });
            }
        }
        if registry.entries.len() == old_len {
            return Ok(());
        }
        match build(registry.entries.iter()) {
            Ok(matcher) => {
                self.shared.matcher.store(Arc::new(matcher));
                Ok(())
            }
            Err(error) => {
                registry.truncate(old_len);
                Err(error)
            }
        }
    }

    /// Removes every value registered under `handle` and returns how many
    /// there were. When this returns, later redactions no longer replace
    /// them (unless another handle registered the same value).
    pub fn remove(&self, handle: &HandleId) -> usize {
        self.remove_where(|e| e.handle == *handle)
    }

    /// Removes one value of `handle` (a retired version) and reports
    /// whether it was registered.
    pub fn remove_value(&self, handle: &HandleId, value: &SecretBytes) -> bool {
        let bytes = value.expose_secret();
        self.remove_where(|e| e.handle == *handle && e.value.expose_secret() == bytes) > 0
    }

    /// Redacts text. Borrows the input unchanged when nothing matches.
    ///
    /// A value that is not UTF-8 can match inside a multi-byte character;
    /// the replaced span is then widened to whole characters, so the result
    /// is always valid UTF-8.
    pub fn redact_str<'a>(&self, text: &'a str) -> Redacted<Cow<'a, str>> {
        let matcher = self.shared.matcher.load();
        Redacted::new(match matcher.replace_str(text) {
            None => Cow::Borrowed(text),
            Some(out) => Cow::Owned(out),
        })
    }

    /// Redacts bytes, which need not be UTF-8. Borrows the input unchanged
    /// when nothing matches.
    pub fn redact_bytes<'a>(&self, bytes: &'a [u8]) -> Redacted<Cow<'a, [u8]>> {
        let matcher = self.shared.matcher.load();
        Redacted::new(match matcher.replace_bytes(bytes) {
            None => Cow::Borrowed(bytes),
            Some(out) => Cow::Owned(out),
        })
    }

    /// Redacts a JSON tree: string values and object keys at every depth,
    /// and numbers whose text matches a value (a card number stored as a
    /// number becomes the placeholder string).
    ///
    /// Two keys of one object can become equal after redaction (two
    /// versions of one secret used as keys, or a literal `[secret:...]`
    /// key). Keys that were not changed keep their names; a redacted key
    /// that collides gets ` #2`, ` #3`... appended, so no entry is lost and
    /// the output is still a valid object.
    pub fn redact_json(&self, value: &serde_json::Value) -> Redacted<serde_json::Value> {
        let matcher = self.shared.matcher.load();
        Redacted::new(json::redact(&matcher, value))
    }

    /// Wraps `inner` so that everything written through it is redacted.
    ///
    /// The writer holds back only the last `max pattern length - 1` bytes
    /// (more while a match still open at the end could grow), so a value
    /// split across writes is still caught. Call
    /// [`RedactingWriter::finish`] to write the rest and get `inner` back.
    pub fn writer<W: std::io::Write>(&self, inner: W) -> RedactingWriter<W> {
        RedactingWriter::new(self.clone(), inner)
    }

    /// Wraps a `tracing-subscriber` [`MakeWriter`] so that every log line is
    /// redacted, at every level. See [`RedactingMakeWriter`].
    ///
    /// [`MakeWriter`]: tracing_subscriber::fmt::MakeWriter
    #[cfg(feature = "tracing")]
    pub fn make_writer<M>(&self, inner: M) -> RedactingMakeWriter<M> {
        RedactingMakeWriter::new(self.clone(), inner)
    }

    /// The minimum value length, in bytes.
    pub fn min_value_len(&self) -> usize {
        self.shared.min_len
    }

    /// How many handles have at least one value registered.
    pub fn handle_count(&self) -> usize {
        self.lock_registry().by_handle.len()
    }

    /// How many (handle, value) pairs are registered.
    pub fn value_count(&self) -> usize {
        self.lock_registry().entries.len()
    }

    /// How many distinct patterns (values and variants) the current
    /// automaton matches.
    pub fn pattern_count(&self) -> usize {
        self.shared.matcher.load().pattern_count()
    }

    /// The longest pattern, in bytes: a streaming writer holds back one byte
    /// less than this.
    pub fn max_pattern_len(&self) -> usize {
        self.shared.matcher.load().max_len()
    }

    /// The current automaton.
    fn matcher(&self) -> Arc<Matcher> {
        self.shared.matcher.load_full()
    }

    fn remove_where(&self, matches: impl Fn(&Entry) -> bool) -> usize {
        let mut registry = self.lock_registry();
        let removed = registry.entries.iter().filter(|e| matches(e)).count();
        if removed == 0 {
            return 0;
        }
        // A subset of patterns that built once builds again. Were it to fail
        // anyway, nothing is removed and the old automaton stays: failing to
        // un-redact is the safe direction.
        if let Ok(matcher) = build(registry.entries.iter().filter(|e| !matches(e))) {
            registry.retain(|e| !matches(e));
            self.shared.matcher.store(Arc::new(matcher));
            removed
        } else {
            0
        }
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Writers update the registry only after a successful build, so a
        // panic while the lock was held leaves it consistent.
        self.shared
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("min_value_len", &self.min_value_len())
            .field("handles", &self.handle_count())
            .field("values", &self.value_count())
            .field("patterns", &self.pattern_count())
            .field("max_pattern_len", &self.max_pattern_len())
            .finish()
    }
}

/// Compiles the entries' variants into a new matcher.
fn build<'e>(entries: impl Iterator<Item = &'e Entry>) -> Result<Matcher, RedactionError> {
    let mut handles: Vec<&HandleId> = Vec::new();
    let mut index: HashMap<&HandleId, u32> = HashMap::new();
    let mut patterns: Vec<(&[u8], u32)> = Vec::new();
    for entry in entries {
        let owner = *index.entry(&entry.handle).or_insert_with(|| {
            handles.push(&entry.handle);
            // More than 4 billion handles cannot be registered in memory.
            u32::try_from(handles.len() - 1).unwrap_or(u32::MAX)
        });
        patterns.extend(entry.variants.iter().map(|v| (v.as_slice(), owner)));
    }
    let count = patterns.len();
    Matcher::build(&handles, &patterns).map_err(|e| RedactionError::MatcherBuild {
        patterns: count,
        source: Box::new(e),
    })
}
