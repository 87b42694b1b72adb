//! The on-disk format (FORMAT.md): a fixed header, then a log of framed,
//! sealed records. This module only encodes and decodes bytes; it never
//! touches the file system.

use std::path::Path;

use chacha20poly1305::aead::{Aead as _, AeadInPlace as _, KeyInit as _, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use tyrum_secrets_core::Locator;
use zeroize::Zeroizing;

use crate::error::FileError;
use crate::key::{KEY_LEN, KdfParams, KeyKind, SALT_LEN, StoreKey};

/// First eight bytes of every store.
pub(crate) const MAGIC: &[u8; 8] = b"TYRUMSEC";
/// The format version this build writes and reads.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// Length of the store id.
pub(crate) const STORE_ID_LEN: usize = 16;
/// XChaCha20-Poly1305 nonce length.
pub(crate) const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;

const OFF_VERSION: usize = 8;
const OFF_STORE_ID: usize = 10;
const OFF_KEY_KIND: usize = OFF_STORE_ID + STORE_ID_LEN; // 26
const OFF_KDF: usize = OFF_KEY_KIND + 1; // 27
const OFF_SALT: usize = OFF_KDF + 12; // 39
const OFF_WRAP_NONCE: usize = OFF_SALT + SALT_LEN; // 55
const OFF_WRAPPED: usize = OFF_WRAP_NONCE + NONCE_LEN; // 79
/// Length of the header; the record log starts here.
pub(crate) const HEADER_LEN: usize = OFF_WRAPPED + KEY_LEN + TAG_LEN; // 127

const KIND_PASSPHRASE: u8 = 1;
const KIND_RAW_KEY: u8 = 2;

const WRAP_DOMAIN: &[u8] = b"tyrum-secrets-file v1 data key";
const RECORD_DOMAIN: &[u8] = b"tyrum-secrets-file v1 record";

/// Largest value a store accepts, in bytes.
pub(crate) const MAX_VALUE_LEN: usize = 16 << 20;
/// Frame prefix: body length and its bitwise complement.
pub(crate) const FRAME_PREFIX_LEN: usize = 8;
/// Fixed part of a record body: kind, version, locator length.
const BODY_FIXED_LEN: usize = 1 + 8 + 2;
const MIN_BODY_LEN: usize = BODY_FIXED_LEN + 1 + NONCE_LEN + TAG_LEN;
const MAX_BODY_LEN: usize = BODY_FIXED_LEN + Locator::MAX_LEN + NONCE_LEN + MAX_VALUE_LEN + TAG_LEN;

/// A store's header, parsed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) store_id: [u8; STORE_ID_LEN],
    pub(crate) key_kind: KeyKind,
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) wrap_nonce: [u8; NONCE_LEN],
    pub(crate) wrapped_key: [u8; KEY_LEN + TAG_LEN],
}

