//! The catalog: the mapping from handle ids to where values live and whether
//! they may resolve. It holds no secret value.
//!
//! Lifecycle operations keep one rule: publish, then point, then retire.
//! Rotation writes the new version to the provider first, moves the handle
//! with a compare-and-set second, and removes the old version only after its
//! grace period, so a failure midway never leaves a handle pointing at
//! nothing.

mod entry;
mod json_file;
mod store;
mod versions;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use entry::{CatalogEntry, EntryStatus, Retirement, VersionPin};
pub use json_file::JsonFileCatalogStore;
pub use store::{CatalogStore, MemoryCatalogStore};

use crate::provider::{
    Locator, ProviderError, SecretProvider, Version, VersionSelector, VersionedSecret,
};
use crate::{
    HandleId, KindSpec, ProviderId, RandomnessError, Scope, SecretBytes, SecretHandle, Timestamp,
};

/// How many times an operation re-reads and retries after losing a
/// compare-and-set race before reporting [`CatalogError::Conflict`].
const MAX_CAS_RETRIES: usize = 64;

/// How precisely [`Catalog::mark_resolved`] keeps `last_resolved_at`.
pub const LAST_RESOLVED_GRANULARITY: Duration = Duration::from_secs(60);

/// Handles, their providers and their lifecycle.
///
/// ```
/// use tyrum_secrets_core::{Catalog, CatalogError, KindSpec, MemoryCatalogStore,
///     MemoryProvider, NewSecret, ProviderId, Scope, SecretBytes, SecretKind};
///
/// let file = ProviderId::new("memory")?;
/// let catalog = Catalog::new(MemoryCatalogStore::new())
///     .with_provider(file.clone(), MemoryProvider::new());
/// let spec = NewSecret::new(file, Scope::new("workspace/acme")?, KindSpec::new(SecretKind::ApiKey, None)?);
/// let handle = catalog.create(spec, &SecretBytes::from(b"sk-live-example-1".to_vec()))?;
///
/// catalog.revoke(handle.id(), "leaked in a screenshot")?;
/// assert!(matches!(catalog.lookup(handle.id()), Err(CatalogError::Revoked { .. })));
/// catalog.restore(handle.id())?;
/// assert!(catalog.lookup(handle.id()).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Catalog {
    store: Arc<dyn CatalogStore>,
    providers: BTreeMap<ProviderId, Arc<dyn SecretProvider>>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("store", &self.store)
            .field("providers", &self.providers)
            .finish()
    }
}

/// What to create: provider, scope, kind and where the value goes.
#[derive(Clone, Debug)]
pub struct NewSecret {
    provider: ProviderId,
    scope: Scope,
    kind: KindSpec,
    locator: Option<Locator>,
    labels: BTreeMap<String, String>,
}

impl NewSecret {
    /// A secret in `provider` under `scope`. The locator defaults to
    /// `tyrum/<scope>/<handle id>`.
    pub fn new(provider: ProviderId, scope: Scope, kind: KindSpec) -> Self {
        Self {
            provider,
            scope,
            kind,
            locator: None,
            labels: BTreeMap::new(),
        }
    }

    /// Stores the value at this locator instead of the default.
    pub fn at(mut self, locator: Locator) -> Self {
        self.locator = Some(locator);
        self
    }

    /// Adds a label (safe to show; never a secret).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// Options for [`Catalog::rotate`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RotateOptions {
    retire_previous_after: Option<Duration>,
    expires_at: Option<Timestamp>,
}

impl RotateOptions {
    /// Keep the previous version readable for `grace`, then remove it from
    /// the provider on the next [`Catalog::retire_due`]. `Duration::ZERO`
    /// removes it as part of the rotation.
    pub fn retire_previous_after(mut self, grace: Duration) -> Self {
        self.retire_previous_after = Some(grace);
        self
    }

    /// Give the handle a new expiry (session cookies need one per value).
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

impl Catalog {
    /// A catalog over `store` with no providers yet.
    pub fn new(store: impl CatalogStore + 'static) -> Self {
        Self {
            store: Arc::new(store),
            providers: BTreeMap::new(),
        }
    }

    /// Adds a provider under `id`.
    pub fn with_provider(
        mut self,
        id: ProviderId,
        provider: impl SecretProvider + 'static,
    ) -> Self {
        self.providers.insert(id, Arc::new(provider));
        self
    }

    /// Adds a shared provider under `id`.
    pub fn with_shared_provider(
        mut self,
        id: ProviderId,
        provider: Arc<dyn SecretProvider>,
    ) -> Self {
        self.providers.insert(id, provider);
        self
    }

