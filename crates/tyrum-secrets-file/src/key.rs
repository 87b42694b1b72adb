//! Where the key-encryption key comes from: a passphrase through Argon2id,
//! a raw 32-byte key file, or a 32-byte key the caller got elsewhere (the OS
//! keychain, a KMS).

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use tyrum_secrets_core::durable::{
    ReadFileError, open_private, read_regular_file, sync_parent_dir,
};
use tyrum_secrets_core::{ExposeSecret, SecretBox, SecretString};
use zeroize::{Zeroize, Zeroizing};

use crate::error::FileError;
pub use crate::error::KeyKind;

/// Length of every key in this crate, in bytes.
pub const KEY_LEN: usize = 32;

/// A 32-byte symmetric key. Wiped on drop; `Debug` never shows it.
///
/// This is how another crate (the keychain provider, a KMS client) plugs a
/// key into [`KeySource::Key`].
pub struct StoreKey(Zeroizing<[u8; KEY_LEN]>);

impl StoreKey {
    /// Wraps 32 key bytes. The caller should wipe its own copy.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key from the OS generator.
    ///
    /// # Errors
    /// [`FileError::Random`] when the OS generator fails.
    pub fn generate() -> Result<Self, FileError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| FileError::Random)?;
        Ok(Self(key))
    }

    /// Reads a key file: exactly 32 raw bytes.
    ///
    /// # Errors
    /// [`FileError::KeyFile`] when the file is not exactly 32 bytes,
    /// [`FileError::Io`] when it cannot be read.
    pub fn read_key_file(path: &Path) -> Result<Self, FileError> {
        let mut file = std::fs::File::open(path)
            .map_err(|source| FileError::io("opening the key file", path, source))?;
        let mut buf = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
        // Read one byte more than a key so an oversized file is noticed
        // without reading all of it.
        (&mut file)
            .take(KEY_LEN as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|source| FileError::io("reading the key file", path, source))?;
        let bytes: [u8; KEY_LEN] =
            buf.as_slice()
                .try_into()
                .map_err(|_| FileError::KeyFile {
                    path: path.to_owned(),
                    reason: "a key file must hold exactly 32 raw bytes; make one with StoreKey::write_new_key_file",
                })?;
        Ok(Self::from_bytes(bytes))
    }

    /// Writes a fresh random key to a new file with mode 0600 and returns it.
    /// Refuses to overwrite an existing file.
    ///
    /// # Errors
    /// [`FileError::Io`] when the file exists or cannot be written,
    /// [`FileError::Random`] when the OS generator fails.
    pub fn write_new_key_file(path: &Path) -> Result<Self, FileError> {
        use std::io::Write as _;
        let key = Self::generate()?;
        let mut file = open_private(path, true)
            .map_err(|source| FileError::io("creating the key file", path, source))?;
        file.write_all(key.expose())
            .and_then(|()| file.sync_all())
            .map_err(|source| FileError::io("writing the key file", path, source))?;
        sync_parent_dir(path)
            .map_err(|source| FileError::io("syncing the key file's directory", path, source))?;
        Ok(key)
    }

    /// The key bytes. Crate-internal: the only exposure of a key.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Copies a key held in a `SecretBox` (as the keychain provider's file-key
/// helper returns it) without leaving an unwiped copy behind.
impl From<&SecretBox<[u8; KEY_LEN]>> for StoreKey {
    fn from(key: &SecretBox<[u8; KEY_LEN]>) -> Self {
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(key.expose_secret());
        Self(out)
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey([REDACTED])")
    }
}

/// Largest passphrase file read, in bytes.
pub const MAX_PASSPHRASE_FILE_LEN: u64 = 64 * 1024;

/// Where the key that unlocks a store comes from.
///
/// A passphrase (given, or read from a passphrase file) goes through
/// Argon2id with the parameters recorded in the store's header; a key file
/// or a [`StoreKey`] is used as the key-encryption key directly. A store
/// remembers which of the two kinds protects it, and refuses the other kind
/// with [`FileError::KeyKindMismatch`].
#[non_exhaustive]
pub enum KeySource {
    /// A passphrase, stretched with Argon2id.
    Passphrase(SecretString),
    /// A file holding a passphrase (a mounted secret, a file only the
    /// service user can read), read each time a key is derived: see
    /// [`KeySource::passphrase_file`].
    PassphraseFile(PathBuf),
    /// A file holding exactly 32 raw key bytes (mode 0600 recommended).
    KeyFile(PathBuf),
    /// A 32-byte key the caller obtained elsewhere (OS keychain, KMS).
    Key(StoreKey),
}

