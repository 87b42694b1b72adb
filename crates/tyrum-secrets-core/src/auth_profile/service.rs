//! [`AuthProfiles`]: selection, outcome reports and credential hand-over
//! over a profile store, the catalog and the resolver.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::handles::handle_state;
use super::outcome::{record_disable, record_failure, record_success};
use super::select::{Query, choose};
use super::{
    AuthProfile, AuthProfileError, AuthProfileStore, CallOutcome, Clock, CooldownPolicy,
    Credential, DisableReason, FailureKind, Jitter, ModelProvider, Pin, PinKey, ProfileId,
    ProfileStatus, RandomJitter, Refresher, Reported, Selection, SystemClock, Unusable,
};
use crate::{
    ExposeSecret, Purpose, Requester, ResolveRequest, ResolvedSecret, Resolver, SecretAdmin,
};

/// How many times an update re-reads and retries after losing a
/// compare-and-set race before reporting [`AuthProfileError::Conflict`].
const MAX_CAS_RETRIES: usize = 64;
/// How long a refresh waits for another worker's refresh by default.
const DEFAULT_REFRESH_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long before its expiry an access token is refreshed by default.
const DEFAULT_REFRESH_AHEAD: Duration = Duration::from_secs(60);

/// Model-provider credentials of agents: deterministic selection with
/// conversation pinning, cooldowns and disabling from reported outcomes,
/// single-flight OAuth refresh, and hand-over of the credential through the
/// [`Resolver`] (policy and audit apply; the audit record names the
/// profile).
///
/// See the crate README for an example of selection with failover.
pub struct AuthProfiles {
    pub(super) store: Arc<dyn AuthProfileStore>,
    pub(super) admin: SecretAdmin,
    pub(super) resolver: Arc<Resolver>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) jitter: Arc<dyn Jitter>,
    pub(super) cooldown: CooldownPolicy,
    pub(super) refresher: Option<Arc<dyn Refresher>>,
    orders: BTreeMap<ModelProvider, BTreeMap<String, Vec<ProfileId>>>,
    pub(super) refresh_lock_timeout: Duration,
    refresh_ahead: Duration,
    pub(super) access_token_grace: Duration,
}

/// Builds [`AuthProfiles`].
pub struct AuthProfilesBuilder {
    profiles: AuthProfiles,
}

