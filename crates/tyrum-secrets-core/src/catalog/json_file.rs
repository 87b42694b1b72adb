//! A catalog in one JSON file, shared by every process that opens it.
//!
//! Reads take no lock: writers replace the file atomically, so a reader sees
//! the old or the new catalog, never a mix. Writers in any process are
//! serialized by an exclusive `flock` on a sibling `.lock` file, which the
//! kernel releases when a writer dies, so a crash never leaves a stale lock.
//! Each write goes to a temporary file, is fsynced, renamed over the catalog,
//! and the directory is fsynced: once `compare_and_set` returns `Ok`, the
//! change survives SIGKILL and power loss.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::store::apply_compare_and_set;
use super::{CatalogEntry, CatalogError, CatalogStore};
use crate::HandleId;
use crate::durable::{open_private, read_regular_file, sync_parent_dir};
use crate::mutation::{self, Mutation};

/// A parsed catalog, shared between the cache and readers.
type Entries = Arc<BTreeMap<HandleId, CatalogEntry>>;

const FORMAT: &str = "tyrum-secrets-catalog";
const FORMAT_VERSION: u32 = 1;
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
pub struct JsonFileCatalogStore {
    path: PathBuf,
    lock_path: PathBuf,
    lock_timeout: Duration,
    cache: Mutex<Option<(FileStamp, Entries)>>,
}

#[derive(Serialize, Deserialize)]
struct CatalogFile {
    format: String,
    version: u32,
    entries: BTreeMap<HandleId, CatalogEntry>,
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
    /// [`CatalogError::Corrupt`] when the file is not a catalog,
    /// [`CatalogError::Io`] when it cannot be read or created; its source
    /// has kind `InvalidInput` for a FIFO, device, socket or directory and
    /// `FileTooLarge` past the limit, with a
    /// [`ReadFileError`](crate::durable::ReadFileError) inside.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, CatalogError> {
        let path = path.into();
        let mut lock_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        lock_name.push(".lock");
        let store = Self {
            lock_path: path.with_file_name(lock_name),
            path,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            cache: Mutex::new(None),
        };
        if !store.path.exists() {
            let _lock = store.lock()?;
            if !store.path.exists() {
                store.write_file(&BTreeMap::new())?;
            }
        }
        store.load()?;
        Ok(store)
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

    /// The newest entries on disk; reparses only when the file changed.
    fn load(&self) -> Result<Entries, CatalogError> {
        let stamp = FileStamp::of(&self.path).map_err(|source| self.io("read", source))?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, entries)) = cache.as_ref()
            && stamp.is_some()
            && *cached == stamp
        {
            return Ok(Arc::clone(entries));
        }
        let bytes = read_regular_file(&self.path, MAX_CATALOG_LEN)
            .map_err(|e| self.io("read", e.into()))?;
        let entries = Arc::new(self.parse(&bytes)?);
        *cache = Some((stamp, Arc::clone(&entries)));
        Ok(entries)
    }

    fn parse(&self, bytes: &[u8]) -> Result<BTreeMap<HandleId, CatalogEntry>, CatalogError> {
        // serde_json's messages quote the input ("invalid type: string
        // \"...\""); a catalog path pointed at the wrong file must not copy
        // its content into an error, so only the class and place are kept.
        let file: CatalogFile = serde_json::from_slice(bytes).map_err(|e| {
            use serde_json::error::Category;
            let what = match e.classify() {
                Category::Eof => "the file ends early",
                Category::Syntax => "invalid JSON syntax",
                Category::Data | Category::Io => "JSON that is not a catalog",
            };
            self.corrupt(format!(
                "{what} at line {}, column {}",
                e.line(),
                e.column()
            ))
        })?;
        if file.format != FORMAT {
            return Err(self.corrupt(format!("its format is not {FORMAT:?}")));
        }
        if file.version != FORMAT_VERSION {
            return Err(self.corrupt(format!(
                "format version {} is not supported (this build reads {FORMAT_VERSION})",
                file.version
            )));
        }
        if let Some((key, _)) = file.entries.iter().find(|(key, entry)| *key != entry.id()) {
            return Err(self.corrupt(format!("entry under {key} carries another handle id")));
        }
        Ok(file.entries)
    }

    fn lock(&self) -> Result<WriterLock, CatalogError> {
        let file =
            open_private(&self.lock_path, false).map_err(|source| self.io("open lock", source))?;
        let deadline = Instant::now() + self.lock_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriterLock(file)),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(CatalogError::Locked {
                        path: self.lock_path.clone(),
                        waited: self.lock_timeout,
                    });
                }
                Err(fs::TryLockError::Error(source)) => return Err(self.io("lock", source)),
            }
        }
    }

    fn write_file(&self, entries: &BTreeMap<HandleId, CatalogEntry>) -> Result<(), CatalogError> {
        let file = CatalogFile {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            entries: entries.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| self.corrupt(e.to_string()))?;
        let mut tmp_name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        if mutation::active(Mutation::TornCatalog) {
            return torn_write(&self.path, &bytes).map_err(|source| self.io("write", source));
        }
        let result = (|| {
            // We hold the writer lock, so a leftover temporary file is debris
            // from a writer that died mid-write.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut out = open_private(&tmp, true)?;
            out.write_all(&bytes)?;
            out.sync_all()?;
            drop(out);
            fs::rename(&tmp, &self.path)?;
            sync_parent_dir(&self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|source| self.io("write", source))
    }

    fn io(&self, context: &'static str, source: io::Error) -> CatalogError {
        CatalogError::Io {
            context: format!("{context} catalog {}", self.path.display()),
            source,
        }
    }

    fn corrupt(&self, message: String) -> CatalogError {
        CatalogError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }
}

/// [`Mutation::TornCatalog`]: the catalog rewritten in place, half of it,
/// a pause, the rest; a crash in between leaves half a catalog.
fn torn_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let half = bytes.len() / 2;
    out.write_all(&bytes[..half])?;
    std::thread::sleep(Duration::from_millis(20));
    out.write_all(&bytes[half..])
}

impl fmt::Debug for JsonFileCatalogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileCatalogStore")
            .field("path", &self.path)
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
        let mut entries = (*self.load()?).clone();
        let revision = apply_compare_and_set(&mut entries, entry, expected)?;
        self.write_file(&entries)?;
        Ok(revision)
    }
}

/// Holds the writer lock; the kernel releases it on drop or process death.
struct WriterLock(File);

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Identifies one version of the catalog file. A rename always produces a
/// new inode, so a changed stamp means a changed file.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp(Option<(u64, u64, u64, i64, i64)>);

impl FileStamp {
    fn of(path: &Path) -> io::Result<Self> {
        let meta = fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            Ok(Self(Some((
                meta.dev(),
                meta.ino(),
                meta.len(),
                meta.mtime(),
                meta.mtime_nsec(),
            ))))
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(Self(None))
        }
    }

    fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let kind =
                special_file_error(without_hanging(move || JsonFileCatalogStore::open(path)));
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
}
