//! [`KeychainProvider`]: versioned secrets in a keyring-core credential store.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use keyring_core::{CredentialPersistence, CredentialStore};
use tyrum_secrets_core::{
    Capabilities, ExposeSecret, Locator, Persistence, ProviderError, SecretBytes, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionedSecret,
};
use zeroize::Zeroizing;

use crate::blob::{Blobs, Head, MAX_PIECES, MIN_CHUNK_LEN};
use crate::error::KeychainError;
use crate::index::{LocatorIndex, RootIndex, VersionRecord};

/// The namespace (keychain service prefix) used unless the caller picks one.
pub const DEFAULT_NAMESPACE: &str = "tyrum-secrets";

/// The largest value stored unless the caller picks another limit: 64 KiB.
/// Keychains hold credentials, not files; larger values are refused with
/// [`KeychainError::ValueTooLarge`].
pub const DEFAULT_MAX_VALUE_LEN: usize = 64 * 1024;

/// How long one provider call may take before it fails with
/// [`KeychainError::TimedOut`], unless the caller picks another bound.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest item Windows Credential Manager stores (`CRED_MAX_CREDENTIAL_BLOB_SIZE`).
pub const WINDOWS_MAX_ITEM_LEN: usize = 2560;

/// Item size used for the kernel keyring: well under the 32,767-byte limit
/// of a `user` key.
pub const KEYUTILS_ITEM_LEN: usize = 16 * 1024;

/// The user name of the locator list item.
const ROOT_USER: &str = "locators";

/// A [`SecretProvider`] over an OS keychain, through a keyring-core
/// [`CredentialStore`] the caller chooses.
///
/// Each version of a locator is its own keychain item (service
/// `<namespace>#v<N>`, user `<locator>`), values longer than the store's
/// item limit are split across items (`<namespace>#v<N>.c<K>`), and a small
/// per-locator index item (`<namespace>#index`) records which versions exist,
/// so the provider never trusts the caller about versions. A locator list
/// item (`<namespace>#locators`) backs [`list`](SecretProvider::list).
///
/// Every call runs on a worker thread and fails with
/// [`KeychainError::TimedOut`] if the store does not answer within the
/// provider's timeout (a D-Bus call stuck on an unlock prompt, a hung
/// daemon), so no call hangs.
///
/// Within a process, every provider on the same kind of store and the same
/// namespace shares one lock, so concurrent writers never lose a version.
/// Across processes there is no lock: two processes writing the same
/// namespace at once can give two values the same version number (the later
/// one wins) or drop a locator from [`list`](SecretProvider::list). Run one
/// writing process per namespace.
///
/// `Debug` shows the configuration, never a value.
pub struct KeychainProvider {
    inner: Arc<Inner>,
}

/// Configures a [`KeychainProvider`]; from [`KeychainProvider::builder`].
pub struct KeychainProviderBuilder {
    store: Arc<CredentialStore>,
    namespace: String,
    chunk_len: Option<usize>,
    max_value_len: usize,
    timeout: Duration,
}

struct Inner {
    store: Arc<CredentialStore>,
    vendor: String,
    namespace: String,
    chunk_len: usize,
    max_value_len: usize,
    timeout: Duration,
    persistence: Persistence,
    lock: Arc<Mutex<()>>,
}

impl KeychainProvider {
    /// A provider over `store` with the default namespace, size limit and
    /// timeout.
    ///
    /// # Errors
    /// Never for the defaults; see [`KeychainProviderBuilder::build`].
    pub fn new(store: Arc<CredentialStore>) -> Result<Self, KeychainError> {
        Self::builder(store).build()
    }

