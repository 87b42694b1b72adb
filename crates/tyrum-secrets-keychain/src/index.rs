//! The provider's own bookkeeping: which versions exist for a locator, and
//! which locators exist. Both are JSON blobs in the keychain and hold no
//! secret bytes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tyrum_secrets_core::{Locator, Version, VersionInfo, VersionState};

use crate::error::KeychainError;

/// Index format version written by this crate.
const FORMAT: u32 = 1;

/// The versions of one locator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LocatorIndex {
    format: u32,
    /// The number the next write gets. Never reused, even after every
    /// version was destroyed, so an old version number never names a new
    /// value.
    pub(crate) next: u64,
    /// Versions not yet destroyed, oldest first.
    pub(crate) versions: Vec<VersionRecord>,
}

/// One version in a [`LocatorIndex`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    /// The version number.
    pub(crate) v: u64,
    /// Whether it was deleted (its items are then already erased).
    pub(crate) deleted: bool,
    /// The value's length, checked on read.
    pub(crate) len: u64,
}

impl LocatorIndex {
    /// An index for a locator never written.
    pub(crate) fn empty() -> Self {
        Self {
            format: FORMAT,
            next: 1,
            versions: Vec::new(),
        }
    }

    pub(crate) fn parse(bytes: &[u8], locator: &Locator) -> Result<Self, KeychainError> {
        let index: Self = serde_json::from_slice(bytes).map_err(|e| KeychainError::Corrupt {
            message: format!("the version index of {locator} does not parse: {e}"),
        })?;
        let ordered = index.versions.windows(2).all(|w| w[0].v < w[1].v);
        let below_next = index.versions.iter().all(|r| r.v >= 1 && r.v < index.next);
        if index.format != FORMAT || !ordered || !below_next {
            return Err(KeychainError::Corrupt {
                message: format!(
                    "the version index of {locator} is inconsistent or of an unknown format"
                ),
            });
        }
        Ok(index)
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serializing plain integers and booleans cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The record of `version`, if it was not destroyed.
    pub(crate) fn record(&self, version: Version) -> Option<&VersionRecord> {
        self.versions.iter().find(|r| r.v == version.get())
    }

    /// The newest version that is not deleted.
    pub(crate) fn latest_live(&self) -> Option<&VersionRecord> {
        self.versions.iter().rev().find(|r| !r.deleted)
    }

    pub(crate) fn has_live(&self) -> bool {
        self.latest_live().is_some()
    }

    pub(crate) fn infos(&self) -> Vec<VersionInfo> {
        self.versions
            .iter()
            .filter_map(|r| {
                Some(VersionInfo {
                    version: Version::new(r.v)?,
                    state: if r.deleted {
                        VersionState::Deleted
                    } else {
                        VersionState::Live
                    },
                })
            })
            .collect()
    }
}

/// The locators that have a version index.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct RootIndex {
    format: u32,
    pub(crate) locators: BTreeSet<Locator>,
}

impl RootIndex {
    pub(crate) fn empty() -> Self {
        Self {
            format: FORMAT,
            locators: BTreeSet::new(),
        }
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, KeychainError> {
        let root: Self = serde_json::from_slice(bytes).map_err(|e| KeychainError::Corrupt {
            message: format!("the locator list does not parse: {e}"),
        })?;
        if root.format != FORMAT {
            return Err(KeychainError::Corrupt {
                message: format!("the locator list has unknown format {}", root.format),
            });
        }
        Ok(root)
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Locators are plain strings; serializing them cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}
