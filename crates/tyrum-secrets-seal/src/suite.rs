//! The one HPKE suite envelopes use: RFC 9180 base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305 (suite ids
//! 0x0020, 0x0001, 0x0003), and the randomness it draws.
//!
//! The composition is written out here, from the RFC's definitions, over
//! `curve25519-dalek`, `hkdf` and `chacha20poly1305`, instead of taken from
//! the `hpke` crate, for one reason: time. X25519 is nearly all of a
//! hand-off's cost, and two of its multiplications can be done faster than
//! a generic HPKE can:
//!
//! - the Diffie-Hellman of each seal and open runs on the Edwards form of
//!   the curve, whose variable-base multiplication has a vectorised (AVX2)
//!   backend, instead of the scalar Montgomery ladder; points that have no
//!   Edwards form (on the twist) take the ladder, so the result is X25519's
//!   for every input;
//! - the recipient's public key is known on the node (no recomputation per
//!   open), and the gateway keeps a table of multiples of a node's key once
//!   it seals to it a second time (for the [`TABLES`] most recent keys),
//!   which turns the seal's Diffie-Hellman into a fixed-base
//!   multiplication.
//!
//! The tests check it against RFC 9180's vectors (A.2.1), against the `hpke`
//! crate in both directions, and the Edwards path against the ladder on
//! arbitrary inputs. Everything here works on bytes; the envelope layout is
//! in [`envelope`](crate::envelope).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit as _, Nonce, Tag};
use curve25519_dalek::edwards::EdwardsBasepointTable;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::clamp_integer;
use curve25519_dalek::traits::BasepointTable as _;
use hkdf::{Hkdf, HkdfExtract};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use tyrum_secrets_core::SecretBytes;
use zeroize::{Zeroize as _, Zeroizing};

/// The HPKE `info` string of format version 1.
pub(crate) const INFO: &[u8] = b"tyrum-secrets-seal v1";
/// Bytes in an X25519 key (public, private, encapsulated).
pub(crate) const KEY_LEN: usize = 32;
/// Bytes in a Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// RFC 9180 §4: every label is prefixed with this.
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// `suite_id` of the KEM (§4.1): "KEM" || I2OSP(0x0020, 2).
const KEM_SUITE: &[u8] = b"KEM\x00\x20";
/// `suite_id` of the whole suite (§5.1): "HPKE" || kem || kdf || aead.
const HPKE_SUITE: &[u8] = b"HPKE\x00\x20\x00\x01\x00\x03";
/// Base mode (§5.1).
const MODE_BASE: u8 = 0x00;
/// ChaCha20-Poly1305's key and nonce lengths (`Nk`, `Nn`).
const AEAD_KEY_LEN: usize = 32;
const AEAD_NONCE_LEN: usize = 12;

/// HPKE failed. Opaque on purpose: a wrong key and tampering look alike.
#[derive(Debug)]
pub(crate) struct CryptoFailure;

/// The operating system could not supply randomness.
#[derive(Debug)]
pub(crate) struct NoRandomness;

/// Why a seal failed.
#[derive(Debug)]
pub(crate) enum SealFailure {
    /// No randomness for the ephemeral key.
    NoRandomness,
    /// The recipient's key is of small order.
    Crypto,
}

/// An X25519 private key, with its public key (computed once).
pub(crate) struct PrivateKey {
    secret: Zeroizing<[u8; KEY_LEN]>,
    public: [u8; KEY_LEN],
}

impl PrivateKey {
    fn from_secret(secret: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        Self { secret, public }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([REDACTED])")
    }
}

/// A fresh key pair from `rng`: RFC 9180's `DeriveKeyPair` of 32 random
/// bytes, as the RFC's vectors (and the `hpke` crate) make ephemeral keys.
pub(crate) fn generate_key_pair(rng: &mut impl Random) -> Result<PrivateKey, NoRandomness> {
    let mut ikm = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill(ikm.as_mut_slice())?;
    Ok(derive_key_pair(ikm.as_slice()))
}

