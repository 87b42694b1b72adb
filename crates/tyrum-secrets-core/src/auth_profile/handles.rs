//! The catalog operations auth profiles need, behind one small seam:
//! reading a handle's metadata (is it revoked or expired?) for selection,
//! and rotating a handle to a refreshed token.
//!
//! Backed by [`Catalog`] today. Rotation belongs behind the audited admin
//! capability once it exists, so that every token a refresh writes leaves
//! an audit record; only this file changes then.

use std::fmt;

use super::AuthProfile;
use super::select::HandleState;
use crate::{
    Catalog, CatalogEntry, CatalogError, EntryStatus, HandleId, RotateOptions, SecretBytes,
    Timestamp, Version,
};

/// What [`AuthProfiles`](super::AuthProfiles) asks of the catalog.
pub(crate) trait ProfileCatalog: Send + Sync + fmt::Debug {
    /// The metadata of handle `id`.
    fn entry(&self, id: &HandleId) -> Result<CatalogEntry, CatalogError>;

    /// Publishes `value` as a new version of `id`, points the handle at it
    /// and retires the previous version per `options`, on behalf of
    /// `profile`.
    fn rotate(
        &self,
        id: &HandleId,
        value: &SecretBytes,
        options: RotateOptions,
        profile: &AuthProfile,
    ) -> Result<Version, CatalogError>;
}

impl ProfileCatalog for Catalog {
    fn entry(&self, id: &HandleId) -> Result<CatalogEntry, CatalogError> {
        Catalog::entry(self, id)
    }

    fn rotate(
        &self,
        id: &HandleId,
        value: &SecretBytes,
        options: RotateOptions,
        _profile: &AuthProfile,
    ) -> Result<Version, CatalogError> {
        Catalog::rotate(self, id, value, options)
    }
}

/// The state of handle `id` at `now`, as selection needs it.
pub(crate) fn handle_state(
    catalog: &dyn ProfileCatalog,
    id: &HandleId,
    now: Timestamp,
) -> HandleState {
    match catalog.entry(id) {
        Ok(entry) => match entry.status {
            EntryStatus::Revoked { at, .. } => HandleState::Revoked(at),
            EntryStatus::Active => match entry.expires_at {
                Some(at) if at <= now => HandleState::Expired(at),
                _ => HandleState::Usable,
            },
        },
        Err(CatalogError::UnknownHandle { .. }) => HandleState::Unknown,
        Err(_) => HandleState::Unavailable,
    }
}
