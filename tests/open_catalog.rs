//! The catalog `Secrets::open` keeps in the state directory is
//! authenticated: an edit (a revoked handle set active) or an older copy
//! put back is refused, never believed; a plain catalog from before is
//! upgraded once, on record, and never after its key or anchor exists.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::time::Duration;

use support::{Setup, make_plain, operator, snapshot, un_revoke};
use tyrum_secrets::{
    AdminRequest, ExposeSecret, OpenError, OpenOptions, Purpose, Recovery, Requester,
    RotateOptions, SecretBytes, Secrets,
};

fn catalog(setup: &Setup) -> std::path::PathBuf {
    setup.state_dir().join("catalog.json")
}

fn alice() -> AdminRequest {
    AdminRequest::new(
        Requester::new("alice").unwrap(),
        Purpose::new("restored the catalog from a backup").unwrap(),
    )
}

#[test]
fn a_first_open_makes_the_catalog_authenticated_from_the_start() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let anchor = secrets.report().catalog_anchor.clone().unwrap();
    assert!(anchor.contains("catalog.json.anchor"), "{anchor}");
    assert!(
        secrets
            .report()
            .to_string()
            .contains("catalog authenticated and anchored in"),
        "{}",
        secrets.report()
    );
    assert!(secrets.report().recovered.is_empty());
    drop(secrets);
    let text = std::fs::read_to_string(catalog(&setup)).unwrap();
    assert!(text.contains("\"mac\""), "{text}");
    // The key is in the store, not beside the catalog.
    assert!(!setup.state_dir().join("catalog.key").exists());
    let again = setup.open().unwrap();
    assert!(again.report().recovered.is_empty(), "{}", again.report());
}

#[test]
fn an_edit_that_un_revokes_a_handle_is_refused_at_open_and_changes_nothing() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-revoked-after-leak-01");
    secrets.admin().revoke(handle.id(), &operator()).unwrap();
    assert!(
        secrets
            .resolver()
            .resolve(handle.id(), &setup.request())
            .is_err()
    );
    drop(secrets);
    un_revoke(&catalog(&setup));
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    assert!(
        matches!(&err, OpenError::CatalogTampered { catalog: c, .. } if *c == catalog(&setup)),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("catalog.json"), "{message}");
    assert!(message.contains("restore the newest copy"), "{message}");
    assert!(!message.contains("sk-revoked"), "{message}");
    assert_eq!(
        before,
        snapshot(setup.dir()),
        "a refused open changed files"
    );
    // Accepting a rollback never covers an edit.
    let err = Secrets::open_with(
        &setup.config(),
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .accept_rollback(alice()),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::CatalogTampered { .. }), "{err:?}");
}

#[test]
fn an_edit_while_open_fails_the_resolve_closed() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-revoked-while-open-1");
    secrets.admin().revoke(handle.id(), &operator()).unwrap();
    un_revoke(&catalog(&setup));
    let resolved = secrets.resolver().resolve(handle.id(), &setup.request());
    let err = resolved.map(drop).unwrap_err().to_string();
    assert!(err.contains("does not authenticate"), "{err}");
    assert!(!err.contains("sk-revoked"), "{err}");
}

#[test]
fn an_older_copy_of_the_catalog_alone_is_refused() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-revoked-later-00001");
    drop(secrets);
    let old = std::fs::read(catalog(&setup)).unwrap();
    let secrets = setup.open().unwrap();
    secrets.admin().revoke(handle.id(), &operator()).unwrap();
    drop(secrets);
    std::fs::write(catalog(&setup), &old).unwrap();
    let err = setup.open().unwrap_err();
    match &err {
        OpenError::CatalogAnchor {
            catalog: c, anchor, ..
        } => {
            assert_eq!(*c, catalog(&setup));
            assert!(anchor.contains("catalog.json.anchor"), "{anchor}");
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("accept_rollback"), "{message}");
    assert!(message.contains("older than its anchor"), "{message}");
}

