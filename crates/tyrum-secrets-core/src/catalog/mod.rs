//! The catalog: the mapping from handle ids to where values live and whether
//! they may resolve. It holds no secret value.
//!
//! Reading is public ([`Catalog::entry`], [`Catalog::lookup`],
//! [`Catalog::list`]); changing is not. Every change goes through
//! [`SecretAdmin`](crate::SecretAdmin), which writes an audit record for
//! it, so code handed a catalog (or a resolver) cannot change one unseen.
//!
//! Lifecycle operations keep one rule: publish, then point, then retire.
//! Rotation writes the new version to the provider first, moves the handle
//! with a compare-and-set second, and removes the old version only after its
//! grace period, so a failure midway never leaves a handle pointing at
//! nothing.

mod entry;
mod json_file;
mod lifecycle;
mod spec;
mod store;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use lifecycle::due_versions;

pub use entry::{CatalogEntry, EntryStatus, Retirement, VersionPin};
pub use json_file::JsonFileCatalogStore;
pub use spec::{NewSecret, RotateOptions};
pub use store::{CatalogStore, MemoryCatalogStore};

use crate::mutation::{self, Mutation};
use crate::provider::{ProviderError, SecretProvider, Version, VersionSelector, VersionedSecret};
use crate::{HandleId, ProviderId, RandomnessError, Timestamp};

/// How precisely the catalog keeps `last_resolved_at`.
pub const LAST_RESOLVED_GRANULARITY: Duration = Duration::from_secs(60);

/// Handles, their providers and their lifecycle.
///
/// A catalog is built once, with its store and providers, and shared as an
/// `Arc` by a [`Resolver`](crate::Resolver) (which reads) and a
/// [`SecretAdmin`](crate::SecretAdmin) (which changes it, with an audit
/// record for every change).
///
/// ```
/// use std::sync::Arc;
/// use tyrum_secrets_core::{AdminRequest, Catalog, CatalogError, KindSpec, MemoryAuditSink,
///     MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId, Purpose, Requester, Scope,
///     SecretAdmin, SecretBytes, SecretKind};
///
/// let memory = ProviderId::new("memory")?;
/// let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new())
///     .with_provider(memory.clone(), MemoryProvider::new()));
/// let audit = Arc::new(MemoryAuditSink::new());
/// let admin = SecretAdmin::builder(catalog.clone(), audit.clone()).build()?;
/// let by = AdminRequest::new(Requester::new("operator")?, Purpose::new("screenshot leak")?);
///
/// let spec = NewSecret::new(memory, Scope::new("workspace/acme")?,
///     KindSpec::new(SecretKind::ApiKey, None)?);
/// let handle = admin.create(spec, &SecretBytes::from(b"sk-live-example-1".to_vec()), &by)?;
/// admin.revoke(handle.id(), &by)?;
/// assert!(matches!(catalog.lookup(handle.id()), Err(CatalogError::Revoked { .. })));
/// admin.restore(handle.id(), &by)?;
/// assert!(catalog.lookup(handle.id()).is_ok());
/// assert_eq!(audit.len(), 3); // create, revoke, restore
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Changing methods are crate-private:
///
/// ```compile_fail
/// # use tyrum_secrets_core::{Catalog, HandleId};
/// fn revoke_unaudited(catalog: &Catalog, id: &HandleId) {
///     let _ = catalog.revoke(id, "no record of this");
/// }
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
    /// Crate-private: a provider reads values without policy or audit.
    /// Whoever set the providers up keeps its own `Arc` (see
    /// [`with_shared_provider`](Self::with_shared_provider)).
    pub(crate) fn provider(&self, id: &ProviderId) -> Option<&Arc<dyn SecretProvider>> {
        self.providers.get(id)
    }

    /// The store behind this catalog. Tests only: its compare-and-set would
    /// change entries without an audit record.
    #[cfg(test)]
    pub(crate) fn store(&self) -> &Arc<dyn CatalogStore> {
        &self.store
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

    /// Every entry, whatever its status, ordered by handle id.
    ///
    /// # Errors
    /// A store failure.
    pub fn list(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        self.store.list()
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
        check_resolvable(&entry, now)?;
        Ok(entry)
    }

    /// Reads the value an entry points at. Crate-private: only the resolver,
    /// after policy and audit, may call it.
    pub(crate) fn read_entry(&self, entry: &CatalogEntry) -> Result<VersionedSecret, CatalogError> {
        let selector = match entry.current {
            VersionPin::Pinned(v) => VersionSelector::Exact(v),
            VersionPin::Latest => VersionSelector::Latest,
        };
        if let (true, VersionPin::Pinned(v)) =
            (mutation::active(Mutation::OldVersion), entry.current)
            && let Some(older) = Version::new(v.get() - 1)
            && let Ok(old) = self.read_at(entry, VersionSelector::Exact(older))
        {
            return Ok(old);
        }
        self.read_at(entry, selector)
    }

    /// Reads one version of an entry's value. Crate-private: for the
    /// redactor pre-load, which hands nothing out.
    pub(crate) fn read_at(
        &self,
        entry: &CatalogEntry,
        selector: VersionSelector,
    ) -> Result<VersionedSecret, CatalogError> {
        let provider = self.provider_or_err(entry.handle.provider())?;
        Ok(provider.read(&entry.locator, selector)?)
    }

    fn provider_or_err(&self, id: &ProviderId) -> Result<&Arc<dyn SecretProvider>, CatalogError> {
        self.provider(id)
            .ok_or_else(|| CatalogError::UnknownProvider {
                provider: id.clone(),
            })
    }
}

/// Whether `entry` may resolve at `now`: not revoked, not expired, and not
/// a kind that needs an expiry stored without one.
fn check_resolvable(entry: &CatalogEntry, now: Timestamp) -> Result<(), CatalogError> {
    let id = entry.id();
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
    Ok(())
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
