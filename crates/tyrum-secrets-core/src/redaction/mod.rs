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
//! Each registered value, always, and the forms of it that the redactor's
//! [`Encodings`] select (all by default; [`Redactor::builder`] turns
//! families off). [`encoded_variants`] lists them for a value:
//!
//! | [`Encoding`] | forms |
//! |---|---|
//! | `Base64` | standard and URL-safe base64 of the value at byte offset 0, 1 and 2 of the encoded data, only the characters that depend on the value alone (no padding, no partial first or last character) |
//! | `Base64Wrapped` | standard base64 of the value at the start of the encoded data with a line break every 64 characters (PEM) and every 76 (MIME), `\n` or `\r\n`, when it spans a break |
//! | `Hex` | lower- and upper-case hex |
//! | `Percent` | RFC 3986 percent-encoding (`A-Za-z0-9-._~` raw), upper- and lower-case digits |
//! | `PercentReservedRaw` | `encodeURI`, `encodeURIComponent` and Python's `quote(s, safe="/")`, upper-case digits |
//! | `FormUrlencoded` | space as `+`: WHATWG/`URLSearchParams`/Java (`*-._` raw) and Python's `quote_plus` (`-._~` raw) |
//! | `Json` | JSON string escaping as `serde_json` and JavaScript write it, and ASCII-only as Python's `json.dumps` does (`\u00e9`, `\u007f`) |
//! | `JsonTwice` | each JSON form escaped again (a JSON document inside a JSON string) |
//! | `RustDebug` | Rust's `{:?}` escaping (`tracing`'s `&str` fields) |
//! | `TracingEscapes` | `tracing-subscriber`'s escapes in event messages and error fields (`\x1b`, `\x07`, `\x08`, `\x0c`, `\x7f`, `\u{85}`) |
//! | `Lines` | each line of a multi-line value, PEM armour lines excepted |
//!
//! The text forms (`Json` to `TracingEscapes`) exist only for UTF-8
//! values. A form shorter than the minimum value length is not registered
//! (a short line of a key would mask ordinary text); the whole value and
//! its longer forms still are.
//!
//! Matches are leftmost-longest. Where they overlap (two values sharing
//! bytes, or one value's encoding running into another's) they are merged
//! into one span, replaced by one placeholder per handle that extends the
//! span, so no value's tail survives: `[secret:A][secret:B]`. A value
//! wholly inside a longer one is replaced by the longer one's placeholder.
//! [`Redactor::redact_str`] widens a span that would cut a character to
//! whole characters.
//!
//! Not matched:
//!
//! - other encodings: base32, base85, hex with separators (`de:ad:..`) or
//!   in mixed case, lower-case digits in the reserved-raw and form
//!   percent-encodings, percent-encoding applied twice, JSON escaping three
//!   times, HTML entities, shell or SQL quoting, compressed or encrypted
//!   forms;
//! - base64 wrapped at other widths, wrapped URL-safe base64, and wrapped
//!   base64 of a value that does not start the encoded data (a PEM body or
//!   a MIME part holding just the value is matched);
//! - a value cut into pieces with other text between them: a log prefix
//!   between two halves, a line break a terminal inserted (lines of a
//!   multi-line value are matched one by one);
//! - values never registered, and values registered after the text was
//!   redacted.
//!
//! # How it matches
//!
//! Every pattern (a value or one of its forms) is at least the minimum
//! length, 8 bytes by default, so its first 8 bytes are an *anchor*. The
//! scan reads one position in 4 and hashes the 5 bytes there into a small
//! table (one multiply, one load) that holds the corresponding 5-byte
//! pieces of every anchor; ordinary text almost never passes. Where it
//! does, the 4 positions are checked against a second table of whole
//! anchors, and a position that passes that is verified exactly against
//! the sorted patterns sharing its anchor. The cost per byte hardly depends
//! on how many values are registered. While only a handful of short
//! patterns are registered, an aho-corasick automaton (never a DFA, whose
//! construction is super-linear in repetitive values) scans instead: its
//! SIMD prefilter is faster there.
//!
//! # Streams
//!
//! A [`RedactingWriter`] holds back exactly the longest tail of what it has
//! seen that is a proper prefix of some pattern (and a match that may
//! still grow into the next write); everything else is passed on, redacted,
//! at once. For ordinary text that is nothing, so interactive output is
//! not delayed; [`RedactingWriter::held_back`] says how much is waiting.
//!
//! # Concurrency
//!
//! The patterns live in an immutable snapshot that redactions load without
//! locking (via [`arc_swap::ArcSwap`]) and keep using until they finish,
//! so readers never wait for a writer, and a writer that stalls mid-swap
//! cannot stall them either (as a writer holding an `RwLock` could).
//! Registration and removal, under a mutex that only writers take, copy the
//! current snapshot's handful of pages that change (the snapshot is a
//! persistent structure: everything else is shared) and swap the copy in.
//! Its cost does not grow with the length of the values already
//! registered, and barely with their number: tens of microseconds with
//! 10,000 values registered. When `register` returns, every redaction that
//! starts afterwards sees the value. Register many values at once with
//! [`Redactor::register_all`]: all or nothing, one swap.
//!
//! # Where the values live
//!
//! The redactor keeps each value, and its forms, in buffers that are wiped
//! when the last snapshot holding them is dropped ([`SecretBytes`],
//! [`Zeroizing`](zeroize::Zeroizing)); the anchors (first bytes) that index
//! them sit in tables that wipe them too, never leaving a copy behind when
//! they grow or shrink; the prefilter tables hold only hash bits. While
//! the aho-corasick path is in use, its automaton holds the same bytes in
//! its transition tables, and the `aho-corasick` crate does not wipe them
//! when a snapshot is dropped. A process that can redact a value necessarily
//! holds it in memory in recognisable form; protect the process's memory
//! (no core dumps, no swap) accordingly.

