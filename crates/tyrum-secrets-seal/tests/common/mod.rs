//! A gateway (resolver over a memory catalog) and nodes, for the sealing
//! tests; and the envelope layout of FORMAT.md, written out independently of
//! the crate's parser so tests can relabel fields.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: not every test binary uses every helper; a failed unwrap is a failed test"
)]

use std::sync::Arc;

use tyrum_secrets_core::{
    AdminRequest, Catalog, KindSpec, Locator, MemoryAuditSink, MemoryCatalogStore, MemoryProvider,
    NewSecret, ProviderId, Purpose, Redactor, Requester, ResolveRequest, Resolver, RulePolicy,
    Scope, SecretAdmin, SecretBytes, SecretHandle, SecretKind, Timestamp,
};
use tyrum_secrets_seal::{
    ManualClock, MemoryReplayGuard, NodeId, NodeIdentity, Opener, PairingRecord, ReplayGuard,
};

pub(crate) struct Gateway {
    pub(crate) admin: SecretAdmin,
    pub(crate) sink: Arc<MemoryAuditSink>,
    pub(crate) resolver: Resolver,
}

/// Allows `memory:tools/*` to agent `alpha`; everything else is denied by
/// default.
pub(crate) fn gateway() -> Gateway {
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(ProviderId::new("memory").unwrap(), MemoryProvider::new()),
    );
    let sink = Arc::new(MemoryAuditSink::new());
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "tools", "effect": "allow", "secret": "memory:tools/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .build()
        .unwrap();
    // The admin records to its own sink, so `sink` holds resolves only.
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new()))
        .redactor(resolver.redactor().unwrap().clone())
        .build()
        .unwrap();
    Gateway {
        admin,
        sink,
        resolver,
    }
}

impl Gateway {
    pub(crate) fn secret(&self, scope: &str, value: &[u8]) -> SecretHandle {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new(scope).unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        );
        let by = AdminRequest::new(
            Requester::new("operator").unwrap(),
            Purpose::new("sealing test").unwrap(),
        );
        self.admin
            .create(spec, &SecretBytes::from(value.to_vec()), &by)
            .unwrap()
    }
}

pub(crate) fn request(tool_call: &str) -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha")
            .unwrap()
            .tool("shell.exec")
            .unwrap()
            .tool_call(tool_call)
            .unwrap(),
        Purpose::new("run the deploy step").unwrap(),
    )
}

pub(crate) struct Node {
    pub(crate) opener: Opener,
    pub(crate) pairing: PairingRecord,
    pub(crate) redactor: Redactor,
    pub(crate) clock: ManualClock,
}

/// A node whose private key is in `keys` at `node/identity`, created if
/// missing, with `guard`, a fresh redactor and a manual clock at now.
pub(crate) fn node_with(
    id: &str,
    keys: &MemoryProvider,
    guard: impl ReplayGuard + 'static,
) -> Node {
    let identity = NodeIdentity::load_or_create(
        NodeId::new(id).unwrap(),
        keys,
        &Locator::new("node/identity").unwrap(),
    )
    .unwrap();
    let pairing = identity.pairing_record();
    let redactor = Redactor::new();
    let clock = ManualClock::new(Timestamp::now());
    let opener = Opener::builder(identity, guard, redactor.clone())
        .clock(clock.clone())
        .build();
    Node {
        opener,
        pairing,
        redactor,
        clock,
    }
}

pub(crate) fn node(id: &str) -> Node {
    node_with(id, &MemoryProvider::new(), MemoryReplayGuard::new())
}

/// The fields of an envelope, split as FORMAT.md lays them out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Parts {
    pub(crate) magic: Vec<u8>,
    pub(crate) format: u8,
    pub(crate) envelope_id: [u8; 16],
    pub(crate) expires_at: u64,
    pub(crate) version: u64,
    pub(crate) node: Vec<u8>,
    pub(crate) handle: Vec<u8>,
    pub(crate) tool_call: Vec<u8>,
    /// The encapsulated key and the ciphertext with its tag.
    pub(crate) sealed: Vec<u8>,
}

impl Parts {
    pub(crate) fn split(bytes: &[u8]) -> Self {
        let mut at = 0;
        let mut take = |n: usize| {
            let slice = bytes[at..at + n].to_vec();
            at += n;
            slice
        };
        let magic = take(4);
        let format = take(1)[0];
        let envelope_id = take(16).try_into().unwrap();
        let expires_at = u64::from_le_bytes(take(8).try_into().unwrap());
        let version = u64::from_le_bytes(take(8).try_into().unwrap());
        let n = take(1)[0] as usize;
        let node = take(n);
        let n = take(1)[0] as usize;
        let handle = take(n);
        let n = u16::from_le_bytes(take(2).try_into().unwrap()) as usize;
        let tool_call = take(n);
        let sealed = bytes[at..].to_vec();
        Parts {
            magic,
            format,
            envelope_id,
            expires_at,
            version,
            node,
            handle,
            tool_call,
            sealed,
        }
    }

    pub(crate) fn join(&self) -> Vec<u8> {
        let mut out = self.magic.clone();
        out.push(self.format);
        out.extend_from_slice(&self.envelope_id);
        out.extend_from_slice(&self.expires_at.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.push(self.node.len() as u8);
        out.extend_from_slice(&self.node);
        out.push(self.handle.len() as u8);
        out.extend_from_slice(&self.handle);
        out.extend_from_slice(&(self.tool_call.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.tool_call);
        out.extend_from_slice(&self.sealed);
        out
    }
}

/// `needle` and its common encodings (hex, base64), for canary searches.
pub(crate) fn encodings(needle: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let hex: String = needle.iter().map(|b| format!("{b:02x}")).collect();
    let mut all = vec![needle.to_vec(), hex.into_bytes()];
    for skip in 0..3 {
        // The stable core of the base64 of the value at each offset.
        let b64 = STANDARD_NO_PAD.encode(&needle[skip..]);
        all.push(b64.as_bytes()[..b64.len().saturating_sub(4)].to_vec());
        let b64 = URL_SAFE_NO_PAD.encode(&needle[skip..]);
        all.push(b64.as_bytes()[..b64.len().saturating_sub(4)].to_vec());
    }
    all
}

/// Whether `haystack` holds `needle` or one of its encodings.
pub(crate) fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    encodings(needle)
        .iter()
        .any(|n| haystack.windows(n.len()).any(|w| w == n.as_slice()))
}
