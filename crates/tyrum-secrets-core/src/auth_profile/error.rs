//! What can go wrong with auth profiles. Never carries a secret value.

use std::path::PathBuf;
use std::time::Duration;

use super::{DisableReason, ModelProvider, ProfileId, Skipped, select};
use crate::{AdminError, HandleId, ResolveError, Timestamp};

/// An auth-profile operation failed. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthProfileError {
    /// No usable profile: every candidate was passed over.
    #[error(
        "no auth profile of agent {agent:?} for {provider} can be used now{}",
        unavailable_detail(skipped, ready_at)
    )]
    NoneAvailable {
        /// The agent.
        agent: String,
        /// The model provider.
        provider: ModelProvider,
        /// Every candidate, with the reason it was passed over.
        skipped: Vec<Skipped>,
        /// The earliest end of a cooldown, if a profile is cooling down.
        ready_at: Option<Timestamp>,
    },
    /// No profile with this id.
    #[error("unknown auth profile {id}")]
    NotFound {
        /// The id.
        id: ProfileId,
    },
    /// The profile is disabled.
    #[error("auth profile {id} is disabled ({reason}); an operator must enable it")]
    Disabled {
        /// The profile.
        id: ProfileId,
        /// Why.
        reason: DisableReason,
    },
    /// The profile belongs to another agent and is not shared with this one.
    #[error(
        "auth profile {id} is not available to agent {agent:?}; share it with that agent or use its own"
    )]
    NotShared {
        /// The profile.
        id: ProfileId,
        /// The agent that asked.
        agent: String,
    },
    /// The profile cannot be refreshed.
    #[error("auth profile {id} cannot be refreshed: {reason}")]
    NotRefreshable {
        /// The profile.
        id: ProfileId,
        /// Why.
        reason: &'static str,
    },
    /// The token endpoint rejected the refresh token; the profile is now
    /// disabled.
    #[error(
        "the token endpoint rejected the refresh token of auth profile {id}{}; the profile is disabled until it is signed in again",
        status_suffix(*status)
    )]
    RefreshRejected {
        /// The profile.
        id: ProfileId,
        /// The HTTP status, if there was one.
        status: Option<u16>,
    },
    /// The token endpoint could not refresh now; the profile cools down.
    #[error(
        "the token endpoint could not refresh auth profile {id}{}; it cools down until {until}",
        status_suffix(*status)
    )]
    RefreshUnavailable {
        /// The profile.
        id: ProfileId,
        /// The HTTP status, if there was one.
        status: Option<u16>,
        /// The end of the cooldown.
        until: Timestamp,
    },
    /// Another thread or process holds the profile's refresh lock and did
    /// not finish in time.
    #[error(
        "another worker is refreshing auth profile {id} (waited {waited:?}); retry, or check for a hung token endpoint"
    )]
    RefreshLocked {
        /// The profile.
        id: ProfileId,
        /// How long this caller waited.
        waited: Duration,
    },
    /// A resolve through the resolver failed (policy, audit, catalog,
    /// provider).
    #[error("resolving the credential of auth profile {id} failed: {source}")]
    Resolve {
        /// The profile.
        id: ProfileId,
        /// The resolver's error.
        #[source]
        source: Box<ResolveError>,
    },
    /// Writing refreshed tokens to the catalog failed.
    #[error("storing the refreshed {what} of auth profile {id} as {handle} failed: {source}")]
    Rotate {
        /// The profile.
        id: ProfileId,
        /// Which token.
        what: &'static str,
        /// Its handle.
        handle: HandleId,
        /// The admin's error.
        #[source]
        source: Box<AdminError>,
    },
    /// Another writer changed the profile first and retries did not settle.
    #[error(
        "concurrent update of auth profile {id}: expected revision {expected:?}, found {actual:?}; retry"
    )]
    Conflict {
        /// The profile.
        id: ProfileId,
        /// Revision the writer read.
        expected: Option<u64>,
        /// Revision stored.
        actual: Option<u64>,
    },
    /// Another process holds the store's writer lock.
    #[error(
        "the auth-profile store is locked by another writer (waited {waited:?}); retry, or check the process holding {path}"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long this writer waited.
        waited: Duration,
    },
    /// The store file is not a valid auth-profile store.
    #[error("auth-profile store {path} is corrupt: {message}; restore it from a backup")]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Input is not valid.
    #[error("invalid auth profile input: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// An I/O error on the store.
    #[error("I/O error: {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn unavailable_detail(skipped: &[Skipped], ready_at: &Option<Timestamp>) -> String {
    if skipped.is_empty() {
        return ": none is configured; add one".to_owned();
    }
    let mut text = format!(": {}", select::list(skipped));
    match ready_at {
        Some(at) => text.push_str(&format!("; the first cooldown ends at {at}")),
        None => text.push_str("; enable, fix or add a profile"),
    }
    text
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}