mod anchors;
mod config;
mod error;
mod escape;
mod filter;
mod group;
mod index;
mod json;
mod matcher;
mod pmap;
mod redacted;
mod registry;
#[cfg(feature = "tracing")]
mod tracing_writer;
mod variants;
mod wipe;
mod writer;

#[cfg(test)]
mod encoding_tests;
#[cfg(test)]
mod matcher_proptests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod registration_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
#[cfg(feature = "tracing")]
mod tracing_tests;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::{ExposeSecret as _, HandleId, SecretBytes};

pub use config::{Encoding, Encodings, RedactorBuilder};
pub use error::RedactionError;
pub use redacted::Redacted;
#[cfg(feature = "tracing")]
pub use tracing_writer::{RedactingEventWriter, RedactingMakeWriter};
pub use variants::{encoded_variants, encoded_variants_with};
pub use writer::RedactingWriter;

use matcher::Matcher;
use registry::Registry;

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
    encodings: Encodings,
    /// Registered values in registration order. Only writers lock it.
    registry: Mutex<Registry>,
    /// The current snapshot of the patterns, changed and swapped by writers.
    matcher: ArcSwap<Matcher>,
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
        Self::builder().min_value_len(min).build()
    }

    /// Configures a redactor: its minimum value length and the
    /// [`Encodings`] it matches (all by default).
    pub fn builder() -> RedactorBuilder {
        RedactorBuilder::new()
    }

    fn from_builder(builder: RedactorBuilder) -> Self {
        let min = builder.min_value_len.max(1);
        Self {
            shared: Arc::new(Shared {
                min_len: min,
                encodings: builder.encodings,
                registry: Mutex::new(Registry::default()),
                matcher: ArcSwap::from_pointee(Matcher::empty(min, seed())),
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
    /// Costs the value's own encodings plus a copy of the few pages of the
    /// current snapshot that its patterns land in: not a rebuild.
    ///
    /// # Errors
    /// [`RedactionError::ValueTooShort`] when the value is shorter than the
    /// minimum. Nothing is registered on error.
    pub fn register(&self, handle: &HandleId, value: &SecretBytes) -> Result<(), RedactionError> {
        self.register_all([(handle, value)])
    }

    /// Registers several values in one change of the snapshot: what a
    /// gateway does at start-up. All or nothing: if one value is refused,
    /// none is registered, and redactions see either none or all of them.
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
        // Re-registering a known value (every resolve does) is a lookup.
        // The variants of new values are computed outside the lock: for a
        // large value they are the expensive part.
        new.retain(|(handle, bytes)| !self.lock_registry().contains(handle, bytes));
        if new.is_empty() {
            return Ok(());
        }
        let prepared: Vec<_> = new
            .into_iter()
            .map(|(handle, bytes)| {
                let variants = variants::variants(bytes, min, self.shared.encodings);
                (handle, bytes, variants)
            })
            .collect();
        let mut registry = self.lock_registry();
        let mut next = Matcher::clone(&self.shared.matcher.load());
        next.begin_change();
        let mut added = false;
        for (handle, bytes, variants) in prepared {
            if !registry.contains(handle, bytes) {
                registry.add(&mut next, handle, bytes, variants);
                added = true;
            }
        }
        if added {
            registry.finish(&mut next);
            self.shared.matcher.store(Arc::new(next));
        }
        Ok(())
    }

    /// Removes every value registered under `handle` and returns how many
    /// there were. When this returns, later redactions no longer replace
    /// them (unless another handle registered the same value).
    pub fn remove(&self, handle: &HandleId) -> usize {
        self.change(|registry, next| registry.remove_handle(next, handle))
    }

    /// Removes one value of `handle` (a retired version) and reports
    /// whether it was registered.
    pub fn remove_value(&self, handle: &HandleId, value: &SecretBytes) -> bool {
        let bytes = value.expose_secret();
        self.change(|registry, next| usize::from(registry.remove_value(next, handle, bytes))) > 0
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
    /// The writer holds back only a tail that may be the start of a value
    /// (and a match that may still grow), so a value split across writes is
    /// still caught while ordinary text passes at once. Call
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

    /// The encodings matched besides each value itself.
    pub fn encodings(&self) -> Encodings {
        self.shared.encodings
    }

    /// How many handles have at least one value registered.
    pub fn handle_count(&self) -> usize {
        self.lock_registry().handle_count()
    }

    /// How many (handle, value) pairs are registered.
    pub fn value_count(&self) -> usize {
        self.lock_registry().value_count()
    }

    /// How many distinct patterns (values and variants) the current
    /// snapshot matches.
    pub fn pattern_count(&self) -> usize {
        self.shared.matcher.load().pattern_count()
    }

    /// The longest pattern, in bytes. A streaming writer holds back at most
    /// one byte less than this (more only while a match may still grow).
    pub fn max_pattern_len(&self) -> usize {
        self.shared.matcher.load().max_len()
    }

    /// The same redactor with the few-patterns (aho-corasick) path turned
    /// off, so that tests exercise the index with a handful of values.
    #[cfg(test)]
    pub(crate) fn index_only(self) -> Self {
        self.lock_registry().index_only = true;
        self
    }

    /// The current snapshot.
    fn matcher(&self) -> Arc<Matcher> {
        self.shared.matcher.load_full()
    }

    /// Applies a removal to a copy of the current snapshot and swaps it in
    /// if anything changed; returns what `change` returned.
    fn change(&self, change: impl FnOnce(&mut Registry, &mut Matcher) -> usize) -> usize {
        let mut registry = self.lock_registry();
        let mut next = Matcher::clone(&self.shared.matcher.load());
        next.begin_change();
        let changed = change(&mut registry, &mut next);
        if changed > 0 {
            registry.finish(&mut next);
            self.shared.matcher.store(Arc::new(next));
        }
        changed
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while the lock was held (an allocation failure) can leave
        // the registry ahead of the published snapshot; the next change
        // publishes both.
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
            .field("encodings", &self.encodings())
            .field("handles", &self.handle_count())
            .field("values", &self.value_count())
            .field("patterns", &self.pattern_count())
            .field("max_pattern_len", &self.max_pattern_len())
            .finish()
    }
}

/// The odd multiplier of the scan's window hash, random per redactor so
/// that text cannot be built to make every position a candidate. A fixed
/// odd constant if the system has no randomness (only speed depends on it).
fn seed() -> u64 {
    getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15) | 1
}
