//! The writer lock shared by every process that opens a store.

use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant};

use tyrum_secrets_core::durable::open_private;

use crate::error::FileError;

/// The exclusive writer lock: an advisory lock (`flock` on Unix) on the
/// sibling `<store>.lock` file.
///
/// The kernel releases it when the holder's file descriptor closes, which
/// includes the holder dying by any signal, so a crashed writer never leaves
/// a stale lock behind. The lock is on a separate file because the store
/// file itself is replaced by rename during compaction.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    pub(crate) fn acquire(lock_path: &Path, timeout: Duration) -> Result<Self, FileError> {
        let file = open_private(lock_path, false)
            .map_err(|e| FileError::io("opening the lock file", lock_path, e))?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    return Err(FileError::io("locking the store", lock_path, e));
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(FileError::LockTimeout {
                    lock_path: lock_path.to_owned(),
                    waited,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}
