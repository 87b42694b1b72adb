//! What the catalog records about one handle. Never a value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{HandleId, Locator, SecretHandle, Timestamp, Version};

/// The catalog's record of one handle: where its value lives and whether
/// it may be resolved. Holds no secret, so it may be stored anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CatalogEntry {
    /// The handle: id, provider, scope, kind.
    pub handle: SecretHandle,
    /// Where the value lives inside the provider.
    pub locator: Locator,
    /// Which version a resolve reads.
    pub current: VersionPin,
    /// Active or revoked.
    pub status: EntryStatus,
    /// After this instant the handle no longer resolves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Free-form labels safe to show (owner, purpose, account).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// When the handle was created.
    pub created_at: Timestamp,
    /// When the handle last moved to a new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<Timestamp>,
    /// When a resolver last handed the value out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resolved_at: Option<Timestamp>,
    /// Old versions waiting for their grace period to end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<Retirement>,
    /// **This value is not masked**: an operator allowed a value shorter
    /// than the redactor's minimum, which the resolver then hands out
    /// without registering it. Set only at create time
    /// ([`NewSecret::allow_unmasked`](crate::NewSecret::allow_unmasked)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unmasked: bool,
    /// Bumped by the store on every successful write; the compare-and-set
    /// token.
    #[serde(default)]
    pub revision: u64,
}

impl CatalogEntry {
    /// The handle id.
    pub fn id(&self) -> &HandleId {
        self.handle.id()
    }

    /// Whether the entry is revoked.
    pub fn is_revoked(&self) -> bool {
        matches!(self.status, EntryStatus::Revoked { .. })
    }

    /// Whether the entry has expired at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Versions whose values may still be in use: the current one (what a
    /// resolve returns) and the previous ones still held in the provider
    /// during their grace period (handed out before a rotation, and still
    /// in the hands of whoever resolved them until they are retired).
    ///
    /// A resolve only ever returns the current version; the older ones are
    /// listed so that the redactor keeps masking them:
    /// [`Resolver::preload_redactor`](crate::Resolver::preload_redactor)
    /// registers every one of them. An entry that follows the provider's
    /// latest version ([`VersionPin::Latest`]) has no fixed current
    /// version, so only its retiring versions are listed.
    pub fn resolvable_versions(&self) -> Vec<Version> {
        let mut versions: Vec<Version> = self.retiring.iter().map(|r| r.version).collect();
        if let VersionPin::Pinned(v) = self.current {
            versions.push(v);
        }
        versions.sort_unstable();
        versions.dedup();
        versions
    }
}

/// Which provider version a handle resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionPin {
    /// A fixed version, moved only by rotation through the catalog.
    Pinned(Version),
    /// Whatever the provider holds now: for secrets rotated outside the
    /// catalog (env vars, mounted Kubernetes Secrets).
    Latest,
}

/// Whether a handle may resolve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum EntryStatus {
    /// Resolves (unless expired).
    Active,
    /// Never resolves until explicitly restored.
    Revoked {
        /// When it was revoked.
        at: Timestamp,
        /// Why, as the operator said it. Must not hold a secret.
        reason: String,
    },
}

/// An old version scheduled for removal from the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// The old version.
    pub version: Version,
    /// Not before this instant.
    pub after: Timestamp,
}
