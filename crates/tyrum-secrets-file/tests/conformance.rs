//! The file provider passes the whole provider conformance suite, with a
//! passphrase (cheap KDF) and with a raw key.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use tyrum_secrets_file::{FileOptions, FileProvider, KeySource, StoreKey};

/// A provider on a fresh store in a temporary directory that lives as long
/// as the provider (leaked: one small directory per test).
fn passphrase_provider() -> FileProvider {
    let dir = tempfile::tempdir().unwrap().keep();
    FileProvider::open_with(
        dir.join("store.tyrum"),
        KeySource::passphrase("conformance passphrase"),
        FileOptions::default().dangerous_insecure_kdf_for_tests(),
    )
    .unwrap()
}

fn raw_key_provider() -> FileProvider {
    let dir = tempfile::tempdir().unwrap().keep();
    FileProvider::open_with(
        dir.join("store.tyrum"),
        KeySource::Key(StoreKey::generate().unwrap()),
        FileOptions::default().compact_on_destroy(false),
    )
    .unwrap()
}

tyrum_secrets_testkit::provider_conformance!(passphrase_provider());

mod raw_key_without_compaction {
    use super::raw_key_provider;
    tyrum_secrets_testkit::provider_conformance!(raw_key_provider());
}
