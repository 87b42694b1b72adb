//! The file provider passes the whole provider conformance suite, with a
//! passphrase (cheap KDF) and with a raw key, each on a fresh store in a
//! temporary directory that the fixture owns and reopens.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use tyrum_secrets_file::{FileOptions, FileProvider, KeySource, StoreKey};
use tyrum_secrets_testkit::conformance::Fixture;

fn passphrase_provider() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    Fixture::reopening(move || {
        FileProvider::open_with(
            &path,
            KeySource::passphrase("conformance passphrase"),
            FileOptions::default().dangerous_insecure_kdf_for_tests(),
        )
        .unwrap()
    })
    .owning(dir)
}

fn raw_key_provider() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let key_file = dir.path().join("store.key");
    StoreKey::write_new_key_file(&key_file).unwrap();
    Fixture::reopening(move || {
        FileProvider::open_with(
            &path,
            KeySource::Key(StoreKey::read_key_file(&key_file).unwrap()),
            FileOptions::default().compact_on_destroy(false),
        )
        .unwrap()
    })
    .owning(dir)
}

tyrum_secrets_testkit::provider_conformance!(passphrase_provider());

mod raw_key_without_compaction {
    use super::raw_key_provider;
    tyrum_secrets_testkit::provider_conformance!(raw_key_provider());
}
