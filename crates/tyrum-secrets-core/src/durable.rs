//! Small helpers for files that must be private and durable, shared by the
//! catalog and the file-backed providers, and the bounded read every loader
//! of a configured path uses ([`read_regular_file`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

/// Reads the whole regular file at `path`, at most `limit` bytes.
///
/// A loader pointed at the wrong path must fail, not hang or exhaust
/// memory: the file is opened with `O_NONBLOCK` (so a FIFO without a
/// writer cannot block the open), anything but a regular file — FIFO,
/// device such as `/dev/zero`, socket, directory — is refused before a
/// byte is read, and so is a file longer than `limit`, whether `fstat`
/// says so or it grows while being read.
///
/// Catalog, policy and audit loaders use it. Their errors keep an
/// [`io::Error`] source: `io::Error::from(ReadFileError)` keeps the kind of
/// an I/O failure (`NotFound`, ...) and gives `InvalidInput` for a special
/// file and `FileTooLarge` past the limit, with the `ReadFileError` inside.
///
/// ```
/// use tyrum_secrets_core::durable::{read_regular_file, ReadFileError};
/// # #[cfg(unix)] {
/// let err = read_regular_file("/dev/zero".as_ref(), 1 << 20).unwrap_err();
/// assert!(matches!(err, ReadFileError::NotARegularFile { .. }));
/// # }
/// ```
///
/// # Errors
/// [`ReadFileError`].
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadFileError> {
    let io = |source| ReadFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadFileError::NotARegularFile {
            path: path.to_owned(),
            kind: file_kind(&meta.file_type()),
        });
    }
    let too_large = || ReadFileError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A configured file could not be read by [`read_regular_file`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadFileError {
    /// Opening or reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The path names something other than a regular file.
    #[error(
        "{} is a {kind}, not a regular file; point the setting at a regular file",
        path.display()
    )]
    NotARegularFile {
        /// The path.
        path: PathBuf,
        /// What it is: `FIFO`, `device`, `socket`, `directory`, ...
        kind: &'static str,
    },
    /// The file is longer than the loader reads.
    #[error(
        "{} is larger than {limit} bytes, more than this file ever holds; check the path",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
}

impl From<ReadFileError> for io::Error {
    /// An I/O failure stays itself (its kind intact); a special file is
    /// `InvalidInput` and an oversized one `FileTooLarge`, each carrying the
    /// [`ReadFileError`].
    fn from(error: ReadFileError) -> Self {
        match error {
            ReadFileError::Io { source, .. } => source,
            e @ ReadFileError::NotARegularFile { .. } => {
                io::Error::new(io::ErrorKind::InvalidInput, e)
            }
            e @ ReadFileError::TooLarge { .. } => io::Error::new(io::ErrorKind::FileTooLarge, e),
        }
    }
}

fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "device";
        }
        if file_type.is_socket() {
            return "socket";
        }
    }
    if file_type.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

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

/// Opens `path` only if it is a regular file, never blocking on the way:
/// [`read_regular_file`] for files that are appended to or rewritten in
/// place (the audit log, an anchor file).
///
/// On Unix the file is opened with `O_NONBLOCK`, so even a FIFO without a
/// writer returns at once (the flag has no effect on a regular file), and
/// anything but a regular file is refused with
/// [`io::ErrorKind::InvalidInput`] carrying a
/// [`ReadFileError::NotARegularFile`]. `write` asks for a read-write
/// handle; `create` creates a missing file with mode 0600.
///
/// # Errors
/// The underlying I/O error, or `InvalidInput` for anything but a regular
/// file.
pub fn open_regular(path: &Path, write: bool, create: bool) -> io::Result<File> {
    open_checked(path, write, create, false)
}

/// [`open_regular`], also refusing a symbolic link at `path` itself (its
/// parent directories may still be links): for a file this process
/// appends to, truncates or rewrites, where a link planted at the path
/// would redirect those writes to a file of the attacker's choosing.
///
/// On Unix the open uses `O_NOFOLLOW`, so a link swapped in after any
/// check is still refused; elsewhere the path is checked just before the
/// open.
///
/// # Errors
/// As [`open_regular`]; a symbolic link is `InvalidInput` carrying a
/// [`ReadFileError::NotARegularFile`] of kind `symbolic link`.
pub fn open_regular_no_symlink(path: &Path, write: bool, create: bool) -> io::Result<File> {
    open_checked(path, write, create, true)
}

fn open_checked(path: &Path, write: bool, create: bool, no_symlink: bool) -> io::Result<File> {
    let is_symlink =
        || std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink());
    let symlink = || -> io::Error {
        ReadFileError::NotARegularFile {
            path: path.to_owned(),
            kind: "symbolic link",
        }
        .into()
    };
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
        let nofollow = if no_symlink { libc::O_NOFOLLOW } else { 0 };
        options
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | nofollow);
    }
    #[cfg(not(unix))]
    if no_symlink && is_symlink() {
        return Err(symlink());
    }
    let file = match options.open(path) {
        Ok(file) => file,
        // O_NOFOLLOW fails with ELOOP (EMLINK on some BSDs): say why.
        Err(_) if no_symlink && is_symlink() => return Err(symlink()),
        // A directory opened for writing fails before it can be checked.
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
            return Err(ReadFileError::NotARegularFile {
                path: path.to_owned(),
                kind: "directory",
            }
            .into());
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadFileError::NotARegularFile {
            path: path.to_owned(),
            kind: file_kind(&meta.file_type()),
        }
        .into());
    }
    Ok(file)
}

/// Reads the whole of an open regular file of at most `limit` bytes, up to
/// the length it had when checked (a file that keeps growing cannot make
/// the read unbounded).
///
/// # Errors
/// `InvalidInput` for anything but a regular file, `FileTooLarge` above
/// `limit`, or the underlying I/O error.
pub fn read_bounded(file: &File, limit: u64) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes"),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(meta.len()).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_and_read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        read_bounded(&open_regular(path, false, false)?, limit)
    }

    #[test]
    fn regular_files_read_back_and_huge_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(open_and_read(&path, 5).unwrap(), b"hello");
        let err = open_and_read(&path, 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn directories_and_devices_are_refused_by_open_regular() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_and_read(dir.path(), 1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        for create in [false, true] {
            let err = open_regular(dir.path(), true, create).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("directory"), "{err}");
        }
        #[cfg(unix)]
        {
            let err = open_and_read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("device"), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_refused_by_open_regular_no_symlink_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"elsewhere").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for (write, create) in [(false, false), (true, false), (true, true)] {
            let err = open_regular_no_symlink(&link, write, create).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        // A dangling link is refused too, and nothing is created behind it.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("missing"), &dangling).unwrap();
        let err = open_regular_no_symlink(&dangling, true, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(!dir.path().join("missing").exists());
        // open_regular follows links, as before; a plain file opens.
        assert!(open_regular(&link, false, false).is_ok());
        assert!(open_regular_no_symlink(&target, true, false).is_ok());
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

/// Identifies one version of a file that is only ever replaced by a rename
/// (device, inode, length, modification time): a rename always produces a
/// new inode, so a changed stamp means a changed file. The JSON stores use
/// it to reuse what they last read and checked while the file is the same.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp(Option<(u64, u64, u64, i64, i64)>);

impl FileStamp {
    /// The stamp of the file at `path` now.
    pub(crate) fn of(path: &Path) -> io::Result<Self> {
        let meta = std::fs::metadata(path)?;
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

    /// Whether the stamp identifies the file (not on every platform).
    pub(crate) fn is_some(&self) -> bool {
        self.0.is_some()
    }
}
