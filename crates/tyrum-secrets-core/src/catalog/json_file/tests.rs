//! The JSON-file catalog store: special files, size limits, and the
//! authenticated mode's refusals (edits, rollbacks, lost anchors) and its
//! crash rule.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::anchor::{AnchorError, AnchorStore, MemoryAnchor};
use crate::{EntryStatus, ProviderId, Scope, SecretBytes, SecretHandle, SecretKind, Timestamp};

/// Runs `open` on another thread and fails the test if it does not
/// return: a catalog pointed at a FIFO must not wait for a writer.
fn without_hanging<T: Send + 'static>(open: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(open());
    });
    // Generous bound: only "does not hang".
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the catalog loader hangs on a special file")
}

fn special_file_error(result: Result<JsonFileCatalogStore, CatalogError>) -> io::ErrorKind {
    match result {
        Err(CatalogError::Io { source, .. }) => {
            let inner = source
                .get_ref()
                .and_then(|e| e.downcast_ref::<crate::durable::ReadFileError>());
            assert!(inner.is_some(), "{source}");
            source.kind()
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(store) => panic!("opened {store:?}"),
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_or_device_at_the_catalog_path_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("catalog.json");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for path in [fifo, PathBuf::from("/dev/zero")] {
        let plain = path.clone();
        let kind = special_file_error(without_hanging(move || JsonFileCatalogStore::open(plain)));
        assert_eq!(kind, io::ErrorKind::InvalidInput);
        let kind = special_file_error(without_hanging(move || {
            JsonFileCatalogStore::open_authenticated(path, key(), Anchor::new(MemoryAnchor::new()))
        }));
        assert_eq!(kind, io::ErrorKind::InvalidInput);
    }
}

#[test]
fn a_catalog_past_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    // Sparse: the length alone is past the limit.
    File::create(&path)
        .unwrap()
        .set_len(MAX_CATALOG_LEN + 1)
        .unwrap();
    let kind = special_file_error(JsonFileCatalogStore::open(path));
    assert_eq!(kind, io::ErrorKind::FileTooLarge);
}

fn key() -> CatalogKey {
    CatalogKey::new(SecretBytes::from(vec![0x5a; 32])).unwrap()
}

/// A new, active entry for a fresh handle.
fn entry() -> CatalogEntry {
    let handle = SecretHandle::new(
        HandleId::generate().unwrap(),
        ProviderId::new("memory").unwrap(),
        Scope::new("ci").unwrap(),
        SecretKind::ApiKey,
    );
    serde_json::from_value(serde_json::json!({
        "handle": handle,
        "locator": format!("tyrum/ci/{}", handle.id().as_str()),
        "current": {"pinned": 1},
        "status": {"state": "active"},
        "created_at": Timestamp::now(),
    }))
    .unwrap()
}

/// An authenticated store over `anchor` (clones share its bytes).
fn open(path: &Path, anchor: &impl TestAnchor) -> Result<JsonFileCatalogStore, CatalogError> {
    JsonFileCatalogStore::open_authenticated(path, key(), anchor.anchor())
}

/// Anchors the tests keep a handle on.
trait TestAnchor {
    fn anchor(&self) -> Anchor;
}

impl TestAnchor for MemoryAnchor {
    fn anchor(&self) -> Anchor {
        Anchor::new(self.clone())
    }
}

/// A memory anchor whose saves fail while `failing` is set (loads work):
/// an anchor that cannot be advanced.
#[derive(Clone, Debug, Default)]
struct SavesFail {
    inner: MemoryAnchor,
    failing: Arc<AtomicBool>,
}

impl AnchorStore for SavesFail {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        self.inner.load()
    }
    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AnchorError::Unavailable {
                location: self.location(),
            });
        }
        self.inner.save(bytes)
    }
    fn location(&self) -> String {
        "saves-fail".to_owned()
    }
}

impl TestAnchor for SavesFail {
    fn anchor(&self) -> Anchor {
        Anchor::new(self.clone())
    }
}

/// Creates `entry` and revokes it; returns the revoked entry's id.
fn create_and_revoke(store: &JsonFileCatalogStore) -> HandleId {
    let mut e = entry();
    let id = e.id().clone();
    let revision = store.compare_and_set(e.clone(), None).unwrap();
    e.status = EntryStatus::Revoked {
        at: Timestamp::now(),
        reason: "leaked".into(),
    };
    e.revision = revision;
    store.compare_and_set(e, Some(revision)).unwrap();
    id
}

fn is_revoked(store: &JsonFileCatalogStore, id: &HandleId) -> bool {
    store.get(id).unwrap().unwrap().is_revoked()
}

