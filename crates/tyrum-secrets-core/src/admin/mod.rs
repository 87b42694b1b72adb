//! The admin capability: the only way to change the catalog, with an audit
//! record for every change.
//!
//! [`SecretAdmin`] creates, imports, rotates, revokes, restores, destroys,
//! relabels and re-expires secrets, and retires old versions. Each call
//! names who asks and why ([`AdminRequest`]); the record names the action,
//! the handle, the version where one is involved, and never a value.
//!
//! # Order: record, then change
//!
//! The audit log must never under-report a change. So each operation:
//!
//! 1. checks what it can without changing anything (the handle exists, the
//!    provider is configured, the change is allowed);
//! 2. registers a new value with the redactor, so it is masked before
//!    anyone can resolve it (a value too short to mask is refused here
//!    unless the secret allows it unmasked);
//! 3. for create, import and rotate, writes the new value to the provider —
//!    invisible, because no handle points at it yet — so that the record
//!    can name the new version (rotating a handle that follows the
//!    provider's latest version records first instead, since that write is
//!    visible at once);
//! 4. writes the record (outcome `applied`), durably: the sink returns only
//!    once the record is stored, bounded by the audit timeout. If it cannot
//!    be written, the change is not made ([`AdminError::Audit`]) and a value
//!    written in step 3 is removed again;
//! 5. makes the change visible (the catalog's compare-and-set, or the
//!    provider's destroy);
//! 6. if that fails, writes a second record with the same `request_id`,
//!    outcome `failed`, saying why.
//!
//! So an `applied` record means "this change was made, unless a later
//! record of the same request says it failed" — at worst the log claims a
//! change that did not happen (a crash between steps 4 and 5), never the
//! reverse. An attempt that fails before step 4 writes one `failed` record
//! (when the sink can take it; it changed nothing either way).
//!
//! A value registered in step 2 stays registered if a later step fails:
//! masking a value that was never stored is harmless.
//!
//! ```
//! use std::sync::Arc;
//! use tyrum_secrets_core::{Action, AdminRequest, Catalog, KindSpec, MemoryAuditSink,
//!     MemoryCatalogStore, MemoryProvider, NewSecret, Outcome, ProviderId, Purpose, Requester,
//!     Redactor, RotateOptions, Scope, SecretAdmin, SecretBytes, SecretKind};
//!
//! let memory = ProviderId::new("memory")?;
//! let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new())
//!     .with_provider(memory.clone(), MemoryProvider::new()));
//! let audit = Arc::new(MemoryAuditSink::new());
//! // The redactor that log writers use (in a gateway, the resolver's).
//! let redactor = Redactor::new();
//! let admin = SecretAdmin::builder(catalog, audit.clone(), &redactor).build()?;
//! let by = AdminRequest::new(Requester::new("ops-alice")?, Purpose::new("quarterly rotation")?);
//!
//! let spec = NewSecret::new(memory, Scope::new("workspace/acme")?,
//!     KindSpec::new(SecretKind::ApiKey, None)?);
//! let handle = admin.create(spec, &SecretBytes::from(b"sk-live-first-value".to_vec()), &by)?;
//! let v2 = admin.rotate(handle.id(), &SecretBytes::from(b"sk-live-second-value".to_vec()),
//!     RotateOptions::default(), &by)?;
//!
//! let records = audit.records();
//! assert_eq!(records.len(), 2);
//! assert_eq!((records[1].action, records[1].outcome), (Action::Rotate, Outcome::Applied));
//! assert_eq!(records[1].version, Some(v2));
//! assert_eq!(records[1].purpose, "quarterly rotation");
//! // Both values were masked from the moment they were stored.
//! assert_eq!(redactor.redact_str("sk-live-first-value").as_str(), format!("[{}]", handle.id()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # One redactor
//!
//! The admin has no redactor of its own: [`SecretAdmin::builder`] takes the
//! one the resolver and the log writers share, so a value created or
//! rotated in is masked in their output at once, before anything resolves
//! it. An admin whose new values are registered nowhere must be asked for
//! by name ([`SecretAdminBuilder::without_redaction`]); it still refuses a
//! value shorter than [`DEFAULT_MIN_VALUE_LEN`](crate::redaction::DEFAULT_MIN_VALUE_LEN)
//! bytes unless its secret allows it unmasked.
//!
//! ```compile_fail
//! # use std::sync::Arc;
//! # use tyrum_secrets_core::{Catalog, MemoryAuditSink, MemoryCatalogStore, SecretAdmin};
//! # let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new()));
//! // No redactor named: does not compile, rather than mask nothing.
//! let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new())).build();
//! ```

