//! Bounded, non-blocking reads of one secret file, and locator-to-path rules.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use tyrum_secrets_core::{Locator, SecretBytes};
use zeroize::Zeroizing;

use super::error::FileKind;

/// Why one file could not be read. The caller turns this into a
/// [`MountError`](super::MountError) once it knows whether to retry.
pub(super) enum FileError {
    /// No file at the path (or a path component is not a directory).
    Missing,
    /// The path is something other than a regular file.
    NotAFile(FileKind),
    /// Larger than the limit.
    TooLarge { len: u64 },
    /// Access refused by the file system.
    PermissionDenied(std::io::Error),
    /// The file grew while it was read.
    Changed,
    /// Anything else.
    Io(std::io::Error),
}

/// Turns a locator into a relative path inside the mount.
///
/// Components are separated by `/`; none may be empty, `.` or `..`, and the
/// first may not start with `..`: kubelet reserves those names (`..data`,
/// `..<timestamp>`) for itself. Returns `Err(reason)` otherwise.
pub(super) fn relative_path(locator: &Locator) -> Result<PathBuf, &'static str> {
    let mut path = PathBuf::new();
    for (index, component) in locator.as_str().split('/').enumerate() {
        match component {
            "" => return Err("it has an empty path component (leading, trailing or double '/')"),
            "." | ".." => return Err("it has a '.' or '..' component"),
            c if index == 0 && c.starts_with("..") => {
                return Err("names starting with '..' are kubelet's own (..data, ..<timestamp>)");
            }
            c => path.push(c),
        }
    }
    Ok(path)
}

/// Where a read under a directory starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// The mount root the operator configured: it may be reached through a
    /// symlink (`/var/run/secrets/app -> /mnt/...`); everything under it
    /// may not.
    Root,
    /// A kubelet data directory: kubelet never makes it a symlink, so one
    /// in its place is refused.
    DataDirectory,
}

/// Reads the regular file at `relative` under the directory `dir`, at most
/// `max` bytes, following no symlink on the way: not an intermediate
/// directory, not the file, and not `dir` itself when it is a
/// [`Start::DataDirectory`]. Each component is opened with
/// `openat(O_NOFOLLOW)` relative to the one before, so a symlink swapped in
/// between two steps is refused too, never followed out of the mount. The
/// file is opened with `O_NONBLOCK`, so a FIFO planted at the path cannot
/// hang the reader. The buffer is wiped on every path out.
pub(super) fn read_bounded_beneath(
    dir: &Path,
    start: Start,
    relative: &Path,
    max: usize,
) -> Result<SecretBytes, FileError> {
    use rustix::fs::{Mode, OFlags};
    // Directories are opened only to look names up in them: O_PATH needs
    // just the search permission a plain path lookup needs, not read.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let lookup_only = OFlags::PATH;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let lookup_only = OFlags::RDONLY;
    let dir_flags = lookup_only | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let open_err = |e: rustix::io::Errno| classify_open_error(std::io::Error::from(e));
    // A symlink opened with O_DIRECTORY | O_NOFOLLOW fails with ENOTDIR (or
    // ELOOP); tell it apart from a plain file in the way.
    let dir_err = |e: rustix::io::Errno, is_symlink: &dyn Fn() -> bool| {
        if matches!(e, rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) && is_symlink() {
            FileError::NotAFile(FileKind::Symlink)
        } else {
            open_err(e)
        }
    };
    let start_flags = match start {
        Start::Root => dir_flags & !OFlags::NOFOLLOW,
        Start::DataDirectory => dir_flags,
    };
    let mut at = rustix::fs::open(dir, start_flags, Mode::empty()).map_err(|e| {
        dir_err(e, &|| {
            std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink())
        })
    })?;
    let mut components = relative.components().peekable();
    while let Some(component) = components.next() {
        let name = component.as_os_str();
        if components.peek().is_none() {
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(&at, name, flags, Mode::empty()).map_err(open_err)?;
            return read_open_file(File::from(fd), max);
        }
        let next = rustix::fs::openat(&at, name, dir_flags, Mode::empty()).map_err(|e| {
            dir_err(e, &|| {
                rustix::fs::statat(&at, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
                    |st| {
                        rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Symlink
                    },
                )
            })
        })?;
        at = next;
    }
    // `relative_path` never yields an empty path.
    Err(FileError::Missing)
}

fn read_open_file(mut file: File, max: usize) -> Result<SecretBytes, FileError> {
    let metadata = file.metadata().map_err(FileError::Io)?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        return Err(FileError::NotAFile(FileKind::of(file_type)));
    }
    let len = metadata.len();
    if len > max as u64 {
        return Err(FileError::TooLarge { len });
    }
    // `len <= max`, and `max` is a usize.
    let expected = usize::try_from(len).unwrap_or(max);
    read_exact_len(&mut file, expected, max)
}

fn classify_open_error(e: std::io::Error) -> FileError {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => FileError::Missing,
        ErrorKind::PermissionDenied => FileError::PermissionDenied(e),
        _ if e.raw_os_error() == Some(libc::ELOOP) => FileError::NotAFile(FileKind::Symlink),
        _ => FileError::Io(e),
    }
}

/// Reads until EOF into a buffer sized from `fstat`, one byte larger so that
/// a file that grew since is noticed instead of silently cut.
fn read_exact_len(file: &mut File, expected: usize, max: usize) -> Result<SecretBytes, FileError> {
    let capacity = expected.saturating_add(1);
    let mut buffer = Zeroizing::new(vec![0u8; capacity]);
    let mut filled = 0;
    loop {
        if filled == capacity {
            // More bytes than fstat reported.
            return Err(if filled > max {
                FileError::TooLarge { len: filled as u64 }
            } else {
                FileError::Changed
            });
        }
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return Err(FileError::PermissionDenied(e));
            }
            Err(e) => return Err(FileError::Io(e)),
        }
    }
    Ok(SecretBytes::from(buffer[..filled].to_vec()))
}

impl FileKind {
    pub(super) fn of(file_type: std::fs::FileType) -> Self {
        if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_symlink() {
            FileKind::Symlink
        } else if file_type.is_fifo() {
            FileKind::Fifo
        } else if file_type.is_socket() {
            FileKind::Socket
        } else if file_type.is_block_device() || file_type.is_char_device() {
            FileKind::Device
        } else {
            FileKind::Other
        }
    }
}
