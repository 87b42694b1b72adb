//! Which profile to use: a pure function of the profiles, their state, the
//! catalog's view of their handles, the time, the configured order and the
//! conversation's pin.
//!
//! 1. A conversation pinned to a usable profile keeps it.
//! 2. Otherwise the candidates — profiles of the model provider that the
//!    agent owns or is allowed to share — are ranked: in the explicit order
//!    if one is configured for the agent and provider (unlisted profiles
//!    are not used), else least recently used first (by last good use,
//!    never-used first, then id), which spreads new conversations over the
//!    accounts.
//! 3. The first usable candidate in rank order is chosen. Every profile
//!    passed over on the way is reported with the reason.

use std::fmt;
use std::sync::Arc;

use super::{
    AuthProfile, Credential, DisableReason, FailureKind, ModelProvider, Pin, PinKey, ProfileId,
    ProfileSet, ProfileStatus, Slot,
};
use crate::{HandleId, Timestamp};

/// The answer of [`AuthProfiles::select`](super::AuthProfiles::select): the
/// chosen profile, why, and why each profile ranked ahead of it was passed
/// over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    profile: Arc<AuthProfile>,
    choice: Choice,
    skipped: Vec<Skipped>,
}

impl Selection {
    /// The chosen profile, as stored when it was chosen.
    pub fn profile(&self) -> &AuthProfile {
        &self.profile
    }

    /// Why it was chosen.
    pub fn choice(&self) -> &Choice {
        &self.choice
    }

    /// The profiles passed over before the chosen one, in the order they
    /// were considered, each with the reason.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// One line that explains the choice, for logs and operators.
    pub fn explain(&self) -> String {
        let mut text = format!("chose auth profile {} ({})", self.profile.id, self.choice);
        if !self.skipped.is_empty() {
            text.push_str("; passed over ");
            text.push_str(&list(&self.skipped));
        }
        text
    }
}

/// Why a profile was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Choice {
    /// The conversation is pinned to it and it is usable.
    Pinned {
        /// Since when.
        since: Timestamp,
    },
    /// First usable profile in the explicit order configured for the agent
    /// and provider.
    ExplicitOrder {
        /// Its place in that order, from 0.
        position: usize,
    },
    /// First usable profile in the stable order (least recently used first,
    /// then id).
    StableOrder {
        /// Its place in that order, from 0.
        position: usize,
    },
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Pinned { since } => write!(f, "the conversation is pinned to it since {since}"),
            Choice::ExplicitOrder { position } => {
                write!(f, "place {} in the configured order", position + 1)
            }
            Choice::StableOrder { position } => {
                write!(f, "place {} in least-recently-used order", position + 1)
            }
        }
    }
}

/// A profile passed over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The profile.
    pub profile: ProfileId,
    /// Why it was not used.
    pub reason: Unusable,
}

/// Why a profile was not used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unusable {
    /// It is cooling down after a failure.
    CoolingDown {
        /// Usable again at this instant.
        until: Timestamp,
        /// The failure.
        reason: FailureKind,
        /// Consecutive failures.
        failures: u32,
    },
    /// It is disabled.
    Disabled {
        /// Why.
        reason: DisableReason,
    },
    /// Its token expired and it has no refresh token.
    Expired {
        /// When.
        at: Timestamp,
    },
    /// The catalog revoked one of its handles.
    HandleRevoked {
        /// Which slot.
        slot: Slot,
        /// The handle.
        handle: HandleId,
        /// When.
        at: Timestamp,
    },
    /// One of its handles expired in the catalog (and cannot be refreshed).
    HandleExpired {
        /// Which slot.
        slot: Slot,
        /// The handle.
        handle: HandleId,
        /// When.
        at: Timestamp,
    },
    /// One of its handles is not in the catalog.
    HandleUnknown {
        /// Which slot.
        slot: Slot,
        /// The handle.
        handle: HandleId,
    },
    /// The catalog could not say whether one of its handles may resolve.
    CatalogUnavailable {
        /// Which slot.
        slot: Slot,
        /// The handle.
        handle: HandleId,
    },
    /// The configured order or the pin names it, but the store has no such
    /// profile for this agent and provider.
    NotFound,
    /// An explicit order is configured for the agent and provider and does
    /// not list it.
    NotInOrder,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::CoolingDown {
                until,
                reason,
                failures,
            } => write!(
                f,
                "cooling down until {until} after {failures} failure(s), last: {reason}"
            ),
            Unusable::Disabled { reason } => write!(f, "disabled ({reason})"),
            Unusable::Expired { at } => {
                write!(f, "token expired at {at} and cannot be refreshed")
            }
            Unusable::HandleRevoked { slot, handle, at } => {
                write!(f, "its {slot} {handle} was revoked at {at}")
            }
            Unusable::HandleExpired { slot, handle, at } => {
                write!(f, "its {slot} {handle} expired at {at}")
            }
            Unusable::HandleUnknown { slot, handle } => {
                write!(f, "its {slot} {handle} is not in the catalog")
            }
            Unusable::CatalogUnavailable { slot, handle } => {
                write!(f, "the catalog could not be read for its {slot} {handle}")
            }
            Unusable::NotFound => f.write_str("no such profile for this agent and provider"),
            Unusable::NotInOrder => f.write_str("not listed in the configured order"),
        }
    }
}

/// `a (reason), b (reason)`.
pub(crate) fn list(skipped: &[Skipped]) -> String {
    let mut text = String::new();
    for (i, s) in skipped.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!("{} ({})", s.profile, s.reason));
    }
    text
}

