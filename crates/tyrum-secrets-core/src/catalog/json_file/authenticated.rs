//! The authenticated store's checks and writes: every load checks the
//! file's MAC and its standing against the anchor (and against the newest
//! head this process has seen); every write is sealed, renamed into place,
//! and then advances the anchor (the crash rule of [`crate::anchor`]).

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use super::disk::Lock;
use super::format::{self, EntryMap, FileHead, Parsed};
use super::{Auth, Cached, Entries, JsonFileCatalogStore};
use crate::anchor::{AnchorError, CHAIN_LEN, SealedAnchor, Standing};
use crate::catalog::store::apply_compare_and_set;
use crate::catalog::{CatalogEntry, CatalogError};
use crate::durable::FileStamp;

/// An authenticated file that passed its MAC and anchor checks.
struct Verified {
    stamp: FileStamp,
    entries: EntryMap,
    head: FileHead,
    standing: Standing,
}

impl JsonFileCatalogStore {
    /// Under the writer lock: checks the file against its MAC and anchor,
    /// creates it if missing, and brings an anchor one write behind up to
    /// the file.
    pub(super) fn open_checked(&self) -> Result<(), CatalogError> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let _lock = self.lock()?;
        match self.read_verified(auth)? {
            None => self.write_sealed(auth, &BTreeMap::new(), 1, 1, [0; CHAIN_LEN], true),
            Some(verified) => {
                if verified.standing != Standing::AtHead {
                    auth.anchor
                        .advance(&auth.seal, &verified.head.anchor_head())
                        .map_err(|e| self.anchor_error(e))?;
                }
                self.remember(
                    verified.stamp,
                    Arc::new(verified.entries),
                    Some(verified.head),
                )
            }
        }
    }

    /// [`accept_authenticated`](Self::accept_authenticated)'s rewrite:
    /// the file's entries (authenticated or plain; none if it is missing)
    /// sealed as write 1 of a generation above any the file or the anchor
    /// names, announced to the anchor before the rename.
    pub(super) fn reseal(&self) -> Result<(), CatalogError> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let _lock = self.lock()?;
        let (entries, generation) = match self.read_file()? {
            None => (BTreeMap::new(), 0),
            Some((_, bytes)) => match format::parse(&bytes, &self.path, Some(&auth.key))? {
                Parsed::Plain(entries) => (entries, 0),
                Parsed::Sealed { head, entries } => (entries, head.generation),
            },
        };
        // Unauthenticated numbers, used only to go above them.
        let claimed = auth
            .anchor
            .load()
            .ok()
            .flatten()
            .and_then(|sealed| sealed.claimed().map(|h| h.generation).max())
            .unwrap_or(0);
        let generation = generation.max(claimed).saturating_add(1);
        self.forget();
        self.write_sealed(auth, &entries, generation, 1, [0; CHAIN_LEN], true)
    }

    /// Caches what was read or written; for an authenticated store, refuses
    /// a head older than the newest this process has seen.
    pub(super) fn remember(
        &self,
        stamp: FileStamp,
        entries: Entries,
        head: Option<FileHead>,
    ) -> Result<(), CatalogError> {
        let mut cache = self.lock_cache();
        let seen = cache.as_ref().and_then(|c| c.head);
        let head = match (seen, head) {
            (Some(seen), Some(found)) => {
                let older = found.generation < seen.generation
                    || (found.generation == seen.generation && found.count < seen.count);
                let forked = found.generation == seen.generation
                    && found.count == seen.count
                    && found.mac != seen.mac;
                if older || forked {
                    let location = "this process's last view of the catalog".to_owned();
                    let (anchored, found) = (
                        seen.anchor_head().position(),
                        found.anchor_head().position(),
                    );
                    return Err(self.anchor_error(if older {
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
                    }));
                }
                Some(found)
            }
            (seen, found) => found.or(seen),
        };
        *cache = Some(Cached {
            stamp,
            entries,
            head,
        });
        Ok(())
    }

    /// Drops the cache and the newest head seen (before an accepted
    /// rewrite starts a new history).
    fn forget(&self) {
        *self.lock_cache() = None;
    }

    /// Reads the anchor, then the file, and checks the file's MAC and its
    /// standing against the anchor. `None`: no file, and the anchor records
    /// none. The caller holds the lock (shared or exclusive).
    fn read_verified(&self, auth: &Auth) -> Result<Option<Verified>, CatalogError> {
        let sealed: Option<SealedAnchor> = auth.anchor.load().map_err(|e| self.anchor_error(e))?;
        let Some((stamp, bytes)) = self.read_file()? else {
            if sealed.as_ref().is_some_and(SealedAnchor::claims_a_file) {
                return Err(self.anchor_error(AnchorError::FileMissing {
                    location: auth.anchor.location(),
                }));
            }
            return Ok(None);
        };
        let (head, entries) = match format::parse(&bytes, &self.path, Some(&auth.key))? {
            Parsed::Sealed { head, entries } => (head, entries),
            Parsed::Plain(_) => {
                return Err(CatalogError::Unauthenticated {
                    path: self.path.clone(),
                });
            }
        };
        let standing = match sealed {
            None => Err(AnchorError::Missing {
                location: auth.anchor.location(),
                count: head.count,
            }),
            Some(sealed) => sealed
                .open(&auth.seal)
                .and_then(|anchored| anchored.check(&head.observed(&sealed))),
        }
        .map_err(|e| self.anchor_error(e))?;
        Ok(Some(Verified {
            stamp,
            entries,
            head,
            standing,
        }))
    }

    /// Writes `entries` as write `count` of `generation` after `prev`:
    /// announced to the anchor first when the file is replaced wholesale
    /// (`announce`), renamed into place, then the anchor advanced.
    fn write_sealed(
        &self,
        auth: &Auth,
        entries: &EntryMap,
        generation: u64,
        count: u64,
        prev: [u8; CHAIN_LEN],
        announce: bool,
    ) -> Result<(), CatalogError> {
        let (bytes, head) = format::sealed(entries, generation, count, prev, &auth.key)
            .map_err(|e| self.corrupt(e.to_string()))?;
        if announce {
            auth.anchor
                .announce(None, (&auth.seal, &head.anchor_head()))
                .map_err(|e| self.anchor_error(e))?;
        }
        self.write_bytes(&bytes)?;
        // The crash rule: the file may be one write ahead of its anchor,
        // never behind. If this fails the write stands, the anchor stays one
        // write behind (which every load accepts), and the next write
        // advances it before writing, or fails.
        let _ = auth.anchor.advance(&auth.seal, &head.anchor_head());
        if let Ok(stamp) = FileStamp::of(&self.path) {
            self.remember(stamp, Arc::new(entries.clone()), Some(head))?;
        }
        Ok(())
    }

    /// [`load`](Self::load) of an authenticated store whose file changed
    /// since it was last checked.
    pub(super) fn load_sealed(&self, auth: &Auth) -> Result<Entries, CatalogError> {
        // Shared with other readers, exclusive of writers: the file and the
        // anchor are read from the same write.
        let _lock = self.lock_with(Lock::Shared)?;
        let verified = self
            .read_verified(auth)?
            .ok_or_else(|| self.io("read", io::ErrorKind::NotFound.into()))?;
        let entries = Arc::new(verified.entries);
        self.remember(verified.stamp, Arc::clone(&entries), Some(verified.head))?;
        Ok(entries)
    }

    /// [`CatalogStore::compare_and_set`](crate::CatalogStore::compare_and_set) for an authenticated store; the
    /// caller holds the writer lock.
    pub(super) fn compare_and_set_sealed(
        &self,
        auth: &Auth,
        entry: CatalogEntry,
        expected: Option<u64>,
    ) -> Result<u64, CatalogError> {
        let current = self
            .read_verified(auth)?
            .ok_or_else(|| self.io("read", io::ErrorKind::NotFound.into()))?;
        self.remember(
            current.stamp,
            Arc::new(current.entries.clone()),
            Some(current.head),
        )?;
        if current.standing != Standing::AtHead {
            // The last write's anchor update failed or was cut short by a
            // crash: catch up before writing, or the file would be two
            // writes ahead of its anchor.
            auth.anchor
                .advance(&auth.seal, &current.head.anchor_head())
                .map_err(|e| self.anchor_error(e))?;
        }
        let mut entries = current.entries;
        let revision = apply_compare_and_set(&mut entries, entry, expected)?;
        let head = current.head;
        self.write_sealed(
            auth,
            &entries,
            head.generation,
            head.count.saturating_add(1),
            head.mac,
            false,
        )?;
        Ok(revision)
    }
}

/// The refusals [`JsonFileCatalogStore::accept_authenticated`] overrides:
/// about the anchor's claim or the file's lack of a MAC, never about an
/// edit, damage or a failing store.
pub(super) fn is_acceptable(error: &CatalogError) -> bool {
    match error {
        CatalogError::Unauthenticated { .. } => true,
        CatalogError::Anchor { source, .. } => {
            source.is_acceptable() || matches!(source, AnchorError::FileMissing { .. })
        }
        _ => false,
    }
}
