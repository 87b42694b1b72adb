//! The resolver: the only path from a handle to a value.
//!
//! For each attempt, in this order:
//!
//! 1. catalog lookup — unknown, revoked or expired handles fail with a typed
//!    error;
//! 2. policy decision, and for `require_approval` a grant bound to this
//!    handle, agent and tool call, unexpired, accepted (and for one-shot
//!    grants consumed) by the [`ApprovalVerifier`];
//! 3. provider read (only after the policy allowed it);
//! 4. registration of the value with the resolver's [`Redactor`], so any
//!    output containing it is masked from now on (a value too short to mask
//!    fails closed unless its secret was created with
//!    [`NewSecret::allow_unmasked`](crate::NewSecret::allow_unmasked));
//! 5. the audit record, durable before anything is handed out: a sink error
//!    or a sink that does not answer within the audit timeout fails the
//!    resolve and the value is dropped;
//! 6. a second catalog check, as of now: a revoke or an expiry that landed
//!    while the read or the audit write was in flight stops the hand-over.
//!    The attempt then fails with [`ResolveError::Revoked`] or
//!    [`ResolveError::Expired`] and a second record (same `request_id`,
//!    outcome `failed`) says why;
//! 7. hand-over inside the executor ([`ResolvedSecret`], or the injection
//!    helpers in [`inject`](crate::inject)).
//!
//! Every attempt — allowed, denied or failed — writes one audit record, and
//! an attempt stopped at step 6 writes a second. Denied and failed attempts
//! write theirs before returning the error; a resolve whose audit record
//! cannot be written fails with [`ResolveError::Audit`] whatever else
//! happened.
//!
//! The record is written after the provider read, not before it, so that
//! one record carries the true outcome (a provider failure is recorded as
//! such, not as a grant), the version actually read, and the optional value
//! fingerprint. The property that matters holds either way: no value leaves
//! the resolver without a durable record, and a request the policy refuses
//! never reaches the provider.
//!
//! # Redaction is on by default
//!
//! A resolver owns a [`Redactor`] unless its builder is given one to share
//! ([`ResolverBuilder::redactor`]) or told
//! [`without_redaction`](ResolverBuilder::without_redaction).
//! [`Resolver::redactor`] returns that same instance (clones share one
//! registry) for log writers and persistence. After a restart,
//! [`Resolver::preload_redactor`] registers every value still in use, so
//! masking does not depend on what this process happened to resolve.
//!
//! # Resolving changes nothing
//!
//! A resolver hands out nothing that can change the catalog: creating,
//! rotating, revoking and restoring go through
//! [`SecretAdmin`](crate::SecretAdmin), which records each change.
//!
//! ```compile_fail
//! # use tyrum_secrets_core::{HandleId, Resolver};
//! fn revoke_unaudited(resolver: &Resolver, id: &HandleId) {
//!     let _ = resolver.catalog().revoke(id, "no record of this");
//! }
//! ```

mod builder;
mod error;
mod preload;
mod request;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

pub use builder::{DEFAULT_AUDIT_TIMEOUT, ResolverBuilder};
pub use error::ResolveError;
pub use preload::{PreloadError, PreloadReport, SkipReason, SkippedVersion};
pub use request::ResolveRequest;

pub(crate) use preload::preload;

use crate::audit::gate::AuditGate;
use crate::audit::{AuditRecord, AuditSink, FingerprintKey, Outcome};
use crate::mutation::{self, Mutation};
use crate::policy::{ApprovalRejection, ApprovalVerifier, Effect, Policy, PolicyInput};
use crate::redaction::{RedactionError, Redactor};
use crate::request::{Purpose, Requester};
use crate::{Catalog, ExposeSecret, HandleId, SecretBytes, SecretHandle, Timestamp, Version};

