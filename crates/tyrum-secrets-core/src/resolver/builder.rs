//! Building a [`Resolver`]: approvals, redaction, fingerprints, audit
//! timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Resolver;
use crate::Catalog;
use crate::audit::gate::AuditGate;
use crate::audit::{AuditError, AuditSink, FingerprintKey};
use crate::policy::{ApprovalVerifier, Policy, RejectAllApprovals};
use crate::redaction::Redactor;

/// How long the resolver waits for an audit sink by default.
pub const DEFAULT_AUDIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a [`Resolver`]. Start with [`Resolver::builder`].
pub struct ResolverBuilder {
    catalog: Arc<Catalog>,
    policy: Arc<dyn Policy>,
    sink: Arc<dyn AuditSink>,
    approvals: Arc<dyn ApprovalVerifier>,
    redaction: Redaction,
    fingerprint: Option<FingerprintKey>,
    audit_timeout: Duration,
    track_last_resolved: bool,
    force_audit_worker: bool,
}

/// Which redactor the resolver registers values with.
enum Redaction {
    /// A new one of its own (the default).
    Own,
    /// One the caller shares with others.
    Shared(Redactor),
    /// None: explicitly switched off.
    Off,
}

impl ResolverBuilder {
    pub(super) fn new(
        catalog: Arc<Catalog>,
        policy: Arc<dyn Policy>,
        sink: Arc<dyn AuditSink>,
    ) -> Self {
        Self {
            catalog,
            policy,
            sink,
            approvals: Arc::new(RejectAllApprovals),
            redaction: Redaction::Own,
            fingerprint: None,
            audit_timeout: DEFAULT_AUDIT_TIMEOUT,
            track_last_resolved: true,
            force_audit_worker: false,
        }
    }

    /// Uses `verifier` to accept approval grants.
    pub fn approvals(mut self, verifier: Arc<dyn ApprovalVerifier>) -> Self {
        self.approvals = verifier;
        self
    }

    /// Registers every resolved value with `redactor`, a clone of one that
    /// is shared (with a [`SecretAdmin`](crate::SecretAdmin), another
    /// resolver, a log writer) instead of a redactor of the resolver's own.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redaction = Redaction::Shared(redactor);
        self
    }

    /// Registers resolved values with no redactor at all:
    /// [`Resolver::redactor`] is then `None` and nothing this resolver hands
    /// out is masked anywhere. Only for processes that neither log nor
    /// persist anything a value could reach (tests, benchmarks).
    pub fn without_redaction(mut self) -> Self {
        self.redaction = Redaction::Off;
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
        let redactor = match self.redaction {
            Redaction::Own => Some(Redactor::new()),
            Redaction::Shared(redactor) => Some(redactor),
            Redaction::Off => None,
        };
        Ok(Resolver {
            catalog: self.catalog,
            policy: self.policy,
            approvals: self.approvals,
            audit: AuditGate::new(self.sink, self.audit_timeout, self.force_audit_worker)?,
            redactor,
            fingerprint: self.fingerprint,
            track_last_resolved: self.track_last_resolved,
        })
    }
}

impl fmt::Debug for ResolverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redaction = match &self.redaction {
            Redaction::Own => "own",
            Redaction::Shared(_) => "shared",
            Redaction::Off => "off",
        };
        f.debug_struct("ResolverBuilder")
            .field("policy", &self.policy)
            .field("sink", &self.sink)
            .field("redaction", &redaction)
            .field("audit_timeout", &self.audit_timeout)
            .finish_non_exhaustive()
    }
}
