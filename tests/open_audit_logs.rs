//! The audit logs of a state directory as a set (review 1, #2): each log is
//! anchored, and an authenticated index of how many logs were written is
//! kept where their anchors are, so a forged anchor, a log deleted with its
//! anchor, or the whole audit directory deleted is refused on the next open
//! and by `verify_audit`.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::path::PathBuf;

use support::{Setup, snapshot};
use tyrum_secrets::{
    AdminRequest, Anchor, AnchorHead, AnchorKey, AnchorSeal, OpenError, OpenOptions, Purpose,
    Recovery, Requester, Secrets,
};

fn audit_dir(setup: &Setup) -> PathBuf {
    setup.state_dir().join("audit")
}

/// A state whose log 0 holds a create and three resolves.
fn used_state(setup: &Setup) {
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-review-canary-000001");
    for _ in 0..3 {
        secrets
            .resolver()
            .resolve(handle.id(), &setup.request())
            .unwrap();
    }
}

/// Overwrites the anchor file at `path` with one vouching for `count`
/// records, sealed under a random key (a forger's).
fn forge(path: &std::path::Path, subject: &[u8], count: u64) {
    std::fs::remove_file(path).unwrap();
    let seal = AnchorSeal::new(AnchorKey::generate().unwrap(), subject.to_vec());
    Anchor::file(path)
        .advance(&seal, &AnchorHead::new(0, count, [0; 32]))
        .unwrap();
}

fn alice() -> AdminRequest {
    AdminRequest::new(
        Requester::new("alice").unwrap(),
        Purpose::new("the audit volume was lost").unwrap(),
    )
}

fn accepting(setup: &Setup) -> Result<Secrets, OpenError> {
    Secrets::open_with(
        &setup.config(),
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .accept_rollback(alice()),
    )
}

/// Review 1, #2 (`forged_audit_anchor_lets_a_cut_log_open`, adapted: the
/// anchor is core's authenticated one now): a log cut to its first record
/// with its anchor rewritten to match, by someone without the key, is
/// refused.
#[test]
fn a_log_cut_short_with_a_forged_anchor_is_refused() {
    let setup = Setup::new();
    used_state(&setup);
    let log = audit_dir(&setup).join("0.jsonl");
    let before = std::fs::read(&log).unwrap();
    let lines = before
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(lines >= 5, "{lines}");
    let first = before.iter().position(|b| *b == b'\n').unwrap() + 1;
    std::fs::write(&log, &before[..first]).unwrap();
    // Forge the anchor to vouch for one record, sealed under a key of the
    // forger's own (the state's key is not at hand).
    let anchor = audit_dir(&setup).join("0.jsonl.anchor");
    forge(&anchor, b"tyrum-secrets audit log", 1);
    let err = setup.open().unwrap_err();
    assert!(
        matches!(&err, OpenError::AuditAnchor { log: l, .. } if *l == log),
        "{err:?}"
    );
    assert!(err.to_string().contains("0.jsonl"), "{err}");
    // Nor does deleting the anchor make the cut log acceptable.
    std::fs::remove_file(&anchor).unwrap();
    let err = setup.open().unwrap_err();
    assert!(matches!(err, OpenError::AuditAnchor { .. }), "{err:?}");
}

