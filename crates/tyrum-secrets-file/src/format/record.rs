//! The record log (FORMAT.md): framing, scanning, and the sealing of each
//! record, whose associated data in format 2 binds the chain value before
//! it.

use std::path::Path;

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead as _, AeadInPlace as _, Payload};
use tyrum_secrets_core::Locator;
use zeroize::Zeroizing;

use super::chain::Link;
use super::{MAX_VALUE_LEN, NONCE_LEN, STORE_ID_LEN, TAG_LEN, array_at, cipher, random};
use crate::error::FileError;
use crate::key::StoreKey;

const RECORD_DOMAIN_V1: &[u8] = b"tyrum-secrets-file v1 record";
const RECORD_DOMAIN_V2: &[u8] = b"tyrum-secrets-file v2 record";

/// Frame prefix: body length and its bitwise complement.
pub(crate) const FRAME_PREFIX_LEN: usize = 8;
/// Fixed part of a record body: kind, version, locator length.
const BODY_FIXED_LEN: usize = 1 + 8 + 2;
const MIN_BODY_LEN: usize = BODY_FIXED_LEN + 1 + NONCE_LEN + TAG_LEN;
const MAX_BODY_LEN: usize = BODY_FIXED_LEN + Locator::MAX_LEN + NONCE_LEN + MAX_VALUE_LEN + TAG_LEN;

/// What a record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// A new version's value.
    Put,
    /// Hides a version.
    Delete,
    /// Erases a version (or, after compaction, records that versions up to
    /// this one were used).
    Destroy,
}

impl RecordKind {
    fn code(self) -> u8 {
        match self {
            RecordKind::Put => 1,
            RecordKind::Delete => 2,
            RecordKind::Destroy => 3,
        }
    }
}

/// A record as read from the log: structure checked, not yet decrypted.
pub(crate) struct RawRecord<'a> {
    pub(crate) kind: RecordKind,
    pub(crate) version: u64,
    pub(crate) locator: Locator,
    /// The whole frame, as in the file (the chain hashes it).
    pub(crate) frame: &'a [u8],
    /// Nonce followed by ciphertext and tag.
    pub(crate) sealed: &'a [u8],
    /// Offset of the frame in the file.
    pub(crate) offset: u64,
}

/// The outcome of scanning a log.
pub(crate) struct Scan<'a> {
    pub(crate) records: Vec<RawRecord<'a>>,
    /// Offset just past the last complete record.
    pub(crate) end: u64,
    /// Bytes after `end` that form an incomplete record (a torn append).
    pub(crate) torn: bool,
}

/// Splits `log` (file bytes starting at `base`) into records.
///
/// An incomplete final record is a torn append: it is reported, not
/// parsed. Anything else that does not parse is [`FileError::Corrupt`].
pub(crate) fn scan<'a>(log: &'a [u8], base: u64, path: &Path) -> Result<Scan<'a>, FileError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let torn = loop {
        let rest = &log[at..];
        if rest.is_empty() {
            break false;
        }
        let offset = base + at as u64;
        if rest.len() < FRAME_PREFIX_LEN {
            break true;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let check = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len != !check {
            // A crash on a file system that extends the file before writing
            // its data leaves zeros behind; anything else is damage.
            if rest.iter().all(|&b| b == 0) {
                break true;
            }
            return Err(FileError::corrupt(
                path,
                offset,
                "a record's length check fails",
            ));
        }
        let len = len as usize;
        if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&len) {
            return Err(FileError::corrupt(
                path,
                offset,
                "a record's length is out of range",
            ));
        }
        if rest.len() < FRAME_PREFIX_LEN + len {
            break true;
        }
        let frame = &rest[..FRAME_PREFIX_LEN + len];
        records.push(parse_frame(frame, offset, path)?);
        at += frame.len();
    };
    Ok(Scan {
        records,
        end: base + at as u64,
        torn,
    })
}

