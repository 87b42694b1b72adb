use super::*;
use crate::{
    AdminError, AdminRequest, ExposeSecret, KindSpec, Locator, MemoryAuditSink, MemoryProvider,
    Purpose, Requester, Scope, SecretAdmin, SecretBytes, SecretKind, SecretProvider, Version,
};

/// A catalog and the admin that changes it (recording to memory).
struct Fixture {
    catalog: Arc<Catalog>,
    admin: SecretAdmin,
}

impl std::ops::Deref for Fixture {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.catalog
    }
}

fn admin_of(catalog: Catalog) -> Fixture {
    let catalog = Arc::new(catalog);
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    Fixture { catalog, admin }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("catalog test").unwrap(),
    )
}

fn catalog() -> (Fixture, ProviderId) {
    let id = ProviderId::new("memory").unwrap();
    (
        admin_of(
            Catalog::new(MemoryCatalogStore::new())
                .with_provider(id.clone(), MemoryProvider::new()),
        ),
        id,
    )
}

fn value(text: &str) -> SecretBytes {
    SecretBytes::from(text.as_bytes().to_vec())
}

fn api_key(provider: &ProviderId) -> NewSecret {
    NewSecret::new(
        provider.clone(),
        Scope::new("workspace/acme").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    )
}

fn read(catalog: &Catalog, id: &HandleId) -> Result<Vec<u8>, CatalogError> {
    let entry = catalog.lookup(id)?;
    Ok(catalog.read_entry(&entry)?.value.expose_secret().to_vec())
}

#[test]
fn create_then_read_returns_the_value() {
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-create-1"), &by())
        .unwrap();
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-create-1");
    let entry = catalog.entry(handle.id()).unwrap();
    assert_eq!(entry.current, VersionPin::Pinned(Version::FIRST));
    assert_eq!(
        entry.locator.as_str(),
        format!("tyrum/workspace/acme/{}", handle.id().as_str())
    );
}

#[test]
fn rotation_moves_the_handle_and_keeps_the_old_version_until_retired() {
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-old-value"), &by())
        .unwrap();
    let grace = Duration::from_secs(60);
    let v2 = catalog
        .admin
        .rotate(
            handle.id(),
            &value("sk-new-value"),
            RotateOptions::default().retire_previous_after(grace),
            &by(),
        )
        .unwrap();
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-new-value");
    let entry = catalog.entry(handle.id()).unwrap();
    assert_eq!(entry.resolvable_versions(), vec![Version::FIRST, v2]);

    let p = catalog.provider(&provider).unwrap();
    assert!(
        p.read(&entry.locator, VersionSelector::Exact(Version::FIRST))
            .is_ok()
    );
    // Not yet due.
    assert_eq!(
        catalog
            .admin
            .retire_due_at(Timestamp::now(), &by())
            .unwrap(),
        0
    );
    let later = Timestamp::now().saturating_add(grace * 2);
    assert_eq!(catalog.admin.retire_due_at(later, &by()).unwrap(), 1);
    assert!(matches!(
        p.read(&entry.locator, VersionSelector::Exact(Version::FIRST)),
        Err(ProviderError::VersionNotFound { .. })
    ));
    assert!(catalog.entry(handle.id()).unwrap().retiring.is_empty());
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-new-value");
}

#[test]
fn zero_grace_retires_during_rotation() {
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-old-value"), &by())
        .unwrap();
    catalog
        .admin
        .rotate(
            handle.id(),
            &value("sk-new-value"),
            RotateOptions::default().retire_previous_after(Duration::ZERO),
            &by(),
        )
        .unwrap();
    let entry = catalog.entry(handle.id()).unwrap();
    let p = catalog.provider(&provider).unwrap();
    assert!(
        p.read(&entry.locator, VersionSelector::Exact(Version::FIRST))
            .is_err()
    );
    assert!(entry.retiring.is_empty());
}

#[test]
fn failed_publish_leaves_the_handle_on_the_old_version() {
    let id = ProviderId::new("small").unwrap();
    let catalog = admin_of(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(id.clone(), MemoryProvider::with_max_value_len(16)),
    );
    let handle = catalog
        .admin
        .create(api_key(&id), &value("sk-small-value"), &by())
        .unwrap();
    let err = catalog
        .admin
        .rotate(
            handle.id(),
            &value("sk-far-too-large-for-this-provider"),
            RotateOptions::default(),
            &by(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        AdminError::Provider {
            source: ProviderError::ValueTooLarge { .. },
            ..
        }
    ));
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-small-value");
}

