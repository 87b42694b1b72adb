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
    /// Registers new values with no redactor, not even the one given to
    /// [`SecretAdmin::builder`]: a value created or rotated in is masked
    /// nowhere until something resolves or pre-loads it. For tools that
    /// never log values, and tests. A value shorter than
    /// [`DEFAULT_MIN_VALUE_LEN`](crate::redaction::DEFAULT_MIN_VALUE_LEN) bytes is still
    /// refused unless its secret allows it unmasked, as a redactor with the
    /// default minimum would refuse it at its first resolve.
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
