//! The catalog file on disk: the writers' lock, atomic durable writes,
//! and bounded reads.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use super::format::{self, EntryMap};
use super::{JsonFileCatalogStore, MAX_CATALOG_LEN};
use crate::anchor::AnchorError;
use crate::catalog::CatalogError;
use crate::durable::{
    FileStamp, ReadFileError, open_private, open_regular, read_regular_file, sync_parent_dir,
};
use crate::mutation::{self, Mutation};

impl JsonFileCatalogStore {
    /// The file's stamp and bytes; `None` when there is no file.
    pub(super) fn read_file(&self) -> Result<Option<(FileStamp, Vec<u8>)>, CatalogError> {
        let stamp = match FileStamp::of(&self.path) {
            Ok(stamp) => stamp,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("read", e)),
        };
        match read_regular_file(&self.path, MAX_CATALOG_LEN) {
            Ok(bytes) => Ok(Some((stamp, bytes))),
            Err(ReadFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(self.io("read", e.into())),
        }
    }

    pub(super) fn encode_plain(&self, entries: &EntryMap) -> Result<Vec<u8>, CatalogError> {
        format::plain(entries).map_err(|e| self.corrupt(e.to_string()))
    }

    pub(super) fn lock(&self) -> Result<WriterLock, CatalogError> {
        self.lock_with(Lock::Exclusive)
    }

    pub(super) fn lock_with(&self, kind: Lock) -> Result<WriterLock, CatalogError> {
        let file = match kind {
            Lock::Exclusive => open_private(&self.lock_path, false),
            // A reader needs no write access to the directory once the lock
            // file exists.
            Lock::Shared => match open_regular(&self.lock_path, false, false) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    open_private(&self.lock_path, false)
                }
                other => other,
            },
        }
        .map_err(|source| self.io("open lock", source))?;
        let deadline = Instant::now() + self.lock_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let attempt = match kind {
                Lock::Exclusive => file.try_lock(),
                Lock::Shared => file.try_lock_shared(),
            };
            match attempt {
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

    pub(super) fn write_bytes(&self, bytes: &[u8]) -> Result<(), CatalogError> {
        let mut tmp_name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        if mutation::active(Mutation::TornCatalog) {
            return torn_write(&self.path, bytes).map_err(|source| self.io("write", source));
        }
        let result = (|| {
            // We hold the writer lock, so a leftover temporary file is debris
            // from a writer that died mid-write.
            match fs::remove_file(&tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut out = open_private(&tmp, true)?;
            out.write_all(bytes)?;
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

    pub(super) fn io(&self, context: &'static str, source: io::Error) -> CatalogError {
        CatalogError::Io {
            context: format!("{context} catalog {}", self.path.display()),
            source,
        }
    }

    pub(super) fn corrupt(&self, message: String) -> CatalogError {
        CatalogError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    pub(super) fn anchor_error(&self, source: AnchorError) -> CatalogError {
        CatalogError::Anchor {
            path: self.path.clone(),
            source,
        }
    }
}

/// [`Mutation::TornCatalog`]: the catalog rewritten in place, half of it,
/// a pause, the rest; a crash in between leaves half a catalog.
///
/// Every fifth torn write of a process dies between the halves, as a kill
/// landing there by chance would: since readers wait for the writer's lock,
/// only a crash shows a torn file, and the torture run's kills are too rare
/// to land in the pause every run.
fn torn_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TORN: AtomicUsize = AtomicUsize::new(0);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let half = bytes.len() / 2;
    out.write_all(&bytes[..half])?;
    if TORN.fetch_add(1, Ordering::Relaxed) % 5 == 4 {
        std::process::abort();
    }
    std::thread::sleep(Duration::from_millis(20));
    out.write_all(&bytes[half..])
}

/// How a store takes the lock: exclusive to write, shared to read an
/// authenticated file and its anchor from one write.
#[derive(Clone, Copy)]
pub(super) enum Lock {
    Exclusive,
    Shared,
}

/// Holds the writer lock; the kernel releases it on drop or process death.
pub(super) struct WriterLock(File);

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
