//! The on-disk format (FORMAT.md): a header, then a log of framed, sealed
//! records, chained in format 2. This module only encodes and decodes
//! bytes; it never touches the file system.

pub(crate) mod chain;
mod header;
mod record;

use chacha20poly1305::aead::KeyInit as _;
use chacha20poly1305::{Key, XChaCha20Poly1305};

pub(crate) use chain::{ChainKeys, Link};
pub(crate) use header::{HEADER_LEN_V1, HEADER_LEN_V2, Header, HeaderFields};
pub(crate) use record::{
    RawRecord, RecordAad, RecordKind, frame, open_record, scan, seal_record, sealed_part,
};

use crate::error::FileError;
use crate::key::StoreKey;

/// First eight bytes of every store.
pub(crate) const MAGIC: &[u8; 8] = b"TYRUMSEC";
/// Format 1: records sealed one by one (still read and appended to).
pub(crate) const FORMAT_V1: u16 = 1;
/// Format 2: records chained, and anchored if the caller asks. New stores
/// are created in it.
pub(crate) const FORMAT_V2: u16 = 2;
/// Length of the store id.
pub(crate) const STORE_ID_LEN: usize = 16;
/// XChaCha20-Poly1305 nonce length.
pub(crate) const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Largest value a store accepts, in bytes.
pub(crate) const MAX_VALUE_LEN: usize = 16 << 20;

fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn cipher(key: &StoreKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key.expose()))
}

/// Random bytes from the OS generator.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], FileError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| FileError::Random)?;
    Ok(out)
}
