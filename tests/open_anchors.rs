//! `Secrets::open` and the anchors of a single-host state: a store or an
//! audit log rolled back is refused with an error that says what to do and
//! changes no file; anchors kept outside the state directory catch the
//! whole directory rolled back; an operator accepts a rollback knowingly and
//! on record; a format-1 store is upgraded once, only by an open that
//! otherwise succeeds.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::path::{Path, PathBuf};

use support::{Setup, snapshot};
use tyrum_secrets::file::{FileOptions, FileProvider, KeySource};
use tyrum_secrets::{
    AdminRequest, AnchorError, Config, ExposeSecret, Locator, OpenError, OpenOptions, Purpose,
    Recovery, Requester, SecretProvider, Secrets, VersionSelector,
};

fn open(config: &Config) -> Result<Secrets, OpenError> {
    Secrets::open_with(
        config,
        OpenOptions::new().dangerous_insecure_kdf_for_tests(),
    )
}

/// The config of `setup` with every anchor in `anchors`, outside the state
/// directory.
fn anchored_elsewhere(setup: &Setup) -> (Config, PathBuf) {
    let anchors = setup.dir().join("anchors");
    let mut config = setup.config();
    config.anchor_dir = Some(anchors.clone());
    (config, anchors)
}

/// Copies the directory `from` to `to` (files and directories only).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Puts `backup` back in place of `dir`, whole.
fn restore(backup: &Path, dir: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
    copy_dir(backup, dir);
}

fn resolve(setup: &Setup, secrets: &Secrets, handle: &tyrum_secrets::SecretHandle) {
    secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
}

fn alice() -> AdminRequest {
    AdminRequest::new(
        Requester::new("alice").unwrap(),
        Purpose::new("restored last night's backup after the disk failed").unwrap(),
    )
}

#[test]
fn an_audit_log_rolled_back_with_its_anchor_is_refused_when_anchors_live_elsewhere() {
    let setup = Setup::new();
    let (config, anchors) = anchored_elsewhere(&setup);
    let secrets = open(&config).unwrap();
    assert!(
        secrets
            .report()
            .audit_anchor
            .contains(&anchors.display().to_string()),
        "{}",
        secrets.report()
    );
    let handle = setup.create(&secrets, b"sk-rolled-back-audit-1");
    resolve(&setup, &secrets, &handle);
    drop(secrets);
    // The whole state directory — logs, store, catalog — as a backup would
    // hold it.
    let backup = setup.dir().join("backup");
    copy_dir(&setup.state_dir(), &backup);
    let secrets = open(&config).unwrap();
    resolve(&setup, &secrets, &handle);
    resolve(&setup, &secrets, &handle);
    let log = secrets.report().audit_log.clone();
    drop(secrets);

    restore(&backup, &setup.state_dir());
    let before = snapshot(setup.dir());
    let err = open(&config).unwrap_err();
    let OpenError::AuditCutShort {
        log: refused,
        anchor,
        anchored,
        found,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(refused, &log);
    assert!(anchored > found, "{err}");
    assert!(anchor.contains(&anchors.display().to_string()), "{err}");
    let text = err.to_string();
    assert!(text.contains("cut short or rolled back"), "{text}");
    assert!(text.contains("accept_rollback"), "{text}");
    assert_eq!(
        before,
        snapshot(setup.dir()),
        "a failed open changed a file"
    );
}

#[test]
fn a_rolled_back_store_is_refused_with_a_clear_error_and_nothing_changes() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    assert!(
        secrets.report().store_anchor.is_some(),
        "{}",
        secrets.report()
    );
    setup.create(&secrets, b"sk-store-rollback-first");
    drop(secrets);
    let store = setup.state_dir().join("secrets.tyrum");
    let older = std::fs::read(&store).unwrap();
    let secrets = setup.open().unwrap();
    setup.create(&secrets, b"sk-store-rollback-second");
    drop(secrets);

    // The store file alone put back: its anchor beside it knows better.
    std::fs::write(&store, &older).unwrap();
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    assert!(
        matches!(
            &err,
            OpenError::StoreAnchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&store.display().to_string()), "{text}");
    assert!(text.contains("rolled back"), "{text}");
    assert!(text.contains("accept_rollback"), "{text}");
    assert!(!text.contains("sk-store-rollback"), "{text}");
    assert_eq!(
        before,
        snapshot(setup.dir()),
        "a failed open changed a file"
    );
}

