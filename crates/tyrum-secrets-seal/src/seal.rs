//! The gateway side: resolve through the normal path, then seal the value
//! to the paired node.

use std::time::Duration;

use tyrum_secrets_core::{
    ExposeSecret as _, HandleId, RequestError, ResolveError, ResolveRequest, Resolver, Timestamp,
};

use crate::envelope::{Binding, EnvelopeError, EnvelopeId, MAX_VALUE_LEN, SealedSecret};
use crate::node::PairingRecord;
use crate::suite::{self, SystemRandom};

/// How long an envelope opens by default: five minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

/// Sealing a resolved value for a paired node. Implemented by [`Resolver`].
///
/// ```
/// use std::sync::Arc;
/// use tyrum_secrets_core::{Catalog, KindSpec, MemoryAuditSink, MemoryCatalogStore,
///     MemoryProvider, NewSecret, ProviderId, Purpose, Requester, ResolveRequest, Resolver,
///     RulePolicy, Scope, SecretBytes, SecretKind};
/// use tyrum_secrets_seal::{NodeId, NodeIdentity, SealFor as _};
///
/// # let memory = ProviderId::new("memory")?;
/// # let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new())
/// #     .with_provider(memory.clone(), MemoryProvider::new()));
/// # let admin = tyrum_secrets_core::SecretAdmin::builder(catalog.clone(),
/// #     Arc::new(MemoryAuditSink::new()), &tyrum_secrets_core::Redactor::new()).build()?;
/// # let by = tyrum_secrets_core::AdminRequest::new(Requester::new("ops")?, Purpose::new("setup")?);
/// # let handle = admin.create(
/// #     NewSecret::new(memory, Scope::new("ci")?, KindSpec::new(SecretKind::ApiKey, None)?),
/// #     &SecretBytes::from(b"sk-live-example-value".to_vec()), &by)?;
/// # let policy = RulePolicy::from_json_str(
/// #     r#"{"rules": [{"id": "ci", "effect": "allow", "secret": "memory:ci"}]}"#)?;
/// let audit = Arc::new(MemoryAuditSink::new());
/// let resolver = Resolver::builder(catalog, policy, audit.clone()).build()?;
/// // The node made its identity; the gateway holds only the pairing record.
/// let node = NodeIdentity::generate(NodeId::new("build-7")?)?.pairing_record();
///
/// let request = ResolveRequest::new(
///     Requester::new("ci-bot")?.tool("shell.exec")?.tool_call("call-42")?,
///     Purpose::new("run the tests")?,
/// );
/// let envelope = resolver.seal_for(&node, handle.id(), &request)?;
/// assert_eq!(envelope.node(), node.node());
/// assert_eq!(audit.records()[0].node.as_deref(), Some("build-7"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SealFor {
    /// Resolves `handle` for `request` — policy, approvals, audit (the
    /// record names the node), redactor — and seals the value to `node`,
    /// bound to the request's tool call, opening for [`DEFAULT_TTL`].
    ///
    /// # Errors
    /// [`SealError`]; on every error no envelope exists, and every resolve
    /// attempt left its one audit record.
    fn seal_for(
        &self,
        node: &PairingRecord,
        handle: &HandleId,
        request: &ResolveRequest,
    ) -> Result<SealedSecret, SealError> {
        self.seal_for_with(node, handle, request, &SealOptions::default())
    }

    /// [`seal_for`](Self::seal_for) with `options`.
    ///
    /// # Errors
    /// As [`seal_for`](Self::seal_for).
    fn seal_for_with(
        &self,
        node: &PairingRecord,
        handle: &HandleId,
        request: &ResolveRequest,
        options: &SealOptions,
    ) -> Result<SealedSecret, SealError>;
}

/// How an envelope is sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealOptions {
    ttl: Duration,
}

