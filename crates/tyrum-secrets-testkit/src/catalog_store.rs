//! The [`CatalogStore`] contract: checks every catalog store runs, through
//! [`catalog_store_contract!`](crate::catalog_store_contract).
//!
//! Each check panics with a message naming what broke. Checks use fresh
//! random handle ids, so they can run in parallel against one shared real
//! backend (and ignore entries other checks wrote there).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "checks report a broken contract by panicking, like assert!"
)]

use std::any::Any;
use std::fmt;

use tyrum_secrets_core::{
    CatalogEntry, CatalogError, CatalogStore, EntryStatus, HandleId, ProviderId, Scope,
    SecretHandle, SecretKind, Timestamp, VersionPin,
};

/// What a contract test runs against: a store, and for stores shared
/// between processes a way to open a second view of the same storage.
pub struct StoreUnderTest {
    store: Box<dyn CatalogStore>,
    reopen: Option<Box<dyn Fn() -> Box<dyn CatalogStore>>>,
    _guard: Option<Box<dyn Any>>,
}

impl fmt::Debug for StoreUnderTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUnderTest")
            .field("store", &self.store)
            .field("shared", &self.reopen.is_some())
            .finish()
    }
}

impl StoreUnderTest {
    /// A store only this value sees (an in-memory store).
    pub fn new(store: impl CatalogStore + 'static) -> Self {
        Self {
            store: Box::new(store),
            reopen: None,
            _guard: None,
        }
    }

    /// A store shared by everyone who opens the same storage: `open` is
    /// called once for the store under test and again for each second view
    /// (as another process would open it).
    pub fn shared<S: CatalogStore + 'static>(open: impl Fn() -> S + 'static) -> Self {
        Self {
            store: Box::new(open()),
            reopen: Some(Box::new(move || Box::new(open()))),
            _guard: None,
        }
    }

    /// Keeps `guard` (a temporary directory, a server) alive as long as the
    /// store.
    pub fn keep_alive(mut self, guard: impl Any) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// The store under test.
    pub fn store(&self) -> &dyn CatalogStore {
        self.store.as_ref()
    }

    /// A second view of the same storage, for shared stores.
    pub fn reopen(&self) -> Option<Box<dyn CatalogStore>> {
        self.reopen.as_ref().map(|open| open())
    }
}

/// A new entry for a fresh random handle, as a catalog would create it.
pub fn sample_entry() -> CatalogEntry {
    let handle = SecretHandle::new(
        HandleId::generate().expect("the OS random number generator works"),
        ProviderId::new("contract").unwrap(),
        Scope::new("workspace/contract").unwrap(),
        SecretKind::ApiKey,
    );
    serde_json::from_value(serde_json::json!({
        "handle": handle,
        "locator": format!("tyrum/workspace/contract/{}", handle.id().as_str()),
        "current": {"pinned": 1},
        "status": {"state": "active"},
        "created_at": Timestamp::now(),
    }))
    .expect("a catalog entry deserializes")
}

fn describe<T: fmt::Debug>(result: &Result<T, CatalogError>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(e) => format!("Err({e})"),
    }
}

fn create(store: &dyn CatalogStore, entry: &CatalogEntry) -> u64 {
    store
        .compare_and_set(entry.clone(), None)
        .unwrap_or_else(|e| panic!("creating {} failed: {e}", entry.id()))
}

