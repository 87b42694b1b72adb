//! Anchors: the head of an append-only file, kept somewhere else.
//!
//! An append-only file whose records are chained (the JSON-lines audit log,
//! the encrypted file store) detects a record edited, cut out of the middle,
//! moved or spliced in. It cannot detect, on its own, being cut short at a
//! record boundary or replaced by an older copy of itself: both leave a
//! valid, shorter chain. An **anchor** closes that gap. The file's owner
//! keeps the file's head — which rewrite of the file this is
//! (`generation`), how many records it holds (`count`) and the chain value
//! after the last one (`chain`) — somewhere the file's writer path does not
//! reach, authenticated with HMAC-SHA256 under a key only the owner holds
//! ([`AnchorSeal`]), and checks the file against it on open.
//!
//! Where the head is kept is the caller's choice, an [`AnchorStore`]:
//! - [`FileAnchor`]: a sibling file (`<file>.anchor`), for the simplest
//!   setups. It only catches a file rolled back or cut short on its own
//!   (a restored backup of one file, a bad copy); whoever can replace the
//!   whole directory replaces the anchor with it.
//! - [`ProviderAnchor`]: any [`SecretProvider`](crate::SecretProvider) at a
//!   locator: an OS keychain entry, an OpenBao path — a place the file's
//!   writer path cannot roll back.
//! - [`MemoryAnchor`]: in this process's memory, for tests; it can be told
//!   to fail.
//!
//! # The crash rule
//!
//! The owner advances the anchor *after* each append is durable. A crash
//! between the two leaves the file ahead of its anchor by the last write,
//! never behind it. So a file is accepted when its anchor is an
//! **ancestor** of it (same generation, no more records, and the file's
//! chain value after that many records equals the anchor's); a file behind
//! its anchor, or on another chain, was rolled back or replaced and is
//! refused ([`AnchorError::RolledBack`], [`AnchorError::Diverged`]).
//!
//! A file replaced wholesale (compaction, a key change, creation) starts a
//! new chain. Its owner first *announces* the new head as `next` beside the
//! `current` one ([`Anchor::announce`]), then renames the new file into
//! place, then [advances](Anchor::advance) the anchor to it. A crash at any
//! point leaves a file that matches one of the two heads.
//!
//! Only the owner's explicit recovery call (audited) accepts a file older
//! than its anchor.

mod file;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

pub use file::FileAnchor;
pub use store::{AnchorStore, MemoryAnchor, ProviderAnchor};

use crate::provider::{Locator, ProviderError, SecretProvider};
use crate::{ExposeSecret, SecretBytes};

/// Length of a chain value, in bytes.
pub const CHAIN_LEN: usize = 32;
/// Shortest [`AnchorKey`] accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// Domain separation: an anchor tag is never a valid MAC of anything else.
const ANCHOR_DOMAIN: &[u8] = b"tyrum-secrets anchor v1\n";
const MAGIC: &[u8; 8] = b"TYRUMANC";
const FORMAT_VERSION: u8 = 1;
const HAS_CURRENT: u8 = 1;
const HAS_NEXT: u8 = 2;
const SEALED_LEN: usize = 8 + 8 + CHAIN_LEN + CHAIN_LEN;

/// The head of an append-only file: which rewrite of it this is, how many
/// records it holds, and its chain value after the last one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnchorHead {
    /// Which chain: 0 or 1 for the first, one more after every rewrite.
    pub generation: u64,
    /// Records in this generation.
    pub count: u64,
    /// The chain value after `count` records (the owner defines it; a
    /// keyed hash, never a secret).
    pub chain: [u8; CHAIN_LEN],
}

impl AnchorHead {
    /// A head.
    pub const fn new(generation: u64, count: u64, chain: [u8; CHAIN_LEN]) -> Self {
        Self {
            generation,
            count,
            chain,
        }
    }
}

impl fmt::Debug for AnchorHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain: String = self.chain[..8].iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("AnchorHead")
            .field("generation", &self.generation)
            .field("count", &self.count)
            .field("chain", &format_args!("{chain}…"))
            .finish()
    }
}

/// The key that authenticates an anchor. Whoever holds it can forge an
/// anchor, so it belongs to the file's owner (the audit log derives it from
/// its chain key, the file store from its data key). Cloneable; wiped on
/// drop; `Debug` never shows it.
#[derive(Clone)]
pub struct AnchorKey(SecretBytes);

