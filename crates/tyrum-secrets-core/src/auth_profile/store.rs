//! Where auth profiles and conversation pins are kept: the
//! `AuthProfileStore` trait and its in-memory implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{AuthProfile, AuthProfileError, ModelProvider, ProfileId};
use crate::Timestamp;

/// Storage for auth profiles and conversation pins, with compare-and-set
/// writes per profile and a refresh lock per profile.
///
/// The gateway may implement it over its own state store; core ships
/// [`MemoryAuthProfileStore`] and
/// [`JsonFileAuthProfileStore`](super::JsonFileAuthProfileStore). The
/// testkit's `profile_store_contract!` checks an implementation.
pub trait AuthProfileStore: Send + Sync + fmt::Debug {
    /// Every profile and pin as of now: always the newest stored state, so a
    /// cooldown recorded by another process is seen by the next call.
    ///
    /// # Errors
    /// A storage failure.
    fn snapshot(&self) -> Result<Arc<ProfileSet>, AuthProfileError>;

    /// The profile `id`, if stored.
    ///
    /// # Errors
    /// A storage failure.
    fn get(&self, id: &ProfileId) -> Result<Option<AuthProfile>, AuthProfileError> {
        Ok(self.snapshot()?.get(id).cloned())
    }

    /// Writes `profile` if the stored revision of its id equals `expected`
    /// (`None`: no profile with that id may exist yet). Stores it with the
    /// next revision and returns that revision.
    ///
    /// # Errors
    /// [`AuthProfileError::Conflict`] when the stored revision differs, or
    /// a storage failure. On error nothing was written.
    fn compare_and_set(
        &self,
        profile: AuthProfile,
        expected: Option<u64>,
    ) -> Result<u64, AuthProfileError>;

    /// Removes profile `id` if its stored revision is `expected`, with every
    /// pin to it.
    ///
    /// # Errors
    /// [`AuthProfileError::NotFound`], [`AuthProfileError::Conflict`] or a
    /// storage failure.
    fn remove(&self, id: &ProfileId, expected: u64) -> Result<(), AuthProfileError>;

    /// Pins a conversation to a profile (`Some`) or unpins it (`None`). The
    /// last writer wins: selection is deterministic, so concurrent writers
    /// of one pin write the same profile.
    ///
    /// # Errors
    /// A storage failure.
    fn set_pin(&self, key: PinKey, pin: Option<Pin>) -> Result<(), AuthProfileError>;

    /// Takes the refresh lock of profile `id`, waiting at most `timeout`.
    /// While one holder keeps it, no other holder — thread or process that
    /// shares this store — gets it, so a refresh token is never spent twice.
    ///
    /// # Errors
    /// [`AuthProfileError::RefreshLocked`] after `timeout`, or a storage
    /// failure.
    fn lock_refresh(
        &self,
        id: &ProfileId,
        timeout: Duration,
    ) -> Result<RefreshLock, AuthProfileError>;
}

impl<S: AuthProfileStore + ?Sized> AuthProfileStore for Arc<S> {
    fn snapshot(&self) -> Result<Arc<ProfileSet>, AuthProfileError> {
        (**self).snapshot()
    }
    fn get(&self, id: &ProfileId) -> Result<Option<AuthProfile>, AuthProfileError> {
        (**self).get(id)
    }
    fn compare_and_set(
        &self,
        profile: AuthProfile,
        expected: Option<u64>,
    ) -> Result<u64, AuthProfileError> {
        (**self).compare_and_set(profile, expected)
    }
    fn remove(&self, id: &ProfileId, expected: u64) -> Result<(), AuthProfileError> {
        (**self).remove(id, expected)
    }
    fn set_pin(&self, key: PinKey, pin: Option<Pin>) -> Result<(), AuthProfileError> {
        (**self).set_pin(key, pin)
    }
    fn lock_refresh(
        &self,
        id: &ProfileId,
        timeout: Duration,
    ) -> Result<RefreshLock, AuthProfileError> {
        (**self).lock_refresh(id, timeout)
    }
}

/// An immutable view of a store: profiles by id and pins by conversation.
///
/// A snapshot remembers the stable order it computed for each agent and
/// model provider, so selections between two writes do not rank again.
#[derive(Default)]
pub struct ProfileSet {
    profiles: BTreeMap<ProfileId, Arc<AuthProfile>>,
    pins: BTreeMap<PinKey, Pin>,
    ranked: Mutex<Rankings>,
}

/// Candidates in stable order, by model provider and agent.
type Rankings = BTreeMap<ModelProvider, BTreeMap<String, Arc<[Arc<AuthProfile>]>>>;

impl Clone for ProfileSet {
    fn clone(&self) -> Self {
        Self {
            profiles: self.profiles.clone(),
            pins: self.pins.clone(),
            ranked: Mutex::default(),
        }
    }
}