    /// Starts configuring a provider over `store`.
    pub fn builder(store: Arc<CredentialStore>) -> KeychainProviderBuilder {
        KeychainProviderBuilder {
            store,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            chunk_len: None,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A warning for the operator when the store does not keep values
    /// durably, `None` when it does.
    ///
    /// The kernel keyring keeps values only until reboot; a mock or
    /// in-process store only until the process exits. Show this where the
    /// operator configures the provider.
    pub fn persistence_warning(&self) -> Option<&'static str> {
        persistence_warning(self.inner.persistence)
    }

    /// The namespace: the prefix of every keychain service name this
    /// provider uses.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The bound on one provider call.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The largest keychain item the provider writes.
    pub fn chunk_len(&self) -> usize {
        self.inner.chunk_len
    }

    /// Runs `op` on a worker thread under the namespace lock, bounded by the
    /// provider's timeout.
    fn run<T: Send + 'static>(
        &self,
        action: String,
        op: impl FnOnce(&Inner) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, KeychainError> {
        let inner = Arc::clone(&self.inner);
        let cancelled = Arc::new(AtomicBool::new(false));
        let worker_cancelled = Arc::clone(&cancelled);
        let worker_action = action.clone();
        // `None`: a timeout too long to add to now, i.e. no deadline.
        let deadline = Instant::now().checked_add(self.inner.timeout);
        let result = bounded(&action, self.inner.timeout, move || {
            // The caller gives up at the deadline: do not start a store
            // operation nobody will see the result of, and do not stay
            // parked on the lock behind a hung call either.
            let Some(_guard) = lock_until(&inner.lock, deadline, &worker_cancelled) else {
                return Err(KeychainError::TimedOut {
                    action: worker_action,
                    timeout: inner.timeout,
                });
            };
            op(&inner)
        });
        if matches!(result, Err(KeychainError::TimedOut { .. })) {
            cancelled.store(true, Ordering::SeqCst);
        }
        result
    }
}

/// The warning [`KeychainProvider::persistence_warning`] gives for a
/// persistence, `None` for durable storage.
pub fn persistence_warning(persistence: Persistence) -> Option<&'static str> {
    match persistence {
        Persistence::Durable => None,
        Persistence::UntilReboot => Some(
            "this keychain (the Linux kernel keyring) keeps secrets only until reboot, \
             and may drop them at logout; keep a durable copy elsewhere (Secret Service, \
             encrypted file) and reload them after a restart",
        ),
        Persistence::Process => Some(
            "this keychain store keeps secrets only in this process's memory; \
             they are gone when it exits",
        ),
        _ => Some(
            "this keychain store does not report how long it keeps secrets; \
             do not rely on it as the only copy",
        ),
    }
}

/// Takes `lock`, waiting no later than `deadline` (if any) and not after
/// `cancelled` is set; `None` then.
///
/// A worker thread blocked in `Mutex::lock` behind a call that hangs (a
/// D-Bus unlock prompt nobody answers) would stay blocked after its caller
/// timed out, one thread per call for as long as the hang lasts. Polling
/// lets every such worker exit at its caller's deadline.
pub(crate) fn lock_until<'a>(
    lock: &'a Mutex<()>,
    deadline: Option<Instant>,
    cancelled: &AtomicBool,
) -> Option<MutexGuard<'a, ()>> {
    let mut pause = Duration::from_micros(100);
    loop {
        match lock.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poison)) => return Some(poison.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) || cancelled.load(Ordering::SeqCst) {
            return None;
        }
        let left = deadline.map_or(pause, |d| d - now);
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Runs `op` on a new thread and waits at most `timeout` for its result.
///
/// A call that times out keeps running on its thread until the store
/// returns; its result is dropped (secret bytes in it are wiped on drop).
pub(crate) fn bounded<T: Send + 'static>(
    action: &str,
    timeout: Duration,
    op: impl FnOnce() -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("tyrum-keychain".to_owned())
        .spawn(move || {
            // The receiver is gone when the caller timed out; the result is
            // then dropped here.
            let _ = tx.send(op());
        })
        .map_err(|e| KeychainError::Worker {
            action: action.to_owned(),
            message: format!("could not start a worker thread: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(KeychainError::TimedOut {
            action: action.to_owned(),
            timeout,
        }),
        Err(RecvTimeoutError::Disconnected) => Err(KeychainError::Worker {
            action: action.to_owned(),
            message: "the credential store panicked (its message is on stderr)".to_owned(),
        }),
    }
}

impl KeychainProviderBuilder {
    /// The prefix of every keychain service name: 1 to 64 ASCII letters,
    /// digits, `-` or `_`. Default [`DEFAULT_NAMESPACE`]. Providers with
    /// different namespaces in one store do not see each other's secrets.
    ///
    /// Stores that join service and user into one name (Windows with `.`,
    /// kernel keyutils with `@`) stay unambiguous because a namespace holds
    /// none of `.`, `@` or `#`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The largest keychain item to write; longer values are split across
    /// items. Default by store: [`WINDOWS_MAX_ITEM_LEN`] for Windows,
    /// [`KEYUTILS_ITEM_LEN`] for the kernel keyring, one item per value
    /// otherwise. At least 64.
    pub fn chunk_len(mut self, chunk_len: usize) -> Self {
        self.chunk_len = Some(chunk_len);
        self
    }