impl AnchorKey {
    /// Wraps key bytes.
    ///
    /// # Errors
    /// [`AnchorError::KeyTooShort`] under [`MIN_KEY_LEN`] bytes.
    pub fn new(key: SecretBytes) -> Result<Self, AnchorError> {
        let len = key.expose_secret().len();
        if len < MIN_KEY_LEN {
            return Err(AnchorError::KeyTooShort { len });
        }
        Ok(Self(key))
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`AnchorError::Randomness`] when the OS cannot supply randomness.
    pub fn generate() -> Result<Self, AnchorError> {
        let mut key = vec![0u8; MIN_KEY_LEN];
        getrandom::fill(&mut key).map_err(|_| AnchorError::Randomness)?;
        Ok(Self(SecretBytes::from(key)))
    }
}

impl fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnchorKey([REDACTED])")
    }
}

/// An owner's key together with the identity of the file it anchors (a
/// store id, a log's name), bound into every tag: an anchor of one file
/// never authenticates for another.
#[derive(Clone)]
pub struct AnchorSeal {
    key: AnchorKey,
    subject: Vec<u8>,
}

/// Which of an anchor's two heads a tag is for.
#[derive(Clone, Copy)]
enum Role {
    Current = 1,
    Next = 2,
}

impl AnchorSeal {
    /// A seal for the file named by `subject` (public bytes, not secret).
    pub fn new(key: AnchorKey, subject: impl Into<Vec<u8>>) -> Self {
        Self {
            key,
            subject: subject.into(),
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "HMAC accepts keys of any length; new_from_slice cannot fail"
    )]
    fn mac(&self, role: Role, head: &AnchorHead) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(self.key.0.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(ANCHOR_DOMAIN);
        mac.update(&[role as u8]);
        mac.update(&(self.subject.len() as u64).to_le_bytes());
        mac.update(&self.subject);
        mac.update(&head.generation.to_le_bytes());
        mac.update(&head.count.to_le_bytes());
        mac.update(&head.chain);
        mac
    }

    fn seal(&self, role: Role, head: &AnchorHead) -> Sealed {
        Sealed {
            head: *head,
            tag: self.mac(role, head).finalize().into_bytes().into(),
        }
    }

    fn verify(&self, role: Role, sealed: &Sealed) -> bool {
        self.mac(role, &sealed.head)
            .verify_slice(&sealed.tag)
            .is_ok()
    }
}

impl fmt::Debug for AnchorSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnchorSeal")
            .field("key", &self.key)
            .field("subject_len", &self.subject.len())
            .finish()
    }
}

/// Where a file's anchor is kept: a cheap, cloneable handle on an
/// [`AnchorStore`]. This is what callers configure (`FileOptions::anchor`
/// in the file store, `JsonLinesAuditSink::open_anchored`).
#[derive(Clone, Debug)]
pub struct Anchor {
    store: Arc<dyn AnchorStore>,
}

impl Anchor {
    /// An anchor kept in `store`.
    pub fn new(store: impl AnchorStore + 'static) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// An anchor in the file at `path` ([`FileAnchor`]).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::new(FileAnchor::new(path))
    }

    /// An anchor in the sibling file `<path>.anchor` of the file it anchors.
    pub fn beside(path: &Path) -> Self {
        Self::new(FileAnchor::beside(path))
    }

    /// An anchor kept as the value at `locator` in `provider`
    /// ([`ProviderAnchor`]).
    pub fn provider(provider: Arc<dyn SecretProvider>, locator: Locator) -> Self {
        Self::new(ProviderAnchor::new(provider, locator))
    }

    /// Where the anchor is, for messages.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// Reads what the anchor holds, parsed but not authenticated yet (the
    /// owner may need the file to learn its key). `None` when nothing was
    /// ever stored.
    ///
    /// # Errors
    /// [`AnchorError::Malformed`] for bytes that are not an anchor, or the
    /// store's error.
    pub fn load(&self) -> Result<Option<SealedAnchor>, AnchorError> {
        let Some(bytes) = self.store.load()? else {
            return Ok(None);
        };
        SealedAnchor::decode(&bytes, self.location()).map(Some)
    }