impl PartialEq for ProfileSet {
    fn eq(&self, other: &Self) -> bool {
        self.profiles == other.profiles && self.pins == other.pins
    }
}

impl Eq for ProfileSet {}

impl fmt::Debug for ProfileSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileSet")
            .field("profiles", &self.profiles)
            .field("pins", &self.pins)
            .finish()
    }
}

impl ProfileSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The profile `id`.
    pub fn get(&self, id: &ProfileId) -> Option<&AuthProfile> {
        self.profiles.get(id).map(|p| &**p)
    }

    /// Every profile, ordered by id.
    pub fn profiles(&self) -> impl Iterator<Item = &AuthProfile> {
        self.profiles.values().map(|p| &**p)
    }

    /// The profile `id`, shared (cheap to keep).
    pub(crate) fn shared(&self, id: &ProfileId) -> Option<&Arc<AuthProfile>> {
        self.profiles.get(id)
    }

    /// The profiles `agent` may use with `provider`, least recently used
    /// first (never used before all), then by id; computed once per
    /// snapshot.
    pub(crate) fn ranked(&self, provider: &ModelProvider, agent: &str) -> Arc<[Arc<AuthProfile>]> {
        let mut memo = self.ranked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ranked) = memo.get(provider).and_then(|by_agent| by_agent.get(agent)) {
            return Arc::clone(ranked);
        }
        // Sort (key, profile) pairs: comparisons mostly stay in the vector
        // instead of chasing each profile's pointer.
        let mut keyed: Vec<(Option<Timestamp>, &Arc<AuthProfile>)> = self
            .profiles
            .values()
            .filter(|p| p.provider == *provider && p.serves(agent))
            .map(|p| (p.last_good_use, p))
            .collect();
        // Ids are unique, so the order is total.
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let ranked: Vec<Arc<AuthProfile>> = keyed.into_iter().map(|(_, p)| Arc::clone(p)).collect();
        let ranked: Arc<[Arc<AuthProfile>]> = ranked.into();
        memo.entry(provider.clone())
            .or_default()
            .insert(agent.to_owned(), Arc::clone(&ranked));
        ranked
    }

    /// How many profiles there are.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether there is no profile.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The pin of a conversation.
    pub fn pin(&self, key: &PinKey) -> Option<&Pin> {
        self.pins.get(key)
    }

    /// Every pin, ordered by key.
    pub fn pins(&self) -> impl Iterator<Item = (&PinKey, &Pin)> {
        self.pins.iter()
    }

    /// Applies a compare-and-set: the rule every store shipped here keeps.
    ///
    /// # Errors
    /// [`AuthProfileError::Conflict`] when the stored revision of the
    /// profile's id is not `expected`; nothing changes then.
    pub fn compare_and_set(
        &mut self,
        mut profile: AuthProfile,
        expected: Option<u64>,
    ) -> Result<u64, AuthProfileError> {
        let actual = self.profiles.get(&profile.id).map(|p| p.revision);
        if actual != expected {
            return Err(AuthProfileError::Conflict {
                id: profile.id,
                expected,
                actual,
            });
        }
        let revision = expected.map_or(1, |r| r.saturating_add(1));
        profile.revision = revision;
        self.forget_rankings();
        self.profiles.insert(profile.id.clone(), Arc::new(profile));
        Ok(revision)
    }

    /// Removes profile `id` at revision `expected`, and its pins.
    ///
    /// # Errors
    /// [`AuthProfileError::NotFound`] or [`AuthProfileError::Conflict`];
    /// nothing changes then.
    pub fn remove(&mut self, id: &ProfileId, expected: u64) -> Result<(), AuthProfileError> {
        let actual = match self.profiles.get(id) {
            None => return Err(AuthProfileError::NotFound { id: id.clone() }),
            Some(profile) => profile.revision,
        };
        if actual != expected {
            return Err(AuthProfileError::Conflict {
                id: id.clone(),
                expected: Some(expected),
                actual: Some(actual),
            });
        }
        self.profiles.remove(id);
        self.pins.retain(|_, pin| pin.profile != *id);
        self.forget_rankings();
        Ok(())
    }

    /// Sets or clears a pin.
    pub fn set_pin(&mut self, key: PinKey, pin: Option<Pin>) {
        match pin {
            Some(pin) => self.pins.insert(key, pin),
            None => self.pins.remove(&key),
        };
    }

    fn forget_rankings(&mut self) {
        self.ranked
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub(super) fn from_parts(
        profiles: BTreeMap<ProfileId, AuthProfile>,
        pins: BTreeMap<PinKey, Pin>,
    ) -> Self {
        Self {
            profiles: profiles
                .into_iter()
                .map(|(k, p)| (k, Arc::new(p)))
                .collect(),
            pins,
            ranked: Mutex::default(),
        }
    }
}

