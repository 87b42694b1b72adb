//! Canary leak tests: for every public type that can reach a secret value,
//! `{:?}`, `{:#?}`, `{}` where implemented, serde_json output and files on
//! disk never contain the value.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::fmt::Debug;
use std::sync::Arc;

use proptest::prelude::*;
use tyrum_secrets::{
    AdminError, AdminRequest, AuditChainKey, Catalog, CatalogError, HandleId, JsonFileCatalogStore,
    JsonLinesAuditSink, KindSpec, Locator, MemoryProvider, NewSecret, ProviderError, ProviderId,
    Purpose, Requester, RotateOptions, Scope, SecretAdmin, SecretBytes, SecretKind, SecretProvider,
    SecretString, VersionSelector, bytes_from_string, string_from_bytes,
};
use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

const CANARY: &str = "CANARY-7Qx9-sk-live-e1f0d2c3b4a5";

fn assert_clean(what: &str, text: &str, canary: &str) {
    assert!(!text.contains(canary), "{what} leaks the canary: {text}");
}

fn assert_debug_clean<T: Debug + ?Sized>(what: &str, value: &T, canary: &str) {
    assert_clean(what, &format!("{value:?}"), canary);
    assert_clean(what, &format!("{value:#?}"), canary);
}

fn secret(canary: &str) -> SecretBytes {
    SecretBytes::from(canary.as_bytes().to_vec())
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("leak test").unwrap(),
    )
}

/// A JSON-file catalog holding one handle created with `canary` and rotated,
/// through an admin that records to an audit file in `dir`.
fn catalog_with_canary(
    canary: &str,
    dir: &std::path::Path,
) -> (Arc<Catalog>, SecretAdmin, HandleId) {
    let provider = ProviderId::new("memory").unwrap();
    let shared: Arc<dyn SecretProvider> = Arc::new(MemoryProvider::new());
    let catalog = Arc::new(
        Catalog::new(JsonFileCatalogStore::open(dir.join("catalog.json")).unwrap())
            .with_shared_provider(provider.clone(), shared),
    );
    let key = AuditChainKey::new(SecretBytes::from(vec![7u8; 32])).unwrap();
    let sink = JsonLinesAuditSink::open(dir.join("audit.jsonl"), key).unwrap();
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(sink))
        .build()
        .unwrap();
    let spec = NewSecret::new(
        provider,
        Scope::new("leak").unwrap(),
        KindSpec::new(SecretKind::Password, None).unwrap(),
    );
    let handle = admin.create(spec, &secret(canary), &by()).unwrap();
    admin
        .rotate(
            handle.id(),
            &secret(&format!("{canary}-rotated")),
            RotateOptions::default(),
            &by(),
        )
        .unwrap();
    (catalog, admin, handle.id().clone())
}

#[test]
fn secret_values_never_print() {
    let bytes = secret(CANARY);
    assert_debug_clean("SecretBytes", &bytes, CANARY);
    let string = SecretString::from(CANARY);
    assert_debug_clean("SecretString", &string, CANARY);
    assert_debug_clean("bytes_from_string", &bytes_from_string(&string), CANARY);
    assert_debug_clean("string_from_bytes", &string_from_bytes(&bytes), CANARY);
}

#[test]
fn provider_debug_and_reads_never_print_values() {
    let provider = MemoryProvider::new();
    let locator = Locator::new("leak/test").unwrap();
    provider.write(&locator, &secret(CANARY)).unwrap();
    assert_debug_clean("MemoryProvider", &provider, CANARY);
    let read = provider.read(&locator, VersionSelector::Latest).unwrap();
    assert_debug_clean("VersionedSecret", &read, CANARY);
    let faulty = FaultyProvider::new(provider, FaultPlan::none());
    assert_debug_clean("FaultyProvider", &faulty, CANARY);
}

