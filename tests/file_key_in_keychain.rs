//! The encrypted file provider can take its key from the OS keychain instead
//! of a passphrase: the keychain crate's `FileStoreKeySource` creates a random
//! 32-byte key on first use, and a later process loads the same key and
//! opens the same store.

#![cfg(all(feature = "file", feature = "keychain", target_os = "linux"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::time::Duration;

use tyrum_secrets::file::{FileError, FileProvider, KeySource, StoreKey};
use tyrum_secrets::keychain::{FileStoreKeySource, stores};
use tyrum_secrets::{ExposeSecret, Locator, SecretBytes, SecretProvider, VersionSelector};

fn key_source(name: &str) -> FileStoreKeySource {
    let store =
        stores::secret_service(Duration::from_secs(10)).expect("the Secret Service answers");
    FileStoreKeySource::new(store, name).expect("a valid key name")
}

#[test]
#[ignore = "needs the Secret Service (gnome-keyring); run scripts/test"]
fn file_store_opens_with_its_key_from_the_secret_service() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.tyrum");
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).unwrap();
    let name: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("file-store-{name}");
    let locator = Locator::new("openai/api-key").unwrap();

    {
        let key = key_source(&name).load_or_create().unwrap();
        let provider = FileProvider::open(&path, KeySource::Key(StoreKey::from(&key))).unwrap();
        provider
            .write(
                &locator,
                &SecretBytes::from(b"sk-keychain-wrapped-1".to_vec()),
            )
            .unwrap();
    }

    // A fresh connection, as a later process would make, loads the same key.
    let key = key_source(&name).load().unwrap();
    let provider = FileProvider::open(&path, KeySource::Key(StoreKey::from(&key))).unwrap();
    let read = provider.read(&locator, VersionSelector::Latest).unwrap();
    assert_eq!(read.value.expose_secret(), b"sk-keychain-wrapped-1");

    // Another keychain key does not open the store.
    let other = key_source(&format!("{name}-other"))
        .load_or_create()
        .unwrap();
    let err = FileProvider::open(&path, KeySource::Key(StoreKey::from(&other))).unwrap_err();
    assert!(matches!(err, FileError::Decrypt { .. }), "{err}");
}