/// What the catalog says about a handle, as selection needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandleState {
    Usable,
    Revoked(Timestamp),
    Expired(Timestamp),
    Unknown,
    Unavailable,
}

/// The catalog as selection sees it: one state per handle at a fixed time.
pub(crate) trait HandleStates {
    fn state(&self, handle: &HandleId) -> HandleState;
}

impl<F: Fn(&HandleId) -> HandleState> HandleStates for F {
    fn state(&self, handle: &HandleId) -> HandleState {
        self(handle)
    }
}

/// What to select for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'a> {
    pub(crate) agent: &'a str,
    pub(crate) provider: &'a ModelProvider,
    pub(crate) conversation: Option<&'a str>,
    pub(crate) order: Option<&'a [ProfileId]>,
    pub(crate) now: Timestamp,
}

/// The pure selection. `Err` holds every candidate with its reason when
/// none is usable.
pub(crate) fn choose(
    set: &ProfileSet,
    query: &Query<'_>,
    handles: &dyn HandleStates,
) -> Result<(Arc<AuthProfile>, Choice, Vec<Skipped>), Vec<Skipped>> {
    let mut skipped = Vec::new();
    let serves = |p: &AuthProfile| p.provider == *query.provider && p.serves(query.agent);

    let mut pinned = None;
    if let Some(conversation) = query.conversation {
        let key = PinKey::new(query.agent, query.provider.clone(), conversation);
        if let Some(Pin { profile: id, since }) = set.pin(&key) {
            pinned = Some(id);
            match set.shared(id).filter(|p| serves(p)) {
                None => skipped.push(skip(id, Unusable::NotFound)),
                Some(profile) => match usable(profile, query.now, handles) {
                    Ok(()) => {
                        let choice = Choice::Pinned { since: *since };
                        return Ok((Arc::clone(profile), choice, skipped));
                    }
                    Err(reason) => skipped.push(skip(id, reason)),
                },
            }
        }
    }
    let not_pinned = |id: &ProfileId| pinned != Some(id);

    match query.order {
        Some(order) => {
            for (position, id) in order.iter().enumerate().filter(|(_, id)| not_pinned(id)) {
                let Some(profile) = set.shared(id).filter(|p| serves(p)) else {
                    skipped.push(skip(id, Unusable::NotFound));
                    continue;
                };
                match usable(profile, query.now, handles) {
                    Ok(()) => {
                        let choice = Choice::ExplicitOrder { position };
                        return Ok((Arc::clone(profile), choice, skipped));
                    }
                    Err(reason) => skipped.push(skip(id, reason)),
                }
            }
            skipped.extend(
                set.profiles()
                    .filter(|p| serves(p) && not_pinned(&p.id) && !order.contains(&p.id))
                    .map(|p| skip(&p.id, Unusable::NotInOrder)),
            );
            Err(skipped)
        }
        None => {
            let ranked = set.ranked(query.provider, query.agent);
            let candidates = ranked.iter().filter(|p| not_pinned(&p.id));
            for (position, profile) in candidates.enumerate() {
                match usable(profile, query.now, handles) {
                    Ok(()) => {
                        let choice = Choice::StableOrder { position };
                        return Ok((Arc::clone(profile), choice, skipped));
                    }
                    Err(reason) => skipped.push(skip(&profile.id, reason)),
                }
            }
            Err(skipped)
        }
    }
}

fn skip(id: &ProfileId, reason: Unusable) -> Skipped {
    Skipped {
        profile: id.clone(),
        reason,
    }
}

/// Whether `profile` may be used at `now`: its own state first (cheap),
/// then the catalog's view of each of its handles.
pub(crate) fn usable(
    profile: &AuthProfile,
    now: Timestamp,
    handles: &dyn HandleStates,
) -> Result<(), Unusable> {
    match &profile.status {
        ProfileStatus::Active => {}
        ProfileStatus::CoolingDown {
            until,
            reason,
            failures,
        } => {
            if *until > now {
                return Err(Unusable::CoolingDown {
                    until: *until,
                    reason: *reason,
                    failures: *failures,
                });
            }
        }
        ProfileStatus::Disabled { reason, .. } => {
            return Err(Unusable::Disabled {
                reason: reason.clone(),
            });
        }
    }
    let refreshable = matches!(
        &profile.credential,
        Credential::Oauth {
            refresh_token: Some(_),
            ..
        }
    );
    if let Some(at) = profile.credential.expires_at().filter(|at| *at <= now)
        && !refreshable
    {
        return Err(Unusable::Expired { at });
    }
    for (slot, handle) in profile.credential.slots() {
        let handle_reason = match handles.state(handle) {
            HandleState::Usable => continue,
            // An expired access token is what a refresh replaces.
            HandleState::Expired(_) if refreshable && slot == Slot::AccessToken => continue,
            HandleState::Expired(at) => Unusable::HandleExpired {
                slot,
                handle: handle.clone(),
                at,
            },
            HandleState::Revoked(at) => Unusable::HandleRevoked {
                slot,
                handle: handle.clone(),
                at,
            },
            HandleState::Unknown => Unusable::HandleUnknown {
                slot,
                handle: handle.clone(),
            },
            HandleState::Unavailable => Unusable::CatalogUnavailable {
                slot,
                handle: handle.clone(),
            },
        };
        return Err(handle_reason);
    }
    Ok(())
}

impl Selection {
    pub(crate) fn new(profile: Arc<AuthProfile>, choice: Choice, skipped: Vec<Skipped>) -> Self {
        Self {
            profile,
            choice,
            skipped,
        }
    }
}
