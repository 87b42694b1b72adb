//! File-system plumbing: reading a store whole (regular files only),
//! atomic rewrites, sibling paths and file identity.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use tyrum_secrets_core::durable::{open_private, open_regular, sync_parent_dir};

use crate::error::FileError;
use crate::format;

/// Which file the view was built from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Removes `<store>.tmp-*` files left by rewrites that crashed before their
/// rename: they may hold ciphertext of destroyed versions. Call only while
/// holding the writer lock, when no rewrite can be in progress. Best effort:
/// a file that cannot be removed is retried by the next rewrite.
pub(crate) fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.to_os_string();
    prefix.push(".tmp-");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `header` and `log` to a temporary file, fsyncs it, renames it over
/// `path` and fsyncs the directory.
pub(crate) fn write_atomically(path: &Path, header: &[u8], log: &[u8]) -> Result<(), FileError> {
    let tag: [u8; 8] = format::random()?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = sibling(path, &format!(".tmp-{tag}"));
    let result = (|| {
        let mut file = open_private(&tmp, true)?;
        file.write_all(header)?;
        file.write_all(log)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| FileError::io("rewriting the store file", path, e))
}

/// Opens the file now at `path` and tells which one it is.
pub(crate) fn open_identity(path: &Path) -> Result<(File, Identity), FileError> {
    let file =
        open_private(path, false).map_err(|e| FileError::io("opening the store file", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::io("checking the store file", path, e))?;
    Ok((file, identity_of(&meta)))
}

/// Buffer reserved up front when reading a store; larger stores grow it.
const INITIAL_READ_CAPACITY: u64 = 1 << 20;

/// Opens the store read-write and reads all of it.
///
/// Only a regular file that starts with the magic bytes is read past them:
/// a path naming a device (`/dev/zero`), a FIFO or a large foreign file is
/// refused as [`FileError::NotAStore`] instead of being read without end
/// or sized into one allocation. The read stops at the length the file had
/// when it was checked.
pub(crate) fn read_whole(path: &Path) -> Result<(File, Identity, Vec<u8>), FileError> {
    let not_a_store = || FileError::NotAStore {
        path: path.to_owned(),
    };
    let file = open_regular(path, true, false).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            not_a_store()
        } else {
            FileError::io("opening the store file", path, e)
        }
    })?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::io("checking the store file", path, e))?;
    let capacity = meta.len().min(INITIAL_READ_CAPACITY);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let read = |bytes: &mut Vec<u8>, limit: u64| {
        (&file)
            .take(limit)
            .read_to_end(bytes)
            .map_err(|e| FileError::io("reading the store file", path, e))
    };
    read(&mut bytes, format::MAGIC.len() as u64)?;
    if bytes.as_slice() != format::MAGIC.as_slice() {
        return Err(not_a_store());
    }
    read(
        &mut bytes,
        meta.len().saturating_sub(format::MAGIC.len() as u64),
    )?;
    Ok((file, identity_of(&meta), bytes))
}

#[cfg(unix)]
pub(crate) fn identity_of(meta: &fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt as _;
    Identity {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// Without inode numbers, a file replaced by rename is told apart by its
/// creation time.
#[cfg(not(unix))]
pub(crate) fn identity_of(meta: &fs::Metadata) -> Identity {
    let created = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Identity {
        dev: 0,
        ino: created,
    }
}