impl AuthProfiles {
    /// Starts building over `store`, the `admin` of the catalog the
    /// profiles' handles live in (selection reads their metadata through
    /// it; a refresh rotates tokens through it, audited), and the
    /// `resolver` every credential is resolved through.
    ///
    /// Defaults: the system clock, random jitter, [`CooldownPolicy::default`],
    /// no refresher (OAuth profiles are then disabled on invalid
    /// credentials), the stable order for every agent, a 30 s refresh-lock
    /// wait, refresh 60 s before expiry, and the old access token retired at
    /// once on refresh.
    pub fn builder(
        store: Arc<dyn AuthProfileStore>,
        admin: SecretAdmin,
        resolver: Arc<Resolver>,
    ) -> AuthProfilesBuilder {
        AuthProfilesBuilder {
            profiles: AuthProfiles {
                store,
                admin,
                resolver,
                clock: Arc::new(SystemClock),
                jitter: Arc::new(RandomJitter),
                cooldown: CooldownPolicy::default(),
                refresher: None,
                orders: BTreeMap::new(),
                refresh_lock_timeout: DEFAULT_REFRESH_LOCK_TIMEOUT,
                refresh_ahead: DEFAULT_REFRESH_AHEAD,
                access_token_grace: Duration::ZERO,
            },
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AuthProfileStore> {
        &self.store
    }

    /// Adds a new profile.
    ///
    /// # Errors
    /// [`AuthProfileError::Conflict`] when the id is taken, or a store
    /// failure.
    pub fn add(&self, profile: AuthProfile) -> Result<AuthProfile, AuthProfileError> {
        let mut profile = profile;
        profile.revision = self.store.compare_and_set(profile.clone(), None)?;
        Ok(profile)
    }

    /// Chooses the profile `requester`'s agent uses for `provider`.
    ///
    /// A conversation (the requester's conversation id) stays pinned to the
    /// profile it was given while that profile is usable; the pin is stored,
    /// so it survives a restart, and moves only when the profile cools down,
    /// is disabled, expires or loses a handle. Otherwise: the explicit order
    /// configured for the agent and provider, else least recently used
    /// first. Profiles cooling down, disabled, expired without a refresh
    /// token, or with a revoked, expired or unknown handle in the catalog are
    /// passed over, each with its reason in the answer.
    ///
    /// # Errors
    /// [`AuthProfileError::NoneAvailable`] with every reason when no
    /// profile is usable, or a store failure.
    pub fn select(
        &self,
        requester: &Requester,
        provider: &ModelProvider,
    ) -> Result<Selection, AuthProfileError> {
        let now = self.clock.now();
        let set = self.store.snapshot()?;
        let agent = requester.agent();
        let conversation = requester.conversation_id();
        let query = Query {
            agent,
            provider,
            conversation,
            order: self
                .orders
                .get(provider)
                .and_then(|by_agent| by_agent.get(agent))
                .map(Vec::as_slice),
            now,
        };
        let admin = &self.admin;
        let handles = |id: &crate::HandleId| handle_state(admin, id, now);
        match choose(&set, &query, &handles) {
            Ok((profile, choice, skipped)) => {
                if let Some(conversation) = conversation
                    && !matches!(choice, super::Choice::Pinned { .. })
                {
                    let key = PinKey::new(agent, provider.clone(), conversation);
                    let pin = Pin {
                        profile: profile.id.clone(),
                        since: now,
                    };
                    self.store.set_pin(key, Some(pin))?;
                }
                Ok(Selection::new(profile, choice, skipped))
            }
            Err(skipped) => {
                let ready_at = skipped
                    .iter()
                    .filter_map(|s| match s.reason {
                        Unusable::CoolingDown { until, .. } => Some(until),
                        _ => None,
                    })
                    .min();
                Err(AuthProfileError::NoneAvailable {
                    agent: agent.to_owned(),
                    provider: provider.clone(),
                    skipped,
                    ready_at,
                })
            }
        }
    }

    /// Resolves the credential of `profile` (as selected) for `request`,
    /// through the resolver with the profile named in the audit record. An
    /// OAuth access token that expires within the refresh margin is
    /// refreshed first (single-flight).
    ///
    /// # Errors
    /// [`AuthProfileError::NotShared`] when the request's agent may not use
    /// the profile, a refresh error (see [`refresh`](Self::refresh)), or
    /// [`AuthProfileError::Resolve`].
    pub fn credential(
        &self,
        profile: &AuthProfile,
        request: &ResolveRequest,
    ) -> Result<ProfileCredential, AuthProfileError> {
        let agent = request.requester().agent();
        if !profile.serves(agent) {
            return Err(AuthProfileError::NotShared {
                id: profile.id.clone(),
                agent: agent.to_owned(),
            });
        }
        let due = self.clock.now().saturating_add(self.refresh_ahead);
        let expiring = |p: &AuthProfile| {
            matches!(
                &p.credential,
                Credential::Oauth { expires_at: Some(at), .. } if *at <= due
            )
        };
        let mut profile = profile.clone();
        // Twice at most: a caller holding an outdated profile first gets the
        // tokens another worker refreshed, and refreshes those only if they
        // are themselves about to expire.
        for _ in 0..2 {
            if !expiring(&profile) {
                break;
            }
            profile = self.refresh_from(&profile, false)?;
        }
        let request = request
            .clone()
            .via_auth_profile(profile.id.as_str())
            .map_err(|e| AuthProfileError::Invalid {
                message: e.to_string(),
            })?;
        let secret = self
            .resolver
            .resolve(profile.credential.call_handle(), &request)
            .map_err(|source| AuthProfileError::Resolve {
                id: profile.id.clone(),
                source: Box::new(source),
            })?;
        Ok(ProfileCredential { profile, secret })
    }

    /// Records how a call with `profile` (as selected) went, and persists
    /// the consequence: success clears the failure count; rate limits,
    /// server errors, timeouts and billing problems start a cooldown (see
    /// [`CooldownPolicy`]); invalid credentials disable an API-key or token
    /// profile, and refresh an OAuth profile once (single-flight) before
    /// disabling it at the next rejection.
    ///
    /// # Errors
    /// [`AuthProfileError::NotFound`], a refresh error other than the
    /// endpoint's own verdict (which is reported as
    /// [`Reported::Disabled`] or [`Reported::CoolingDown`]), or a store
    /// failure.
    pub fn report(
        &self,
        profile: &AuthProfile,
        outcome: CallOutcome,
    ) -> Result<Reported, AuthProfileError> {
        let now = self.clock.now();
        let (kind, retry_after) = match outcome {
            CallOutcome::Success => {
                let (stored, ()) = self.update(&profile.id, |p| record_success(p, now))?;
                return Ok(match stored.status {
                    ProfileStatus::Disabled { reason, .. } => Reported::Disabled { reason },
                    _ => Reported::Healthy,
                });
            }
            CallOutcome::InvalidCredentials => return self.invalid_credentials(profile, now),
            CallOutcome::RateLimited { retry_after } => (FailureKind::RateLimited, retry_after),
            CallOutcome::ServerError { retry_after } => (FailureKind::ServerError, retry_after),
            CallOutcome::Timeout => (FailureKind::Timeout, None),
            CallOutcome::Billing => (FailureKind::Billing, None),
        };
        let jitter = self.jitter.sample();
        let (_, reported) = self.update(&profile.id, |p| {
            record_failure(p, kind, retry_after, now, &self.cooldown, jitter)
        })?;
        Ok(reported)
    }

    fn invalid_credentials(
        &self,
        seen: &AuthProfile,
        now: crate::Timestamp,
    ) -> Result<Reported, AuthProfileError> {
        let current = self
            .store
            .get(&seen.id)?
            .ok_or_else(|| AuthProfileError::NotFound {
                id: seen.id.clone(),
            })?;
        if current.refresh.generation != seen.refresh.generation {
            return Ok(Reported::Stale);
        }
        if let ProfileStatus::Disabled { reason, .. } = current.status {
            return Ok(Reported::Disabled { reason });
        }
        let refreshable = current.credential.refresh_handle().is_some()
            && self.refresher.is_some()
            && !current.refresh.after_rejection;
        if refreshable {
            return match self.refresh_from(&current, true) {
                Ok(p) => Ok(Reported::Refreshed {
                    generation: p.refresh.generation,
                }),
                Err(AuthProfileError::RefreshRejected { .. }) => Ok(Reported::Disabled {
                    reason: DisableReason::RefreshRejected,
                }),
                Err(AuthProfileError::RefreshUnavailable { until, .. }) => {
                    let failures = match self.store.get(&seen.id)?.map(|p| p.status) {
                        Some(ProfileStatus::CoolingDown { failures, .. }) => failures,
                        _ => 1,
                    };
                    Ok(Reported::CoolingDown { until, failures })
                }
                Err(e) => Err(e),
            };
        }
        let generation = seen.refresh.generation;
        let (_, reported) = self.update(&seen.id, |p| {
            if p.refresh.generation != generation {
                Reported::Stale
            } else {
                record_disable(p, DisableReason::InvalidCredentials, now)
            }
        })?;
        Ok(reported)
    }

    /// Disables profile `id` until [`enable`](Self::enable); `note` says
    /// why (never a secret).
    ///
    /// # Errors
    /// [`AuthProfileError::NotFound`], [`AuthProfileError::Invalid`] for a
    /// note with control characters, or a store failure.
    pub fn disable(&self, id: &ProfileId, note: &str) -> Result<(), AuthProfileError> {
        let note = super::profile::checked_text("note", note.to_owned(), 1024)?;
        let at = self.clock.now();
        self.update(id, |p| {
            p.status = ProfileStatus::Disabled {
                at,
                reason: DisableReason::Operator { note: note.clone() },
            };
        })
        .map(drop)
    }

    /// Makes profile `id` active again, clearing cooldowns, failures and a
    /// disable.
    ///
    /// # Errors
    /// [`AuthProfileError::NotFound`] or a store failure.
    pub fn enable(&self, id: &ProfileId) -> Result<(), AuthProfileError> {
        self.update(id, |p| {
            p.status = ProfileStatus::Active;
            p.refresh.after_rejection = false;
        })
        .map(drop)
    }

    /// Ends the pin of `requester`'s conversation with `provider` (when the
    /// conversation ends). A requester without a conversation has no pin.
    ///
    /// # Errors
    /// A store failure.
    pub fn unpin(
        &self,
        requester: &Requester,
        provider: &ModelProvider,
    ) -> Result<(), AuthProfileError> {
        match requester.conversation_id() {
            Some(conversation) => self.store.set_pin(
                PinKey::new(requester.agent(), provider.clone(), conversation),
                None,
            ),
            None => Ok(()),
        }
    }

    /// Read, change, compare-and-set; retried when another writer won.
    /// Writes nothing when `change` changes nothing. Returns the profile as
    /// stored and what `change` returned the last time.
    pub(super) fn update<T>(
        &self,
        id: &ProfileId,
        mut change: impl FnMut(&mut AuthProfile) -> T,
    ) -> Result<(AuthProfile, T), AuthProfileError> {
        let mut last_conflict = None;
        for _ in 0..MAX_CAS_RETRIES {
            let before = self
                .store
                .get(id)?
                .ok_or_else(|| AuthProfileError::NotFound { id: id.clone() })?;
            let mut after = before.clone();
            let result = change(&mut after);
            if after == before {
                return Ok((after, result));
            }
            match self
                .store
                .compare_and_set(after.clone(), Some(before.revision))
            {
                Ok(revision) => {
                    after.revision = revision;
                    return Ok((after, result));
                }
                Err(conflict @ AuthProfileError::Conflict { .. }) => {
                    last_conflict = Some(conflict);
                    std::thread::yield_now();
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_conflict.unwrap_or(AuthProfileError::NotFound { id: id.clone() }))
    }

    /// A resolve request on behalf of `profile` itself (its owning agent),
    /// for `what`, naming the profile.
    pub(super) fn internal_request(
        &self,
        profile: &AuthProfile,
        what: &str,
    ) -> Result<ResolveRequest, AuthProfileError> {
        let invalid = |e: crate::RequestError| AuthProfileError::Invalid {
            message: e.to_string(),
        };
        let purpose =
            Purpose::new(format!("{what} of auth profile {}", profile.id)).map_err(invalid)?;
        ResolveRequest::new(
            Requester::new(profile.agent.clone()).map_err(invalid)?,
            purpose,
        )
        .via_auth_profile(profile.id.as_str())
        .map_err(invalid)
    }
}

impl fmt::Debug for AuthProfiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthProfiles")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("cooldown", &self.cooldown)
            .field("refresher", &self.refresher)
            .field("orders", &self.orders)
            .finish_non_exhaustive()
    }
}

impl AuthProfilesBuilder {
    /// Reads the time from `clock` (tests pass a
    /// [`ManualClock`](super::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.profiles.clock = clock;
        self
    }

    /// Draws cooldown jitter from `jitter` (tests pass a
    /// [`FixedJitter`](super::FixedJitter)).
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.profiles.jitter = jitter;
        self
    }

