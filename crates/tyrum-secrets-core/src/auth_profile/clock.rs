//! Time and randomness for cooldowns, injectable so tests are
//! deterministic.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::Timestamp;

/// Where [`AuthProfiles`](super::AuthProfiles) reads the time: cooldown
/// ends, token expiry, last good use.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told: for tests and simulations.
///
/// ```
/// use std::time::Duration;
/// use tyrum_secrets_core::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp::from_unix_millis(1_000));
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now(), Timestamp::from_unix_millis(3_000));
/// ```
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(AtomicU64::new(start.unix_millis()))
    }

    /// Sets the time.
    pub fn set(&self, now: Timestamp) {
        self.0.store(now.unix_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Where cooldowns get their jitter: a uniformly distributed `u32` per
/// cooldown. [`CooldownPolicy`](super::CooldownPolicy) turns it into a
/// shortening of at most its jitter fraction.
pub trait Jitter: Send + Sync + fmt::Debug {
    /// A uniformly distributed sample.
    fn sample(&self) -> u32;
}

/// Jitter from the operating system's random number generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomJitter;

impl Jitter for RandomJitter {
    fn sample(&self) -> u32 {
        let mut bytes = [0u8; 4];
        // Without randomness, no jitter: the full (longest) cooldown.
        match getrandom::fill(&mut bytes) {
            Ok(()) => u32::from_le_bytes(bytes),
            Err(_) => 0,
        }
    }
}

/// Jitter that always returns the same sample: `FixedJitter::new(0)` gives
/// the full cooldown, `u32::MAX` the shortest.
#[derive(Debug)]
pub struct FixedJitter(AtomicU32);

impl FixedJitter {
    /// Always `sample`.
    pub fn new(sample: u32) -> Self {
        Self(AtomicU32::new(sample))
    }

    /// Changes the sample returned from now on.
    pub fn set(&self, sample: u32) {
        self.0.store(sample, Ordering::SeqCst);
    }
}

impl Jitter for FixedJitter {
    fn sample(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}
