//! Errors of the mounted-secret provider.

use std::fmt;
use std::path::PathBuf;

use tyrum_secrets_core::{Locator, ProviderError, Version};

/// What was found where a secret file was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A symbolic link inside kubelet's data directory, where only regular
    /// files belong.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A block or character device.
    Device,
    /// Anything else.
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a named pipe",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            FileKind::Other => "not a regular file",
        })
    }
}

/// A mounted-secret operation failed. Messages name paths and locators, never
/// file contents.
///
/// Through the [`SecretProvider`](tyrum_secrets_core::SecretProvider) trait
/// these arrive as [`ProviderError`]s: `NotFound`, `VersionNotFound`,
/// `ValueTooLarge`, `PermissionDenied`, `Unavailable` (the mount kept
/// changing), `Corrupt` (a malformed `..data` link), `Io`, and `Backend`
/// whose [`source`](std::error::Error::source) is this error for the rest
/// (dangling symlink, not a file, invalid locator, no locators).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The mount root does not exist.
    #[error("secret mount {path} does not exist; check the pod's volumeMounts")]
    RootMissing {
        /// The root given.
        path: PathBuf,
    },
    /// The mount root is not a directory.
    #[error("secret mount {path} is not a directory")]
    RootNotADirectory {
        /// The root given.
        path: PathBuf,
    },
    /// No secret at the locator.
    #[error("no secret at locator {locator}")]
    NotFound {
        /// The locator.
        locator: Locator,
    },
    /// The version asked for is not the current one and its data directory
    /// is gone (or was never seen by this provider).
    #[error(
        "locator {locator} has no readable version {version}; kubelet keeps only the current data directory"
    )]
    VersionNotFound {
        /// The locator.
        locator: Locator,
        /// The version asked for.
        version: Version,
    },
    /// The locator cannot name a file in a secret mount.
    #[error("locator {locator} cannot name a file in a secret mount: {reason}")]
    InvalidLocator {
        /// The locator.
        locator: Locator,
        /// Why.
        reason: &'static str,
    },
    /// [`MountedSecretProvider::read_together`](super::MountedSecretProvider::read_together)
    /// was given no locator.
    #[error("read_together needs at least one locator")]
    NoLocators,
    /// The visible entry is a symlink whose target does not exist.
    #[error(
        "{path} is a dangling symlink; the Secret volume is damaged or still being written: check kubelet"
    )]
    DanglingSymlink {
        /// The dangling entry.
        path: PathBuf,
    },
    /// Something other than a regular file sits where the secret should be.
    #[error("{path} is {found}, not a secret file")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What is there.
        found: FileKind,
    },
    /// The file is larger than the limit.
    #[error("{path} is {len} bytes; at most {max} are read (Kubernetes Secrets are at most 1 MiB)")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The file system refused access.
    #[error(
        "permission denied reading {path}; check the volume's defaultMode and the pod's runAsUser/fsGroup"
    )]
    PermissionDenied {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `..data` is not a link to a sibling directory.
    #[error("{path} does not point at a sibling data directory; the Secret volume is damaged")]
    DataLinkInvalid {
        /// The `..data` path.
        path: PathBuf,
    },
    /// `..data` changed on every attempt.
    #[error("the secret mount {path} changed during {attempts} read attempts; retry")]
    KeptChanging {
        /// The mount root.
        path: PathBuf,
        /// Attempts made.
        attempts: usize,
    },
    /// Another I/O error.
    #[error("I/O error {context}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<MountError> for ProviderError {
    fn from(error: MountError) -> Self {
        match error {
            MountError::NotFound { locator } => ProviderError::NotFound { locator },
            MountError::VersionNotFound { locator, version } => {
                ProviderError::VersionNotFound { locator, version }
            }
            MountError::TooLarge { len, max, .. } => ProviderError::ValueTooLarge {
                len: usize::try_from(len).unwrap_or(usize::MAX),
                max,
            },
            e @ MountError::PermissionDenied { .. } => ProviderError::PermissionDenied {
                message: e.to_string(),
            },
            e @ MountError::KeptChanging { .. } => ProviderError::Unavailable {
                message: e.to_string(),
            },
            e @ MountError::DataLinkInvalid { .. } => ProviderError::Corrupt {
                message: e.to_string(),
            },
            MountError::Io { context, source } => ProviderError::Io { context, source },
            e => ProviderError::Backend {
                message: e.to_string(),
                source: Some(Box::new(e)),
            },
        }
    }
}
