#![allow(
    missing_docs,
    clippy::unwrap_used,
    reason = "criterion_group! generates undocumented items; bench setup unwraps"
)]

//! The cost of sealed hand-off against the resolver's in-memory resolve,
//! measured in the same run, for a 64-byte value.
//!
//! - `resolve/in_memory`: `Resolver::resolve` (memory catalog, rule policy,
//!   in-memory audit sink): the baseline every sealed value also pays;
//! - `seal_for`: that resolve plus HPKE sealing to the node's key;
//! - `open/memory_guard`: the node's side alone (checks, HPKE open,
//!   redactor registration, an in-memory replay guard);
//! - `seal_and_open/memory_guard`: both, as one hand-off (the target:
//!   ≤ 150 µs); the table of multiples of the node's key the seal keeps
//!   is built on the second seal to that key;
//! - `seal_and_open/fresh_pairing_record`: the same with a record made anew
//!   for every seal (read from a database each time): the table is kept by
//!   key, so this costs the same;
//! - `seal_and_open/new_node_key`: a key never sealed to before, every
//!   time (a fresh node identity per seal, made outside the measurement):
//!   no table, the first-seal cost;
//! - `seal_and_open/file_guard`: the same with the durable replay guard
//!   (lock, read, append, `fdatasync` per open), in a temporary directory,
//!   whose cost is the file system's.
//!
//! The envelope's size is printed first.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tyrum_secrets::seal::{
    Expected, FileReplayGuard, MemoryReplayGuard, NodeId, NodeIdentity, Opener, PairingRecord,
    ReplayGuard, SealFor as _, SealOptions,
};
use tyrum_secrets::{
    AdminRequest, Catalog, ExposeSecret as _, KindSpec, MemoryAuditSink, MemoryCatalogStore,
    MemoryProvider, NewSecret, ProviderId, Purpose, Redactor, Requester, ResolveRequest, Resolver,
    RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind,
};

const POLICY: &str = r#"{"rules": [
    {"id": "deny-prod", "effect": "deny", "secret": "*:prod/*"},
    {"id": "deploy", "effect": "allow", "secret": "memory:workspace/acme/*",
     "agent": "deploy-*", "tool": ["shell.exec"]}
]}"#;

fn bench(c: &mut Criterion) {
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new()),
    );
    let value: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
    let admin = SecretAdmin::builder(
        catalog.clone(),
        Arc::new(MemoryAuditSink::bounded(16)),
        &Redactor::new(),
    )
    // Set-up only: the resolvers measured register values themselves.
    .without_redaction()
    .build()
    .unwrap();
    let handle = admin
        .create(
            NewSecret::new(
                memory,
                Scope::new("workspace/acme/deploy").unwrap(),
                KindSpec::new(SecretKind::ApiKey, None).unwrap(),
            ),
            &SecretBytes::from(value.clone()),
            &AdminRequest::new(
                Requester::new("ops").unwrap(),
                Purpose::new("bench setup").unwrap(),
            ),
        )
        .unwrap();
    let resolver = Resolver::builder(
        catalog,
        RulePolicy::from_json_str(POLICY).unwrap(),
        Arc::new(MemoryAuditSink::bounded(4096)),
    )
    .track_last_resolved(false)
    .build()
    .unwrap();
    let request = ResolveRequest::new(
        Requester::new("deploy-7")
            .unwrap()
            .tool("shell.exec")
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("run the deploy script").unwrap(),
    );
    let expected = Expected::tool_call("call-1");
    let opener = |guard: Arc<dyn ReplayGuard>| {
        let identity = NodeIdentity::generate(NodeId::new("build-7").unwrap()).unwrap();
        let pairing = identity.pairing_record();
        (
            Opener::builder(identity, guard, Redactor::new()).build(),
            pairing,
        )
    };
    let (memory_opener, pairing) = opener(Arc::new(MemoryReplayGuard::new()));
    let dir = tempfile::tempdir().unwrap();
    let (file_opener, file_pairing) = opener(Arc::new(
        FileReplayGuard::open(dir.path().join("replay")).unwrap(),
    ));

    let envelope = resolver.seal_for(&pairing, handle.id(), &request).unwrap();
    println!(
        "envelope for a {}-byte value: {} bytes, {} characters as text",
        value.len(),
        envelope.as_bytes().len(),
        envelope.to_string().len()
    );
    let opened = memory_opener.open(&envelope, &expected).unwrap();
    assert_eq!(opened.expose_secret(), value.as_slice());

    c.bench_function("resolve/in_memory", |b| {
        b.iter(|| black_box(resolver.resolve(handle.id(), &request).unwrap()));
    });
    c.bench_function("seal_for", |b| {
        b.iter(|| black_box(resolver.seal_for(&pairing, handle.id(), &request).unwrap()));
    });
    // Each measurement below has its own node (and replay guard): a guard
    // that earlier measurements filled would slow the later ones.
    c.bench_function("open/memory_guard", |b| {
        let (memory_opener, pairing) = opener(Arc::new(MemoryReplayGuard::new()));
        b.iter_batched(
            || resolver.seal_for(&pairing, handle.id(), &request).unwrap(),
            |envelope| black_box(memory_opener.open(&envelope, &expected).unwrap()),
            BatchSize::SmallInput,
        );
    });
    c.bench_function("seal_and_open/memory_guard", |b| {
        let (memory_opener, pairing) = opener(Arc::new(MemoryReplayGuard::new()));
        b.iter(|| {
            let envelope = resolver.seal_for(&pairing, handle.id(), &request).unwrap();
            black_box(memory_opener.open(&envelope, &expected).unwrap())
        });
    });
    c.bench_function("seal_and_open/fresh_pairing_record", |b| {
        let (memory_opener, pairing) = opener(Arc::new(MemoryReplayGuard::new()));
        b.iter(|| {
            let fresh = PairingRecord::new(pairing.node().clone(), *pairing.public_key());
            let envelope = resolver.seal_for(&fresh, handle.id(), &request).unwrap();
            black_box(memory_opener.open(&envelope, &expected).unwrap())
        });
    });
    c.bench_function("seal_and_open/new_node_key", |b| {
        b.iter_batched(
            || {
                let identity = NodeIdentity::generate(NodeId::new("build-7").unwrap()).unwrap();
                let pairing = identity.pairing_record();
                (
                    Opener::builder(identity, MemoryReplayGuard::new(), Redactor::new()).build(),
                    pairing,
                )
            },
            // The opener is returned, so dropping it is not measured.
            |(opener, pairing)| {
                let envelope = resolver.seal_for(&pairing, handle.id(), &request).unwrap();
                let opened = black_box(opener.open(&envelope, &expected).unwrap());
                (opener, opened)
            },
            BatchSize::SmallInput,
        );
    });
    // A short TTL keeps the replay file small: expired ids are pruned.
    let short = SealOptions::default().ttl(Duration::from_secs(1));
    c.bench_function("seal_and_open/file_guard", |b| {
        b.iter(|| {
            let envelope = resolver
                .seal_for_with(&file_pairing, handle.id(), &request, &short)
                .unwrap();
            black_box(file_opener.open(&envelope, &expected).unwrap())
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
