//! The checked-in test vectors (tests/data, FORMAT.md) open and read back
//! their known values. Nothing here writes to tests/data: a missing or
//! changed vector fails the test instead of being regenerated.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use std::path::{Path, PathBuf};

use tyrum_secrets_core::anchor::Anchor;
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretProvider, Version, VersionSelector, VersionState,
};
use tyrum_secrets_file::{FileError, FileOptions, FileProvider, KdfLimits, KeySource, StoreKey};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Copies a vector into a temporary directory, so no test can alter it.
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    let bytes = std::fs::read(data(name)).unwrap_or_else(|e| {
        panic!("test vector {name} is missing ({e}); see tests/data/README.md")
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn loc(name: &str) -> Locator {
    Locator::new(name).unwrap()
}

fn read(p: &FileProvider, name: &str, version: u64) -> Result<Vec<u8>, ProviderError> {
    let v = VersionSelector::Exact(Version::new(version).unwrap());
    p.read(&loc(name), v)
        .map(|s| s.value.expose_secret().to_vec())
}

#[test]
fn passphrase_vectors_of_both_formats_read_their_known_values() {
    for (name, format) in [("v1-passphrase.tyrum", 1), ("v2-passphrase.tyrum", 2)] {
        passphrase_vector_reads_its_known_values(name, format);
    }
}

fn passphrase_vector_reads_its_known_values(name: &str, format: u16) {
    let (_dir, path) = copy_of(name);
    let p =
        FileProvider::open(&path, KeySource::passphrase("tyrum test vector passphrase")).unwrap();
    assert_eq!(p.format_version(), format);
    assert_eq!(read(&p, "demo/api-key", 1).unwrap(), b"sk-test-vector-0001");
    assert_eq!(read(&p, "demo/api-key", 2).unwrap(), b"sk-test-vector-0002");
    let latest = p
        .read(&loc("demo/api-key"), VersionSelector::Latest)
        .unwrap();
    assert_eq!(latest.version.get(), 2);
    assert!(matches!(
        read(&p, "demo/deleted", 1),
        Err(ProviderError::VersionNotFound { .. })
    ));
    assert_eq!(read(&p, "demo/destroyed", 1).unwrap(), b"kept-test-vector");
    assert!(matches!(
        read(&p, "demo/destroyed", 2),
        Err(ProviderError::VersionNotFound { .. })
    ));
    assert_eq!(
        read(&p, "demo/binary", 1).unwrap(),
        (0..=255u8).collect::<Vec<_>>()
    );
    assert_eq!(
        read(&p, "demo/unicode", 1).unwrap(),
        "pässwörd-🔑".as_bytes()
    );
    assert_eq!(
        p.list().unwrap(),
        [
            "demo/api-key",
            "demo/binary",
            "demo/destroyed",
            "demo/unicode"
        ]
        .map(loc)
    );
    let deleted = p.versions(&loc("demo/deleted")).unwrap();
    assert_eq!(
        (deleted.len(), deleted[0].state),
        (1, VersionState::Deleted)
    );
    // The destroyed version's number is not reused.
    let v = p
        .write(
            &loc("demo/destroyed"),
            &tyrum_secrets_core::SecretBytes::from(b"next".to_vec()),
        )
        .unwrap();
    assert_eq!(v.get(), 3);
}

#[test]
fn raw_key_vector_reads_its_known_value() {
    let (_dir, path) = copy_of("v1-rawkey.tyrum");
    let key = StoreKey::read_key_file(&data("v1-rawkey.key")).unwrap();
    let p = FileProvider::open(&path, KeySource::Key(key)).unwrap();
    assert_eq!(read(&p, "demo/api-key", 1).unwrap(), b"sk-raw-key-vector");
    let wrong = FileProvider::open(&path, KeySource::Key(StoreKey::from_bytes([0; 32])));
    assert!(wrong.is_err());
}

#[test]
fn header_fields_sit_at_the_documented_offsets() {
    let bytes = std::fs::read(data("v1-passphrase.tyrum")).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(&bytes[0..8], b"TYRUMSEC");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1);
    assert_eq!(bytes[26], 1, "key kind: passphrase");
    assert_eq!((u32_at(27), u32_at(31), u32_at(35)), (64, 2, 1));
    // First frame: length, complement, then a put of version 1.
    let len = u32_at(127);
    assert_eq!(u32_at(131), !len);
    assert_eq!(bytes[135], 1);
    assert_eq!(u64::from_le_bytes(bytes[136..144].try_into().unwrap()), 1);

    let raw = std::fs::read(data("v1-rawkey.tyrum")).unwrap();
    assert_eq!(raw[26], 2, "key kind: raw key");
    assert!(raw[27..55].iter().all(|&b| b == 0));
}

#[test]
fn opening_and_reading_vectors_changes_no_byte() {
    for name in [
        "v1-passphrase.tyrum",
        "v1-rawkey.tyrum",
        "v2-passphrase.tyrum",
        "v2-rawkey.tyrum",
    ] {
        let (_dir, path) = copy_of(name);
        let before = std::fs::read(&path).unwrap();
        let source = match name {
            "v1-rawkey.tyrum" | "v2-rawkey.tyrum" => KeySource::KeyFile(data("v1-rawkey.key")),
            _ => KeySource::passphrase("tyrum test vector passphrase"),
        };
        let p = FileProvider::open_with(
            &path,
            source,
            FileOptions::default().kdf_limits(KdfLimits::new(64, 2, 1)),
        )
        .unwrap();
        for locator in p.list().unwrap() {
            p.read(&locator, VersionSelector::Latest).unwrap();
        }
        drop(p);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{name} was rewritten by a read"
        );
        assert_eq!(
            std::fs::read(data(name)).unwrap(),
            before,
            "{name} differs from its copy"
        );
    }
}

