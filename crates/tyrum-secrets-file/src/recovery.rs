//! The explicit, audited paths past what an ordinary open refuses:
//! [`FileProvider::upgrade`] (format 1 to format 2) and
//! [`FileProvider::accept_rollback`] (a store older than its anchor).

use std::path::Path;

use tyrum_secrets_core::anchor::{AnchorError, ChainPosition};
use tyrum_secrets_core::{AdminRequest, AuditRecord, AuditSink};

use crate::error::FileError;
use crate::format::FORMAT_V1;
use crate::key::KeySource;
use crate::lock::WriterLock;
use crate::options::FileOptions;
use crate::provider::FileProvider;
use crate::store::{Store, Verdict, anchor_error, sibling};

impl FileProvider {
    /// Rewrites a format-1 store as format 2, atomically (temporary file,
    /// fsync, rename, fsync of the directory) under the writer lock, and
    /// starts its anchor if `options` name one. Values, versions, deleted
    /// and destroyed versions stay as they were; every record is sealed
    /// again into the chain. Returns `false` (and changes nothing) for a
    /// store already in format 2.
    ///
    /// A crash at any point leaves either the complete format-1 file or the
    /// complete format-2 file, and an anchor that accepts whichever it is.
    ///
    /// # Errors
    /// As [`FileProvider::open_with`]; [`FileError::Anchor`] when an anchor
    /// already records this store (a format-1 file where a format-2 store
    /// was is an old copy: see [`FileProvider::accept_rollback`]).
    pub fn upgrade(
        path: impl AsRef<Path>,
        source: KeySource,
        options: FileOptions,
    ) -> Result<bool, FileError> {
        let path = path.as_ref();
        let lock = WriterLock::acquire(&sibling(path, ".lock"), options.lock_timeout)?;
        let (mut store, verdict) = Store::open_for_recovery(
            path,
            &source,
            &options.kdf_limits,
            options.anchor_for(path),
            &lock,
        )?;
        if let Verdict::Refused(refusal) = verdict {
            return Err(anchor_error(path, refusal));
        }
        if store.format() != FORMAT_V1 {
            return Ok(false);
        }
        store.upgrade()?;
        Ok(true)
    }

    /// Opens a store that its anchor refuses, knowingly: an operator
    /// accepts the store as it is — a backup restored on purpose, a store
    /// anchored for the first time, an anchor lost or damaged. Writes an
    /// [`Action::AcceptRollback`](tyrum_secrets_core::Action) record to
    /// `audit` first (naming who asked and why, `by`, the head the anchor
    /// recorded and the one the store has); if that fails, nothing changes. Then
    /// rewrites the store as format 2 at a generation past the anchor's,
    /// and moves the anchor to it.
    ///
    /// Only the anchor's claim is overridden: a store whose records do not
    /// verify (tampered, spliced, wrong key) is refused as by
    /// [`FileProvider::open_with`]. When the anchor accepts the store, this
    /// is an ordinary open and writes nothing.
    ///
    /// # Errors
    /// As [`FileProvider::open_with`], except the refusals this call exists
    /// to override; [`FileError::Audit`] when the record cannot be written.
    pub fn accept_rollback(
        path: impl AsRef<Path>,
        source: KeySource,
        options: FileOptions,
        audit: &dyn AuditSink,
        by: &AdminRequest,
    ) -> Result<Self, FileError> {
        let path = path.as_ref();
        let lock = WriterLock::acquire(&sibling(path, ".lock"), options.lock_timeout)?;
        let (mut store, verdict) = Store::open_for_recovery(
            path,
            &source,
            &options.kdf_limits,
            options.anchor_for(path),
            &lock,
        )?;
        let refusal = match verdict {
            Verdict::Accepted => None,
            Verdict::NeedsUpgrade => {
                // Format 1 and no anchor claim: nothing to accept, only
                // something to upgrade.
                store.upgrade()?;
                None
            }
            Verdict::Refused(refusal) if refusal.is_acceptable() => Some(refusal),
            Verdict::Refused(refusal) => return Err(anchor_error(path, refusal)),
        };
        if let Some(refusal) = refusal {
            let found = position(&store);
            let marker = format!("store-{}", hex(&store.header.store_id));
            AuditRecord::accepted_rollback(&marker, by.actor(), by.reason(), &refusal, found)
                .and_then(|record| audit.record(record))
                .map_err(|source| FileError::Audit { source })?;
            store.rewrite_past(anchored_generation(&refusal))?;
        }
        drop(lock);
        Ok(Self::from_store(store, source, options))
    }
}

/// Where the store stands, for the audit record.
fn position(store: &Store) -> ChainPosition {
    match &store.chain {
        Some(chain) => chain.head.position(),
        None => ChainPosition {
            generation: 0,
            count: store
                .index
                .entries
                .values()
                .map(|e| e.slots.len() as u64)
                .sum(),
        },
    }
}

fn anchored_generation(refusal: &AnchorError) -> u64 {
    match refusal {
        AnchorError::RolledBack { anchored, .. } | AnchorError::Diverged { anchored, .. } => {
            anchored.generation
        }
        _ => 0,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
