//! Raw secret values.
//!
//! Values are [`secrecy`] types: no `Display`, a redacted `Debug`, no
//! `Serialize`, zeroized on drop. The only way to the bytes is
//! [`ExposeSecret::expose_secret`], so every exposure is one grep away.

pub use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};

/// A secret byte string: what providers store and return.
///
/// Values are bytes, not text, because a provider must round-trip binary
/// values (certificates, raw keys) as faithfully as it does API keys.
pub type SecretBytes = SecretSlice<u8>;

/// Copies a secret string into a [`SecretBytes`] without leaving an
/// unwiped temporary behind.
pub fn bytes_from_string(value: &SecretString) -> SecretBytes {
    SecretBytes::from(value.expose_secret().as_bytes().to_vec())
}

/// Turns secret bytes into a [`SecretString`] if they are UTF-8.
///
/// Returns `None` (and wipes nothing it did not copy) when the bytes are not
/// UTF-8; the caller decides whether that is an error.
pub fn string_from_bytes(value: &SecretBytes) -> Option<SecretString> {
    let text = std::str::from_utf8(value.expose_secret()).ok()?;
    Some(SecretString::from(text))
}