/// Flips every entry of the file at `path` back to active, keeping the
/// rest (the MAC included) as it was: what an attacker with write access
/// to the state directory, but not the key, can do.
fn un_revoke_by_hand(path: &Path) {
    edit_entries(path, |e| e.status = EntryStatus::Active);
}

/// Rewrites the entries of the authenticated file at `path` with `edit`,
/// laid out exactly as the store lays them out, and keeps every other byte
/// (the MAC included): so the only difference the store can see is the
/// edit itself.
fn edit_entries(path: &Path, edit: impl Fn(&mut CatalogEntry)) {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("\"entries\": ").unwrap() + "\"entries\": ".len();
    let end = text.rfind("\n}\n").unwrap();
    let mut entries: format::EntryMap = serde_json::from_str(&text[start..end]).unwrap();
    let unchanged = String::from_utf8(serde_json::to_vec_pretty(&entries).unwrap()).unwrap();
    assert_eq!(
        unchanged,
        text[start..end],
        "the splice reproduces the file"
    );
    entries.values_mut().for_each(edit);
    let body = String::from_utf8(serde_json::to_vec_pretty(&entries).unwrap()).unwrap();
    std::fs::write(path, format!("{}{body}{}", &text[..start], &text[end..])).unwrap();
}

#[test]
fn an_edit_that_un_revokes_an_entry_is_refused_never_believed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    let id = create_and_revoke(&store);
    assert!(is_revoked(&store, &id));

    un_revoke_by_hand(&path);
    // The running store sees the changed file and refuses it...
    let err = store.get(&id).unwrap_err();
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
    // ...and so does a new one.
    let err = open(&path, &anchor).unwrap_err();
    assert!(
        matches!(err, CatalogError::Tampered { ref path } if path.ends_with("catalog.json")),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("catalog.json") && text.contains("restore"),
        "{text}"
    );
    assert!(
        !text.contains(id.as_str()),
        "the message quotes nothing from the file: {text}"
    );
    // The plain store does not read it as a catalog either.
    assert!(matches!(
        JsonFileCatalogStore::open(&path),
        Err(CatalogError::Corrupt { .. })
    ));
}

/// Fails when `text` shows the test key, in hex or as `Debug` bytes.
fn assert_no_key(text: &str) {
    assert!(
        !text.contains("5a5a5a5a") && !text.contains("90, 90, 90"),
        "the key shows: {text}"
    );
}

#[test]
fn an_edited_scope_or_label_is_refused_like_an_edited_status() {
    type Edit = (&'static str, fn(&mut CatalogEntry));
    let edits: [Edit; 4] = [
        ("status", |e| e.status = EntryStatus::Active),
        ("scope", |e| {
            let h = e.handle.clone();
            e.handle = SecretHandle::new(
                h.id().clone(),
                h.provider().clone(),
                Scope::new("prod").unwrap(),
                h.kind(),
            );
        }),
        ("label value", |e| {
            e.labels.insert("team".into(), "attacker".into());
        }),
        ("label removed", |e| e.labels.clear()),
    ];
    for (what, edit) in edits {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.json");
        let anchor = MemoryAnchor::new();
        let store = open(&path, &anchor).unwrap();
        let mut e = entry();
        e.labels.insert("team".into(), "payments".into());
        let id = e.id().clone();
        let revision = store.compare_and_set(e.clone(), None).unwrap();
        e.status = EntryStatus::Revoked {
            at: Timestamp::now(),
            reason: "leaked".into(),
        };
        e.revision = revision;
        store.compare_and_set(e, Some(revision)).unwrap();
        let before = std::fs::read(&path).unwrap();

        edit_entries(&path, edit);
        assert_ne!(std::fs::read(&path).unwrap(), before, "{what}: no edit");
        for err in [
            store.get(&id).unwrap_err(),
            open(&path, &anchor).unwrap_err(),
        ] {
            assert!(
                matches!(err, CatalogError::Tampered { .. }),
                "{what}: {err}"
            );
            assert_no_key(&format!("{err} {err:?}"));
        }
        // Nothing of the edited file is served, not even other entries.
        assert!(store.list().is_err(), "{what}");

        // The same file put back exactly opens again: what was refused is
        // the edit, not the way the test rewrote the file.
        std::fs::write(&path, &before).unwrap();
        assert!(is_revoked(&open(&path, &anchor).unwrap(), &id), "{what}");
    }
}

#[test]
fn another_key_does_not_authenticate_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    create_and_revoke(&store);
    let other = CatalogKey::new(SecretBytes::from(vec![0xa5; 32])).unwrap();
    let err = JsonFileCatalogStore::open_authenticated(&path, other, anchor.anchor()).unwrap_err();
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
    assert_no_key(&format!("{err} {err:?}"));
    let short = CatalogKey::new(SecretBytes::from(vec![0x5a; 31])).unwrap_err();
    assert!(matches!(short, CatalogError::Invalid { .. }), "{short}");
    assert_no_key(&format!("{short} {short:?}"));
}