#[test]
fn a_whole_state_dir_rolled_back_is_refused_at_its_store_when_anchors_live_elsewhere() {
    let setup = Setup::new();
    let (config, anchors) = anchored_elsewhere(&setup);
    let secrets = open(&config).unwrap();
    setup.create(&secrets, b"sk-whole-dir-first-value");
    drop(secrets);
    let backup = setup.dir().join("backup");
    copy_dir(&setup.state_dir(), &backup);
    let secrets = open(&config).unwrap();
    setup.create(&secrets, b"sk-whole-dir-second-value");
    drop(secrets);

    restore(&backup, &setup.state_dir());
    let before = snapshot(setup.dir());
    let err = open(&config).unwrap_err();
    let OpenError::StoreAnchor { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(matches!(source, AnchorError::RolledBack { .. }), "{err}");
    assert!(
        err.to_string().contains(&anchors.display().to_string()),
        "{err}"
    );
    assert_eq!(before, snapshot(setup.dir()));
}

#[test]
fn accepting_a_rollback_is_on_record_and_later_opens_are_ordinary() {
    let setup = Setup::new();
    let (config, _) = anchored_elsewhere(&setup);
    let secrets = open(&config).unwrap();
    let kept = setup.create(&secrets, b"sk-accepted-kept-value");
    resolve(&setup, &secrets, &kept);
    drop(secrets);
    let backup = setup.dir().join("backup");
    copy_dir(&setup.state_dir(), &backup);
    let secrets = open(&config).unwrap();
    setup.create(&secrets, b"sk-accepted-lost-value");
    resolve(&setup, &secrets, &kept);
    drop(secrets);
    restore(&backup, &setup.state_dir());
    assert!(open(&config).is_err());

    let accepted = Secrets::open_with(
        &config,
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .accept_rollback(alice()),
    )
    .unwrap();
    let recovered = &accepted.report().recovered;
    assert_eq!(recovered.len(), 3, "{recovered:?}");
    assert!(
        recovered.iter().any(|r| matches!(r, Recovery::StoreAccepted { refusal, .. } if refusal.contains("rolled back"))),
        "{recovered:?}"
    );
    assert!(
        recovered
            .iter()
            .any(|r| matches!(r, Recovery::AuditLogAccepted { .. })),
        "{recovered:?}"
    );
    assert!(
        recovered.iter().any(|r| matches!(r, Recovery::CatalogAccepted { refusal, .. } if refusal.contains("rolled back"))),
        "{recovered:?}"
    );
    assert!(
        accepted
            .report()
            .to_string()
            .contains("accepted the file store"),
        "{}",
        accepted.report()
    );
    // The older state is what opened: the value kept resolves, masked.
    resolve(&setup, &accepted, &kept);
    // All three acceptances are on record, naming who and why; the log
    // verifies.
    let logs = accepted.verify_audit().unwrap();
    let text: String = logs
        .iter()
        .map(|(log, _)| std::fs::read_to_string(log).unwrap())
        .collect();
    let records: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"action\":\"accept_rollback\""))
        .collect();
    assert_eq!(records.len(), 3, "{text}");
    for record in records {
        assert!(record.contains("alice"), "{record}");
        assert!(record.contains("restored last night's backup"), "{record}");
    }
    drop(accepted);

    let again = open(&config).unwrap();
    assert!(again.report().recovered.is_empty(), "{}", again.report());
}

#[test]
fn accepting_never_covers_a_store_that_does_not_verify() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    setup.create(&secrets, b"sk-tampered-store-value");
    drop(secrets);
    let store = setup.state_dir().join("secrets.tyrum");
    let mut bytes = std::fs::read(&store).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 0x40;
    std::fs::write(&store, &bytes).unwrap();
    let before = snapshot(setup.dir());
    let err = Secrets::open_with(
        &setup.config(),
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .accept_rollback(alice()),
    )
    .unwrap_err();
    assert!(
        !matches!(err, OpenError::StoreAnchor { .. }),
        "a damaged record is not an anchor's claim: {err:?}"
    );
    assert_eq!(before, snapshot(setup.dir()));
}

/// The format-1 test vector of the file crate, and its passphrase.
fn format_1_store() -> (PathBuf, &'static str) {
    let vector = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/tyrum-secrets-file/tests/data/v1-passphrase.tyrum");
    (vector, "tyrum test vector passphrase")
}

