//! Bad input: wrong keys, truncated, bit-flipped, spliced, hostile and
//! foreign files. Every case ends in a typed error or in values that were
//! really written at those versions; never a panic, never wrong plaintext.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, Version, VersionSelector,
};
use tyrum_secrets_file::{FileError, FileOptions, FileProvider, KdfLimits, KeySource, StoreKey};

const PASSPHRASE: &str = "hostile-test passphrase";
/// Format 2, which new stores are created in.
const HEADER_LEN: usize = 135;

type Values = BTreeMap<(String, u64), Vec<u8>>;

/// Cheap KDF for new stores, and caps so tight that no flipped header
/// parameter can make a test slow.
fn options() -> FileOptions {
    FileOptions::default()
        .dangerous_insecure_kdf_for_tests()
        .kdf_limits(KdfLimits::new(64, 4, 4))
        .compact_on_destroy(false)
}

fn passphrase() -> KeySource {
    KeySource::passphrase(PASSPHRASE)
}

fn loc(name: &str) -> Locator {
    Locator::new(name).unwrap()
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::from(bytes.to_vec())
}

/// A small store with puts, a delete and a destroy marker; returns its
/// bytes and every value ever written.
fn small_store(dir: &Path) -> (Vec<u8>, Values) {
    let path = dir.join("small.tyrum");
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let mut values = Values::new();
    for (name, value) in [
        ("a/one", &b"CANARY-value-aaaa"[..]),
        ("a/one", b"CANARY-value-bbbb"),
        ("b/two", b"CANARY-value-cccc"),
        ("b/two", b"CANARY-value-dddd"),
    ] {
        let v = p.write(&loc(name), &secret(value)).unwrap();
        values.insert((name.to_owned(), v.get()), value.to_vec());
    }
    p.delete(&loc("a/one"), Version::FIRST).unwrap();
    p.destroy(&loc("b/two"), Version::FIRST).unwrap();
    (std::fs::read(&path).unwrap(), values)
}

/// Opens `bytes` as a store in a fresh file and reads every readable
/// version.
fn open_and_read_all(dir: &Path, bytes: &[u8], source: KeySource) -> Result<Values, String> {
    let path = dir.join(format!("case-{}.tyrum", rand_tag()));
    std::fs::write(&path, bytes).unwrap();
    let result = read_all(&path, source);
    std::fs::remove_file(&path).unwrap();
    result
}

fn read_all(path: &Path, source: KeySource) -> Result<Values, String> {
    let p = FileProvider::open_with(path, source, options()).map_err(|e| format!("open: {e}"))?;
    let mut out = Values::new();
    for locator in p.list().map_err(|e| e.to_string())? {
        for info in p.versions(&locator).map_err(|e| e.to_string())? {
            match p.read(&locator, VersionSelector::Exact(info.version)) {
                Ok(got) => {
                    out.insert(
                        (locator.to_string(), got.version.get()),
                        got.value.expose_secret().to_vec(),
                    );
                }
                Err(ProviderError::VersionNotFound { .. }) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(out)
}

/// A name unique within this test process.
fn rand_tag() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn assert_only_written_values(read: &Values, written: &Values, context: &str) {
    for (key, value) in read {
        assert!(
            written.get(key) == Some(value),
            "{context}: {key:?} reads a value that was never written there"
        );
    }
}

#[test]
fn wrong_passphrase_is_an_opaque_decrypt_error() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_store(dir.path());
    let path = dir.path().join("wrong.tyrum");
    std::fs::write(&path, &bytes).unwrap();
    let err =
        FileProvider::open_with(&path, KeySource::passphrase("not it"), options()).unwrap_err();
    assert!(matches!(err, FileError::Decrypt { .. }), "{err}");
}

#[test]
fn wrong_key_and_tampering_give_the_same_error() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_store(dir.path());
    let path = dir.path().join("same.tyrum");
    std::fs::write(&path, &bytes).unwrap();
    let wrong_key = FileProvider::open_with(&path, KeySource::passphrase("not it"), options())
        .unwrap_err()
        .to_string();
    let mut tampered = bytes.clone();
    tampered[HEADER_LEN - 1] ^= 0x01; // last byte of the wrapped data key
    std::fs::write(&path, &tampered).unwrap();
    let wrapped = FileProvider::open_with(&path, passphrase(), options())
        .unwrap_err()
        .to_string();
    let mut tampered = bytes.clone();
    let last = tampered.len() - 1; // tag of the last record
    tampered[last] ^= 0x80;
    std::fs::write(&path, &tampered).unwrap();
    let record = FileProvider::open_with(&path, passphrase(), options())
        .unwrap_err()
        .to_string();
    assert_eq!(wrong_key, wrapped);
    assert_eq!(wrong_key, record);
}

#[test]
fn truncation_at_every_length_never_yields_wrong_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, written) = small_store(dir.path());
    let mut opened = 0;
    for cut in 0..bytes.len() {
        match open_and_read_all(dir.path(), &bytes[..cut], passphrase()) {
            Ok(read) => {
                assert!(
                    cut >= HEADER_LEN,
                    "a store cut at {cut} bytes, inside the header, opened"
                );
                assert_only_written_values(&read, &written, &format!("cut at {cut}"));
                opened += 1;
            }
            Err(e) => assert!(
                cut < HEADER_LEN,
                "a cut at {cut} inside the log failed: {e}"
            ),
        }
    }
    assert_eq!(opened, bytes.len() - HEADER_LEN);
    let full = open_and_read_all(dir.path(), &bytes, passphrase()).unwrap();
    let expected: Values = written
        .into_iter()
        // v1 of a/one is deleted, v1 of b/two destroyed.
        .filter(|((_, v), _)| *v != 1)
        .collect();
    assert_eq!(full, expected);
}

