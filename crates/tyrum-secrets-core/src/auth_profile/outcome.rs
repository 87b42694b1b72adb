//! What happened when a profile was used, and what that does to it:
//! cooldowns with bounded, jittered exponential backoff, and disabling.

use std::time::Duration;

use super::{AuthProfile, DisableReason, FailureKind, ProfileStatus};
use crate::Timestamp;

/// How a call to the model provider with a profile's credential went, as
/// the caller reports it to [`AuthProfiles::report`](super::AuthProfiles::report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The call succeeded: the failure count is cleared.
    Success,
    /// The provider rate-limited the account (HTTP 429).
    RateLimited {
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The provider failed (HTTP 5xx).
    ServerError {
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The provider rejected the credential (HTTP 401, or 403 for a bad
    /// key). OAuth profiles get one refresh; then they are disabled.
    InvalidCredentials,
    /// The account has a billing problem (HTTP 402, quota exhausted).
    Billing,
    /// The call timed out.
    Timeout,
}

/// What [`AuthProfiles::report`](super::AuthProfiles::report) did to the
/// profile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reported {
    /// The success was recorded; the profile is (still) usable.
    Healthy,
    /// The profile cools down and is not selected before `until`.
    CoolingDown {
        /// Not selected before this instant.
        until: Timestamp,
        /// Consecutive failures so far.
        failures: u32,
    },
    /// The profile is disabled until an operator enables it.
    Disabled {
        /// Why.
        reason: DisableReason,
    },
    /// The provider rejected the OAuth access token, so the tokens were
    /// refreshed (by this call or a concurrent one): retry with the new
    /// access token.
    Refreshed {
        /// The refresh generation the profile is now at.
        generation: u64,
    },
    /// The rejected access token had already been replaced by a refresh;
    /// nothing changed. Retry with the new one.
    Stale,
}

/// How long a failing profile cools down.
///
/// The `n`-th consecutive failure (of any kind, counted until a success)
/// cools the profile down for
///
/// - rate limit, server error, timeout, token endpoint unavailable:
///   `min(max, initial × 2^(n−1))` — by default 30 s, 1 min, 2 min, 4 min, …,
///   at most 1 h;
/// - billing: `min(billing_max, billing × 2^(n−1))` — by default 5 h, 10 h,
///   20 h, at most 24 h;
///
/// shortened by a random fraction of at most `jitter` (default 20 %) so
/// that workers sharing an account do not all return at once, and never
/// shorter than the provider's `Retry-After` (itself capped at
/// `max_retry_after`, default 24 h, so a broken header cannot park a profile
/// for years).
///
/// ```
/// use std::time::Duration;
/// use tyrum_secrets_core::{CooldownPolicy, FailureKind};
///
/// let policy = CooldownPolicy::default();
/// let third = policy.cooldown(FailureKind::RateLimited, 3, None, 0);
/// assert_eq!(third, Duration::from_secs(120));
/// let told = policy.cooldown(FailureKind::RateLimited, 1, Some(Duration::from_secs(600)), 0);
/// assert_eq!(told, Duration::from_secs(600));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CooldownPolicy {
    initial: Duration,
    max: Duration,
    billing: Duration,
    billing_max: Duration,
    max_retry_after: Duration,
    jitter_permille: u32,
}

impl Default for CooldownPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            billing: Duration::from_secs(5 * 3600),
            billing_max: Duration::from_secs(24 * 3600),
            max_retry_after: Duration::from_secs(24 * 3600),
            jitter_permille: 200,
        }
    }
}

impl CooldownPolicy {
    /// The first cooldown of a transient failure (default 30 s).
    pub fn initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// The longest cooldown of a transient failure (default 1 h).
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The first cooldown after a billing failure (default 5 h).
    pub fn billing(mut self, billing: Duration) -> Self {
        self.billing = billing;
        self
    }

