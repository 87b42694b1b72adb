//! Items planted in the keychain by another program (any program in the
//! user's session can write Secret Service items) never make the provider
//! allocate more than the items really hold.
//!
//! The check runs in a child process whose address space is capped with
//! `ulimit -v`, so an allocation sized from a planted header aborts the
//! child instead of passing unnoticed (Linux overcommits untouched memory).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a test failure"
)]

use std::process::Command;
use std::sync::Arc;

use keyring_core::api::CredentialStoreApi;
use keyring_core::mock;
use tyrum_secrets_core::{Locator, ProviderError, SecretBytes, SecretProvider, VersionSelector};
use tyrum_secrets_keychain::{CredentialStore, KeychainProvider};

const CHILD: &str = "TYRUM_HOSTILE_ITEMS_CHILD";
/// Address-space cap of the child, in KiB: 1 GiB, far above what reading a
/// small value needs, far below what a 65,536-piece head would reserve.
const CHILD_LIMIT_KIB: u32 = 1 << 20;

/// Runs `name` from this test binary in a child limited to
/// [`CHILD_LIMIT_KIB`] of address space, and asserts it passed.
fn run_capped(name: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {CHILD_LIMIT_KIB} && exec \"$0\" --exact {name} --test-threads 1"
        ))
        .arg(exe)
        .env(CHILD, "1")
        .output()
        .expect("spawn capped child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "capped child failed ({:?}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_planted_head_naming_many_pieces_allocates_only_what_is_read() {
    if std::env::var_os(CHILD).is_none() {
        return run_capped("a_planted_head_naming_many_pieces_allocates_only_what_is_read");
    }
    let store = mock::Store::new().expect("mock store");
    let dyn_store: Arc<CredentialStore> = store.clone();
    let provider = KeychainProvider::new(dyn_store).expect("provider");
    let l = Locator::new("planted").expect("locator");
    provider
        .write(&l, &SecretBytes::from(b"a real value here".to_vec()))
        .expect("write");
    // Another program replaces the value item's head with one that claims
    // the largest piece count the parser accepts.
    store
        .build("tyrum-secrets#v1", "planted", None)
        .expect("entry")
        .set_secret(b"65536.1:x")
        .expect("planted");
    let result = provider.read(&l, VersionSelector::Latest);
    assert!(
        matches!(result, Err(ProviderError::Corrupt { .. })),
        "{result:?}"
    );
}