#[test]
fn revoked_handle_fails_until_restored_and_rotation_does_not_unrevoke() {
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-revoke-me"), &by())
        .unwrap();
    catalog.admin.revoke(handle.id(), &by()).unwrap();
    assert!(matches!(
        read(&catalog, handle.id()),
        Err(CatalogError::Revoked { .. })
    ));
    catalog
        .admin
        .rotate(
            handle.id(),
            &value("sk-replacement"),
            RotateOptions::default(),
            &by(),
        )
        .unwrap();
    assert!(matches!(
        read(&catalog, handle.id()),
        Err(CatalogError::Revoked { .. })
    ));
    catalog.admin.restore(handle.id(), &by()).unwrap();
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-replacement");
}

#[test]
fn expired_handle_does_not_resolve() {
    let (catalog, provider) = catalog();
    let expiry = Timestamp::now().saturating_add(Duration::from_secs(3600));
    let spec = NewSecret::new(
        provider.clone(),
        Scope::new("web").unwrap(),
        KindSpec::session_cookie(expiry),
    );
    let handle = catalog
        .admin
        .create(spec, &value("session=abcdef0123"), &by())
        .unwrap();
    assert!(catalog.lookup_at(handle.id(), Timestamp::now()).is_ok());
    let after = expiry.saturating_add(Duration::from_millis(1));
    assert!(matches!(
        catalog.lookup_at(handle.id(), after),
        Err(CatalogError::Expired { .. })
    ));
    assert!(matches!(
        catalog.lookup_at(handle.id(), expiry),
        Err(CatalogError::Expired { .. })
    ));
}

#[test]
fn unknown_handle_and_unknown_provider_are_typed() {
    let (catalog, _) = catalog();
    let id = HandleId::generate().unwrap();
    assert!(matches!(
        catalog.lookup(&id),
        Err(CatalogError::UnknownHandle { .. })
    ));
    let spec = api_key(&ProviderId::new("nope").unwrap());
    assert!(matches!(
        catalog.admin.create(spec, &value("sk-whatever-1"), &by()),
        Err(AdminError::UnknownProvider { .. })
    ));
}

#[test]
fn import_follows_the_providers_latest_version() {
    let (catalog, provider) = catalog();
    let locator = Locator::new("external/key").unwrap();
    let p = catalog.provider(&provider).unwrap().clone();
    p.write(&locator, &value("sk-external-1")).unwrap();
    let handle = catalog
        .admin
        .import(api_key(&provider), locator.clone(), &by())
        .unwrap();
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-external-1");
    p.write(&locator, &value("sk-external-2")).unwrap();
    assert_eq!(read(&catalog, handle.id()).unwrap(), b"sk-external-2");
    let missing = Locator::new("external/missing").unwrap();
    assert!(matches!(
        catalog.admin.import(api_key(&provider), missing, &by()),
        Err(AdminError::Provider {
            source: ProviderError::NotFound { .. },
            ..
        })
    ));
}

#[test]
fn stale_compare_and_set_is_refused() {
    let store = MemoryCatalogStore::new();
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-cas-value"), &by())
        .unwrap();
    let entry = catalog.entry(handle.id()).unwrap();
    assert_eq!(store.compare_and_set(entry.clone(), None).unwrap(), 1);
    assert!(matches!(
        store.compare_and_set(entry.clone(), None),
        Err(CatalogError::Conflict { .. })
    ));
    assert_eq!(store.compare_and_set(entry.clone(), Some(1)).unwrap(), 2);
    assert!(matches!(
        store.compare_and_set(entry, Some(1)),
        Err(CatalogError::Conflict {
            actual: Some(2),
            ..
        })
    ));
}

#[test]
fn json_store_shares_revocation_between_catalogs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let provider = ProviderId::new("memory").unwrap();
    let shared: Arc<dyn SecretProvider> = Arc::new(MemoryProvider::new());
    let a = admin_of(
        Catalog::new(JsonFileCatalogStore::open(&path).unwrap())
            .with_shared_provider(provider.clone(), shared.clone()),
    );
    let b = admin_of(
        Catalog::new(JsonFileCatalogStore::open(&path).unwrap())
            .with_shared_provider(provider.clone(), shared),
    );
    let handle = a
        .admin
        .create(api_key(&provider), &value("sk-shared-value"), &by())
        .unwrap();
    assert_eq!(read(&b, handle.id()).unwrap(), b"sk-shared-value");
    a.admin.revoke(handle.id(), &by()).unwrap();
    assert!(matches!(
        read(&b, handle.id()),
        Err(CatalogError::Revoked { .. })
    ));
    b.admin.restore(handle.id(), &by()).unwrap();
    assert!(read(&a, handle.id()).is_ok());
}

