//! Small helpers for files that must be private and durable, shared by the
//! catalog and the file-backed providers.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens a file readable and writable by the owner only (mode 0600 on Unix).
///
/// With `create_new` the file must not exist yet; otherwise it is created if
/// missing and never truncated.
///
/// # Errors
/// The underlying I/O error.
pub fn open_private(path: &Path, create_new: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Fsyncs the directory holding `path`, so a rename into it (or the
/// creation of `path`) survives power loss. A no-op where directories cannot
/// be fsynced.
///
/// # Errors
/// The underlying I/O error.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Opens `path` only if it is a regular file, never blocking on the way.
///
/// A FIFO, a device (`/dev/zero`), a socket or a directory is refused with
/// [`io::ErrorKind::InvalidInput`] instead of being read forever or without
/// bound. On Unix the file is opened with `O_NONBLOCK`, so even opening a
/// FIFO that has no writer returns at once (the flag has no effect on the
/// reads and writes of a regular file). `write` asks for a read-write
/// handle; `create` creates a missing file with mode 0600.
///
/// # Errors
/// The underlying I/O error, or `InvalidInput` for anything but a regular
/// file.
pub fn open_regular(path: &Path, write: bool, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    if write {
        options.write(true);
    }
    if create {
        options.write(true).create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Reads the whole of `file`, which must be a regular file of at most
/// `max_len` bytes.
///
/// The read stops at the length the file had when it was checked, so a file
/// that keeps growing (or a device that never ends) cannot make it
/// unbounded.
///
/// # Errors
/// `InvalidInput` for anything but a regular file, `FileTooLarge` above
/// `max_len`, or the underlying I/O error.
pub fn read_bounded(file: &File, max_len: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let len = meta.len();
    if len > max_len {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("the file holds {len} bytes, more than the {max_len} allowed"),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`open_regular`] (read-only) and then [`read_bounded`].
///
/// # Errors
/// As those two.
pub fn read_regular_bounded(path: &Path, max_len: u64) -> io::Result<Vec<u8>> {
    read_bounded(&open_regular(path, false, false)?, max_len)
}

fn not_regular() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a regular file (a FIFO, device, socket or directory)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_read_back_and_huge_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(read_regular_bounded(&path, 5).unwrap(), b"hello");
        let err = read_regular_bounded(&path, 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn directories_and_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_regular_bounded(dir.path(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        #[cfg(unix)]
        {
            let err = read_regular_bounded(Path::new("/dev/zero"), 1 << 20).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_writer_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        for write in [false, true] {
            let err = open_regular(&path, write, false).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