    /// The largest value accepted. Default [`DEFAULT_MAX_VALUE_LEN`].
    pub fn max_value_len(mut self, max_value_len: usize) -> Self {
        self.max_value_len = max_value_len;
        self
    }

    /// The bound on one provider call. Default [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the provider. Touches no keychain item.
    ///
    /// # Errors
    /// [`KeychainError::Config`] for a bad namespace, a chunk length under
    /// 64, a zero timeout, or a size limit that would need more than 65,536
    /// items per value.
    pub fn build(self) -> Result<KeychainProvider, KeychainError> {
        check_namespace(&self.namespace)?;
        let vendor = self.store.vendor();
        let chunk_len = self
            .chunk_len
            .unwrap_or_else(|| default_chunk_len(&vendor, self.max_value_len));
        if chunk_len < MIN_CHUNK_LEN {
            return Err(KeychainError::Config {
                message: format!("chunk_len {chunk_len} is below the minimum of {MIN_CHUNK_LEN}"),
            });
        }
        if self.max_value_len / chunk_len + 2 > MAX_PIECES {
            return Err(KeychainError::Config {
                message: format!(
                    "max_value_len {} needs more than {MAX_PIECES} items of {chunk_len} bytes",
                    self.max_value_len
                ),
            });
        }
        if self.timeout.is_zero() {
            return Err(KeychainError::Config {
                message: "the timeout must be longer than zero".to_owned(),
            });
        }
        let persistence = map_store_persistence(self.store.persistence());
        let lock = namespace_lock(&vendor, &self.namespace);
        Ok(KeychainProvider {
            inner: Arc::new(Inner {
                store: self.store,
                vendor,
                namespace: self.namespace,
                chunk_len,
                max_value_len: self.max_value_len,
                timeout: self.timeout,
                persistence,
                lock,
            }),
        })
    }
}

fn check_namespace(namespace: &str) -> Result<(), KeychainError> {
    let ok = !namespace.is_empty()
        && namespace.len() <= 64
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(KeychainError::Config {
            message: format!(
                "namespace {namespace:?} must be 1 to 64 ASCII letters, digits, '-' or '_'"
            ),
        })
    }
}

/// The item size for a store, recognised by its vendor string.
fn default_chunk_len(vendor: &str, max_value_len: usize) -> usize {
    if vendor.contains("windows-native-keyring-store") {
        WINDOWS_MAX_ITEM_LEN
    } else if vendor.contains("linux-keyutils-keyring-store") {
        KEYUTILS_ITEM_LEN
    } else {
        // One item per value: the blob head's prefix fits in the margin.
        max_value_len.saturating_add(64).max(MIN_CHUNK_LEN)
    }
}

pub(crate) fn map_store_persistence(persistence: CredentialPersistence) -> Persistence {
    match persistence {
        CredentialPersistence::EntryOnly | CredentialPersistence::ProcessOnly => {
            Persistence::Process
        }
        // Logout comes before reboot; both lose the value.
        CredentialPersistence::UntilLogout | CredentialPersistence::UntilReboot => {
            Persistence::UntilReboot
        }
        CredentialPersistence::UntilDelete => Persistence::Durable,
        _ => Persistence::External,
    }
}

/// The process-wide lock of one namespace in one kind of store.
pub(crate) fn namespace_lock(vendor: &str, namespace: &str) -> Arc<Mutex<()>> {
    /// One lock per (store vendor, namespace).
    type Locks = HashMap<(String, String), Arc<Mutex<()>>>;
    static LOCKS: OnceLock<Mutex<Locks>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    Arc::clone(
        locks
            .entry((vendor.to_owned(), namespace.to_owned()))
            .or_default(),
    )
}