impl KeySource {
    /// A passphrase source.
    pub fn passphrase(passphrase: impl Into<SecretString>) -> Self {
        KeySource::Passphrase(passphrase.into())
    }

    /// A passphrase read from the file at `path`: its bytes as UTF-8, one
    /// trailing newline (`\n` or `\r\n`) removed, as `echo pw > file`
    /// leaves it. Only a regular file of at most
    /// [`MAX_PASSPHRASE_FILE_LEN`] bytes is read (a FIFO or device is
    /// refused), and its contents never appear in an error or in `Debug`.
    pub fn passphrase_file(path: impl Into<PathBuf>) -> Self {
        KeySource::PassphraseFile(path.into())
    }

    /// The kind of key this source yields.
    pub fn kind(&self) -> KeyKind {
        match self {
            KeySource::Passphrase(_) | KeySource::PassphraseFile(_) => KeyKind::Passphrase,
            KeySource::KeyFile(_) | KeySource::Key(_) => KeyKind::RawKey,
        }
    }

    /// Produces the key-encryption key. `salt` and `params` come from the
    /// header (for an existing store) or were just chosen (for a new one).
    pub(crate) fn derive_kek(
        &self,
        params: KdfParams,
        salt: &[u8; SALT_LEN],
    ) -> Result<StoreKey, FileError> {
        match self {
            KeySource::Passphrase(passphrase) => {
                argon2id(passphrase.expose_secret().as_bytes(), params, salt)
            }
            KeySource::PassphraseFile(path) => argon2id(&read_passphrase_file(path)?, params, salt),
            KeySource::KeyFile(path) => StoreKey::read_key_file(path),
            KeySource::Key(key) => Ok(StoreKey::from_bytes(*key.expose())),
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Passphrase(_) => f.write_str("KeySource::Passphrase([REDACTED])"),
            KeySource::KeyFile(path) => f.debug_tuple("KeySource::KeyFile").field(path).finish(),
            KeySource::PassphraseFile(path) => f
                .debug_tuple("KeySource::PassphraseFile")
                .field(path)
                .finish(),
            KeySource::Key(_) => f.write_str("KeySource::Key([REDACTED])"),
        }
    }
}

/// Reads a passphrase file (see [`KeySource::passphrase_file`]). The bytes
/// are wiped when dropped; errors never carry them.
fn read_passphrase_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let refuse = |reason| FileError::PassphraseFile {
        path: path.to_owned(),
        reason,
    };
    let read = read_regular_file(path, MAX_PASSPHRASE_FILE_LEN).map_err(|e| match e {
        ReadFileError::NotARegularFile { .. } => {
            refuse("it is not a regular file (a FIFO or device?); point it at a file")
        }
        ReadFileError::TooLarge { .. } => {
            refuse("it is larger than 64 KiB; a passphrase file holds one passphrase")
        }
        ReadFileError::Io { source, .. } => {
            FileError::io("reading the passphrase file", path, source)
        }
        _ => refuse("it cannot be read"),
    });
    let mut bytes = Zeroizing::new(read?);
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(refuse("it holds no passphrase"));
    }
    if std::str::from_utf8(&bytes).is_err() {
        return Err(refuse("its passphrase is not UTF-8 text"));
    }
    Ok(bytes)
}

/// Length of the Argon2id salt, in bytes.
pub(crate) const SALT_LEN: usize = 16;

