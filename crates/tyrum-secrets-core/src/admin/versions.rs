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
