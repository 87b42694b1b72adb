//! The clock the opener checks expiry against, so tests can move time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tyrum_secrets_core::Timestamp;

/// Where the opener and the replay guard read the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock ([`Timestamp::now`]). The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to. Clones share one time, so a test
/// can hand one clone to an opener and move the other.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock that reads `at` until moved.
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(at.unix_millis())))
    }

    /// Sets the time.
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.unix_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward by `by`, saturating at the far future.
    pub fn advance(&self, by: Duration) {
        self.set(self.now().saturating_add(by));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}
