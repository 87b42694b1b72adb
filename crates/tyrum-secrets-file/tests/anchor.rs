//! The rollback anchor (FORMAT.md, "Rollback anchor"): a store rolled back
//! to any earlier frame boundary is refused against its anchor and accepted
//! only through `FileProvider::accept_rollback`, which writes an audit
//! record; a crash on either side of an anchor update never makes a store
//! unopenable; format 1 upgrades to format 2.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{boundaries, frames, key, loc, options, read_all, secret};
use tyrum_secrets_core::anchor::{Anchor, AnchorError, AnchorStore, MemoryAnchor};
use tyrum_secrets_core::{
    Action, AdminRequest, AuditSink, ExposeSecret, MemoryAuditSink, MemoryProvider, Outcome,
    Purpose, Requester, SecretProvider, Version, VersionSelector,
};
use tyrum_secrets_file::{FileError, FileOptions, FileProvider, KeySource, StoreKey};

fn anchored(anchor: &MemoryAnchor) -> FileOptions {
    options().anchor(Anchor::new(anchor.clone()))
}

fn reason() -> Purpose {
    Purpose::new("restored last night's backup on purpose").unwrap()
}

fn operator() -> AdminRequest {
    AdminRequest::new(Requester::new("operator").unwrap(), reason())
}

/// The anchor's refusal, or a panic naming what happened instead.
fn refusal(result: Result<FileProvider, FileError>) -> AnchorError {
    match result {
        Err(FileError::Anchor { source, .. }) => source,
        Err(other) => panic!("expected an anchor refusal, got: {other}"),
        Ok(_) => panic!("the store opened"),
    }
}

/// A store with a history: puts, a delete, a destroy marker.
fn busy_store(path: &Path, options: FileOptions) -> FileProvider {
    let p = FileProvider::open_with(path, key(), options).unwrap();
    for i in 0..12 {
        p.write(
            &loc(&format!("s/{}", i % 4)),
            &secret(format!("v-{i}").as_bytes()),
        )
        .unwrap();
    }
    p.delete(&loc("s/1"), Version::FIRST).unwrap();
    p.destroy(&loc("s/2"), Version::FIRST).unwrap();
    p
}

#[test]
fn rolling_back_to_any_earlier_frame_boundary_is_refused_and_accepted_only_with_an_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    drop(busy_store(&path, anchored(&anchor)));
    let newest = std::fs::read(&path).unwrap();
    let newest_anchor = anchor.bytes();
    let ends = boundaries(&newest);
    assert_eq!(ends.len(), frames(&newest).len() + 1);
    for &end in &ends[..ends.len() - 1] {
        anchor.set_bytes(newest_anchor.clone());
        std::fs::write(&path, &newest[..end]).unwrap();
        // Without its anchor the older store is self-consistent...
        let older_values = read_all(&path, options()).unwrap();
        // ...with it, it is refused, whatever the length.
        let error = refusal(FileProvider::open_with(&path, key(), anchored(&anchor)));
        assert!(
            matches!(error, AnchorError::RolledBack { .. }),
            "cut at {end}: {error}"
        );
        let text = FileProvider::open_with(&path, key(), anchored(&anchor))
            .err()
            .unwrap()
            .to_string();
        assert!(text.contains("accept_rollback"), "{text}");
        // Writing is refused too: the open is.
        // The recovery call accepts it, and says so in the audit log.
        let audit = MemoryAuditSink::new();
        let p = FileProvider::accept_rollback(&path, key(), anchored(&anchor), &audit, &operator())
            .unwrap();
        let records = audit.records();
        assert_eq!(records.len(), 1, "cut at {end}");
        assert_eq!(records[0].action, Action::AcceptRollback);
        assert_eq!(records[0].outcome, Outcome::Applied);
        assert_eq!(records[0].requester.agent(), "operator");
        assert_eq!(records[0].purpose, reason().as_str());
        assert!(records[0].handle_id.as_str().starts_with("store-"));
        assert!(
            records[0]
                .request_id
                .starts_with("accept-rollback:anchored=1.")
        );
        p.write(&loc("after/accept"), &secret(b"accepted")).unwrap();
        drop(p);
        // From now on the accepted state is the anchored one.
        let mut reopened = read_all(&path, anchored(&anchor)).unwrap();
        assert_eq!(
            reopened.remove(&("after/accept".to_owned(), 1)).as_deref(),
            Some(&b"accepted"[..])
        );
        assert_eq!(reopened, older_values, "cut at {end}");
    }
}

