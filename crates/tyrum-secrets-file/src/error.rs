//! Errors of the file provider. None carries secret bytes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tyrum_secrets_core::anchor::AnchorError;
use tyrum_secrets_core::{AuditError, ProviderError};

/// Opening or using an encrypted store file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file is empty or is not a tyrum-secrets store (wrong magic bytes).
    #[error(
        "{path} is not a tyrum-secrets store (empty or foreign file); check the path, or move the file away to create a new store"
    )]
    NotAStore {
        /// The file.
        path: PathBuf,
    },
    /// The store was written by a newer format version.
    #[error(
        "{path} uses store format version {version}; this build reads versions 1 and 2; upgrade tyrum-secrets"
    )]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u16,
    },
    /// The header asks for more Argon2id work than the caller allows.
    #[error(
        "the store header asks for Argon2id {name} = {value}, above the cap of {max}; refused before deriving the key. If you trust this file, raise the cap with FileOptions::kdf_limits"
    )]
    KdfLimitExceeded {
        /// Which factor: `memory_kib`, `passes` or `lanes`.
        name: &'static str,
        /// The value in the header.
        value: u32,
        /// The caller's cap.
        max: u32,
    },
    /// Argon2id parameters that Argon2 rejects.
    #[error(
        "invalid Argon2id parameters (memory {memory_kib} KiB, {passes} passes, {lanes} lanes); memory must be at least 8 KiB per lane and passes and lanes at least 1"
    )]
    InvalidKdfParams {
        /// Memory in KiB.
        memory_kib: u32,
        /// Passes.
        passes: u32,
        /// Lanes.
        lanes: u32,
    },
    /// The store is protected by another kind of key than the one given.
    #[error(
        "the store is protected by {stored}, but {given} was given; open it with the matching KeySource"
    )]
    KeyKindMismatch {
        /// What the header records.
        stored: KeyKind,
        /// What the caller gave.
        given: KeyKind,
    },
    /// Decryption failed: the key or passphrase is wrong, or the file was
    /// modified. Deliberately does not say which.
    #[error(
        "cannot decrypt {path}: wrong key or passphrase, or the file was modified; check the key source, then restore the file from a backup"
    )]
    Decrypt {
        /// The file.
        path: PathBuf,
    },
    /// The file's structure is damaged (not a torn tail from a crash).
    #[error("{path} is corrupt at byte {offset}: {reason}; restore it from a backup")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged structure.
        offset: u64,
        /// What is wrong, without any secret bytes.
        reason: &'static str,
    },
    /// A key file is not usable.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A passphrase file is not usable. Never carries its contents.
    #[error("passphrase file {path}: {reason}")]
    PassphraseFile {
        /// The passphrase file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// Another writer held the store's lock for longer than the timeout.
    #[error(
        "the store is locked by another writer (lock file {lock_path}); gave up after {waited:?}. Retry later; a lock held by a process that died is released by the kernel"
    )]
    LockTimeout {
        /// The lock file.
        lock_path: PathBuf,
        /// How long this writer waited.
        waited: Duration,
    },
    /// The store's anchor refuses it (cut short, rolled back, replaced, or
    /// not anchored yet), or the anchor cannot be read or written.
    #[error(
        "store {path}, anchor check: {source}. (For a store the recovery call is FileProvider::accept_rollback.)"
    )]
    Anchor {
        /// The store file.
        path: PathBuf,
        /// What the anchor found.
        #[source]
        source: AnchorError,
    },
    /// An anchor is configured, but the store is in format 1, which has no
    /// chain for an anchor to check.
    #[error(
        "{path} is in store format 1, which an anchor cannot check; run FileProvider::upgrade once (it rewrites the store as format 2 under the writer lock), or open it without an anchor"
    )]
    UpgradeRequired {
        /// The store file.
        path: PathBuf,
    },
    /// The audit record of a recovery could not be written, so the
    /// recovery was not made.
    #[error(
        "the audit record of accepting the store could not be written, so nothing was changed: {source}"
    )]
    Audit {
        /// The audit sink's error.
        #[source]
        source: AuditError,
    },
    /// The OS random number generator failed.
    #[error("the OS random number generator failed; check the system's entropy source")]
    Random,
    /// An I/O error.
    #[error("I/O error {context} ({path})")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FileError {
    pub(crate) fn io(context: &'static str, path: &Path, source: std::io::Error) -> Self {
        FileError::Io {
            context,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, reason: &'static str) -> Self {
        FileError::Corrupt {
            path: path.to_owned(),
            offset,
            reason,
        }
    }
}

impl From<FileError> for ProviderError {
    fn from(error: FileError) -> Self {
        match error {
            FileError::NotAStore { .. }
            | FileError::Decrypt { .. }
            | FileError::Corrupt { .. }
            | FileError::UnsupportedFormat { .. } => ProviderError::Corrupt {
                message: error.to_string(),
            },
            FileError::LockTimeout { .. } => ProviderError::Unavailable {
                message: error.to_string(),
            },
            FileError::Anchor { ref source, .. } if source.is_acceptable() => {
                ProviderError::Corrupt {
                    message: error.to_string(),
                }
            }
            FileError::Anchor { .. } => ProviderError::Unavailable {
                message: error.to_string(),
            },
            FileError::Io {
                context,
                path,
                source,
            } => ProviderError::Io {
                context: format!("{context} ({})", path.display()),
                source,
            },
            other => ProviderError::Backend {
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}

/// Which kind of key protects a store, as recorded in its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// A passphrase stretched with Argon2id.
    Passphrase,
    /// A raw 32-byte key (key file, keychain, KMS).
    RawKey,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Passphrase => "a passphrase",
            KeyKind::RawKey => "a raw 32-byte key",
        })
    }
}