    /// The longest cooldown after billing failures (default 24 h).
    pub fn billing_max(mut self, billing_max: Duration) -> Self {
        self.billing_max = billing_max;
        self
    }

    /// The longest `Retry-After` honoured (default 24 h).
    pub fn max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// The largest fraction, in thousandths, by which jitter shortens a
    /// cooldown (default 200, i.e. 20 %; capped at 1000).
    pub fn jitter_permille(mut self, permille: u32) -> Self {
        self.jitter_permille = permille.min(1000);
        self
    }

    /// The cooldown after the `failures`-th consecutive failure of `kind`
    /// (`failures` counts from 1), given the provider's `retry_after` and a
    /// [`Jitter`](super::Jitter) sample (`0`: no shortening, `u32::MAX`: the
    /// full jitter fraction).
    pub fn cooldown(
        &self,
        kind: FailureKind,
        failures: u32,
        retry_after: Option<Duration>,
        jitter: u32,
    ) -> Duration {
        let (base, cap) = match kind {
            FailureKind::Billing => (self.billing, self.billing_max),
            _ => (self.initial, self.max),
        };
        let doublings = failures.saturating_sub(1).min(63);
        let grown = base.as_nanos().saturating_mul(1u128 << doublings);
        let backoff = grown.min(cap.as_nanos());
        let shortening = backoff
            .saturating_mul(u128::from(self.jitter_permille))
            .saturating_mul(u128::from(jitter))
            / (1000 * u128::from(u32::MAX));
        let jittered = nanos(backoff - shortening);
        let floor = retry_after.map_or(Duration::ZERO, |r| r.min(self.max_retry_after));
        jittered.max(floor)
    }
}

fn nanos(n: u128) -> Duration {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(n % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// How precisely a profile's last good use is kept: a success within this
/// window of the recorded one changes nothing, so a busy profile is not a
/// store write (a file rewrite and fsync) per call.
pub const LAST_GOOD_USE_GRANULARITY: Duration = Duration::from_secs(1);

/// Records a success: clears failures and the refresh-after-rejection
/// mark, and stamps the last good use. A disabled profile stays disabled.
pub(crate) fn record_success(profile: &mut AuthProfile, now: Timestamp) {
    if matches!(profile.status, ProfileStatus::CoolingDown { .. }) {
        profile.status = ProfileStatus::Active;
    }
    profile.refresh.after_rejection = false;
    match profile.last_good_use {
        Some(last) if last.saturating_add(LAST_GOOD_USE_GRANULARITY) > now => {}
        _ => profile.last_good_use = Some(now),
    }
}

/// Records a failure of `kind`: a cooldown one step longer than the last.
/// A disabled profile stays disabled. Returns what was done.
pub(crate) fn record_failure(
    profile: &mut AuthProfile,
    kind: FailureKind,
    retry_after: Option<Duration>,
    now: Timestamp,
    policy: &CooldownPolicy,
    jitter: u32,
) -> Reported {
    let failures = match &profile.status {
        ProfileStatus::Disabled { reason, .. } => {
            return Reported::Disabled {
                reason: reason.clone(),
            };
        }
        ProfileStatus::CoolingDown { failures, .. } => failures.saturating_add(1),
        ProfileStatus::Active => 1,
    };
    let until = now.saturating_add(policy.cooldown(kind, failures, retry_after, jitter));
    profile.status = ProfileStatus::CoolingDown {
        until,
        reason: kind,
        failures,
    };
    Reported::CoolingDown { until, failures }
}

/// Disables the profile (keeping an earlier disable and its reason).
pub(crate) fn record_disable(
    profile: &mut AuthProfile,
    reason: DisableReason,
    now: Timestamp,
) -> Reported {
    if let ProfileStatus::Disabled { reason, .. } = &profile.status {
        return Reported::Disabled {
            reason: reason.clone(),
        };
    }
    profile.status = ProfileStatus::Disabled {
        at: now,
        reason: reason.clone(),
    };
    Reported::Disabled { reason }
}
