//! Anchors kept in the OS keychain (the Secret Service here): a keychain
//! entry is a place the store's or the log's writer path cannot roll back
//! with the file. The file store and the audit log both refuse a rollback
//! against it.

#![cfg(all(feature = "file", feature = "keychain", target_os = "linux"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets::file::{FileError, FileOptions, FileProvider, KeySource, StoreKey};
use tyrum_secrets::keychain::{KeychainProvider, stores};
use tyrum_secrets::{
    Anchor, AnchorError, AuditChainKey, AuditError, AuditRecord, AuditSink, HandleId,
    JsonLinesAuditSink, Locator, Requester, SecretBytes, SecretProvider, Timestamp,
};

fn keychain() -> Arc<dyn SecretProvider> {
    assert!(
        std::env::var_os("TYRUM_TEST_SECRET_SERVICE").is_some(),
        "no Secret Service was started for this test; run scripts/test"
    );
    let store =
        stores::secret_service(Duration::from_secs(10)).expect("the Secret Service answers");
    Arc::new(
        KeychainProvider::builder(store)
            .namespace("tyrum-anchors")
            .build()
            .expect("valid configuration"),
    )
}

/// A locator no earlier run used.
fn fresh(prefix: &str) -> Locator {
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).unwrap();
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    Locator::new(format!("{prefix}-{tag}")).unwrap()
}

#[test]
#[ignore = "needs the Secret Service (gnome-keyring); run scripts/test"]
fn a_store_anchored_in_the_keychain_refuses_an_older_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.tyrum");
    let anchor = Anchor::provider(keychain(), fresh("store-anchor"));
    let options = || FileOptions::default().anchor(anchor.clone());
    let key = || KeySource::Key(StoreKey::from_bytes([0x33; 32]));
    let locator = Locator::new("openai/api-key").unwrap();

    let p = FileProvider::open_with(&path, key(), options()).unwrap();
    p.write(&locator, &SecretBytes::from(b"sk-first-value".to_vec()))
        .unwrap();
    let older = std::fs::read(&path).unwrap();
    p.write(&locator, &SecretBytes::from(b"sk-second-value".to_vec()))
        .unwrap();
    drop(p);
    // A later process, a fresh connection: the current store opens...
    let again = || FileProvider::open_with(&path, key(), options());
    again().unwrap();
    // ...the older copy does not.
    std::fs::write(&path, &older).unwrap();
    let err = again().err().unwrap();
    assert!(
        matches!(
            err,
            FileError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
#[ignore = "needs the Secret Service (gnome-keyring); run scripts/test"]
fn an_audit_log_anchored_in_the_keychain_refuses_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let anchor = Anchor::provider(keychain(), fresh("audit-anchor"));
    let key = || AuditChainKey::new(SecretBytes::from(vec![0x44; 32])).unwrap();
    let sink = JsonLinesAuditSink::open_anchored(&path, key(), anchor.clone()).unwrap();
    for n in 0..3 {
        sink.record(AuditRecord::new(
            Timestamp::now(),
            format!("r{n}"),
            HandleId::generate().unwrap(),
            Requester::new("agent").unwrap(),
            "test".into(),
        ))
        .unwrap();
    }
    drop(sink);
    let text = std::fs::read_to_string(&path).unwrap();
    let first_line = text.lines().next().unwrap();
    std::fs::write(&path, format!("{first_line}\n")).unwrap();
    let err = JsonLinesAuditSink::open_anchored(&path, key(), anchor)
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            AuditError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err}"
    );
}
