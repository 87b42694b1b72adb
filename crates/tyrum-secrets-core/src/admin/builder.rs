//! Building a [`SecretAdmin`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::SecretAdmin;
use crate::Catalog;
use crate::audit::gate::AuditGate;
use crate::audit::{AuditError, AuditSink};
use crate::redaction::Redactor;

/// Builds a [`SecretAdmin`]. Start with [`SecretAdmin::builder`].
pub struct SecretAdminBuilder {
    pub(super) catalog: Arc<Catalog>,
    pub(super) sink: Arc<dyn AuditSink>,
    pub(super) redactor: Option<Redactor>,
    pub(super) audit_timeout: Duration,
}

impl SecretAdminBuilder {
    /// Registers new values with `redactor`, a clone of one that is shared
    /// (the resolver's, from [`Resolver::redactor`](crate::Resolver::redactor)),
    /// instead of a redactor of the admin's own.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = Some(redactor);
        self
    }

    /// Registers new values with no redactor: no value is masked by the
    /// admin, and no value is refused for being too short to mask.
    pub fn without_redaction(mut self) -> Self {
        self.redactor = None;
        self
    }

    /// How long a change waits for a sink that may block before failing
    /// closed. Default 5 s.
    pub fn audit_timeout(mut self, timeout: Duration) -> Self {
        self.audit_timeout = timeout;
        self
    }

    /// Builds the admin.
    ///
    /// # Errors
    /// [`AuditError::WorkerUnavailable`] when the audit worker thread a
    /// blocking sink needs cannot be started.
    pub fn build(self) -> Result<SecretAdmin, AuditError> {
        Ok(SecretAdmin {
            catalog: self.catalog,
            audit: Arc::new(AuditGate::new(self.sink, self.audit_timeout, false)?),
            redactor: self.redactor,
        })
    }
}

impl fmt::Debug for SecretAdminBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretAdminBuilder")
            .field("sink", &self.sink)
            .field("redactor", &self.redactor)
            .field("audit_timeout", &self.audit_timeout)
            .finish_non_exhaustive()
    }
}
