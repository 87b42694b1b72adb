//! A provider wrapper that fails or delays a chosen fraction of calls.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tyrum_secrets_core::{
    Capabilities, Locator, ProviderError, SecretBytes, SecretProvider, Version, VersionInfo,
    VersionSelector, VersionedSecret,
};

/// Which calls a [`FaultyProvider`] fails or delays.
///
/// Fractions are in `0.0..=1.0`. Decisions come from a seeded generator, so
/// a test with a fixed seed sees the same faults on every run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultPlan {
    /// Fraction of calls that fail with [`ProviderError::Unavailable`].
    pub fail_fraction: f64,
    /// Fraction of calls that sleep for [`delay`](Self::delay) first.
    pub delay_fraction: f64,
    /// How long a delayed call sleeps.
    pub delay: Duration,
    /// Seed of the decision generator.
    pub seed: u64,
}

impl FaultPlan {
    /// No faults.
    pub const fn none() -> Self {
        Self {
            fail_fraction: 0.0,
            delay_fraction: 0.0,
            delay: Duration::ZERO,
            seed: 1,
        }
    }

    /// Every call fails.
    pub const fn fail_all() -> Self {
        Self {
            fail_fraction: 1.0,
            ..Self::none()
        }
    }

    /// A fraction of calls fail.
    pub const fn fail_fraction(fraction: f64, seed: u64) -> Self {
        Self {
            fail_fraction: fraction,
            seed,
            ..Self::none()
        }
    }

    /// Every call sleeps `delay` first.
    pub const fn delay_all(delay: Duration) -> Self {
        Self {
            delay_fraction: 1.0,
            delay,
            ..Self::none()
        }
    }
}

/// Wraps a provider and injects failures and delays per a [`FaultPlan`],
/// which can be changed while the provider is in use.
pub struct FaultyProvider<P> {
    inner: P,
    plan: Mutex<FaultPlan>,
    state: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    delays: AtomicU64,
}

impl<P: SecretProvider> FaultyProvider<P> {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: P, plan: FaultPlan) -> Self {
        Self {
            inner,
            state: AtomicU64::new(plan.seed.max(1)),
            plan: Mutex::new(plan),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            delays: AtomicU64::new(0),
        }
    }

    /// Replaces the plan (the generator keeps its state).
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.plan.lock().unwrap_or_else(|p| p.into_inner()) = plan;
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// Calls delayed so far.
    pub fn delays(&self) -> u64 {
        self.delays.load(Ordering::SeqCst)
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// A uniform draw in `[0, 1)` from a shared xorshift64* state.
    fn draw(&self) -> f64 {
        let mut x = self.state.load(Ordering::Relaxed);
        loop {
            let mut next = x;
            next ^= next >> 12;
            next ^= next << 25;
            next ^= next >> 27;
            match self
                .state
                .compare_exchange_weak(x, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    return (next.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64
                        / (1u64 << 53) as f64;
                }
                Err(current) => x = current,
            }
        }
    }

    fn before_call(&self, operation: &str) -> Result<(), ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let plan = *self.plan.lock().unwrap_or_else(|p| p.into_inner());
        if plan.delay_fraction > 0.0 && self.draw() < plan.delay_fraction {
            self.delays.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(plan.delay);
        }
        if plan.fail_fraction > 0.0 && self.draw() < plan.fail_fraction {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(ProviderError::Unavailable {
                message: format!("injected fault in {operation}"),
            });
        }
        Ok(())
    }
}

impl<P: SecretProvider> fmt::Debug for FaultyProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyProvider")
            .field("inner", &self.inner)
            .field(
                "plan",
                &*self.plan.lock().unwrap_or_else(|p| p.into_inner()),
            )
            .field("calls", &self.calls())
            .finish()
    }
}

impl<P: SecretProvider> SecretProvider for FaultyProvider<P> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        self.before_call("read")?;
        self.inner.read(locator, version)
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        self.before_call("write")?;
        self.inner.write(locator, value)
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        self.before_call("delete")?;
        self.inner.delete(locator, version)
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        self.before_call("destroy")?;
        self.inner.destroy(locator, version)
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        self.before_call("list")?;
        self.inner.list()
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        self.before_call("versions")?;
        self.inner.versions(locator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tyrum_secrets_core::MemoryProvider;

    #[test]
    fn fail_fraction_fails_about_that_fraction_deterministically() {
        let count = |seed| {
            let p =
                FaultyProvider::new(MemoryProvider::new(), FaultPlan::fail_fraction(0.25, seed));
            (0..2000).filter(|_| p.list().is_err()).count()
        };
        let failed = count(7);
        assert!((400..600).contains(&failed), "{failed} of 2000 failed");
        assert_eq!(failed, count(7), "same seed, same faults");
    }

    #[test]
    fn failures_are_unavailable_and_counted() {
        let p = FaultyProvider::new(MemoryProvider::new(), FaultPlan::fail_all());
        let locator = Locator::new("x").unwrap();
        assert!(matches!(
            p.read(&locator, VersionSelector::Latest),
            Err(ProviderError::Unavailable { .. })
        ));
        assert_eq!((p.calls(), p.failures()), (1, 1));
    }

    #[test]
    fn delay_all_sleeps_before_the_call() {
        let p = FaultyProvider::new(
            MemoryProvider::new(),
            FaultPlan::delay_all(Duration::from_millis(30)),
        );
        let start = std::time::Instant::now();
        let _ = p.list();
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!((p.calls(), p.delays()), (1, 1));
    }
}