impl FromIterator<AuthProfile> for ProfileSet {
    fn from_iter<I: IntoIterator<Item = AuthProfile>>(profiles: I) -> Self {
        Self {
            profiles: profiles
                .into_iter()
                .map(|p| (p.id.clone(), Arc::new(p)))
                .collect(),
            pins: BTreeMap::new(),
            ranked: Mutex::default(),
        }
    }
}

/// Names a conversation for pinning: the agent, the model provider and the
/// conversation id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PinKey {
    /// The agent.
    pub agent: String,
    /// The model provider.
    pub provider: ModelProvider,
    /// The conversation (or session) id.
    pub conversation: String,
}

impl PinKey {
    /// The key of `conversation` of `agent` with `provider`.
    pub fn new(
        agent: impl Into<String>,
        provider: ModelProvider,
        conversation: impl Into<String>,
    ) -> Self {
        Self {
            agent: agent.into(),
            provider,
            conversation: conversation.into(),
        }
    }
}

/// A conversation's pin: the profile it keeps using while that works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The profile.
    pub profile: ProfileId,
    /// When the conversation was pinned to it.
    pub since: Timestamp,
}

/// A held refresh lock; released on drop (and, for a file lock, by the
/// kernel when the holding process dies).
pub struct RefreshLock(#[allow(dead_code, reason = "held for its Drop")] Box<dyn Send>);

impl RefreshLock {
    /// Wraps whatever releases the lock when dropped: for store
    /// implementations outside core.
    pub fn new(guard: impl Send + 'static) -> Self {
        Self(Box::new(guard))
    }
}

impl fmt::Debug for RefreshLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshLock")
    }
}

/// Auth profiles kept in this process's memory. Refresh locks exclude
/// other threads of this process.
#[derive(Default)]
pub struct MemoryAuthProfileStore {
    set: Mutex<Arc<ProfileSet>>,
    locks: Arc<KeyedLocks>,
}

impl MemoryAuthProfileStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Arc<ProfileSet>> {
        // Every mutation replaces the Arc after all checks, so a poisoned
        // set is still consistent.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn change<T>(
        &self,
        change: impl FnOnce(&mut ProfileSet) -> Result<T, AuthProfileError>,
    ) -> Result<T, AuthProfileError> {
        let mut guard = self.lock();
        let mut next = ProfileSet::clone(&guard);
        let result = change(&mut next)?;
        *guard = Arc::new(next);
        Ok(result)
    }
}

impl fmt::Debug for MemoryAuthProfileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.lock();
        f.debug_struct("MemoryAuthProfileStore")
            .field("profiles", &set.len())
            .field("pins", &set.pins.len())
            .finish()
    }
}

impl AuthProfileStore for MemoryAuthProfileStore {
    fn snapshot(&self) -> Result<Arc<ProfileSet>, AuthProfileError> {
        Ok(Arc::clone(&self.lock()))
    }

    fn get(&self, id: &ProfileId) -> Result<Option<AuthProfile>, AuthProfileError> {
        Ok(self.lock().get(id).cloned())
    }

    fn compare_and_set(
        &self,
        profile: AuthProfile,
        expected: Option<u64>,
    ) -> Result<u64, AuthProfileError> {
        self.change(|set| set.compare_and_set(profile, expected))
    }

    fn remove(&self, id: &ProfileId, expected: u64) -> Result<(), AuthProfileError> {
        self.change(|set| set.remove(id, expected))
    }

    fn set_pin(&self, key: PinKey, pin: Option<Pin>) -> Result<(), AuthProfileError> {
        self.change(|set| {
            set.set_pin(key, pin);
            Ok(())
        })
    }

    fn lock_refresh(
        &self,
        id: &ProfileId,
        timeout: Duration,
    ) -> Result<RefreshLock, AuthProfileError> {
        KeyedLocks::acquire(&self.locks, id, timeout).map(RefreshLock::new)
    }
}

/// One in-process lock per profile id, with a timeout.
#[derive(Default)]
pub(super) struct KeyedLocks {
    held: Mutex<BTreeSet<ProfileId>>,
    released: Condvar,
}

impl KeyedLocks {
    pub(super) fn acquire(
        locks: &Arc<Self>,
        id: &ProfileId,
        timeout: Duration,
    ) -> Result<KeyedGuard, AuthProfileError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut held = locks.held.lock().unwrap_or_else(|p| p.into_inner());
        while held.contains(id) {
            let left = deadline.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Err(AuthProfileError::RefreshLocked {
                    id: id.clone(),
                    waited: timeout,
                });
            }
            held = locks
                .released
                .wait_timeout(held, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        held.insert(id.clone());
        Ok(KeyedGuard {
            locks: Arc::clone(locks),
            id: id.clone(),
        })
    }
}

pub(super) struct KeyedGuard {
    locks: Arc<KeyedLocks>,
    id: ProfileId,
}

impl Drop for KeyedGuard {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.id);
        self.locks.released.notify_all();
    }
}
