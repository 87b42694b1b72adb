//! Rollbacks and the crash rule: an older copy, a copy rolled back with
//! its anchor, a lost anchor or a deleted file, the explicit acceptance,
//! and the anchor never two writes behind.

use super::*;

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

/// What [`HookOnLoad`] runs, once.
type Hook = Box<dyn FnOnce() + Send>;

/// A memory anchor that runs a hook once, inside its next load, after the
/// bytes were read: another writer acting between a reader's anchor read
/// and its file read.
#[derive(Clone, Default)]
struct HookOnLoad {
    inner: MemoryAnchor,
    hook: Arc<std::sync::Mutex<Option<Hook>>>,
}

impl std::fmt::Debug for HookOnLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookOnLoad")
    }
}

impl AnchorStore for HookOnLoad {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        let bytes = self.inner.load();
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        bytes
    }
    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError> {
        self.inner.save(bytes)
    }
    fn location(&self) -> String {
        "hook-on-load".to_owned()
    }
}

impl TestAnchor for HookOnLoad {
    fn anchor(&self) -> Anchor {
        Anchor::new(self.clone())
    }
}

#[test]
fn a_load_holds_writers_off_between_reading_the_anchor_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let anchor = HookOnLoad::default();
    let reader = open(&path, &anchor).unwrap();
    let writer = Arc::new(
        open(&path, &anchor)
            .unwrap()
            .with_lock_timeout(Duration::from_millis(50)),
    );
    let e = entry();
    let id = e.id().clone();
    let revision = writer.compare_and_set(e.clone(), None).unwrap();

    // The reader's next load reads the anchor; right then the writer tries
    // two more writes. Were they let through, the file would be two writes
    // ahead of the anchor the reader holds, and refused as another history.
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (w, r) = (Arc::clone(&writer), Arc::clone(&results));
    *anchor.hook.lock().unwrap() = Some(Box::new(move || {
        let (mut e, mut expected) = (e, revision);
        for label in ["a", "b"] {
            e.labels.insert(label.into(), "x".into());
            e.revision = expected;
            let result = w.compare_and_set(e.clone(), Some(expected));
            if let Ok(next) = result {
                expected = next;
            }
            r.lock().unwrap().push(result);
        }
    }));
    let listed = reader.list();
    assert!(anchor.hook.lock().unwrap().is_none(), "the hook ran");
    let listed = listed.unwrap_or_else(|e| panic!("the reader's load failed: {e}"));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id(), &id);
    for result in results.lock().unwrap().iter() {
        assert!(
            matches!(result, Err(CatalogError::Locked { .. })),
            "a writer got in during a load: {result:?}"
        );
    }
    // Once the load is done, writers go on.
    let mut e = reader.get(&id).unwrap().unwrap();
    e.labels.insert("c".into(), "x".into());
    writer.compare_and_set(e, Some(revision)).unwrap();
}
