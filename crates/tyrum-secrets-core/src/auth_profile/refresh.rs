//! OAuth refresh: a caller-supplied [`Refresher`] exchanges the refresh
//! token; the new tokens are written as new versions of their handles
//! through [`SecretAdmin::rotate`](crate::SecretAdmin::rotate) (publish,
//! point, retire; audited, and registered with the admin's redactor) and
//! the old refresh token is retired at once.
//!
//! Refresh is single-flight per profile across threads and processes: the
//! store's refresh lock admits one refresher at a time, and a caller that
//! waited finds the generation moved on and uses the winner's tokens
//! instead of spending the refresh token again.
//!
//! Order of writes, so that no crash loses a usable refresh token that was
//! not already spent: the new refresh token first, then the new access
//! token, then the profile (expiry, generation). A crash after the token
//! endpoint answered and before the new refresh token is stored loses it;
//! no order avoids that window, and it is the one place a refresh token can
//! be lost.

use std::fmt;
use std::time::Duration;

use super::handles::rotate_token;
use super::outcome::{record_disable, record_failure};
use super::{
    AuthProfile, AuthProfileError, AuthProfiles, Credential, DisableReason, FailureKind,
    ProfileStatus, Reported,
};
use crate::{HandleId, RotateOptions, SecretBytes};

/// Exchanges a refresh token for new tokens at the provider's token
/// endpoint. Supplied by the caller (it knows the endpoint, client id and
/// HTTP stack).
///
/// An implementation must bound its own call with a timeout, must never put
/// a token or a response body into an error, and should classify failures:
/// [`RefreshError::Rejected`] when the endpoint says the refresh token is
/// no good (`invalid_grant`: the profile is disabled), and
/// [`RefreshError::Unavailable`] for anything that may pass (the profile
/// cools down).
pub trait Refresher: Send + Sync + fmt::Debug {
    /// Exchanges `request.refresh_token()`.
    ///
    /// # Errors
    /// [`RefreshError`], classified as above.
    fn refresh(&self, request: &RefreshRequest<'_>) -> Result<RefreshedTokens, RefreshError>;
}

/// What a [`Refresher`] gets: the profile and its current refresh token.
pub struct RefreshRequest<'a> {
    profile: &'a AuthProfile,
    refresh_token: &'a SecretBytes,
}

impl<'a> RefreshRequest<'a> {
    /// The profile being refreshed (provider, labels, account).
    pub fn profile(&self) -> &'a AuthProfile {
        self.profile
    }

    /// The refresh token to exchange.
    pub fn refresh_token(&self) -> &'a SecretBytes {
        self.refresh_token
    }
}

impl fmt::Debug for RefreshRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("profile", &self.profile.id)
            .field("refresh_token", &"[REDACTED]")
            .finish()
    }
}

/// New tokens from the token endpoint. Wiped on drop; `Debug` shows no
/// token.
pub struct RefreshedTokens {
    access_token: SecretBytes,
    refresh_token: Option<SecretBytes>,
    expires_in: Option<Duration>,
}

impl RefreshedTokens {
    /// A new access token, valid for `expires_in` (the endpoint's
    /// `expires_in`) if it said.
    pub fn new(access_token: SecretBytes, expires_in: Option<Duration>) -> Self {
        Self {
            access_token,
            refresh_token: None,
            expires_in,
        }
    }

    /// The endpoint rotated the refresh token: this is the new one, and the
    /// old one is retired.
    pub fn with_refresh_token(mut self, refresh_token: SecretBytes) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }
}

impl fmt::Debug for RefreshedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshedTokens")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// A refresh failed. Carries no token and no response body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The endpoint rejected the refresh token (`invalid_grant`): it is
    /// revoked, expired or already spent. The profile is disabled.
    #[error("the token endpoint rejected the refresh token")]
    Rejected {
        /// The HTTP status, if there was one.
        status: Option<u16>,
    },
    /// The endpoint could not be reached or failed; worth retrying later.
    /// The profile cools down.
    #[error("the token endpoint is unavailable")]
    Unavailable {
        /// The HTTP status, if there was one.
        status: Option<u16>,
        /// The endpoint's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
}

impl AuthProfiles {
    /// Refreshes `profile`'s OAuth tokens now, single-flight: if another
    /// thread or process refreshed since `profile` was read, returns the
    /// profile as it left it without spending the refresh token again.
    ///
    /// The refresh token is resolved through the resolver (policy and
    /// audit apply, the record names the profile). On success the profile's
    /// refresh generation grows by one and its expiry moves.
    ///
    /// # Errors
    /// [`AuthProfileError::NotRefreshable`] (not OAuth, no refresh token, no
    /// refresher configured), [`AuthProfileError::Disabled`],
    /// [`AuthProfileError::RefreshRejected`] (the profile is now disabled),
    /// [`AuthProfileError::RefreshUnavailable`] (it now cools down),
    /// [`AuthProfileError::RefreshLocked`], [`AuthProfileError::Resolve`],
    /// [`AuthProfileError::Rotate`] or a store failure.
    pub fn refresh(&self, profile: &AuthProfile) -> Result<AuthProfile, AuthProfileError> {
        self.refresh_from(profile, false)
    }

