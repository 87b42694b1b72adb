//! The one HPKE suite envelopes use: RFC 9180 base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305 (suite ids
//! 0x0020, 0x0001, 0x0003), and the randomness it draws.
//!
//! Everything here works on bytes; the envelope layout is in
//! [`envelope`](crate::envelope).

use std::convert::Infallible;

use hpke::aead::{AeadTag, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable as _, Kem as _, OpModeR, OpModeS, Serializable as _};
use tyrum_secrets_core::SecretBytes;
use zeroize::Zeroizing;

pub(crate) type Kem = X25519HkdfSha256;
pub(crate) type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
pub(crate) type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;
type Aead = ChaCha20Poly1305;
type Kdf = HkdfSha256;

/// The HPKE `info` string of format version 1.
pub(crate) const INFO: &[u8] = b"tyrum-secrets-seal v1";
/// Bytes in an X25519 key (public, private, encapsulated).
pub(crate) const KEY_LEN: usize = 32;
/// Bytes in a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// HPKE failed. Opaque on purpose: a wrong key and tampering look alike.
#[derive(Debug)]
pub(crate) struct CryptoFailure;

/// A fresh key pair from `rng`.
pub(crate) fn generate_key_pair(rng: &mut impl Random) -> (PrivateKey, PublicKey) {
    Kem::gen_keypair_with_rng(rng)
}

/// The private key from its 32 stored bytes.
pub(crate) fn private_key(bytes: &[u8]) -> Result<PrivateKey, CryptoFailure> {
    PrivateKey::from_bytes(bytes).map_err(|_| CryptoFailure)
}

/// The 32 bytes of `key`, in a buffer wiped on drop.
pub(crate) fn private_key_bytes(key: &PrivateKey) -> Zeroizing<[u8; KEY_LEN]> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    key.write_exact(bytes.as_mut_slice());
    bytes
}

pub(crate) fn public_key_of(key: &PrivateKey) -> [u8; KEY_LEN] {
    let mut bytes = [0u8; KEY_LEN];
    Kem::sk_to_pk(key).write_exact(&mut bytes);
    bytes
}

/// Seals `plaintext` to `recipient` with `aad`; returns the encapsulated
/// key and the ciphertext with its tag appended.
pub(crate) fn seal(
    recipient: &[u8; KEY_LEN],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl Random,
) -> Result<([u8; KEY_LEN], Vec<u8>), CryptoFailure> {
    let recipient = PublicKey::from_bytes(recipient).map_err(|_| CryptoFailure)?;
    // The buffer holds the plaintext until it is encrypted in place; it is
    // wiped if anything fails before that.
    let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    buffer.extend_from_slice(plaintext);
    let (encapped, tag) = hpke::single_shot_seal_inout_detached_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &recipient,
        INFO,
        buffer.as_mut_slice().into(),
        aad,
        rng,
    )
    .map_err(|_| CryptoFailure)?;
    let mut enc = [0u8; KEY_LEN];
    encapped.write_exact(&mut enc);
    buffer.extend_from_slice(&tag.to_bytes());
    // Ciphertext now, not a secret: take it out of the wiping wrapper.
    Ok((enc, std::mem::take(&mut *buffer)))
}

/// Opens `ciphertext` (with its tag at the end) sealed to `key` with `aad`
/// and encapsulated key `enc`.
pub(crate) fn open(
    key: &PrivateKey,
    enc: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoFailure> {
    let Some(body_len) = ciphertext.len().checked_sub(TAG_LEN) else {
        return Err(CryptoFailure);
    };
    let (body, tag) = ciphertext.split_at(body_len);
    let encapped = EncappedKey::from_bytes(enc).map_err(|_| CryptoFailure)?;
    let tag = AeadTag::<Aead>::from_bytes(tag).map_err(|_| CryptoFailure)?;
    // Exact capacity, so turning it into a boxed slice does not reallocate
    // and leave an unwiped copy of the plaintext behind.
    let mut buffer = Zeroizing::new(Vec::with_capacity(body_len));
    buffer.extend_from_slice(body);
    hpke::single_shot_open_inout_detached::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        key,
        &encapped,
        INFO,
        buffer.as_mut_slice().into(),
        aad,
        &tag,
    )
    .map_err(|_| CryptoFailure)?;
    Ok(SecretBytes::from(std::mem::take(&mut *buffer)))
}

