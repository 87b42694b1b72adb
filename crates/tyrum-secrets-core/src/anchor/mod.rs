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
//! - [`ProviderAnchor`]: any [`SecretProvider`] at a
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

mod check;
mod error;
mod file;
mod sealed;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

pub use check::{Anchored, ChainWatch, Observed, Standing};
pub use error::AnchorError;
pub use file::FileAnchor;
pub use sealed::SealedAnchor;
pub use store::{AnchorStore, MemoryAnchor, ProviderAnchor};

use crate::provider::{Locator, SecretProvider};
use crate::{ExposeSecret, SecretBytes};
use sealed::Sealed;

/// Length of a chain value, in bytes.
pub const CHAIN_LEN: usize = 32;
/// Shortest [`AnchorKey`] accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// Domain separation: an anchor tag is never a valid MAC of anything else.
const ANCHOR_DOMAIN: &[u8] = b"tyrum-secrets anchor v1\n";

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

impl AnchorHead {
    /// Which rewrite and how many records, without the chain value.
    pub const fn position(&self) -> ChainPosition {
        ChainPosition {
            generation: self.generation,
            count: self.count,
        }
    }
}

/// Where a file stands: which rewrite of it, and how many records. What
/// refusals report (the chain values mean nothing to an operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChainPosition {
    /// Which chain: one more after every rewrite.
    pub generation: u64,
    /// Records in it.
    pub count: u64,
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} records of rewrite {}", self.count, self.generation)
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

    /// Wraps exactly 32 key bytes (a key derived by the owner). The caller
    /// should wipe its own copy.
    pub fn from_bytes(key: [u8; MIN_KEY_LEN]) -> Self {
        Self(SecretBytes::from(key.to_vec()))
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