#[test]
fn torn_tail_is_cut_off_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_store(dir.path());
    let path = dir.path().join("torn.tyrum");
    let torn_len = bytes.len() - 5;
    std::fs::write(&path, &bytes[..torn_len]).unwrap();
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let v = p.write(&loc("c/new"), &secret(b"after-the-tear")).unwrap();
    drop(p);
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let got = p.read(&loc("c/new"), VersionSelector::Latest).unwrap();
    assert_eq!(
        (got.version, got.value.expose_secret()),
        (v, &b"after-the-tear"[..])
    );
    // The torn record is gone: the file is a clean prefix plus the new one.
    let after = std::fs::read(&path).unwrap();
    assert!(after.len() < torn_len + 200 && after.len() > torn_len - 100);
}

#[test]
fn every_single_bit_flip_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, written) = small_store(dir.path());
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        match open_and_read_all(dir.path(), &flipped, passphrase()) {
            Err(_) => {}
            Ok(read) => {
                assert_only_written_values(&read, &written, &format!("bit {bit}"));
                panic!("flipping bit {bit} (byte {}) went unnoticed", bit / 8);
            }
        }
    }
}

/// Splits a store's log into frames (FORMAT.md: u32 length, its
/// complement, body).
fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(bytes[at..at + 8 + len].to_vec());
        at += 8 + len;
    }
    out
}

#[test]
fn record_moved_to_another_locator_version_or_store_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_store(dir.path());
    let first = frames(&bytes)[0].clone(); // put a/one v1
    assert_eq!(&first[8 + 11..8 + 16], b"a/one");

    // Same record, relabelled as locator "z/one" (a new locator, version 1).
    let mut relabelled = first.clone();
    relabelled[8 + 11] = b'z';
    // Same record, relabelled as version 9 of a/one (after v2: in order).
    let mut renumbered = first.clone();
    renumbered[8 + 1..8 + 9].copy_from_slice(&9u64.to_le_bytes());
    // Same record appended to another store that has no a/one yet.
    let other_dir = tempfile::tempdir().unwrap();
    let other_path = other_dir.path().join("other.tyrum");
    FileProvider::open_with(&other_path, passphrase(), options()).unwrap();
    let other = std::fs::read(&other_path).unwrap();

    for (name, base, record) in [
        ("another locator", &bytes, relabelled),
        ("another version", &bytes, renumbered),
        ("another store", &other, first),
    ] {
        let mut spliced = base.clone();
        spliced.extend_from_slice(&record);
        let err = open_and_read_all(dir.path(), &spliced, passphrase()).unwrap_err();
        assert!(err.contains("cannot decrypt"), "{name}: {err}");
    }
}

fn with_kdf(bytes: &[u8], memory_kib: u32, passes: u32, lanes: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[27..31].copy_from_slice(&memory_kib.to_le_bytes());
    out[31..35].copy_from_slice(&passes.to_le_bytes());
    out[35..39].copy_from_slice(&lanes.to_le_bytes());
    out
}