impl SealOptions {
    /// The envelope opens for `ttl` after sealing. Keep it short: the node's
    /// replay guard keeps each envelope's id until it expires, and refuses
    /// envelopes that would open for longer than its own limit.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

impl Default for SealOptions {
    fn default() -> Self {
        Self { ttl: DEFAULT_TTL }
    }
}

impl SealFor for Resolver {
    fn seal_for_with(
        &self,
        node: &PairingRecord,
        handle: &HandleId,
        request: &ResolveRequest,
        options: &SealOptions,
    ) -> Result<SealedSecret, SealError> {
        let tool_call = request
            .requester()
            .tool_call_id()
            .ok_or(SealError::NoToolCall)?;
        match request.node() {
            Some(other) if other != node.node().as_str() => return Err(SealError::OtherNode),
            _ => {}
        }
        // A tool call id the envelope cannot carry is refused before the
        // resolve, so no value is read for nothing.
        let placeholder = Binding {
            envelope_id: EnvelopeId::from_bytes([0; 16]),
            expires_at: Timestamp::from_unix_millis(0),
            version: tyrum_secrets_core::Version::FIRST,
            node: node.node(),
            handle,
            tool_call,
        };
        placeholder.aad().map_err(SealError::Envelope)?;
        let request = request
            .clone()
            .for_node(node.node().as_str())
            .map_err(SealError::Request)?;

        let resolved = self
            .resolve(handle, &request)
            .map_err(|e| SealError::Resolve(Box::new(e)))?;
        let expires_at = Timestamp::now().saturating_add(options.ttl);
        let envelope_id = EnvelopeId::generate().ok_or(SealError::Randomness)?;
        seal_value(
            node.public_key().as_bytes(),
            Some(&suite::recipient_table(node.public_key().as_bytes())),
            &Binding {
                envelope_id,
                expires_at,
                version: resolved.version(),
                node: node.node(),
                handle,
                tool_call,
            },
            resolved.expose_secret(),
            &mut SystemRandom,
        )
    }
}

/// Seals `value` with everything bound in `binding`. Only the gateway's
/// resolver path and the test vectors call it.
pub(crate) fn seal_value(
    recipient: &[u8; 32],
    table: Option<&suite::RecipientTable>,
    binding: &Binding<'_>,
    value: &[u8],
    rng: &mut impl suite::Random,
) -> Result<SealedSecret, SealError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(SealError::ValueTooLarge { len: value.len() });
    }
    let aad = binding.aad().map_err(SealError::Envelope)?;
    let (enc, ciphertext) =
        suite::seal(recipient, table, &aad, value, rng).map_err(|failure| match failure {
            suite::SealFailure::NoRandomness => SealError::Randomness,
            suite::SealFailure::Crypto => SealError::UnusableNodeKey,
        })?;
    SealedSecret::assemble(aad, &enc, &ciphertext).map_err(SealError::Envelope)
}

/// Sealing failed; no envelope was made. Never carries the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The request names no tool call, which the envelope must be bound to.
    #[error("a sealed secret is bound to a tool call; give the requester a tool call id")]
    NoToolCall,
    /// The request already names another node.
    #[error("the request is for another node than the pairing record's")]
    OtherNode,
    /// The request could not name the node.
    #[error("the request cannot name the node: {0}")]
    Request(#[source] RequestError),
    /// The resolve failed (unknown, revoked, denied, approval missing,
    /// audit failed...); its audit record says so.
    #[error("the secret to seal did not resolve: {0}")]
    Resolve(#[source] Box<ResolveError>),
    /// The value is larger than an envelope carries.
    #[error("the value is {len} bytes; an envelope carries at most {MAX_VALUE_LEN}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
    },
    /// A field cannot be bound into an envelope (a tool call id past 256
    /// bytes or with control characters).
    #[error("the envelope cannot be built: {0}")]
    Envelope(#[source] EnvelopeError),
    /// The pairing record's key is not usable (a low-order X25519 point).
    #[error("the node's public key cannot be sealed to; pair the node again")]
    UnusableNodeKey,
    /// The operating system could not supply randomness.
    #[error("the operating system could not supply randomness for an envelope")]
    Randomness,
}

impl SealError {
    /// The resolve error, when the resolve failed.
    pub fn resolve_error(&self) -> Option<&ResolveError> {
        match self {
            SealError::Resolve(e) => Some(e),
            _ => None,
        }
    }
}