#[test]
fn catalog_state_handles_and_files_never_hold_values() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, admin, id) = catalog_with_canary(CANARY, dir.path());
    assert_debug_clean("Catalog", &catalog, CANARY);
    assert_debug_clean("SecretAdmin", &admin, CANARY);
    admin.revoke(&id, &by()).unwrap();
    admin.set_label(&id, "owner", Some("ops"), &by()).unwrap();
    let listed = admin.list().unwrap();
    assert_debug_clean("SecretAdmin::list", &listed, CANARY);
    let entry = catalog.entry(&id).unwrap();
    assert_debug_clean("CatalogEntry", &entry, CANARY);
    assert_clean(
        "CatalogEntry json",
        &serde_json::to_string(&entry).unwrap(),
        CANARY,
    );
    assert_debug_clean("SecretHandle", &entry.handle, CANARY);
    assert_clean("SecretHandle Display", &entry.handle.to_string(), CANARY);
    assert_clean(
        "SecretHandle json",
        &serde_json::to_string(&entry.handle).unwrap(),
        CANARY,
    );
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert_clean(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
            CANARY,
        );
    }
}

#[test]
fn errors_never_carry_values() {
    // A value too large for the provider.
    let small = MemoryProvider::with_max_value_len(8);
    let err = small
        .write(&Locator::new("x").unwrap(), &secret(CANARY))
        .unwrap_err();
    assert!(matches!(err, ProviderError::ValueTooLarge { .. }));
    assert_debug_clean("ProviderError", &err, CANARY);
    assert_clean("ProviderError Display", &err.to_string(), CANARY);

    // A canary pasted where a handle belongs.
    for text in [
        CANARY.to_owned(),
        format!("secret:{CANARY}!"),
        format!("secret:{CANARY}{CANARY}{CANARY}"),
        format!("secret:{}", &CANARY[..20]),
    ] {
        let err = text.parse::<HandleId>().unwrap_err();
        assert_debug_clean("HandleParseError", &err, CANARY);
        assert_clean("HandleParseError Display", &err.to_string(), &CANARY[..8]);
    }

    // Catalog errors on a handle whose value is the canary.
    let dir = tempfile::tempdir().unwrap();
    let (catalog, admin, id) = catalog_with_canary(CANARY, dir.path());
    admin.revoke(&id, &by()).unwrap();
    let err = catalog.lookup(&id).unwrap_err();
    assert!(matches!(err, CatalogError::Revoked { .. }));
    assert_debug_clean("CatalogError", &err, CANARY);
    assert_clean("CatalogError Display", &err.to_string(), CANARY);

    // Admin errors carrying a value's refusal: too short to mask, and too
    // large for the provider.
    let short = &CANARY[..6];
    let err = admin
        .rotate(&id, &secret(short), RotateOptions::default(), &by())
        .unwrap_err();
    assert!(matches!(err, AdminError::Redaction { .. }));
    assert_debug_clean("AdminError", &err, short);
    assert_clean("AdminError Display", &err.to_string(), short);
    let small = Arc::new(
        Catalog::new(tyrum_secrets::MemoryCatalogStore::new()).with_provider(
            ProviderId::new("memory").unwrap(),
            MemoryProvider::with_max_value_len(8),
        ),
    );
    let small_admin = SecretAdmin::builder(small, Arc::new(tyrum_secrets::MemoryAuditSink::new()))
        .build()
        .unwrap();
    let spec = NewSecret::new(
        ProviderId::new("memory").unwrap(),
        Scope::new("leak").unwrap(),
        KindSpec::new(SecretKind::Password, None).unwrap(),
    );
    let err = small_admin
        .create(spec, &secret(CANARY), &by())
        .unwrap_err();
    assert!(matches!(err, AdminError::Provider { .. }));
    assert_debug_clean("AdminError", &err, CANARY);
    assert_clean("AdminError Display", &err.to_string(), CANARY);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_value_reaches_debug_json_or_disk(value in "[A-Za-z0-9+/=_-]{16,64}") {
        let canary = format!("CANARY{value}");
        let dir = tempfile::tempdir().unwrap();
        let (catalog, admin, id) = catalog_with_canary(&canary, dir.path());
        let entry = catalog.entry(&id).unwrap();
        let outputs = [
            format!("{catalog:?}"),
            format!("{admin:?}"),
            format!("{entry:?}"),
            serde_json::to_string(&entry).unwrap(),
            std::fs::read_to_string(dir.path().join("catalog.json")).unwrap(),
            std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap(),
        ];
        for output in outputs {
            prop_assert!(!output.contains(&canary));
        }
    }
}