/// RFC 9180 §7.1.3, `DeriveKeyPair` for X25519.
fn derive_key_pair(ikm: &[u8]) -> PrivateKey {
    let (_, dkp_prk) = labeled_extract(b"", KEM_SUITE, b"dkp_prk", &[ikm]);
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    labeled_expand(&dkp_prk, KEM_SUITE, b"sk", &[], secret.as_mut_slice());
    PrivateKey::from_secret(secret)
}

/// The private key from its 32 stored bytes, clamped as RFC 9180 §7.1.2's
/// `DeserializePrivateKey` requires (every use clamps anyway: the key is
/// the same).
pub(crate) fn private_key(bytes: &[u8]) -> Result<PrivateKey, CryptoFailure> {
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    if bytes.len() != KEY_LEN {
        return Err(CryptoFailure);
    }
    secret.copy_from_slice(bytes);
    *secret = clamp_integer(*secret);
    Ok(PrivateKey::from_secret(secret))
}

/// The 32 bytes of `key`, clamped as RFC 9180 §7.1.2's
/// `SerializePrivateKey` requires, in a buffer wiped on drop.
pub(crate) fn private_key_bytes(key: &PrivateKey) -> Zeroizing<[u8; KEY_LEN]> {
    Zeroizing::new(clamp_integer(*key.secret))
}

pub(crate) fn public_key_of(key: &PrivateKey) -> [u8; KEY_LEN] {
    key.public
}

/// What sealing to one public key can reuse: from the second seal on, a
/// table of multiples of the key (about 30 KiB, built once in about
/// 1.5 ms), which makes each later seal's Diffie-Hellman a fixed-base
/// multiplication, several times cheaper. The first seal does without, so
/// a key sealed to once costs nothing extra.
///
/// It holds nothing secret. [`recipient_table`] keeps one per key, so a
/// pairing record read anew for every seal benefits as much as one kept.
#[derive(Default)]
pub(crate) struct RecipientTable {
    sealed_before: AtomicBool,
    /// `None` inside when the key has no Edwards form (not a real node
    /// key): the ladder is used then.
    table: OnceLock<Option<Box<EdwardsBasepointTable>>>,
}

impl RecipientTable {
    /// X25519(`scalar`, `recipient`), where `recipient` is always the key
    /// this table is for.
    fn diffie_hellman(
        &self,
        scalar: &[u8; KEY_LEN],
        recipient: &[u8; KEY_LEN],
    ) -> Zeroizing<[u8; KEY_LEN]> {
        if !self.sealed_before.swap(true, Ordering::Relaxed) {
            return diffie_hellman(scalar, recipient);
        }
        let table = self.table.get_or_init(|| {
            MontgomeryPoint(*recipient)
                .to_edwards(0)
                .map(|point| Box::new(EdwardsBasepointTable::create(&point)))
        });
        match table {
            Some(table) => {
                // The table multiplies by the clamped integer exactly (no
                // reduction modulo the group order), so the result is
                // X25519's for any point, torsion included.
                let mut point = table.mul_base_clamped(*scalar);
                let shared = Zeroizing::new(point.to_montgomery().to_bytes());
                point.zeroize();
                shared
            }
            None => diffie_hellman(scalar, recipient),
        }
    }
}

/// How many node keys [`recipient_table`] keeps tables for (at most about
/// 30 KiB each), the least recently sealed to dropped first.
pub(crate) const TABLES: usize = 32;

/// The node keys sealed to most recently, with their tables, most recent
/// first.
static RECIPIENTS: Mutex<VecDeque<([u8; KEY_LEN], Arc<RecipientTable>)>> =
    Mutex::new(VecDeque::new());

/// The table for sealing to `key`: the one kept for it, or a new one
/// (keeping at most [`TABLES`]). A table is only ever looked up by its own
/// key, so it cannot be used for another.
pub(crate) fn recipient_table(key: &[u8; KEY_LEN]) -> Arc<RecipientTable> {
    // The list is consistent at every step: a panic elsewhere while it was
    // held leaves nothing half done.
    let mut recent = RECIPIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    let table = match recent.iter().position(|(k, _)| k == key) {
        Some(at) => recent.remove(at).map(|(_, table)| table),
        None => None,
    }
    .unwrap_or_default();
    recent.push_front((*key, Arc::clone(&table)));
    recent.truncate(TABLES);
    table
}

