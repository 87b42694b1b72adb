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