impl fmt::Debug for KeychainProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainProvider")
            .field("store", &self.inner.vendor)
            .field("namespace", &self.inner.namespace)
            .field("persistence", &self.inner.persistence)
            .field("chunk_len", &self.inner.chunk_len)
            .field("max_value_len", &self.inner.max_value_len)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl fmt::Debug for KeychainProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainProviderBuilder")
            .field("namespace", &self.namespace)
            .field("chunk_len", &self.chunk_len)
            .field("max_value_len", &self.max_value_len)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn blobs(&self) -> Blobs<'_> {
        Blobs {
            store: &*self.store,
            chunk_len: self.chunk_len,
        }
    }

    fn index_service(&self) -> String {
        format!("{}#index", self.namespace)
    }

    fn root_service(&self) -> String {
        format!("{}#locators", self.namespace)
    }

    fn value_service(&self, version: u64) -> String {
        format!("{}#v{version}", self.namespace)
    }

    /// The locator's index and its blob head, `None` if the locator was
    /// never written.
    fn load_index(&self, locator: &Locator) -> Result<Option<(LocatorIndex, Head)>, KeychainError> {
        match self.blobs().read(&self.index_service(), locator.as_str())? {
            Some((head, bytes)) => Ok(Some((LocatorIndex::parse(&bytes, locator)?, head))),
            None => Ok(None),
        }
    }

    fn store_index(
        &self,
        locator: &Locator,
        index: &LocatorIndex,
        previous: Option<Head>,
    ) -> Result<(), KeychainError> {
        self.blobs()
            .write(
                &self.index_service(),
                locator.as_str(),
                &index.to_json(),
                previous,
            )
            .map(drop)
    }

    fn require_index(&self, locator: &Locator) -> Result<(LocatorIndex, Head), KeychainError> {
        self.load_index(locator)?
            .ok_or_else(|| KeychainError::NotFound {
                locator: locator.clone(),
            })
    }

    fn read(
        &self,
        locator: &Locator,
        selector: VersionSelector,
    ) -> Result<VersionedSecret, KeychainError> {
        let (index, _) = self.require_index(locator)?;
        let record = match selector {
            VersionSelector::Latest => {
                index
                    .latest_live()
                    .copied()
                    .ok_or_else(|| KeychainError::NotFound {
                        locator: locator.clone(),
                    })?
            }
            VersionSelector::Exact(version) => index
                .record(version)
                .filter(|r| !r.deleted)
                .copied()
                .ok_or_else(|| KeychainError::VersionNotFound {
                    locator: locator.clone(),
                    version,
                })?,
        };
        let version = Version::new(record.v).ok_or_else(|| corrupt_index(locator))?;
        let (_, bytes) = self
            .blobs()
            .read(&self.value_service(record.v), locator.as_str())?
            .ok_or_else(|| KeychainError::Corrupt {
                message: format!(
                    "{locator} {version} is listed but its keychain item is gone (removed \
                     outside tyrum-secrets, or a destroy was interrupted); destroy it again"
                ),
            })?;
        if u64::try_from(bytes.len()).ok() != Some(record.len) {
            return Err(KeychainError::Corrupt {
                message: format!(
                    "{locator} {version} reads {} bytes but {} were written",
                    bytes.len(),
                    record.len
                ),
            });
        }
        Ok(VersionedSecret {
            version,
            // `to_vec` allocates exactly `len` bytes, so the boxed slice the
            // secret takes over is this allocation, not a copy.
            value: SecretBytes::from(bytes.to_vec()),
        })
    }

    fn write(&self, locator: &Locator, value: &[u8]) -> Result<Version, KeychainError> {
        let (mut index, previous) = match self.load_index(locator)? {
            Some((index, head)) => (index, Some(head)),
            None => (LocatorIndex::empty(), None),
        };
        let number = index.next;
        let version = Version::new(number).ok_or_else(|| corrupt_index(locator))?;
        let next = number
            .checked_add(1)
            .ok_or_else(|| corrupt_index(locator))?;
        let service = self.value_service(number);
        // Items an interrupted earlier write left at this version are
        // replaced, and their pieces removed.
        let orphan = self.blobs().head(&service, locator.as_str())?;
        self.blobs()
            .write(&service, locator.as_str(), value, orphan)?;
        if previous.is_none() {
            self.add_to_root(locator)?;
        }
        index.versions.push(VersionRecord {
            v: number,
            deleted: false,
            len: u64::try_from(value.len()).unwrap_or(u64::MAX),
        });
        index.next = next;
        self.store_index(locator, &index, previous)?;
        Ok(version)
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), KeychainError> {
        let (mut index, head) = self.require_index(locator)?;
        let record = index
            .versions
            .iter_mut()
            .find(|r| r.v == version.get())
            .ok_or_else(|| KeychainError::VersionNotFound {
                locator: locator.clone(),
                version,
            })?;
        if !record.deleted {
            // Unreadable first, erased second: an interrupted delete never
            // leaves a readable version the caller asked to delete.
            record.deleted = true;
            self.store_index(locator, &index, Some(head))?;
        }
        self.blobs()
            .erase(&self.value_service(version.get()), locator.as_str())
            .map(drop)
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), KeychainError> {
        let (mut index, head) = self.require_index(locator)?;
        let position = index
            .versions
            .iter()
            .position(|r| r.v == version.get())
            .ok_or_else(|| KeychainError::VersionNotFound {
                locator: locator.clone(),
                version,
            })?;
        // Hidden first, erased second, forgotten last, as `delete`: an
        // interrupted destroy never leaves a half-erased version that
        // `Latest` still picks (it would fail as corrupt instead of falling
        // back to the version before), and retrying finishes it.
        let mut head = head;
        if !index.versions[position].deleted {
            index.versions[position].deleted = true;
            head = self.blobs().write(
                &self.index_service(),
                locator.as_str(),
                &index.to_json(),
                Some(head),
            )?;
        }
        self.blobs()
            .erase(&self.value_service(version.get()), locator.as_str())?;
        index.versions.remove(position);
        self.store_index(locator, &index, Some(head))
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, KeychainError> {
        Ok(self.require_index(locator)?.0.infos())
    }

    fn list(&self) -> Result<Vec<Locator>, KeychainError> {
        let root = match self.blobs().read(&self.root_service(), ROOT_USER)? {
            Some((_, bytes)) => RootIndex::parse(&bytes)?,
            None => return Ok(Vec::new()),
        };
        let mut live = Vec::new();
        for locator in root.locators {
            if let Some((index, _)) = self.load_index(&locator)?
                && index.has_live()
            {
                live.push(locator);
            }
        }
        Ok(live)
    }

    fn add_to_root(&self, locator: &Locator) -> Result<(), KeychainError> {
        let service = self.root_service();
        let (mut root, previous) = match self.blobs().read(&service, ROOT_USER)? {
            Some((head, bytes)) => (RootIndex::parse(&bytes)?, Some(head)),
            None => (RootIndex::empty(), None),
        };
        if root.locators.insert(locator.clone()) {
            self.blobs()
                .write(&service, ROOT_USER, &root.to_json(), previous)?;
        }
        Ok(())
    }
}

