//! The backend trait every secret store implements.
//!
//! Providers are versioned key/value stores of secret bytes. The trait is
//! synchronous and object-safe: every named backend (file, keychain, env,
//! Vault over blocking HTTP) is a blocking call, and async callers run
//! resolution in `spawn_blocking`. Optional operations have default methods
//! that return [`ProviderError::Unsupported`].
//!
//! Every implementation runs the conformance suite in
//! `tyrum-secrets-testkit`.

use std::fmt;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use crate::SecretBytes;

/// Where a secret lives inside a provider: a path, a variable name, a key.
///
/// Locators are metadata, never secret. 1 to 512 bytes of UTF-8 without
/// control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Locator(String);

impl Locator {
    /// Longest accepted locator, in bytes.
    pub const MAX_LEN: usize = 512;

    /// Checks and wraps a locator.
    ///
    /// # Errors
    /// [`LocatorError`] when it is empty, too long or holds a control
    /// character.
    pub fn new(locator: impl Into<String>) -> Result<Self, LocatorError> {
        let locator = locator.into();
        if locator.is_empty() {
            return Err(LocatorError::Empty);
        }
        if locator.len() > Self::MAX_LEN {
            return Err(LocatorError::TooLong { len: locator.len() });
        }
        if let Some(position) = locator
            .char_indices()
            .find(|(_, c)| c.is_control())
            .map(|(i, _)| i)
        {
            return Err(LocatorError::ControlCharacter { position });
        }
        Ok(Self(locator))
    }

    /// The locator as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Locator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A locator is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocatorError {
    /// The locator is empty.
    #[error("the locator is empty")]
    Empty,
    /// The locator is longer than 512 bytes.
    #[error("the locator is {len} bytes; at most 512 are allowed")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The locator holds a control character.
    #[error("the locator has a control character at byte {position}")]
    ControlCharacter {
        /// Byte offset of the character.
        position: usize,
    },
}

/// A version of a secret within a provider. Versions start at 1 and grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(NonZeroU64);

impl Version {
    /// The first version.
    pub const FIRST: Version = Version(NonZeroU64::MIN);

