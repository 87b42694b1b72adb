//! The auth-profile store contract fails stores that break it: each broken
//! store here must make the named check panic.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{
    AuthProfile, AuthProfileError, AuthProfileStore, MemoryAuthProfileStore, Pin, PinKey,
    ProfileId, ProfileSet, RefreshLock,
};
use tyrum_secrets_testkit::profile_store;

/// A memory store with one deliberate defect.
#[derive(Debug)]
struct Broken {
    inner: MemoryAuthProfileStore,
    defect: Defect,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Defect {
    /// Writes whatever revision the caller read.
    IgnoresExpectedRevision,
    /// Hands out a refresh lock to everyone.
    LockExcludesNobody,
    /// Forgets pins when a profile is removed... by keeping them.
    KeepsPinsOfRemovedProfiles,
}

impl AuthProfileStore for Broken {
    fn snapshot(&self) -> Result<Arc<ProfileSet>, AuthProfileError> {
        self.inner.snapshot()
    }

    fn compare_and_set(
        &self,
        profile: AuthProfile,
        expected: Option<u64>,
    ) -> Result<u64, AuthProfileError> {
        let expected = match self.defect {
            Defect::IgnoresExpectedRevision => self.inner.get(&profile.id)?.map(|p| p.revision),
            _ => expected,
        };
        self.inner.compare_and_set(profile, expected)
    }

    fn remove(&self, id: &ProfileId, expected: u64) -> Result<(), AuthProfileError> {
        if self.defect == Defect::KeepsPinsOfRemovedProfiles {
            let pins: Vec<(PinKey, Pin)> = self
                .inner
                .snapshot()?
                .pins()
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect();
            self.inner.remove(id, expected)?;
            for (key, pin) in pins {
                self.inner.set_pin(key, Some(pin))?;
            }
            return Ok(());
        }
        self.inner.remove(id, expected)
    }

    fn set_pin(&self, key: PinKey, pin: Option<Pin>) -> Result<(), AuthProfileError> {
        self.inner.set_pin(key, pin)
    }

    fn lock_refresh(
        &self,
        id: &ProfileId,
        timeout: Duration,
    ) -> Result<RefreshLock, AuthProfileError> {
        match self.defect {
            Defect::LockExcludesNobody => Ok(RefreshLock::new(())),
            _ => self.inner.lock_refresh(id, timeout),
        }
    }
}

fn fails(defect: Defect, check: fn(&dyn profile_store::ProfileStoreFixture)) {
    let store = Broken {
        inner: MemoryAuthProfileStore::new(),
        defect,
    };
    let result = catch_unwind(AssertUnwindSafe(|| check(&store)));
    assert!(result.is_err(), "{defect:?} passed the check");
}

#[test]
fn a_store_ignoring_revisions_fails_the_contract() {
    fails(
        Defect::IgnoresExpectedRevision,
        profile_store::updates_need_the_stored_revision,
    );
    fails(
        Defect::IgnoresExpectedRevision,
        profile_store::concurrent_writers_lose_nothing,
    );
}

#[test]
fn a_refresh_lock_that_excludes_nobody_fails_the_contract() {
    fails(
        Defect::LockExcludesNobody,
        profile_store::refresh_locks_exclude_and_time_out,
    );
}

#[test]
fn a_store_keeping_pins_of_removed_profiles_fails_the_contract() {
    fails(
        Defect::KeepsPinsOfRemovedProfiles,
        profile_store::removal_checks_the_revision_and_drops_pins,
    );
}
