//! The contract every [`AuthProfileStore`] keeps: compare-and-set per
//! profile, pins, removal, immutable snapshots, lossless round trips,
//! concurrent writers losing nothing, and refresh locks that exclude and
//! time out.
//!
//! Run it with [`profile_store_contract!`](crate::profile_store_contract),
//! which makes one `#[test]` per check. Each check takes a
//! [`ProfileStoreFixture`]: any store is one; a persistent store's fixture
//! also knows how to open the same storage again, so the suite checks that
//! everything survives a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a conformance suite fails by panicking"
)]

use std::sync::Barrier;
use std::time::Duration;

use tyrum_secrets_core::{
    AuthProfile, AuthProfileError, AuthProfileStore, CredentialType, DisableReason, FailureKind,
    HandleId, ModelProvider, Pin, PinKey, ProfileId, ProfileStatus, Timestamp,
};

/// A store under test, and — for a persistent one — a way to open the same
/// storage anew, as a restarted process would.
pub trait ProfileStoreFixture {
    /// The store.
    fn store(&self) -> &dyn AuthProfileStore;

    /// The same storage opened again, if the store persists (default: it
    /// does not).
    fn reopen(&self) -> Option<Box<dyn AuthProfileStore>> {
        None
    }
}

impl<S: AuthProfileStore> ProfileStoreFixture for S {
    fn store(&self) -> &dyn AuthProfileStore {
        self
    }
}

const T: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn provider() -> ModelProvider {
    ModelProvider::new("openai").unwrap()
}

fn handle() -> HandleId {
    HandleId::generate().unwrap()
}

fn api_key(id: &str) -> AuthProfile {
    AuthProfile::api_key(ProfileId::new(id).unwrap(), "agent-a", provider(), handle()).unwrap()
}

/// One profile of every credential type and status, with labels.
fn every_shape() -> Vec<AuthProfile> {
    let mut api = api_key("shape-api")
        .email("ops@example.com")
        .unwrap()
        .account("acct-1")
        .unwrap()
        .share_with("agent-b")
        .unwrap();
    api.last_good_use = Some(T);
    let mut oauth = AuthProfile::oauth(
        ProfileId::new("shape:oauth").unwrap(),
        "agent-a",
        ModelProvider::new("anthropic").unwrap(),
        handle(),
        Some(handle()),
        Some(T),
    )
    .unwrap()
    .notes("personal plan")
    .unwrap();
    oauth.status = ProfileStatus::CoolingDown {
        until: T,
        reason: FailureKind::Billing,
        failures: 4,
    };
    oauth.refresh.generation = 3;
    oauth.refresh.refreshed_at = Some(T);
    oauth.refresh.after_rejection = true;
    let mut token = AuthProfile::token(
        ProfileId::new("shape@token").unwrap(),
        "agent-c",
        provider(),
        handle(),
        None,
    )
    .unwrap();
    token.status = ProfileStatus::Disabled {
        at: T,
        reason: DisableReason::Operator {
            note: "rotating".to_owned(),
        },
    };
    vec![api, oauth, token]
}

fn pin_key(conversation: &str) -> PinKey {
    PinKey::new("agent-a", provider(), conversation)
}

fn pin(profile: &str) -> Pin {
    Pin {
        profile: ProfileId::new(profile).unwrap(),
        since: T,
    }
}

fn expect_conflict(result: Result<impl std::fmt::Debug, AuthProfileError>, what: &str) {
    match result {
        Err(AuthProfileError::Conflict { .. }) => {}
        other => panic!("{what}: expected a conflict, got {other:?}"),
    }
}

/// A new store holds nothing.
pub fn starts_empty(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let set = store.snapshot().unwrap();
    assert!(set.is_empty());
    assert_eq!(set.pins().count(), 0);
    assert!(
        store
            .get(&ProfileId::new("nobody").unwrap())
            .unwrap()
            .is_none()
    );
}