/// Turns handles into values, through policy, approvals, audit and the
/// redactor. See the [module docs](self) for the order of steps.
///
/// ```
/// use std::sync::Arc;
/// use tyrum_secrets_core::{AdminRequest, Catalog, ExposeSecret, KindSpec, MemoryAuditSink,
///     MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId, Purpose, Requester,
///     ResolveRequest, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind};
///
/// let memory = ProviderId::new("memory")?;
/// let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new())
///     .with_provider(memory.clone(), MemoryProvider::new()));
/// let policy = RulePolicy::from_json_str(
///     r#"{"rules": [{"id": "ci", "effect": "allow", "secret": "memory:ci"}]}"#)?;
/// let audit = Arc::new(MemoryAuditSink::new());
/// // The resolver owns its redactor; the admin shares it.
/// let resolver = Resolver::builder(catalog.clone(), policy, audit.clone()).build()?;
/// let redactor = resolver.redactor().cloned().ok_or("redaction is on by default")?;
/// let admin = SecretAdmin::builder(catalog, audit.clone()).redactor(redactor.clone()).build()?;
///
/// let by = AdminRequest::new(Requester::new("operator")?, Purpose::new("ci key")?);
/// let handle = admin.create(
///     NewSecret::new(memory, Scope::new("ci")?, KindSpec::new(SecretKind::ApiKey, None)?),
///     &SecretBytes::from(b"sk-live-example-value".to_vec()), &by)?;
/// // Masked from the moment it was created, before anyone resolved it.
/// assert_eq!(redactor.redact_str("key=sk-live-example-value").as_str(),
///     format!("key=[{}]", handle.id()));
///
/// let request = ResolveRequest::new(Requester::new("ci-bot")?, Purpose::new("run the tests")?);
/// let secret = resolver.resolve(handle.id(), &request)?;
/// assert_eq!(secret.value().expose_secret(), b"sk-live-example-value");
/// assert_eq!(audit.len(), 2); // the create and the resolve
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Resolver {
    catalog: Arc<Catalog>,
    policy: Arc<dyn Policy>,
    approvals: Arc<dyn ApprovalVerifier>,
    audit: AuditGate,
    redactor: Option<Redactor>,
    fingerprint: Option<FingerprintKey>,
    track_last_resolved: bool,
}

impl Resolver {
    /// Starts building a resolver over `catalog`, deciding with `policy` and
    /// recording to `sink`. Approvals default to
    /// [`RejectAllApprovals`](crate::RejectAllApprovals), redaction to a
    /// redactor of the resolver's own ([`Redactor::new`]), the audit timeout
    /// to [`DEFAULT_AUDIT_TIMEOUT`].
    pub fn builder(
        catalog: Arc<Catalog>,
        policy: impl Policy + 'static,
        sink: Arc<dyn AuditSink>,
    ) -> ResolverBuilder {
        ResolverBuilder::new(catalog, Arc::new(policy), sink)
    }

    /// The redactor every resolved value is registered with: the same
    /// instance on every call (clones share one registry), for log writers
    /// ([`Redactor::writer`], `Redactor::make_writer`) and persistence.
    /// `None` only for a resolver built
    /// [`without_redaction`](ResolverBuilder::without_redaction).
    pub fn redactor(&self) -> Option<&Redactor> {
        self.redactor.as_ref()
    }

    /// Registers with the redactor, in one bulk registration, every value
    /// still in use: each handle's current version and the previous
    /// versions in their grace period
    /// ([`CatalogEntry::resolvable_versions`](crate::CatalogEntry::resolvable_versions)),
    /// of every handle in the catalog — revoked and expired ones too, since
    /// a leaked key is exactly what must stay masked. Call it at start-up,
    /// before anything is logged, so output is masked from the first byte
    /// and not only after this process resolved a value.
    ///
    /// Values are read from their providers and handed to nobody. One audit
    /// record ([`Action::Preload`](crate::Action::Preload)) by `requester`
    /// for `purpose` names the handles and versions loaded, never a value.
    /// That record is written before the values are registered; if it
    /// cannot be written the redactor is loaded anyway (masking is never
    /// withheld because the log is down) and [`PreloadError::Audit`] says
    /// so.
    ///
    /// A version that cannot be read, or whose value is too short to mask,
    /// is skipped and listed in the report; the rest are loaded.
    ///
    /// # Errors
    /// [`PreloadError`]: no redactor, the catalog cannot be listed, the
    /// redactor cannot take the values, or the audit record failed.
    pub fn preload_redactor(
        &self,
        requester: &Requester,
        purpose: &Purpose,
    ) -> Result<PreloadReport, PreloadError> {
        let redactor = self.redactor.as_ref().ok_or(PreloadError::NoRedactor)?;
        preload(&self.catalog, redactor, &self.audit, requester, purpose)
    }