#[test]
fn an_older_copy_of_the_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    let active = entry();
    let id = active.id().clone();
    store.compare_and_set(active.clone(), None).unwrap();
    let before_revoke = std::fs::read(&path).unwrap();
    let mut revoked = active;
    revoked.status = EntryStatus::Revoked {
        at: Timestamp::now(),
        reason: "leaked".into(),
    };
    revoked.revision = 1;
    store.compare_and_set(revoked, Some(1)).unwrap();
    assert!(is_revoked(&store, &id));

    // The older copy is authentic (it was written under the key), but
    // behind the anchor.
    std::fs::write(&path, &before_revoke).unwrap();
    let err = store.get(&id).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err}"
    );
    let err = open(&path, &anchor).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("accept_authenticated"), "{err}");
}

#[test]
fn a_copy_rolled_back_with_its_anchor_is_refused_by_a_running_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    store.compare_and_set(entry(), None).unwrap();
    let (old_file, old_anchor) = (std::fs::read(&path).unwrap(), anchor.bytes());
    let id = create_and_revoke(&store);
    std::fs::write(&path, &old_file).unwrap();
    anchor.set_bytes(old_anchor);
    // The anchor alone would accept it; this process saw newer writes.
    let err = store.get(&id).unwrap_err();
    assert!(matches!(err, CatalogError::Anchor { .. }), "{err}");
}

#[test]
fn a_crash_between_the_rename_and_the_anchor_update_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    let id = create_and_revoke(&store);
    drop(store);
    // The revoke's rename happened; its anchor update did not.
    let history = anchor.history();
    let newest = history.last().cloned();
    anchor.set_bytes(Some(history[history.len() - 2].clone()));
    let store = open(&path, &anchor).unwrap();
    assert!(is_revoked(&store, &id), "the newest write is the one read");
    assert_eq!(anchor.bytes(), newest, "the open caught the anchor up");

    // The same after a crash in the very first write: the new catalog's
    // head was announced, then renamed into place, then nothing.
    let first = dir.path().join("first.json");
    let fresh = MemoryAnchor::new();
    drop(open(&first, &fresh).unwrap());
    let announced = fresh.history()[0].clone();
    fresh.set_bytes(Some(announced.clone()));
    open(&first, &fresh).unwrap();
    // And before the rename: the announcement alone, no file.
    std::fs::remove_file(&first).unwrap();
    fresh.set_bytes(Some(announced));
    assert!(open(&first, &fresh).unwrap().list().unwrap().is_empty());
}

#[test]
fn the_catalog_is_never_two_writes_ahead_of_its_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = SavesFail::default();
    let store = open(&path, &anchor).unwrap();
    let mut e = entry();
    let id = e.id().clone();
    let first = store.compare_and_set(e.clone(), None).unwrap();

    // The write stands although its anchor update failed: the file is one
    // write ahead, which is accepted.
    anchor.failing.store(true, Ordering::SeqCst);
    e.labels.insert("owner".into(), "ops".into());
    e.revision = first;
    let second = store.compare_and_set(e.clone(), Some(first)).unwrap();
    assert_eq!(store.get(&id).unwrap().unwrap().revision, second);
    assert!(
        open(
            &path,
            &SavesFail {
                inner: anchor.inner.clone(),
                failing: Arc::new(AtomicBool::new(true)),
            }
        )
        .is_err(),
        "an open that cannot catch the anchor up fails"
    );
    let ahead_by_one = std::fs::read(&path).unwrap();

    // The next write must catch the anchor up first; it cannot, so it
    // writes nothing.
    e.revision = second;
    e.labels.insert("owner".into(), "dev".into());
    let err = store.compare_and_set(e.clone(), Some(second)).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::Unavailable { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), ahead_by_one);

    anchor.failing.store(false, Ordering::SeqCst);
    store.compare_and_set(e, Some(second)).unwrap();
    let reopened = open(&path, &anchor).unwrap();
    assert_eq!(reopened.get(&id).unwrap().unwrap().labels["owner"], "dev");
}

#[test]
fn a_lost_anchor_or_a_deleted_catalog_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    create_and_revoke(&store);
    drop(store);

    let err = open(&path, &MemoryAnchor::new()).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::Missing { count: 3, .. },
                ..
            }
        ),
        "{err}"
    );
    // Deleting the catalog does not start an empty one (every revocation
    // gone): the anchor records a file.
    std::fs::remove_file(&path).unwrap();
    let err = open(&path, &anchor).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::FileMissing { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!path.exists());
}