impl fmt::Debug for RecipientTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientTable")
            .field("built", &self.table.get().is_some())
            .finish()
    }
}

/// X25519(`scalar`, `u`) of RFC 7748.
///
/// The u-coordinate of `[k]P` is the same for `P` and `-P`, so either
/// Edwards point with that u-coordinate gives the answer; the Edwards
/// multiplication runs on the vectorised backend when the CPU has one.
/// A u-coordinate on the twist (or `-1`) has no Edwards point and takes the
/// Montgomery ladder, which is what X25519 is defined by.
fn diffie_hellman(scalar: &[u8; KEY_LEN], u: &[u8; KEY_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let point = MontgomeryPoint(*u);
    match point.to_edwards(0) {
        Some(edwards) => {
            let mut product = edwards.mul_clamped(*scalar);
            let shared = Zeroizing::new(product.to_montgomery().to_bytes());
            product.zeroize();
            shared
        }
        None => {
            let mut product = point.mul_clamped(*scalar);
            let shared = Zeroizing::new(product.to_bytes());
            product.zeroize();
            shared
        }
    }
}

/// The ladder alone, for the tests that check the Edwards path against it.
#[cfg(test)]
fn ladder(scalar: &[u8; KEY_LEN], u: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    MontgomeryPoint(*u).mul_clamped(*scalar).to_bytes()
}

/// `LabeledExtract(salt, label, ikm)` of RFC 9180 §4: returns the PRK and
/// the HKDF keyed with it.
fn labeled_extract(
    salt: &[u8],
    suite: &[u8],
    label: &[u8],
    ikm: &[&[u8]],
) -> (Zeroizing<[u8; 32]>, Hkdf<Sha256>) {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    extract.input_ikm(VERSION_LABEL);
    extract.input_ikm(suite);
    extract.input_ikm(label);
    for part in ikm {
        extract.input_ikm(part);
    }
    let (prk, hkdf) = extract.finalize();
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(&prk);
    (bytes, hkdf)
}

/// `LabeledExpand(prk, label, info, L)` of RFC 9180 §4, `L` being the
/// length of `out` (at most 32 here, always within HKDF's limit).
fn labeled_expand(prk: &Hkdf<Sha256>, suite: &[u8], label: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let length = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(4 + info.len());
    parts.extend_from_slice(&[length.as_slice(), VERSION_LABEL, suite, label]);
    parts.extend_from_slice(info);
    // Only fails for outputs past 255 hash lengths; ours are 32 bytes or
    // fewer. Should it ever fail, the output stays zero and nothing opens.
    let _ = prk.expand_multi_info(&parts, out);
}

/// `ExtractAndExpand(dh, kem_context)` of §4.1: the KEM's shared secret.
/// An all-zero `dh` (a small-order point) is refused, as §7.1.4 requires.
fn shared_secret(
    dh: &[u8; KEY_LEN],
    enc: &[u8; KEY_LEN],
    recipient: &[u8; KEY_LEN],
) -> Result<Zeroizing<[u8; 32]>, CryptoFailure> {
    if bool::from(dh.ct_eq(&[0u8; KEY_LEN])) {
        return Err(CryptoFailure);
    }
    let (_, eae_prk) = labeled_extract(b"", KEM_SUITE, b"eae_prk", &[dh]);
    let mut secret = Zeroizing::new([0u8; 32]);
    labeled_expand(
        &eae_prk,
        KEM_SUITE,
        b"shared_secret",
        &[enc, recipient],
        secret.as_mut_slice(),
    );
    Ok(secret)
}

/// `KeyScheduleS/R` of §5.1 in base mode (no PSK): the AEAD key and base
/// nonce. A single-shot message uses sequence number 0, so its nonce is the
/// base nonce.
fn key_schedule(shared_secret: &[u8; 32], info: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 12]) {
    let (psk_id_hash, _) = labeled_extract(b"", HPKE_SUITE, b"psk_id_hash", &[]);
    let (info_hash, _) = labeled_extract(b"", HPKE_SUITE, b"info_hash", &[info]);
    let context: [&[u8]; 3] = [&[MODE_BASE], psk_id_hash.as_slice(), info_hash.as_slice()];
    let (_, secret) = labeled_extract(shared_secret, HPKE_SUITE, b"secret", &[]);
    let mut key = Zeroizing::new([0u8; AEAD_KEY_LEN]);
    labeled_expand(&secret, HPKE_SUITE, b"key", &context, key.as_mut_slice());
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    labeled_expand(&secret, HPKE_SUITE, b"base_nonce", &context, &mut nonce);
    (key, nonce)
}

