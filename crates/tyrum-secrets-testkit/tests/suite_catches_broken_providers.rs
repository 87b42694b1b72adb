//! The conformance suite fails providers that break the contract: each
//! broken provider here must make the named check panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tyrum_secrets_core::{
    Capabilities, ExposeSecret, Locator, MemoryProvider, Persistence, ProviderError, SecretBytes,
    SecretProvider, Version, VersionSelector, VersionedSecret,
};
use tyrum_secrets_testkit::conformance::{read_only, secret, writable};

/// A memory provider with one deliberate defect.
struct Broken {
    inner: MemoryProvider,
    defect: Defect,
    last_value: std::sync::Mutex<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Defect {
    DebugShowsLastValue,
    TruncatesLargeValues,
    LatestIsFirstVersion,
    ClaimsReadOnlyButWrites,
}

impl fmt::Debug for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.defect == Defect::DebugShowsLastValue {
            let last = self.last_value.lock().unwrap();
            return write!(f, "Broken({})", String::from_utf8_lossy(&last));
        }
        f.write_str("Broken")
    }
}

impl SecretProvider for Broken {
    fn capabilities(&self) -> Capabilities {
        match self.defect {
            Defect::ClaimsReadOnlyButWrites => Capabilities::read_only(Persistence::Process, true),
            _ => self.inner.capabilities(),
        }
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let version = match (self.defect, version) {
            (Defect::LatestIsFirstVersion, VersionSelector::Latest) => {
                VersionSelector::Exact(Version::FIRST)
            }
            (_, v) => v,
        };
        self.inner.read(locator, version)
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        *self.last_value.lock().unwrap() = value.expose_secret().to_vec();
        if self.defect == Defect::TruncatesLargeValues && value.expose_secret().len() > 65_536 {
            return self
                .inner
                .write(locator, &secret(&value.expose_secret()[..65_536]));
        }
        self.inner.write(locator, value)
    }
}

fn broken(defect: Defect) -> Broken {
    Broken {
        inner: MemoryProvider::new(),
        defect,
        last_value: Default::default(),
    }
}

fn fails(check: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(check)).is_err()
}

#[test]
fn leaky_debug_fails_the_debug_check() {
    assert!(fails(|| writable::debug_output_hides_values(&broken(
        Defect::DebugShowsLastValue
    ))));
    assert!(!fails(|| writable::debug_output_hides_values(
        &MemoryProvider::new()
    )));
}

#[test]
fn truncated_large_values_fail_the_large_value_check() {
    assert!(fails(|| writable::large_value(&broken(
        Defect::TruncatesLargeValues
    ))));
}

#[test]
fn stale_latest_fails_the_overwrite_check() {
    assert!(fails(|| writable::overwrite_moves_latest(&broken(
        Defect::LatestIsFirstVersion
    ))));
}

#[test]
fn writable_read_only_provider_fails_the_refusal_check() {
    let provider = broken(Defect::ClaimsReadOnlyButWrites);
    let locator = Locator::new("fixture").unwrap();
    provider
        .write(&locator, &secret(b"fixture-value-1"))
        .unwrap();
    let fixtures = vec![(locator, secret(b"fixture-value-1"))];
    assert!(fails(|| read_only::writes_are_refused(
        &provider, &fixtures
    )));
}
