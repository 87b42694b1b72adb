//! The encrypted file provider's 32-byte data key, kept in the keychain
//! instead of being derived from a passphrase.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use keyring_core::{CredentialStore, Error as StoreError};
use secrecy::{ExposeSecretMut, SecretBox};
use tyrum_secrets_core::{Locator, Persistence};
use zeroize::Zeroizing;

use crate::error::KeychainError;
use crate::provider::{
    DEFAULT_TIMEOUT, bounded, lock_until, map_store_persistence, namespace_lock,
};

/// Keychain service under which file-store keys are kept (the user is the
/// key's name).
pub const FILE_KEY_SERVICE: &str = "tyrum-secrets#file-key";

/// Length of a file-store data key.
pub const FILE_KEY_LEN: usize = 32;

/// A file-store data key kept in an OS keychain: created at random on first
/// use, the same key every time after.
///
/// The key is stored as 64 hex digits, so text-only keychains (KDE Wallet)
/// keep it too. Stores that lose values at reboot or exit (the kernel
/// keyring, the mock store) are refused unless
/// [`dangerous_allow_non_durable`](Self::dangerous_allow_non_durable) was
/// called: losing the key loses every record encrypted under it.
///
/// Two processes creating the same key at the same moment race: each
/// writes its own random key and the last write wins, so create the key
/// once (at setup, from one process) before starting concurrent users.
/// Within a process, creation is serialised.
pub struct FileStoreKeySource {
    store: Arc<CredentialStore>,
    name: Locator,
    timeout: Duration,
    allow_non_durable: bool,
}

/// Loads the file-store key `name` from `store`, creating a random one on
/// first use. See [`FileStoreKeySource`].
///
/// # Errors
/// As [`FileStoreKeySource::load_or_create`], and [`KeychainError::Config`]
/// for a name that is not a valid locator.
pub fn load_or_create_file_store_key(
    store: &Arc<CredentialStore>,
    name: &str,
) -> Result<SecretBox<[u8; FILE_KEY_LEN]>, KeychainError> {
    FileStoreKeySource::new(Arc::clone(store), name)?.load_or_create()
}

impl FileStoreKeySource {
    /// The key `name` (1 to 512 bytes, no control characters) in `store`.
    ///
    /// # Errors
    /// [`KeychainError::Config`] for a bad name.
    pub fn new(store: Arc<CredentialStore>, name: &str) -> Result<Self, KeychainError> {
        let name = Locator::new(name).map_err(|e| KeychainError::Config {
            message: format!("file-store key name: {e}"),
        })?;
        Ok(Self {
            store,
            name,
            timeout: DEFAULT_TIMEOUT,
            allow_non_durable: false,
        })
    }

    /// The bound on each keychain call. Default 10 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Accepts a store that loses values at reboot or exit. Only for tests
    /// and throwaway stores: the file store becomes unreadable when the key
    /// is gone.
    pub fn dangerous_allow_non_durable(mut self) -> Self {
        self.allow_non_durable = true;
        self
    }

    /// The stored key, or a new random key stored now.
    ///
    /// # Errors
    /// [`KeychainError::NotDurable`] for a store that loses values,
    /// [`KeychainError::Corrupt`] when the item holds something other than
    /// a key written here, or the store's own failures
    /// ([`KeychainError::AccessDenied`], [`KeychainError::Unavailable`],
    /// [`KeychainError::TimedOut`], ...).
    pub fn load_or_create(&self) -> Result<SecretBox<[u8; FILE_KEY_LEN]>, KeychainError> {
        self.run(true)?.ok_or_else(|| KeychainError::Corrupt {
            message: format!(
                "file-store key {:?} vanished right after it was created",
                self.name
            ),
        })
    }

    /// The stored key; never creates one.
    ///
    /// # Errors
    /// [`KeychainError::NotFound`] when no key of that name exists, or as
    /// [`load_or_create`](Self::load_or_create).
    pub fn load(&self) -> Result<SecretBox<[u8; FILE_KEY_LEN]>, KeychainError> {
        self.run(false)?.ok_or_else(|| KeychainError::NotFound {
            locator: self.name.clone(),
        })
    }

