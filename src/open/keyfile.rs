//! Reading the small files that hold keys and passphrases: regular files
//! only (a FIFO or a device never hangs an open), bounded, wiped after use.

use std::fs::File;
use std::io::{self, ErrorKind, Read as _};
use std::path::Path;

use tyrum_secrets_core::SecretString;
use zeroize::Zeroizing;

use super::OpenError;

/// The longest passphrase file accepted.
#[cfg_attr(not(feature = "file"), allow(dead_code))]
const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;

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

/// The passphrase in `path` (named by `key` in messages), without one
/// trailing newline (`\n` or `\r\n`).
#[cfg_attr(not(feature = "file"), allow(dead_code))]
pub(crate) fn read_passphrase(path: &Path, key: &str) -> Result<SecretString, OpenError> {
    let fail = |reason: &str| OpenError::KeyFile {
        what: "passphrase file",
        path: path.to_owned(),
        key: key.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = match read_small(path, MAX_PASSPHRASE_FILE) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(fail(
                "does not exist; write the store's passphrase into it (mode 0600), or point the setting at the file that holds it",
            ));
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(fail("cannot be read by this user; fix its owner or mode"));
        }
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            return Err(fail("is not a regular file; point the setting at a file"));
        }
        Err(e) if e.kind() == ErrorKind::InvalidData => {
            return Err(fail(
                "is larger than 64 KiB; it must hold only the passphrase",
            ));
        }
        Err(_) => return Err(fail("cannot be read")),
    };
    let text = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(&bytes);
    if text.is_empty() {
        return Err(fail("is empty; write the store's passphrase into it"));
    }
    let Ok(text) = std::str::from_utf8(text) else {
        return Err(fail("is not UTF-8 text"));
    };
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tyrum_secrets_core::ExposeSecret as _;

    #[test]
    fn one_trailing_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, b"horse battery\n\n").unwrap();
        let pass = read_passphrase(&path, "passphrase_file").unwrap();
        assert_eq!(pass.expose_secret(), "horse battery\n");
        std::fs::write(&path, b"horse battery\r\n").unwrap();
        let pass = read_passphrase(&path, "passphrase_file").unwrap();
        assert_eq!(pass.expose_secret(), "horse battery");
    }

    #[test]
    fn empty_missing_and_directory_are_distinct_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        let missing = read_passphrase(&path, "k").unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        std::fs::write(&path, b"\n").unwrap();
        let empty = read_passphrase(&path, "k").unwrap_err().to_string();
        assert!(empty.contains("is empty"), "{empty}");
        let not_file = read_passphrase(dir.path(), "k").unwrap_err().to_string();
        assert!(not_file.contains("not a regular file"), "{not_file}");
    }

    #[test]
    fn a_non_utf8_passphrase_is_refused_without_echo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, b"secret\xff\xfe").unwrap();
        let err = read_passphrase(&path, "k").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(!format!("{err:?}").contains("secret\u{fffd}"));
    }
}
