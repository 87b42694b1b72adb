//! `Secrets::rekey` is on record: one `rekey` audit record, written before
//! the store is rewritten, so a rekey the audit log cannot record is not
//! made.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::sync::Arc;

use support::Setup;
use tyrum_secrets::{
    Action, AuditError, AuditRecord, AuditSink, ExposeSecret, OpenError, OpenOptions, Outcome,
    SecretString, Secrets, file::KeySource,
};

/// Passes every record on, except a rekey's.
#[derive(Debug)]
struct RefusesRekeys(Arc<dyn AuditSink>);

impl AuditSink for RefusesRekeys {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        if record.action == Action::Rekey {
            return Err(AuditError::rejected("refused by the test"));
        }
        self.0.record(record)
    }
}

fn new_key() -> KeySource {
    KeySource::Passphrase(SecretString::from("the new passphrase".to_owned()))
}

fn rekeys(secrets: &Secrets) -> Vec<AuditRecord> {
    secrets
        .audit_records()
        .unwrap()
        .into_iter()
        .map(|e| e.record)
        .filter(|r| r.action == Action::Rekey)
        .collect()
}

#[test]
fn a_rekey_the_audit_log_cannot_record_is_not_made() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-rekey-test-value-0123456789");
    drop(secrets);
    let store = setup.state_dir().join("secrets.tyrum");
    let before = std::fs::read(&store).unwrap();

    for reseal in [false, true] {
        let options = OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .audit_layer(|sink| Arc::new(RefusesRekeys(sink)) as Arc<dyn AuditSink>);
        let err = Secrets::rekey(
            &setup.config(),
            &options,
            new_key(),
            reseal,
            &support::operator(),
        )
        .unwrap_err();
        assert!(matches!(err, OpenError::Audit(_)), "{err}");
        assert!(err.to_string().contains("refused by the test"), "{err}");
    }
    // The store is as it was, and the old passphrase still opens it.
    assert_eq!(std::fs::read(&store).unwrap(), before);
    let secrets = setup.open().unwrap();
    assert!(rekeys(&secrets).is_empty());
    let value = secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    assert_eq!(value.expose_secret(), b"sk-rekey-test-value-0123456789");
}

#[test]
fn a_rekey_is_recorded_once_with_the_records_it_resealed() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    setup.create(&secrets, b"sk-rekey-test-value-0123456789");
    drop(secrets);
    let options = OpenOptions::new().dangerous_insecure_kdf_for_tests();
    Secrets::rekey(
        &setup.config(),
        &options,
        new_key(),
        true,
        &support::operator(),
    )
    .unwrap();
    std::fs::write(setup.passphrase_file(), "the new passphrase\n").unwrap();
    let secrets = setup.open().unwrap();
    secrets.verify_audit().unwrap();
    let rekeys = rekeys(&secrets);
    assert_eq!(rekeys.len(), 1, "{rekeys:?}");
    assert_eq!(rekeys[0].outcome, Outcome::Applied);
    assert_eq!(rekeys[0].requester, *support::operator().actor());
    assert_eq!(rekeys[0].purpose, "test setup");
    assert!(rekeys[0].resealed.is_some_and(|n| n >= 1), "{rekeys:?}");
}