/// Review 1, #3: older copies of the store and the catalog put back after
/// a rotation destroyed a leaked value must not bring the value back.
#[test]
fn rolled_back_store_and_catalog_do_not_resurrect_a_destroyed_version() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-leaked-old-value-0001");
    drop(secrets);
    let state = setup.state_dir();
    let store = state.join("secrets.tyrum");
    let old_store = std::fs::read(&store).unwrap();
    let old_catalog = std::fs::read(catalog(&setup)).unwrap();

    let secrets = setup.open().unwrap();
    secrets
        .admin()
        .rotate(
            handle.id(),
            &SecretBytes::from(b"sk-fresh-new-value-00002".to_vec()),
            RotateOptions::default().retire_previous_after(Duration::ZERO),
            &operator(),
        )
        .unwrap();
    let now = secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    assert_eq!(now.expose_secret(), b"sk-fresh-new-value-00002");
    drop(now);
    drop(secrets);

    std::fs::write(&store, &old_store).unwrap();
    std::fs::write(catalog(&setup), &old_catalog).unwrap();
    match setup.open() {
        Err(err) => assert!(
            matches!(
                err,
                OpenError::StoreAnchor { .. } | OpenError::CatalogAnchor { .. }
            ),
            "{err:?}"
        ),
        Ok(secrets) => {
            let value = secrets
                .resolver()
                .resolve(handle.id(), &setup.request())
                .unwrap();
            panic!(
                "rolled-back state opened; the destroyed value resolves again: {}",
                String::from_utf8_lossy(value.expose_secret())
            );
        }
    }
}

#[test]
fn a_plain_catalog_with_its_key_in_the_store_is_a_downgrade_refused() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-revoked-downgraded-1");
    secrets.admin().revoke(handle.id(), &operator()).unwrap();
    drop(secrets);
    // Strip the MAC, set the entry active, and delete the anchor: only the
    // key in the store is left to say the catalog was authenticated.
    make_plain(&catalog(&setup));
    un_revoke(&catalog(&setup));
    std::fs::remove_file(setup.state_dir().join("catalog.json.anchor")).unwrap();
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    assert!(
        matches!(&err, OpenError::CatalogDowngraded { evidence, .. } if evidence.contains("secrets.tyrum")),
        "{err:?}"
    );
    assert!(err.to_string().contains("carries no MAC"), "{err}");
    assert_eq!(before, snapshot(setup.dir()));

    // Accepted knowingly, it is on record and sealed; later opens are
    // ordinary.
    let accepted = Secrets::open_with(
        &setup.config(),
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .accept_rollback(alice()),
    )
    .unwrap();
    assert!(
        matches!(
            accepted.report().recovered.as_slice(),
            [Recovery::CatalogAccepted { refusal, .. }] if refusal.contains("no MAC")
        ),
        "{:?}",
        accepted.report().recovered
    );
    let log = std::fs::read_to_string(&accepted.report().audit_log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("accept_rollback") && l.contains("alice")),
        "{log}"
    );
    drop(accepted);
    let again = setup.open().unwrap();
    assert!(again.report().recovered.is_empty(), "{}", again.report());
}

#[cfg(feature = "env")]
mod kubernetes {
    use super::*;
    use tyrum_secrets::{Config, Creation, Profile};

    fn config(setup: &Setup) -> Config {
        let volume = setup.dir().join("volume");
        std::fs::create_dir_all(&volume).unwrap();
        let mut config = Config::default();
        config.profile = Some(Profile::Kubernetes);
        config.state_dir = Some(setup.state_dir());
        config.policy_file = Some(setup.dir().join("policy.json"));
        config.kubernetes.mounted_dir = Some(volume);
        config
    }

    #[test]
    fn kubernetes_keeps_the_catalog_key_in_the_state_dir_and_opens_again() {
        let setup = Setup::new();
        let secrets = Secrets::open(&config(&setup)).unwrap();
        let key = setup.state_dir().join("catalog.key");
        assert!(
            secrets
                .report()
                .created
                .contains(&Creation::KeyFile(key.clone())),
            "{:?}",
            secrets.report().created
        );
        let notes = &secrets.report().notes;
        assert!(
            notes
                .iter()
                .any(|n| n.contains("catalog.key") && n.contains("catalog_key_file")),
            "{notes:?}"
        );
        drop(secrets);
        let again = Secrets::open(&config(&setup)).unwrap();
        assert!(again.report().recovered.is_empty(), "{}", again.report());
        drop(again);
        // A later run without the key is refused, not re-keyed.
        std::fs::remove_file(&key).unwrap();
        let err = Secrets::open(&config(&setup)).unwrap_err();
        assert!(
            matches!(&err, OpenError::CatalogKeyMissing { key: k, .. } if k.contains("catalog.key")),
            "{err:?}"
        );
    }