    fn run(&self, create: bool) -> Result<Option<SecretBox<[u8; FILE_KEY_LEN]>>, KeychainError> {
        let persistence = map_store_persistence(self.store.persistence());
        if persistence != Persistence::Durable && !self.allow_non_durable {
            return Err(KeychainError::NotDurable { persistence });
        }
        let store = Arc::clone(&self.store);
        let name = self.name.clone();
        let lock = namespace_lock(&store.vendor(), FILE_KEY_SERVICE);
        let action = format!("loading file-store key {name:?}");
        let deadline = Instant::now().checked_add(self.timeout);
        let timeout = self.timeout;
        let worker_action = action.clone();
        bounded(&action, self.timeout, move || {
            let Some(_guard) = lock_until(&lock, deadline, &AtomicBool::new(false)) else {
                return Err(KeychainError::TimedOut {
                    action: worker_action,
                    timeout,
                });
            };
            let key = read_key(&*store, &name)?;
            if key.is_some() || !create {
                return Ok(key);
            }
            write_new_key(&*store, &name)?;
            read_key(&*store, &name)
        })
    }
}

impl std::fmt::Debug for FileStoreKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStoreKeySource")
            .field("store", &self.store.vendor())
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("allow_non_durable", &self.allow_non_durable)
            .finish()
    }
}

fn read_key(
    store: &CredentialStore,
    name: &Locator,
) -> Result<Option<SecretBox<[u8; FILE_KEY_LEN]>>, KeychainError> {
    let action = format!("reading file-store key {name:?}");
    let entry = store
        .build(FILE_KEY_SERVICE, name.as_str(), None)
        .map_err(|e| KeychainError::from_store(e, &action))?;
    let text = match entry.get_secret() {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(StoreError::NoEntry) => return Ok(None),
        Err(e) => return Err(KeychainError::from_store(e, &action)),
    };
    let mut key = SecretBox::new(Box::new([0u8; FILE_KEY_LEN]));
    if !decode_hex(&text, key.expose_secret_mut()) {
        return Err(KeychainError::Corrupt {
            message: format!(
                "the keychain item {FILE_KEY_SERVICE}/{name} is not a file-store key written \
                 by tyrum-secrets ({} bytes, expected {} hex digits); remove it or pick \
                 another name",
                text.len(),
                FILE_KEY_LEN * 2
            ),
        });
    }
    Ok(Some(key))
}

fn write_new_key(store: &CredentialStore, name: &Locator) -> Result<(), KeychainError> {
    let action = format!("creating file-store key {name:?}");
    let mut key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    getrandom::fill(key.as_mut_slice()).map_err(|e| KeychainError::Store {
        action: action.clone(),
        message: format!("the OS random number generator failed: {e}"),
        source: None,
    })?;
    let text = encode_hex(key.as_slice());
    store
        .build(FILE_KEY_SERVICE, name.as_str(), None)
        .and_then(|entry| entry.set_secret(&text))
        .map_err(|e| KeychainError::from_store(e, &action))
}

fn encode_hex(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len() * 2));
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    out
}

/// Decodes exactly `out.len() * 2` hex digits into `out`.
fn decode_hex(text: &[u8], out: &mut [u8]) -> bool {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if text.len() != out.len() * 2 {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => *byte = (hi << 4) | lo,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte_and_rejects_bad_text() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let text = encode_hex(&bytes);
        let mut back = vec![0u8; 256];
        assert!(decode_hex(&text, &mut back));
        assert_eq!(back, bytes);
        let mut out = [0u8; 2];
        assert!(!decode_hex(b"abc", &mut out));
        assert!(!decode_hex(b"zz00", &mut out));
        assert!(decode_hex(b"AbCd", &mut out));
        assert_eq!(out, [0xab, 0xcd]);
    }
}
