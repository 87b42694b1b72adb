#![allow(
    missing_docs,
    clippy::unwrap_used,
    reason = "criterion_group! generates undocumented items; bench setup unwraps"
)]

//! The cost of the trusted resolve path (catalog, policy, redactor, audit,
//! the revocation re-check) against a direct provider read, measured in the
//! same run.
//!
//! - `direct_read`: `MemoryProvider::read` of the same locator and version;
//! - `resolve/inline_sink`: `Resolver::resolve` with the defaults (its own
//!   redactor), a rule policy and an in-memory audit sink called inline (it
//!   never blocks), including the catalog's `last_resolved_at` update;
//! - `resolve/inline_sink_without_redaction`: the same with
//!   `without_redaction()`, to show what registering costs;
//! - `resolve/inline_sink_no_last_resolved`: the same without that update;
//! - `resolve/worker_sink`: the in-memory sink forced through the
//!   fail-closed timeout worker, to show the cost of the thread hop that
//!   sinks which may block pay.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tyrum_secrets::{
    AdminRequest, Catalog, ExposeSecret, KindSpec, MemoryAuditSink, MemoryCatalogStore,
    MemoryProvider, NewSecret, ProviderId, Purpose, Requester, ResolveRequest, Resolver,
    ResolverBuilder, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, SecretProvider,
    VersionPin, VersionSelector,
};

const POLICY: &str = r#"{"rules": [
    {"id": "deny-shell", "effect": "deny", "secret": "*", "tool": "shell.*"},
    {"id": "prod", "effect": "require_approval", "secret": "*:prod/*"},
    {"id": "ci", "effect": "allow", "secret": "memory:workspace/acme/*",
     "agent": "ci-*", "tool": ["http.fetch"], "destination": ["api.github.com"]}
]}"#;

fn bench(c: &mut Criterion) {
    let memory = ProviderId::new("memory").unwrap();
    let provider = Arc::new(MemoryProvider::new());
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_shared_provider(memory.clone(), provider.clone() as Arc<dyn SecretProvider>),
    );
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("bench setup").unwrap(),
    );
    let handle = admin
        .create(
            NewSecret::new(
                memory,
                Scope::new("workspace/acme/github").unwrap(),
                KindSpec::new(SecretKind::ApiKey, None).unwrap(),
            ),
            &SecretBytes::from(b"ghp_0123456789abcdefghijklmnopqrstuvwxyz".to_vec()),
            &by,
        )
        .unwrap();
    let entry = catalog.entry(handle.id()).unwrap();
    let VersionPin::Pinned(version) = entry.current else {
        unreachable!("created handles are pinned")
    };
    let request = ResolveRequest::new(
        Requester::new("ci-7")
            .unwrap()
            .tool("http.fetch")
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("list pull requests").unwrap(),
    )
    .to(tyrum_secrets::Destination::host("api.github.com").unwrap());

    let make = |configure: fn(ResolverBuilder) -> ResolverBuilder| {
        let builder = Resolver::builder(
            catalog.clone(),
            RulePolicy::from_json_str(POLICY).unwrap(),
            Arc::new(MemoryAuditSink::bounded(4096)),
        );
        configure(builder).build().unwrap()
    };
    let inline = make(|b| b);
    let inline_unredacted = make(|b| b.without_redaction());
    let inline_untracked = make(|b| b.track_last_resolved(false));
    let worker = make(|b| b.force_audit_worker());

    c.bench_function("direct_read", |b| {
        b.iter(|| {
            let secret = provider
                .read(black_box(&entry.locator), VersionSelector::Exact(version))
                .unwrap();
            black_box(secret.value.expose_secret().len())
        })
    });
    let mut group = c.benchmark_group("resolve");
    for (name, resolver) in [
        ("inline_sink", &inline),
        ("inline_sink_without_redaction", &inline_unredacted),
        ("inline_sink_no_last_resolved", &inline_untracked),
        ("worker_sink", &worker),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let secret = resolver.resolve(black_box(handle.id()), &request).unwrap();
                black_box(secret.value().expose_secret().len())
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
