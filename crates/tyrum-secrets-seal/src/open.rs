//! The node side: open an envelope for the step at hand, once, and hand the
//! value over through the same helpers the resolver uses.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{
    ExposeSecret, HandleId, InjectError, RedactionError, Redactor, SecretBytes, ValueSource,
    Version,
};

use crate::clock::{Clock, SystemClock};
use crate::envelope::{EnvelopeId, SealedSecret};
use crate::node::{NodeId, NodeIdentity};
use crate::replay::{Recorded, ReplayError, ReplayGuard};
use crate::suite;

/// The longest an envelope may still open for, by default: one hour. An
/// envelope that claims to open for longer is refused, so the replay guard
/// never has to keep an id for long.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Opens envelopes sealed for this node: checks the node, the tool call,
/// the expiry and the replay guard, decrypts, registers the value with the
/// node's redactor, and hands it over as an [`OpenedSecret`].
///
/// ```
/// # use std::sync::Arc;
/// # use tyrum_secrets_core::{Catalog, Inject as _, KindSpec, MemoryAuditSink, MemoryCatalogStore,
/// #     MemoryProvider, NewSecret, ProviderId, Purpose, Redactor, Requester, ResolveRequest,
/// #     Resolver, RulePolicy, Scope, SecretBytes, SecretKind, ExposeSecret as _};
/// # use tyrum_secrets_seal::{Expected, MemoryReplayGuard, NodeId, NodeIdentity, Opener,
/// #     SealFor as _};
/// # let memory = ProviderId::new("memory")?;
/// # let catalog = Arc::new(Catalog::new(MemoryCatalogStore::new())
/// #     .with_provider(memory.clone(), MemoryProvider::new()));
/// # let admin = tyrum_secrets_core::SecretAdmin::builder(catalog.clone(),
/// #     Arc::new(MemoryAuditSink::new())).build()?;
/// # let by = tyrum_secrets_core::AdminRequest::new(Requester::new("ops")?, Purpose::new("setup")?);
/// # let handle = admin.create(
/// #     NewSecret::new(memory, Scope::new("ci")?, KindSpec::new(SecretKind::ApiKey, None)?),
/// #     &SecretBytes::from(b"sk-live-example-value".to_vec()), &by)?;
/// # let policy = RulePolicy::from_json_str(
/// #     r#"{"rules": [{"id": "ci", "effect": "allow", "secret": "memory:ci"}]}"#)?;
/// # let resolver = Resolver::builder(catalog, policy, Arc::new(MemoryAuditSink::new())).build()?;
/// # let request = ResolveRequest::new(
/// #     Requester::new("ci-bot")?.tool("http.fetch")?.tool_call("call-42")?,
/// #     Purpose::new("list pull requests")?,
/// # );
/// // On the node:
/// let identity = NodeIdentity::generate(NodeId::new("build-7")?)?;
/// let pairing = identity.pairing_record();
/// let redactor = Redactor::new();
/// let opener = Opener::builder(identity, MemoryReplayGuard::new(), redactor.clone()).build();
///
/// // On the gateway, then carried to the node by anything:
/// let envelope = resolver.seal_for(&pairing, handle.id(), &request)?;
///
/// // Back on the node, for the step with tool call `call-42`:
/// let opened = opener.open(&envelope, &Expected::tool_call("call-42"))?;
/// let header = opened.render_header_value(&format!("Bearer {{{{{}}}}}", handle.id()))?;
/// assert_eq!(header.expose_secret(), "Bearer sk-live-example-value");
/// assert_eq!(
///     redactor.redact_str("echo sk-live-example-value").as_str(),
///     format!("echo [{}]", handle.id())
/// );
/// // The same envelope does not open twice.
/// assert!(opener.open(&envelope, &Expected::tool_call("call-42")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Opener {
    identity: NodeIdentity,
    guard: Arc<dyn ReplayGuard>,
    redactor: Redactor,
    clock: Arc<dyn Clock>,
    max_lifetime: Duration,
}

/// Builds an [`Opener`].
pub struct OpenerBuilder {
    opener: Opener,
}