/// Argon2id work factors: memory in KiB, passes, lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KdfParams {
    memory_kib: u32,
    passes: u32,
    lanes: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 4 lanes. The
    /// default for new stores.
    pub const RFC9106_SECOND: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        passes: 3,
        lanes: 4,
    };

    /// Custom work factors.
    ///
    /// # Errors
    /// [`FileError::InvalidKdfParams`] when Argon2 would reject them (fewer
    /// than 8 KiB per lane, zero passes or lanes, more than 2^24 − 1 lanes).
    pub fn new(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, FileError> {
        let params = Self {
            memory_kib,
            passes,
            lanes,
        };
        params.argon2_params()?;
        Ok(params)
    }

    /// Work factors so cheap that a passphrase offers almost no protection
    /// against guessing: 8 KiB, 1 pass, 1 lane. Only for tests, examples
    /// and benchmarks whose passphrase is generated for the run; never use
    /// it for a store that holds real secrets.
    pub const fn dangerous_insecure_for_tests() -> Self {
        Self {
            memory_kib: 8,
            passes: 1,
            lanes: 1,
        }
    }

    /// Memory, in KiB.
    pub const fn memory_kib(self) -> u32 {
        self.memory_kib
    }

    /// Passes over memory.
    pub const fn passes(self) -> u32 {
        self.passes
    }

    /// Lanes (degree of parallelism).
    pub const fn lanes(self) -> u32 {
        self.lanes
    }

    /// Raw values read from a header; checked later against limits.
    pub(crate) const fn from_header(memory_kib: u32, passes: u32, lanes: u32) -> Self {
        Self {
            memory_kib,
            passes,
            lanes,
        }
    }

    fn argon2_params(self) -> Result<argon2::Params, FileError> {
        argon2::Params::new(self.memory_kib, self.passes, self.lanes, Some(KEY_LEN)).map_err(|_| {
            FileError::InvalidKdfParams {
                memory_kib: self.memory_kib,
                passes: self.passes,
                lanes: self.lanes,
            }
        })
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::RFC9106_SECOND
    }
}

/// The most work a store's header may ask for before opening it is refused.
///
/// Opening a store runs Argon2id with the parameters written in its header.
/// A hostile or corrupted header could ask for terabytes of memory or years
/// of passes; these caps are checked before anything is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KdfLimits {
    /// Largest memory, in KiB.
    pub max_memory_kib: u32,
    /// Most passes.
    pub max_passes: u32,
    /// Most lanes.
    pub max_lanes: u32,
}

impl KdfLimits {
    /// 1 GiB of memory, 16 passes, 16 lanes.
    pub const DEFAULT: KdfLimits = KdfLimits {
        max_memory_kib: 1024 * 1024,
        max_passes: 16,
        max_lanes: 16,
    };

    /// Custom caps.
    pub const fn new(max_memory_kib: u32, max_passes: u32, max_lanes: u32) -> Self {
        Self {
            max_memory_kib,
            max_passes,
            max_lanes,
        }
    }

    /// Refuses `params` when any factor is above its cap.
    pub(crate) fn check(&self, params: KdfParams) -> Result<(), FileError> {
        let checks = [
            ("memory_kib", params.memory_kib, self.max_memory_kib),
            ("passes", params.passes, self.max_passes),
            ("lanes", params.lanes, self.max_lanes),
        ];
        for (name, value, max) in checks {
            if value > max {
                return Err(FileError::KdfLimitExceeded { name, value, max });
            }
        }
        Ok(())
    }
}

impl Default for KdfLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