    /// Resolves `id` for `request`. One audit record is written whatever
    /// the outcome (two when a revoke or expiry landed mid-resolve).
    ///
    /// # Errors
    /// [`ResolveError`]: the handle is unknown, revoked or expired (also
    /// when that happened while the resolve was in flight); the policy
    /// denied; an approval was required and not satisfied; the provider or
    /// catalog failed; the redactor refused the value; or the audit record
    /// could not be written in time. No value is returned on any error.
    pub fn resolve(
        &self,
        id: &HandleId,
        request: &ResolveRequest,
    ) -> Result<ResolvedSecret, ResolveError> {
        let now = Timestamp::now();
        let mut record = AuditRecord::new(
            now,
            next_request_id(),
            id.clone(),
            request.requester().clone(),
            request.purpose().as_str().to_owned(),
        );
        record.destination = request.destination().map(|d| d.as_str().to_owned());
        record.node = request.node().map(str::to_owned);
        record.auth_profile = request.auth_profile().map(str::to_owned);

        // 1. Catalog.
        let entry = match self.catalog.lookup_at(id, now) {
            Ok(entry) => entry,
            Err(e) => return self.fail(record, ResolveError::from_lookup(id, e)),
        };
        record.provider = Some(entry.handle.provider().clone());
        record.scope = Some(entry.handle.scope().clone());
        record.kind = Some(entry.handle.kind());

        // 2. Policy and approvals.
        let decision = self.policy.decide(
            &PolicyInput::new(
                &entry.handle,
                request.requester(),
                request.purpose(),
                request.destination(),
            )
            .with_labels(&entry.labels),
        );
        record.decision = Some(decision.effect);
        record.decision_reason = Some(decision.reason);
        record.rule.clone_from(&decision.rule);
        match decision.effect {
            Effect::Allow => {}
            Effect::Deny => {
                let error = ResolveError::Denied {
                    id: id.clone(),
                    rule: decision.rule,
                    reason: decision.reason,
                };
                return self.fail(record, error);
            }
            Effect::RequireApproval => {
                let grant = request.approvals().iter().find(|g| &g.handle == id);
                record.approval_id = grant.map(|g| g.approval_id.clone());
                let checked = match grant {
                    None if request.approvals().is_empty() => Err(ApprovalRejection::Missing),
                    None => Err(ApprovalRejection::OtherHandle),
                    Some(grant) => grant
                        .check_binding(id, request.requester(), request.destination(), now)
                        .and_then(|()| self.approvals.verify_and_consume(grant, now)),
                };
                let checked = match checked {
                    Err(ApprovalRejection::AlreadyUsed)
                        if mutation::active(Mutation::GrantReuse) =>
                    {
                        Ok(())
                    }
                    other => other,
                };
                if let Err(rejection) = checked {
                    record.approval_rejection = Some(rejection);
                    let error = ResolveError::ApprovalRejected {
                        id: id.clone(),
                        rule: decision.rule,
                        rejection,
                    };
                    return self.fail(record, error);
                }
            }
        }

        // 3. Provider read.
        let secret = match self.catalog.read_entry(&entry) {
            Ok(secret) => secret,
            Err(e) => return self.fail(record, ResolveError::from_read(id, e)),
        };
        record.version = Some(secret.version);
        if let Some(key) = &self.fingerprint {
            record.fingerprint = Some(key.fingerprint(&secret.value));
        }

        // 4. Redactor.
        if let Some(redactor) = &self.redactor {
            match redactor.register(id, &secret.value) {
                Ok(()) => {}
                // The operator's documented opt-in: handed out unmasked.
                Err(RedactionError::ValueTooShort { .. }) if entry.allow_unmasked => {
                    record.allow_unmasked = true;
                }
                Err(source) => {
                    drop(secret);
                    let error = ResolveError::Redaction {
                        id: id.clone(),
                        source,
                    };
                    return self.fail(record, error);
                }
            }
        }

        // 5. Audit, fail closed. `secret` drops (and is wiped) on error.
        record.outcome = Outcome::Resolved;
        let recorded = if mutation::active(Mutation::UnauditedHandover) && mutation::every(5) {
            Ok(())
        } else {
            self.audit.record(record.clone())
        };
        if let Err(source) = recorded {
            return Err(ResolveError::Audit {
                id: id.clone(),
                source,
            });
        }

        // 6. Re-check: a revoke or expiry that landed while the read or the
        // audit write was in flight stops the hand-over.
        if !mutation::active(Mutation::SkipRecheck)
            && let Err(e) = self.catalog.lookup_at(id, Timestamp::now())
        {
            drop(secret);
            return self.fail(record, ResolveError::from_lookup(id, e));
        }

        // Informational only; the audit log is the record of access.
        if self.track_last_resolved {
            let _ = self.catalog.mark_resolved(id, now);
        }

        // 7. Hand-over.
        Ok(ResolvedSecret {
            handle: entry.handle,
            version: secret.version,
            value: secret.value,
        })
    }