    /// The refresh; `after_rejection` marks a refresh made because the
    /// provider rejected the access token.
    pub(super) fn refresh_from(
        &self,
        seen: &AuthProfile,
        after_rejection: bool,
    ) -> Result<AuthProfile, AuthProfileError> {
        let id = &seen.id;
        let not_refreshable = |reason| AuthProfileError::NotRefreshable {
            id: id.clone(),
            reason,
        };
        if !matches!(seen.credential, Credential::Oauth { .. }) {
            return Err(not_refreshable("it is not an OAuth profile"));
        }
        let refresher = self
            .refresher
            .as_ref()
            .ok_or_else(|| not_refreshable("no refresher is configured"))?;

        let _lock = self.store.lock_refresh(id, self.refresh_lock_timeout)?;
        let current = self
            .store
            .get(id)?
            .ok_or_else(|| AuthProfileError::NotFound { id: id.clone() })?;
        if current.refresh.generation != seen.refresh.generation {
            // Another worker refreshed while we waited: use its tokens.
            return Ok(current);
        }
        if let ProfileStatus::Disabled { reason, .. } = &current.status {
            return Err(AuthProfileError::Disabled {
                id: id.clone(),
                reason: reason.clone(),
            });
        }
        let Credential::Oauth {
            access_token,
            refresh_token: Some(refresh_token),
            ..
        } = &current.credential
        else {
            return Err(not_refreshable("it has no refresh token"));
        };

        let request = self.internal_request(&current, "refresh the OAuth tokens")?;
        let old = self
            .resolver
            .resolve(refresh_token, &request)
            .map_err(|source| AuthProfileError::Resolve {
                id: id.clone(),
                source: Box::new(source),
            })?;
        let answer = refresher.refresh(&RefreshRequest {
            profile: &current,
            refresh_token: old.value(),
        });
        drop(old);
        let now = self.clock.now();
        let tokens = match answer {
            Ok(tokens) => tokens,
            Err(RefreshError::Rejected { status }) => {
                self.update(id, |p| {
                    record_disable(p, DisableReason::RefreshRejected, now)
                })?;
                return Err(AuthProfileError::RefreshRejected {
                    id: id.clone(),
                    status,
                });
            }
            Err(RefreshError::Unavailable {
                status,
                retry_after,
            }) => {
                let jitter = self.jitter.sample();
                let (_, reported) = self.update(id, |p| {
                    record_failure(
                        p,
                        FailureKind::RefreshUnavailable,
                        retry_after,
                        now,
                        &self.cooldown,
                        jitter,
                    )
                })?;
                return Err(match reported {
                    Reported::CoolingDown { until, .. } => AuthProfileError::RefreshUnavailable {
                        id: id.clone(),
                        status,
                        until,
                    },
                    _ => AuthProfileError::RefreshRejected {
                        id: id.clone(),
                        status,
                    },
                });
            }
        };

        // Publish, point, retire: first the token that cannot be had again.
        if let Some(new_refresh) = &tokens.refresh_token {
            self.rotate(
                &current,
                refresh_token,
                "refresh token",
                new_refresh,
                Duration::ZERO,
            )?;
        }
        self.rotate(
            &current,
            access_token,
            "access token",
            &tokens.access_token,
            self.access_token_grace,
        )?;
        let expires_at = tokens.expires_in.map(|d| now.saturating_add(d));
        let generation = current.refresh.generation.saturating_add(1);
        let (updated, ()) = self.update(id, |p| {
            if let Credential::Oauth {
                expires_at: stored, ..
            } = &mut p.credential
            {
                *stored = expires_at;
            }
            p.refresh.generation = generation;
            p.refresh.refreshed_at = Some(now);
            p.refresh.after_rejection = after_rejection;
        })?;
        Ok(updated)
    }

    fn rotate(
        &self,
        profile: &AuthProfile,
        handle: &HandleId,
        what: &'static str,
        value: &SecretBytes,
        grace: Duration,
    ) -> Result<(), AuthProfileError> {
        let options = RotateOptions::default().retire_previous_after(grace);
        rotate_token(&self.admin, handle, value, options, profile)
            .map(drop)
            .map_err(|source| AuthProfileError::Rotate {
                id: profile.id.clone(),
                what,
                handle: handle.clone(),
                source: Box::new(source),
            })
    }
}