impl Header {
    /// A header for a new store or a rekeyed one: wraps `data_key` under
    /// `kek`.
    pub(crate) fn seal(
        store_id: [u8; STORE_ID_LEN],
        key_kind: KeyKind,
        kdf: KdfParams,
        salt: [u8; SALT_LEN],
        kek: &StoreKey,
        data_key: &StoreKey,
    ) -> Result<Self, FileError> {
        let mut header = Header {
            store_id,
            key_kind,
            kdf,
            salt,
            wrap_nonce: random()?,
            wrapped_key: [0; KEY_LEN + TAG_LEN],
        };
        let aad = header.wrap_aad();
        let sealed = cipher(kek)
            .encrypt(
                XNonce::from_slice(&header.wrap_nonce),
                Payload {
                    msg: data_key.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| FileError::Random)?;
        header.wrapped_key.copy_from_slice(&sealed);
        Ok(header)
    }

    /// Unwraps the data key. Any failure is the opaque [`FileError::Decrypt`].
    pub(crate) fn unwrap_key(&self, kek: &StoreKey, path: &Path) -> Result<StoreKey, FileError> {
        let aad = self.wrap_aad();
        let mut buf = Zeroizing::new(self.wrapped_key.to_vec());
        cipher(kek)
            .decrypt_in_place(XNonce::from_slice(&self.wrap_nonce), &aad, &mut *buf)
            .map_err(|_| FileError::Decrypt {
                path: path.to_owned(),
            })?;
        let key: [u8; KEY_LEN] = buf.as_slice().try_into().map_err(|_| FileError::Decrypt {
            path: path.to_owned(),
        })?;
        Ok(StoreKey::from_bytes(key))
    }

    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..OFF_WRAP_NONCE].copy_from_slice(&self.authenticated_prefix());
        out[OFF_WRAP_NONCE..OFF_WRAPPED].copy_from_slice(&self.wrap_nonce);
        out[OFF_WRAPPED..].copy_from_slice(&self.wrapped_key);
        out
    }

    /// Parses a header without any cryptography. KDF limits are checked by
    /// the caller before a key is derived.
    pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<Self, FileError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(FileError::NotAStore {
                path: path.to_owned(),
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(FileError::corrupt(
                path,
                bytes.len() as u64,
                "the header is cut short",
            ));
        }
        let version = u16::from_le_bytes([bytes[OFF_VERSION], bytes[OFF_VERSION + 1]]);
        if version != FORMAT_VERSION {
            return Err(FileError::UnsupportedFormat {
                path: path.to_owned(),
                version,
            });
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let kdf = KdfParams::from_header(u32_at(OFF_KDF), u32_at(OFF_KDF + 4), u32_at(OFF_KDF + 8));
        let key_kind = match bytes[OFF_KEY_KIND] {
            KIND_PASSPHRASE => KeyKind::Passphrase,
            KIND_RAW_KEY => KeyKind::RawKey,
            _ => {
                return Err(FileError::corrupt(
                    path,
                    OFF_KEY_KIND as u64,
                    "unknown key kind in the header",
                ));
            }
        };
        let header = Header {
            store_id: array_at(bytes, OFF_STORE_ID),
            key_kind,
            kdf,
            salt: array_at(bytes, OFF_SALT),
            wrap_nonce: array_at(bytes, OFF_WRAP_NONCE),
            wrapped_key: array_at(bytes, OFF_WRAPPED),
        };
        if key_kind == KeyKind::RawKey
            && (header.kdf != KdfParams::from_header(0, 0, 0) || header.salt != [0; SALT_LEN])
        {
            return Err(FileError::corrupt(
                path,
                OFF_KDF as u64,
                "a raw-key store must have zero KDF parameters and salt",
            ));
        }
        Ok(header)
    }

    /// Header bytes covered by the key wrap's associated data.
    fn authenticated_prefix(&self) -> [u8; OFF_WRAP_NONCE] {
        let mut out = [0u8; OFF_WRAP_NONCE];
        out[..OFF_VERSION].copy_from_slice(MAGIC);
        out[OFF_VERSION..OFF_STORE_ID].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[OFF_STORE_ID..OFF_KEY_KIND].copy_from_slice(&self.store_id);
        out[OFF_KEY_KIND] = match self.key_kind {
            KeyKind::Passphrase => KIND_PASSPHRASE,
            KeyKind::RawKey => KIND_RAW_KEY,
        };
        out[OFF_KDF..OFF_KDF + 4].copy_from_slice(&self.kdf.memory_kib().to_le_bytes());
        out[OFF_KDF + 4..OFF_KDF + 8].copy_from_slice(&self.kdf.passes().to_le_bytes());
        out[OFF_KDF + 8..OFF_SALT].copy_from_slice(&self.kdf.lanes().to_le_bytes());
        out[OFF_SALT..OFF_WRAP_NONCE].copy_from_slice(&self.salt);
        out
    }

    fn wrap_aad(&self) -> Vec<u8> {
        let mut aad = WRAP_DOMAIN.to_vec();
        aad.extend_from_slice(&self.authenticated_prefix());
        aad
    }
}

