//! Where catalog entries are kept: the `CatalogStore` trait and its
//! in-memory implementation.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use super::{CatalogEntry, CatalogError};
use crate::HandleId;

/// Storage for catalog entries with compare-and-set writes.
///
/// The gateway may implement this over its own state store; core ships
/// [`MemoryCatalogStore`] and [`JsonFileCatalogStore`](super::JsonFileCatalogStore).
/// Every write names the revision it read, so concurrent writers in any
/// number of processes never overwrite each other's changes blindly.
pub trait CatalogStore: Send + Sync + fmt::Debug {
    /// The entry for `id`, if any. Always the newest stored state: a
    /// revocation made by another process is visible to the next call.
    ///
    /// # Errors
    /// A storage failure.
    fn get(&self, id: &HandleId) -> Result<Option<CatalogEntry>, CatalogError>;

    /// Every entry, ordered by handle id.
    ///
    /// # Errors
    /// A storage failure.
    fn list(&self) -> Result<Vec<CatalogEntry>, CatalogError>;

    /// Writes `entry` if the stored revision of its id equals `expected`
    /// (`None`: no entry may exist yet). Stores it with the next revision
    /// and returns that revision.
    ///
    /// # Errors
    /// [`CatalogError::Conflict`] when the stored revision differs, or a
    /// storage failure. On error nothing was written.
    fn compare_and_set(
        &self,
        entry: CatalogEntry,
        expected: Option<u64>,
    ) -> Result<u64, CatalogError>;
}

impl<S: CatalogStore + ?Sized> CatalogStore for std::sync::Arc<S> {
    fn get(&self, id: &HandleId) -> Result<Option<CatalogEntry>, CatalogError> {
        (**self).get(id)
    }
    fn list(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        (**self).list()
    }
    fn compare_and_set(
        &self,
        entry: CatalogEntry,
        expected: Option<u64>,
    ) -> Result<u64, CatalogError> {
        (**self).compare_and_set(entry, expected)
    }
}

/// Applies a compare-and-set to a map of entries: the shared rule of every
/// store shipped here.
pub(super) fn apply_compare_and_set(
    entries: &mut BTreeMap<HandleId, CatalogEntry>,
    mut entry: CatalogEntry,
    expected: Option<u64>,
) -> Result<u64, CatalogError> {
    let actual = entries.get(entry.id()).map(|e| e.revision);
    if actual != expected {
        return Err(CatalogError::Conflict {
            id: entry.id().clone(),
            expected,
            actual,
        });
    }
    let revision = expected.map_or(1, |r| r.saturating_add(1));
    entry.revision = revision;
    entries.insert(entry.id().clone(), entry);
    Ok(revision)
}

/// A catalog kept in this process's memory.
#[derive(Default)]
pub struct MemoryCatalogStore {
    entries: Mutex<BTreeMap<HandleId, CatalogEntry>>,
}

impl MemoryCatalogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<HandleId, CatalogEntry>> {
        // Every mutation is a single insert after all checks, so a poisoned
        // map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl fmt::Debug for MemoryCatalogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCatalogStore")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl CatalogStore for MemoryCatalogStore {
    fn get(&self, id: &HandleId) -> Result<Option<CatalogEntry>, CatalogError> {
        Ok(self.lock().get(id).cloned())
    }

    fn list(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        Ok(self.lock().values().cloned().collect())
    }

    fn compare_and_set(
        &self,
        entry: CatalogEntry,
        expected: Option<u64>,
    ) -> Result<u64, CatalogError> {
        apply_compare_and_set(&mut self.lock(), entry, expected)
    }
}
