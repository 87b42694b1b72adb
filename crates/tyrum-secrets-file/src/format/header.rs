//! The store header (FORMAT.md): what protects the data key, and in format
//! 2 which rewrite of the store this file is.

use std::path::Path;

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead as _, AeadInPlace as _, Payload};
use zeroize::Zeroizing;

use super::{
    FORMAT_V1, FORMAT_V2, MAGIC, NONCE_LEN, STORE_ID_LEN, TAG_LEN, array_at, cipher, random,
};
use crate::error::FileError;
use crate::key::{KEY_LEN, KdfParams, KeyKind, SALT_LEN, StoreKey};

const OFF_VERSION: usize = 8;
const OFF_STORE_ID: usize = 10;
const OFF_KEY_KIND: usize = OFF_STORE_ID + STORE_ID_LEN; // 26
const OFF_KDF: usize = OFF_KEY_KIND + 1; // 27
const OFF_SALT: usize = OFF_KDF + 12; // 39
/// Format 2 only: the generation, a u64.
const OFF_GENERATION: usize = OFF_SALT + SALT_LEN; // 55
const GENERATION_LEN: usize = 8;
const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;

/// Length of a format-1 header.
pub(crate) const HEADER_LEN_V1: usize = OFF_GENERATION + NONCE_LEN + WRAPPED_LEN; // 127
/// Length of a format-2 header.
pub(crate) const HEADER_LEN_V2: usize = HEADER_LEN_V1 + GENERATION_LEN; // 135

const KIND_PASSPHRASE: u8 = 1;
const KIND_RAW_KEY: u8 = 2;

const WRAP_DOMAIN_V1: &[u8] = b"tyrum-secrets-file v1 data key";
const WRAP_DOMAIN_V2: &[u8] = b"tyrum-secrets-file v2 data key";

/// A store's header, parsed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// [`FORMAT_V1`] or [`FORMAT_V2`].
    pub(crate) version: u16,
    pub(crate) store_id: [u8; STORE_ID_LEN],
    pub(crate) key_kind: KeyKind,
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    /// Format 2: 1 for a new store, one more after every rewrite. Format 1
    /// has none (0).
    pub(crate) generation: u64,
    pub(crate) wrap_nonce: [u8; NONCE_LEN],
    pub(crate) wrapped_key: [u8; WRAPPED_LEN],
}

/// What a new header is made of, apart from the keys.
pub(crate) struct HeaderFields {
    pub(crate) version: u16,
    pub(crate) store_id: [u8; STORE_ID_LEN],
    pub(crate) key_kind: KeyKind,
    pub(crate) kdf: KdfParams,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) generation: u64,
}

