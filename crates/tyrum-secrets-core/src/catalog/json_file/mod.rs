//! A catalog in one JSON file, shared by every process that opens it.
//!
//! Reads of a plain store take no lock: writers replace the file
//! atomically, so a reader sees the old or the new catalog, never a mix.
//! Writers in any process are serialized by an exclusive `flock` on a
//! sibling `.lock` file, which the kernel releases when a writer dies, so a
//! crash never leaves a stale lock. Each write goes to a temporary file, is
//! fsynced, renamed over the catalog, and the directory is fsynced: once
//! `compare_and_set` returns `Ok`, the change survives SIGKILL and power
//! loss.
//!
//! An authenticated store ([`JsonFileCatalogStore::open_authenticated`])
//! also MACs every write and keeps a rollback anchor; see there.
//!
//! - `format`: the file's two versions, parsing and writing;
//! - `key`: [`CatalogKey`], which MACs the file and seals its anchor;
//! - `authenticated`: the checks and writes of an authenticated store;
//! - `disk`: locks, atomic writes, file stamps.

mod authenticated;
mod disk;
mod format;
mod key;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::store::apply_compare_and_set;
use super::{CatalogEntry, CatalogError, CatalogStore};
use crate::HandleId;
use crate::anchor::{Anchor, AnchorSeal};
use crate::durable::FileStamp;
use crate::durable::read_regular_file;
use authenticated::is_acceptable;
use format::{EntryMap, FileHead};

pub use key::CatalogKey;

/// A parsed catalog, shared between the cache and readers.
type Entries = Arc<EntryMap>;

/// The largest catalog file read: 64 MiB, some 100 000 entries.
const MAX_CATALOG_LEN: u64 = 64 << 20;
/// How long a writer waits for the lock before giving up.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A [`CatalogStore`] in a JSON file, safe for several processes.
///
/// ```
/// use tyrum_secrets_core::{CatalogStore, JsonFileCatalogStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = JsonFileCatalogStore::open(dir.path().join("catalog.json"))?;
/// assert!(store.list()?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Authenticated mode
///
/// A plain catalog file has no integrity of its own: whoever can write it
/// can flip a revoked entry back to active (no `Restore` record anywhere),
/// or put an older copy back and resurrect what was revoked since.
/// [`open_authenticated`](Self::open_authenticated) closes both:
///
/// - every write carries an HMAC-SHA256 under a [`CatalogKey`] over its
///   entries, its write count and the MAC of the write before; a file that
///   does not authenticate is [`CatalogError::Tampered`], and nothing in
///   it is used;
/// - a rollback [`Anchor`] keeps the head of the newest write somewhere
///   else, checked on every load and advanced after every write; an older
///   copy of the file, or one that does not continue the anchored write,
///   is [`CatalogError::Anchor`].
///
/// The crash rule is the audit log's and the file store's: the anchor is
/// advanced after the rename, so after a crash the file may be one write
/// ahead of its anchor — accepted, because the file names the MAC of the
/// write before it — and never behind. An anchor that cannot be advanced
/// after a write is left one write behind (the write stands); the next
/// write advances it first, and fails if it still cannot, so the file is
/// never two writes ahead.
///
/// Where the anchor lives decides what it catches: [`Anchor::beside`] (a
/// sibling `catalog.json.anchor`) only catches the catalog file rolled back
/// on its own; whoever can replace the whole directory replaces the anchor
/// with it. Keep the key and, where possible, the anchor
/// ([`Anchor::provider`]: a keychain entry, the encrypted file store, an
/// OpenBao path) where the catalog's writers cannot reach them.
///
/// Loads of an authenticated store take the lock shared for a moment
/// when the file changed, so they never read a file and an anchor from two
/// different writes.
///
/// How a deployment wires it (the facade's `Secrets::open`): the key and
/// the anchor both live in the profile's secret provider, the catalog file
/// in the state directory.
///
/// ```
/// use std::sync::Arc;
/// use tyrum_secrets_core::provider::{Locator, SecretProvider};
/// use tyrum_secrets_core::{
///     Anchor, CatalogError, CatalogKey, CatalogStore, JsonFileCatalogStore, MemoryProvider,
/// };
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("catalog.json");
/// let provider: Arc<dyn SecretProvider> = Arc::new(MemoryProvider::new());
/// let key_at = Locator::new("tyrum-secrets-internal/catalog-key")?;
/// let anchor_at = Locator::new("tyrum-secrets-internal/catalog-anchor")?;
///
/// // First open of a new state directory: make the key.
/// let key = CatalogKey::in_provider(&*provider, &key_at, true)?;
/// let anchor = Anchor::provider(Arc::clone(&provider), anchor_at.clone());
/// let store = JsonFileCatalogStore::open_authenticated(&path, key, anchor)?;
/// assert!(store.list()?.is_empty());
/// drop(store);
///
/// // Every later open: the key must be there already.
/// let key = CatalogKey::in_provider(&*provider, &key_at, false)?;
/// let anchor = Anchor::provider(Arc::clone(&provider), anchor_at);
/// let store = JsonFileCatalogStore::open_authenticated(&path, key.clone(), anchor.clone())?;
///
/// // An edit made outside the store is refused, not believed.
/// let text = std::fs::read_to_string(&path)?;
/// std::fs::write(&path, text.replace("\"entries\": {}", "\"entries\": { }"))?;
/// assert!(matches!(store.list(), Err(CatalogError::Tampered { .. })));
/// let reopened = JsonFileCatalogStore::open_authenticated(&path, key, anchor);
/// assert!(matches!(reopened, Err(CatalogError::Tampered { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonFileCatalogStore {
    path: PathBuf,
    lock_path: PathBuf,
    lock_timeout: Duration,
    auth: Option<Auth>,
    cache: Mutex<Option<Cached>>,
}