    /// Records `head` as the file's current head, dropping any announced
    /// next head. Call after the append (or the rename) is durable.
    ///
    /// # Errors
    /// The store's error; the anchor then still holds its previous head,
    /// which the file is ahead of — still accepted.
    pub fn advance(&self, seal: &AnchorSeal, head: &AnchorHead) -> Result<(), AnchorError> {
        let sealed = SealedAnchor {
            current: Some(seal.seal(Role::Current, head)),
            next: None,
            location: String::new(),
        };
        self.store.save(&sealed.encode())
    }

    /// Before replacing the file wholesale: records `next` (the new file's
    /// head, sealed with the seal the new file will have) beside `current`
    /// (the file being replaced; `None` when creating it). Until the next
    /// [`advance`](Self::advance), a file matching either is accepted.
    ///
    /// # Errors
    /// The store's error; do not replace the file then.
    pub fn announce(
        &self,
        current: Option<(&AnchorSeal, &AnchorHead)>,
        next: (&AnchorSeal, &AnchorHead),
    ) -> Result<(), AnchorError> {
        let sealed = SealedAnchor {
            current: current.map(|(seal, head)| seal.seal(Role::Current, head)),
            next: Some(next.0.seal(Role::Next, next.1)),
            location: String::new(),
        };
        self.store.save(&sealed.encode())
    }
}

/// A tag and the head it authenticates.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Sealed {
    head: AnchorHead,
    tag: [u8; CHAIN_LEN],
}

/// What an anchor holds, parsed but not yet authenticated.
#[derive(Clone)]
pub struct SealedAnchor {
    current: Option<Sealed>,
    next: Option<Sealed>,
    location: String,
}

impl SealedAnchor {
    /// Whether the anchor claims a current file (as opposed to only a file
    /// being created). Unauthenticated: use it only to refuse, never to
    /// accept.
    pub fn claims_a_file(&self) -> bool {
        self.current.is_some()
    }

    /// The heads the anchor claims, unauthenticated: the positions an owner
    /// should note while it scans the file ([`ChainWatch`]).
    pub fn claimed(&self) -> impl Iterator<Item = AnchorHead> + '_ {
        self.current.iter().chain(self.next.iter()).map(|s| s.head)
    }

    /// The heads that authenticate under `seal`. A head sealed under
    /// another key (the other side of a data-key rotation) is left out.
    ///
    /// # Errors
    /// [`AnchorError::Unauthenticated`] when no head does.
    pub fn open(&self, seal: &AnchorSeal) -> Result<Anchored, AnchorError> {
        let current = self
            .current
            .filter(|s| seal.verify(Role::Current, s))
            .map(|s| s.head);
        let next = self
            .next
            .filter(|s| seal.verify(Role::Next, s))
            .map(|s| s.head);
        if current.is_none() && next.is_none() {
            return Err(AnchorError::Unauthenticated {
                location: self.location.clone(),
            });
        }
        Ok(Anchored {
            current,
            next,
            location: self.location.clone(),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 2 + 2 * SEALED_LEN);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        let flags = if self.current.is_some() {
            HAS_CURRENT
        } else {
            0
        } | if self.next.is_some() { HAS_NEXT } else { 0 };
        out.push(flags);
        for sealed in self.current.iter().chain(self.next.iter()) {
            out.extend_from_slice(&sealed.head.generation.to_le_bytes());
            out.extend_from_slice(&sealed.head.count.to_le_bytes());
            out.extend_from_slice(&sealed.head.chain);
            out.extend_from_slice(&sealed.tag);
        }
        out
    }

    fn decode(bytes: &[u8], location: String) -> Result<Self, AnchorError> {
        let malformed = || AnchorError::Malformed {
            location: location.clone(),
        };
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(malformed)?;
        let [version, flags, rest @ ..] = rest else {
            return Err(malformed());
        };
        if *version != FORMAT_VERSION || *flags == 0 || flags & !(HAS_CURRENT | HAS_NEXT) != 0 {
            return Err(malformed());
        }
        let present = [flags & HAS_CURRENT != 0, flags & HAS_NEXT != 0];
        let expected = present.iter().filter(|p| **p).count() * SEALED_LEN;
        if rest.len() != expected {
            return Err(malformed());
        }
        let mut chunks = rest.chunks_exact(SEALED_LEN);
        let mut take = |wanted: bool| wanted.then(|| chunks.next().map(decode_sealed)).flatten();
        let current = take(present[0]);
        let next = take(present[1]);
        Ok(Self {
            current,
            next,
            location,
        })
    }
}