fn stored(store: &dyn CatalogStore, id: &HandleId) -> CatalogEntry {
    store
        .get(id)
        .unwrap_or_else(|e| panic!("get({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("get({id}) finds nothing after a successful write"))
}

/// Everything but the revision, which the store owns.
fn same_content(a: &CatalogEntry, b: &CatalogEntry) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    a.revision = 0;
    b.revision = 0;
    a == b
}

/// An unknown id reads as `None`, not an error.
pub fn unknown_id_is_none(store: &dyn CatalogStore) {
    let id = sample_entry().id().clone();
    let got = store.get(&id);
    assert!(
        matches!(got, Ok(None)),
        "get of an unknown id: {}",
        describe(&got)
    );
}

/// A created entry reads back with the revision the write returned.
pub fn create_then_get(store: &dyn CatalogStore) {
    let entry = sample_entry();
    let revision = create(store, &entry);
    assert!(revision >= 1, "the first revision is {revision}, not >= 1");
    let got = stored(store, entry.id());
    assert!(same_content(&got, &entry), "the entry read back differs");
    assert_eq!(got.revision, revision, "get reports another revision");
}

/// Creating an id that exists is a conflict and changes nothing.
pub fn create_twice_conflicts(store: &dyn CatalogStore) {
    let entry = sample_entry();
    let revision = create(store, &entry);
    let mut other = entry.clone();
    other.labels.insert("second".into(), "create".into());
    let again = store.compare_and_set(other, None);
    assert!(
        matches!(&again, Err(CatalogError::Conflict { expected: None, actual, .. }) if *actual == Some(revision)),
        "a second create: {}",
        describe(&again)
    );
    let got = stored(store, entry.id());
    assert!(
        same_content(&got, &entry),
        "a refused create changed the entry"
    );
    assert_eq!(got.revision, revision);
}

/// Expecting a revision of an entry that does not exist is a conflict and
/// creates nothing.
pub fn update_of_missing_conflicts(store: &dyn CatalogStore) {
    let entry = sample_entry();
    let result = store.compare_and_set(entry.clone(), Some(1));
    assert!(
        matches!(
            &result,
            Err(CatalogError::Conflict {
                expected: Some(1),
                actual: None,
                ..
            })
        ),
        "updating a missing entry: {}",
        describe(&result)
    );
    assert!(
        matches!(store.get(entry.id()), Ok(None)),
        "a refused update created the entry"
    );
}

/// Each update returns a larger revision; a write naming an older one is a
/// conflict that leaves the newer content in place.
pub fn stale_revision_conflicts(store: &dyn CatalogStore) {
    let entry = sample_entry();
    let first = create(store, &entry);
    let mut changed = stored(store, entry.id());
    changed.labels.insert("step".into(), "two".into());
    let second = store
        .compare_and_set(changed.clone(), Some(first))
        .unwrap_or_else(|e| panic!("an update with the current revision failed: {e}"));
    assert!(
        second > first,
        "revisions do not grow: {first} then {second}"
    );
    let mut stale = entry.clone();
    stale.labels.insert("step".into(), "stale".into());
    let result = store.compare_and_set(stale, Some(first));
    assert!(
        matches!(&result, Err(CatalogError::Conflict { expected: Some(e), actual: Some(a), .. }) if *e == first && *a == second),
        "a write naming an old revision: {}",
        describe(&result)
    );
    let got = stored(store, entry.id());
    assert!(
        same_content(&got, &changed),
        "a refused write changed the entry"
    );
    assert_eq!(got.revision, second);
}

/// Every field survives the store: status, expiry, labels, times, pins and
/// retirements.
pub fn every_field_round_trips(store: &dyn CatalogStore) {
    let mut entry = sample_entry();
    entry.status = EntryStatus::Revoked {
        at: Timestamp::from_unix_millis(1_700_000_000_123),
        reason: "leaked in a screenshot; \"quoted\" \u{e9}".into(),
    };
    entry.expires_at = Some(Timestamp::from_unix_millis(4_000_000_000_000));
    entry.labels.insert("owner".into(), "team-\u{1f511}".into());
    entry
        .labels
        .insert("email".into(), "ops@example.com".into());
    entry.rotated_at = Some(Timestamp::from_unix_millis(1_700_000_000_456));
    entry.last_resolved_at = Some(Timestamp::from_unix_millis(1_700_000_000_789));
    entry.current = VersionPin::Latest;
    entry.retiring = serde_json::from_value(serde_json::json!([
        {"version": 3, "after": 1_700_000_100_000u64},
        {"version": 4, "after": 1_700_000_200_000u64},
    ]))
    .expect("retirements deserialize");
    create(store, &entry);
    let got = stored(store, entry.id());
    assert!(
        same_content(&got, &entry),
        "fields were lost or changed on the way through the store"
    );
}

/// `list` holds every entry written, each at its stored revision, ordered
/// by handle id.
pub fn list_is_complete_and_ordered(store: &dyn CatalogStore) {
    let entries: Vec<CatalogEntry> = (0..3).map(|_| sample_entry()).collect();
    for entry in &entries {
        create(store, entry);
    }
    let listed = store.list().unwrap_or_else(|e| panic!("list failed: {e}"));
    for entry in &entries {
        let found = listed.iter().find(|e| e.id() == entry.id());
        let found = found.unwrap_or_else(|| panic!("list misses {}", entry.id()));
        assert!(same_content(found, entry), "list shows another content");
        assert_eq!(
            found.revision,
            stored(store, entry.id()).revision,
            "list and get disagree on the revision"
        );
    }
    assert!(
        listed.windows(2).all(|w| w[0].id() < w[1].id()),
        "list is not ordered by handle id"
    );
}

/// Threads racing read-change-write loops through compare-and-set lose no
/// update.
pub fn racing_updates_lose_nothing(store: &dyn CatalogStore) {
    const THREADS: usize = 4;
    const UPDATES: usize = 8;
    let entry = sample_entry();
    create(store, &entry);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let id = entry.id().clone();
            s.spawn(move || {
                for i in 0..UPDATES {
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        assert!(attempts < 1000, "update {t}/{i} never won a race");
                        let mut current = stored(store, &id);
                        let expected = current.revision;
                        current.labels.insert(format!("t{t}-{i}"), "x".into());
                        match store.compare_and_set(current, Some(expected)) {
                            Ok(_) => break,
                            Err(CatalogError::Conflict { .. }) => std::thread::yield_now(),
                            Err(e) => panic!("update {t}/{i} failed: {e}"),
                        }
                    }
                }
            });
        }
    });
    let got = stored(store, entry.id());
    let missing = (0..THREADS)
        .flat_map(|t| (0..UPDATES).map(move |i| format!("t{t}-{i}")))
        .filter(|k| !got.labels.contains_key(k))
        .count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} racing updates were lost",
        THREADS * UPDATES
    );
}

