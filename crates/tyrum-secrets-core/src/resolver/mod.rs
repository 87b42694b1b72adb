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
//! 4. registration of the value with the redactor ([`RedactionHook`]);
//! 5. the audit record, durable before anything is handed out: a sink error
//!    or a sink that does not answer within the audit timeout fails the
//!    resolve and the value is dropped;
//! 6. hand-over inside the executor ([`ResolvedSecret`], or the injection
//!    helpers in [`inject`](crate::inject)).
//!
//! Every attempt — allowed, denied or failed — writes exactly one audit
//! record. Denied and failed attempts write theirs before returning the
//! error; a resolve whose audit record cannot be written fails with
//! [`ResolveError::Audit`] whatever else happened.
//!
//! The record is written after the provider read, not before it, so that
//! one record carries the true outcome (a provider failure is recorded as
//! such, not as a grant), the version actually read, and the optional value
//! fingerprint. The property that matters holds either way: no value leaves
//! the resolver without a durable record, and a request the policy refuses
//! never reaches the provider.

mod dry_run;
mod hook;
mod request;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use hook::{NoRedaction, RedactionHook, RedactionHookError};
pub use request::ResolveRequest;

use crate::audit::gate::AuditGate;
use crate::audit::{AuditError, AuditRecord, AuditSink, ErrorKind, FingerprintKey, Outcome};
use crate::policy::{
    ApprovalRejection, ApprovalVerifier, DecisionReason, Effect, Policy, PolicyInput,
    RejectAllApprovals,
};
use crate::{
    Catalog, CatalogError, ExposeSecret, HandleId, ProviderError, SecretBytes, SecretHandle,
    Timestamp, Version,
};

/// How long the resolver waits for an audit sink by default.
pub const DEFAULT_AUDIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns handles into values, through policy, approvals, audit and the
/// redactor. See the [module docs](self) for the order of steps.
///
/// ```
/// use std::sync::Arc;
/// use tyrum_secrets_core::{Catalog, ExposeSecret, KindSpec, MemoryAuditSink, MemoryCatalogStore,
///     MemoryProvider, NewSecret, ProviderId, Purpose, Requester, ResolveRequest, Resolver,
///     RulePolicy, Scope, SecretBytes, SecretKind};
///
/// let memory = ProviderId::new("memory")?;
/// let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new())
///     .with_provider(memory.clone(), MemoryProvider::new()));
/// let handle = catalog.create(
///     NewSecret::new(memory, Scope::new("ci")?, KindSpec::new(SecretKind::ApiKey, None)?),
///     &SecretBytes::from(b"sk-live-example-value".to_vec()))?;
///
/// let policy = RulePolicy::from_json_str(
///     r#"{"rules": [{"id": "ci", "effect": "allow", "secret": "memory:ci"}]}"#)?;
/// let audit = Arc::new(MemoryAuditSink::new());
/// let resolver = Resolver::builder(catalog, policy, audit.clone()).build()?;
///
/// let request = ResolveRequest::new(Requester::new("ci-bot")?, Purpose::new("run the tests")?);
/// let secret = resolver.resolve(handle.id(), &request)?;
/// assert_eq!(secret.value().expose_secret(), b"sk-live-example-value");
/// assert_eq!(audit.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Resolver {
    catalog: Arc<Catalog>,
    policy: Arc<dyn Policy>,
    approvals: Arc<dyn ApprovalVerifier>,
    audit: AuditGate,
    redaction: Arc<dyn RedactionHook>,
    fingerprint: Option<FingerprintKey>,
    track_last_resolved: bool,
}

/// Builds a [`Resolver`].
pub struct ResolverBuilder {
    catalog: Arc<Catalog>,
    policy: Arc<dyn Policy>,
    sink: Arc<dyn AuditSink>,
    approvals: Arc<dyn ApprovalVerifier>,
    redaction: Arc<dyn RedactionHook>,
    fingerprint: Option<FingerprintKey>,
    audit_timeout: Duration,
    track_last_resolved: bool,
    force_audit_worker: bool,
}

