//! The checked-in test vectors (tests/data, FORMAT.md) open and read back
//! their known values. Nothing here writes to tests/data: a missing or
//! changed vector fails the test instead of being regenerated.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use std::path::{Path, PathBuf};

use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretProvider, Version, VersionSelector, VersionState,
};
use tyrum_secrets_file::{FileOptions, FileProvider, KdfLimits, KeySource, StoreKey};

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
fn passphrase_vector_reads_its_known_values() {
    let (_dir, path) = copy_of("v1-passphrase.tyrum");
    let p =
        FileProvider::open(&path, KeySource::passphrase("tyrum test vector passphrase")).unwrap();
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
    for name in ["v1-passphrase.tyrum", "v1-rawkey.tyrum"] {
        let (_dir, path) = copy_of(name);
        let before = std::fs::read(&path).unwrap();
        let source = match name {
            "v1-rawkey.tyrum" => KeySource::KeyFile(data("v1-rawkey.key")),
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