impl Header {
    /// A header wrapping `data_key` under `kek`, with a fresh wrap nonce.
    pub(crate) fn seal(
        fields: HeaderFields,
        kek: &StoreKey,
        data_key: &StoreKey,
    ) -> Result<Self, FileError> {
        let mut header = Header {
            version: fields.version,
            store_id: fields.store_id,
            key_kind: fields.key_kind,
            kdf: fields.kdf,
            salt: fields.salt,
            generation: if fields.version == FORMAT_V1 {
                0
            } else {
                fields.generation
            },
            wrap_nonce: random()?,
            wrapped_key: [0; WRAPPED_LEN],
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

    /// Length of the encoded header: where the log starts.
    pub(crate) fn len(&self) -> usize {
        header_len(self.version)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.authenticated_prefix();
        out.extend_from_slice(&self.wrap_nonce);
        out.extend_from_slice(&self.wrapped_key);
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
        if bytes.len() < OFF_STORE_ID {
            return Err(cut_short(path, bytes.len()));
        }
        let version = u16::from_le_bytes([bytes[OFF_VERSION], bytes[OFF_VERSION + 1]]);
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(FileError::UnsupportedFormat {
                path: path.to_owned(),
                version,
            });
        }
        let len = header_len(version);
        if bytes.len() < len {
            return Err(cut_short(path, bytes.len()));
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
        let (generation, off_nonce) = if version == FORMAT_V1 {
            (0, OFF_GENERATION)
        } else {
            let generation = u64::from_le_bytes(array_at(bytes, OFF_GENERATION));
            if generation == 0 {
                return Err(FileError::corrupt(
                    path,
                    OFF_GENERATION as u64,
                    "a format-2 header has generation 0",
                ));
            }
            (generation, OFF_GENERATION + GENERATION_LEN)
        };
        let header = Header {
            version,
            store_id: array_at(bytes, OFF_STORE_ID),
            key_kind,
            kdf,
            salt: array_at(bytes, OFF_SALT),
            generation,
            wrap_nonce: array_at(bytes, off_nonce),
            wrapped_key: array_at(bytes, off_nonce + NONCE_LEN),
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

    /// Header bytes covered by the key wrap's associated data: everything
    /// before the wrap nonce.
    fn authenticated_prefix(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN_V2);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.store_id);
        out.push(match self.key_kind {
            KeyKind::Passphrase => KIND_PASSPHRASE,
            KeyKind::RawKey => KIND_RAW_KEY,
        });
        out.extend_from_slice(&self.kdf.memory_kib().to_le_bytes());
        out.extend_from_slice(&self.kdf.passes().to_le_bytes());
        out.extend_from_slice(&self.kdf.lanes().to_le_bytes());
        out.extend_from_slice(&self.salt);
        if self.version != FORMAT_V1 {
            out.extend_from_slice(&self.generation.to_le_bytes());
        }
        out
    }

    fn wrap_aad(&self) -> Vec<u8> {
        let mut aad = if self.version == FORMAT_V1 {
            WRAP_DOMAIN_V1.to_vec()
        } else {
            WRAP_DOMAIN_V2.to_vec()
        };
        aad.extend_from_slice(&self.authenticated_prefix());
        aad
    }
}

fn header_len(version: u16) -> usize {
    if version == FORMAT_V1 {
        HEADER_LEN_V1
    } else {
        HEADER_LEN_V2
    }
}

fn cut_short(path: &Path, len: usize) -> FileError {
    FileError::corrupt(path, len as u64, "the header is cut short")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(version: u16) -> HeaderFields {
        HeaderFields {
            version,
            store_id: [3; STORE_ID_LEN],
            key_kind: KeyKind::Passphrase,
            kdf: KdfParams::dangerous_insecure_for_tests(),
            salt: [4; SALT_LEN],
            generation: 7,
        }
    }

    #[test]
    fn headers_of_both_versions_round_trip_and_unwrap_only_with_their_key() {
        let kek = StoreKey::from_bytes([1; KEY_LEN]);
        let data = StoreKey::from_bytes([2; KEY_LEN]);
        for (version, len, generation) in [(FORMAT_V1, 127, 0), (FORMAT_V2, 135, 7)] {
            let header = Header::seal(fields(version), &kek, &data).unwrap();
            let bytes = header.encode();
            assert_eq!((bytes.len(), header.len()), (len, len));
            assert_eq!(&bytes[..8], MAGIC);
            let parsed = Header::decode(&bytes, Path::new("x")).unwrap();
            assert!(parsed == header);
            assert_eq!(parsed.generation, generation);
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
    }

    #[test]
    fn a_changed_generation_breaks_the_key_wrap() {
        let kek = StoreKey::from_bytes([1; KEY_LEN]);
        let data = StoreKey::from_bytes([2; KEY_LEN]);
        let mut bytes = Header::seal(fields(FORMAT_V2), &kek, &data)
            .unwrap()
            .encode();
        bytes[OFF_GENERATION] ^= 1;
        let parsed = Header::decode(&bytes, Path::new("x")).unwrap();
        assert!(parsed.unwrap_key(&kek, Path::new("x")).is_err());
    }
}