fn array_at<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

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
pub(crate) struct RawRecord {
    pub(crate) kind: RecordKind,
    pub(crate) version: u64,
    pub(crate) locator: Locator,
    /// Nonce followed by ciphertext and tag.
    pub(crate) sealed: Vec<u8>,
    /// Offset of the frame in the file.
    pub(crate) offset: u64,
    /// Length of the whole frame.
    pub(crate) frame_len: u64,
}

/// The outcome of scanning a log.
pub(crate) struct Scan {
    pub(crate) records: Vec<RawRecord>,
    /// Offset just past the last complete record.
    pub(crate) end: u64,
    /// Bytes after `end` that form an incomplete record (a torn append).
    pub(crate) torn: bool,
}

/// Splits `log` (file bytes starting at `base`) into records.
///
/// An incomplete final record is a torn append: it is reported, not
/// parsed. Anything else that does not parse is [`FileError::Corrupt`].
pub(crate) fn scan(log: &[u8], base: u64, path: &Path) -> Result<Scan, FileError> {
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
        let body = &rest[FRAME_PREFIX_LEN..FRAME_PREFIX_LEN + len];
        records.push(parse_body(body, offset, path)?);
        at += FRAME_PREFIX_LEN + len;
    };
    Ok(Scan {
        records,
        end: base + at as u64,
        torn,
    })
}

fn parse_body(body: &[u8], offset: u64, path: &Path) -> Result<RawRecord, FileError> {
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
        sealed: body[sealed_at..].to_vec(),
        offset,
        frame_len: (FRAME_PREFIX_LEN + body.len()) as u64,
    })
}

/// Seals `value` into a framed record.
pub(crate) fn seal_record(
    data_key: &StoreKey,
    store_id: &[u8; STORE_ID_LEN],
    kind: RecordKind,
    version: u64,
    locator: &Locator,
    value: &[u8],
) -> Result<Vec<u8>, FileError> {
    let nonce: [u8; NONCE_LEN] = random()?;
    let aad = record_aad(store_id, kind, version, locator);
    let sealed = cipher(data_key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: value,
                aad: &aad,
            },
        )
        .map_err(|_| FileError::Random)?;
    let mut sealed_with_nonce = nonce.to_vec();
    sealed_with_nonce.extend_from_slice(&sealed);
    Ok(frame(kind, version, locator, &sealed_with_nonce))
}

/// The sealed part (nonce, ciphertext, tag) of a frame made by
/// [`seal_record`] for `locator`.
pub(crate) fn sealed_part<'a>(frame: &'a [u8], locator: &Locator) -> &'a [u8] {
    &frame[FRAME_PREFIX_LEN + BODY_FIXED_LEN + locator.as_str().len()..]
}

/// Frames an already sealed record (compaction copies records unchanged).
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
    store_id: &[u8; STORE_ID_LEN],
    kind: RecordKind,
    version: u64,
    locator: &Locator,
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
    let aad = record_aad(store_id, kind, version, locator);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    cipher(data_key)
        .decrypt_in_place(XNonce::from_slice(nonce), &aad, &mut *buf)
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

