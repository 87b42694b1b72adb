//! The crash rule: a file is accepted when its anchor is an ancestor of it.

use super::{AnchorError, AnchorHead, CHAIN_LEN, SealedAnchor};

/// The heads of an anchor that authenticated under the owner's seal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchored {
    /// The file's head when the anchor was last advanced.
    pub current: Option<AnchorHead>,
    /// The head of a file announced to replace it.
    pub next: Option<AnchorHead>,
    pub(super) location: String,
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
    /// [module docs](crate::anchor)).
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
        let (anchored, found) = (anchored.position(), file.head.position());
        Err(if behind {
            AnchorError::RolledBack {
                location,
                anchored,
                found,
            }
        } else {
            AnchorError::Diverged {
                location,
                anchored,
                found,
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
