//! Checks for providers that can write.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "checks report a broken contract by panicking, like assert!"
)]

use std::collections::HashSet;
use std::sync::Arc;

mod history;

pub use history::{
    data_survives_reopen, destroyed_versions_are_not_reused,
    destroyed_versions_leave_the_version_list, latest_skips_deleted_versions,
};

use super::{describe, fresh_locator, secret};
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretProvider, Version, VersionSelector, VersionState,
};

fn write(p: &dyn SecretProvider, locator: &Locator, value: &[u8]) -> Version {
    p.write(locator, &secret(value))
        .unwrap_or_else(|e| panic!("write to {locator} failed: {e}"))
}

fn read(p: &dyn SecretProvider, locator: &Locator, version: VersionSelector) -> (Version, Vec<u8>) {
    let got = p
        .read(locator, version)
        .unwrap_or_else(|e| panic!("read of {locator} at {version:?} failed: {e}"));
    (got.version, got.value.expose_secret().to_vec())
}

fn assert_round_trip(p: &dyn SecretProvider, name: &str, value: &[u8]) {
    let locator = fresh_locator(name);
    let version = write(p, &locator, value);
    let (latest, bytes) = read(p, &locator, VersionSelector::Latest);
    assert_eq!(
        latest, version,
        "{name}: latest version differs from the one written"
    );
    assert!(
        bytes == value,
        "{name}: latest value differs from the one written ({} vs {} bytes)",
        bytes.len(),
        value.len()
    );
    let (exact, bytes) = read(p, &locator, VersionSelector::Exact(version));
    assert_eq!(
        exact, version,
        "{name}: exact read returned another version"
    );
    assert!(
        bytes == value,
        "{name}: exact value differs from the one written"
    );
}

/// A written value reads back, latest and exact.
pub fn round_trip(p: &dyn SecretProvider) {
    assert!(
        !p.capabilities().read_only,
        "round_trip: provider reports read_only"
    );
    assert_round_trip(p, "round-trip", b"sk-conformance-round-trip-0001");
}

/// Every write is a new, larger version; old versions stay readable on
/// versioned providers and `versions` lists them.
pub fn versions_are_kept(p: &dyn SecretProvider) {
    let locator = fresh_locator("versions");
    let values: [&[u8]; 3] = [b"value-one-aaaa", b"value-two-bbbb", b"value-three-cccc"];
    let versions: Vec<Version> = values.iter().map(|v| write(p, &locator, v)).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions do not grow: {versions:?}"
    );
    if p.capabilities().versioned {
        for (version, value) in versions.iter().zip(values) {
            let (got, bytes) = read(p, &locator, VersionSelector::Exact(*version));
            assert_eq!(got, *version);
            assert!(bytes == value, "version {version} reads another value");
        }
        match p.versions(&locator) {
            Ok(infos) => {
                let live: Vec<Version> = infos
                    .iter()
                    .filter(|i| i.state == VersionState::Live)
                    .map(|i| i.version)
                    .collect();
                assert_eq!(
                    live, versions,
                    "versions() does not list the written versions oldest first"
                );
            }
            Err(ProviderError::Unsupported { .. }) => {}
            Err(e) => panic!("versions() failed: {e}"),
        }
    } else {
        let old = p.read(&locator, VersionSelector::Exact(versions[0]));
        assert!(
            matches!(old, Err(ProviderError::VersionNotFound { .. })),
            "unversioned provider returned {} for an overwritten version",
            describe(&old)
        );
    }
}

/// A second write changes what `Latest` reads.
pub fn overwrite_moves_latest(p: &dyn SecretProvider) {
    let locator = fresh_locator("overwrite");
    write(p, &locator, b"first-value-1234");
    let v2 = write(p, &locator, b"second-value-5678");
    let (latest, bytes) = read(p, &locator, VersionSelector::Latest);
    assert_eq!(latest, v2);
    assert_eq!(bytes, b"second-value-5678");
}