#[test]
fn a_failing_audit_sink_leaves_the_refused_store_untouched() {
    #[derive(Debug)]
    struct Refusing;
    impl AuditSink for Refusing {
        fn record(
            &self,
            _: tyrum_secrets_core::AuditRecord,
        ) -> Result<(), tyrum_secrets_core::AuditError> {
            Err(tyrum_secrets_core::AuditError::rejected("down"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    drop(busy_store(&path, anchored(&anchor)));
    let bytes = std::fs::read(&path).unwrap();
    let cut = &bytes[..boundaries(&bytes)[3]];
    std::fs::write(&path, cut).unwrap();
    let before_anchor = anchor.bytes();
    let error =
        FileProvider::accept_rollback(&path, key(), anchored(&anchor), &Refusing, &operator())
            .err()
            .unwrap();
    assert!(matches!(error, FileError::Audit { .. }), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), cut);
    assert_eq!(anchor.bytes(), before_anchor);
}

#[test]
fn accepting_never_covers_a_tampered_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    drop(busy_store(&path, anchored(&anchor)));
    let bytes = std::fs::read(&path).unwrap();
    let mut all = frames(&bytes);
    all.remove(2);
    std::fs::write(&path, common::with_frames(&bytes, &all)).unwrap();
    let audit = MemoryAuditSink::new();
    let error = FileProvider::accept_rollback(&path, key(), anchored(&anchor), &audit, &operator())
        .err()
        .unwrap();
    assert!(
        matches!(error, FileError::Decrypt { .. } | FileError::Corrupt { .. }),
        "{error}"
    );
    assert!(audit.is_empty());
}

#[test]
fn a_store_the_anchor_accepts_opens_through_the_recovery_call_without_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    drop(busy_store(&path, anchored(&anchor)));
    let audit = MemoryAuditSink::new();
    FileProvider::accept_rollback(&path, key(), anchored(&anchor), &audit, &operator()).unwrap();
    assert!(audit.is_empty());
}

#[test]
fn an_anchor_update_that_fails_after_the_append_leaves_an_openable_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    let p = busy_store(&path, anchored(&anchor));
    anchor.fail(true);
    let error = p
        .write(&loc("late"), &secret(b"durable-but-unanchored"))
        .unwrap_err();
    assert!(error.to_string().contains("anchor"), "{error}");
    anchor.fail(false);
    // The record is in the file, one write ahead of the anchor: accepted.
    let values = read_all(&path, anchored(&anchor)).unwrap();
    assert_eq!(
        values.get(&("late".to_owned(), 1)).map(Vec::as_slice),
        Some(&b"durable-but-unanchored"[..])
    );
    // This process sees it too, and its next write catches the anchor up.
    assert_eq!(
        p.read(&loc("late"), VersionSelector::Latest)
            .unwrap()
            .version,
        Version::FIRST
    );
    p.write(&loc("later"), &secret(b"anchored-again")).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(
        &path,
        &bytes[..boundaries(&bytes)[boundaries(&bytes).len() - 2]],
    )
    .unwrap();
    assert!(matches!(
        refusal(FileProvider::open_with(&path, key(), anchored(&anchor))),
        AnchorError::RolledBack { .. }
    ));
}

/// Every rewrite: announce, rename, advance. The anchor's state after the
/// announcement must accept both the file before the rename and the file
/// after it.
#[test]
fn a_crash_on_either_side_of_a_rewrite_leaves_an_openable_store() {
    type Rewrite = fn(&mut FileProvider);
    let rewrites: [(&str, Rewrite); 3] = [
        ("compact", |p| p.compact().unwrap()),
        ("rotate_data_key", |p| p.rotate_data_key().unwrap()),
        ("change_key", |p| {
            p.change_key(KeySource::Key(StoreKey::from_bytes([0x24; 32])))
                .unwrap()
        }),
    ];
    for (name, rewrite) in rewrites {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.tyrum");
        let anchor = MemoryAnchor::new();
        let mut p = busy_store(&path, anchored(&anchor));
        let before = std::fs::read(&path).unwrap();
        let saves = anchor.history().len();
        rewrite(&mut p);
        let after = std::fs::read(&path).unwrap();
        let history = anchor.history();
        assert_eq!(history.len(), saves + 2, "{name}: announce, then advance");
        let announced = history[saves].clone();
        let advanced = history[saves + 1].clone();
        for (state, file, accepted) in [
            ("announced, not renamed", &before, true),
            ("announced and renamed", &after, true),
            ("advanced and renamed", &after, true),
            ("advanced, old file back", &before, false),
        ] {
            let bytes = if state.starts_with("advanced") {
                &advanced
            } else {
                &announced
            };
            anchor.set_bytes(Some(bytes.clone()));
            std::fs::write(&path, file).unwrap();
            let result = read_all(&path, anchored(&anchor));
            assert_eq!(result.is_ok(), accepted, "{name}, {state}: {result:?}");
        }
    }
}