#[test]
fn a_plain_catalog_is_refused_until_accepted_and_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let plain = JsonFileCatalogStore::open(&path).unwrap();
    let id = create_and_revoke(&plain);
    drop(plain);
    let anchor = MemoryAnchor::new();
    let err = open(&path, &anchor).unwrap_err();
    assert!(matches!(err, CatalogError::Unauthenticated { .. }), "{err}");
    assert!(err.to_string().contains("accept_authenticated"), "{err}");

    let (store, overridden) =
        JsonFileCatalogStore::accept_authenticated(&path, key(), anchor.anchor()).unwrap();
    assert!(matches!(
        overridden,
        Some(CatalogError::Unauthenticated { .. })
    ));
    assert!(store.is_authenticated());
    assert!(is_revoked(&store, &id), "the entries are kept");
    drop(store);
    let store = open(&path, &anchor).unwrap();
    assert!(is_revoked(&store, &id));
    // A plain store no longer reads it.
    let err = JsonFileCatalogStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("open_authenticated"), "{err}");

    // Accepting a file that opens rewrites nothing.
    let saves = anchor.history().len();
    let (_, overridden) =
        JsonFileCatalogStore::accept_authenticated(&path, key(), anchor.anchor()).unwrap();
    assert!(overridden.is_none());
    assert_eq!(anchor.history().len(), saves);
}

#[test]
fn accepting_a_rolled_back_copy_starts_a_new_generation_but_an_edit_is_never_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let store = open(&path, &anchor).unwrap();
    let kept = entry();
    store.compare_and_set(kept.clone(), None).unwrap();
    let old = std::fs::read(&path).unwrap();
    create_and_revoke(&store);
    drop(store);

    std::fs::write(&path, &old).unwrap();
    let (store, overridden) =
        JsonFileCatalogStore::accept_authenticated(&path, key(), anchor.anchor()).unwrap();
    assert!(
        matches!(
            overridden,
            Some(CatalogError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            })
        ),
        "{overridden:?}"
    );
    assert_eq!(store.list().unwrap().len(), 1);
    store.compare_and_set(entry(), None).unwrap();
    drop(store);
    let reopened = open(&path, &anchor).unwrap();
    assert_eq!(reopened.list().unwrap().len(), 2);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"generation\": 2"), "{text}");

    create_and_revoke(&reopened);
    drop(reopened);
    un_revoke_by_hand(&path);
    let err =
        JsonFileCatalogStore::accept_authenticated(&path, key(), anchor.anchor()).unwrap_err();
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
}

#[test]
fn key_and_store_debug_show_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let store = open(&path, &MemoryAnchor::new()).unwrap();
    let text = format!("{:?} {store:?}", key());
    assert!(!text.contains("5a5a") && !text.contains("90, 90"), "{text}");
    assert!(text.contains("authenticated: true"), "{text}");
}

#[test]
fn a_key_in_the_provider_is_made_once_then_read_and_never_made_again_unasked() {
    use crate::MemoryProvider;
    use crate::provider::{Locator, ProviderError, SecretProvider};
    let provider = MemoryProvider::new();
    let at = Locator::new("tyrum-secrets-internal/catalog-key").unwrap();
    let missing = CatalogKey::in_provider(&provider, &at, false).unwrap_err();
    assert!(
        matches!(
            missing,
            CatalogError::Provider(ProviderError::NotFound { .. })
        ),
        "{missing}"
    );
    assert!(provider.list().unwrap().is_empty(), "nothing was made");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = MemoryAnchor::new();
    let made = CatalogKey::in_provider(&provider, &at, true).unwrap();
    let id = create_and_revoke(
        &JsonFileCatalogStore::open_authenticated(&path, made, anchor.anchor()).unwrap(),
    );
    // Read back (`create` or not), it is the same key: the catalog opens.
    for create in [false, true] {
        let read = CatalogKey::in_provider(&provider, &at, create).unwrap();
        let store = JsonFileCatalogStore::open_authenticated(&path, read, anchor.anchor()).unwrap();
        assert!(is_revoked(&store, &id));
    }
    assert_eq!(provider.list().unwrap().len(), 1);

    provider
        .write(&at, &SecretBytes::from(vec![0x5a; 16]))
        .unwrap();
    let short = CatalogKey::in_provider(&provider, &at, true).unwrap_err();
    assert!(matches!(short, CatalogError::Invalid { .. }), "{short}");
    assert_no_key(&format!("{short} {short:?}"));
}
