//! [`FileOptions`]: how a store is opened or created.

use std::path::Path;
use std::time::Duration;

use tyrum_secrets_core::anchor::Anchor;

use crate::key::{KdfLimits, KdfParams};

/// How long a writer waits for another writer's lock by default.
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for opening or creating a store.
#[derive(Clone, Debug)]
pub struct FileOptions {
    pub(crate) kdf: KdfParams,
    pub(crate) kdf_limits: KdfLimits,
    pub(crate) lock_timeout: Duration,
    pub(crate) compact_on_destroy: bool,
    anchor: AnchorChoice,
}

/// Where the store's anchor is, if anywhere.
#[derive(Clone, Debug)]
enum AnchorChoice {
    None,
    Beside,
    At(Anchor),
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            kdf: KdfParams::RFC9106_SECOND,
            kdf_limits: KdfLimits::DEFAULT,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            compact_on_destroy: true,
            anchor: AnchorChoice::None,
        }
    }
}

impl FileOptions {
    /// Argon2id work factors for a store created by this open (or for the
    /// new passphrase of [`FileProvider::change_key`]). Existing stores
    /// keep the factors in their header. Default:
    /// [`KdfParams::RFC9106_SECOND`].
    ///
    /// [`FileProvider::change_key`]: crate::FileProvider::change_key
    pub fn kdf_params(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }

    /// Caps on the work factors a store's header may ask for. Default:
    /// [`KdfLimits::DEFAULT`] (1 GiB, 16 passes, 16 lanes).
    pub fn kdf_limits(mut self, limits: KdfLimits) -> Self {
        self.kdf_limits = limits;
        self
    }

    /// How long a writer waits for the lock held by a writer in another
    /// process before failing with [`FileError::LockTimeout`]. Default 10 s.
    ///
    /// [`FileError::LockTimeout`]: crate::FileError::LockTimeout
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Whether [`SecretProvider::destroy`] rewrites the file at once so the
    /// destroyed ciphertext leaves it (default `true`). With `false`, a
    /// destroy appends a marker and the ciphertext leaves the file at the
    /// next [`FileProvider::compact`], [`FileProvider::change_key`] or
    /// [`FileProvider::rotate_data_key`].
    ///
    /// [`SecretProvider::destroy`]: tyrum_secrets_core::SecretProvider::destroy
    /// [`FileProvider::compact`]: crate::FileProvider::compact
    /// [`FileProvider::change_key`]: crate::FileProvider::change_key
    /// [`FileProvider::rotate_data_key`]: crate::FileProvider::rotate_data_key
    pub fn compact_on_destroy(mut self, compact: bool) -> Self {
        self.compact_on_destroy = compact;
        self
    }

    /// Keeps the store's head in `anchor` (FORMAT.md, "Rollback anchor"):
    /// every open checks the store against it and refuses a store cut
    /// short or rolled back to an older copy; every write advances it.
    /// Pick a place the store's writers cannot roll back together with the
    /// store: a keychain entry or an OpenBao path
    /// ([`Anchor::provider`]). Every process that writes the store should
    /// use the same anchor. Default: none.
    pub fn anchor(mut self, anchor: Anchor) -> Self {
        self.anchor = AnchorChoice::At(anchor);
        self
    }

    /// Keeps the store's anchor in the sibling file `<store>.anchor`
    /// ([`Anchor::beside`]): the simplest setup. It catches a store file
    /// restored or cut short on its own, not a whole directory rolled back.
    pub fn anchor_beside(mut self) -> Self {
        self.anchor = AnchorChoice::Beside;
        self
    }

    /// The anchor for the store at `path`, if one is configured.
    pub(crate) fn anchor_for(&self, path: &Path) -> Option<Anchor> {
        match &self.anchor {
            AnchorChoice::None => None,
            AnchorChoice::Beside => Some(Anchor::beside(path)),
            AnchorChoice::At(anchor) => Some(anchor.clone()),
        }
    }

    /// Cheap KDF parameters for tests, examples and benchmarks: see
    /// [`KdfParams::dangerous_insecure_for_tests`]. Never for real secrets.
    pub fn dangerous_insecure_kdf_for_tests(self) -> Self {
        self.kdf_params(KdfParams::dangerous_insecure_for_tests())
    }
}