fn decode_sealed(chunk: &[u8]) -> Sealed {
    let mut generation = [0u8; 8];
    let mut count = [0u8; 8];
    let mut chain = [0u8; CHAIN_LEN];
    let mut tag = [0u8; CHAIN_LEN];
    generation.copy_from_slice(&chunk[..8]);
    count.copy_from_slice(&chunk[8..16]);
    chain.copy_from_slice(&chunk[16..16 + CHAIN_LEN]);
    tag.copy_from_slice(&chunk[16 + CHAIN_LEN..]);
    Sealed {
        head: AnchorHead::new(
            u64::from_le_bytes(generation),
            u64::from_le_bytes(count),
            chain,
        ),
        tag,
    }
}

impl fmt::Debug for SealedAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedAnchor")
            .field("current", &self.current.map(|s| s.head))
            .field("next", &self.next.map(|s| s.head))
            .field("location", &self.location)
            .finish()
    }
}

/// The heads of an anchor that authenticated under the owner's seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchored {
    /// The file's head when the anchor was last advanced.
    pub current: Option<AnchorHead>,
    /// The head of a file announced to replace it.
    pub next: Option<AnchorHead>,
    location: String,
}

/// How a file stands against an anchor that accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Standing {
    /// The anchor's current head is exactly the file's head.
    AtHead,
    /// The file is ahead of the anchor (a crash after an append or a
    /// rename): accepted; the owner advances the anchor at its next write.
    Behind,
}

impl Anchored {
    /// Checks a file against the anchor (the crash rule in the
    /// [module docs](self)).
    ///
    /// # Errors
    /// [`AnchorError::RolledBack`] when the file is behind the anchor,
    /// [`AnchorError::Diverged`] when it is on another chain.
    pub fn check(&self, file: &Observed) -> Result<Standing, AnchorError> {
        let accepts = |anchored: &AnchorHead| {
            anchored.generation == file.head.generation
                && anchored.count <= file.head.count
                && file.chain_at(anchored.count) == Some(anchored.chain)
        };
        if let Some(current) = self.current.filter(accepts) {
            return Ok(if current == file.head {
                Standing::AtHead
            } else {
                Standing::Behind
            });
        }
        if self.next.filter(accepts).is_some() {
            return Ok(Standing::Behind);
        }
        // Describe the refusal against the head the file should have had.
        let Some(anchored) = self.current.or(self.next) else {
            return Ok(Standing::Behind);
        };
        let behind = anchored.generation > file.head.generation
            || (anchored.generation == file.head.generation && anchored.count > file.head.count);
        let location = self.location.clone();
        Err(if behind {
            AnchorError::RolledBack {
                location,
                anchored,
                found: file.head,
            }
        } else {
            AnchorError::Diverged {
                location,
                anchored,
                found: file.head,
            }
        })
    }
}

/// What an owner found in its file: the head, and the chain values at the
/// counts the anchor claims.
#[derive(Clone, Debug)]
pub struct Observed {
    /// The file's head.
    pub head: AnchorHead,
    marks: Vec<(u64, [u8; CHAIN_LEN])>,
}

impl Observed {
    fn chain_at(&self, count: u64) -> Option<[u8; CHAIN_LEN]> {
        if count == self.head.count {
            return Some(self.head.chain);
        }
        self.marks
            .iter()
            .find(|(c, _)| *c == count)
            .map(|(_, v)| *v)
    }
}

/// Notes a file's chain values at the counts an anchor claims while the
/// owner scans the file once, so the check needs no second pass and keeps
/// no per-record history.
#[derive(Clone, Debug, Default)]
pub struct ChainWatch {
    wanted: Vec<u64>,
    marks: Vec<(u64, [u8; CHAIN_LEN])>,
}

impl ChainWatch {
    /// Watches the counts that `anchor` claims in `generation`.
    pub fn new(anchor: Option<&SealedAnchor>, generation: u64) -> Self {
        let wanted = anchor
            .into_iter()
            .flat_map(SealedAnchor::claimed)
            .filter(|h| h.generation == generation)
            .map(|h| h.count)
            .collect();
        Self {
            wanted,
            marks: Vec::new(),
        }
    }