fn corrupt_index(locator: &Locator) -> KeychainError {
    KeychainError::Corrupt {
        message: format!("the version index of {locator} has an impossible version number"),
    }
}

impl SecretProvider for KeychainProvider {
    fn capabilities(&self) -> Capabilities {
        Capabilities::writable(self.inner.persistence).with_max_value_len(self.inner.max_value_len)
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let owned = locator.clone();
        self.run(format!("reading {locator}"), move |inner| {
            inner.read(&owned, version)
        })
        .map_err(ProviderError::from)
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        let len = value.expose_secret().len();
        if len > self.inner.max_value_len {
            return Err(ProviderError::ValueTooLarge {
                len,
                max: self.inner.max_value_len,
            });
        }
        let owned = locator.clone();
        let value = Zeroizing::new(value.expose_secret().to_vec());
        self.run(format!("writing {locator}"), move |inner| {
            inner.write(&owned, &value)
        })
        .map_err(ProviderError::from)
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let owned = locator.clone();
        self.run(format!("deleting {locator} {version}"), move |inner| {
            inner.delete(&owned, version)
        })
        .map_err(ProviderError::from)
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let owned = locator.clone();
        self.run(format!("destroying {locator} {version}"), move |inner| {
            inner.destroy(&owned, version)
        })
        .map_err(ProviderError::from)
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        self.run("listing locators".to_owned(), |inner| inner.list())
            .map_err(ProviderError::from)
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let owned = locator.clone();
        self.run(format!("listing versions of {locator}"), move |inner| {
            inner.versions(&owned)
        })
        .map_err(ProviderError::from)
    }
}