    /// The provider registered under `id`.
    ///
    /// Crate-private: a provider reads values without policy or audit, and
    /// a [`Resolver`](crate::Resolver) hands its catalog out. Whoever set the
    /// providers up keeps its own `Arc` (see
    /// [`with_shared_provider`](Self::with_shared_provider)).
    pub(crate) fn provider(&self, id: &ProviderId) -> Option<&Arc<dyn SecretProvider>> {
        self.providers.get(id)
    }

    /// The store behind this catalog.
    pub fn store(&self) -> &Arc<dyn CatalogStore> {
        &self.store
    }

    /// Stores `value` in the spec's provider and records a new handle for it.
    ///
    /// # Errors
    /// [`CatalogError::UnknownProvider`], a provider failure, or a store
    /// failure. If the store fails after the provider write, the value stays
    /// in the provider unreferenced; no handle points at nothing.
    pub fn create(
        &self,
        spec: NewSecret,
        value: &SecretBytes,
    ) -> Result<SecretHandle, CatalogError> {
        let provider = self.provider_or_err(&spec.provider)?;
        let id = HandleId::generate()?;
        let locator = match &spec.locator {
            Some(locator) => locator.clone(),
            None => default_locator(&spec.scope, &id)?,
        };
        let version = provider.write(&locator, value)?;
        self.insert(spec, id, locator, VersionPin::Pinned(version))
    }

    /// Records a handle for a value that already lives in a provider (an env
    /// var, a mounted Kubernetes Secret). The handle follows the provider's
    /// latest version.
    ///
    /// # Errors
    /// [`CatalogError::UnknownProvider`], [`ProviderError::NotFound`] when
    /// nothing is stored at the locator, or a store failure.
    pub fn import(&self, spec: NewSecret, locator: Locator) -> Result<SecretHandle, CatalogError> {
        let provider = self.provider_or_err(&spec.provider)?;
        // Checks the locator exists now; the value is dropped (and wiped) at once.
        drop(provider.read(&locator, VersionSelector::Latest)?);
        let id = HandleId::generate()?;
        self.insert(spec, id, locator, VersionPin::Latest)
    }

    fn insert(
        &self,
        spec: NewSecret,
        id: HandleId,
        locator: Locator,
        current: VersionPin,
    ) -> Result<SecretHandle, CatalogError> {
        let handle = SecretHandle::new(id, spec.provider, spec.scope, spec.kind.kind());
        let entry = CatalogEntry {
            handle: handle.clone(),
            locator,
            current,
            status: EntryStatus::Active,
            expires_at: spec.kind.expires_at(),
            labels: spec.labels,
            created_at: Timestamp::now(),
            rotated_at: None,
            last_resolved_at: None,
            retiring: Vec::new(),
            revision: 0,
        };
        self.store.compare_and_set(entry, None)?;
        Ok(handle)
    }

    /// The entry for `id` whatever its status.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`] or a store failure.
    pub fn entry(&self, id: &HandleId) -> Result<CatalogEntry, CatalogError> {
        self.store
            .get(id)?
            .ok_or_else(|| CatalogError::UnknownHandle { id: id.clone() })
    }

    /// The entry for `id` if it may resolve now.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`], [`CatalogError::Revoked`],
    /// [`CatalogError::Expired`], [`CatalogError::Invalid`] for a kind that
    /// needs an expiry (a session cookie) stored without one, or a store
    /// failure.
    pub fn lookup(&self, id: &HandleId) -> Result<CatalogEntry, CatalogError> {
        self.lookup_at(id, Timestamp::now())
    }

    /// [`lookup`](Self::lookup) as of `now`.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn lookup_at(&self, id: &HandleId, now: Timestamp) -> Result<CatalogEntry, CatalogError> {
        let entry = self.entry(id)?;
        if let EntryStatus::Revoked { at, .. } = &entry.status {
            return Err(CatalogError::Revoked {
                id: id.clone(),
                at: *at,
            });
        }
        if let Some(at) = entry.expires_at.filter(|at| now >= *at) {
            return Err(CatalogError::Expired { id: id.clone(), at });
        }
        if entry.expires_at.is_none() && entry.handle.kind().requires_expiry() {
            // `KindSpec` never creates one, but a store can hold one (a
            // hand-edited file): fail closed rather than resolve forever.
            return Err(CatalogError::Invalid {
                message: format!(
                    "secret handle {id} is a {} without an expiry; rotate it with one",
                    entry.handle.kind()
                ),
            });
        }
        Ok(entry)
    }

    /// Reads the value an entry points at. Crate-private: only the resolver,
    /// after policy and audit, may call it.
    pub(crate) fn read_entry(&self, entry: &CatalogEntry) -> Result<VersionedSecret, CatalogError> {
        let provider = self.provider_or_err(entry.handle.provider())?;
        let selector = match entry.current {
            VersionPin::Pinned(v) => VersionSelector::Exact(v),
            VersionPin::Latest => VersionSelector::Latest,
        };
        Ok(provider.read(&entry.locator, selector)?)
    }