mod builder;
mod error;
mod request;
mod steps;
mod versions;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use builder::SecretAdminBuilder;
pub use error::AdminError;
pub use request::AdminRequest;

use crate::audit::gate::AuditGate;
use crate::audit::{Action, AuditSink, LabelChange};
use crate::redaction::Redactor;
use crate::resolver::{DEFAULT_AUDIT_TIMEOUT, PreloadError, PreloadReport};
use crate::{
    Catalog, CatalogEntry, HandleId, Locator, NewSecret, RotateOptions, SecretBytes, SecretHandle,
    Timestamp, Version, VersionPin,
};
use steps::describe;

/// Changes the catalog, recording each change before it is made. See the
/// [module docs](self) for the order of steps.
///
/// Cheap to clone: clones share the catalog, the audit gate and the
/// redactor.
#[derive(Clone)]
pub struct SecretAdmin {
    catalog: Arc<Catalog>,
    audit: Arc<AuditGate>,
    redactor: Option<Redactor>,
}

impl SecretAdmin {
    /// Starts building an admin over `catalog`, recording to `sink`, that
    /// registers every new value with `redactor` before storing it: pass
    /// the resolver's ([`Resolver::redactor`](crate::Resolver::redactor)),
    /// the one log writers and persistence use, so that a value is masked
    /// from the moment it is created or rotated in. The admin keeps a clone,
    /// which shares the registry. To register new values nowhere, say so:
    /// [`without_redaction`](SecretAdminBuilder::without_redaction).
    pub fn builder(
        catalog: Arc<Catalog>,
        sink: Arc<dyn AuditSink>,
        redactor: &Redactor,
    ) -> SecretAdminBuilder {
        SecretAdminBuilder {
            catalog,
            sink,
            redactor: Some(redactor.clone()),
            audit_timeout: DEFAULT_AUDIT_TIMEOUT,
        }
    }

    /// The redactor new values are registered with: the one given to
    /// [`builder`](Self::builder) (`None` only when built
    /// [`without_redaction`](SecretAdminBuilder::without_redaction)).
    pub fn redactor(&self) -> Option<&Redactor> {
        self.redactor.as_ref()
    }

    /// Stores `value` in the spec's provider and records a new handle for
    /// it. The value is registered with the redactor first.
    ///
    /// # Errors
    /// [`AdminError`]: unknown provider, a value too short to mask (without
    /// [`NewSecret::allow_unmasked`]), a provider or catalog failure, or an
    /// audit failure. No handle exists after an error.
    pub fn create(
        &self,
        spec: NewSecret,
        value: &SecretBytes,
        by: &AdminRequest,
    ) -> Result<SecretHandle, AdminError> {
        let id = HandleId::generate()?;
        let mut record = self.record(Action::Create, &id, by);
        record.provider = Some(spec.provider().clone());
        record.scope = Some(spec.scope().clone());
        record.kind = Some(spec.kind().kind());
        record.expires_at = spec.kind().expires_at();
        record.allow_unmasked = spec.allows_unmasked();
        let action = Action::Create;
        let locator = match self.catalog.locator_for(&spec, &id) {
            Ok(locator) => locator,
            Err(e) => return self.fail(record, AdminError::from_catalog(action, &id, e)),
        };
        if let Err(e) = self.register(&id, value, spec.allows_unmasked()) {
            return self.fail(record, e);
        }
        let version = match self.catalog.publish(spec.provider(), &locator, value) {
            Ok(version) => version,
            Err(e) => return self.fail(record, AdminError::from_catalog(action, &id, e)),
        };
        record.version = Some(version);
        let provider = spec.provider().clone();
        if let Err(e) = self.write_ahead(&record) {
            self.catalog.unpublish(&provider, &locator, version);
            return Err(e);
        }
        let pin = VersionPin::Pinned(version);
        match self.catalog.insert(spec, id.clone(), locator.clone(), pin) {
            Ok(handle) => Ok(handle),
            Err(e) => {
                self.catalog.unpublish(&provider, &locator, version);
                self.fail(record, AdminError::from_catalog(action, &id, e))
            }
        }
    }

