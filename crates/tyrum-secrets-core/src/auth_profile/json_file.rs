//! Auth profiles and pins in one JSON file, shared by every process that
//! opens it.
//!
//! As the catalog's JSON file: reads take no lock (writers replace the file
//! atomically, so a reader sees the old or the new state, never a mix);
//! writers in any process are serialized by a `flock` on a sibling `.lock`
//! file, which the kernel releases when a writer dies; each write goes to a
//! temporary file, is fsynced, renamed over the store, and the directory is
//! fsynced, so once a write returns `Ok` it survives SIGKILL and power loss.
//!
//! Refresh locks are `flock`s on one file per profile in a sibling
//! `<store>.refresh` directory. A `flock` belongs to an open file, so it
//! excludes other threads of this process as well as other processes.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::store::RefreshLock;
use super::{AuthProfile, AuthProfileError, AuthProfileStore, Pin, PinKey, ProfileId, ProfileSet};
use crate::durable::{FileStamp, open_private, read_regular_file, sync_parent_dir};

const FORMAT: &str = "tyrum-secrets-auth-profiles";
const FORMAT_VERSION: u32 = 1;
/// The largest store file read: far more than any set of profiles needs.
const MAX_STORE_LEN: u64 = 64 << 20;
/// How long a writer waits for the store's lock before giving up.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// An [`AuthProfileStore`] in a JSON file, safe for several processes.
///
/// ```
/// use tyrum_secrets_core::{AuthProfileStore, JsonFileAuthProfileStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = JsonFileAuthProfileStore::open(dir.path().join("profiles.json"))?;
/// assert!(store.snapshot()?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonFileAuthProfileStore {
    path: PathBuf,
    lock_path: PathBuf,
    refresh_dir: PathBuf,
    lock_timeout: Duration,
    cache: Mutex<Option<(FileStamp, Arc<ProfileSet>)>>,
}

#[derive(Deserialize)]
struct ProfileFile {
    format: String,
    version: u32,
    profiles: BTreeMap<ProfileId, AuthProfile>,
    #[serde(default)]
    pins: Vec<PinRecord>,
}

#[derive(Deserialize)]
struct PinRecord {
    #[serde(flatten)]
    key: PinKey,
    #[serde(flatten)]
    pin: Pin,
}

/// What is written: [`ProfileFile`] borrowed from a [`ProfileSet`].
#[derive(Serialize)]
struct ProfileFileOut<'a> {
    format: &'static str,
    version: u32,
    profiles: BTreeMap<&'a ProfileId, &'a AuthProfile>,
    pins: Vec<PinRecordOut<'a>>,
}

#[derive(Serialize)]
struct PinRecordOut<'a> {
    #[serde(flatten)]
    key: &'a PinKey,
    #[serde(flatten)]
    pin: &'a Pin,
}

