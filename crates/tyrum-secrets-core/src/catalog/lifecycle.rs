//! The catalog's changing steps, crate-private. [`SecretAdmin`] composes
//! them around its audit records (publish, record, point); nothing else in
//! the crate changes an entry except the resolver's `last_resolved_at`.
//!
//! [`SecretAdmin`]: crate::SecretAdmin

use std::time::Duration;

use super::{
    Catalog, CatalogEntry, CatalogError, EntryStatus, LAST_RESOLVED_GRANULARITY, NewSecret,
    Retirement, RotateOptions, VersionPin,
};
use crate::provider::{Locator, ProviderError, Version, VersionSelector, VersionedSecret};
use crate::{HandleId, ProviderId, Scope, SecretBytes, SecretHandle, Timestamp};

/// How many times an operation re-reads and retries after losing a
/// compare-and-set race before reporting [`CatalogError::Conflict`].
const MAX_CAS_RETRIES: usize = 64;

impl Catalog {
    /// Where the value of a new handle `id` made from `spec` goes, checking
    /// that the spec's provider is configured.
    ///
    /// # Errors
    /// [`CatalogError::UnknownProvider`], or a locator that the scope and id
    /// cannot form.
    pub(crate) fn locator_for(
        &self,
        spec: &NewSecret,
        id: &HandleId,
    ) -> Result<Locator, CatalogError> {
        self.provider_or_err(&spec.provider)?;
        match &spec.locator {
            Some(locator) => Ok(locator.clone()),
            None => default_locator(&spec.scope, id),
        }
    }

    /// Writes a new version of `locator` in `provider`. Invisible until an
    /// entry points at it.
    pub(crate) fn publish(
        &self,
        provider: &ProviderId,
        locator: &Locator,
        value: &SecretBytes,
    ) -> Result<Version, CatalogError> {
        Ok(self.provider_or_err(provider)?.write(locator, value)?)
    }

    /// Best-effort removal of a version no entry points at (a publish whose
    /// change was then refused). A failure leaves it unreferenced.
    pub(crate) fn unpublish(&self, provider: &ProviderId, locator: &Locator, version: Version) {
        if let Ok(p) = self.provider_or_err(provider)
            && p.destroy(locator, version).is_err()
        {
            let _ = p.delete(locator, version);
        }
    }

    /// Reads the latest version at `locator`: what an import points at.
    pub(crate) fn read_latest(
        &self,
        provider: &ProviderId,
        locator: &Locator,
    ) -> Result<VersionedSecret, CatalogError> {
        Ok(self
            .provider_or_err(provider)?
            .read(locator, VersionSelector::Latest)?)
    }

    /// Records a new entry for `id`: the step that makes it visible.
    pub(crate) fn insert(
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
            allow_unmasked: spec.allow_unmasked,
            revision: 0,
        };
        self.store.compare_and_set(entry, None)?;
        Ok(handle)
    }

    /// Moves `id` to the published `version` (compare-and-set), scheduling
    /// the previous version's retirement per `options`. Returns the
    /// previous pin if the handle moved, `None` if a concurrent rotation had
    /// already moved it past `version` (ours then stays behind it).
    ///
    /// Rotating a revoked handle moves it but leaves it revoked: only
    /// [`restore`](Self::restore) makes it active again.
    pub(crate) fn point(
        &self,
        id: &HandleId,
        version: Version,
        options: RotateOptions,
        now: Timestamp,
    ) -> Result<Option<VersionPin>, CatalogError> {
        let mut moved_from = None;
        self.update(id, |entry| {
            let previous = entry.current;
            if let VersionPin::Pinned(current) = previous
                && current >= version
            {
                moved_from = None;
                return Ok(());
            }
            moved_from = Some(previous);
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
        Ok(moved_from)
    }

    /// Old versions whose grace period has ended at `now`, per entry.
    pub(crate) fn due(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(CatalogEntry, Vec<Version>)>, CatalogError> {
        Ok(self
            .store
            .list()?
            .into_iter()
            .filter_map(|entry| {
                let due = due_versions(&entry, now);
                (!due.is_empty()).then_some((entry, due))
            })
            .collect())
    }

    /// Removes `version` of `entry` from its provider (destroy, or delete
    /// where the provider cannot destroy) and drops it from the entry's
    /// retiring list. A version already gone counts as removed: a retry
    /// after a crash between the provider call and the catalog update.
    /// Returns whether the provider held it.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] for the version the handle points at (a
    /// handle never points at nothing), a provider or a store failure.
    pub(crate) fn remove_version(
        &self,
        entry: &CatalogEntry,
        version: Version,
    ) -> Result<bool, CatalogError> {
        let current = self.entry(entry.id())?.current;
        if current == VersionPin::Pinned(version) {
            return Err(CatalogError::Invalid {
                message: format!(
                    "{version} is the version secret handle {} resolves to; rotate it first",
                    entry.id()
                ),
            });
        }
        let provider = self.provider_or_err(entry.handle.provider())?;
        let gone = |e: &ProviderError| {
            matches!(
                e,
                ProviderError::VersionNotFound { .. } | ProviderError::NotFound { .. }
            )
        };
        let held = match provider.destroy(&entry.locator, version) {
            Ok(()) => true,
            Err(e) if gone(&e) => false,
            Err(ProviderError::Unsupported { .. }) => {
                match provider.delete(&entry.locator, version) {
                    Ok(()) => true,
                    Err(e) if gone(&e) => false,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        self.update(entry.id(), |entry| {
            entry.retiring.retain(|r| r.version != version);
            Ok(())
        })?;
        Ok(held)
    }

    /// Revokes `id`: every later resolve fails with
    /// [`CatalogError::Revoked`] in every process sharing this catalog's
    /// store, until [`restore`](Self::restore).
    pub(crate) fn revoke(&self, id: &HandleId, reason: &str) -> Result<(), CatalogError> {
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
    pub(crate) fn restore(&self, id: &HandleId) -> Result<(), CatalogError> {
        self.update(id, |entry| {
            entry.status = EntryStatus::Active;
            Ok(())
        })
    }

    /// Sets (or with `None` clears) the expiry of `id`.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] when clearing the expiry of a kind that
    /// needs one (a session cookie).
    pub(crate) fn set_expiry(
        &self,
        id: &HandleId,
        at: Option<Timestamp>,
    ) -> Result<(), CatalogError> {
        self.update(id, |entry| {
            if at.is_none() && entry.handle.kind().requires_expiry() {
                return Err(CatalogError::Invalid {
                    message: format!(
                        "a {} must carry an expiry; set a new one instead of clearing it",
                        entry.handle.kind()
                    ),
                });
            }
            entry.expires_at = at;
            Ok(())
        })
    }

    /// Sets or clears a label on `id`.
    pub(crate) fn set_label(
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
    pub(crate) fn mark_resolved(&self, id: &HandleId, at: Timestamp) -> Result<(), CatalogError> {
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
}

/// The retiring versions of `entry` due at `now` (never the current one).
pub(crate) fn due_versions(entry: &CatalogEntry, now: Timestamp) -> Vec<Version> {
    entry
        .retiring
        .iter()
        .filter(|r| r.after <= now && entry.current != VersionPin::Pinned(r.version))
        .map(|r| r.version)
        .collect()
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