/// A created profile reads back equal, at revision 1.
pub fn create_then_get_round_trips(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let profile = api_key("p");
    assert_eq!(store.compare_and_set(profile.clone(), None).unwrap(), 1);
    let stored = store.get(&profile.id).unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    let mut expected = profile;
    expected.revision = 1;
    assert_eq!(stored, expected);
    assert_eq!(store.snapshot().unwrap().get(&expected.id), Some(&expected));
}

/// Creating an id that exists is a conflict and changes nothing.
pub fn creating_an_existing_id_conflicts(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let first = api_key("p");
    store.compare_and_set(first.clone(), None).unwrap();
    let other = api_key("p").email("other@example.com").unwrap();
    expect_conflict(store.compare_and_set(other, None), "second create");
    let stored = store.get(&first.id).unwrap().unwrap();
    assert_eq!(stored.labels, first.labels);
    assert_eq!(stored.revision, 1);
}

/// An update must name the stored revision; a stale one is refused and
/// writes nothing.
pub fn updates_need_the_stored_revision(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let mut profile = api_key("p");
    store.compare_and_set(profile.clone(), None).unwrap();
    profile.last_good_use = Some(T);
    assert_eq!(store.compare_and_set(profile.clone(), Some(1)).unwrap(), 2);
    profile.status = ProfileStatus::CoolingDown {
        until: T,
        reason: FailureKind::RateLimited,
        failures: 1,
    };
    expect_conflict(
        store.compare_and_set(profile.clone(), Some(1)),
        "stale update",
    );
    let stored = store.get(&profile.id).unwrap().unwrap();
    assert_eq!(stored.revision, 2);
    assert_eq!(stored.status, ProfileStatus::Active);
    assert_eq!(stored.last_good_use, Some(T));
    expect_conflict(
        store.compare_and_set(api_key("missing"), Some(1)),
        "update of a missing profile",
    );
    assert!(
        store
            .get(&ProfileId::new("missing").unwrap())
            .unwrap()
            .is_none()
    );
}

/// Removal checks the revision and takes the profile's pins with it.
pub fn removal_checks_the_revision_and_drops_pins(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let p = api_key("p");
    let q = api_key("q");
    store.compare_and_set(p.clone(), None).unwrap();
    store.compare_and_set(q.clone(), None).unwrap();
    store.set_pin(pin_key("c1"), Some(pin("p"))).unwrap();
    store.set_pin(pin_key("c2"), Some(pin("q"))).unwrap();
    expect_conflict(store.remove(&p.id, 7), "remove at a stale revision");
    assert!(store.get(&p.id).unwrap().is_some());
    store.remove(&p.id, 1).unwrap();
    let set = store.snapshot().unwrap();
    assert!(set.get(&p.id).is_none());
    assert!(set.get(&q.id).is_some());
    assert!(set.pin(&pin_key("c1")).is_none());
    assert_eq!(set.pin(&pin_key("c2")), Some(&pin("q")));
    match store.remove(&p.id, 1) {
        Err(AuthProfileError::NotFound { .. }) => {}
        other => panic!("removing a removed profile: {other:?}"),
    }
}

/// Pins are set, replaced and cleared per conversation.
pub fn pins_are_set_replaced_and_cleared(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    store.set_pin(pin_key("c1"), Some(pin("p"))).unwrap();
    store.set_pin(pin_key("c2"), Some(pin("p"))).unwrap();
    store.set_pin(pin_key("c1"), Some(pin("q"))).unwrap();
    let other_agent = PinKey::new("agent-b", provider(), "c1");
    store.set_pin(other_agent.clone(), Some(pin("r"))).unwrap();
    let set = store.snapshot().unwrap();
    assert_eq!(set.pin(&pin_key("c1")), Some(&pin("q")));
    assert_eq!(set.pin(&pin_key("c2")), Some(&pin("p")));
    assert_eq!(set.pin(&other_agent), Some(&pin("r")));
    store.set_pin(pin_key("c1"), None).unwrap();
    store.set_pin(pin_key("never"), None).unwrap();
    let set = store.snapshot().unwrap();
    assert!(set.pin(&pin_key("c1")).is_none());
    assert_eq!(set.pins().count(), 2);
}

