//! The state directory: checked before anything is written, created with
//! mode 0700 on first run, locked while an open runs, and described by a
//! state record that says which profile and layout made it. Everything an
//! open creates is remembered so a failed open can remove it again.

use std::fs::{self, File};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tyrum_secrets_core::durable::{open_private, sync_parent_dir};
use tyrum_secrets_core::{Locator, SecretProvider, Timestamp, Version, VersionSelector};

use super::OpenError;

/// The state record's file name.
pub(crate) const RECORD_NAME: &str = "tyrum-secrets.state.json";
/// The lock every open of the directory holds while it runs.
pub(crate) const LOCK_NAME: &str = "open.lock";
const RECORD_FORMAT: &str = "tyrum-secrets-state";
/// How long an open waits for another open of the same directory.
const LOCK_WAIT: Duration = Duration::from_secs(120);
/// How many versions before its newest a failed open destroys of a
/// provider entry it created (an anchor advanced a few times).
const ENTRY_VERSIONS: u64 = 16;

/// What a state directory was made for. Holds no secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateRecord {
    format: String,
    version: u32,
    /// The profile that created the directory.
    pub(crate) profile: String,
    /// What the values live in, e.g. `file store secrets.tyrum` or
    /// `keychain namespace tyrum-secrets`: a change would shadow them.
    pub(crate) values: String,
    /// When the directory was created.
    pub(crate) created_at: Timestamp,
    /// A random id of this state, naming its anchors where they live
    /// outside the directory (a keychain shared by several state
    /// directories). Absent in records written before anchors were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
}

impl StateRecord {
    pub(crate) fn new(profile: &str, values: String, id: String) -> Self {
        Self {
            format: RECORD_FORMAT.to_owned(),
            version: 1,
            profile: profile.to_owned(),
            values,
            created_at: Timestamp::now(),
            id: Some(id),
        }
    }
}

/// A new random state id: 16 lower-case hex digits.
pub(crate) fn new_state_id() -> Result<String, OpenError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| OpenError::AuditKeys {
        reason: format!("the OS random number generator failed: {e}"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A state directory checked without writing anything.
#[derive(Debug)]
pub(crate) struct Inspected {
    pub(crate) dir: PathBuf,
    /// The directory does not exist yet.
    pub(crate) missing: bool,
    /// Its state record, if it has one.
    pub(crate) record: Option<StateRecord>,
}

/// Checks `dir` (named by `key` for messages) without writing anything.
pub(crate) fn inspect(dir: &Path, key: &str) -> Result<Inspected, OpenError> {
    let fail = |reason: String| OpenError::StateDir {
        path: dir.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Ok(Inspected {
                dir: dir.to_owned(),
                missing: true,
                record: None,
            });
        }
        Err(e) => {
            return Err(fail(format!(
                "cannot be reached ({e}); check the path and the permissions of its parents"
            )));
        }
    };
    if !meta.is_dir() {
        return Err(fail(
            "is not a directory; point state_dir at a directory".to_owned(),
        ));
    }
    if let Err(e) = fs::read_dir(dir) {
        return Err(fail(format!(
            "cannot be read ({e}); give this user read, write and search permission on it"
        )));
    }
    #[cfg(unix)]
    {
        use rustix::fs::Access;
        if rustix::fs::access(dir, Access::READ_OK | Access::WRITE_OK | Access::EXEC_OK).is_err() {
            return Err(fail(
                "is not writable by this user; give it read, write and search permission"
                    .to_owned(),
            ));
        }
    }
    #[cfg(unix)]
    check_owner_and_mode(&meta).map_err(fail)?;
    let record_path = dir.join(RECORD_NAME);
    let record = match fs::read(&record_path) {
        Ok(bytes) => Some(parse_record(&record_path, &bytes)?),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            return Err(OpenError::io(
                "cannot read the state record",
                &record_path,
                e,
            ));
        }
    };
    Ok(Inspected {
        dir: dir.to_owned(),
        missing: false,
        record,
    })
}

