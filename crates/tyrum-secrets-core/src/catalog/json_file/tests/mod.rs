//! The JSON-file catalog store: special files and size limits here; the
//! authenticated mode's refusals of edits in `edits`, and of rollbacks,
//! lost anchors and its crash rule in `rollback`.

mod edits;
mod rollback;

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::anchor::{AnchorError, AnchorStore, MemoryAnchor};
use crate::{EntryStatus, ProviderId, Scope, SecretBytes, SecretHandle, SecretKind, Timestamp};

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

/// Fails when `text` shows the test key, in hex or as `Debug` bytes.
fn assert_no_key(text: &str) {
    assert!(
        !text.contains("5a5a5a5a") && !text.contains("90, 90, 90"),
        "the key shows: {text}"
    );
}