#[test]
fn hostile_kdf_parameters_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_store(dir.path());
    let path = dir.path().join("hostile.tyrum");
    // 4 TiB and 2^32 - 1 passes: Argon2id would allocate for minutes or
    // abort the process; the default caps refuse it before deriving.
    for (params, name) in [
        ((u32::MAX, u32::MAX, 1), "memory_kib"),
        ((64, u32::MAX, 1), "passes"),
        ((1 << 20, 3, 1 << 24), "lanes"),
    ] {
        std::fs::write(&path, with_kdf(&bytes, params.0, params.1, params.2)).unwrap();
        let err = FileProvider::open_with(&path, passphrase(), FileOptions::default()).unwrap_err();
        assert!(
            matches!(&err, FileError::KdfLimitExceeded { name: n, .. } if *n == name),
            "{params:?}: {err}"
        );
    }
    // Caps are the caller's: a tighter cap refuses the store's own params.
    std::fs::write(&path, &bytes).unwrap();
    let tight = FileOptions::default().kdf_limits(KdfLimits::new(4, 1, 1));
    let err = FileProvider::open_with(&path, passphrase(), tight).unwrap_err();
    assert!(matches!(err, FileError::KdfLimitExceeded { .. }), "{err}");
}

#[test]
fn empty_and_foreign_files_are_not_stores_and_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("empty", &b""[..]),
        ("text", b"hello, this is not a store\n"),
        (
            "json",
            br#"{"format":"tyrum-secrets-catalog","version":1,"entries":{}}"#,
        ),
        ("zeros", &[0u8; 4096]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = FileProvider::open_with(&path, passphrase(), options()).unwrap_err();
        assert!(matches!(err, FileError::NotAStore { .. }), "{name}: {err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{name} was modified"
        );
    }
    let path = dir.path().join("magic-only");
    std::fs::write(&path, b"TYRUMSEC").unwrap();
    let err = FileProvider::open_with(&path, passphrase(), options()).unwrap_err();
    assert!(matches!(err, FileError::Corrupt { .. }), "{err}");
}

#[test]
fn a_store_refuses_the_other_kind_of_key() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = small_store(dir.path());
    let err = open_and_read_all(
        dir.path(),
        &bytes,
        KeySource::Key(StoreKey::from_bytes([7; 32])),
    )
    .unwrap_err();
    assert!(err.contains("protected by a passphrase"), "{err}");
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store.tyrum")
}

#[test]
fn canary_never_appears_in_debug_errors_or_the_file() {
    const CANARY: &str = "CANARY-7d41f0c2-leak-check";
    const PASS_CANARY: &str = "CANARY-passphrase-19be";
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let source = || KeySource::passphrase(PASS_CANARY);
    let p = FileProvider::open_with(&path, source(), options()).unwrap();
    let locator = loc("leak/check");
    let v1 = p.write(&locator, &secret(CANARY.as_bytes())).unwrap();
    p.write(&locator, &secret(CANARY.as_bytes())).unwrap();
    p.delete(&locator, v1).unwrap();

    let mut texts = vec![
        format!("{p:?}"),
        format!("{p:#?}"),
        format!("{:?}", source()),
    ];
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(
            FileProvider::open_with(&path, KeySource::passphrase("wrong"), options()).unwrap_err(),
        ),
        Box::new(p.read(&locator, VersionSelector::Exact(v1)).unwrap_err()),
        Box::new(
            p.read(&loc("leak/none"), VersionSelector::Latest)
                .unwrap_err(),
        ),
        Box::new(
            p.write(&locator, &secret(&vec![b'x'; (16 << 20) + 1]))
                .unwrap_err(),
        ),
    ];
    for e in &errors {
        texts.push(format!("{e} {e:?}"));
    }
    texts.push(format!(
        "{:?}",
        p.read(&locator, VersionSelector::Latest).unwrap()
    ));
    for text in &texts {
        assert!(
            !text.contains(CANARY) && !text.contains(PASS_CANARY),
            "leak in: {text}"
        );
    }
    for file in [path.clone(), path.with_file_name("store.tyrum.lock")] {
        let bytes = std::fs::read(&file).unwrap();
        for needle in [CANARY, PASS_CANARY] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds a canary in the clear",
                file.display()
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn store_and_lock_files_are_private_even_after_a_rewrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    p.write(&loc("m/one"), &secret(b"mode-check-value"))
        .unwrap();
    let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&path.with_file_name("store.tyrum.lock")), 0o600);
    p.compact().unwrap();
    assert_eq!(mode(&path), 0o600);
}