    /// Rotates `id` to `value`: publishes a new version in the provider,
    /// then moves the handle to it, then schedules (or with a zero grace,
    /// performs) removal of the previous version.
    ///
    /// Rotating a revoked handle stores the value but leaves it revoked:
    /// only [`restore`](Self::restore) makes it active again.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`], a provider failure (the handle
    /// still points at the old version), or [`CatalogError::Conflict`] after
    /// repeated lost races.
    pub fn rotate(
        &self,
        id: &HandleId,
        value: &SecretBytes,
        options: RotateOptions,
    ) -> Result<Version, CatalogError> {
        let entry = self.entry(id)?;
        let provider = self.provider_or_err(entry.handle.provider())?;
        let now = Timestamp::now();
        let version = provider.write(&entry.locator, value)?;
        self.update(id, |entry| {
            let previous = entry.current;
            if let VersionPin::Pinned(current) = previous
                && current >= version
            {
                // A concurrent rotation published a later version and
                // already moved the handle; ours stays behind it.
                return Ok(());
            }
            entry.current = VersionPin::Pinned(version);
            entry.rotated_at = Some(now);
            if let Some(at) = options.expires_at {
                entry.expires_at = Some(at);
            }
            if let (Some(grace), VersionPin::Pinned(old)) =
                (options.retire_previous_after, previous)
            {
                entry.retiring.push(Retirement {
                    version: old,
                    after: now.saturating_add(grace),
                });
            }
            Ok(())
        })?;
        if options.retire_previous_after == Some(Duration::ZERO) {
            self.retire_due_at(now)?;
        }
        Ok(version)
    }

    /// Removes every old version whose grace period has ended, returning how
    /// many were removed. Run it periodically.
    ///
    /// # Errors
    /// A provider or store failure; what was removed before it stays removed.
    pub fn retire_due(&self) -> Result<usize, CatalogError> {
        self.retire_due_at(Timestamp::now())
    }

