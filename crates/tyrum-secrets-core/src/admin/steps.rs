//! The steps every audited change shares: the record, written before the
//! change, and the failure record after it.

use super::{AdminError, AdminRequest, SecretAdmin};
use crate::audit::{Action, AuditError, AuditRecord, Outcome};
use crate::redaction::RedactionError;
use crate::resolver::next_request_id;
use crate::{Catalog, CatalogEntry, CatalogError, HandleId, SecretBytes, Timestamp, Version};

impl SecretAdmin {
    /// [`retire_due`](Self::retire_due) as of `now`.
    pub(crate) fn retire_due_at(
        &self,
        now: Timestamp,
        by: &AdminRequest,
    ) -> Result<usize, AdminError> {
        let due = self
            .catalog
            .due(now)
            .map_err(|source| AdminError::Catalog { source })?;
        let mut removed = 0;
        for (entry, versions) in due {
            removed += self.retire(&entry, &versions, by)?;
        }
        Ok(removed)
    }

    /// Retires the versions of `id` due at `now` (after a zero-grace
    /// rotation).
    pub(super) fn retire_handle(
        &self,
        id: &HandleId,
        now: Timestamp,
        by: &AdminRequest,
    ) -> Result<usize, AdminError> {
        let entry = self
            .catalog
            .entry(id)
            .map_err(|e| AdminError::from_catalog(Action::Retire, id, e))?;
        let due = crate::catalog::due_versions(&entry, now);
        self.retire(&entry, &due, by)
    }

    /// Removes `versions` of `entry`, one record before each.
    pub(super) fn retire(
        &self,
        entry: &CatalogEntry,
        versions: &[Version],
        by: &AdminRequest,
    ) -> Result<usize, AdminError> {
        let mut removed = 0;
        for &version in versions {
            let mut record = self.record(Action::Retire, entry.id(), by);
            describe(&mut record, entry);
            record.version = Some(version);
            self.write_ahead(&record)?;
            match self.catalog.remove_version(entry, version) {
                Ok(held) => removed += usize::from(held),
                Err(e) => {
                    let error = AdminError::from_catalog(Action::Retire, entry.id(), e);
                    return self.fail(record, error);
                }
            }
        }
        Ok(removed)
    }

    /// An entry-level change with no extra record fields.
    pub(super) fn change(
        &self,
        action: Action,
        id: &HandleId,
        by: &AdminRequest,
        check: impl FnOnce(&CatalogEntry) -> Result<(), String>,
        apply: impl FnOnce(&Catalog) -> Result<(), CatalogError>,
    ) -> Result<(), AdminError> {
        self.change_recorded(action, id, by, |_| {}, check, |catalog, _| apply(catalog))
    }

    /// An entry-level change naming `version`.
    pub(super) fn change_with(
        &self,
        action: Action,
        id: &HandleId,
        by: &AdminRequest,
        version: Option<Version>,
        check: impl FnOnce(&CatalogEntry) -> Result<(), String>,
        apply: impl FnOnce(&Catalog, &CatalogEntry) -> Result<(), CatalogError>,
    ) -> Result<(), AdminError> {
        self.change_recorded(action, id, by, |r| r.version = version, check, apply)
    }

    /// The shape every entry-level change shares: look the entry up, check
    /// the change is allowed, write the record, apply the change, and
    /// record a failure if it then fails.
    pub(super) fn change_recorded(
        &self,
        action: Action,
        id: &HandleId,
        by: &AdminRequest,
        fill: impl FnOnce(&mut AuditRecord),
        check: impl FnOnce(&CatalogEntry) -> Result<(), String>,
        apply: impl FnOnce(&Catalog, &CatalogEntry) -> Result<(), CatalogError>,
    ) -> Result<(), AdminError> {
        let mut record = self.record(action, id, by);
        fill(&mut record);
        let entry = match self.catalog.entry(id) {
            Ok(entry) => entry,
            Err(e) => return self.fail(record, AdminError::from_catalog(action, id, e)),
        };
        describe(&mut record, &entry);
        if let Err(message) = check(&entry) {
            let error = AdminError::Invalid {
                action,
                id: id.clone(),
                message,
            };
            return self.fail(record, error);
        }
        self.write_ahead(&record)?;
        match apply(&self.catalog, &entry) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(record, AdminError::from_catalog(action, id, e)),
        }
    }

    /// Registers a new value of `id` with the redactor. A value too short
    /// to mask is refused unless the secret allows it unmasked.
    pub(super) fn register(
        &self,
        id: &HandleId,
        value: &SecretBytes,
        allow_unmasked: bool,
    ) -> Result<(), AdminError> {
        let Some(redactor) = &self.redactor else {
            return Ok(());
        };
        match redactor.register(id, value) {
            Ok(()) => Ok(()),
            Err(RedactionError::ValueTooShort { .. }) if allow_unmasked => Ok(()),
            Err(source) => Err(AdminError::Redaction {
                id: id.clone(),
                source,
            }),
        }
    }

    /// A record of `action` on `id` by `by`, not yet anywhere.
    pub(super) fn record(&self, action: Action, id: &HandleId, by: &AdminRequest) -> AuditRecord {
        let mut record = AuditRecord::new(
            Timestamp::now(),
            next_request_id(),
            id.clone(),
            by.actor().clone(),
            by.reason().as_str().to_owned(),
        );
        record.action = action;
        record
    }

    /// Writes the record of a change about to be made, durably. On error
    /// the change must not be made.
    pub(super) fn write_ahead(&self, record: &AuditRecord) -> Result<(), AdminError> {
        let mut record = record.clone();
        record.outcome = Outcome::Applied;
        let (action, id) = (record.action, record.handle_id.clone());
        self.audit
            .record(record)
            .map_err(|source: AuditError| AdminError::Audit { action, id, source })
    }

    /// Records that the attempt failed and returns its error. If even that
    /// record cannot be written the error is still returned: the attempt
    /// changed nothing, and any `applied` record before it over-reports.
    pub(super) fn fail<T>(
        &self,
        mut record: AuditRecord,
        error: AdminError,
    ) -> Result<T, AdminError> {
        record.outcome = Outcome::Failed;
        record.error_kind = Some(error.kind());
        let _ = self.audit.record(record);
        Err(error)
    }
}

/// Copies what is safe to show about `entry` into `record`.
pub(super) fn describe(record: &mut AuditRecord, entry: &CatalogEntry) {
    record.provider = Some(entry.handle.provider().clone());
    record.scope = Some(entry.handle.scope().clone());
    record.kind = Some(entry.handle.kind());
    record.allow_unmasked = entry.allow_unmasked;
}
