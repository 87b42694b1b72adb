//! `Secrets::open` on the desktop profile against the real Secret Service
//! (gnome-keyring) and the real kernel keyring: values and audit keys in the
//! keychain, catalog and audit log in the state directory, a reopen that
//! pre-loads and verifies.

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