/// Seals `plaintext` to `recipient` with `aad`; returns the encapsulated
/// key and the ciphertext with its tag appended. `table` is the recipient's
/// (see [`RecipientTable`]), when the caller keeps one.
pub(crate) fn seal(
    recipient: &[u8; KEY_LEN],
    table: Option<&RecipientTable>,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl Random,
) -> Result<([u8; KEY_LEN], Vec<u8>), SealFailure> {
    seal_with_info(recipient, table, INFO, aad, plaintext, rng)
}

fn seal_with_info(
    recipient: &[u8; KEY_LEN],
    table: Option<&RecipientTable>,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl Random,
) -> Result<([u8; KEY_LEN], Vec<u8>), SealFailure> {
    // Encap(pkR), §4.1.
    let ephemeral = generate_key_pair(rng).map_err(|NoRandomness| SealFailure::NoRandomness)?;
    let dh = match table {
        Some(table) => table.diffie_hellman(&ephemeral.secret, recipient),
        None => diffie_hellman(&ephemeral.secret, recipient),
    };
    let enc = ephemeral.public;
    let shared =
        shared_secret(&dh, &enc, recipient).map_err(|CryptoFailure| SealFailure::Crypto)?;
    let (key, nonce) = key_schedule(&shared, info);
    // The buffer holds the plaintext until it is encrypted in place; it is
    // wiped if anything fails before that.
    let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
    buffer.extend_from_slice(plaintext);
    let tag = ChaCha20Poly1305::new(Key::from_slice(key.as_slice()))
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), aad, buffer.as_mut_slice())
        .map_err(|_| SealFailure::Crypto)?;
    buffer.extend_from_slice(&tag);
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
    open_with_info(key, enc, INFO, aad, ciphertext)
}

fn open_with_info(
    key: &PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<SecretBytes, CryptoFailure> {
    let enc: &[u8; KEY_LEN] = enc.try_into().map_err(|_| CryptoFailure)?;
    let Some(body_len) = ciphertext.len().checked_sub(TAG_LEN) else {
        return Err(CryptoFailure);
    };
    let (body, tag) = ciphertext.split_at(body_len);
    // Decap(enc, skR), §4.1.
    let dh = diffie_hellman(&key.secret, enc);
    let shared = shared_secret(&dh, enc, &key.public)?;
    let (aead_key, nonce) = key_schedule(&shared, info);
    // Exact capacity, so turning it into a boxed slice does not reallocate
    // and leave an unwiped copy of the plaintext behind.
    let mut buffer = Zeroizing::new(Vec::with_capacity(body_len));
    buffer.extend_from_slice(body);
    ChaCha20Poly1305::new(Key::from_slice(aead_key.as_slice()))
        .decrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            aad,
            buffer.as_mut_slice(),
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptoFailure)?;
    Ok(SecretBytes::from(std::mem::take(&mut *buffer)))
}

/// The randomness sealing draws (the ephemeral key, and node keys).
pub(crate) trait Random {
    /// Fills `dst`.
    fn fill(&mut self, dst: &mut [u8]) -> Result<(), NoRandomness>;
}

/// The operating system's CSPRNG.
#[derive(Debug)]
pub(crate) struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&mut self, dst: &mut [u8]) -> Result<(), NoRandomness> {
        getrandom::fill(dst).map_err(|_| NoRandomness)
    }
}

/// Replays fixed bytes: for test vectors only.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct FixedRandom(pub(crate) Vec<u8>);

#[cfg(test)]
impl Random for FixedRandom {
    fn fill(&mut self, dst: &mut [u8]) -> Result<(), NoRandomness> {
        assert!(dst.len() <= self.0.len(), "the fixed randomness ran out");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