#[test]
fn a_missing_anchor_or_a_missing_store_is_refused_not_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    drop(busy_store(&path, options().anchor_beside()));
    let anchor_path = dir.path().join("store.tyrum.anchor");
    let anchor_bytes = std::fs::read(&anchor_path).unwrap();
    std::fs::remove_file(&anchor_path).unwrap();
    assert!(matches!(
        refusal(FileProvider::open_with(
            &path,
            key(),
            options().anchor_beside()
        )),
        AnchorError::Missing { .. }
    ));
    std::fs::write(&anchor_path, &anchor_bytes).unwrap();
    let store_bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        refusal(FileProvider::open_with(
            &path,
            key(),
            options().anchor_beside()
        )),
        AnchorError::FileMissing { .. }
    ));
    assert!(!path.exists(), "a new store replaced the anchored one");
    std::fs::write(&path, &store_bytes).unwrap();
    assert!(read_all(&path, options().anchor_beside()).is_ok());
}

#[test]
fn anchoring_an_existing_store_for_the_first_time_goes_through_the_recovery_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    drop(busy_store(&path, options()));
    let anchor = MemoryAnchor::new();
    assert!(matches!(
        refusal(FileProvider::open_with(&path, key(), anchored(&anchor))),
        AnchorError::Missing { .. }
    ));
    let audit = MemoryAuditSink::new();
    FileProvider::accept_rollback(&path, key(), anchored(&anchor), &audit, &operator()).unwrap();
    assert_eq!(
        audit.records()[0].request_id.split(':').nth(1),
        Some("anchored=none")
    );
    assert!(read_all(&path, anchored(&anchor)).is_ok());
}

#[test]
fn another_stores_anchor_does_not_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.tyrum"), dir.path().join("b.tyrum"));
    let anchor_a = MemoryAnchor::new();
    drop(busy_store(&a, anchored(&anchor_a)));
    let anchor_b = MemoryAnchor::new();
    drop(busy_store(&b, anchored(&anchor_b)));
    anchor_b.set_bytes(anchor_a.bytes());
    assert!(matches!(
        refusal(FileProvider::open_with(&b, key(), anchored(&anchor_b))),
        AnchorError::Unauthenticated { .. }
    ));
}

#[test]
fn an_anchor_kept_in_another_provider_refuses_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let keeper: Arc<dyn SecretProvider> = Arc::new(MemoryProvider::new());
    let opts = || options().anchor(Anchor::provider(keeper.clone(), loc("anchors/store")));
    drop(busy_store(&path, opts()));
    let bytes = std::fs::read(&path).unwrap();
    assert!(read_all(&path, opts()).is_ok());
    std::fs::write(&path, &bytes[..boundaries(&bytes)[5]]).unwrap();
    let error = refusal(FileProvider::open_with(&path, key(), opts()));
    assert!(error.to_string().contains("anchors/store"), "{error}");
    // The provider keeps one version, not one per write.
    assert_eq!(keeper.versions(&loc("anchors/store")).unwrap().len(), 1);
}

#[test]
fn readers_follow_a_writer_that_keeps_rewriting_without_a_false_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    let writer = busy_store(&path, anchored(&anchor));
    let reader = FileProvider::open_with(&path, key(), anchored(&anchor)).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..40 {
                writer
                    .write(&loc("churn"), &secret(format!("c-{i}").as_bytes()))
                    .unwrap();
                writer.compact().unwrap();
            }
        });
        for _ in 0..400 {
            reader.list().unwrap();
        }
    });
    let latest = reader.read(&loc("churn"), VersionSelector::Latest).unwrap();
    assert_eq!(latest.value.expose_secret(), b"c-39");
}

/// An anchor read that races a rewrite: the first load returns the anchor
/// as it was before the rewrite was announced, later loads the real one.
#[derive(Debug)]
struct StaleOnce {
    real: MemoryAnchor,
    stale: std::sync::Mutex<Option<Vec<u8>>>,
    always: bool,
}

impl AnchorStore for StaleOnce {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        let mut stale = self.stale.lock().unwrap();
        match (stale.clone(), self.always) {
            (Some(bytes), true) => Ok(Some(bytes)),
            (Some(bytes), false) => {
                *stale = None;
                Ok(Some(bytes))
            }
            (None, _) => self.real.load(),
        }
    }
    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError> {
        self.real.save(bytes)
    }
    fn location(&self) -> String {
        "racing test anchor".to_owned()
    }
}

