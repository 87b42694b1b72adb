//! Edits made outside the store, and keys: an edited status, scope or
//! label, another key, and no key in any error or `Debug`.

use super::*;

#[test]
fn an_edit_that_un_revokes_an_entry_is_refused_never_believed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    let id = create_and_revoke(&store);
    assert!(is_revoked(&store, &id));

    un_revoke_by_hand(&path);
    // The running store sees the changed file and refuses it...
    let err = store.get(&id).unwrap_err();
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
    // ...and so does a new one.
    let err = open(&path, &anchor).unwrap_err();
    assert!(
        matches!(err, CatalogError::Tampered { ref path } if path.ends_with("catalog.json")),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("catalog.json") && text.contains("restore"),
        "{text}"
    );
    assert!(
        !text.contains(id.as_str()),
        "the message quotes nothing from the file: {text}"
    );
    // The plain store does not read it as a catalog either.
    assert!(matches!(
        JsonFileCatalogStore::open(&path),
        Err(CatalogError::Corrupt { .. })
    ));
}

#[test]
fn an_edited_scope_or_label_is_refused_like_an_edited_status() {
    type Edit = (&'static str, fn(&mut CatalogEntry));
    let edits: [Edit; 4] = [
        ("status", |e| e.status = EntryStatus::Active),
        ("scope", |e| {
            let h = e.handle.clone();
            e.handle = SecretHandle::new(
                h.id().clone(),
                h.provider().clone(),
                Scope::new("prod").unwrap(),
                h.kind(),
            );
        }),
        ("label value", |e| {
            e.labels.insert("team".into(), "attacker".into());
        }),
        ("label removed", |e| e.labels.clear()),
    ];
    for (what, edit) in edits {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        let anchor = MemoryAnchor::new();
        let store = open(&path, &anchor).unwrap();
        let mut e = entry();
        e.labels.insert("team".into(), "payments".into());
        let id = e.id().clone();
        let revision = store.compare_and_set(e.clone(), None).unwrap();
        e.status = EntryStatus::Revoked {
            at: Timestamp::now(),
            reason: "leaked".into(),
        };
        e.revision = revision;
        store.compare_and_set(e, Some(revision)).unwrap();
        let before = std::fs::read(&path).unwrap();

        edit_entries(&path, edit);
        assert_ne!(std::fs::read(&path).unwrap(), before, "{what}: no edit");
        for err in [
            store.get(&id).unwrap_err(),
            open(&path, &anchor).unwrap_err(),
        ] {
            assert!(
                matches!(err, CatalogError::Tampered { .. }),
                "{what}: {err}"
            );
            assert_no_key(&format!("{err} {err:?}"));
        }
        // Nothing of the edited file is served, not even other entries.
        assert!(store.list().is_err(), "{what}");

        // The same file put back exactly opens again: what was refused is
        // the edit, not the way the test rewrote the file.
        std::fs::write(&path, &before).unwrap();
        assert!(is_revoked(&open(&path, &anchor).unwrap(), &id), "{what}");
    }
}

#[test]
fn another_key_does_not_authenticate_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    create_and_revoke(&store);
    let other = CatalogKey::new(SecretBytes::from(vec![0xa5; 32])).unwrap();
    let err = JsonFileCatalogStore::open_authenticated(&path, other, anchor.anchor()).unwrap_err();
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
    assert_no_key(&format!("{err} {err:?}"));
    let short = CatalogKey::new(SecretBytes::from(vec![0x5a; 31])).unwrap_err();
    assert!(matches!(short, CatalogError::Invalid { .. }), "{short}");
    assert_no_key(&format!("{short} {short:?}"));
}

#[test]
fn key_and_store_debug_show_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let store = open(&path, &MemoryAnchor::new()).unwrap();
    let text = format!("{:?} {store:?}", key());
    assert!(!text.contains("5a5a") && !text.contains("90, 90"), "{text}");
    assert!(text.contains("authenticated: true"), "{text}");
}

#[test]
fn a_key_in_the_provider_is_made_once_then_read_and_never_made_again_unasked() {
    use crate::MemoryProvider;
    use crate::provider::{Locator, ProviderError, SecretProvider};
    let provider = MemoryProvider::new();
    let at = Locator::new("tyrum-secrets-internal/catalog-key").unwrap();
    let missing = CatalogKey::in_provider(&provider, &at, false).unwrap_err();
    assert!(
        matches!(
            missing,
            CatalogError::Provider(ProviderError::NotFound { .. })
        ),
        "{missing}"
    );
    assert!(provider.list().unwrap().is_empty(), "nothing was made");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let made = CatalogKey::in_provider(&provider, &at, true).unwrap();
    let id = create_and_revoke(
        &JsonFileCatalogStore::open_authenticated(&path, made, anchor.anchor()).unwrap(),
    );
    // Read back (`create` or not), it is the same key: the catalog opens.
    for create in [false, true] {
        let read = CatalogKey::in_provider(&provider, &at, create).unwrap();
        let store = JsonFileCatalogStore::open_authenticated(&path, read, anchor.anchor()).unwrap();
        assert!(is_revoked(&store, &id));
    }
    assert_eq!(provider.list().unwrap().len(), 1);

    provider
        .write(&at, &SecretBytes::from(vec![0x5a; 16]))
        .unwrap();
    let short = CatalogKey::in_provider(&provider, &at, true).unwrap_err();
    assert!(matches!(short, CatalogError::Invalid { .. }), "{short}");
    assert_no_key(&format!("{short} {short:?}"));
}