impl Resolver {
    /// Starts building a resolver over `catalog`, deciding with `policy` and
    /// recording to `sink`. Approvals default to [`RejectAllApprovals`],
    /// redaction to [`NoRedaction`], the audit timeout to
    /// [`DEFAULT_AUDIT_TIMEOUT`].
    pub fn builder(
        catalog: Arc<Catalog>,
        policy: impl Policy + 'static,
        sink: Arc<dyn AuditSink>,
    ) -> ResolverBuilder {
        ResolverBuilder {
            catalog,
            policy: Arc::new(policy),
            sink,
            approvals: Arc::new(RejectAllApprovals),
            redaction: Arc::new(NoRedaction),
            fingerprint: None,
            audit_timeout: DEFAULT_AUDIT_TIMEOUT,
            track_last_resolved: true,
            force_audit_worker: false,
        }
    }

    /// The catalog.
    ///
    /// It gives no way to the values: reading a provider is crate-private,
    /// so code handed only a resolver cannot skip policy and audit.
    ///
    /// ```compile_fail
    /// # use tyrum_secrets_core::{ProviderId, Resolver};
    /// fn raw_read(resolver: &Resolver, id: &ProviderId) {
    ///     let _provider = resolver.catalog().provider(id);
    /// }
    /// ```
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Resolves `id` for `request`. One audit record is written whatever
    /// the outcome.
    ///
    /// # Errors
    /// [`ResolveError`]: the handle is unknown, revoked or expired; the
    /// policy denied; an approval was required and not satisfied; the
    /// provider or catalog failed; the redactor refused the value; or the
    /// audit record could not be written in time. No value is returned on
    /// any error.
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
        if let Err(source) = self.redaction.register(id, &secret.value) {
            drop(secret);
            return self.fail(
                record,
                ResolveError::Redaction {
                    id: id.clone(),
                    source,
                },
            );
        }

        // 5. Audit, fail closed. `secret` drops (and is wiped) on error.
        record.outcome = Outcome::Resolved;
        if let Err(source) = self.audit.record(record) {
            return Err(ResolveError::Audit {
                id: id.clone(),
                source,
            });
        }

        // Informational only; the audit log is the record of access.
        if self.track_last_resolved {
            let _ = self.catalog.mark_resolved(id, now);
        }

        // 6. Hand-over.
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
            .field("redaction", &self.redaction)
            .field("fingerprint", &self.fingerprint.is_some())
            .finish()
    }
}

impl ResolverBuilder {
    /// Uses `verifier` to accept approval grants.
    pub fn approvals(mut self, verifier: Arc<dyn ApprovalVerifier>) -> Self {
        self.approvals = verifier;
        self
    }

    /// Registers every resolved value with `hook` (the redactor).
    pub fn redaction(mut self, hook: Arc<dyn RedactionHook>) -> Self {
        self.redaction = hook;
        self
    }

    /// Adds a keyed fingerprint of each resolved value to its audit record.
    pub fn fingerprint_key(mut self, key: FingerprintKey) -> Self {
        self.fingerprint = Some(key);
        self
    }

    /// How long a resolve waits for a sink that may block before failing
    /// closed. Default 5 s.
    pub fn audit_timeout(mut self, timeout: Duration) -> Self {
        self.audit_timeout = timeout;
        self
    }

    /// Whether each resolve updates the catalog's `last_resolved_at`
    /// (default on). A catalog write per resolve is cheap in memory and
    /// costly in a file store; failures are ignored either way.
    pub fn track_last_resolved(mut self, track: bool) -> Self {
        self.track_last_resolved = track;
        self
    }

    /// Routes even non-blocking sinks through the timeout worker. Only for
    /// measuring the cost of the thread hop.
    #[doc(hidden)]
    pub fn force_audit_worker(mut self) -> Self {
        self.force_audit_worker = true;
        self
    }

    /// Builds the resolver.
    ///
    /// # Errors
    /// [`AuditError::WorkerUnavailable`] when the audit worker thread a
    /// blocking sink needs cannot be started.
    pub fn build(self) -> Result<Resolver, AuditError> {
        Ok(Resolver {
            catalog: self.catalog,
            policy: self.policy,
            approvals: self.approvals,
            audit: AuditGate::new(self.sink, self.audit_timeout, self.force_audit_worker)?,
            redaction: self.redaction,
            fingerprint: self.fingerprint,
            track_last_resolved: self.track_last_resolved,
        })
    }
}

impl fmt::Debug for ResolverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverBuilder")
            .field("policy", &self.policy)
            .field("sink", &self.sink)
            .field("audit_timeout", &self.audit_timeout)
            .finish_non_exhaustive()
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