#[test]
fn a_format_1_store_is_upgraded_once_and_only_by_an_open_that_succeeds() {
    let setup = Setup::new();
    let (vector, passphrase) = format_1_store();
    std::fs::write(setup.passphrase_file(), format!("{passphrase}\n")).unwrap();
    let mut config = setup.config();
    // The vector holds no audit keys: keep them in a file.
    config.audit.key_file = Some(setup.dir().join("audit.key"));
    let secrets = open(&config).unwrap();
    assert!(secrets.report().recovered.is_empty());
    drop(secrets);
    // A store from before format 2 and before anchors, with a catalog from
    // before authentication.
    let store = setup.state_dir().join("secrets.tyrum");
    std::fs::copy(&vector, &store).unwrap();
    std::fs::remove_file(setup.state_dir().join("secrets.tyrum.anchor")).unwrap();
    let catalog = setup.state_dir().join("catalog.json");
    support::make_plain(&catalog);
    std::fs::remove_file(setup.state_dir().join("catalog.json.anchor")).unwrap();

    // An open that fails for another reason (an audit log cut short)
    // leaves the store in format 1, byte for byte.
    let log = setup.state_dir().join("audit/0.jsonl");
    let full = std::fs::read_to_string(&log).unwrap();
    assert!(full.lines().count() >= 1, "{full}");
    std::fs::write(&log, b"").unwrap();
    let before = snapshot(setup.dir());
    let err = open(&config).unwrap_err();
    assert!(matches!(err, OpenError::AuditCutShort { .. }), "{err:?}");
    assert_eq!(before, snapshot(setup.dir()));
    std::fs::write(&log, &full).unwrap();

    let secrets = open(&config).unwrap();
    assert_eq!(
        secrets.report().recovered,
        vec![
            Recovery::StoreUpgraded(store.clone()),
            Recovery::CatalogUpgraded(catalog.clone())
        ]
    );
    assert!(
        secrets
            .report()
            .to_string()
            .contains("upgraded the file store"),
        "{}",
        secrets.report()
    );
    drop(secrets);
    let provider = FileProvider::open_with(
        &store,
        KeySource::passphrase_file(setup.passphrase_file()),
        FileOptions::default().anchor_beside(),
    )
    .unwrap();
    assert_eq!(provider.format_version(), 2);
    let read = provider
        .read(
            &Locator::new("demo/api-key").unwrap(),
            VersionSelector::Latest,
        )
        .unwrap();
    assert_eq!(read.value.expose_secret(), b"sk-test-vector-0002");
    drop(provider);
    let again = open(&config).unwrap();
    assert!(again.report().recovered.is_empty(), "{}", again.report());
}

#[test]
fn a_passphrase_file_that_cannot_be_used_names_the_setting() {
    let setup = Setup::new();
    std::fs::write(setup.passphrase_file(), b"\n").unwrap();
    let empty = setup.open().unwrap_err();
    assert!(
        matches!(
            empty,
            OpenError::KeyFile {
                what: "passphrase file",
                ..
            }
        ),
        "{empty:?}"
    );
    assert!(empty.to_string().contains("passphrase_file"), "{empty}");
    assert!(empty.to_string().contains("no passphrase"), "{empty}");
    std::fs::remove_file(setup.passphrase_file()).unwrap();
    std::fs::create_dir(setup.passphrase_file()).unwrap();
    let directory = setup.open().unwrap_err();
    assert!(
        directory.to_string().contains("not a regular file"),
        "{directory}"
    );
    assert!(!setup.state_dir().exists());
}

#[test]
fn two_state_directories_can_share_one_anchor_dir() {
    // Anchors in a shared anchor_dir are named after each state's id, so the
    // second state neither reads nor overwrites the first one's anchors.
    let first = Setup::new();
    let anchors = first.dir().join("anchors");
    let mut config_a = first.config();
    config_a.anchor_dir = Some(anchors.clone());
    let mut config_b = first.config();
    config_b.state_dir = Some(first.dir().join("state-b"));
    config_b.anchor_dir = Some(anchors.clone());

    let a = open(&config_a).unwrap();
    let handle_a = first.create(&a, b"sk-shared-anchor-dir-a");
    resolve(&first, &a, &handle_a);
    drop(a);
    let b = open(&config_b).unwrap();
    let handle_b = first.create(&b, b"sk-shared-anchor-dir-b");
    resolve(&first, &b, &handle_b);
    drop(b);

    // Both reopen: neither's anchors were taken over by the other.
    let a = open(&config_a).unwrap();
    resolve(&first, &a, &handle_a);
    drop(a);
    let b = open(&config_b).unwrap();
    resolve(&first, &b, &handle_b);
    drop(b);
    let names: Vec<String> = std::fs::read_dir(&anchors)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 4, "{names:?}");
}
