//! `Secrets::open` on the single-host profile with 10,000 secrets: the time
//! to a ready resolver with a pre-loaded redactor, against the same run's
//! Argon2id derivation alone (the store's real work factors: 64 MiB, 3
//! passes, 4 lanes). Target: open − KDF ≤ 500 ms.
//!
//! Two parts of the open are also measured alone in the same run, to split
//! open − KDF: the anchored file store's open (KDF included; the rest is
//! its chain check against the anchor) and the redactor's registration of
//! the 10,000 values (what the pre-load does after reading them).
//!
//! Smoke run: `cargo bench --bench open -- --warm-up-time 1 --measurement-time 2`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "benchmark"
)]

use std::collections::BTreeMap;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use tyrum_secrets::file::{FileOptions, FileProvider, KeySource};

use tyrum_secrets::{
    AdminRequest, Anchor, Catalog, CatalogKey, Config, HandleId, JsonFileCatalogStore, KindSpec,
    Locator, MemoryAuditSink, MemoryCatalogStore, NewSecret, ProviderId, Purpose, Redactor,
    Requester, Scope, SecretAdmin, SecretBytes, SecretKind, SecretString, Secrets,
};

const SECRETS: usize = 10_000;
const PASSPHRASE: &str = "benchmark passphrase";

/// A state directory holding `SECRETS` values, made through the library
/// (one bulk store write and a catalog written in one go, rather than
/// 10,000 fsynced catalog rewrites).
fn prepare(dir: &Path) -> Config {
    std::fs::write(dir.join("passphrase"), PASSPHRASE).unwrap();
    let config = Config::single_host(dir.join("state"), dir.join("passphrase"));
    drop(Secrets::open(&config).unwrap());

    // The store as Secrets::open keeps it: anchored beside itself.
    let store_path = dir.join("state/secrets.tyrum");
    let provider = FileProvider::open_with(
        &store_path,
        KeySource::Passphrase(SecretString::from(PASSPHRASE)),
        FileOptions::default().anchor_beside(),
    )
    .unwrap();
    let items: Vec<(Locator, SecretBytes)> = (0..SECRETS)
        .map(|i| (Locator::new(format!("bench/{i}")).unwrap(), value(i)))
        .collect();
    provider.write_many(&items).unwrap();
    let file = ProviderId::new("file").unwrap();
    let memory = MemoryCatalogStore::new();
    let catalog = Arc::new(Catalog::new(memory).with_provider(file.clone(), provider));
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new()), &Redactor::new())
        .without_redaction()
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("bench").unwrap(),
        Purpose::new("setup").unwrap(),
    );
    for (locator, _) in &items {
        let spec = NewSecret::new(
            file.clone(),
            Scope::new("bench").unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        );
        admin.import(spec, locator.clone(), &by).unwrap();
    }
    let entries: BTreeMap<_, _> = admin
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.id().clone(), e))
        .collect();
    let file =
        serde_json::json!({ "format": "tyrum-secrets-catalog", "version": 1, "entries": entries });
    // The store's only handle is the admin's: closed before it is opened
    // again for the catalog key.
    drop(admin);
    let provider_for_key = FileProvider::open_with(
        &store_path,
        KeySource::Passphrase(SecretString::from(PASSPHRASE)),
        FileOptions::default().anchor_beside(),
    )
    .unwrap();
    let catalog_path = dir.join("state/catalog.json");
    std::fs::write(&catalog_path, serde_json::to_vec(&file).unwrap()).unwrap();
    // Sealed under the key the first open made, with its anchor beside it,
    // as Secrets::open keeps the catalog (a plain catalog where a key
    // exists is refused as a downgrade).
    let key = CatalogKey::in_provider(
        &provider_for_key,
        &Locator::new("tyrum-secrets-internal/catalog-key").unwrap(),
        false,
    )
    .unwrap();
    let anchor = Anchor::beside(&catalog_path);
    let (_, overridden) =
        JsonFileCatalogStore::accept_authenticated(&catalog_path, key, anchor).unwrap();
    assert!(overridden.is_some(), "the plain catalog was sealed");
    config
}

fn value(i: usize) -> SecretBytes {
    SecretBytes::from(format!("sk-bench-{i:05}-{:016x}", i * 7919).into_bytes())
}

fn kdf_alone() {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(65_536, 3, 4, Some(32)).unwrap();
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(PASSPHRASE.as_bytes(), b"sixteen byte salt", &mut out)
        .unwrap();
    std::hint::black_box(out);
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = prepare(dir.path());

    let mut group = c.benchmark_group("open_single_host_10k");
    group.sample_size(10);
    group.bench_function("argon2id_kdf_alone", |b| b.iter(kdf_alone));
    let store = dir.path().join("state/secrets.tyrum");
    group.bench_function("file_store_open_alone", |b| {
        b.iter(|| {
            FileProvider::open_with(
                &store,
                KeySource::Passphrase(SecretString::from(PASSPHRASE)),
                FileOptions::default().anchor_beside(),
            )
            .unwrap()
        });
    });
    let values: Vec<(HandleId, SecretBytes)> = (0..SECRETS)
        .map(|i| (HandleId::generate().unwrap(), value(i)))
        .collect();
    group.bench_function("redactor_register_all_alone", |b| {
        b.iter(|| {
            let redactor = Redactor::new();
            redactor
                .register_all(values.iter().map(|(id, v)| (id, v)))
                .unwrap();
            redactor
        });
    });
    group.bench_function("open_to_ready_preloaded_resolver", |b| {
        // Each open appends one pre-load record to its audit log, which the
        // next open verifies: a few dozen records over a run, next to the
        // 10,000 secrets. (The audit directory cannot be emptied between
        // samples: an open refuses a state whose logs were deleted.)
        b.iter(|| {
            let secrets = Secrets::open(&config).unwrap();
            assert_eq!(secrets.report().preload.loaded_count(), SECRETS);
            secrets
        });
    });
    group.finish();
}

criterion_group!(benches, open);
criterion_main!(benches);