/// A snapshot does not change under later writes.
pub fn snapshots_do_not_change(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    store.compare_and_set(api_key("p"), None).unwrap();
    let before = store.snapshot().unwrap();
    let copy = (*before).clone();
    store.compare_and_set(api_key("q"), None).unwrap();
    store.set_pin(pin_key("c"), Some(pin("p"))).unwrap();
    assert_eq!(*before, copy);
    assert_eq!(store.snapshot().unwrap().len(), 2);
}

/// Every credential type, status, label and refresh field reads back as
/// written.
pub fn every_profile_shape_round_trips(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let shapes = every_shape();
    for profile in &shapes {
        store.compare_and_set(profile.clone(), None).unwrap();
    }
    let types: Vec<CredentialType> = shapes.iter().map(|p| p.credential_type()).collect();
    assert_eq!(
        types,
        [
            CredentialType::ApiKey,
            CredentialType::Oauth,
            CredentialType::Token
        ]
    );
    for mut expected in shapes {
        expected.revision = 1;
        assert_eq!(store.get(&expected.id).unwrap(), Some(expected));
    }
}

/// Writers racing through compare-and-set with retries lose no update.
pub fn concurrent_writers_lose_nothing(fixture: &dyn ProfileStoreFixture) {
    const THREADS: usize = 4;
    const UPDATES: u64 = 25;
    let store = fixture.store();
    let id = ProfileId::new("shared").unwrap();
    store.compare_and_set(api_key("shared"), None).unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..UPDATES {
                    loop {
                        let mut profile = store.get(&id).unwrap().unwrap();
                        let expected = profile.revision;
                        profile.refresh.generation += 1;
                        // Widen the read-to-write window so that a store
                        // ignoring revisions loses updates reliably.
                        std::thread::sleep(Duration::from_micros(200));
                        match store.compare_and_set(profile, Some(expected)) {
                            Ok(_) => break,
                            Err(AuthProfileError::Conflict { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    let stored = store.get(&id).unwrap().unwrap();
    assert_eq!(stored.refresh.generation, THREADS as u64 * UPDATES);
    assert_eq!(stored.revision, 1 + THREADS as u64 * UPDATES);
}

/// A refresh lock excludes other holders of the same profile's lock (and
/// no other profile's), times out, and is free again once dropped.
pub fn refresh_locks_exclude_and_time_out(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    let p = ProfileId::new("p").unwrap();
    let q = ProfileId::new("q").unwrap();
    let held = store.lock_refresh(&p, Duration::ZERO).unwrap();
    match store.lock_refresh(&p, Duration::from_millis(20)) {
        Err(AuthProfileError::RefreshLocked { id, .. }) => assert_eq!(id, p),
        other => panic!("a second holder of one refresh lock: {other:?}"),
    }
    let other = store.lock_refresh(&q, Duration::ZERO).unwrap();
    // A waiter gets the lock once the holder lets go.
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| store.lock_refresh(&p, Duration::from_secs(30)).map(drop));
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        waiter.join().unwrap().unwrap();
    });
    drop(other);
    drop(store.lock_refresh(&p, Duration::ZERO).unwrap());
}

/// Profiles and pins survive opening the storage again (persistent stores
/// only; a memory store passes trivially).
pub fn reopening_keeps_profiles_and_pins(fixture: &dyn ProfileStoreFixture) {
    let store = fixture.store();
    for profile in every_shape() {
        store.compare_and_set(profile, None).unwrap();
    }
    store
        .set_pin(pin_key("c1"), Some(pin("shape-api")))
        .unwrap();
    let Some(reopened) = fixture.reopen() else {
        return;
    };
    assert_eq!(*reopened.snapshot().unwrap(), *store.snapshot().unwrap());
    // And the reopened store keeps working.
    let mut p = reopened
        .get(&ProfileId::new("shape-api").unwrap())
        .unwrap()
        .unwrap();
    p.last_good_use = None;
    reopened.compare_and_set(p, Some(1)).unwrap();
    let seen = store
        .get(&ProfileId::new("shape-api").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        seen.revision, 2,
        "a write through one handle is seen by the other"
    );
}
