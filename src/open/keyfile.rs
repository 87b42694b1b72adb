//! Reading the small files that hold keys (the audit key file): regular files
//! only (a FIFO or a device never hangs an open), bounded, wiped after use.

use std::fs::File;
use std::io::{self, ErrorKind, Read as _};
use std::path::Path;

use zeroize::Zeroizing;

/// Reads a regular file of at most `max` bytes.
pub(crate) fn read_small(path: &Path, max: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}
