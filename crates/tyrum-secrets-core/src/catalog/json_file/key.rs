//! [`CatalogKey`]: the key that MACs an authenticated catalog file and
//! seals its anchor.

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::anchor::{AnchorError, AnchorKey, AnchorSeal, CHAIN_LEN, MIN_KEY_LEN};
use crate::catalog::CatalogError;
use crate::provider::{Locator, ProviderError, SecretProvider, VersionSelector};
use crate::{ExposeSecret, RandomnessError, SecretBytes};

/// Domain separation: a catalog MAC is never a valid MAC of anything else
/// under the same key (the anchor's tags have a domain of their own).
const MAC_DOMAIN: &[u8] = b"tyrum-secrets catalog v2\n";
/// What the catalog's anchor tags name as their file.
const ANCHOR_SUBJECT: &[u8] = b"tyrum-secrets catalog";

/// The key that authenticates a catalog file opened with
/// [`JsonFileCatalogStore::open_authenticated`](super::JsonFileCatalogStore::open_authenticated):
/// it MACs every write and seals the catalog's rollback anchor. Whoever
/// holds it can write a catalog the store accepts, so keep it where the
/// catalog file's writers cannot read it — in the secret provider (a
/// keychain entry, the encrypted file store), not beside the file.
/// Cloneable; wiped on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct CatalogKey(SecretBytes);

impl CatalogKey {
    /// Wraps key bytes: at least 32, random.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] under 32 bytes.
    pub fn new(key: SecretBytes) -> Result<Self, CatalogError> {
        let len = key.expose_secret().len();
        if len < MIN_KEY_LEN {
            return Err(CatalogError::Invalid {
                message: format!(
                    "a catalog key is {len} bytes; at least {MIN_KEY_LEN} random bytes are required"
                ),
            });
        }
        Ok(Self(key))
    }

    /// A fresh random 32-byte key.
    ///
    /// # Errors
    /// [`RandomnessError`] when the operating system cannot supply
    /// randomness.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut key = vec![0u8; MIN_KEY_LEN];
        getrandom::fill(&mut key).map_err(|_| RandomnessError)?;
        Ok(Self(SecretBytes::from(key)))
    }

    /// The key kept as the value at `locator` in `provider` (the profile's
    /// secret provider: a keychain entry, the encrypted file store, an
    /// OpenBao path). When nothing is stored there and `create` is true, a
    /// fresh random key is written there first and returned.
    ///
    /// Pass `create` only when the catalog is being created too (a new
    /// state directory), and call this under the caller's open lock: a key
    /// made again for an existing catalog does not authenticate it
    /// ([`CatalogError::Tampered`] on open), which fails closed but leaves
    /// the catalog unreadable until the old key is restored.
    ///
    /// # Errors
    /// [`CatalogError::Provider`] when the provider fails, or with
    /// [`ProviderError::NotFound`] inside when the key is missing and
    /// `create` is false (restore it from a backup of the provider);
    /// [`CatalogError::Invalid`] when the stored key is under 32 bytes;
    /// [`CatalogError::Randomness`] when no key can be generated.
    pub fn in_provider(
        provider: &dyn SecretProvider,
        locator: &Locator,
        create: bool,
    ) -> Result<Self, CatalogError> {
        match provider.read(locator, VersionSelector::Latest) {
            Ok(read) => Self::new(read.value),
            Err(ProviderError::NotFound { .. }) if create => {
                let key = Self::generate()?;
                provider.write(locator, &key.0)?;
                Ok(key)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The seal of the catalog's anchor: the same key, domain-separated by
    /// the anchor's own MAC domain.
    pub(super) fn anchor_seal(&self) -> Result<AnchorSeal, AnchorError> {
        Ok(AnchorSeal::new(
            AnchorKey::new(self.0.clone())?,
            ANCHOR_SUBJECT.to_vec(),
        ))
    }

    #[allow(
        clippy::expect_used,
        reason = "HMAC accepts keys of any length; new_from_slice cannot fail"
    )]
    pub(super) fn mac(
        &self,
        generation: u64,
        count: u64,
        prev: &[u8; CHAIN_LEN],
        entries: &[u8],
    ) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(self.0.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(MAC_DOMAIN);
        mac.update(&generation.to_le_bytes());
        mac.update(&count.to_le_bytes());
        mac.update(prev);
        mac.update(&(entries.len() as u64).to_le_bytes());
        mac.update(entries);
        mac
    }
}

impl fmt::Debug for CatalogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CatalogKey([REDACTED])")
    }
}