/// The sealed bytes (nonce, ciphertext, tag) of the only record whose
/// locator is `name`.
fn sealed_of(bytes: &[u8], name: &str) -> Vec<u8> {
    let frame = frames(bytes)
        .into_iter()
        .find(|f| &f[8 + 11..8 + 11 + name.len()] == name.as_bytes() && f[8] == 1)
        .unwrap();
    frame[8 + 11 + name.len()..].to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn destroyed_ciphertext_leaves_the_file_at_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let gone = loc("d/gone");
    let v1 = p.write(&gone, &secret(b"destroy-me-please")).unwrap();
    p.write(&loc("d/kept"), &secret(b"keep-me-around")).unwrap();
    let sealed = sealed_of(&std::fs::read(&path).unwrap(), "d/gone");
    p.destroy(&gone, v1).unwrap();
    assert!(
        contains(&std::fs::read(&path).unwrap(), &sealed),
        "deferred destroy rewrote early"
    );
    p.compact().unwrap();
    assert!(!contains(&std::fs::read(&path).unwrap(), &sealed));
    // Version numbers are never reused after compaction.
    let v2 = p.write(&gone, &secret(b"second-life")).unwrap();
    assert!(v2 > v1);

    // The default destroys at once.
    let path2 = dir.path().join("eager.tyrum");
    let eager =
        FileProvider::open_with(&path2, passphrase(), options().compact_on_destroy(true)).unwrap();
    let v = eager.write(&gone, &secret(b"destroy-me-now")).unwrap();
    let sealed = sealed_of(&std::fs::read(&path2).unwrap(), "d/gone");
    eager.destroy(&gone, v).unwrap();
    assert!(!contains(&std::fs::read(&path2).unwrap(), &sealed));
    drop(eager);
    let reopened = FileProvider::open_with(&path2, passphrase(), options()).unwrap();
    assert!(reopened.write(&gone, &secret(b"next")).unwrap() > v);
}

#[test]
fn compaction_removes_temporaries_of_crashed_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    p.write(&loc("t/one"), &secret(b"temp-check-value"))
        .unwrap();
    let stale = dir.path().join("store.tyrum.tmp-0123456789abcdef");
    let unrelated = dir.path().join("other.tyrum.tmp-0123456789abcdef");
    std::fs::write(&stale, b"ciphertext of a crashed compaction").unwrap();
    std::fs::write(&unrelated, b"not ours").unwrap();
    p.compact().unwrap();
    assert!(
        !stale.exists(),
        "a crashed rewrite's temporary file survived"
    );
    assert!(unrelated.exists(), "removed another store's file");
}

#[test]
fn change_key_keeps_the_values_under_a_new_header_and_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let mut p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    p.write(&loc("k/one"), &secret(b"value-one-1111")).unwrap();
    p.write(&loc("k/two"), &secret(b"value-two-2222")).unwrap();
    let before = std::fs::read(&path).unwrap();
    p.change_key(KeySource::passphrase("a brand new passphrase"))
        .unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_ne!(before[..HEADER_LEN], after[..HEADER_LEN]);
    // Same store id; one generation on (a new chain).
    assert_eq!(before[10..26], after[10..26]);
    let generation = |b: &[u8]| u64::from_le_bytes(b[55..63].try_into().unwrap());
    assert_eq!(generation(&after), generation(&before) + 1);
    assert_eq!(frames(&before).len(), frames(&after).len());
    let err = FileProvider::open_with(&path, passphrase(), options()).unwrap_err();
    assert!(matches!(err, FileError::Decrypt { .. }));
    let q = FileProvider::open_with(
        &path,
        KeySource::passphrase("a brand new passphrase"),
        options(),
    )
    .unwrap();
    assert_eq!(
        q.read(&loc("k/two"), VersionSelector::Latest)
            .unwrap()
            .value
            .expose_secret(),
        b"value-two-2222"
    );
    // A passphrase store can move to a raw key and back.
    let key = [9u8; 32];
    p.change_key(KeySource::Key(StoreKey::from_bytes(key)))
        .unwrap();
    let r = FileProvider::open_with(&path, KeySource::Key(StoreKey::from_bytes(key)), options())
        .unwrap();
    assert_eq!(r.list().unwrap().len(), 2);
}

