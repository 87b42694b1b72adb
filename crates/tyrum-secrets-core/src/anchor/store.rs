//! Where an anchor's bytes are kept: the [`AnchorStore`] trait, a provider
//! locator and an in-memory store for tests.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::AnchorError;
use crate::provider::{Locator, ProviderError, SecretProvider, Version, VersionSelector};
use crate::{ExposeSecret, SecretBytes};

/// Somewhere an anchor's bytes (a few hundred, not secret but
/// authenticated) are kept between runs.
///
/// `save` replaces what `load` returns and is durable when it returns: after
/// a crash, `load` gives either the previous bytes or the new ones, never a
/// mix. Saves come from one writer at a time (the file's owner holds its
/// writer lock), so implementations need no compare-and-set.
pub trait AnchorStore: Send + Sync + fmt::Debug {
    /// The bytes last saved; `None` when nothing was ever saved.
    ///
    /// # Errors
    /// A storage failure.
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError>;

    /// Replaces the stored bytes, durably.
    ///
    /// # Errors
    /// A storage failure; the previous bytes are then still in place.
    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError>;

    /// Where the anchor is, for messages (a path, a locator); never a
    /// secret.
    fn location(&self) -> String;
}

impl<S: AnchorStore + ?Sized> AnchorStore for Arc<S> {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        (**self).load()
    }
    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError> {
        (**self).save(bytes)
    }
    fn location(&self) -> String {
        (**self).location()
    }
}

/// An anchor kept in this process's memory, for tests. Clones share the
/// same bytes, so a test can keep one to look at or roll back the anchor
/// (to any state in its [`history`](Self::history), such as the moment
/// between a rewrite's announcement and its rename), and
/// [`fail`](Self::fail) makes every later load and save fail.
#[derive(Clone, Default)]
pub struct MemoryAnchor {
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
    history: Arc<Mutex<Vec<Vec<u8>>>>,
    failing: Arc<AtomicBool>,
}

impl MemoryAnchor {
    /// An empty anchor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes held (to restore later with [`set_bytes`](Self::set_bytes)).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        self.lock().clone()
    }

    /// Every byte string saved so far, oldest first.
    pub fn history(&self) -> Vec<Vec<u8>> {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the bytes held, as an attacker or a restored backup would.
    pub fn set_bytes(&self, bytes: Option<Vec<u8>>) {
        *self.lock() = bytes;
    }

    /// Makes every later load and save fail with
    /// [`AnchorError::Unavailable`] (`true`), or work again (`false`).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), AnchorError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AnchorError::Unavailable {
                location: self.location(),
            });
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<u8>>> {
        // Every mutation is one assignment: a poisoned value is consistent.
        self.bytes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for MemoryAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAnchor")
            .field("failing", &self.failing.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl AnchorStore for MemoryAnchor {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        self.check()?;
        Ok(self.lock().clone())
    }

    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError> {
        self.check()?;
        *self.lock() = Some(bytes.to_vec());
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(bytes.to_vec());
        Ok(())
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

/// An anchor kept as the value at a locator of any [`SecretProvider`]: an
/// OS keychain entry, an OpenBao KV path, another store.
///
/// Each save writes a new version and then destroys the one before it
/// (best effort), so the provider keeps one or two versions, not one per
/// write.
#[derive(Debug)]
pub struct ProviderAnchor {
    provider: Arc<dyn SecretProvider>,
    locator: Locator,
}

impl ProviderAnchor {
    /// The anchor at `locator` in `provider`.
    pub fn new(provider: Arc<dyn SecretProvider>, locator: Locator) -> Self {
        Self { provider, locator }
    }

    fn failed(&self, source: ProviderError) -> AnchorError {
        AnchorError::Provider {
            location: self.location(),
            source,
        }
    }
}

impl AnchorStore for ProviderAnchor {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        match self.provider.read(&self.locator, VersionSelector::Latest) {
            Ok(found) => Ok(Some(found.value.expose_secret().to_vec())),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn save(&self, bytes: &[u8]) -> Result<(), AnchorError> {
        let version = self
            .provider
            .write(&self.locator, &SecretBytes::from(bytes.to_vec()))
            .map_err(|e| self.failed(e))?;
        if let Some(previous) = version.get().checked_sub(1).and_then(Version::new) {
            // Best effort: the new version is already the one `load` reads;
            // a provider that cannot destroy just keeps more versions.
            let _ = self.provider.destroy(&self.locator, previous);
        }
        Ok(())
    }

    fn location(&self) -> String {
        format!("provider locator {}", self.locator)
    }
}