/// Review 1, #2 (`deleted_audit_log_and_anchor_go_unnoticed`, as it is
/// now): a log deleted together with its anchor is refused, naming it.
#[test]
fn a_log_deleted_with_its_anchor_is_refused_naming_it() {
    let setup = Setup::new();
    used_state(&setup);
    // A second log, held open while the state is opened again.
    let first = setup.open().unwrap();
    let second = setup.open().unwrap();
    assert!(second.report().audit_log.ends_with("1.jsonl"));
    drop((first, second));
    let log = audit_dir(&setup).join("0.jsonl");
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(audit_dir(&setup).join("0.jsonl.anchor")).unwrap();
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    match &err {
        OpenError::AuditLogMissing {
            log: l,
            index,
            count,
        } => {
            assert_eq!(*l, log);
            assert!(index.ends_with("audit.anchor"), "{index}");
            assert_eq!(*count, 2);
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("0.jsonl is missing"), "{message}");
    assert!(message.contains("accept_rollback"), "{message}");
    assert_eq!(
        before,
        snapshot(setup.dir()),
        "a refused open changed files"
    );
}

#[test]
fn the_whole_audit_directory_deleted_is_refused_and_so_is_its_index_deleted_too() {
    let setup = Setup::new();
    used_state(&setup);
    std::fs::remove_dir_all(audit_dir(&setup)).unwrap();
    let err = setup.open().unwrap_err();
    assert!(matches!(err, OpenError::AuditLogMissing { .. }), "{err:?}");
    // With the index deleted as well, the authenticated catalog shows the
    // state had one.
    std::fs::remove_file(setup.state_dir().join("audit.anchor")).unwrap();
    let err = setup.open().unwrap_err();
    assert!(
        matches!(&err, OpenError::AuditIndexMissing { dir, .. } if *dir == audit_dir(&setup)),
        "{err:?}"
    );
}

#[test]
fn a_forged_index_is_refused() {
    let setup = Setup::new();
    used_state(&setup);
    // An index that vouches for no log, so that deleting log 0 would
    // pass, sealed under the forger's key.
    let index = setup.state_dir().join("audit.anchor");
    forge(&index, b"tyrum-secrets audit log index", 0);
    let err = setup.open().unwrap_err();
    assert!(
        matches!(&err, OpenError::AuditIndex { index: i, .. } if i.contains("audit.anchor")),
        "{err:?}"
    );
}

#[test]
fn verify_audit_refuses_a_log_deleted_while_the_state_is_open() {
    let setup = Setup::new();
    used_state(&setup);
    let first = setup.open().unwrap();
    let second = setup.open().unwrap();
    drop(second);
    std::fs::remove_file(audit_dir(&setup).join("1.jsonl")).unwrap();
    std::fs::remove_file(audit_dir(&setup).join("1.jsonl.anchor")).unwrap();
    let err = first.verify_audit().unwrap_err();
    assert!(matches!(err, OpenError::AuditLogMissing { .. }), "{err:?}");
}

#[test]
fn accepting_a_lost_audit_directory_is_on_record_and_later_opens_are_ordinary() {
    let setup = Setup::new();
    used_state(&setup);
    std::fs::remove_dir_all(audit_dir(&setup)).unwrap();
    assert!(setup.open().is_err());
    let accepted = accepting(&setup).unwrap();
    let recovered = &accepted.report().recovered;
    assert!(
        matches!(
            recovered.as_slice(),
            [Recovery::AuditLogsAccepted { refusal, .. }] if refusal.contains("0.jsonl is missing")
        ),
        "{recovered:?}"
    );
    assert!(
        accepted
            .report()
            .to_string()
            .contains("accepted the audit logs"),
        "{}",
        accepted.report()
    );
    let logs = accepted.verify_audit().unwrap();
    let text: String = logs
        .iter()
        .map(|(log, _)| std::fs::read_to_string(log).unwrap())
        .collect();
    assert!(
        text.lines()
            .any(|l| l.contains("accept-rollback:audit-logs:missing=0")
                && l.contains("alice")
                && l.contains("the audit volume was lost")),
        "{text}"
    );
    drop(accepted);
    let again = setup.open().unwrap();
    assert!(again.report().recovered.is_empty(), "{}", again.report());
}

#[test]
fn accepting_one_lost_log_makes_it_again_and_later_opens_are_ordinary() {
    let setup = Setup::new();
    used_state(&setup);
    let first = setup.open().unwrap();
    let second = setup.open().unwrap();
    drop((first, second));
    let log = audit_dir(&setup).join("0.jsonl");
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(audit_dir(&setup).join("0.jsonl.anchor")).unwrap();
    let accepted = accepting(&setup).unwrap();
    assert!(
        matches!(
            accepted.report().recovered.as_slice(),
            [Recovery::AuditLogsAccepted { .. }]
        ),
        "{:?}",
        accepted.report().recovered
    );
    assert!(log.exists());
    let logs = accepted.verify_audit().unwrap();
    assert_eq!(logs.len(), 2, "{logs:?}");
    drop(accepted);
    let again = setup.open().unwrap();
    assert!(again.report().recovered.is_empty(), "{}", again.report());
    again.verify_audit().unwrap();
}