/// `Debug` of the store shows no entry content (labels, reasons).
pub fn debug_output_hides_entries(store: &dyn CatalogStore) {
    let mut entry = sample_entry();
    entry
        .labels
        .insert("note".into(), "CANARY-label-4b1d9e".into());
    create(store, &entry);
    let debug = format!("{store:?} {store:#?}");
    assert!(
        !debug.contains("CANARY-label"),
        "Debug output of the store shows entry content"
    );
}

/// A change made through one view of a shared store is seen by the next
/// read through another (another process's revoke fails its next resolve).
pub fn another_view_sees_changes(first: &dyn CatalogStore, second: &dyn CatalogStore) {
    let entry = sample_entry();
    let revision = create(first, &entry);
    let seen = stored(second, entry.id());
    assert!(
        same_content(&seen, &entry),
        "the second view reads another entry"
    );
    let mut revoked = seen.clone();
    revoked.status = EntryStatus::Revoked {
        at: Timestamp::now(),
        reason: "contract check".into(),
    };
    second
        .compare_and_set(revoked, Some(revision))
        .unwrap_or_else(|e| panic!("revoking through the second view failed: {e}"));
    assert!(
        stored(first, entry.id()).is_revoked(),
        "the first view does not see a revoke made through the second"
    );
    let stale = first.compare_and_set(entry.clone(), Some(revision));
    assert!(
        matches!(stale, Err(CatalogError::Conflict { .. })),
        "the first view overwrote the second's change: {}",
        describe(&stale)
    );
}