    /// Records a handle for a value that already lives in a provider (an
    /// env var, a mounted Kubernetes Secret). The handle follows the
    /// provider's latest version. The value is read once, to check it
    /// exists and to register it with the redactor, and not kept.
    ///
    /// # Errors
    /// As [`create`](Self::create); [`AdminError::Provider`] with
    /// `NotFound` when nothing is stored at `locator`.
    pub fn import(
        &self,
        spec: NewSecret,
        locator: Locator,
        by: &AdminRequest,
    ) -> Result<SecretHandle, AdminError> {
        let id = HandleId::generate()?;
        let action = Action::Import;
        let mut record = self.record(action, &id, by);
        record.provider = Some(spec.provider().clone());
        record.scope = Some(spec.scope().clone());
        record.kind = Some(spec.kind().kind());
        record.expires_at = spec.kind().expires_at();
        record.allow_unmasked = spec.allows_unmasked();
        let current = match self.catalog.read_latest(spec.provider(), &locator) {
            Ok(current) => current,
            Err(e) => return self.fail(record, AdminError::from_catalog(action, &id, e)),
        };
        record.version = Some(current.version);
        let registered = self.register(&id, &current.value, spec.allows_unmasked());
        drop(current);
        if let Err(e) = registered {
            return self.fail(record, e);
        }
        self.write_ahead(&record)?;
        match self
            .catalog
            .insert(spec, id.clone(), locator, VersionPin::Latest)
        {
            Ok(handle) => Ok(handle),
            Err(e) => self.fail(record, AdminError::from_catalog(action, &id, e)),
        }
    }

    /// Rotates `id` to `value`: registers it with the redactor, publishes
    /// it as a new version in the provider, records the rotation, then
    /// moves the handle to it; with
    /// [`RotateOptions::retire_previous_after`] the previous version is
    /// scheduled for removal (with `Duration::ZERO`, removed now, with a
    /// [`Action::Retire`] record of its own).
    ///
    /// Rotating a revoked handle stores the value but leaves it revoked:
    /// only [`restore`](Self::restore) makes it active again.
    ///
    /// # Errors
    /// [`AdminError`]: unknown handle, a value too short to mask, a
    /// provider failure (the handle still points at the old version), an
    /// audit failure, or lost compare-and-set races.
    pub fn rotate(
        &self,
        id: &HandleId,
        value: &SecretBytes,
        options: RotateOptions,
        by: &AdminRequest,
    ) -> Result<Version, AdminError> {
        let action = Action::Rotate;
        let mut record = self.record(action, id, by);
        let entry = match self.catalog.entry(id) {
            Ok(entry) => entry,
            Err(e) => return self.fail(record, AdminError::from_catalog(action, id, e)),
        };
        describe(&mut record, &entry);
        record.expires_at = options.new_expiry();
        if let Err(e) = self.register(id, value, entry.allow_unmasked) {
            return self.fail(record, e);
        }
        // Publishing is invisible while the handle is pinned to a version;
        // a handle that follows the provider's latest sees it at once.
        let visible_on_publish = entry.current == VersionPin::Latest;
        if visible_on_publish {
            self.write_ahead(&record)?;
        }
        let provider = entry.handle.provider();
        let version = match self.catalog.publish(provider, &entry.locator, value) {
            Ok(version) => version,
            Err(e) => return self.fail(record, AdminError::from_catalog(action, id, e)),
        };
        record.version = Some(version);
        if !visible_on_publish && let Err(e) = self.write_ahead(&record) {
            self.catalog.unpublish(provider, &entry.locator, version);
            return Err(e);
        }
        let moved = match self.catalog.point(id, version, options, Timestamp::now()) {
            Ok(moved) => moved,
            Err(e) => {
                if !visible_on_publish {
                    self.catalog.unpublish(provider, &entry.locator, version);
                }
                return self.fail(record, AdminError::from_catalog(action, id, e));
            }
        };
        if options.grace() == Some(Duration::ZERO)
            && let Some(VersionPin::Pinned(_)) = moved
        {
            self.retire_handle(id, Timestamp::now(), by)?;
        }
        Ok(version)
    }

    /// Revokes `id`: every later resolve fails with `Revoked`, in every
    /// process sharing the catalog's store, including resolves in flight
    /// that have not handed their value over yet. `by.reason()` is stored
    /// as the revocation reason. Values stay registered with the redactor:
    /// a leaked key is exactly what must stay masked.
    ///
    /// # Errors
    /// [`AdminError`]: unknown handle, an audit or catalog failure.
    pub fn revoke(&self, id: &HandleId, by: &AdminRequest) -> Result<(), AdminError> {
        self.change(
            Action::Revoke,
            id,
            by,
            |_| Ok(()),
            |catalog| catalog.revoke(id, by.reason().as_str()),
        )
    }

    /// Makes a revoked handle active again. The only way back.
    ///
    /// # Errors
    /// [`AdminError`]: unknown handle, an audit or catalog failure.
    pub fn restore(&self, id: &HandleId, by: &AdminRequest) -> Result<(), AdminError> {
        self.change(
            Action::Restore,
            id,
            by,
            |_| Ok(()),
            |catalog| catalog.restore(id),
        )
    }