    /// Writes the record of a failed attempt and returns its error, or the
    /// audit error if the record could not be written.
    fn fail<T>(&self, mut record: AuditRecord, error: ResolveError) -> Result<T, ResolveError> {
        record.outcome = match error {
            ResolveError::Denied { .. } | ResolveError::ApprovalRejected { .. } => Outcome::Denied,
            _ => Outcome::Failed,
        };
        record.error_kind = Some(error.kind());
        match self.audit.record(record) {
            Ok(()) => Err(error),
            Err(source) => Err(ResolveError::Audit {
                id: error.handle().clone(),
                source,
            }),
        }
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("catalog", &self.catalog)
            .field("policy", &self.policy)
            .field("approvals", &self.approvals)
            .field("audit", &self.audit)
            .field("redactor", &self.redactor)
            .field("fingerprint", &self.fingerprint.is_some())
            .finish()
    }
}

/// A value handed out by the resolver, with the handle and version it came
/// from. `Debug` never shows the value; it is wiped on drop.
pub struct ResolvedSecret {
    handle: SecretHandle,
    version: Version,
    value: SecretBytes,
}

impl ResolvedSecret {
    /// The handle resolved.
    pub fn handle(&self) -> &SecretHandle {
        &self.handle
    }

    /// The provider version read.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The value.
    pub fn value(&self) -> &SecretBytes {
        &self.value
    }

    /// The value, consuming the wrapper.
    pub fn into_value(self) -> SecretBytes {
        self.value
    }
}

impl ExposeSecret<[u8]> for ResolvedSecret {
    fn expose_secret(&self) -> &[u8] {
        self.value.expose_secret()
    }
}

impl fmt::Debug for ResolvedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedSecret")
            .field("handle", &self.handle)
            .field("version", &self.version)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// A unique, non-secret id for each audited attempt (resolve or change): a random per-process
/// prefix and a counter.
pub(crate) fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // Uniqueness, not secrecy, is what matters here.
            let seed = Timestamp::now().unix_millis() ^ u64::from(std::process::id()) << 32;
            bytes = seed.to_le_bytes();
        }
        crate::audit::hex(&bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n:x}")
}