impl Opener {
    /// Starts building an opener for `identity`, remembering opened
    /// envelopes in `guard` (a [`FileReplayGuard`](crate::FileReplayGuard)
    /// so that replays stay refused across restarts) and registering every
    /// opened value with `redactor` (a clone of the node's `Redactor`, the
    /// one its logs and outputs pass through).
    pub fn builder(
        identity: NodeIdentity,
        guard: impl ReplayGuard + 'static,
        redactor: Redactor,
    ) -> OpenerBuilder {
        OpenerBuilder {
            opener: Opener {
                identity,
                guard: Arc::new(guard),
                redactor,
                clock: Arc::new(SystemClock),
                max_lifetime: DEFAULT_MAX_LIFETIME,
            },
        }
    }

    /// The node this opener opens for.
    pub fn node(&self) -> &NodeId {
        self.identity.node()
    }

    /// Opens `envelope` for the step described by `expected`.
    ///
    /// In order: the envelope must be for this node, for the expected tool
    /// call (and handle, if one is expected), unexpired and not opening for
    /// longer than the opener's limit; it must decrypt under this node's
    /// key with every bound field intact; its value is registered with the
    /// redactor; and the replay guard must not have seen it. Only then is
    /// the value handed over.
    ///
    /// # Errors
    /// [`OpenError`], a kind and nothing more: the error never carries the
    /// value, the expected or found ids, or which byte was wrong.
    pub fn open(
        &self,
        envelope: &SealedSecret,
        expected: &Expected,
    ) -> Result<OpenedSecret, OpenError> {
        if envelope.node() != self.identity.node() {
            return Err(OpenError::WrongNode);
        }
        if envelope.tool_call() != expected.tool_call {
            return Err(OpenError::WrongToolCall);
        }
        if expected
            .handle
            .as_ref()
            .is_some_and(|h| h != envelope.handle())
        {
            return Err(OpenError::WrongHandle);
        }
        let now = self.clock.now();
        if envelope.expires_at() <= now {
            return Err(OpenError::Expired);
        }
        if envelope.expires_at() > now.saturating_add(self.max_lifetime) {
            return Err(OpenError::LifetimeTooLong);
        }
        let value = suite::open(
            self.identity.private_key(),
            envelope.enc(),
            envelope.aad(),
            envelope.ciphertext(),
        )
        .map_err(|_| OpenError::Undecryptable)?;
        self.redactor
            .register(envelope.handle(), &value)
            .map_err(OpenError::Redaction)?;
        match self
            .guard
            .record(&envelope.envelope_id(), envelope.expires_at(), now)
        {
            Ok(Recorded::First) => {}
            Ok(Recorded::Replay) => return Err(OpenError::Replayed),
            Err(e) => return Err(OpenError::ReplayStore(e)),
        }
        Ok(OpenedSecret {
            handle: envelope.handle().clone(),
            version: envelope.version(),
            envelope_id: envelope.envelope_id(),
            value,
        })
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("identity", &self.identity)
            .field("guard", &self.guard)
            .field("redactor", &self.redactor)
            .field("clock", &self.clock)
            .field("max_lifetime", &self.max_lifetime)
            .finish()
    }
}

impl OpenerBuilder {
    /// Reads the time from `clock` (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.opener.clock = Arc::new(clock);
        self
    }

    /// Refuses envelopes that would still open for longer than `limit`
    /// (default [`DEFAULT_MAX_LIFETIME`]).
    pub fn max_lifetime(mut self, limit: Duration) -> Self {
        self.opener.max_lifetime = limit;
        self
    }

    /// Builds the opener.
    pub fn build(self) -> Opener {
        self.opener
    }
}

impl fmt::Debug for OpenerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenerBuilder")
            .field("opener", &self.opener)
            .finish()
    }
}

/// What the node expects of an envelope for the step it is running: the
/// tool call, and optionally the handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    tool_call: String,
    handle: Option<HandleId>,
}

impl Expected {
    /// An envelope sealed for tool call `id`.
    pub fn tool_call(id: impl Into<String>) -> Self {
        Self {
            tool_call: id.into(),
            handle: None,
        }
    }