fn raw_key() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// A copy of the raw-key format-2 vector and its anchor file.
fn anchored_copy() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (dir, path) = copy_of("v2-rawkey.tyrum");
    let anchor = dir.path().join("v2-rawkey.tyrum.anchor");
    std::fs::copy(data("v2-rawkey.tyrum.anchor"), &anchor).unwrap();
    (dir, path, anchor)
}

#[test]
fn anchored_raw_key_vector_opens_against_its_anchor_and_refuses_a_cut_copy() {
    let (_dir, path, anchor) = anchored_copy();
    let options = || FileOptions::default().anchor(Anchor::file(&anchor));
    let p = FileProvider::open_with(
        &path,
        KeySource::Key(StoreKey::from_bytes(raw_key())),
        options(),
    )
    .unwrap();
    assert_eq!(p.format_version(), 2);
    assert_eq!(read(&p, "demo/api-key", 1).unwrap(), b"sk-raw-key-vector");
    assert_eq!(read(&p, "demo/api-key", 2).unwrap(), b"sk-raw-key-vector-2");
    assert_eq!(read(&p, "demo/other", 1).unwrap(), b"other-raw-key-vector");
    drop(p);
    let bytes = std::fs::read(&path).unwrap();
    // Cut the last frame (the put of demo/other): a valid older store
    // that the anchor refuses.
    let frames = split_frames(&bytes, 135);
    let cut: usize = 135
        + frames[..frames.len() - 1]
            .iter()
            .map(Vec::len)
            .sum::<usize>();
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let err = FileProvider::open_with(
        &path,
        KeySource::Key(StoreKey::from_bytes(raw_key())),
        options(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, FileError::Anchor { .. }), "{err}");
}

fn split_frames(bytes: &[u8], header_len: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = header_len;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at..at + 8 + len].to_vec());
        at += 8 + len;
    }
    out
}

#[test]
fn v2_header_fields_sit_at_the_documented_offsets() {
    let bytes = std::fs::read(data("v2-passphrase.tyrum")).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let generation = |b: &[u8]| u64::from_le_bytes(b[55..63].try_into().unwrap());
    assert_eq!(&bytes[0..8], b"TYRUMSEC");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    assert_eq!(bytes[26], 1, "key kind: passphrase");
    assert_eq!((u32_at(27), u32_at(31), u32_at(35)), (64, 2, 1));
    assert_eq!(generation(&bytes), 2, "created (1), then compacted once");
    let len = u32_at(135);
    assert_eq!(u32_at(139), !len, "the log starts at 135");
    assert_eq!(bytes[143], 1, "a put");
    let raw = std::fs::read(data("v2-rawkey.tyrum")).unwrap();
    assert_eq!(raw[26], 2, "key kind: raw key");
    assert!(raw[27..55].iter().all(|&b| b == 0));
    assert_eq!(generation(&raw), 1);
}

