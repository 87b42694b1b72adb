//! An anchor's stored form: up to two heads, each with its tag.

use std::fmt;

use super::{AnchorError, AnchorHead, AnchorSeal, Anchored, CHAIN_LEN, Role};

const MAGIC: &[u8; 8] = b"TYRUMANC";
const FORMAT_VERSION: u8 = 1;
const HAS_CURRENT: u8 = 1;
const HAS_NEXT: u8 = 2;
const SEALED_LEN: usize = 8 + 8 + CHAIN_LEN + CHAIN_LEN;

/// A tag and the head it authenticates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Sealed {
    pub(super) head: AnchorHead,
    pub(super) tag: [u8; CHAIN_LEN],
}

/// What an anchor holds, parsed but not yet authenticated.
#[derive(Clone)]
pub struct SealedAnchor {
    pub(super) current: Option<Sealed>,
    pub(super) next: Option<Sealed>,
    pub(super) location: String,
}

impl SealedAnchor {
    /// Whether the anchor claims a current file (as opposed to only a file
    /// being created). Unauthenticated: use it only to refuse, never to
    /// accept.
    pub fn claims_a_file(&self) -> bool {
        self.current.is_some()
    }

    /// The heads the anchor claims, unauthenticated: the positions an owner
    /// should note while it scans the file ([`ChainWatch`](super::ChainWatch)).
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

    pub(super) fn encode(&self) -> Vec<u8> {
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

    pub(super) fn decode(bytes: &[u8], location: String) -> Result<Self, AnchorError> {
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
