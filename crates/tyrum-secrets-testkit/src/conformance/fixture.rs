//! What a conformance test runs against: a provider, what it needs to live,
//! and a way to open it again.

use std::any::Any;
use std::fmt;

use tyrum_secrets_core::SecretProvider;

type Open = Box<dyn FnMut() -> Box<dyn SecretProvider>>;

/// A provider under test together with its setup.
///
/// - It can **own** what the provider needs (a temporary directory, a
///   server handle) with [`owning`](Self::owning); that is dropped after the
///   provider when the test ends, so tests leak no directories.
/// - It can **reopen** the provider over the same storage: a fixture made
///   with [`reopening`](Self::reopening) calls its opener once now and once
///   per [`reopen`](Self::reopen), after dropping the previous provider, as
///   a restarted process would. The `data_survives_reopen` check needs it
///   for every provider whose values outlive the process (persistence other
///   than `Process`).
///
/// Any provider converts into a fixture that owns nothing and cannot
/// reopen, so `provider_conformance!(MemoryProvider::new())` keeps working.
///
/// ```
/// use tyrum_secrets_core::MemoryProvider;
/// use tyrum_secrets_testkit::conformance::Fixture;
///
/// // A provider over a directory that lives exactly as long as the test.
/// fn fixture() -> Fixture {
///     let dir = tempfile::tempdir().unwrap();
///     let path = dir.path().join("store");
///     Fixture::reopening(move || {
///         let _ = &path; // open the real provider at `path` here
///         MemoryProvider::new()
///     })
///     .owning(dir)
/// }
/// let mut f = fixture();
/// assert!(f.can_reopen());
/// assert!(f.reopen());
/// ```
pub struct Fixture {
    // Fields drop in order: the provider before what it needs.
    provider: Option<Box<dyn SecretProvider>>,
    open: Option<Open>,
    guards: Vec<Box<dyn Any>>,
}

impl Fixture {
    /// A fixture around `provider` that cannot reopen it.
    pub fn new(provider: impl SecretProvider + 'static) -> Self {
        Self {
            provider: Some(Box::new(provider)),
            open: None,
            guards: Vec::new(),
        }
    }

    /// A fixture that opens its provider with `open` now and again on each
    /// [`reopen`](Self::reopen). Every call must open the same storage.
    pub fn reopening<P: SecretProvider + 'static>(mut open: impl FnMut() -> P + 'static) -> Self {
        let first = open();
        Self {
            provider: Some(Box::new(first)),
            open: Some(Box::new(move || Box::new(open()))),
            guards: Vec::new(),
        }
    }

    /// Keeps `guard` (a `tempfile::TempDir`, a server) alive until the
    /// fixture drops, after the provider.
    pub fn owning(mut self, guard: impl Any) -> Self {
        self.guards.push(Box::new(guard));
        self
    }

    /// The provider.
    pub fn provider(&self) -> &dyn SecretProvider {
        match &self.provider {
            Some(provider) => provider.as_ref(),
            // `reopen` puts a provider back before it returns, or panics
            // through the test.
            None => panic!("the fixture lost its provider in a failed reopen"),
        }
    }

    /// Whether [`reopen`](Self::reopen) can open the provider again.
    pub fn can_reopen(&self) -> bool {
        self.open.is_some()
    }

    /// Drops the provider and opens a new one over the same storage.
    /// Returns `false`, and keeps the provider, when the fixture cannot.
    pub fn reopen(&mut self) -> bool {
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        drop(self.provider.take());
        self.provider = Some(open());
        true
    }
}

impl<P: SecretProvider + 'static> From<P> for Fixture {
    fn from(provider: P) -> Self {
        Self::new(provider)
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("provider", &self.provider)
            .field("can_reopen", &self.can_reopen())
            .field("guards", &self.guards.len())
            .finish()
    }
}
