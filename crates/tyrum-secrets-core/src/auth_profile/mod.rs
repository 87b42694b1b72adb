//! Auth profiles: model-provider credentials of agents (API keys, OAuth
//! tokens, static tokens) as handles plus metadata, for deterministic
//! credential selection, failover and multi-account routing without any
//! value leaving the resolver.
//!
//! - [`AuthProfile`]: id, owning agent, model provider, credential type and
//!   the handles in its slots, access-token expiry, labels, status (active,
//!   cooling down, disabled). Never a value.
//! - [`AuthProfileStore`]: where profiles and conversation pins live, with
//!   compare-and-set per profile and a refresh lock per profile;
//!   [`MemoryAuthProfileStore`] and the durable, multi-process
//!   [`JsonFileAuthProfileStore`].
//! - [`AuthProfiles`]: [`select`](AuthProfiles::select) (pinned
//!   conversation, else explicit or least-recently-used order; every
//!   profile passed over comes with its reason),
//!   [`report`](AuthProfiles::report) (cooldowns with bounded, jittered
//!   exponential backoff; disabling), [`credential`](AuthProfiles::credential)
//!   (resolve through the [`Resolver`](crate::Resolver), refreshing an
//!   expiring OAuth token first) and single-flight
//!   [`refresh`](AuthProfiles::refresh) with a caller-supplied
//!   [`Refresher`].
//!
//! Time and jitter are injected ([`Clock`], [`Jitter`]), so cooldown
//! schedules are testable without waiting.

mod clock;
mod error;
mod handles;
mod json_file;
mod outcome;
mod profile;
mod refresh;
mod select;
mod service;
mod store;

pub use clock::{Clock, FixedJitter, Jitter, ManualClock, RandomJitter, SystemClock};
pub use error::AuthProfileError;
pub use json_file::JsonFileAuthProfileStore;
pub use outcome::{CallOutcome, CooldownPolicy, LAST_GOOD_USE_GRANULARITY, Reported};
pub use profile::{
    AuthProfile, Credential, CredentialType, DisableReason, FailureKind, ModelProvider, ProfileId,
    ProfileLabels, ProfileStatus, RefreshState, Slot,
};
pub use refresh::{RefreshError, RefreshRequest, RefreshedTokens, Refresher};
pub use select::{Choice, Selection, Skipped, Unusable};
pub use service::{AuthProfiles, AuthProfilesBuilder, ProfileCredential};
pub use store::{AuthProfileStore, MemoryAuthProfileStore, Pin, PinKey, ProfileSet, RefreshLock};

#[cfg(test)]
mod tests;
