//! The conformance suite fails providers that get version history or
//! persistence wrong: each flawed store here must make the named check
//! panic, and the same store without its flaw must pass the whole suite.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};

use tyrum_secrets_core::{
    Capabilities, ExposeSecret, Locator, Persistence, ProviderError, SecretBytes, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionState, VersionedSecret,
};
use tyrum_secrets_testkit::conformance::{Fixture, writable};

/// One rule of version history the store breaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flaw {
    None,
    /// Destroying the newest version frees its number for the next write.
    ReusesDestroyedNumbers,
    /// `versions()` keeps listing destroyed versions (as deleted).
    ListsDestroyedVersions,
    /// `Latest` fails with `Unavailable` when the newest version is gone.
    LatestUnavailableAfterDelete,
    /// A reopened store starts empty.
    ForgetsOnReopen,
}

struct Record {
    version: u64,
    /// `None` once destroyed.
    value: Option<Vec<u8>>,
    deleted: bool,
}

type State = Arc<Mutex<BTreeMap<Locator, Vec<Record>>>>;

/// A durable-looking versioned store whose state outlives the provider
/// value, so a fixture can reopen it.
struct Toy {
    state: State,
    flaw: Flaw,
}

impl fmt::Debug for Toy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toy").field("flaw", &self.flaw).finish()
    }
}

impl Toy {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<Locator, Vec<Record>>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_found(locator: &Locator) -> ProviderError {
    ProviderError::NotFound {
        locator: locator.clone(),
    }
}

fn version_not_found(locator: &Locator, version: Version) -> ProviderError {
    ProviderError::VersionNotFound {
        locator: locator.clone(),
        version,
    }
}

fn readable(record: &Record) -> bool {
    record.value.is_some() && !record.deleted
}

impl SecretProvider for Toy {
    fn capabilities(&self) -> Capabilities {
        Capabilities::writable(Persistence::Durable)
    }

    fn read(
        &self,
        locator: &Locator,
        selector: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let state = self.lock();
        let records = state.get(locator).ok_or_else(|| not_found(locator))?;
        let found = match selector {
            VersionSelector::Exact(v) => records
                .iter()
                .find(|r| r.version == v.get() && readable(r))
                .ok_or_else(|| version_not_found(locator, v))?,
            VersionSelector::Latest => {
                if self.flaw == Flaw::LatestUnavailableAfterDelete
                    && records.last().is_some_and(|r| !readable(r))
                {
                    return Err(ProviderError::Unavailable {
                        message: "the newest version is gone".to_owned(),
                    });
                }
                records
                    .iter()
                    .rev()
                    .find(|r| readable(r))
                    .ok_or_else(|| not_found(locator))?
            }
        };
        Ok(VersionedSecret {
            version: Version::new(found.version).unwrap(),
            value: SecretBytes::from(found.value.clone().unwrap()),
        })
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        let mut state = self.lock();
        let records = state.entry(locator.clone()).or_default();
        let next = records.last().map_or(1, |r| r.version + 1);
        records.push(Record {
            version: next,
            value: Some(value.expose_secret().to_vec()),
            deleted: false,
        });
        Ok(Version::new(next).unwrap())
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let mut state = self.lock();
        let records = state.get_mut(locator).ok_or_else(|| not_found(locator))?;
        let record = records
            .iter_mut()
            .find(|r| r.version == version.get() && readable(r))
            .ok_or_else(|| version_not_found(locator, version))?;
        record.deleted = true;
        Ok(())
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let mut state = self.lock();
        let records = state.get_mut(locator).ok_or_else(|| not_found(locator))?;
        let index = records
            .iter()
            .position(|r| r.version == version.get() && r.value.is_some())
            .ok_or_else(|| version_not_found(locator, version))?;
        if self.flaw == Flaw::ReusesDestroyedNumbers {
            // Forgets the record, and with it that the number was used.
            records.remove(index);
        } else {
            records[index].value = None;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        Ok(self
            .lock()
            .iter()
            .filter(|(_, records)| records.iter().any(readable))
            .map(|(locator, _)| locator.clone())
            .collect())
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let state = self.lock();
        let records = state.get(locator).ok_or_else(|| not_found(locator))?;
        Ok(records
            .iter()
            .filter(|r| r.value.is_some() || self.flaw == Flaw::ListsDestroyedVersions)
            .map(|r| VersionInfo {
                version: Version::new(r.version).unwrap(),
                state: if readable(r) {
                    VersionState::Live
                } else {
                    VersionState::Deleted
                },
            })
            .collect())
    }
}

/// A reopening fixture over a toy store with `flaw`.
fn toy(flaw: Flaw) -> Fixture {
    let state = State::default();
    Fixture::reopening(move || Toy {
        state: if flaw == Flaw::ForgetsOnReopen {
            State::default()
        } else {
            Arc::clone(&state)
        },
        flaw,
    })
}

fn fails(check: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(check)).is_err()
}

#[test]
fn a_reused_version_number_fails_the_reuse_check() {
    assert!(fails(|| writable::destroyed_versions_are_not_reused(
        toy(Flaw::ReusesDestroyedNumbers).provider()
    )));
    assert!(!fails(|| writable::destroyed_versions_are_not_reused(
        toy(Flaw::None).provider()
    )));
}

#[test]
fn destroyed_versions_in_the_version_list_fail_the_list_check() {
    assert!(fails(|| {
        writable::destroyed_versions_leave_the_version_list(
            toy(Flaw::ListsDestroyedVersions).provider(),
        )
    }));
    assert!(!fails(|| {
        writable::destroyed_versions_leave_the_version_list(toy(Flaw::None).provider())
    }));
}

#[test]
fn an_unavailable_latest_after_a_delete_fails_the_latest_check() {
    assert!(fails(|| writable::latest_skips_deleted_versions(
        toy(Flaw::LatestUnavailableAfterDelete).provider()
    )));
    assert!(!fails(|| writable::latest_skips_deleted_versions(
        toy(Flaw::None).provider()
    )));
}

#[test]
fn a_store_that_forgets_on_reopen_fails_the_reopen_check() {
    assert!(fails(|| writable::data_survives_reopen(&mut toy(
        Flaw::ForgetsOnReopen
    ))));
    assert!(!fails(|| writable::data_survives_reopen(&mut toy(
        Flaw::None
    ))));
}

#[test]
fn a_durable_store_without_a_reopening_fixture_fails_the_reopen_check() {
    let mut fixture = Fixture::new(Toy {
        state: State::default(),
        flaw: Flaw::None,
    });
    assert!(fails(|| writable::data_survives_reopen(&mut fixture)));
}

#[test]
fn a_fixture_drops_its_guard_after_its_provider() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let fixture = toy(Flaw::None).owning(dir);
    assert!(path.exists());
    drop(fixture);
    assert!(!path.exists(), "the fixture leaked its temporary directory");
}

/// The toy without a flaw passes every check: the checks above fail for
/// the flaw, not for the store.
mod flawless {
    tyrum_secrets_testkit::provider_conformance!(super::toy(super::Flaw::None));
}