    /// Uses `policy` for cooldowns.
    pub fn cooldown(mut self, policy: CooldownPolicy) -> Self {
        self.profiles.cooldown = policy;
        self
    }

    /// Refreshes OAuth tokens with `refresher`.
    pub fn refresher(mut self, refresher: Arc<dyn Refresher>) -> Self {
        self.profiles.refresher = Some(refresher);
        self
    }

    /// Uses `order` for `agent` with `provider`: profiles are tried in this
    /// order, and profiles not listed are not used.
    pub fn order(
        mut self,
        agent: impl Into<String>,
        provider: ModelProvider,
        order: Vec<ProfileId>,
    ) -> Self {
        self.profiles
            .orders
            .entry(provider)
            .or_default()
            .insert(agent.into(), order);
        self
    }

    /// How long a refresh waits for another worker's refresh of the same
    /// profile (default 30 s). Keep it longer than the refresher's own
    /// timeout.
    pub fn refresh_lock_timeout(mut self, timeout: Duration) -> Self {
        self.profiles.refresh_lock_timeout = timeout;
        self
    }

    /// How long before its known expiry an access token is refreshed
    /// (default 60 s).
    pub fn refresh_ahead(mut self, margin: Duration) -> Self {
        self.profiles.refresh_ahead = margin;
        self
    }

