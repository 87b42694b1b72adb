#![allow(clippy::unwrap_used, reason = "test code")]

use curve25519_dalek::constants::EIGHT_TORSION;
use hpke::aead::{AeadTag, ChaCha20Poly1305 as HpkeChaCha};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable as _, OpModeR, OpModeS, Serializable as _};
use proptest::prelude::*;
use tyrum_secrets_core::ExposeSecret as _;

use super::*;

type HpkeKem = X25519HkdfSha256;

/// The operating system's generator, in the shape the `hpke` crate takes.
struct OsRandom;

impl hpke::rand_core::TryRng for OsRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).unwrap();
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst).unwrap();
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for OsRandom {}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn array(text: &str) -> [u8; KEY_LEN] {
    hex(text).try_into().unwrap()
}

/// RFC 9180, appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// ChaCha20-Poly1305, base mode, first encryption. The same suite and mode
/// as envelopes, with the RFC's own `info` and `aad`.
const INFO_A21: &str = "4f6465206f6e2061204772656369616e2055726e";
const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
const SK_EM: &str = "f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600";
const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
const ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
const SHARED_SECRET: &str = "0bbe78490412b4bbea4812666f7916932b828bba79942424abb65244930d69a7";
const KEY: &str = "ad2744de8e17f4ebba575b3f5f5a8fa1f69c2a07f6e7500bc60ca6e3e3ec1c91";
const BASE_NONCE: &str = "5c4d98150661b848853b547f";
const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
const AAD: &str = "436f756e742d30";
const CT: &str = "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db\
                  21993c62ce81883d2dd1b51a28";

#[test]
fn each_step_reproduces_rfc_9180_a_2_1() {
    let ephemeral = derive_key_pair(&hex(IKM_E));
    assert_eq!(ephemeral.secret.as_slice(), hex(SK_EM));
    assert_eq!(ephemeral.public.to_vec(), hex(ENC));
    let recipient = private_key(&hex(SK_RM)).unwrap();
    assert_eq!(public_key_of(&recipient).to_vec(), hex(PK_RM));
    // Stored clamped (RFC 9180 §7.1.2), and the same key read back.
    let stored = private_key_bytes(&recipient);
    assert_eq!(stored[0] & 7, 0);
    assert_eq!(stored[31] & 0xc0, 0x40);
    assert_eq!(
        public_key_of(&private_key(stored.as_slice()).unwrap()),
        public_key_of(&recipient)
    );

    let sender_dh = diffie_hellman(&ephemeral.secret, &array(PK_RM));
    let receiver_dh = diffie_hellman(&recipient.secret, &array(ENC));
    assert_eq!(sender_dh, receiver_dh);
    let shared = shared_secret(&sender_dh, &array(ENC), &array(PK_RM)).unwrap();
    assert_eq!(shared.to_vec(), hex(SHARED_SECRET));
    let (key, nonce) = key_schedule(&shared, &hex(INFO_A21));
    assert_eq!(key.to_vec(), hex(KEY));
    assert_eq!(nonce.to_vec(), hex(BASE_NONCE));
}

#[test]
fn sealing_and_opening_reproduce_rfc_9180_a_2_1() {
    let ct = CT.split_whitespace().collect::<String>();
    // Both the first seal (no table yet) and a later one (with the table).
    let table = RecipientTable::default();
    for _ in 0..2 {
        let (enc, sealed) = seal_with_info(
            &array(PK_RM),
            Some(&table),
            &hex(INFO_A21),
            &hex(AAD),
            &hex(PT),
            &mut FixedRandom(hex(IKM_E)),
        )
        .unwrap();
        assert_eq!(enc.to_vec(), hex(ENC));
        assert_eq!(sealed, hex(&ct));
    }
    assert!(
        table.table.get().is_some(),
        "the second seal builds the table"
    );

    let recipient = private_key(&hex(SK_RM)).unwrap();
    let opened = open_with_info(&recipient, &hex(ENC), &hex(INFO_A21), &hex(AAD), &hex(&ct));
    assert_eq!(opened.unwrap().expose_secret(), hex(PT).as_slice());
}

#[test]
fn seal_and_open_round_trip_and_refuse_another_aad() {
    let mut rng = SystemRandom;
    let key = generate_key_pair(&mut rng).unwrap();
    let recipient = public_key_of(&key);
    let (enc, ct) = seal(&recipient, None, b"aad", b"value-bytes", &mut rng).unwrap();
    assert_eq!(ct.len(), b"value-bytes".len() + TAG_LEN);
    let value = open(&key, &enc, b"aad", &ct).unwrap();
    assert_eq!(value.expose_secret(), b"value-bytes");
    assert!(open(&key, &enc, b"aaD", &ct).is_err());
    assert!(open(&key, &enc, b"aad", &ct[..TAG_LEN - 1]).is_err());
    assert!(open(&key, &enc[..31], b"aad", &ct).is_err());
    let other = generate_key_pair(&mut rng).unwrap();
    assert!(open(&other, &enc, b"aad", &ct).is_err());
}

/// The u-coordinates of the points of order dividing 8, and their
/// non-canonical encodings (u + p, where that fits in 255 bits) and the
/// encodings with the ignored top bit set.
fn small_order_encodings() -> Vec<[u8; KEY_LEN]> {
    let mut encodings = Vec::new();
    for point in EIGHT_TORSION {
        let u = point.to_montgomery().to_bytes();
        encodings.push(u);
        let mut high = u;
        high[31] |= 0x80;
        encodings.push(high);
    }
    // p = 2^255 - 19; u + p for u in {0, 1}: 0xed.. and 0xee.. then 0x7f.
    for low in [0xedu8, 0xee] {
        let mut u = [0xffu8; KEY_LEN];
        u[0] = low;
        u[31] = 0x7f;
        encodings.push(u);
    }
    encodings
}