#[test]
fn rotate_data_key_re_encrypts_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let p = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    p.write(&loc("r/one"), &secret(b"rotate-value-1")).unwrap();
    let v = p.write(&loc("r/one"), &secret(b"rotate-value-2")).unwrap();
    p.delete(&loc("r/one"), Version::FIRST).unwrap();
    let old_sealed = sealed_of(&std::fs::read(&path).unwrap(), "r/one");
    p.rotate_data_key().unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(
        !contains(&after, &old_sealed[24..]),
        "old ciphertext survived rotation"
    );
    let q = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let got = q.read(&loc("r/one"), VersionSelector::Latest).unwrap();
    assert_eq!(
        (got.version, got.value.expose_secret()),
        (v, &b"rotate-value-2"[..])
    );
    assert!(
        q.read(&loc("r/one"), VersionSelector::Exact(Version::FIRST))
            .is_err()
    );
    assert_eq!(
        p.read(&loc("r/one"), VersionSelector::Latest)
            .unwrap()
            .version,
        v
    );
}

#[test]
fn another_provider_sees_writes_and_compactions_without_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(dir.path());
    let a = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let b = FileProvider::open_with(&path, passphrase(), options()).unwrap();
    let l = loc("s/shared");
    let v1 = a.write(&l, &secret(b"from-a-first")).unwrap();
    assert_eq!(b.read(&l, VersionSelector::Latest).unwrap().version, v1);
    let v2 = b.write(&l, &secret(b"from-b-second")).unwrap();
    assert_eq!(a.read(&l, VersionSelector::Latest).unwrap().version, v2);
    a.destroy(&l, v1).unwrap();
    a.compact().unwrap();
    assert!(b.read(&l, VersionSelector::Exact(v1)).is_err());
    let v3 = b.write(&l, &secret(b"from-b-third")).unwrap();
    assert!(v3 > v2);
    assert_eq!(
        a.read(&l, VersionSelector::Latest)
            .unwrap()
            .value
            .expose_secret(),
        b"from-b-third"
    );
}

#[test]
fn a_key_file_opens_the_store_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("store.key");
    StoreKey::write_new_key_file(&key_path).unwrap();
    let path = store_path(dir.path());
    let p =
        FileProvider::open_with(&path, KeySource::KeyFile(key_path.clone()), options()).unwrap();
    p.write(&loc("f/one"), &secret(b"key-file-value")).unwrap();
    drop(p);
    let q = FileProvider::open_with(&path, KeySource::KeyFile(key_path), options()).unwrap();
    assert_eq!(q.list().unwrap(), vec![loc("f/one")]);
    let other = dir.path().join("other.key");
    StoreKey::write_new_key_file(&other).unwrap();
    let err = FileProvider::open_with(&path, KeySource::KeyFile(other), options()).unwrap_err();
    assert!(matches!(err, FileError::Decrypt { .. }));
}

/// Runs the test `name` of this binary again in a child process whose
/// address space is capped at 1 GiB (`ulimit -v`), with `TYRUM_CAPPED_CHILD`
/// set; returns whether this is that child.
fn in_capped_child(name: &str) -> bool {
    if std::env::var_os("TYRUM_CAPPED_CHILD").is_some() {
        return true;
    }
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1048576 && exec \"$0\" --exact {name} --test-threads 1"
        ))
        .arg(std::env::current_exe().unwrap())
        .env("TYRUM_CAPPED_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "capped child failed ({:?}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

#[cfg(unix)]
#[test]
fn special_and_huge_foreign_files_are_refused_without_reading_them_whole() {
    if !in_capped_child("special_and_huge_foreign_files_are_refused_without_reading_them_whole") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A foreign file far larger than the child may allocate (sparse: it
    // takes no disk space).
    let huge = dir.path().join("disk.img");
    let file = std::fs::File::create(&huge).unwrap();
    std::io::Write::write_all(&mut &file, b"not a store at all").unwrap();
    file.set_len(4 << 30).unwrap();
    drop(file);
    // A FIFO nobody writes to: reading it would block forever.
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for path in [huge.as_path(), Path::new("/dev/zero"), fifo.as_path()] {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_owned();
        std::thread::spawn(move || {
            let result = FileProvider::open_with(&owned, passphrase(), options());
            let _ = tx.send(result.map(drop));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("opening {} hangs", path.display()));
        assert!(
            matches!(result, Err(FileError::NotAStore { .. })),
            "{}: {result:?}",
            path.display()
        );
    }
}