fn parse_frame<'a>(frame: &'a [u8], offset: u64, path: &Path) -> Result<RawRecord<'a>, FileError> {
    let body = &frame[FRAME_PREFIX_LEN..];
    let kind = match body[0] {
        1 => RecordKind::Put,
        2 => RecordKind::Delete,
        3 => RecordKind::Destroy,
        _ => return Err(FileError::corrupt(path, offset, "unknown record kind")),
    };
    let version = u64::from_le_bytes(array_at(body, 1));
    if version == 0 {
        return Err(FileError::corrupt(path, offset, "a record has version 0"));
    }
    let locator_len = usize::from(u16::from_le_bytes([body[9], body[10]]));
    let sealed_at = BODY_FIXED_LEN + locator_len;
    if locator_len == 0 || body.len() < sealed_at + NONCE_LEN + TAG_LEN {
        return Err(FileError::corrupt(
            path,
            offset,
            "a record's locator length is out of range",
        ));
    }
    let locator = std::str::from_utf8(&body[BODY_FIXED_LEN..sealed_at])
        .ok()
        .and_then(|text| Locator::new(text).ok())
        .ok_or_else(|| FileError::corrupt(path, offset, "a record's locator is not valid"))?;
    Ok(RawRecord {
        kind,
        version,
        locator,
        frame,
        sealed: &body[sealed_at..],
        offset,
    })
}

/// Which record, and (format 2) the chain value before it: everything a
/// record's associated data binds.
#[derive(Clone, Copy)]
pub(crate) struct RecordAad<'a> {
    pub(crate) store_id: &'a [u8; STORE_ID_LEN],
    /// `None` in format 1, which has no chain.
    pub(crate) link: Option<&'a Link>,
    pub(crate) kind: RecordKind,
    pub(crate) version: u64,
    pub(crate) locator: &'a Locator,
}

impl RecordAad<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut aad = match self.link {
            None => RECORD_DOMAIN_V1.to_vec(),
            Some(_) => RECORD_DOMAIN_V2.to_vec(),
        };
        aad.extend_from_slice(self.store_id);
        if let Some(link) = self.link {
            aad.extend_from_slice(link);
        }
        aad.extend_from_slice(&body_prefix(self.kind, self.version, self.locator));
        aad
    }
}

/// Seals `value` into a framed record.
pub(crate) fn seal_record(
    data_key: &StoreKey,
    aad: RecordAad<'_>,
    value: &[u8],
) -> Result<Vec<u8>, FileError> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let sealed = cipher(data_key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: value,
                aad: &aad.bytes(),
            },
        )
        .map_err(|_| FileError::Random)?;
    let mut sealed_with_nonce = nonce.to_vec();
    sealed_with_nonce.extend_from_slice(&sealed);
    Ok(frame(
        aad.kind,
        aad.version,
        aad.locator,
        &sealed_with_nonce,
    ))
}

/// The sealed part (nonce, ciphertext, tag) of a frame made by
/// [`seal_record`] for `locator`.
pub(crate) fn sealed_part<'a>(frame: &'a [u8], locator: &Locator) -> &'a [u8] {
    &frame[FRAME_PREFIX_LEN + BODY_FIXED_LEN + locator.as_str().len()..]
}

/// Frames an already sealed record (format-1 compaction copies records
/// unchanged).
pub(crate) fn frame(kind: RecordKind, version: u64, locator: &Locator, sealed: &[u8]) -> Vec<u8> {
    let header = body_prefix(kind, version, locator);
    let len = header.len() + sealed.len();
    // Record bodies are capped far below 4 GiB (MAX_BODY_LEN), so the
    // length always fits.
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(FRAME_PREFIX_LEN + len);
    out.extend_from_slice(&len32.to_le_bytes());
    out.extend_from_slice(&(!len32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(sealed);
    out
}

/// Opens a sealed record. Any failure is the opaque [`FileError::Decrypt`].
pub(crate) fn open_record(
    data_key: &StoreKey,
    aad: RecordAad<'_>,
    sealed: &[u8],
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let fail = || FileError::Decrypt {
        path: path.to_owned(),
    };
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(fail());
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    cipher(data_key)
        .decrypt_in_place(XNonce::from_slice(nonce), &aad.bytes(), &mut *buf)
        .map_err(|_| fail())?;
    Ok(buf)
}

fn body_prefix(kind: RecordKind, version: u64, locator: &Locator) -> Vec<u8> {
    let name = locator.as_str().as_bytes();
    let mut out = Vec::with_capacity(BODY_FIXED_LEN + name.len());
    out.push(kind.code());
    out.extend_from_slice(&version.to_le_bytes());
    // Locators are at most 512 bytes, so their length fits a u16.
    out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(name);
    out
}

#[cfg(test)]
mod tests;