    /// Destroys `version` of `id` in its provider (or deletes it where the
    /// provider cannot destroy), and drops it from the handle's retiring
    /// versions. Its value stays registered with this process's redactor.
    ///
    /// # Errors
    /// [`AdminError::Invalid`] for the version the handle resolves to
    /// (rotate first); unknown handle, a provider, audit or catalog
    /// failure.
    pub fn destroy(
        &self,
        id: &HandleId,
        version: Version,
        by: &AdminRequest,
    ) -> Result<(), AdminError> {
        let check = |entry: &CatalogEntry| {
            if entry.current == VersionPin::Pinned(version) {
                return Err(format!(
                    "{version} is the version it resolves to; rotate it to a new value first, \
                     or revoke it"
                ));
            }
            Ok(())
        };
        self.change_with(
            Action::Destroy,
            id,
            by,
            Some(version),
            check,
            |catalog, entry| catalog.remove_version(entry, version).map(drop),
        )
    }

    /// Sets (`Some`) or clears (`None`) the expiry of `id`. After it the
    /// handle no longer resolves, in every process sharing the catalog.
    ///
    /// # Errors
    /// [`AdminError::Invalid`] when clearing the expiry of a kind that needs
    /// one (a session cookie); unknown handle, an audit or catalog failure.
    pub fn set_expiry(
        &self,
        id: &HandleId,
        at: Option<Timestamp>,
        by: &AdminRequest,
    ) -> Result<(), AdminError> {
        let check = |entry: &CatalogEntry| {
            if at.is_none() && entry.handle.kind().requires_expiry() {
                return Err(format!(
                    "a {} must carry an expiry; set a new one instead of clearing it",
                    entry.handle.kind()
                ));
            }
            Ok(())
        };
        self.change_recorded(
            Action::SetExpiry,
            id,
            by,
            |record| record.expires_at = at,
            check,
            |catalog, _| catalog.set_expiry(id, at),
        )
    }

    /// Sets (`Some`) or removes (`None`) the label `key` of `id`. Labels are
    /// safe to show (never a secret) and may decide which policy rules
    /// apply, so each change is recorded.
    ///
    /// # Errors
    /// [`AdminError`]: unknown handle, an audit or catalog failure.
    pub fn set_label(
        &self,
        id: &HandleId,
        key: &str,
        value: Option<&str>,
        by: &AdminRequest,
    ) -> Result<(), AdminError> {
        let label = LabelChange {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        };
        self.change_recorded(
            Action::SetLabel,
            id,
            by,
            |record| record.label = Some(label),
            |_| Ok(()),
            |catalog, _| catalog.set_label(id, key, value),
        )
    }

    /// Removes every old version whose grace period has ended, each with an
    /// [`Action::Retire`] record written first, and returns how many the
    /// providers still held. Run it periodically.
    ///
    /// # Errors
    /// [`AdminError`]: a provider, audit or catalog failure. What was
    /// removed before it stays removed.
    pub fn retire_due(&self, by: &AdminRequest) -> Result<usize, AdminError> {
        self.retire_due_at(Timestamp::now(), by)
    }

    /// The entry for `id`, whatever its status: metadata only, no value.
    ///
    /// # Errors
    /// [`AdminError::UnknownHandle`] or a catalog failure.
    pub fn entry(&self, id: &HandleId) -> Result<CatalogEntry, AdminError> {
        self.catalog
            .entry(id)
            .map_err(|e| AdminError::from_catalog(Action::Resolve, id, e))
    }

    /// Every entry, whatever its status, ordered by handle id: metadata
    /// only.
    ///
    /// # Errors
    /// [`AdminError::Catalog`] when the store cannot be read.
    pub fn list(&self) -> Result<Vec<CatalogEntry>, AdminError> {
        self.catalog
            .list()
            .map_err(|source| AdminError::Catalog { source })
    }

    /// Pre-loads the redactor with every value still in use, as
    /// [`Resolver::preload_redactor`](crate::Resolver::preload_redactor)
    /// does; the record names `by`.
    ///
    /// # Errors
    /// [`PreloadError`], as for the resolver.
    pub fn preload_redactor(&self, by: &AdminRequest) -> Result<PreloadReport, PreloadError> {
        let redactor = self.redactor.as_ref().ok_or(PreloadError::NoRedactor)?;
        crate::resolver::preload(
            &self.catalog,
            redactor,
            &self.audit,
            by.actor(),
            by.reason(),
        )
    }
}

impl fmt::Debug for SecretAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretAdmin")
            .field("catalog", &self.catalog)
            .field("audit", &self.audit)
            .field("redactor", &self.redactor)
            .finish()
    }
}

#[cfg(test)]
mod tests;
