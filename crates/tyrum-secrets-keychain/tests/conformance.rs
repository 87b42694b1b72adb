//! The conformance suite against keyring-core's mock store (hermetic), a real
//! Secret Service (gnome-keyring) and a real kernel session keyring. The
//! last two are ignored in plain `cargo test`; `scripts/test` runs them.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a test failure"
)]

use std::sync::Arc;

use tyrum_secrets_keychain::{CredentialStore, KeychainProvider};
use tyrum_secrets_testkit::conformance::Fixture;

fn mock_store() -> Arc<CredentialStore> {
    keyring_core::mock::Store::new().expect("the mock store builds")
}

/// A provider over one mock store, reopened as a new provider over the
/// same store.
fn mock_with(configure: impl Fn(Arc<CredentialStore>) -> KeychainProvider + 'static) -> Fixture {
    let store = mock_store();
    Fixture::reopening(move || configure(Arc::clone(&store)))
}

fn mock() -> Fixture {
    mock_with(|store| KeychainProvider::new(store).expect("default configuration is valid"))
}

tyrum_secrets_testkit::provider_conformance!(mock());

/// Values split across Windows-sized items (2,560 bytes).
mod mock_with_windows_sized_items {
    use super::*;
    tyrum_secrets_testkit::provider_conformance!(mock_with(|store| {
        KeychainProvider::builder(store)
            .chunk_len(tyrum_secrets_keychain::WINDOWS_MAX_ITEM_LEN)
            .build()
            .expect("valid configuration")
    }));
}

/// Every value and index split across many tiny items.
mod mock_with_tiny_items {
    use super::*;
    tyrum_secrets_testkit::provider_conformance!(mock_with(|store| {
        KeychainProvider::builder(store)
            .chunk_len(64)
            .max_value_len(8 * 1024)
            .build()
            .expect("valid configuration")
    }));
}

#[cfg(target_os = "linux")]
mod secret_service {
    use super::*;
    use std::time::Duration;

    fn provider() -> KeychainProvider {
        assert!(
            std::env::var_os("TYRUM_TEST_SECRET_SERVICE").is_some(),
            "no Secret Service was started for this test; run scripts/test"
        );
        let store = tyrum_secrets_keychain::stores::secret_service(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("cannot reach the Secret Service: {e}"));
        KeychainProvider::builder(store)
            .namespace("tyrum-conformance")
            .build()
            .expect("valid configuration")
    }

    tyrum_secrets_testkit::provider_conformance!(
        ignore = "needs a Secret Service (gnome-keyring); run scripts/test",
        Fixture::reopening(provider)
    );

    #[test]
    #[ignore = "needs a Secret Service (gnome-keyring); run scripts/test"]
    fn file_store_key_is_created_once_in_the_secret_service() {
        use tyrum_secrets_core::ExposeSecret;
        let store = tyrum_secrets_keychain::stores::secret_service(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("cannot reach the Secret Service: {e}"));
        let name = tyrum_secrets_testkit::conformance::fresh_locator("file-key");
        let first = tyrum_secrets_keychain::load_or_create_file_store_key(&store, name.as_str())
            .expect("created");
        // A new connection sees the same key.
        let again_store = tyrum_secrets_keychain::stores::secret_service(Duration::from_secs(10))
            .expect("second connection");
        let again =
            tyrum_secrets_keychain::load_or_create_file_store_key(&again_store, name.as_str())
                .expect("loaded");
        assert_eq!(first.expose_secret(), again.expose_secret());
        assert_ne!(first.expose_secret(), &[0u8; 32]);
    }
}

#[cfg(target_os = "linux")]
mod kernel_keyutils {
    use super::*;
    use tyrum_secrets_core::SecretProvider;

    fn provider() -> KeychainProvider {
        assert!(
            std::env::var_os("TYRUM_TEST_KEYUTILS").is_some(),
            "no fresh kernel session keyring was set up for this test; run scripts/test"
        );
        let store = tyrum_secrets_keychain::stores::kernel_keyutils()
            .unwrap_or_else(|e| panic!("cannot open the kernel keyring: {e}"));
        let provider = KeychainProvider::builder(store)
            .namespace("tyrum-conformance")
            .build()
            .expect("valid configuration");
        assert_eq!(
            provider.capabilities().persistence,
            tyrum_secrets_core::Persistence::UntilReboot
        );
        assert!(provider.persistence_warning().is_some());
        provider
    }

    tyrum_secrets_testkit::provider_conformance!(
        ignore = "needs a kernel session keyring (keyctl session -); run scripts/test",
        Fixture::reopening(provider)
    );

    #[test]
    #[ignore = "needs a kernel session keyring (keyctl session -); run scripts/test"]
    fn file_store_key_is_refused_in_the_kernel_keyring() {
        let store = tyrum_secrets_keychain::stores::kernel_keyutils().expect("keyring");
        let result = tyrum_secrets_keychain::load_or_create_file_store_key(&store, "file-store");
        match result {
            Err(e @ tyrum_secrets_keychain::KeychainError::NotDurable { .. }) => {
                assert!(e.to_string().contains("reboot"), "{e}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a file-store key was kept in a keyring that forgets at reboot"),
        }
    }
}
