//! Why a resolve failed.

use crate::audit::{AuditError, ErrorKind};
use crate::policy::{ApprovalRejection, DecisionReason};
use crate::redaction::RedactionError;
use crate::{CatalogError, HandleId, ProviderError, Timestamp};

/// A resolve failed. No value was handed out. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No such handle. Dependent steps must fail, not pass the text on.
    #[error("unknown secret handle {id}")]
    UnknownHandle {
        /// The handle.
        id: HandleId,
    },
    /// The handle was revoked.
    #[error("secret handle {id} was revoked at {at}; an operator must restore it")]
    Revoked {
        /// The handle.
        id: HandleId,
        /// When.
        at: Timestamp,
    },
    /// The handle expired.
    #[error("secret handle {id} expired at {at}; rotate it with a new expiry")]
    Expired {
        /// The handle.
        id: HandleId,
        /// When.
        at: Timestamp,
    },
    /// The policy denied.
    #[error("policy denied secret handle {id}{}: {reason}", rule_suffix(rule))]
    Denied {
        /// The handle.
        id: HandleId,
        /// The deny rule, if a rule denied.
        rule: Option<String>,
        /// Why.
        reason: DecisionReason,
    },
    /// An approval was required and not satisfied.
    #[error(
        "secret handle {id} needs an approval{}: {rejection}",
        rule_suffix(rule)
    )]
    ApprovalRejected {
        /// The handle.
        id: HandleId,
        /// The rule that required approval, if a rule did.
        rule: Option<String>,
        /// Why the approval did not satisfy.
        rejection: ApprovalRejection,
    },
    /// The provider failed to read the value.
    #[error("reading secret handle {id} from its provider failed: {source}")]
    Provider {
        /// The handle.
        id: HandleId,
        /// The provider error.
        #[source]
        source: ProviderError,
    },
    /// The catalog failed (store error, provider not configured).
    #[error("the catalog failed while resolving {id}: {source}")]
    Catalog {
        /// The handle.
        id: HandleId,
        /// The catalog error.
        #[source]
        source: CatalogError,
    },
    /// The redactor refused the value; it was not handed out. A value
    /// shorter than the redactor's minimum resolves only if an operator
    /// created its secret with
    /// [`NewSecret::allow_unmasked`](crate::NewSecret::allow_unmasked).
    #[error(
        "secret handle {id} was not handed out because the redactor refused its value \
         (a value too short to mask resolves only if its secret was created with \
         NewSecret::allow_unmasked): {source}"
    )]
    Redaction {
        /// The handle.
        id: HandleId,
        /// The redactor's refusal.
        #[source]
        source: RedactionError,
    },
    /// The audit record could not be written in time; nothing was handed
    /// out.
    #[error("secret handle {id} was not handed out because auditing failed: {source}")]
    Audit {
        /// The handle.
        id: HandleId,
        /// The sink's error.
        #[source]
        source: AuditError,
    },
}

fn rule_suffix(rule: &Option<String>) -> String {
    rule.as_ref()
        .map(|r| format!(" (rule {r:?})"))
        .unwrap_or_default()
}

impl ResolveError {
    /// The handle the error is about.
    pub fn handle(&self) -> &HandleId {
        match self {
            ResolveError::UnknownHandle { id }
            | ResolveError::Revoked { id, .. }
            | ResolveError::Expired { id, .. }
            | ResolveError::Denied { id, .. }
            | ResolveError::ApprovalRejected { id, .. }
            | ResolveError::Provider { id, .. }
            | ResolveError::Catalog { id, .. }
            | ResolveError::Redaction { id, .. }
            | ResolveError::Audit { id, .. } => id,
        }
    }

    /// The class of failure, as audit records name it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ResolveError::UnknownHandle { .. } => ErrorKind::UnknownHandle,
            ResolveError::Revoked { .. } => ErrorKind::Revoked,
            ResolveError::Expired { .. } => ErrorKind::Expired,
            ResolveError::Denied { .. } => ErrorKind::Denied,
            ResolveError::ApprovalRejected { .. } => ErrorKind::ApprovalRejected,
            ResolveError::Provider { .. } => ErrorKind::Provider,
            ResolveError::Catalog { .. } => ErrorKind::Catalog,
            ResolveError::Redaction { .. } => ErrorKind::Redaction,
            ResolveError::Audit { .. } => ErrorKind::Audit,
        }
    }

    pub(super) fn from_lookup(id: &HandleId, error: CatalogError) -> Self {
        let id = id.clone();
        match error {
            CatalogError::UnknownHandle { .. } => ResolveError::UnknownHandle { id },
            CatalogError::Revoked { at, .. } => ResolveError::Revoked { id, at },
            CatalogError::Expired { at, .. } => ResolveError::Expired { id, at },
            source => ResolveError::Catalog { id, source },
        }
    }

    pub(super) fn from_read(id: &HandleId, error: CatalogError) -> Self {
        let id = id.clone();
        match error {
            CatalogError::Provider(source) => ResolveError::Provider { id, source },
            source => ResolveError::Catalog { id, source },
        }
    }
}
