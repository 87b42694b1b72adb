//! `Secrets::open` on the desktop profile against the real Secret Service
//! (gnome-keyring) and the real kernel keyring: values and audit keys in the
//! keychain, catalog and audit log in the state directory, a reopen that
//! pre-loads and verifies; anchors in the keychain that catch a directory
//! rolled back whole.

#![cfg(all(feature = "keychain", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use tyrum_secrets::config::KeychainStore;
use tyrum_secrets::{Config, Creation, ExposeSecret, Profile, Secrets};

/// The namespace `scripts/with-services` cleans up after a run.
const NAMESPACE: &str = "tyrum-conformance";

fn config(setup: &support::Setup, store: KeychainStore) -> Config {
    let mut config = Config::default();
    config.profile = Some(Profile::Desktop);
    config.state_dir = Some(setup.state_dir());
    config.policy_file = Some(setup.dir().join("policy.json"));
    config.keychain.store = store;
    config.keychain.namespace = NAMESPACE.to_owned();
    config
}

fn opens_resolves_and_reopens(store: KeychainStore, value: &[u8]) -> Secrets {
    let setup = support::Setup::new();
    let secrets = Secrets::open(&config(&setup, store)).unwrap();
    let created = &secrets.report().created;
    assert!(created.contains(&Creation::Catalog(setup.state_dir().join("catalog.json"))));
    assert!(
        !created.iter().any(|c| matches!(c, Creation::KeyFile(_))),
        "the audit keys belong in the keychain: {created:?}"
    );
    let handle = support::create_in(&secrets, "keychain", value);
    let resolved = secrets
        .resolver()
        .resolve(handle.id(), &support::request())
        .unwrap();
    assert_eq!(resolved.expose_secret(), value);
    drop(secrets);

    let again = Secrets::open(&config(&setup, store)).unwrap();
    assert!(again.report().created.is_empty());
    assert_eq!(
        again.report().preload.loaded_count(),
        1,
        "{}",
        again.report()
    );
    let text = String::from_utf8(value.to_vec()).unwrap();
    assert_eq!(
        again.redactor().redact_str(&text).into_inner(),
        format!("[{}]", handle.id())
    );
    // The chain key came back from the keychain: the first open's log verifies.
    let logs = again.verify_audit().unwrap();
    assert!(logs.iter().any(|(_, n)| *n >= 1), "{logs:?}");
    again
}

#[test]
#[ignore = "needs a Secret Service (gnome-keyring); run scripts/test"]
fn desktop_opens_on_the_secret_service() {
    assert!(
        std::env::var_os("TYRUM_TEST_SECRET_SERVICE").is_some(),
        "no Secret Service was started for this test; run scripts/test"
    );
    let secrets =
        opens_resolves_and_reopens(KeychainStore::SecretService, b"sk-desktop-secret-service-1");
    assert!(
        secrets.report().notes.is_empty(),
        "{:?}",
        secrets.report().notes
    );
}

#[test]
#[ignore = "needs a kernel session keyring (keyctl session -); run scripts/test"]
fn desktop_opens_on_the_kernel_keyring_and_warns_it_forgets() {
    assert!(
        std::env::var_os("TYRUM_TEST_KEYUTILS").is_some(),
        "no fresh kernel session keyring was set up for this test; run scripts/test"
    );
    let secrets = opens_resolves_and_reopens(KeychainStore::Keyutils, b"sk-desktop-keyutils-2");
    let notes = &secrets.report().notes;
    assert!(notes.iter().any(|n| n.contains("reboot")), "{notes:?}");
}

/// Copies the directory `from` to `to` (files and directories only).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn keyutils_ready() {
    assert!(
        std::env::var_os("TYRUM_TEST_KEYUTILS").is_some(),
        "no fresh kernel session keyring was set up for this test; run scripts/test"
    );
}

