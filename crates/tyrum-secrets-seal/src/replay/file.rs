//! The durable replay guard: a small text file of opened envelope ids, one
//! per line, appended and fsynced under a lock that every process of the
//! node takes, and rewritten without expired ids once they are half of it.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tyrum_secrets_core::Timestamp;
use tyrum_secrets_core::durable::{open_private, sync_parent_dir};

use super::{Recorded, ReplayError, ReplayGuard};
use crate::EnvelopeId;

/// The first line of every replay store.
const HEADER: &str = "tyrum-secrets-seal replay v1\n";
/// How long a record waits for another process's lock by default.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// A replay guard kept in a file, so an envelope opened before a restart
/// stays refused after it, until it expires.
///
/// The file holds one line per opened envelope, `<envelope id> <expiry in
/// Unix milliseconds>`, after a header line; no value and no key. Every
/// record takes an exclusive lock (`flock`) on the sibling `<file>.lock`,
/// reads the file, appends the new line and fsyncs it before answering, so
/// processes sharing the file never both open one envelope. When expired
/// lines are at least half the file, the record rewrites it without them
/// (temporary file, fsync, rename, fsync of the directory).
///
/// A line cut short by a crash is ignored and cut off by the next record.
/// Any other damage is [`ReplayError::Corrupt`], and nothing opens until it
/// is repaired. The file and its lock are created with mode 0600.
#[derive(Debug)]
pub struct FileReplayGuard {
    path: PathBuf,
    lock_path: PathBuf,
    lock_timeout: Duration,
    /// Serialises this process's threads before they contend for the lock.
    local: Mutex<()>,
}