#[test]
fn a_reader_that_read_the_anchor_before_a_rewrite_and_the_file_after_it_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    let p = busy_store(&path, anchored(&anchor));
    let before_rewrite = anchor.bytes();
    p.compact().unwrap();
    let racing = |always| {
        options().anchor(Anchor::new(StaleOnce {
            real: anchor.clone(),
            stale: std::sync::Mutex::new(before_rewrite.clone()),
            always,
        }))
    };
    // The stale anchor names the previous chain: refused once, then the
    // fresh anchor accepts the file.
    assert!(read_all(&path, racing(false)).is_ok());
    // An anchor that stays stale is a real refusal.
    assert!(matches!(
        refusal(FileProvider::open_with(&path, key(), racing(true))),
        AnchorError::Diverged { .. }
    ));
}

fn v1_vector(dir: &Path) -> PathBuf {
    let path = dir.join("v1.tyrum");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    std::fs::copy(data.join("v1-rawkey.tyrum"), &path).unwrap();
    path
}

fn v1_key() -> KeySource {
    KeySource::Key(StoreKey::from_bytes(std::array::from_fn(|i| i as u8)))
}

#[test]
fn a_format_1_store_upgrades_in_place_and_then_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_vector(dir.path());
    let p = FileProvider::open_with(&path, v1_key(), options()).unwrap();
    assert_eq!(p.format_version(), 1);
    // Appending to a format-1 store keeps it format 1.
    p.write(&loc("demo/api-key"), &secret(b"appended-to-v1"))
        .unwrap();
    assert_eq!(p.format_version(), 1);
    drop(p);
    let anchor = MemoryAnchor::new();
    let error = FileProvider::open_with(&path, v1_key(), anchored(&anchor))
        .err()
        .unwrap();
    assert!(
        matches!(error, FileError::UpgradeRequired { .. }),
        "{error}"
    );
    assert!(FileProvider::upgrade(&path, v1_key(), anchored(&anchor)).unwrap());
    assert!(!FileProvider::upgrade(&path, v1_key(), anchored(&anchor)).unwrap());
    let p = FileProvider::open_with(&path, v1_key(), anchored(&anchor)).unwrap();
    assert_eq!(p.format_version(), 2);
    let read = |v| {
        p.read(
            &loc("demo/api-key"),
            VersionSelector::Exact(Version::new(v).unwrap()),
        )
        .unwrap()
        .value
        .expose_secret()
        .to_vec()
    };
    assert_eq!(read(1), b"sk-raw-key-vector");
    assert_eq!(read(2), b"appended-to-v1");
    // A format-1 copy put back in place of the upgraded store is an old copy.
    drop(p);
    let upgraded = std::fs::read(&path).unwrap();
    let vector_copy = v1_vector(dir.path());
    assert!(matches!(
        refusal(FileProvider::open_with(
            &vector_copy,
            v1_key(),
            anchored(&anchor)
        )),
        AnchorError::Diverged { .. }
    ));
    assert!(matches!(
        FileProvider::upgrade(&vector_copy, v1_key(), anchored(&anchor)),
        Err(FileError::Anchor { .. })
    ));
    let audit = MemoryAuditSink::new();
    let p = FileProvider::accept_rollback(
        &vector_copy,
        v1_key(),
        anchored(&anchor),
        &audit,
        &operator(),
    )
    .unwrap();
    assert_eq!(p.format_version(), 2);
    assert_eq!(audit.len(), 1);
    assert_ne!(std::fs::read(&vector_copy).unwrap(), upgraded);
}

#[test]
fn a_damaged_sibling_anchor_is_refused_and_replaced_only_by_the_recovery_call() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    drop(busy_store(&path, options().anchor_beside()));
    let anchor_path = dir.path().join("store.tyrum.anchor");
    std::fs::write(&anchor_path, b"not an anchor").unwrap();
    assert!(matches!(
        refusal(FileProvider::open_with(
            &path,
            key(),
            options().anchor_beside()
        )),
        AnchorError::Malformed { .. }
    ));
    let audit = MemoryAuditSink::new();
    FileProvider::accept_rollback(&path, key(), options().anchor_beside(), &audit, &operator())
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(std::fs::metadata(&anchor_path).unwrap().len(), 8192);
    assert!(read_all(&path, options().anchor_beside()).is_ok());
}