#[test]
#[ignore = "needs a kernel session keyring (keyctl session -); run scripts/test"]
fn desktop_refuses_an_audit_directory_rolled_back_whole_against_its_keychain_anchor() {
    keyutils_ready();
    let setup = support::Setup::new();
    let config = config(&setup, KeychainStore::Keyutils);
    let secrets = Secrets::open(&config).unwrap();
    assert!(
        secrets.report().audit_anchor.contains("keychain"),
        "the desktop keeps its audit anchors in the keychain: {}",
        secrets.report()
    );
    let handle = support::create_in(&secrets, "keychain", b"sk-desktop-rollback-3");
    drop(secrets);
    // The audit directory as a backup holds it: logs and anything beside them.
    let audit = setup.state_dir().join("audit");
    let backup = setup.dir().join("audit-backup");
    copy_dir(&audit, &backup);
    let secrets = Secrets::open(&config).unwrap();
    secrets
        .resolver()
        .resolve(handle.id(), &support::request())
        .unwrap();
    drop(secrets);

    std::fs::remove_dir_all(&audit).unwrap();
    copy_dir(&backup, &audit);
    let before = support::snapshot(setup.dir());
    let err = Secrets::open(&config).unwrap_err();
    let tyrum_secrets::OpenError::AuditCutShort {
        anchor,
        anchored,
        found,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(anchor.contains("keychain"), "{err}");
    assert!(anchored > found, "{err}");
    assert_eq!(before, support::snapshot(setup.dir()));
}

#[cfg(feature = "file")]
#[test]
#[ignore = "needs a kernel session keyring (keyctl session -); run scripts/test"]
fn single_host_with_keychain_anchors_refuses_its_state_dir_rolled_back_whole() {
    keyutils_ready();
    let setup = support::Setup::new();
    let mut config = setup.config();
    config.keychain.store = KeychainStore::Keyutils;
    config.keychain.namespace = NAMESPACE.to_owned();
    config.file.anchor = tyrum_secrets::config::AnchorPlace::Keychain;
    config.audit.anchor = Some(tyrum_secrets::config::AnchorPlace::Keychain);
    let open = || {
        Secrets::open_with(
            &config,
            tyrum_secrets::OpenOptions::new().dangerous_insecure_kdf_for_tests(),
        )
    };
    let secrets = open().unwrap();
    for anchor in [
        Some(&secrets.report().audit_anchor),
        secrets.report().store_anchor.as_ref(),
    ] {
        assert!(anchor.unwrap().contains("keychain"), "{}", secrets.report());
    }
    setup.create(&secrets, b"sk-keychain-anchor-first");
    drop(secrets);
    let backup = setup.dir().join("backup");
    copy_dir(&setup.state_dir(), &backup);
    let secrets = open().unwrap();
    setup.create(&secrets, b"sk-keychain-anchor-second");
    drop(secrets);

    std::fs::remove_dir_all(setup.state_dir()).unwrap();
    copy_dir(&backup, &setup.state_dir());
    let before = support::snapshot(setup.dir());
    let err = open().unwrap_err();
    assert!(
        matches!(
            &err,
            tyrum_secrets::OpenError::StoreAnchor {
                source: tyrum_secrets::AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("keychain"), "{err}");
    assert_eq!(before, support::snapshot(setup.dir()));
}

#[cfg(feature = "file")]
#[test]
#[ignore = "needs a kernel session keyring (keyctl session -); run scripts/test"]
fn a_failed_first_open_removes_the_anchors_it_made_in_the_keychain() {
    use std::sync::Arc;
    use tyrum_secrets::keychain::{KeychainProvider, stores};
    use tyrum_secrets::{AuditError, AuditRecord, AuditSink, SecretProvider, Version};

    #[derive(Debug)]
    struct Refusing;
    impl AuditSink for Refusing {
        fn record(&self, _: AuditRecord) -> Result<(), AuditError> {
            Err(AuditError::rejected("refused by the test"))
        }
    }

    keyutils_ready();
    let setup = support::Setup::new();
    // A namespace of its own, so what this test finds there is its own.
    let namespace = format!("tyrum-failed-open-{}", std::process::id());
    let mut config = setup.config();
    config.keychain.store = KeychainStore::Keyutils;
    config.keychain.namespace = namespace.clone();
    config.file.anchor = tyrum_secrets::config::AnchorPlace::Keychain;
    config.audit.anchor = Some(tyrum_secrets::config::AnchorPlace::Keychain);
    // The store and the log (and their anchors) are made; then the
    // pre-load's record is refused, and the open fails.
    let err = Secrets::open_with(
        &config,
        tyrum_secrets::OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .audit_layer(|_| Arc::new(Refusing) as Arc<dyn AuditSink>),
    )
    .unwrap_err();
    assert!(err.to_string().contains("refused by the test"), "{err}");
    assert!(!setup.state_dir().exists());

    let keychain = KeychainProvider::builder(stores::kernel_keyutils().unwrap())
        .namespace(namespace)
        .build()
        .unwrap();
    let left = keychain.list().unwrap();
    for locator in &left {
        for n in 1..=16 {
            let _ = keychain.destroy(locator, Version::new(n).unwrap());
        }
    }
    assert!(left.is_empty(), "the failed open left {left:?}");
}

#[test]
#[ignore = "needs a kernel session keyring (keyctl session -); run scripts/test"]
fn desktop_refuses_a_catalog_edited_to_un_revoke_a_handle() {
    keyutils_ready();
    let setup = support::Setup::new();
    let config = config(&setup, KeychainStore::Keyutils);
    let secrets = Secrets::open(&config).unwrap();
    let anchor = secrets.report().catalog_anchor.clone().unwrap();
    assert!(anchor.contains("keychain"), "{anchor}");
    let handle = support::create_in(&secrets, "keychain", b"sk-desktop-revoked-4");
    secrets
        .admin()
        .revoke(handle.id(), &support::operator())
        .unwrap();
    drop(secrets);
    let catalog = setup.state_dir().join("catalog.json");
    support::un_revoke(&catalog);
    let err = Secrets::open(&config).unwrap_err();
    assert!(
        matches!(&err, tyrum_secrets::OpenError::CatalogTampered { key, .. } if key.contains("keychain")),
        "{err:?}"
    );
}