impl JsonFileAuthProfileStore {
    /// Opens the store at `path`, creating an empty one if the file does not
    /// exist. The parent directory must exist.
    ///
    /// Only a regular file of at most 64 MiB is read
    /// ([`read_regular_file`]): a path naming a FIFO or a device fails at
    /// once instead of hanging or filling memory.
    ///
    /// # Errors
    /// [`AuthProfileError::Corrupt`] when the file is not an auth-profile
    /// store, [`AuthProfileError::Io`] when it cannot be read or created
    /// (kind `InvalidInput` for a FIFO, device, socket or directory).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AuthProfileError> {
        let path = path.into();
        let store = Self {
            lock_path: sibling(&path, ".lock"),
            refresh_dir: sibling(&path, ".refresh"),
            path,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            cache: Mutex::new(None),
        };
        if !store.path.exists() {
            let _lock = store.lock()?;
            if !store.path.exists() {
                store.write_file(&ProfileSet::new())?;
            }
        }
        store.load()?;
        Ok(store)
    }

    /// Sets how long a writer waits for another process's lock before
    /// failing with [`AuthProfileError::Locked`] (default 10 s).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The newest state on disk; reparses only when the file changed.
    fn load(&self) -> Result<Arc<ProfileSet>, AuthProfileError> {
        let stamp = FileStamp::of(&self.path).map_err(|source| self.io("read", source))?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, set)) = cache.as_ref()
            && stamp.is_some()
            && *cached == stamp
        {
            return Ok(Arc::clone(set));
        }
        let bytes =
            read_regular_file(&self.path, MAX_STORE_LEN).map_err(|e| self.io("read", e.into()))?;
        let set = Arc::new(self.parse(&bytes)?);
        *cache = Some((stamp, Arc::clone(&set)));
        Ok(set)
    }

    fn parse(&self, bytes: &[u8]) -> Result<ProfileSet, AuthProfileError> {
        // serde_json's messages may quote the input; a store path pointed at
        // the wrong file must not copy its content into an error, so only
        // the class and place are kept.
        let file: ProfileFile = serde_json::from_slice(bytes).map_err(|e| {
            use serde_json::error::Category;
            let what = match e.classify() {
                Category::Eof => "the file ends early",
                Category::Syntax => "invalid JSON syntax",
                Category::Data | Category::Io => "JSON that is not an auth-profile store",
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
        if let Some((key, _)) = file.profiles.iter().find(|(key, p)| **key != p.id) {
            return Err(self.corrupt(format!("the profile under {key} carries another id")));
        }
        let pins = file.pins.into_iter().map(|r| (r.key, r.pin)).collect();
        Ok(ProfileSet::from_parts(file.profiles, pins))
    }

    fn change<T>(
        &self,
        change: impl FnOnce(&mut ProfileSet) -> Result<T, AuthProfileError>,
    ) -> Result<T, AuthProfileError> {
        let _lock = self.lock()?;
        let current = self.load()?;
        let mut set = ProfileSet::clone(&current);
        let result = change(&mut set)?;
        self.write_file(&set)?;
        Ok(result)
    }

    fn lock(&self) -> Result<FileLock, AuthProfileError> {
        FileLock::acquire(&self.lock_path, self.lock_timeout)
            .map_err(|e| e.into_error(&self.lock_path, self.lock_timeout, None, &self.path))
    }

    fn write_file(&self, set: &ProfileSet) -> Result<(), AuthProfileError> {
        let file = ProfileFileOut {
            format: FORMAT,
            version: FORMAT_VERSION,
            profiles: set.profiles().map(|p| (&p.id, p)).collect(),
            pins: set
                .pins()
                .map(|(key, pin)| PinRecordOut { key, pin })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| self.corrupt(e.to_string()))?;
        let tmp = sibling(&self.path, ".tmp");
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

    fn refresh_lock_path(&self, id: &ProfileId) -> Result<PathBuf, AuthProfileError> {
        match fs::create_dir(&self.refresh_dir) {
            Ok(()) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt as _;
                    fs::set_permissions(&self.refresh_dir, fs::Permissions::from_mode(0o700))
                        .map_err(|source| {
                            self.io("create the refresh lock directory of", source)
                        })?;
                }
                sync_parent_dir(&self.refresh_dir)
                    .map_err(|source| self.io("create the refresh lock directory of", source))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(self.io("create the refresh lock directory of", source)),
        }
        // Hex keeps any id a portable file name (':' is not one on Windows).
        let mut name = String::with_capacity(id.as_str().len() * 2 + 5);
        for byte in id.as_str().bytes() {
            let _ = write!(name, "{byte:02x}");
        }
        name.push_str(".lock");
        Ok(self.refresh_dir.join(name))
    }

    fn io(&self, context: &'static str, source: io::Error) -> AuthProfileError {
        AuthProfileError::Io {
            context: format!("{context} auth-profile store {}", self.path.display()),
            source,
        }
    }

    fn corrupt(&self, message: String) -> AuthProfileError {
        AuthProfileError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }
}

impl fmt::Debug for JsonFileAuthProfileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonFileAuthProfileStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuthProfileStore for JsonFileAuthProfileStore {
    fn snapshot(&self) -> Result<Arc<ProfileSet>, AuthProfileError> {
        self.load()
    }

    fn compare_and_set(
        &self,
        profile: AuthProfile,
        expected: Option<u64>,
    ) -> Result<u64, AuthProfileError> {
        self.change(|set| set.compare_and_set(profile, expected))
    }

    fn remove(&self, id: &ProfileId, expected: u64) -> Result<(), AuthProfileError> {
        self.change(|set| set.remove(id, expected))
    }

    fn set_pin(&self, key: PinKey, pin: Option<Pin>) -> Result<(), AuthProfileError> {
        self.change(|set| {
            set.set_pin(key, pin);
            Ok(())
        })
    }

    fn lock_refresh(
        &self,
        id: &ProfileId,
        timeout: Duration,
    ) -> Result<RefreshLock, AuthProfileError> {
        let path = self.refresh_lock_path(id)?;
        FileLock::acquire(&path, timeout)
            .map(RefreshLock::new)
            .map_err(|e| e.into_error(&path, timeout, Some(id), &self.path))
    }
}

/// `<path><suffix>` next to `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// An exclusive `flock`; the kernel releases it on drop or process death.
struct FileLock(File);

enum LockFailure {
    TimedOut,
    Io(io::Error),
}

impl LockFailure {
    fn into_error(
        self,
        lock_path: &Path,
        waited: Duration,
        profile: Option<&ProfileId>,
        store: &Path,
    ) -> AuthProfileError {
        match (self, profile) {
            (LockFailure::TimedOut, Some(id)) => AuthProfileError::RefreshLocked {
                id: id.clone(),
                waited,
            },
            (LockFailure::TimedOut, None) => AuthProfileError::Locked {
                path: lock_path.to_owned(),
                waited,
            },
            (LockFailure::Io(source), _) => AuthProfileError::Io {
                context: format!(
                    "lock {} of auth-profile store {}",
                    lock_path.display(),
                    store.display()
                ),
                source,
            },
        }
    }
}

impl FileLock {
    fn acquire(path: &Path, timeout: Duration) -> Result<Self, LockFailure> {
        let file = open_private(path, false).map_err(LockFailure::Io)?;
        let deadline = Instant::now().checked_add(timeout);
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self(file)),
                Err(fs::TryLockError::WouldBlock)
                    if deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(LockFailure::TimedOut),
                Err(fs::TryLockError::Error(e)) => return Err(LockFailure::Io(e)),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
