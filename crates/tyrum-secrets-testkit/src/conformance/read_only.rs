//! Checks for read-only providers, given values they are known to hold.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "checks report a broken contract by panicking, like assert!"
)]

use super::{describe, fresh_locator, is_refusal, secret};
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, Version, VersionSelector,
};

/// Every fixture reads back, latest and at the version `Latest` reported.
pub fn fixtures_read_back(p: &dyn SecretProvider, fixtures: &[(Locator, SecretBytes)]) {
    assert!(
        !fixtures.is_empty(),
        "give the read-only suite at least one fixture"
    );
    for (locator, value) in fixtures {
        let got = p
            .read(locator, VersionSelector::Latest)
            .unwrap_or_else(|e| panic!("read of {locator} failed: {e}"));
        assert!(
            got.value.expose_secret() == value.expose_secret(),
            "{locator} reads another value"
        );
        let exact = p
            .read(locator, VersionSelector::Exact(got.version))
            .unwrap_or_else(|e| panic!("exact read of {locator} failed: {e}"));
        assert!(
            exact.value.expose_secret() == value.expose_secret(),
            "{locator} at {} reads another value",
            got.version
        );
    }
    if let Ok(listed) = p.list() {
        for (locator, _) in fixtures {
            assert!(listed.contains(locator), "list() misses {locator}");
        }
    }
}

/// Writes, deletes and destroys are refused with `ReadOnly` or
/// `Unsupported`, and the capabilities say read-only.
pub fn writes_are_refused(p: &dyn SecretProvider, fixtures: &[(Locator, SecretBytes)]) {
    assert!(
        p.capabilities().read_only,
        "capabilities() does not report read_only"
    );
    let (locator, original) = &fixtures[0];
    let write = p.write(locator, &secret(b"overwritten-value-1"));
    assert!(
        matches!(&write, Err(e) if is_refusal(e)),
        "write: {}",
        describe(&write)
    );
    for result in [
        p.delete(locator, Version::FIRST),
        p.destroy(locator, Version::FIRST),
    ] {
        assert!(
            matches!(&result, Err(e) if is_refusal(e)),
            "delete/destroy: {}",
            describe(&result)
        );
    }
    let got = p
        .read(locator, VersionSelector::Latest)
        .expect("fixture still reads");
    assert!(
        got.value.expose_secret() == original.expose_secret(),
        "a refused write changed the value"
    );
}

/// An absent locator gives `NotFound`.
pub fn missing_locator_is_not_found(p: &dyn SecretProvider, _fixtures: &[(Locator, SecretBytes)]) {
    let result = p.read(&fresh_locator("missing"), VersionSelector::Latest);
    assert!(
        matches!(result, Err(ProviderError::NotFound { .. })),
        "missing locator: {}",
        describe(&result)
    );
}

/// Many threads reading at once all get the whole value.
pub fn concurrent_readers(p: &dyn SecretProvider, fixtures: &[(Locator, SecretBytes)]) {
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    for (locator, value) in fixtures {
                        let got = p
                            .read(locator, VersionSelector::Latest)
                            .expect("concurrent read");
                        assert!(
                            got.value.expose_secret() == value.expose_secret(),
                            "concurrent read of {locator} differs"
                        );
                    }
                }
            });
        }
    });
}

/// `Debug` output never shows a fixture value.
pub fn debug_output_hides_values(p: &dyn SecretProvider, fixtures: &[(Locator, SecretBytes)]) {
    for (locator, value) in fixtures {
        let _ = p.read(locator, VersionSelector::Latest);
        let debug = format!("{p:?} {p:#?}");
        let needle = String::from_utf8_lossy(value.expose_secret()).into_owned();
        assert!(
            needle.len() < 4 || !debug.contains(&needle),
            "Debug output shows the value at {locator}"
        );
    }
}