/// Deleting or destroying a version makes it unreadable and leaves the
/// others alone; providers without these operations say `Unsupported`.
pub fn delete_and_destroy(p: &dyn SecretProvider) {
    let locator = fresh_locator("delete");
    let v1 = write(p, &locator, b"delete-me-first-1");
    let v2 = write(p, &locator, b"keep-me-second-22");
    let v3 = write(p, &locator, b"destroy-me-third-3");
    for (name, op, version) in [("delete", 0, v1), ("destroy", 1, v3)] {
        let result = if op == 0 {
            p.delete(&locator, version)
        } else {
            p.destroy(&locator, version)
        };
        match result {
            Ok(()) => {
                let gone = p.read(&locator, VersionSelector::Exact(version));
                assert!(
                    matches!(gone, Err(ProviderError::VersionNotFound { .. })),
                    "{name}d version {version} still reads: {}",
                    describe(&gone)
                );
                let again = if op == 0 {
                    p.delete(&locator, version)
                } else {
                    p.destroy(&locator, version)
                };
                if name == "destroy" {
                    assert!(
                        matches!(again, Err(ProviderError::VersionNotFound { .. })),
                        "destroying a destroyed version: {}",
                        describe(&again)
                    );
                }
            }
            Err(ProviderError::Unsupported { .. }) => {}
            Err(e) => panic!("{name} of {locator} {version} failed: {e}"),
        }
    }
    if p.capabilities().versioned {
        let (got, bytes) = read(p, &locator, VersionSelector::Exact(v2));
        assert_eq!(got, v2);
        assert_eq!(
            bytes, b"keep-me-second-22",
            "deleting other versions changed v2"
        );
    }
    let missing = fresh_locator("delete-missing");
    for result in [p.delete(&missing, v1), p.destroy(&missing, v1)] {
        assert!(
            matches!(
                result,
                Err(ProviderError::NotFound { .. }
                    | ProviderError::VersionNotFound { .. }
                    | ProviderError::Unsupported { .. })
            ),
            "deleting at a missing locator: {}",
            describe(&result)
        );
    }
}

/// `list` reports locators with a readable version.
pub fn list_reports_live_locators(p: &dyn SecretProvider) {
    let a = fresh_locator("list-a");
    let b = fresh_locator("list-b");
    let va = write(p, &a, b"list-value-aaaa");
    write(p, &b, b"list-value-bbbb");
    match p.list() {
        Ok(listed) => {
            assert!(
                listed.contains(&a) && listed.contains(&b),
                "list() misses written locators"
            );
            if p.destroy(&a, va).is_ok() {
                let listed = p.list().unwrap_or_else(|e| panic!("list() failed: {e}"));
                assert!(
                    !listed.contains(&a),
                    "list() reports a locator with no readable version"
                );
                assert!(listed.contains(&b));
            }
        }
        Err(ProviderError::Unsupported { .. }) => {}
        Err(e) => panic!("list() failed: {e}"),
    }
}

/// The empty value round-trips.
pub fn empty_value(p: &dyn SecretProvider) {
    assert_round_trip(p, "empty", b"");
}

/// Unicode text round-trips byte for byte.
pub fn unicode_value(p: &dyn SecretProvider) {
    assert_round_trip(
        p,
        "unicode",
        "pässwörd-🔑-密码-пароль\u{200d}\u{0301}".as_bytes(),
    );
}

/// Every byte value, NUL and invalid UTF-8 included, round-trips.
pub fn binary_value(p: &dyn SecretProvider) {
    let mut value: Vec<u8> = (0..=255u8).collect();
    value.extend((0..=255u8).rev());
    assert_round_trip(p, "binary", &value);
}

