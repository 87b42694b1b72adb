//! The versions a provider keeps of a handle's value: metadata only.

use super::{Catalog, CatalogError};
use crate::{HandleId, VersionInfo};

impl Catalog {
    /// The versions the provider keeps of `id`'s value, oldest first, and
    /// whether each can still be read. Metadata only: no value is read.
    ///
    /// # Errors
    /// [`CatalogError::UnknownHandle`], an unknown provider, or the
    /// provider's error (a provider that keeps no history answers
    /// `Unsupported`).
    pub fn versions(&self, id: &HandleId) -> Result<Vec<VersionInfo>, CatalogError> {
        let entry = self.entry(id)?;
        let provider = self.provider_or_err(entry.handle.provider())?;
        let mut versions = provider.versions(&entry.locator)?;
        versions.sort_by_key(|v| v.version);
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        Catalog, KindSpec, MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId,
        RotateOptions, Scope, SecretBytes, Version,
    };

    #[test]
    fn versions_lists_each_rotation_oldest_first() {
        let memory = ProviderId::new("memory").unwrap();
        let catalog = Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new());
        let handle = catalog
            .create(
                NewSecret::new(memory, Scope::new("ci").unwrap(), KindSpec::api_key()),
                &SecretBytes::from(b"sk-version-one-value".to_vec()),
            )
            .unwrap();
        catalog
            .rotate(
                handle.id(),
                &SecretBytes::from(b"sk-version-two-value".to_vec()),
                RotateOptions::default(),
            )
            .unwrap();
        let versions: Vec<Version> = catalog
            .versions(handle.id())
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions.len(), 2);
        assert!(versions[0] < versions[1]);
    }
}