/// As ssh's `StrictModes`: a state directory that others can write, or
/// that another user owns, lets them replace the catalog, the audit logs
/// and their anchors, so it is refused with the fix.
#[cfg(unix)]
fn check_owner_and_mode(meta: &fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let user = rustix::process::geteuid().as_raw();
    if meta.uid() != user {
        return Err(format!(
            "is owned by uid {}, not by this process's user (uid {user}): its owner could replace the catalog, the audit logs and their anchors; chown it to this user, or point state_dir at a directory this user owns",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and every user",
            (true, false) => "its group",
            _ => "every user",
        };
        return Err(format!(
            "is writable by {who} (mode {mode:o}): they could replace the catalog, the audit logs and their anchors; run chmod go-w on it (a new state directory is made with mode 700)"
        ));
    }
    Ok(())
}

fn parse_record(path: &Path, bytes: &[u8]) -> Result<StateRecord, OpenError> {
    let record: StateRecord =
        serde_json::from_slice(bytes).map_err(|e| OpenError::StateCorrupt {
            path: path.to_owned(),
            reason: format!("not a state record at line {}", e.line()),
        })?;
    if record.format != RECORD_FORMAT || record.version != 1 {
        return Err(OpenError::StateCorrupt {
            path: path.to_owned(),
            reason: format!(
                "format {:?} version {}; this build reads {RECORD_FORMAT:?} version 1",
                record.format, record.version
            ),
        });
    }
    Ok(record)
}

/// Files and directories an open created, removed again if it fails; and
/// the provider entries it created (anchors kept in a keychain).
#[derive(Debug, Default)]
pub(crate) struct Created {
    paths: Vec<(PathBuf, bool)>,
    entries: Vec<(Arc<dyn SecretProvider>, Locator)>,
}

impl Created {
    /// Runs `step`, remembering `paths` that did not exist before it and do
    /// after.
    pub(crate) fn track<T>(
        &mut self,
        paths: &[&Path],
        step: impl FnOnce() -> Result<T, OpenError>,
    ) -> Result<T, OpenError> {
        let before: Vec<bool> = paths.iter().map(|p| exists(p)).collect();
        let result = step();
        for (path, existed) in paths.iter().zip(before) {
            if !existed && exists(path) {
                self.paths.push((path.to_path_buf(), path.is_dir()));
            }
        }
        result
    }

    /// [`track`](Self::track), also remembering the provider entry `entry`
    /// if there was none before `step` and there is one after.
    pub(crate) fn track_with<T>(
        &mut self,
        paths: &[&Path],
        entry: Option<(&Arc<dyn SecretProvider>, &Locator)>,
        step: impl FnOnce() -> Result<T, OpenError>,
    ) -> Result<T, OpenError> {
        let present = |(provider, locator): (&Arc<dyn SecretProvider>, &Locator)| {
            provider.read(locator, VersionSelector::Latest).is_ok()
        };
        let before = entry.map(present);
        let result = self.track(paths, step);
        if let (Some(entry), Some(false)) = (entry, before)
            && present(entry)
        {
            self.entries.push((Arc::clone(entry.0), entry.1.clone()));
        }
        result
    }

    /// The created paths, in creation order.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.paths.iter().map(|(p, _)| p.as_path())
    }

    /// Removes everything created, newest first. Best effort: an open that
    /// failed reports its own error, not this one's.
    pub(crate) fn remove_all(&mut self) {
        while let Some((provider, locator)) = self.entries.pop() {
            if let Ok(latest) = provider.read(&locator, VersionSelector::Latest) {
                // An anchor keeps its last one or two versions.
                let newest = latest.version.get();
                for n in (newest.saturating_sub(ENTRY_VERSIONS)..=newest).rev() {
                    if let Some(version) = Version::new(n) {
                        let _ = provider.destroy(&locator, version);
                    }
                }
            }
        }
        while let Some((path, is_dir)) = self.paths.pop() {
            let _ = if is_dir {
                fs::remove_dir(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// [`create_dir`] when `missing`.
pub(crate) fn create_dir_if(
    missing: bool,
    dir: &Path,
    created: &mut Created,
) -> Result<(), OpenError> {
    if missing {
        create_dir(dir, created)?;
    }
    Ok(())
}

/// Creates the directory (and missing parents) with mode 0700.
pub(crate) fn create_dir(dir: &Path, created: &mut Created) -> Result<(), OpenError> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at {
        if exists(path) {
            break;
        }
        missing.push(path.to_owned());
        at = path.parent().filter(|p| !p.as_os_str().is_empty());
    }
    for path in missing.iter().rev() {
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        created.track(&[path], || match builder.create(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(OpenError::io("cannot create the state directory", path, e)),
        })?;
    }
    if let Some(first) = missing.last() {
        sync_parent_dir(first).map_err(|e| OpenError::io("cannot sync", first, e))?;
    }
    Ok(())
}

/// The open lock: one open of a state directory at a time, in all
/// processes. Released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct OpenLock {
    _file: File,
}

impl OpenLock {
    /// Locks `dir/open.lock`, creating it (and `dir`) if missing.
    ///
    /// The lock file stays when an open fails, unless that open made the
    /// state directory itself: then it removes both while it still holds
    /// the lock (a failed open leaves nothing behind). So an open that got
    /// the lock checks that `open.lock` is still the file it locked; if it
    /// was removed meanwhile, it makes the directory and the file again
    /// and locks those, so two opens never hold different lock files of
    /// one state directory.
    pub(crate) fn acquire(dir: &Path, created: &mut Created) -> Result<Self, OpenError> {
        let path = dir.join(LOCK_NAME);
        loop {
            let file = open_private(&path, false)
                .map_err(|e| OpenError::io("cannot open the open lock", &path, e))?;
            let start = Instant::now();
            let mut pause = Duration::from_millis(2);
            loop {
                match file.try_lock() {
                    Ok(()) => break,
                    Err(fs::TryLockError::WouldBlock) => {}
                    Err(fs::TryLockError::Error(e)) => {
                        return Err(OpenError::io("cannot lock", &path, e));
                    }
                }
                if start.elapsed() >= LOCK_WAIT {
                    return Err(OpenError::Busy {
                        path: dir.to_owned(),
                        waited_secs: LOCK_WAIT.as_secs(),
                    });
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            if still_named(&file, &path) {
                // An open that made the directory also removes its lock
                // file when it fails.
                if created.paths().any(|p| p == dir) {
                    created.paths.push((path, false));
                }
                return Ok(Self { _file: file });
            }
            drop(file);
            create_dir(dir, created)?;
        }
    }
}

/// Whether `path` still names the open file `file`.
#[cfg(unix)]
fn still_named(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Without inode numbers, only that the path still exists.
#[cfg(not(unix))]
fn still_named(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename,
/// fsync of the directory), mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let _ = fs::remove_file(&tmp);
        let mut file = open_private(&tmp, true)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent_dir(path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Writes the state record; the last step of a first open.
pub(crate) fn write_record(
    dir: &Path,
    record: &StateRecord,
    created: &mut Created,
) -> Result<(), OpenError> {
    let path = dir.join(RECORD_NAME);
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| OpenError::StateCorrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    created.track(&[&path], || {
        write_atomic(&path, &bytes)
            .map_err(|e| OpenError::io("cannot write the state record", &path, e))
    })
}