    #[test]
    fn a_configured_catalog_key_file_is_used_and_required_after() {
        let setup = Setup::new();
        let secret_dir = setup.dir().join("mounted-secret");
        std::fs::create_dir(&secret_dir).unwrap();
        let key = secret_dir.join("catalog-key");
        let mut config = config(&setup);
        config.catalog_key_file = Some(key.clone());
        let secrets = Secrets::open(&config).unwrap();
        assert!(
            secrets
                .report()
                .created
                .contains(&Creation::KeyFile(key.clone())),
            "{:?}",
            secrets.report().created
        );
        assert!(
            !secrets
                .report()
                .notes
                .iter()
                .any(|n| n.contains("catalog.key")),
            "{:?}",
            secrets.report().notes
        );
        drop(secrets);
        assert!(!setup.state_dir().join("catalog.key").exists());
        assert_eq!(
            std::fs::read(&key).unwrap().len(),
            65,
            "64 hex digits and a newline"
        );
        drop(Secrets::open(&config).unwrap());
        // Another key in its place does not authenticate the catalog.
        std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
        let err = Secrets::open(&config).unwrap_err();
        assert!(
            matches!(&err, OpenError::CatalogTampered { key: k, .. } if k.contains("catalog_key_file")),
            "{err:?}"
        );
    }

    #[test]
    fn a_plain_catalog_from_before_is_upgraded_once_with_a_report_note() {
        let setup = Setup::new();
        drop(Secrets::open(&config(&setup)).unwrap());
        // The state as a version before authentication left it: a plain
        // catalog, no catalog key, no catalog anchor.
        make_plain(&catalog(&setup));
        std::fs::remove_file(setup.state_dir().join("catalog.key")).unwrap();
        std::fs::remove_file(setup.state_dir().join("catalog.json.anchor")).unwrap();

        let secrets = Secrets::open(&config(&setup)).unwrap();
        assert_eq!(
            secrets.report().recovered,
            vec![Recovery::CatalogUpgraded(catalog(&setup))]
        );
        assert!(
            secrets
                .report()
                .to_string()
                .contains("upgraded the catalog"),
            "{}",
            secrets.report()
        );
        let log = std::fs::read_to_string(&secrets.report().audit_log).unwrap();
        assert!(
            log.lines()
                .any(|l| l.contains("accept_rollback") && l.contains("catalog-upgrade")),
            "{log}"
        );
        secrets.verify_audit().unwrap();
        drop(secrets);
        assert!(setup.state_dir().join("catalog.key").exists());
        assert!(
            std::fs::read_to_string(catalog(&setup))
                .unwrap()
                .contains("\"mac\"")
        );
        let again = Secrets::open(&config(&setup)).unwrap();
        assert!(again.report().recovered.is_empty(), "{}", again.report());
        drop(again);

        // Once upgraded, a plain catalog is a downgrade: refused while its
        // key or its anchor is there.
        make_plain(&catalog(&setup));
        let err = Secrets::open(&config(&setup)).unwrap_err();
        assert!(
            matches!(err, OpenError::CatalogDowngraded { .. }),
            "{err:?}"
        );
        std::fs::remove_file(setup.state_dir().join("catalog.key")).unwrap();
        let err = Secrets::open(&config(&setup)).unwrap_err();
        assert!(
            matches!(&err, OpenError::CatalogDowngraded { evidence, .. } if evidence.contains("anchor")),
            "{err:?}"
        );
        // Accepted knowingly, it is sealed under a new key, on record.
        let accepted =
            Secrets::open_with(&config(&setup), OpenOptions::new().accept_rollback(alice()))
                .unwrap();
        assert!(
            matches!(
                accepted.report().recovered.as_slice(),
                [Recovery::CatalogAccepted { .. }]
            ),
            "{:?}",
            accepted.report().recovered
        );
        drop(accepted);
        assert!(setup.state_dir().join("catalog.key").exists());
        let again = Secrets::open(&config(&setup)).unwrap();
        assert!(again.report().recovered.is_empty(), "{}", again.report());
    }
}