/// The randomness HPKE draws (the ephemeral key, and node keys).
pub(crate) trait Random: TryCryptoRng<Error = Infallible> {
    /// Whether a draw failed. Whatever was made with this generator since
    /// must then be thrown away.
    fn failed(&self) -> bool;
}

/// The operating system's CSPRNG. `hpke` wants an infallible generator, so
/// a failed draw is remembered (and the output thrown away by the caller)
/// instead of panicking.
#[derive(Debug, Default)]
pub(crate) struct SystemRandom {
    failed: bool,
}

impl TryRng for SystemRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if getrandom::fill(dst).is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl TryCryptoRng for SystemRandom {}

impl Random for SystemRandom {
    fn failed(&self) -> bool {
        self.failed
    }
}

/// Replays fixed bytes: for test vectors only.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FixedRandom(pub(crate) Vec<u8>);

#[cfg(test)]
impl TryRng for FixedRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(dst.len() <= self.0.len(), "the fixed randomness ran out");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

#[cfg(test)]
impl TryCryptoRng for FixedRandom {}

#[cfg(test)]
impl Random for FixedRandom {
    fn failed(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use tyrum_secrets_core::ExposeSecret as _;

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9180, appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    /// ChaCha20-Poly1305, base mode, first encryption. The same suite and
    /// mode as envelopes, with the RFC's own `info` and `aad`.
    #[test]
    fn the_suite_reproduces_rfc_9180_a_2_1() {
        let info = hex("4f6465206f6e2061204772656369616e2055726e");
        let ikm_e = hex("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b");
        let pk_rm = hex("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a");
        let sk_rm = hex("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb");
        let enc = hex("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a");
        let pt = hex("4265617574792069732074727574682c20747275746820626561757479");
        let aad = hex("436f756e742d30");
        let ct = hex(
            "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db\
             21993c62ce81883d2dd1b51a28",
        );

        let key = private_key(&sk_rm).unwrap();
        assert_eq!(public_key_of(&key).to_vec(), pk_rm);

        // Sealing with the RFC's ephemeral key material gives its bytes.
        let recipient = PublicKey::from_bytes(&pk_rm).unwrap();
        let mut buffer = pt.clone();
        let (encapped, tag) = hpke::single_shot_seal_inout_detached_with_rng::<Aead, Kdf, Kem>(
            &OpModeS::Base,
            &recipient,
            &info,
            buffer.as_mut_slice().into(),
            &aad,
            &mut FixedRandom(ikm_e),
        )
        .unwrap();
        assert_eq!(encapped.to_bytes().to_vec(), enc);
        buffer.extend_from_slice(&tag.to_bytes());
        assert_eq!(buffer, ct);

        // And our `open` reads the RFC's ciphertext back, with its info.
        let encapped = EncappedKey::from_bytes(&enc).unwrap();
        let (body, tag) = ct.split_at(ct.len() - TAG_LEN);
        let mut body = body.to_vec();
        hpke::single_shot_open_inout_detached::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            &key,
            &encapped,
            &info,
            body.as_mut_slice().into(),
            &aad,
            &AeadTag::<Aead>::from_bytes(tag).unwrap(),
        )
        .unwrap();
        assert_eq!(body, pt);
    }

    #[test]
    fn seal_and_open_round_trip_and_refuse_another_aad() {
        let mut rng = SystemRandom::default();
        let (key, _) = generate_key_pair(&mut rng);
        let recipient = public_key_of(&key);
        let (enc, ct) = seal(&recipient, b"aad", b"value-bytes", &mut rng).unwrap();
        assert!(!rng.failed());
        assert_eq!(ct.len(), b"value-bytes".len() + TAG_LEN);
        let value = open(&key, &enc, b"aad", &ct).unwrap();
        assert_eq!(value.expose_secret(), b"value-bytes");
        assert!(open(&key, &enc, b"aaD", &ct).is_err());
        assert!(open(&key, &enc, b"aad", &ct[..TAG_LEN - 1]).is_err());
    }

    #[test]
    fn a_low_order_recipient_key_is_refused() {
        // u = 0 is a point of small order: the shared secret would be zero.
        let mut rng = SystemRandom::default();
        assert!(seal(&[0u8; KEY_LEN], b"", b"value-bytes", &mut rng).is_err());
    }
}