    /// How long the previous access token stays readable after a refresh
    /// (default zero: retired at once). The previous refresh token is
    /// always retired at once.
    pub fn access_token_grace(mut self, grace: Duration) -> Self {
        self.profiles.access_token_grace = grace;
        self
    }

    /// Builds.
    pub fn build(self) -> AuthProfiles {
        self.profiles
    }
}

impl fmt::Debug for AuthProfilesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthProfilesBuilder")
            .field("profiles", &self.profiles)
            .finish()
    }
}

/// A profile's credential, resolved: the profile as used (after any
/// refresh) and the value. `Debug` never shows the value; it is wiped on
/// drop.
pub struct ProfileCredential {
    profile: AuthProfile,
    secret: ResolvedSecret,
}

impl ProfileCredential {
    /// The profile, as used. Report the call's outcome with it.
    pub fn profile(&self) -> &AuthProfile {
        &self.profile
    }

    /// The resolved value with its handle and version.
    pub fn secret(&self) -> &ResolvedSecret {
        &self.secret
    }

    /// The resolved value, consuming the wrapper.
    pub fn into_secret(self) -> ResolvedSecret {
        self.secret
    }
}

impl ExposeSecret<[u8]> for ProfileCredential {
    fn expose_secret(&self) -> &[u8] {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for ProfileCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileCredential")
            .field("profile", &self.profile.id)
            .field("secret", &self.secret)
            .finish()
    }
}