fn argon2id(
    passphrase: &[u8],
    params: KdfParams,
    salt: &[u8; SALT_LEN],
) -> Result<StoreKey, FileError> {
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.argon2_params()?,
    );
    let mut out = [0u8; KEY_LEN];
    let result = argon.hash_password_into(passphrase, salt, &mut out);
    let key = StoreKey::from_bytes(out);
    out.zeroize();
    result.map_err(|_| FileError::InvalidKdfParams {
        memory_kib: params.memory_kib,
        passes: params.passes,
        lanes: params.lanes,
    })?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_each_factor_above_its_cap() {
        let limits = KdfLimits::new(1024, 4, 2);
        assert!(limits.check(KdfParams::from_header(1024, 4, 2)).is_ok());
        for params in [
            KdfParams::from_header(1025, 1, 1),
            KdfParams::from_header(8, 5, 1),
            KdfParams::from_header(16, 1, 3),
        ] {
            assert!(matches!(
                limits.check(params),
                Err(FileError::KdfLimitExceeded { .. })
            ));
        }
    }

    #[test]
    fn argon2id_depends_on_passphrase_salt_and_params() {
        let cheap = KdfParams::dangerous_insecure_for_tests();
        let salt = [7u8; SALT_LEN];
        let a = argon2id(b"one", cheap, &salt).unwrap();
        let b = argon2id(b"two", cheap, &salt).unwrap();
        let c = argon2id(b"one", cheap, &[8u8; SALT_LEN]).unwrap();
        let d = argon2id(b"one", KdfParams::new(16, 1, 1).unwrap(), &salt).unwrap();
        let again = argon2id(b"one", cheap, &salt).unwrap();
        assert_eq!(a.expose(), again.expose());
        for other in [&b, &c, &d] {
            assert_ne!(a.expose(), other.expose());
        }
    }

    #[test]
    fn debug_of_keys_and_sources_shows_no_key_material() {
        let key = StoreKey::from_bytes([0x41; KEY_LEN]);
        let source = KeySource::passphrase("CANARY-passphrase-debug");
        let key_debug = format!("{key:?}");
        let text = format!("{key_debug} {source:?} {:?}", KeySource::Key(key));
        assert!(!text.contains("AAAA") && !text.contains("CANARY"));
    }

    #[test]
    fn store_key_from_a_secret_box_keeps_the_bytes() {
        let boxed = SecretBox::new(Box::new([0x5c; KEY_LEN]));
        assert_eq!(StoreKey::from(&boxed).expose(), &[0x5c; KEY_LEN]);
    }

    #[test]
    fn a_passphrase_file_derives_the_key_its_passphrase_does() {
        let dir = tempfile::tempdir().unwrap();
        let cheap = KdfParams::dangerous_insecure_for_tests();
        let salt = [3u8; SALT_LEN];
        let direct = KeySource::passphrase("correct horse")
            .derive_kek(cheap, &salt)
            .unwrap();
        for (name, contents) in [
            ("plain", &b"correct horse"[..]),
            ("newline", b"correct horse\n"),
            ("crlf", b"correct horse\r\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let source = KeySource::passphrase_file(&path);
            assert_eq!(source.kind(), KeyKind::Passphrase);
            let key = source.derive_kek(cheap, &salt).unwrap();
            assert_eq!(key.expose(), direct.expose(), "{name}");
        }
        // Only one newline goes: a second one is part of the passphrase.
        let path = dir.path().join("two");
        std::fs::write(&path, b"correct horse\n\n").unwrap();
        let key = KeySource::passphrase_file(&path)
            .derive_kek(cheap, &salt)
            .unwrap();
        assert_ne!(key.expose(), direct.expose());
    }

    #[test]
    fn bad_passphrase_files_are_refused_without_echoing_them() {
        let dir = tempfile::tempdir().unwrap();
        let cheap = KdfParams::dangerous_insecure_for_tests();
        let salt = [3u8; SALT_LEN];
        let mut cases = vec![
            ("empty", b"".to_vec()),
            ("newline only", b"\n".to_vec()),
            ("not utf-8", b"CANARY-\xff\xfe".to_vec()),
            ("huge", vec![b'C'; (MAX_PASSPHRASE_FILE_LEN + 1) as usize]),
        ];
        cases[3].1[..6].copy_from_slice(b"CANARY");
        for (name, contents) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &contents).unwrap();
            let source = KeySource::passphrase_file(&path);
            let err = source.derive_kek(cheap, &salt).unwrap_err();
            assert!(
                matches!(err, FileError::PassphraseFile { .. }),
                "{name}: {err}"
            );
            let text = format!("{err} {err:?} {source:?}");
            assert!(!text.contains("CANARY"), "{name}: {text}");
        }
        assert!(matches!(
            KeySource::passphrase_file(dir.path().join("missing")).derive_kek(cheap, &salt),
            Err(FileError::Io { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn special_passphrase_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let cheap = KdfParams::dangerous_insecure_for_tests();
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let err = KeySource::passphrase_file(path)
                .derive_kek(cheap, &[0; SALT_LEN])
                .unwrap_err();
            assert!(
                matches!(err, FileError::PassphraseFile { .. }),
                "{}: {err}",
                path.display()
            );
        }
    }

    #[test]
    fn key_file_must_hold_exactly_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 31, 33, 64] {
            let path = dir.path().join(format!("k{len}"));
            std::fs::write(&path, vec![1u8; len]).unwrap();
            assert!(matches!(
                StoreKey::read_key_file(&path),
                Err(FileError::KeyFile { .. })
            ));
        }
        let path = dir.path().join("new.key");
        let key = StoreKey::write_new_key_file(&path).unwrap();
        assert_eq!(
            StoreKey::read_key_file(&path).unwrap().expose(),
            key.expose()
        );
        assert!(
            StoreKey::write_new_key_file(&path).is_err(),
            "overwrote a key file"
        );
    }
}