/// What an authenticated store checks with.
struct Auth {
    key: CatalogKey,
    seal: AnchorSeal,
    anchor: Anchor,
}

/// The last state read or written.
struct Cached {
    stamp: FileStamp,
    entries: Entries,
    /// For an authenticated store: the newest head this process has seen,
    /// so a file rolled back together with its anchor while the process
    /// runs is refused all the same.
    head: Option<FileHead>,
}

impl JsonFileCatalogStore {
    /// Opens the catalog at `path`, creating an empty one if the file does
    /// not exist. The parent directory must exist.
    ///
    /// Only a regular file of at most 64 MiB is read
    /// ([`read_regular_file`]): a path naming a FIFO or a device fails at
    /// once instead of hanging or filling memory.
    ///
    /// # Errors
    /// [`CatalogError::Corrupt`] when the file is not a catalog (or is an
    /// authenticated one: open it with
    /// [`open_authenticated`](Self::open_authenticated)),
    /// [`CatalogError::Io`] when it cannot be read or created; its source
    /// has kind `InvalidInput` for a FIFO, device, socket or directory and
    /// `FileTooLarge` past the limit, with a
    /// [`ReadFileError`](crate::durable::ReadFileError) inside.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CatalogError> {
        let store = Self::new(path.into(), None);
        if !store.path.exists() {
            let _lock = store.lock()?;
            if !store.path.exists() {
                store.write_bytes(&store.encode_plain(&BTreeMap::new())?)?;
            }
        }
        store.load()?;
        Ok(store)
    }

    /// Opens the catalog at `path` in authenticated mode (see the
    /// [type docs](Self#authenticated-mode)): every write is MACed under
    /// `key` and advances `anchor`, and every load checks both. A missing
    /// file is created empty, and the anchor started, unless the anchor
    /// records a file (then the catalog was deleted: refused).
    ///
    /// The facade keeps `key` in the profile's secret provider and the
    /// anchor in the provider or beside the file.
    ///
    /// # Errors
    /// As [`open`](Self::open), and
    /// - [`CatalogError::Tampered`]: the file does not authenticate under
    ///   `key` (edited, or another catalog's key);
    /// - [`CatalogError::Unauthenticated`]: a plain (version 1) catalog is
    ///   at `path` — an older deployment's, or a replacement; seal it with
    ///   [`accept_authenticated`](Self::accept_authenticated) if it is
    ///   right;
    /// - [`CatalogError::Anchor`]: the anchor refuses the file (an older
    ///   copy, another history, no anchor for an existing file, an anchor
    ///   for a missing file, an anchor under another key), or the anchor
    ///   cannot be read or advanced.
    pub fn open_authenticated(
        path: impl Into<PathBuf>,
        key: CatalogKey,
        anchor: Anchor,
    ) -> Result<Self, CatalogError> {
        let path = path.into();
        let store = Self::new(path.clone(), Some(Self::auth(&path, key, anchor)?));
        store.open_checked()?;
        Ok(store)
    }

    /// Opens the catalog at `path` in authenticated mode, accepting the file
    /// as it is now even where [`open_authenticated`](Self::open_authenticated)
    /// refuses it: a plain (version 1) catalog being authenticated for the
    /// first time, or a file its anchor refuses (an older copy, another
    /// history, a lost or foreign anchor, a deleted file: then an empty
    /// catalog). The file is sealed again as the first write of a new
    /// generation and the anchor restarted at it.
    ///
    /// This is the operator's explicit recovery call: it returns the
    /// refusal it overrode (`None` when `open_authenticated` would have
    /// accepted the file and nothing was rewritten), which the caller must
    /// record in the audit log. A file whose MAC fails (an edit) is never
    /// accepted: restore a copy.
    ///
    /// # Errors
    /// As [`open_authenticated`](Self::open_authenticated), for the errors
    /// it does not override: [`CatalogError::Tampered`],
    /// [`CatalogError::Corrupt`], I/O and lock errors, and an anchor that
    /// cannot be read or written.
    pub fn accept_authenticated(
        path: impl Into<PathBuf>,
        key: CatalogKey,
        anchor: Anchor,
    ) -> Result<(Self, Option<CatalogError>), CatalogError> {
        let path = path.into();
        let store = Self::new(path.clone(), Some(Self::auth(&path, key, anchor)?));
        let overridden = match store.open_checked() {
            Ok(()) => None,
            Err(refusal) if is_acceptable(&refusal) => {
                store.reseal()?;
                Some(refusal)
            }
            Err(e) => return Err(e),
        };
        Ok((store, overridden))
    }

    /// Sets how long a writer waits for another process's lock before
    /// failing with [`CatalogError::Locked`] (default 10 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The catalog file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this store authenticates its file
    /// ([`open_authenticated`](Self::open_authenticated)).
    pub fn is_authenticated(&self) -> bool {
        self.auth.is_some()
    }

    fn new(path: PathBuf, auth: Option<Auth>) -> Self {
        let mut lock_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        lock_name.push(".lock");
        Self {
            lock_path: path.with_file_name(lock_name),
            path,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            auth,
            cache: Mutex::new(None),
        }
    }

    fn auth(path: &Path, key: CatalogKey, anchor: Anchor) -> Result<Auth, CatalogError> {
        let seal = key.anchor_seal().map_err(|source| CatalogError::Anchor {
            path: path.to_owned(),
            source,
        })?;
        Ok(Auth { key, seal, anchor })
    }

    /// The newest entries on disk; reparses (and, authenticated, checks
    /// again) only when the file changed.
    fn load(&self) -> Result<Entries, CatalogError> {
        if let Ok(stamp) = FileStamp::of(&self.path)
            && let Some(entries) = self.cached(stamp)
        {
            return Ok(entries);
        }
        let Some(auth) = &self.auth else {
            let stamp = FileStamp::of(&self.path).map_err(|source| self.io("read", source))?;
            let bytes = read_regular_file(&self.path, MAX_CATALOG_LEN)
                .map_err(|e| self.io("read", e.into()))?;
            let entries = Arc::new(format::parse_plain(&bytes, &self.path)?);
            self.remember(stamp, Arc::clone(&entries), None)?;
            return Ok(entries);
        };
        self.load_sealed(auth)
    }

    fn cached(&self, stamp: FileStamp) -> Option<Entries> {
        let cache = self.lock_cache();
        let cached = cache.as_ref()?;
        (stamp.is_some() && cached.stamp == stamp).then(|| Arc::clone(&cached.entries))
    }

    fn lock_cache(&self) -> MutexGuard<'_, Option<Cached>> {
        // Every change under the lock is one assignment: a poisoned cache
        // is still consistent.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for JsonFileCatalogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileCatalogStore")
            .field("path", &self.path)
            .field("authenticated", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

impl CatalogStore for JsonFileCatalogStore {
    fn get(&self, id: &HandleId) -> Result<Option<CatalogEntry>, CatalogError> {
        Ok(self.load()?.get(id).cloned())
    }

    fn list(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        Ok(self.load()?.values().cloned().collect())
    }

    fn compare_and_set(
        &self,
        entry: CatalogEntry,
        expected: Option<u64>,
    ) -> Result<u64, CatalogError> {
        let _lock = self.lock()?;
        let Some(auth) = &self.auth else {
            let mut entries = (*self.load()?).clone();
            let revision = apply_compare_and_set(&mut entries, entry, expected)?;
            self.write_bytes(&self.encode_plain(&entries)?)?;
            return Ok(revision);
        };
        self.compare_and_set_sealed(auth, entry, expected)
    }
}