    /// Call with the chain value after `count` records (and with the
    /// genesis value at count 0).
    pub fn observe(&mut self, count: u64, chain: &[u8; CHAIN_LEN]) {
        if self.wanted.contains(&count) {
            self.marks.push((count, *chain));
        }
    }

    /// The observation for a file whose head is `head`.
    pub fn finish(self, head: AnchorHead) -> Observed {
        Observed {
            head,
            marks: self.marks,
        }
    }
}

/// An anchor refused a file, or could not be read or written. Messages name
/// where the anchor is and what to do; never a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The file is behind its anchor: cut short or rolled back.
    #[error(
        "the file is older than its anchor at {location}: it holds {} records of rewrite {}, the anchor records {} of rewrite {}. It was cut short or rolled back to an older copy; restore the newest copy, or accept this state with the owner's explicit (audited) recovery call",
        found.count, found.generation, anchored.count, anchored.generation
    )]
    RolledBack {
        /// Where the anchor is.
        location: String,
        /// The head the anchor records.
        anchored: AnchorHead,
        /// The head the file has.
        found: AnchorHead,
    },
    /// The file does not continue the chain its anchor records.
    #[error(
        "the file does not continue the state its anchor at {location} records (record {} of rewrite {}; the file holds {} records of rewrite {}). It was replaced by another copy, or rewritten by a process that did not use the anchor; restore the right copy, or accept this state with the owner's explicit (audited) recovery call",
        anchored.count, anchored.generation, found.count, found.generation
    )]
    Diverged {
        /// Where the anchor is.
        location: String,
        /// The head the anchor records.
        anchored: AnchorHead,
        /// The head the file has.
        found: AnchorHead,
    },
    /// There is no anchor, but the file already holds records.
    #[error(
        "no anchor at {location}, but the file already holds {count} records: the anchor was deleted, or this file is anchored for the first time. Restore the anchor, or accept the file's current state with the owner's explicit (audited) recovery call"
    )]
    Missing {
        /// Where the anchor should be.
        location: String,
        /// Records in the file.
        count: u64,
    },
    /// The anchor records a file that does not exist.
    #[error(
        "the anchor at {location} records a file that does not exist; restore the file, or remove the anchor if the file was deleted on purpose"
    )]
    FileMissing {
        /// Where the anchor is.
        location: String,
    },
    /// No head in the anchor authenticates under the file's key.
    #[error(
        "the anchor at {location} does not authenticate under this file's key: it belongs to another file, or it was forged. Restore it, or accept the file's current state with the owner's explicit (audited) recovery call"
    )]
    Unauthenticated {
        /// Where the anchor is.
        location: String,
    },
    /// The anchor's bytes are not an anchor.
    #[error(
        "the anchor at {location} is damaged or not an anchor; restore it, or accept the file's current state with the owner's explicit (audited) recovery call"
    )]
    Malformed {
        /// Where the anchor is.
        location: String,
    },
    /// Reading or writing an anchor file failed.
    #[error("anchor {location}: {context}; check the disk and permissions")]
    Io {
        /// The anchor file.
        location: String,
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The provider holding the anchor failed.
    #[error("anchor at {location}: the provider failed; check it and retry")]
    Provider {
        /// Where the anchor is.
        location: String,
        /// The provider's error.
        #[source]
        source: ProviderError,
    },
    /// A test anchor was told to fail.
    #[error("anchor at {location} is unavailable (told to fail)")]
    Unavailable {
        /// Where the anchor is.
        location: String,
    },
    /// The key is too short.
    #[error("the anchor key is {len} bytes; at least 32 random bytes are required")]
    KeyTooShort {
        /// Its length.
        len: usize,
    },
    /// The OS random number generator failed.
    #[error("the operating system random number generator failed; no key was generated")]
    Randomness,
}

impl AnchorError {
    /// Whether the owner's explicit recovery call may accept the file
    /// despite this error (it is about the anchor's claim, not about the
    /// file's integrity or a failing store).
    pub fn is_acceptable(&self) -> bool {
        matches!(
            self,
            AnchorError::RolledBack { .. }
                | AnchorError::Diverged { .. }
                | AnchorError::Missing { .. }
                | AnchorError::Unauthenticated { .. }
                | AnchorError::Malformed { .. }
        )
    }
}
