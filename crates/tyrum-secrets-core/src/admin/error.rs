//! Why an administrative change was not made.

use crate::audit::{Action, AuditError, ErrorKind};
use crate::redaction::RedactionError;
use crate::{CatalogError, HandleId, ProviderError, ProviderId, RandomnessError};

/// An administrative change failed. Never carries a secret value.
///
/// Except where a variant says otherwise, nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No handle with this id exists.
    #[error("unknown secret handle {id}; SecretAdmin::list shows the handles there are")]
    UnknownHandle {
        /// The id asked for.
        id: HandleId,
    },
    /// The secret names a provider the catalog was not given.
    #[error(
        "no provider named {provider} is configured in this catalog; add it with \
         Catalog::with_provider or pick a configured one"
    )]
    UnknownProvider {
        /// The provider id.
        provider: ProviderId,
    },
    /// The change is not allowed as asked (destroying the version a handle
    /// resolves to, clearing a session cookie's expiry).
    #[error("cannot {action} secret handle {id}: {message}")]
    Invalid {
        /// What was asked.
        action: Action,
        /// The handle.
        id: HandleId,
        /// What is wrong and what to do instead.
        message: String,
    },
    /// The redactor refused the value, so it was not stored.
    #[error(
        "the new value of secret handle {id} was not stored: {source}. A value too short to \
         mask can be stored only by creating its secret with NewSecret::allow_unmasked, and \
         it is then not masked"
    )]
    Redaction {
        /// The handle.
        id: HandleId,
        /// The redactor's refusal.
        #[source]
        source: RedactionError,
    },
    /// The provider failed.
    #[error("{action} of secret handle {id} failed in its provider: {source}")]
    Provider {
        /// What was asked.
        action: Action,
        /// The handle.
        id: HandleId,
        /// The provider's error.
        #[source]
        source: ProviderError,
    },
    /// The catalog failed (store error, lost compare-and-set races, lock).
    #[error("the catalog failed: {source}")]
    Catalog {
        /// The catalog's error.
        #[source]
        source: CatalogError,
    },
    /// The audit record of the change could not be written, so the change
    /// was not made.
    #[error(
        "{action} of secret handle {id} was not made because its audit record could not be \
         written: {source}"
    )]
    Audit {
        /// What was asked.
        action: Action,
        /// The handle.
        id: HandleId,
        /// The sink's error.
        #[source]
        source: AuditError,
    },
    /// No randomness for a new handle id.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

impl AdminError {
    /// The class of failure, as audit records name it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AdminError::UnknownHandle { .. } => ErrorKind::UnknownHandle,
            AdminError::Provider { .. } => ErrorKind::Provider,
            AdminError::Redaction { .. } => ErrorKind::Redaction,
            AdminError::Audit { .. } => ErrorKind::Audit,
            AdminError::UnknownProvider { .. }
            | AdminError::Invalid { .. }
            | AdminError::Catalog { .. }
            | AdminError::Randomness(_) => ErrorKind::Catalog,
        }
    }

    /// Classifies a catalog error met while doing `action` to `id`.
    pub(super) fn from_catalog(action: Action, id: &HandleId, error: CatalogError) -> Self {
        match error {
            CatalogError::UnknownHandle { id } => AdminError::UnknownHandle { id },
            CatalogError::UnknownProvider { provider } => AdminError::UnknownProvider { provider },
            CatalogError::Provider(source) => AdminError::Provider {
                action,
                id: id.clone(),
                source,
            },
            CatalogError::Invalid { message } => AdminError::Invalid {
                action,
                id: id.clone(),
                message,
            },
            CatalogError::Randomness(e) => AdminError::Randomness(e),
            source => AdminError::Catalog { source },
        }
    }
}
