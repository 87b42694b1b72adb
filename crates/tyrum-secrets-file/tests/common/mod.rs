//! Helpers shared by the format-2 tests: fast stores (raw key), frames of
//! a store file, reading every version back.

#![allow(
    clippy::unwrap_used,
    dead_code,
    reason = "test helpers: a panic is a test failure; not every test file uses every helper"
)]

use std::collections::BTreeMap;
use std::path::Path;

use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, VersionSelector,
};
use tyrum_secrets_file::{FileError, FileOptions, FileProvider, KeySource, StoreKey};

/// Length of a format-2 header: the log starts here.
pub(crate) const HEADER_LEN: usize = 135;

/// Every value read back, by locator and version.
pub(crate) type Values = BTreeMap<(String, u64), Vec<u8>>;

pub(crate) fn key() -> KeySource {
    KeySource::Key(StoreKey::from_bytes([0x24; 32]))
}

/// Destroys append a marker (no compaction), so a store grows one frame
/// per operation.
pub(crate) fn options() -> FileOptions {
    FileOptions::default().compact_on_destroy(false)
}

pub(crate) fn loc(name: &str) -> Locator {
    Locator::new(name).unwrap()
}

pub(crate) fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::from(bytes.to_vec())
}

/// The log's frames (FORMAT.md: u32 length, its complement, body).
pub(crate) fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at..at + 8 + len].to_vec());
        at += 8 + len;
    }
    out
}

/// A store file made of `bytes`'s header and `frames`.
pub(crate) fn with_frames(bytes: &[u8], frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = bytes[..HEADER_LEN].to_vec();
    for frame in frames {
        out.extend_from_slice(frame);
    }
    out
}

/// The offsets at which frames end (the file's frame-boundary lengths),
/// the header's end first.
pub(crate) fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let mut out = vec![HEADER_LEN];
    for frame in frames(bytes) {
        out.push(out[out.len() - 1] + frame.len());
    }
    out
}

/// Opens the store at `path` and reads every readable version.
pub(crate) fn read_all(path: &Path, options: FileOptions) -> Result<Values, FileError> {
    let p = FileProvider::open_with(path, key(), options)?;
    let mut out = Values::new();
    for locator in p.list().unwrap() {
        for info in p.versions(&locator).unwrap() {
            match p.read(&locator, VersionSelector::Exact(info.version)) {
                Ok(got) => {
                    out.insert(
                        (locator.to_string(), got.version.get()),
                        got.value.expose_secret().to_vec(),
                    );
                }
                Err(ProviderError::VersionNotFound { .. }) => {}
                Err(e) => panic!("a listed version does not read: {e}"),
            }
        }
    }
    Ok(out)
}

/// Whether `error` is one of the typed refusals of a damaged or older
/// store (never an I/O error or a panic).
pub(crate) fn is_refusal(error: &FileError) -> bool {
    matches!(
        error,
        FileError::Corrupt { .. } | FileError::Decrypt { .. } | FileError::Anchor { .. }
    )
}
