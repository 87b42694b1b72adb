//! What an operator asks for when creating or rotating a secret.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{KindSpec, Locator, ProviderId, Scope, Timestamp};

/// What to create: provider, scope, kind and where the value goes.
///
/// Passed to [`SecretAdmin::create`](crate::SecretAdmin::create) or
/// [`SecretAdmin::import`](crate::SecretAdmin::import).
#[derive(Clone, Debug)]
pub struct NewSecret {
    pub(super) provider: ProviderId,
    pub(super) scope: Scope,
    pub(super) kind: KindSpec,
    pub(super) locator: Option<Locator>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) allow_unmasked: bool,
}

impl NewSecret {
    /// A secret in `provider` under `scope`. The locator defaults to
    /// `tyrum/<scope>/<handle id>`.
    pub fn new(provider: ProviderId, scope: Scope, kind: KindSpec) -> Self {
        Self {
            provider,
            scope,
            kind,
            locator: None,
            labels: BTreeMap::new(),
            allow_unmasked: false,
        }
    }

    /// Stores the value at this locator instead of the default.
    pub fn at(mut self, locator: Locator) -> Self {
        self.locator = Some(locator);
        self
    }

    /// Adds a label (safe to show; never a secret).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// **This value is not masked.** Lets a value shorter than the
    /// redactor's minimum (a 6-digit PIN) be stored and resolved.
    ///
    /// By default such a value is refused, at create and at resolve,
    /// because masking a few bytes would mask ordinary text wherever they
    /// occur. With this opt-in the value is stored, the resolver hands it
    /// out without registering it with the redactor, and it can therefore
    /// appear in clear in any log or output it reaches. A value of this
    /// secret that is long enough is still registered and masked.
    ///
    /// The opt-in is kept on the catalog entry
    /// ([`CatalogEntry::allow_unmasked`](crate::CatalogEntry::allow_unmasked))
    /// and the create record in the audit log says so.
    pub fn allow_unmasked(mut self) -> Self {
        self.allow_unmasked = true;
        self
    }

    /// The provider the value goes to.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The kind and its expiry.
    pub fn kind(&self) -> KindSpec {
        self.kind
    }

    /// Whether the value may be handed out unmasked (see
    /// [`allow_unmasked`](Self::allow_unmasked)).
    pub fn allows_unmasked(&self) -> bool {
        self.allow_unmasked
    }
}

/// Options for [`SecretAdmin::rotate`](crate::SecretAdmin::rotate).
#[derive(Clone, Copy, Debug, Default)]
pub struct RotateOptions {
    pub(super) retire_previous_after: Option<Duration>,
    pub(super) expires_at: Option<Timestamp>,
}

impl RotateOptions {
    /// Keep the previous version readable for `grace`, then remove it from
    /// the provider on the next
    /// [`SecretAdmin::retire_due`](crate::SecretAdmin::retire_due).
    /// `Duration::ZERO` removes it as part of the rotation.
    pub fn retire_previous_after(mut self, grace: Duration) -> Self {
        self.retire_previous_after = Some(grace);
        self
    }

    /// Give the handle a new expiry (session cookies need one per value).
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The grace period of the previous version, if it is to be retired.
    pub fn grace(&self) -> Option<Duration> {
        self.retire_previous_after
    }

    /// The new expiry, if any.
    pub fn new_expiry(&self) -> Option<Timestamp> {
        self.expires_at
    }
}