impl FileReplayGuard {
    /// Opens the store at `path`, creating it if missing, and checks that
    /// it reads.
    ///
    /// # Errors
    /// [`ReplayError::Io`], [`ReplayError::Corrupt`] or
    /// [`ReplayError::LockTimeout`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, ReplayError> {
        let path = path.into();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let guard = Self {
            path,
            lock_path: PathBuf::from(lock_path),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            local: Mutex::new(()),
        };
        let _lock = guard.lock()?;
        let (mut file, store) = guard.load()?;
        if store.needs_header {
            guard.append(&mut file, &store, "")?;
            sync_parent_dir(&guard.path).map_err(|e| guard.io("syncing the directory of", e))?;
        }
        Ok(guard)
    }

    /// How long a record waits for another process's lock (default 5 s)
    /// before failing with [`ReplayError::LockTimeout`].
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<File, ReplayError> {
        let file = open_private(&self.lock_path, false).map_err(|source| ReplayError::Io {
            operation: "opening the lock of",
            path: self.lock_path.clone(),
            source,
        })?;
        let deadline = Instant::now().checked_add(self.lock_timeout);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(source)) => {
                    return Err(ReplayError::Io {
                        operation: "locking",
                        path: self.lock_path.clone(),
                        source,
                    });
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ReplayError::LockTimeout {
                    path: self.lock_path.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Reads the whole store. The caller holds the lock.
    fn load(&self) -> Result<(File, Store), ReplayError> {
        let mut file = open_private(&self.path, false).map_err(|e| self.io("opening", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| self.io("reading", e))?;
        let store = Store::parse(&bytes).map_err(|line| ReplayError::Corrupt {
            path: self.path.clone(),
            line,
        })?;
        Ok((file, store))
    }

    /// Appends `line` (with the header first if the file has none), after
    /// cutting off a torn tail, and fsyncs.
    fn append(&self, file: &mut File, store: &Store, line: &str) -> Result<(), ReplayError> {
        if store.complete_len != store.file_len {
            file.set_len(store.complete_len)
                .map_err(|e| self.io("cutting a torn line off", e))?;
        }
        let mut text = String::new();
        if store.needs_header {
            text.push_str(HEADER);
        }
        text.push_str(line);
        file.seek(SeekFrom::Start(store.complete_len))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(|e| self.io("appending to", e))?;
        file.sync_data().map_err(|e| self.io("syncing", e))
    }

    /// Writes the store anew with `lines`: temporary file, fsync, rename,
    /// fsync of the directory.
    fn rewrite(&self, lines: &str) -> Result<(), ReplayError> {
        let mut tmp_path = self.path.clone().into_os_string();
        let suffix = EnvelopeId::generate()
            .map_or_else(|| std::process::id().to_string(), |id| id.to_string());
        tmp_path.push(format!(".tmp-{suffix}"));
        let tmp_path = PathBuf::from(tmp_path);
        let written = (|| {
            let mut tmp = open_private(&tmp_path, true)?;
            tmp.write_all(HEADER.as_bytes())?;
            tmp.write_all(lines.as_bytes())?;
            tmp.sync_all()?;
            fs::rename(&tmp_path, &self.path)?;
            sync_parent_dir(&self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        written.map_err(|e| self.io("rewriting", e))
    }

    fn io(&self, operation: &'static str, source: io::Error) -> ReplayError {
        ReplayError::Io {
            operation,
            path: self.path.clone(),
            source,
        }
    }
}

impl ReplayGuard for FileReplayGuard {
    fn record(
        &self,
        id: &EnvelopeId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Recorded, ReplayError> {
        let _local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let _lock = self.lock()?;
        let (mut file, store) = self.load()?;
        if store.ids.contains(id) {
            return Ok(Recorded::Replay);
        }
        let line = entry(id, expires_at.unix_millis());
        let live = store.entries.iter().filter(|(_, e)| *e > now.unix_millis());
        let live_count = live.clone().count();
        let expired = store.entries.len() - live_count;
        if expired > 0 && expired >= live_count {
            let mut lines: String = live.map(|(id, e)| entry(id, *e)).collect();
            lines.push_str(&line);
            self.rewrite(&lines)?;
        } else {
            self.append(&mut file, &store, &line)?;
        }
        Ok(Recorded::First)
    }
}

fn entry(id: &EnvelopeId, expires_at: u64) -> String {
    format!("{id} {expires_at}\n")
}

/// A parsed store.
#[derive(Debug)]
struct Store {
    entries: Vec<(EnvelopeId, u64)>,
    ids: HashSet<EnvelopeId>,
    /// Bytes up to the end of the last complete line.
    complete_len: u64,
    file_len: u64,
    /// The file is empty, or holds only a torn header.
    needs_header: bool,
}

impl Store {
    /// Parses the store's bytes; a bad complete line is an error naming it.
    fn parse(bytes: &[u8]) -> Result<Self, usize> {
        let file_len = bytes.len() as u64;
        let mut store = Store {
            entries: Vec::new(),
            ids: HashSet::new(),
            complete_len: 0,
            file_len,
            needs_header: false,
        };
        let Some(body) = bytes.strip_prefix(HEADER.as_bytes()) else {
            // Empty, or a header cut short by a crash: start again.
            if HEADER.as_bytes().starts_with(bytes) {
                store.needs_header = true;
                return Ok(store);
            }
            return Err(1);
        };
        let mut complete = HEADER.len();
        for (index, line) in body.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(line) = line.strip_suffix(b"\n") else {
                break; // a torn final line
            };
            let (id, expires_at) = parse_line(line).ok_or(index + 2)?;
            store.entries.push((id, expires_at));
            store.ids.insert(id);
            complete += line.len() + 1;
        }
        store.complete_len = complete as u64;
        Ok(store)
    }
}

fn parse_line(line: &[u8]) -> Option<(EnvelopeId, u64)> {
    let text = std::str::from_utf8(line).ok()?;
    let (id, expires_at) = text.split_once(' ')?;
    if expires_at.is_empty() || !expires_at.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id.parse().ok()?, expires_at.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn id(n: u8) -> EnvelopeId {
        EnvelopeId::from_bytes([n; 16])
    }

    fn t(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    fn lines(path: &Path) -> usize {
        fs::read_to_string(path).unwrap().lines().count()
    }

    #[test]
    fn an_id_is_refused_again_after_the_store_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let guard = FileReplayGuard::open(&path).unwrap();
        assert_eq!(guard.record(&id(1), t(100), t(0)).unwrap(), Recorded::First);
        assert_eq!(
            guard.record(&id(1), t(100), t(0)).unwrap(),
            Recorded::Replay
        );
        drop(guard);
        let reopened = FileReplayGuard::open(&path).unwrap();
        assert_eq!(
            reopened.record(&id(1), t(100), t(0)).unwrap(),
            Recorded::Replay
        );
        assert_eq!(
            reopened.record(&id(2), t(100), t(0)).unwrap(),
            Recorded::First
        );
    }

    #[test]
    fn two_guards_on_one_file_see_each_others_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let a = FileReplayGuard::open(&path).unwrap();
        let b = FileReplayGuard::open(&path).unwrap();
        assert_eq!(a.record(&id(1), t(100), t(0)).unwrap(), Recorded::First);
        assert_eq!(b.record(&id(1), t(100), t(0)).unwrap(), Recorded::Replay);
    }

    #[test]
    fn expired_ids_are_pruned_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let guard = FileReplayGuard::open(&path).unwrap();
        for n in 0..10 {
            guard.record(&id(n), t(100), t(0)).unwrap();
        }
        guard.record(&id(50), t(1000), t(0)).unwrap();
        assert_eq!(lines(&path), 12);
        // At 500 the first ten have expired: the store is rewritten.
        guard.record(&id(51), t(1000), t(500)).unwrap();
        assert_eq!(lines(&path), 3);
        assert_eq!(
            guard.record(&id(50), t(1000), t(500)).unwrap(),
            Recorded::Replay
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let guard = FileReplayGuard::open(&path).unwrap();
        guard.record(&id(1), t(100), t(0)).unwrap();
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"0202020202").unwrap();
        assert_eq!(guard.record(&id(2), t(100), t(0)).unwrap(), Recorded::First);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.ends_with('\n'));
        assert_eq!(
            guard.record(&id(2), t(100), t(0)).unwrap(),
            Recorded::Replay
        );
    }

    #[test]
    fn a_damaged_line_stops_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let guard = FileReplayGuard::open(&path).unwrap();
        guard.record(&id(1), t(100), t(0)).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let (header, entry) = text.split_once('\n').unwrap();
        fs::write(&path, format!("{header}\n{}", entry.replace(' ', "x"))).unwrap();
        assert!(matches!(
            guard.record(&id(2), t(100), t(0)),
            Err(ReplayError::Corrupt { line: 2, .. })
        ));
        assert!(matches!(
            FileReplayGuard::open(&path),
            Err(ReplayError::Corrupt { line: 2, .. })
        ));
        fs::write(&path, "something else\n").unwrap();
        assert!(matches!(
            FileReplayGuard::open(&path),
            Err(ReplayError::Corrupt { line: 1, .. })
        ));
    }

    #[test]
    fn a_held_lock_times_out_with_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let guard = FileReplayGuard::open(&path)
            .unwrap()
            .lock_timeout(Duration::from_millis(20));
        let held = guard.lock().unwrap();
        let other = FileReplayGuard {
            path: guard.path.clone(),
            lock_path: guard.lock_path.clone(),
            lock_timeout: Duration::from_millis(20),
            local: Mutex::new(()),
        };
        assert!(matches!(
            other.record(&id(1), t(100), t(0)),
            Err(ReplayError::LockTimeout { .. })
        ));
        drop(held);
        assert_eq!(other.record(&id(1), t(100), t(0)).unwrap(), Recorded::First);
    }

    #[cfg(unix)]
    #[test]
    fn the_store_and_its_lock_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay");
        let guard = FileReplayGuard::open(&path).unwrap();
        guard.record(&id(1), t(100), t(0)).unwrap();
        for p in [&guard.path, &guard.lock_path] {
            let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
}
