//! Reading the small files that hold keys (the audit key file, the store's
//! key file): regular files only, checked on the opened file itself (so a
//! FIFO or a device swapped in never hangs an open), bounded, wiped after
//! use.

use std::io::{self, ErrorKind};
use std::path::Path;

use tyrum_secrets_core::durable::{ReadFileError, read_regular_file};
use zeroize::Zeroizing;

/// Reads a regular file of at most `max` bytes. A missing file is
/// [`ErrorKind::NotFound`].
pub(crate) fn read_small(path: &Path, max: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    match read_regular_file(path, max) {
        Ok(bytes) => Ok(Zeroizing::new(bytes)),
        Err(ReadFileError::Io { source, .. }) => Err(source),
        Err(ReadFileError::NotARegularFile { kind, .. }) => Err(io::Error::new(
            ErrorKind::InvalidInput,
            format!("not a regular file (a {kind})"),
        )),
        Err(ReadFileError::TooLarge { limit, .. }) => Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        )),
        Err(other) => Err(io::Error::other(other.to_string())),
    }
}