/// A 1 MiB value round-trips, or the provider refuses values above its
/// stated limit with `ValueTooLarge` and stores one at the limit.
pub fn large_value(p: &dyn SecretProvider) {
    const MIB: usize = 1 << 20;
    let pattern = |len: usize| -> Vec<u8> { (0..len).map(|i| (i * 31 % 251) as u8).collect() };
    match p.capabilities().max_value_len {
        Some(max) if max < MIB => {
            assert_round_trip(p, "large-at-limit", &pattern(max));
            let locator = fresh_locator("large-over-limit");
            let result = p.write(&locator, &secret(&pattern(max + 1)));
            assert!(
                matches!(result, Err(ProviderError::ValueTooLarge { len, max: m }) if len == max + 1 && m == max),
                "a value over the stated limit: {}",
                describe(&result)
            );
        }
        _ => assert_round_trip(p, "large", &pattern(MIB)),
    }
}

/// Reading what was never written gives `NotFound` / `VersionNotFound`.
pub fn missing_locator_and_version(p: &dyn SecretProvider) {
    let locator = fresh_locator("missing");
    let result = p.read(&locator, VersionSelector::Latest);
    assert!(
        matches!(result, Err(ProviderError::NotFound { .. })),
        "missing locator: {}",
        describe(&result)
    );
    let version = write(p, &locator, b"only-version-1111");
    let later = version
        .next()
        .and_then(|v| v.next())
        .expect("version space");
    let result = p.read(&locator, VersionSelector::Exact(later));
    assert!(
        matches!(result, Err(ProviderError::VersionNotFound { .. })),
        "missing version: {}",
        describe(&result)
    );
}

/// Concurrent writers lose no write and readers never see a torn value.
pub fn concurrent_readers_and_writers(p: &dyn SecretProvider) {
    const WRITERS: usize = 4;
    const WRITES: usize = 10;
    let locator = Arc::new(fresh_locator("concurrent"));
    write(p, &locator, b"writer-x-write-xx-----------------");
    let value =
        |w: usize, i: usize| format!("writer-{w}-write-{i:02}-{}", "#".repeat(16)).into_bytes();
    let written: Vec<(Version, Vec<u8>)> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let locator = Arc::clone(&locator);
                s.spawn(move || {
                    for _ in 0..WRITES * 2 {
                        let (_, bytes) = read(p, &locator, VersionSelector::Latest);
                        assert_eq!(bytes.len(), 34, "a reader saw a torn value");
                        assert!(bytes.starts_with(b"writer-"), "a reader saw a torn value");
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let locator = Arc::clone(&locator);
                s.spawn(move || {
                    (0..WRITES)
                        .map(|i| (write(p, &locator, &value(w, i)), value(w, i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for r in readers {
            r.join().expect("a reader panicked");
        }
        writers
            .into_iter()
            .flat_map(|w| w.join().expect("a writer panicked"))
            .collect()
    });
    let distinct: HashSet<Version> = written.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        distinct.len(),
        WRITERS * WRITES,
        "two writes got the same version"
    );
    if p.capabilities().versioned {
        for (version, value) in &written {
            let (_, bytes) = read(p, &locator, VersionSelector::Exact(*version));
            assert!(bytes == *value, "version {version} lost its value");
        }
    }
    let newest = written
        .iter()
        .map(|(v, _)| *v)
        .max()
        .expect("writes happened");
    assert_eq!(read(p, &locator, VersionSelector::Latest).0, newest);
}

/// `Debug` output of the provider never shows a stored value.
pub fn debug_output_hides_values(p: &dyn SecretProvider) {
    let canary = b"CANARY-debug-7f3a9c1e5b";
    let locator = fresh_locator("debug");
    write(p, &locator, canary);
    let debug = format!("{p:?} {p:#?}");
    assert!(
        !debug.contains("CANARY-debug"),
        "Debug output shows a stored value"
    );
    let read = p
        .read(&locator, VersionSelector::Latest)
        .expect("read back");
    assert!(
        !format!("{read:?}").contains("CANARY-debug"),
        "VersionedSecret Debug shows the value"
    );
}