/// An independent reading of FORMAT.md: unwraps the data key, derives the
/// chain and anchor keys, follows the chain through every record of the
/// raw-key vector and checks its anchor's tag, with the primitives alone.
#[test]
fn raw_key_v2_vector_decodes_by_hand_as_format_md_says() {
    use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use hmac::Mac as _;
    type Hmac = hmac::Hmac<sha2::Sha256>;
    let hmac = |key: &[u8], parts: &[&[u8]]| -> [u8; 32] {
        let mut mac = <Hmac as hmac::Mac>::new_from_slice(key).unwrap();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    };
    let open = |key: &[u8], nonce: &[u8], sealed: &[u8], aad: &[u8]| {
        XChaCha20Poly1305::new_from_slice(key)
            .unwrap()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            .unwrap()
    };

    let file = std::fs::read(data("v2-rawkey.tyrum")).unwrap();
    let header = &file[..135];
    let store_id = &header[10..26];
    let mut aad = b"tyrum-secrets-file v2 data key".to_vec();
    aad.extend_from_slice(&header[..63]);
    let data_key = open(&raw_key(), &header[63..87], &header[87..135], &aad);
    let chain_key = hmac(&data_key, &[b"tyrum-secrets-file v2 chain key"]);
    let anchor_key = hmac(&data_key, &[b"tyrum-secrets-file v2 anchor key"]);
    let mut chain = hmac(&chain_key, &[b"tyrum-secrets-file v2 genesis\n", header]);

    let mut values = Vec::new();
    for frame in split_frames(&file, 135) {
        let body = &frame[8..];
        let locator_len = u16::from_le_bytes([body[9], body[10]]) as usize;
        let (fields, sealed) = body.split_at(11 + locator_len);
        let mut aad = b"tyrum-secrets-file v2 record".to_vec();
        aad.extend_from_slice(store_id);
        aad.extend_from_slice(&chain);
        aad.extend_from_slice(fields);
        values.push(open(&data_key, &sealed[..24], &sealed[24..], &aad));
        chain = hmac(
            &chain_key,
            &[b"tyrum-secrets-file v2 link\n", &chain, &frame],
        );
    }
    assert_eq!(
        values,
        [
            &b"sk-raw-key-vector"[..],
            b"sk-raw-key-vector-2",
            b"other-raw-key-vector"
        ]
    );

    // The anchor file: two 4 KiB slots; the newest valid one holds the
    // anchor record.
    let anchor_file = std::fs::read(data("v2-rawkey.tyrum.anchor")).unwrap();
    assert_eq!(anchor_file.len(), 8192);
    let slot = |i: usize| {
        let s = &anchor_file[i * 4096..(i + 1) * 4096];
        let seq = u64::from_le_bytes(s[8..16].try_into().unwrap());
        let len = u32::from_le_bytes(s[16..20].try_into().unwrap()) as usize;
        use sha2::Digest as _;
        let valid = &s[..8] == b"TYRSLOT1"
            && sha2::Sha256::digest(&s[..20 + len]).as_slice() == &s[20 + len..52 + len];
        valid.then(|| (seq, s[20..20 + len].to_vec()))
    };
    let (_, record) = [slot(0), slot(1)]
        .into_iter()
        .flatten()
        .max_by_key(|(seq, _)| *seq)
        .unwrap();
    assert_eq!(&record[..8], b"TYRUMANC");
    assert_eq!(
        (record[8], record[9]),
        (1, 1),
        "version 1, current head only"
    );
    let head = &record[10..58];
    assert_eq!(
        u64::from_le_bytes(head[..8].try_into().unwrap()),
        1,
        "generation"
    );
    assert_eq!(
        u64::from_le_bytes(head[8..16].try_into().unwrap()),
        3,
        "records"
    );
    assert_eq!(
        &head[16..48],
        &chain,
        "the chain value after the last record"
    );
    let tag = hmac(
        &anchor_key,
        &[
            b"tyrum-secrets anchor v1\n",
            &[1],
            &16u64.to_le_bytes(),
            store_id,
            head,
        ],
    );
    assert_eq!(&record[58..90], &tag);
}

#[test]
fn every_single_bit_flip_of_the_v1_raw_key_vector_is_detected() {
    let (dir, path) = copy_of("v1-rawkey.tyrum");
    let bytes = std::fs::read(&path).unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let case = dir.path().join("flipped.tyrum");
        std::fs::write(&case, &flipped).unwrap();
        let opened = FileProvider::open_with(
            &case,
            KeySource::Key(StoreKey::from_bytes(raw_key())),
            FileOptions::default(),
        );
        assert!(opened.is_err(), "flipping bit {bit} went unnoticed");
    }
}
