//! The versions a provider keeps of a handle's value, for an operator.

use super::{AdminError, SecretAdmin};
use crate::{Action, HandleId, VersionInfo};

impl SecretAdmin {
    /// The versions the provider keeps of `id`'s value, oldest first, and
    /// whether each can still be read. Metadata only: no value is read and
    /// nothing is recorded.
    ///
    /// # Errors
    /// [`AdminError::UnknownHandle`], an unknown provider, or the
    /// provider's error (one that keeps no history answers `Unsupported`).
    pub fn versions(&self, id: &HandleId) -> Result<Vec<VersionInfo>, AdminError> {
        self.catalog
            .versions(id)
            .map_err(|e| AdminError::from_catalog(Action::Resolve, id, e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{
        AdminRequest, Catalog, KindSpec, MemoryAuditSink, MemoryCatalogStore, MemoryProvider,
        NewSecret, ProviderId, Purpose, Requester, RotateOptions, Scope, SecretAdmin, SecretBytes,
        Version,
    };

    #[test]
    fn versions_lists_each_rotation_oldest_first_and_records_nothing() {
        let memory = ProviderId::new("memory").unwrap();
        let catalog = Arc::new(
            Catalog::new(MemoryCatalogStore::new())
                .with_provider(memory.clone(), MemoryProvider::new()),
        );
        let audit = Arc::new(MemoryAuditSink::new());
        let admin = SecretAdmin::builder(catalog, audit.clone(), &crate::Redactor::new())
            .build()
            .unwrap();
        let by = AdminRequest::new(
            Requester::new("operator").unwrap(),
            Purpose::new("test").unwrap(),
        );
        let handle = admin
            .create(
                NewSecret::new(memory, Scope::new("ci").unwrap(), KindSpec::api_key()),
                &SecretBytes::from(b"sk-version-one-value".to_vec()),
                &by,
            )
            .unwrap();
        admin
            .rotate(
                handle.id(),
                &SecretBytes::from(b"sk-version-two-value".to_vec()),
                RotateOptions::default(),
                &by,
            )
            .unwrap();
        let records = audit.len();
        let versions: Vec<Version> = admin
            .versions(handle.id())
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions.len(), 2);
        assert!(versions[0] < versions[1]);
        assert_eq!(audit.len(), records);
    }
}