    /// [`retire_due`](Self::retire_due) as of `now`.
    ///
    /// # Errors
    /// As [`retire_due`](Self::retire_due).
    pub fn retire_due_at(&self, now: Timestamp) -> Result<usize, CatalogError> {
        let mut removed = 0;
        for entry in self.store.list()? {
            let due: Vec<Version> = entry
                .retiring
                .iter()
                .filter(|r| r.after <= now && entry.current != VersionPin::Pinned(r.version))
                .map(|r| r.version)
                .collect();
            if due.is_empty() {
                continue;
            }
            let provider = self.provider_or_err(entry.handle.provider())?;
            for version in &due {
                match provider.destroy(&entry.locator, *version) {
                    Ok(()) => removed += 1,
                    // Already gone: a retry after a crash between destroy and update.
                    Err(ProviderError::VersionNotFound { .. } | ProviderError::NotFound { .. }) => {
                    }
                    Err(ProviderError::Unsupported { .. }) => {
                        match provider.delete(&entry.locator, *version) {
                            Ok(()) => removed += 1,
                            Err(
                                ProviderError::VersionNotFound { .. }
                                | ProviderError::NotFound { .. },
                            ) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.update(entry.id(), |entry| {
                entry.retiring.retain(|r| !due.contains(&r.version));
                Ok(())
            })?;
        }
        Ok(removed)
    }

    /// Revokes `id`: every later resolve fails with
    /// [`CatalogError::Revoked`] in every process sharing this catalog's
    /// store, until [`restore`](Self::restore).
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`] or a store failure.
    pub fn revoke(&self, id: &HandleId, reason: &str) -> Result<(), CatalogError> {
        let at = Timestamp::now();
        self.update(id, |entry| {
            if !entry.is_revoked() {
                entry.status = EntryStatus::Revoked {
                    at,
                    reason: reason.to_owned(),
                };
            }
            Ok(())
        })
    }

    /// Makes a revoked handle active again. The only way back.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`] or a store failure.
    pub fn restore(&self, id: &HandleId) -> Result<(), CatalogError> {
        self.update(id, |entry| {
            entry.status = EntryStatus::Active;
            Ok(())
        })
    }

    /// Sets or clears a label on `id`.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`] or a store failure.
    pub fn set_label(
        &self,
        id: &HandleId,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), CatalogError> {
        self.update(id, |entry| {
            match value {
                Some(v) => entry.labels.insert(key.to_owned(), v.to_owned()),
                None => entry.labels.remove(key),
            };
            Ok(())
        })
    }

    /// Records that `id` was resolved at `at`.
    ///
    /// The time is kept to [`LAST_RESOLVED_GRANULARITY`]: a resolve within
    /// that window of the recorded time writes nothing, so a hot secret does
    /// not turn every resolve into a catalog write (a full rewrite and fsync
    /// on the JSON file store). The audit log is the exact record of access.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`] or a store failure.
    pub fn mark_resolved(&self, id: &HandleId, at: Timestamp) -> Result<(), CatalogError> {
        let fresh = |entry: &CatalogEntry| {
            entry
                .last_resolved_at
                .is_some_and(|last| last.saturating_add(LAST_RESOLVED_GRANULARITY) > at)
        };
        if fresh(&self.entry(id)?) {
            return Ok(());
        }
        self.update(id, |entry| {
            if !fresh(entry) {
                entry.last_resolved_at = Some(entry.last_resolved_at.map_or(at, |t| t.max(at)));
            }
            Ok(())
        })
    }

    /// Read, change, compare-and-set; retried when another writer won.
    fn update(
        &self,
        id: &HandleId,
        mut change: impl FnMut(&mut CatalogEntry) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        let mut last_conflict = None;
        for attempt in 0..MAX_CAS_RETRIES {
            let mut entry = self.entry(id)?;
            let expected = entry.revision;
            let before = entry.clone();
            change(&mut entry)?;
            if entry == before {
                return Ok(());
            }
            match self.store.compare_and_set(entry, Some(expected)) {
                Ok(_) => return Ok(()),
                Err(conflict @ CatalogError::Conflict { .. }) => {
                    last_conflict = Some(conflict);
                    conflict_backoff(attempt);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_conflict.unwrap_or(CatalogError::UnknownHandle { id: id.clone() }))
    }

    fn provider_or_err(&self, id: &ProviderId) -> Result<&Arc<dyn SecretProvider>, CatalogError> {
        self.provider(id)
            .ok_or_else(|| CatalogError::UnknownProvider {
                provider: id.clone(),
            })
    }
}

/// Sleeps a random time that grows with `attempt`, so writers that keep
/// losing compare-and-set races to each other spread out.
fn conflict_backoff(attempt: usize) {
    let mut byte = [0u8; 1];
    // Without randomness, back off by the full window: slower, still correct.
    let jitter = getrandom::fill(&mut byte).map_or(255, |()| u64::from(byte[0]));
    let window_micros = 50u64 << attempt.min(6);
    std::thread::sleep(Duration::from_micros(window_micros * jitter / 255));
}

fn default_locator(scope: &Scope, id: &HandleId) -> Result<Locator, CatalogError> {
    Locator::new(format!("tyrum/{scope}/{}", id.as_str())).map_err(|e| CatalogError::Invalid {
        message: e.to_string(),
    })
}

/// A catalog operation failed. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// No handle with this id exists. Dependent steps must fail, not pass
    /// the text on.
    #[error("unknown secret handle {id}")]
    UnknownHandle {
        /// The id asked for.
        id: HandleId,
    },
    /// The handle was revoked; it fails closed until restored.
    #[error("secret handle {id} was revoked at {at}; an operator must restore it")]
    Revoked {
        /// The handle.
        id: HandleId,
        /// When it was revoked.
        at: Timestamp,
    },
    /// The handle expired.
    #[error("secret handle {id} expired at {at}; rotate it with a new expiry")]
    Expired {
        /// The handle.
        id: HandleId,
        /// When it expired.
        at: Timestamp,
    },
    /// The handle names a provider this catalog was not given.
    #[error("no provider {provider} is configured in this catalog")]
    UnknownProvider {
        /// The provider id.
        provider: ProviderId,
    },
    /// Another writer changed the entry first and retries did not settle.
    #[error(
        "concurrent update of {id}: expected revision {}, found {}; retry",
        expected.map_or_else(|| "none".to_owned(), |r| r.to_string()),
        actual.map_or_else(|| "none".to_owned(), |r| r.to_string())
    )]
    Conflict {
        /// The handle.
        id: HandleId,
        /// Revision the writer read.
        expected: Option<u64>,
        /// Revision stored.
        actual: Option<u64>,
    },
    /// Another process holds the catalog's writer lock.
    #[error(
        "the catalog is locked by another writer (waited {waited:?}); retry, or check the process holding {path}"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long this writer waited.
        waited: Duration,
    },
    /// The catalog file is not a valid catalog.
    #[error("catalog {path} is corrupt: {message}; restore it from a backup")]
    Corrupt {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Input to a catalog operation is not valid.
    #[error("invalid catalog input: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// An I/O error on the catalog's storage.
    #[error("I/O error: {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// No randomness for a new handle id.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

#[cfg(test)]
mod tests;