/// A resolve failed. No value was handed out. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No such handle. Dependent steps must fail, not pass the text on.
    #[error("unknown secret handle {id}")]
    UnknownHandle {
        /// The handle.
        id: HandleId,
    },
    /// The handle was revoked.
    #[error("secret handle {id} was revoked at {at}; an operator must restore it")]
    Revoked {
        /// The handle.
        id: HandleId,
        /// When.
        at: Timestamp,
    },
    /// The handle expired.
    #[error("secret handle {id} expired at {at}; rotate it with a new expiry")]
    Expired {
        /// The handle.
        id: HandleId,
        /// When.
        at: Timestamp,
    },
    /// The policy denied.
    #[error("policy denied secret handle {id}{}: {reason}", rule_suffix(rule))]
    Denied {
        /// The handle.
        id: HandleId,
        /// The deny rule, if a rule denied.
        rule: Option<String>,
        /// Why.
        reason: DecisionReason,
    },
    /// An approval was required and not satisfied.
    #[error(
        "secret handle {id} needs an approval{}: {rejection}",
        rule_suffix(rule)
    )]
    ApprovalRejected {
        /// The handle.
        id: HandleId,
        /// The rule that required approval, if a rule did.
        rule: Option<String>,
        /// Why the approval did not satisfy.
        rejection: ApprovalRejection,
    },
    /// The provider failed to read the value.
    #[error("reading secret handle {id} from its provider failed: {source}")]
    Provider {
        /// The handle.
        id: HandleId,
        /// The provider error.
        #[source]
        source: ProviderError,
    },
    /// The catalog failed (store error, provider not configured).
    #[error("the catalog failed while resolving {id}: {source}")]
    Catalog {
        /// The handle.
        id: HandleId,
        /// The catalog error.
        #[source]
        source: CatalogError,
    },
    /// The redactor refused the value; it was not handed out.
    #[error("secret handle {id} was not handed out: {source}")]
    Redaction {
        /// The handle.
        id: HandleId,
        /// The redactor's refusal.
        #[source]
        source: RedactionHookError,
    },
    /// The audit record could not be written in time; nothing was handed
    /// out.
    #[error("secret handle {id} was not handed out because auditing failed: {source}")]
    Audit {
        /// The handle.
        id: HandleId,
        /// The sink's error.
        #[source]
        source: AuditError,
    },
}

fn rule_suffix(rule: &Option<String>) -> String {
    rule.as_ref()
        .map(|r| format!(" (rule {r:?})"))
        .unwrap_or_default()
}

impl ResolveError {
    /// The handle the error is about.
    pub fn handle(&self) -> &HandleId {
        match self {
            ResolveError::UnknownHandle { id }
            | ResolveError::Revoked { id, .. }
            | ResolveError::Expired { id, .. }
            | ResolveError::Denied { id, .. }
            | ResolveError::ApprovalRejected { id, .. }
            | ResolveError::Provider { id, .. }
            | ResolveError::Catalog { id, .. }
            | ResolveError::Redaction { id, .. }
            | ResolveError::Audit { id, .. } => id,
        }
    }

    /// The class of failure, as audit records name it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ResolveError::UnknownHandle { .. } => ErrorKind::UnknownHandle,
            ResolveError::Revoked { .. } => ErrorKind::Revoked,
            ResolveError::Expired { .. } => ErrorKind::Expired,
            ResolveError::Denied { .. } => ErrorKind::Denied,
            ResolveError::ApprovalRejected { .. } => ErrorKind::ApprovalRejected,
            ResolveError::Provider { .. } => ErrorKind::Provider,
            ResolveError::Catalog { .. } => ErrorKind::Catalog,
            ResolveError::Redaction { .. } => ErrorKind::Redaction,
            ResolveError::Audit { .. } => ErrorKind::Audit,
        }
    }

    fn from_lookup(id: &HandleId, error: CatalogError) -> Self {
        let id = id.clone();
        match error {
            CatalogError::UnknownHandle { .. } => ResolveError::UnknownHandle { id },
            CatalogError::Revoked { at, .. } => ResolveError::Revoked { id, at },
            CatalogError::Expired { at, .. } => ResolveError::Expired { id, at },
            source => ResolveError::Catalog { id, source },
        }
    }

    fn from_read(id: &HandleId, error: CatalogError) -> Self {
        let id = id.clone();
        match error {
            CatalogError::Provider(source) => ResolveError::Provider { id, source },
            source => ResolveError::Catalog { id, source },
        }
    }
}

/// A unique, non-secret id for each resolve attempt: a random per-process
/// prefix and a counter.
fn next_request_id() -> String {
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
