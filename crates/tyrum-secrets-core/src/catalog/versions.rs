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