#[cfg(unix)]
#[test]
fn json_store_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let (catalog, provider) = catalog();
    let store = JsonFileCatalogStore::open(&path).unwrap();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-private-1"), &by())
        .unwrap();
    store
        .compare_and_set(catalog.entry(handle.id()).unwrap(), None)
        .unwrap();
    for p in [path.clone(), dir.path().join("catalog.json.lock")] {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
}

#[test]
fn json_store_rejects_corrupt_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    for bad in [
        &b""[..],
        b"{",
        b"[]",
        br#"{"format":"other","version":1,"entries":{}}"#,
        br#"{"format":"tyrum-secrets-catalog","version":99,"entries":{}}"#,
    ] {
        std::fs::write(&path, bad).unwrap();
        assert!(
            matches!(
                JsonFileCatalogStore::open(&path),
                Err(CatalogError::Corrupt { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn json_store_lock_times_out_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let store = JsonFileCatalogStore::open(&path)
        .unwrap()
        .with_lock_timeout(Duration::from_millis(50));
    let holder = std::fs::File::open(dir.path().join("catalog.json.lock")).unwrap();
    holder.lock().unwrap();
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-locked-1"), &by())
        .unwrap();
    let entry = catalog.entry(handle.id()).unwrap();
    assert!(matches!(
        store.compare_and_set(entry.clone(), None),
        Err(CatalogError::Locked { .. })
    ));
    holder.unlock().unwrap();
    assert!(store.compare_and_set(entry, None).is_ok());
}

#[test]
fn last_resolved_is_written_at_most_once_per_granule() {
    let (catalog, provider) = catalog();
    let handle = catalog
        .admin
        .create(api_key(&provider), &value("sk-hot-secret"), &by())
        .unwrap();
    let t0 = Timestamp::now();
    catalog.mark_resolved(handle.id(), t0).unwrap();
    let first = catalog.entry(handle.id()).unwrap();
    assert_eq!(first.last_resolved_at, Some(t0));
    catalog
        .mark_resolved(handle.id(), t0.saturating_add(Duration::from_secs(1)))
        .unwrap();
    let second = catalog.entry(handle.id()).unwrap();
    assert_eq!(
        second.revision, first.revision,
        "a resolve within the granule wrote"
    );
    let later = t0.saturating_add(LAST_RESOLVED_GRANULARITY);
    catalog.mark_resolved(handle.id(), later).unwrap();
    assert_eq!(
        catalog.entry(handle.id()).unwrap().last_resolved_at,
        Some(later)
    );
}

#[test]
fn session_cookie_entry_without_expiry_does_not_resolve() {
    // KindSpec refuses a session cookie without an expiry, but an entry can
    // still arrive without one from a store (a hand-edited catalog file, a
    // gateway state store). It must fail closed, not resolve forever.
    let (catalog, provider) = catalog();
    let spec = NewSecret::new(
        provider,
        Scope::new("web").unwrap(),
        KindSpec::session_cookie(Timestamp::now().saturating_add(Duration::from_secs(3600))),
    );
    let handle = catalog
        .admin
        .create(spec, &value("session=abc123def456"), &by())
        .unwrap();
    assert!(read(&catalog, handle.id()).is_ok());
    let mut entry = catalog.entry(handle.id()).unwrap();
    let revision = entry.revision;
    entry.expires_at = None;
    catalog
        .store()
        .compare_and_set(entry, Some(revision))
        .unwrap();
    assert!(matches!(
        catalog.lookup(handle.id()),
        Err(CatalogError::Invalid { .. })
    ));
}

#[test]
fn json_store_errors_never_quote_the_file() {
    // A catalog path pointed at the wrong file (a credentials file, a
    // secret dumped as a JSON string) must not copy its content into an
    // error that ends up in logs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    for bad in [
        r#""sk-live-CANARY-0123456789""#,
        r#"{"format":"sk-live-CANARY-0123456789","version":1,"entries":{}}"#,
        r#"{"format":"tyrum-secrets-catalog","version":"sk-live-CANARY-0123456789","entries":{}}"#,
        r#"{"format":"tyrum-secrets-catalog","version":1,"entries":{"sk-live-CANARY-0123456789":{}}}"#,
        r#"["sk-live-CANARY-0123456789"]"#,
    ] {
        std::fs::write(&path, bad).unwrap();
        let err = JsonFileCatalogStore::open(&path).unwrap_err();
        assert!(matches!(err, CatalogError::Corrupt { .. }), "{bad}");
        let message = format!("{err} {err:?}");
        assert!(!message.contains("CANARY"), "{message}");
    }
}
