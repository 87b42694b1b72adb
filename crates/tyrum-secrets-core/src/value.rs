//! Raw secret values.
//!
//! Values are [`secrecy`] types: no `Display`, a redacted `Debug`, no
//! `Serialize`, zeroized on drop. The only way to the bytes is
//! [`ExposeSecret::expose_secret`], so every exposure is one grep away.

pub use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use zeroize::Zeroizing;

use crate::RandomnessError;

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

/// The characters [`random_string`] draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alphabet {
    /// `A-Z a-z 0-9`: 62 characters, 5.95 bits each.
    Alphanumeric,
    /// The URL-safe base64 characters `A-Z a-z 0-9 - _`: 64 characters,
    /// 6 bits each.
    UrlSafe,
    /// Lower-case hex `0-9 a-f`: 16 characters, 4 bits each.
    Hex,
    /// Every visible ASCII character, `!` to `~`: 94 characters, 6.55 bits
    /// each (passwords that must hold symbols).
    Printable,
}

impl Alphabet {
    fn characters(self) -> &'static [u8] {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const PRINTABLE: &[u8] = b"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
        match self {
            Alphabet::Alphanumeric => ALNUM,
            Alphabet::UrlSafe => URL_SAFE,
            Alphabet::Hex => b"0123456789abcdef",
            Alphabet::Printable => PRINTABLE,
        }
    }
}

/// `len` random bytes from the operating system's CSPRNG, as a new secret
/// value (a raw key, a webhook signing secret).
///
/// ```
/// use tyrum_secrets_core::{ExposeSecret, random_bytes};
/// let key = random_bytes(32)?;
/// assert_eq!(key.expose_secret().len(), 32);
/// # Ok::<(), tyrum_secrets_core::RandomnessError>(())
/// ```
///
/// # Errors
/// [`RandomnessError`] when the operating system cannot supply randomness.
pub fn random_bytes(len: usize) -> Result<SecretBytes, RandomnessError> {
    // `vec!` allocates exactly `len`, so the conversion into a boxed slice
    // moves the buffer instead of copying it.
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut bytes).map_err(|_| RandomnessError)?;
    Ok(SecretBytes::from(std::mem::take(&mut *bytes)))
}

/// A random string of `len` characters drawn uniformly from `alphabet`
/// (rejection sampling, so no character is likelier than another), as a
/// new secret value (a password, an API token).
///
/// ```
/// use tyrum_secrets_core::{Alphabet, ExposeSecret, random_string};
/// let token = random_string(40, Alphabet::UrlSafe)?;
/// assert_eq!(token.expose_secret().len(), 40);
/// assert!(token.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
/// # Ok::<(), tyrum_secrets_core::RandomnessError>(())
/// ```
///
/// # Errors
/// [`RandomnessError`] when the operating system cannot supply randomness.
pub fn random_string(len: usize, alphabet: Alphabet) -> Result<SecretString, RandomnessError> {
    let characters = alphabet.characters();
    // Alphabets have at most 94 characters, so `n` fits a byte and the
    // accepted range `0..limit` is a whole number of copies of the alphabet.
    let n = characters.len();
    let limit = 256 - 256 % n;
    // Exactly `len` ASCII bytes are pushed: the string never reallocates, so
    // no unwiped copy is left behind, and the boxed conversion moves it.
    let mut text = Zeroizing::new(String::with_capacity(len));
    let mut pool = Zeroizing::new([0u8; 64]);
    while text.len() < len {
        getrandom::fill(&mut *pool).map_err(|_| RandomnessError)?;
        for &byte in pool.iter() {
            if text.len() == len {
                break;
            }
            if usize::from(byte) < limit {
                text.push(char::from(characters[usize::from(byte) % n]));
            }
        }
    }
    Ok(SecretString::from(std::mem::take(&mut *text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_have_the_length_asked_and_differ() {
        let a = random_bytes(32).unwrap();
        let b = random_bytes(32).unwrap();
        assert_eq!(a.expose_secret().len(), 32);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(random_bytes(0).unwrap().expose_secret().is_empty());
    }

    #[test]
    fn random_strings_use_only_their_alphabet_and_all_of_it() {
        for alphabet in [
            Alphabet::Alphanumeric,
            Alphabet::UrlSafe,
            Alphabet::Hex,
            Alphabet::Printable,
        ] {
            let allowed = alphabet.characters();
            let text = random_string(4096, alphabet).unwrap();
            let text = text.expose_secret();
            assert_eq!(text.len(), 4096);
            assert!(text.bytes().all(|b| allowed.contains(&b)), "{alphabet:?}");
            // 4096 draws from at most 94 characters: missing one has a
            // probability below 94 * (93/94)^4096, about 1e-17.
            assert!(
                allowed.iter().all(|c| text.as_bytes().contains(c)),
                "{alphabet:?} never drew some character"
            );
        }
        assert_eq!(Alphabet::Alphanumeric.characters().len(), 62);
        assert_eq!(Alphabet::UrlSafe.characters().len(), 64);
        assert_eq!(Alphabet::Printable.characters().len(), 94);
        assert!(
            random_string(0, Alphabet::Hex)
                .unwrap()
                .expose_secret()
                .is_empty()
        );
    }
}