#[test]
fn a_small_order_key_is_refused_on_both_sides() {
    let mut rng = SystemRandom;
    let key = generate_key_pair(&mut rng).unwrap();
    let (_, ct) = seal(&public_key_of(&key), None, b"", b"value", &mut rng).unwrap();
    let table = RecipientTable::default();
    for u in small_order_encodings() {
        // The clamped scalar is a multiple of 8: every such product is the
        // identity, u = 0, and the KEM must refuse it.
        assert!(matches!(
            seal(&u, None, b"", b"value", &mut rng),
            Err(SealFailure::Crypto)
        ));
        assert!(matches!(
            seal(&u, Some(&table), b"", b"value", &mut rng),
            Err(SealFailure::Crypto)
        ));
        assert!(open(&key, &u, b"", &ct).is_err());
    }
}

/// -1 (no Edwards point), 9 (the base point), the largest 255-bit value,
/// and a u-coordinate on the twist (2 is not on Curve25519).
fn special_encodings() -> Vec<[u8; KEY_LEN]> {
    let mut minus_one = [0xffu8; KEY_LEN];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let mut nine = [0u8; KEY_LEN];
    nine[0] = 9;
    let mut two = [0u8; KEY_LEN];
    two[0] = 2;
    let mut all_ones = [0xffu8; KEY_LEN];
    all_ones[31] = 0xff;
    let mut encodings = vec![minus_one, nine, two, all_ones];
    encodings.extend(small_order_encodings());
    encodings
}

#[test]
fn a_twist_point_takes_the_ladder() {
    let mut two = [0u8; KEY_LEN];
    two[0] = 2;
    assert!(MontgomeryPoint(two).to_edwards(0).is_none());
    let scalar = [7u8; KEY_LEN];
    assert_eq!(*diffie_hellman(&scalar, &two), ladder(&scalar, &two));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The Edwards path, with and without a table, is X25519 for any
    /// scalar and any 32 bytes of u-coordinate (on the curve, on the
    /// twist, of small order, non-canonical, top bit set).
    #[test]
    fn the_edwards_path_is_the_ladder(
        scalar in any::<[u8; KEY_LEN]>(),
        u in prop_oneof![
            any::<[u8; KEY_LEN]>(),
            proptest::sample::select(special_encodings()),
        ],
    ) {
        let expected = ladder(&scalar, &u);
        prop_assert_eq!(*diffie_hellman(&scalar, &u), expected);
        let table = RecipientTable::default();
        prop_assert_eq!(*table.diffie_hellman(&scalar, &u), expected);
        prop_assert_eq!(*table.diffie_hellman(&scalar, &u), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// What this module seals, the `hpke` crate opens, and the other way
    /// round, for any value, aad and info.
    #[test]
    fn it_interoperates_with_the_hpke_crate(
        value in proptest::collection::vec(any::<u8>(), 0..300),
        aad in proptest::collection::vec(any::<u8>(), 0..100),
        info in proptest::collection::vec(any::<u8>(), 0..64),
        use_table in any::<bool>(),
    ) {
        let mut rng = SystemRandom;
        let ours = generate_key_pair(&mut rng).unwrap();
        let recipient = public_key_of(&ours);
        let table = RecipientTable::default();
        if use_table {
            // Spend the first seal, so the one checked uses the table.
            seal_with_info(&recipient, Some(&table), &info, &aad, &value, &mut rng).unwrap();
        }
        let (enc, ct) =
            seal_with_info(&recipient, Some(&table), &info, &aad, &value, &mut rng).unwrap();
        let theirs = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(ours.secret.as_slice()).unwrap();
        let (body, tag) = ct.split_at(ct.len() - TAG_LEN);
        let mut body = body.to_vec();
        hpke::single_shot_open_inout_detached::<HpkeChaCha, HkdfSha256, HpkeKem>(
            &OpModeR::Base,
            &theirs,
            &<HpkeKem as hpke::Kem>::EncappedKey::from_bytes(&enc).unwrap(),
            &info,
            body.as_mut_slice().into(),
            &aad,
            &AeadTag::<HpkeChaCha>::from_bytes(tag).unwrap(),
        )
        .unwrap();
        prop_assert_eq!(&body, &value);

        let their_public = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&recipient).unwrap();
        let mut buffer = value.clone();
        let (encapped, tag) =
            hpke::single_shot_seal_inout_detached_with_rng::<HpkeChaCha, HkdfSha256, HpkeKem>(
                &OpModeS::Base,
                &their_public,
                &info,
                buffer.as_mut_slice().into(),
                &aad,
                &mut OsRandom,
            )
            .unwrap();
        buffer.extend_from_slice(&tag.to_bytes());
        let opened =
            open_with_info(&ours, &encapped.to_bytes(), &info, &aad, &buffer).unwrap();
        prop_assert_eq!(opened.expose_secret(), value.as_slice());
    }
}

#[test]
fn tables_are_kept_per_key_for_the_most_recent_keys() {
    let mut rng = SystemRandom;
    let key = public_key_of(&generate_key_pair(&mut rng).unwrap());
    let first = recipient_table(&key);
    assert!(
        Arc::ptr_eq(&first, &recipient_table(&key)),
        "one table per key"
    );
    // Enough other keys push it out; it then starts afresh.
    for _ in 0..TABLES {
        let other = public_key_of(&generate_key_pair(&mut rng).unwrap());
        assert!(!Arc::ptr_eq(&first, &recipient_table(&other)));
    }
    assert!(!Arc::ptr_eq(&first, &recipient_table(&key)));
}
