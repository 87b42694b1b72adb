//! Keyed fingerprints of resolved values, so an investigator holding a
//! candidate value (and the key) can check whether it was handed out,
//! without the log holding anything that reveals the value.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{AuditRecord, hex, unhex};
use crate::{ExposeSecret, SecretBytes};

type HmacSha256 = Hmac<Sha256>;

/// Shortest key accepted, in bytes.
const MIN_KEY_LEN: usize = 32;
/// Domain separation: a fingerprint is never a valid chain MAC and vice versa.
const FINGERPRINT_DOMAIN: &[u8] = b"tyrum-secrets audit fingerprint v1\n";

/// A keyed HMAC-SHA256 of a value, as lower-case hex. Safe to store: without
/// the [`FingerprintKey`] it reveals nothing about the value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key for value fingerprints. Keep it apart from the
/// [`AuditChainKey`](super::AuditChainKey): whoever holds it can test
/// guesses of a value against the log.
pub struct FingerprintKey(SecretBytes);

impl FingerprintKey {
    /// Wraps key bytes.
    ///
    /// # Errors
    /// [`KeyError::TooShort`] under 32 bytes.
    pub fn new(key: SecretBytes) -> Result<Self, KeyError> {
        check_len(&key)?;
        Ok(Self(key))
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`KeyError::Randomness`] when the OS cannot supply randomness.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self(random_key()?))
    }

    /// The fingerprint of `value`.
    pub fn fingerprint(&self, value: &SecretBytes) -> Fingerprint {
        Fingerprint(hex(&self.mac(value).finalize().into_bytes()))
    }

    /// Whether `record` carries the fingerprint of `candidate`, compared in
    /// constant time. `false` when the record has no fingerprint.
    pub fn matches(&self, record: &AuditRecord, candidate: &SecretBytes) -> bool {
        let Some(tag) = record.fingerprint.as_ref().and_then(|f| unhex(f.as_str())) else {
            return false;
        };
        self.mac(candidate).verify_slice(&tag).is_ok()
    }

    fn mac(&self, value: &SecretBytes) -> HmacSha256 {
        let mut mac = new_mac(&self.0);
        mac.update(FINGERPRINT_DOMAIN);
        mac.update(value.expose_secret());
        mac
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey([REDACTED])")
    }
}

/// An HMAC keyed with `key`.
#[allow(
    clippy::expect_used,
    reason = "HMAC accepts keys of any length; new_from_slice cannot fail"
)]
pub(super) fn new_mac(key: &SecretBytes) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key.expose_secret())
        .expect("HMAC accepts keys of any length")
}

pub(super) fn check_len(key: &SecretBytes) -> Result<(), KeyError> {
    let len = key.expose_secret().len();
    if len < MIN_KEY_LEN {
        return Err(KeyError::TooShort { len });
    }
    Ok(())
}

pub(super) fn random_key() -> Result<SecretBytes, KeyError> {
    let mut key = vec![0u8; MIN_KEY_LEN];
    getrandom::fill(&mut key).map_err(|_| KeyError::Randomness)?;
    Ok(SecretBytes::from(key))
}

/// An audit key is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is too short.
    #[error("the audit key is {len} bytes; at least 32 random bytes are required")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The OS random number generator failed.
    #[error("the operating system random number generator failed; no key was generated")]
    Randomness,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Requester;
    use crate::{HandleId, Timestamp};

    #[test]
    fn fingerprint_matches_only_the_value_and_key_it_was_made_with() {
        let key = FingerprintKey::generate().unwrap();
        let other_key = FingerprintKey::generate().unwrap();
        let value = SecretBytes::from(b"sk-live-CANARY-1234".to_vec());
        let mut record = AuditRecord::new(
            Timestamp::now(),
            "r".into(),
            HandleId::generate().unwrap(),
            Requester::new("a").unwrap(),
            "p".into(),
        );
        assert!(!key.matches(&record, &value), "no fingerprint, no match");
        record.fingerprint = Some(key.fingerprint(&value));
        assert!(key.matches(&record, &value));
        assert!(!key.matches(&record, &SecretBytes::from(b"sk-live-CANARY-1235".to_vec())));
        assert!(!other_key.matches(&record, &value));
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("CANARY"));
        assert!(!format!("{key:?}").contains("CANARY"));
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            FingerprintKey::new(SecretBytes::from(vec![1u8; 16])).unwrap_err(),
            KeyError::TooShort { len: 16 }
        );
    }
}