    /// A version number; `None` for 0.
    pub const fn new(number: u64) -> Option<Self> {
        match NonZeroU64::new(number) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The version number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The version after this one, or `None` at `u64::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Which version a read asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSelector {
    /// The newest readable version.
    Latest,
    /// Exactly this version.
    Exact(Version),
}

impl From<Version> for VersionSelector {
    fn from(version: Version) -> Self {
        VersionSelector::Exact(version)
    }
}

/// A value read from a provider, with the version it came from.
pub struct VersionedSecret {
    /// The version read.
    pub version: Version,
    /// The secret bytes.
    pub value: SecretBytes,
}

impl fmt::Debug for VersionedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionedSecret")
            .field("version", &self.version)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// The state of one version of a locator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VersionState {
    /// Readable.
    Live,
    /// Deleted: no longer readable. Some backends (Vault) can undelete.
    Deleted,
}

/// One version of a locator, as [`SecretProvider::versions`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version.
    pub version: Version,
    /// Whether it can be read.
    pub state: VersionState,
}

/// How long a provider keeps what it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Persistence {
    /// Only in this process's memory; gone when it exits.
    Process,
    /// Until the machine reboots (the Linux kernel keyring).
    UntilReboot,
    /// On durable storage that survives crashes and reboots.
    Durable,
    /// Owned by something outside this process (env vars, mounted Kubernetes
    /// Secrets): it persists as long as that system keeps it.
    External,
}

impl fmt::Display for Persistence {
    /// How long values last, as a phrase: "until reboot".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Persistence::Process => "for the life of the process",
            Persistence::UntilReboot => "until reboot",
            Persistence::Durable => "durably, across reboots",
            Persistence::External => "as long as the system that owns them keeps them",
        })
    }
}

/// What a provider can do. Callers check this instead of probing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Writes, deletes and destroys are refused.
    pub read_only: bool,
    /// Old versions stay readable after a write.
    pub versioned: bool,
    /// How long stored values last.
    pub persistence: Persistence,
    /// The largest value the provider stores, if it has a limit.
    pub max_value_len: Option<usize>,
}

impl Capabilities {
    /// Capabilities of a writable, versioned provider.
    pub const fn writable(persistence: Persistence) -> Self {
        Self {
            read_only: false,
            versioned: true,
            persistence,
            max_value_len: None,
        }
    }

    /// Capabilities of a read-only provider.
    pub const fn read_only(persistence: Persistence, versioned: bool) -> Self {
        Self {
            read_only: true,
            versioned,
            persistence,
            max_value_len: None,
        }
    }

    /// The same capabilities with a value size limit.
    pub const fn with_max_value_len(mut self, max: usize) -> Self {
        self.max_value_len = Some(max);
        self
    }
}

/// Operations named in [`ProviderError::Unsupported`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`SecretProvider::read`].
    Read,
    /// [`SecretProvider::write`].
    Write,
    /// [`SecretProvider::delete`].
    Delete,
    /// [`SecretProvider::destroy`].
    Destroy,
    /// [`SecretProvider::list`].
    List,
    /// [`SecretProvider::versions`].
    Versions,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Delete => "delete",
            Operation::Destroy => "destroy",
            Operation::List => "list",
            Operation::Versions => "versions",
        })
    }
}

/// A provider operation failed. Messages never carry secret bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No secret is stored at the locator.
    #[error("no secret at locator {locator}")]
    NotFound {
        /// The locator asked for.
        locator: Locator,
    },
    /// The locator exists but not at this version (never written, deleted
    /// or destroyed).
    #[error("locator {locator} has no readable version {version}")]
    VersionNotFound {
        /// The locator asked for.
        locator: Locator,
        /// The version asked for.
        version: Version,
    },
    /// The provider does not implement the operation.
    #[error("the provider does not support {operation}")]
    Unsupported {
        /// The operation refused.
        operation: Operation,
    },
    /// The provider is read-only.
    #[error("the provider is read-only; {operation} refused")]
    ReadOnly {
        /// The operation refused.
        operation: Operation,
    },
    /// The value is larger than the provider stores.
    #[error("the value is {len} bytes; this provider stores at most {max}")]
    ValueTooLarge {
        /// Size of the value.
        len: usize,
        /// The provider's limit.
        max: usize,
    },
    /// The backend refused access (locked keychain, missing token, ACL).
    #[error("access denied by the backend: {message}")]
    PermissionDenied {
        /// What the operator should check.
        message: String,
    },
    /// The backend cannot be reached or did not answer in time. Retrying may
    /// help.
    #[error("the backend is unavailable: {message}")]
    Unavailable {
        /// What failed and what the operator should check.
        message: String,
    },
    /// Stored data failed integrity checks or could not be decrypted.
    #[error("stored data is corrupt or was encrypted under another key: {message}")]
    Corrupt {
        /// Where, without any secret bytes.
        message: String,
    },
    /// An I/O error.
    #[error("I/O error: {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another writer changed the locator first (a lost check-and-set);
    /// nothing was written. Retrying after re-reading may succeed.
    #[error("another writer changed {locator} first; nothing was written, retry")]
    Conflict {
        /// The locator written.
        locator: Locator,
    },
    /// Any other backend failure.
    #[error("backend error: {message}")]
    Backend {
        /// What failed, without any secret bytes.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl ProviderError {
    /// An [`ProviderError::Unsupported`] error for `operation`.
    pub const fn unsupported(operation: Operation) -> Self {
        ProviderError::Unsupported { operation }
    }

    /// Whether a retry of the same call might succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Unavailable { .. })
    }
}

/// A secret store: versioned key/value of secret bytes.
///
/// Implementations must never put secret bytes into `Debug` output or errors.
/// Required: [`capabilities`](Self::capabilities) and [`read`](Self::read).
/// Everything else has a default: [`ProviderError::ReadOnly`] for writes,
/// deletes and destroys on a provider whose capabilities say read-only,
/// [`ProviderError::Unsupported`] otherwise.
pub trait SecretProvider: Send + Sync + fmt::Debug {
    /// What this provider can do.
    fn capabilities(&self) -> Capabilities;

    /// Reads a version of the secret at `locator`.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] when nothing is stored at `locator`,
    /// [`ProviderError::VersionNotFound`] for a missing, deleted or
    /// destroyed version, or a backend failure.
    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError>;

    /// Stores `value` as a new version at `locator` and returns that version.
    /// Earlier versions stay readable on versioned providers.
    ///
    /// # Errors
    /// [`ProviderError::ReadOnly`] or [`ProviderError::Unsupported`] on
    /// providers that cannot write, [`ProviderError::ValueTooLarge`], or a
    /// backend failure.
    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        let _ = (locator, value);
        Err(self.refusal(Operation::Write))
    }

    /// Makes one version unreadable. Backends that can undelete (Vault) keep
    /// the bytes; use [`destroy`](Self::destroy) to erase them.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] / [`ProviderError::VersionNotFound`] when
    /// there is no such version, or [`ProviderError::Unsupported`].
    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let _ = (locator, version);
        Err(self.refusal(Operation::Delete))
    }

    /// Erases one version's bytes permanently.
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] / [`ProviderError::VersionNotFound`] when
    /// there is no such version, or [`ProviderError::Unsupported`].
    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let _ = (locator, version);
        Err(self.refusal(Operation::Destroy))
    }

    /// Every locator that has at least one readable version, sorted.
    ///
    /// # Errors
    /// [`ProviderError::Unsupported`] or a backend failure.
    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        Err(ProviderError::unsupported(Operation::List))
    }

    /// The versions stored at `locator`, oldest first. Destroyed versions
    /// are absent; deleted ones are reported as [`VersionState::Deleted`].
    ///
    /// # Errors
    /// [`ProviderError::NotFound`] when nothing is stored at `locator`,
    /// [`ProviderError::Unsupported`], or a backend failure.
    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let _ = locator;
        Err(ProviderError::unsupported(Operation::Versions))
    }

    /// The error a mutating operation the provider does not implement
    /// returns: [`ProviderError::ReadOnly`] when the capabilities say
    /// read-only, [`ProviderError::Unsupported`] otherwise.
    fn refusal(&self, operation: Operation) -> ProviderError {
        if self.capabilities().read_only {
            ProviderError::ReadOnly { operation }
        } else {
            ProviderError::unsupported(operation)
        }
    }
}

impl<P: SecretProvider + ?Sized> SecretProvider for std::sync::Arc<P> {
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        (**self).read(locator, version)
    }
    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        (**self).write(locator, value)
    }
    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        (**self).delete(locator, version)
    }
    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        (**self).destroy(locator, version)
    }
    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        (**self).list()
    }
    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        (**self).versions(locator)
    }
    fn refusal(&self, operation: Operation) -> ProviderError {
        (**self).refusal(operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that implements only what the trait requires.
    #[derive(Debug)]
    struct Minimal {
        read_only: bool,
    }

    impl SecretProvider for Minimal {
        fn capabilities(&self) -> Capabilities {
            if self.read_only {
                Capabilities::read_only(Persistence::External, false)
            } else {
                Capabilities::writable(Persistence::Process)
            }
        }
        fn read(
            &self,
            locator: &Locator,
            _: VersionSelector,
        ) -> Result<VersionedSecret, ProviderError> {
            Err(ProviderError::NotFound {
                locator: locator.clone(),
            })
        }
    }

    fn refused(p: &dyn SecretProvider) -> Vec<Result<(), ProviderError>> {
        let locator = Locator::new("x").unwrap();
        vec![
            p.write(&locator, &SecretBytes::from(vec![1])).map(|_| ()),
            p.delete(&locator, Version::FIRST),
            p.destroy(&locator, Version::FIRST),
            p.list().map(|_| ()),
            p.versions(&locator).map(|_| ()),
        ]
    }

    const OPERATIONS: [Operation; 5] = [
        Operation::Write,
        Operation::Delete,
        Operation::Destroy,
        Operation::List,
        Operation::Versions,
    ];

    #[test]
    fn optional_operations_default_to_unsupported() {
        for (result, op) in refused(&Minimal { read_only: false })
            .into_iter()
            .zip(OPERATIONS)
        {
            assert!(
                matches!(result, Err(ProviderError::Unsupported { operation }) if operation == op)
            );
        }
    }

    #[test]
    fn read_only_providers_refuse_mutations_as_read_only_by_default() {
        for (result, op) in refused(&Minimal { read_only: true })
            .into_iter()
            .zip(OPERATIONS)
        {
            match op {
                Operation::List | Operation::Versions => assert!(
                    matches!(result, Err(ProviderError::Unsupported { operation }) if operation == op)
                ),
                _ => assert!(
                    matches!(result, Err(ProviderError::ReadOnly { operation }) if operation == op)
                ),
            }
        }
    }

    #[test]
    fn locators_are_checked() {
        assert!(Locator::new("tyrum/workspace/acme/abc").is_ok());
        assert_eq!(Locator::new(""), Err(LocatorError::Empty));
        assert_eq!(
            Locator::new("a\nb"),
            Err(LocatorError::ControlCharacter { position: 1 })
        );
        assert_eq!(
            Locator::new("x".repeat(513)),
            Err(LocatorError::TooLong { len: 513 })
        );
        assert!(serde_json::from_str::<Locator>("\"a\\u0000b\"").is_err());
    }

    #[test]
    fn error_messages_show_locators_as_text_not_debug_forms() {
        let locator = Locator::new("openai/api-key").unwrap();
        let messages = [
            ProviderError::NotFound {
                locator: locator.clone(),
            }
            .to_string(),
            ProviderError::VersionNotFound {
                locator,
                version: Version::FIRST,
            }
            .to_string(),
        ];
        for message in messages {
            assert!(message.contains("openai/api-key"), "{message}");
            assert!(!message.contains("Locator("), "{message}");
        }
    }

    #[test]
    fn versions_start_at_one_and_grow() {
        assert_eq!(Version::new(0), None);
        assert_eq!(Version::FIRST.get(), 1);
        assert_eq!(Version::FIRST.next().map(Version::get), Some(2));
        assert_eq!(Version::new(u64::MAX).and_then(Version::next), None);
    }
}