    /// ...that carries the value of `handle`.
    pub fn handle(mut self, handle: HandleId) -> Self {
        self.handle = Some(handle);
        self
    }
}

/// A value opened from an envelope: a [`ValueSource`] for the injection
/// helpers (`inject_env`, `substitute_json`, `render_header_value` through
/// [`Inject`](tyrum_secrets_core::Inject)) that holds the one handle it was
/// sealed for. `Debug` never shows the value; it is wiped on drop.
pub struct OpenedSecret {
    handle: HandleId,
    version: Version,
    envelope_id: EnvelopeId,
    value: SecretBytes,
}

impl OpenedSecret {
    /// The handle.
    pub fn handle(&self) -> &HandleId {
        &self.handle
    }

    /// The version of the value.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The envelope it came from.
    pub fn envelope_id(&self) -> EnvelopeId {
        self.envelope_id
    }
}

impl ValueSource for OpenedSecret {
    fn value(&self, id: &HandleId) -> Result<SecretBytes, InjectError> {
        if *id != self.handle {
            return Err(InjectError::NotProvided { id: id.clone() });
        }
        Ok(SecretBytes::from(self.value.expose_secret().to_vec()))
    }
}

impl ExposeSecret<[u8]> for OpenedSecret {
    fn expose_secret(&self) -> &[u8] {
        self.value.expose_secret()
    }
}

impl fmt::Debug for OpenedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedSecret")
            .field("handle", &self.handle)
            .field("version", &self.version)
            .field("envelope_id", &self.envelope_id)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// The values opened for one step, by handle: a [`ValueSource`] for tool
/// arguments or templates that name several handles.
#[derive(Default)]
pub struct OpenedSecrets {
    by_handle: BTreeMap<HandleId, OpenedSecret>,
}

impl OpenedSecrets {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `opened`, replacing an earlier value of the same handle.
    pub fn insert(&mut self, opened: OpenedSecret) {
        self.by_handle.insert(opened.handle.clone(), opened);
    }

    /// The handles held.
    pub fn handles(&self) -> impl Iterator<Item = &HandleId> {
        self.by_handle.keys()
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.by_handle.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_handle.is_empty()
    }
}

impl FromIterator<OpenedSecret> for OpenedSecrets {
    fn from_iter<I: IntoIterator<Item = OpenedSecret>>(iter: I) -> Self {
        let mut set = Self::new();
        for opened in iter {
            set.insert(opened);
        }
        set
    }
}

impl ValueSource for OpenedSecrets {
    fn value(&self, id: &HandleId) -> Result<SecretBytes, InjectError> {
        match self.by_handle.get(id) {
            Some(opened) => opened.value(id),
            None => Err(InjectError::NotProvided { id: id.clone() }),
        }
    }
}

impl fmt::Debug for OpenedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_handle.values()).finish()
    }
}

/// An envelope did not open. Each kind says which check refused it and
/// nothing more: no value, no ids, no byte offsets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Sealed for another node.
    #[error("the envelope was sealed for another node")]
    WrongNode,
    /// Sealed for another tool call.
    #[error("the envelope was sealed for another tool call; ask the gateway to seal for this one")]
    WrongToolCall,
    /// Carries another handle than the one expected.
    #[error("the envelope carries another handle than the step expects")]
    WrongHandle,
    /// Past its expiry.
    #[error("the envelope has expired; ask the gateway to seal the value again")]
    Expired,
    /// Would open for longer than the opener allows.
    #[error("the envelope would open for longer than this node allows; seal it with a shorter TTL")]
    LifetimeTooLong,
    /// Did not decrypt: another node's key, or a changed byte anywhere.
    #[error("the envelope does not open with this node's key, or was altered")]
    Undecryptable,
    /// Opened before.
    #[error("the envelope was opened before; each envelope opens once")]
    Replayed,
    /// The replay guard could not be consulted; nothing was handed out.
    #[error("the replay guard failed, so the envelope was not opened: {0}")]
    ReplayStore(#[source] ReplayError),
    /// The node's redactor refused the value; nothing was handed out.
    #[error("the node's redactor refused the value, so it was not handed out: {0}")]
    Redaction(#[source] RedactionError),
}
