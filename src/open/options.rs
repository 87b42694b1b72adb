//! [`OpenOptions`]: how to open, beyond the config (what only code can
//! supply), and the caller-supplied hooks it carries.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tyrum_secrets_core::{
    AdminRequest, ApprovalVerifier, AuditSink, Policy, ProviderId, SecretProvider, SecretString,
};

/// What a passphrase prompt is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PassphraseRequest {
    /// The store the passphrase is for.
    pub store: PathBuf,
    /// The store does not exist yet: the passphrase will create it (a
    /// prompt should ask twice).
    pub new_store: bool,
}

/// A passphrase prompt: returns the passphrase, or a message saying why
/// there is none (cancelled, no terminal). Never put the passphrase in the
/// message.
pub type PassphrasePrompt =
    dyn Fn(&PassphraseRequest) -> Result<SecretString, String> + Send + Sync;

/// Wraps a provider (metrics, fault injection in tests).
pub type ProviderLayer =
    dyn Fn(&ProviderId, Arc<dyn SecretProvider>) -> Arc<dyn SecretProvider> + Send + Sync;

/// Wraps the resolver's audit sink (metrics, a second copy, fault
/// injection in tests).
pub type AuditLayer = dyn Fn(Arc<dyn AuditSink>) -> Arc<dyn AuditSink> + Send + Sync;

/// How to open, beyond the config: what only code can supply.
#[derive(Clone, Default)]
pub struct OpenOptions {
    pub(super) prompt: Option<Arc<PassphrasePrompt>>,
    pub(super) policy: Option<Arc<dyn Policy>>,
    pub(super) approvals: Option<Arc<dyn ApprovalVerifier>>,
    pub(super) provider_layer: Option<Arc<ProviderLayer>>,
    pub(super) audit_layer: Option<Arc<AuditLayer>>,
    pub(super) must_exist: bool,
    pub(super) insecure_kdf: bool,
    pub(super) accept_rollback: Option<AdminRequest>,
}

impl OpenOptions {
    /// Default options: create what is missing, policy from the config.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks `prompt` for the file store's passphrase when the config names
    /// no key source (the CLI's hidden terminal prompt).
    pub fn prompt(
        mut self,
        prompt: impl Fn(&PassphraseRequest) -> Result<SecretString, String> + Send + Sync + 'static,
    ) -> Self {
        self.prompt = Some(Arc::new(prompt));
        self
    }

    /// Decides with `policy` instead of `policy_file` (or the default,
    /// which denies every request).
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Accepts approval grants with `verifier` (default: none accepted).
    pub fn approvals(mut self, verifier: Arc<dyn ApprovalVerifier>) -> Self {
        self.approvals = Some(verifier);
        self
    }

    /// Wraps every provider the profile opens with `layer`, before the
    /// catalog, the resolver and the pre-load see it.
    pub fn provider_layer(
        mut self,
        layer: impl Fn(&ProviderId, Arc<dyn SecretProvider>) -> Arc<dyn SecretProvider>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.provider_layer = Some(Arc::new(layer));
        self
    }

    /// Wraps the resolver's audit sink with `layer`. The anchored log stays
    /// underneath: whatever the layer does, records reach the log only
    /// through it.
    pub fn audit_layer(
        mut self,
        layer: impl Fn(Arc<dyn AuditSink>) -> Arc<dyn AuditSink> + Send + Sync + 'static,
    ) -> Self {
        self.audit_layer = Some(Arc::new(layer));
        self
    }

    /// Fails with [`OpenError::StateIncomplete`](super::OpenError::StateIncomplete) instead of creating a new
    /// state when the state directory has none (for every command but an
    /// explicit `init`).
    pub fn must_exist(mut self) -> Self {
        self.must_exist = true;
        self
    }

    /// Accepts, knowingly and on record, the state as it is where an
    /// anchor refuses it: an audit log, the file store or the catalog cut
    /// short or rolled back to an older copy (a backup restored on
    /// purpose), one whose anchor is missing or damaged, or one replaced by
    /// another copy (for the catalog also a copy without a MAC put back
    /// where an authenticated one was), and audit logs lost with their
    /// anchors (the index of the logs vouches for them; each lost log is
    /// made again, empty or with a record of the acceptance).
    /// Each acceptance is an audit record naming `by` (who and why) and
    /// what the anchor said, written before anything else changes; then the
    /// anchor is moved to the state found. Listed in
    /// [`OpenReport::recovered`](super::OpenReport::recovered).
    ///
    /// Only what the anchors claim is overridden: a log, store or catalog
    /// that does not verify (edited, spliced, another key) is still
    /// refused. Without
    /// a refusal, this opens as usual and records nothing extra.
    pub fn accept_rollback(mut self, by: AdminRequest) -> Self {
        self.accept_rollback = Some(by);
        self
    }

    /// Creates a new file store with cheap Argon2id parameters. Only for
    /// tests, examples and benchmarks; never for real secrets.
    pub fn dangerous_insecure_kdf_for_tests(mut self) -> Self {
        self.insecure_kdf = true;
        self
    }
}

impl fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenOptions")
            .field("prompt", &self.prompt.is_some())
            .field("policy", &self.policy)
            .field("approvals", &self.approvals)
            .field("provider_layer", &self.provider_layer.is_some())
            .field("audit_layer", &self.audit_layer.is_some())
            .field("must_exist", &self.must_exist)
            .field("insecure_kdf", &self.insecure_kdf)
            .field("accept_rollback", &self.accept_rollback)
            .finish()
    }
}