fn record_aad(
    store_id: &[u8; STORE_ID_LEN],
    kind: RecordKind,
    version: u64,
    locator: &Locator,
) -> Vec<u8> {
    let mut aad = RECORD_DOMAIN.to_vec();
    aad.extend_from_slice(store_id);
    aad.extend_from_slice(&body_prefix(kind, version, locator));
    aad
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

#[cfg(test)]
mod tests {
    use super::*;

    fn locator(name: &str) -> Locator {
        Locator::new(name).unwrap()
    }

    #[test]
    fn header_round_trips_and_unwraps_only_with_its_key() {
        let kek = StoreKey::from_bytes([1; KEY_LEN]);
        let data = StoreKey::from_bytes([2; KEY_LEN]);
        let header = Header::seal(
            [3; STORE_ID_LEN],
            KeyKind::Passphrase,
            KdfParams::dangerous_insecure_for_tests(),
            [4; SALT_LEN],
            &kek,
            &data,
        )
        .unwrap();
        let bytes = header.encode();
        assert_eq!(&bytes[..8], MAGIC);
        let parsed = Header::decode(&bytes, Path::new("x")).unwrap();
        assert!(parsed == header);
        assert_eq!(
            parsed.unwrap_key(&kek, Path::new("x")).unwrap().expose(),
            data.expose()
        );
        let wrong = StoreKey::from_bytes([9; KEY_LEN]);
        assert!(matches!(
            parsed.unwrap_key(&wrong, Path::new("x")),
            Err(FileError::Decrypt { .. })
        ));
    }

    #[test]
    fn record_opens_only_under_its_own_store_locator_version_and_kind() {
        let key = StoreKey::from_bytes([5; KEY_LEN]);
        let id = [6; STORE_ID_LEN];
        let framed = seal_record(&key, &id, RecordKind::Put, 2, &locator("a/b"), b"value").unwrap();
        let scan = scan(&framed, 0, Path::new("x")).unwrap();
        assert!(!scan.torn);
        let rec = &scan.records[0];
        let open = |id: &[u8; STORE_ID_LEN], kind, version, loc: &Locator| {
            open_record(&key, id, kind, version, loc, &rec.sealed, Path::new("x"))
        };
        assert_eq!(
            open(&id, RecordKind::Put, 2, &rec.locator)
                .unwrap()
                .as_slice(),
            b"value"
        );
        assert!(open(&[7; STORE_ID_LEN], RecordKind::Put, 2, &rec.locator).is_err());
        assert!(open(&id, RecordKind::Put, 3, &rec.locator).is_err());
        assert!(open(&id, RecordKind::Delete, 2, &rec.locator).is_err());
        assert!(open(&id, RecordKind::Put, 2, &locator("a/c")).is_err());
    }

    #[test]
    fn incomplete_final_record_is_torn_not_corrupt() {
        let key = StoreKey::from_bytes([5; KEY_LEN]);
        let id = [6; STORE_ID_LEN];
        let mut log = seal_record(&key, &id, RecordKind::Put, 1, &locator("a"), b"one").unwrap();
        let first = log.len() as u64;
        log.extend(seal_record(&key, &id, RecordKind::Put, 2, &locator("a"), b"two").unwrap());
        for cut in first as usize + 1..log.len() {
            let scan = scan(&log[..cut], 0, Path::new("x")).unwrap();
            assert!(scan.torn && scan.end == first && scan.records.len() == 1);
        }
    }

    mod round_trip {
        use super::*;
        use proptest::prelude::*;

        fn kind() -> impl Strategy<Value = RecordKind> {
            prop_oneof![
                Just(RecordKind::Put),
                Just(RecordKind::Delete),
                Just(RecordKind::Destroy)
            ]
        }

        proptest! {
            #[test]
            fn sealed_records_scan_back_to_the_same_fields_and_values(
                records in proptest::collection::vec(
                    (kind(), 1u64.., "[a-z0-9/._-]{1,40}", proptest::collection::vec(any::<u8>(), 0..300)),
                    0..8,
                ),
            ) {
                let key = StoreKey::from_bytes([0x33; KEY_LEN]);
                let id = [0x44; STORE_ID_LEN];
                let mut log = Vec::new();
                for (kind, version, name, value) in &records {
                    let framed = seal_record(&key, &id, *kind, *version, &locator(name), value).unwrap();
                    log.extend_from_slice(&framed);
                }
                let scan = scan(&log, 7, Path::new("x")).unwrap();
                prop_assert!(!scan.torn);
                prop_assert_eq!(scan.end, 7 + log.len() as u64);
                prop_assert_eq!(scan.records.len(), records.len());
                for (raw, (kind, version, name, value)) in scan.records.iter().zip(&records) {
                    prop_assert_eq!(raw.kind, *kind);
                    prop_assert_eq!(raw.version, *version);
                    prop_assert_eq!(raw.locator.as_str(), name.as_str());
                    let opened = open_record(&key, &id, *kind, *version, &raw.locator, &raw.sealed, Path::new("x")).unwrap();
                    prop_assert_eq!(opened.as_slice(), value.as_slice());
                }
            }
        }
    }
}
