//! Why [`Secrets::open`](crate::Secrets::open) failed. Each error names what
//! to fix; none carries a secret.

use std::path::PathBuf;

use tyrum_secrets_core::{
    AnchorError, AuditError, CatalogError, PolicyError, PreloadError, ProviderError, VerifyError,
    audit::KeyError,
};

use crate::{ConfigError, Profile};

/// Opening failed. When it does, no file was changed: whatever this open
/// created was removed again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The config is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A setting the profile needs is missing.
    #[error("the {profile} profile needs {key}: {why}")]
    MissingSetting {
        /// The profile.
        profile: Profile,
        /// The key (and its variable).
        key: String,
        /// What it is for.
        why: &'static str,
    },
    /// The profile's backend was not compiled in.
    #[error("the {profile} profile needs tyrum-secrets built with the cargo feature `{feature}`")]
    FeatureMissing {
        /// The profile.
        profile: Profile,
        /// The feature.
        feature: &'static str,
    },
    /// No key for the file store, and no prompt to ask for one.
    #[error(
        "the single-host store needs a key: set passphrase_file (TYRUM_SECRETS_PASSPHRASE_FILE), key_file or file.keychain_key, or open with a passphrase prompt"
    )]
    NoStoreKey,
    /// The passphrase file or key file cannot be used.
    #[error("{what} {path} ({key}) {reason}")]
    KeyFile {
        /// "passphrase file", "key file", "audit key file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The key naming it, and where that was set.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The prompt supplied by the caller failed or was cancelled.
    #[error("the passphrase prompt failed: {message}")]
    Prompt {
        /// What the prompt said.
        message: String,
    },
    /// The state directory cannot be used.
    #[error("state directory {path} ({key}) {reason}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// The key naming it, and where that was set.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The state directory was made for another profile or another layout.
    #[error(
        "state directory {path} was created for {recorded}, but the config says {configured}; point state_dir at another directory, or set the config back"
    )]
    StateMismatch {
        /// The directory.
        path: PathBuf,
        /// What its state record says.
        recorded: String,
        /// What the config says now.
        configured: String,
    },
    /// Part of an existing state is gone; opening would create an empty
    /// one in its place.
    #[error(
        "{what} {path} is missing from an existing state directory; restore it from a backup (a new empty one is not created over lost state)"
    )]
    StateIncomplete {
        /// What is missing.
        what: &'static str,
        /// Where it should be.
        path: PathBuf,
    },
    /// The state record cannot be read.
    #[error("state record {path} is damaged ({reason}); restore it from a backup")]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Another process is opening the same state directory and did not
    /// finish in time.
    #[error(
        "another process has been opening {path} for over {waited_secs} s; retry, or find the process holding its open.lock"
    )]
    Busy {
        /// The state directory.
        path: PathBuf,
        /// How long this open waited.
        waited_secs: u64,
    },
    /// The file store does not open with the key given.
    #[error(
        "cannot open the store {store} with the key from {source_desc}: wrong passphrase or key, or the store was modified; check {source_desc}, or restore the store from a backup"
    )]
    WrongKey {
        /// The store file.
        store: PathBuf,
        /// Where the key came from.
        source_desc: String,
    },
    /// The operation needs the single-host file store (a rekey).
    #[error(
        "the {profile} profile keeps no encrypted file store; rekey works on the single-host profile's store (its keychain or Secret volume has keys of its own)"
    )]
    NotFileStore {
        /// The profile of the config.
        profile: Profile,
    },
    /// The file store's anchor refuses it: the store was cut short or
    /// rolled back to an older copy, replaced, or its anchor is missing or
    /// damaged.
    #[error(
        "the file store {store} is refused by its anchor ({anchor}): {source} (for Secrets::open: OpenOptions::accept_rollback)"
    )]
    StoreAnchor {
        /// The store file.
        store: PathBuf,
        /// Where its anchor is.
        anchor: String,
        /// What the anchor found.
        #[source]
        source: AnchorError,
    },
    /// The file store failed otherwise.
    #[cfg(feature = "file")]
    #[error(transparent)]
    Store(#[from] tyrum_secrets_file::FileError),
    /// The OS keychain failed.
    #[cfg(feature = "keychain")]
    #[error(transparent)]
    Keychain(#[from] tyrum_secrets_keychain::KeychainError),
    /// The environment-variable provider failed.
    #[cfg(feature = "env")]
    #[error(transparent)]
    Env(#[from] tyrum_secrets_env::EnvError),
    /// OpenBao cannot be used (cluster): the address, the CA file or a
    /// path is wrong, the login was refused, a token or secret id file
    /// cannot be read, or TLS failed.
    #[cfg(feature = "vault")]
    #[error("OpenBao at {address} cannot be used with {auth}: {source}")]
    Vault {
        /// The server address.
        address: String,
        /// How this process authenticates, or the setting at fault (never
        /// a credential).
        auth: String,
        /// What failed.
        #[source]
        source: Box<tyrum_secrets_vault::VaultError>,
    },
    /// OpenBao refused or failed the first read of the shared catalog
    /// (cluster): a rejected token, a policy that does not allow reading
    /// the catalog, or a server that does not answer.
    #[cfg(feature = "vault")]
    #[error("OpenBao at {address} cannot list the shared catalog {catalog} with {auth}: {source}")]
    VaultCatalog {
        /// The server address.
        address: String,
        /// The catalog's mount and path.
        catalog: String,
        /// How this process authenticates (never a credential).
        auth: String,
        /// What failed; a rejected token or a denial is
        /// `CatalogError::Provider(ProviderError::PermissionDenied)`.
        #[source]
        source: Box<CatalogError>,
    },
    /// The secret variables cannot be removed from the environment (the
    /// process already runs other threads, or their number is unknown).
    #[cfg(feature = "env")]
    #[error(
        "cannot remove the pod's secret variables from the environment, so every child process would inherit them: {source}. Open before any other thread starts (at the top of main), or set {key} to keep them knowingly"
    )]
    EnvRemoval {
        /// The opt-out setting (and its variable).
        key: String,
        /// Why removal is impossible.
        #[source]
        source: tyrum_secrets_env::EnvError,
    },
    /// The mounted Secret volume cannot be used.
    #[cfg(feature = "env")]
    #[error("mounted Secret volume {path} (kubernetes.mounted_dir): {source}")]
    Mount {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: tyrum_secrets_env::MountError,
    },
    /// An audit log was cut short or rolled back: it has fewer records than
    /// its anchor says were written.
    #[error(
        "audit log {log} ends at record {found} but its anchor ({anchor}) says record {anchored} was written: it was cut short or rolled back. Restore the newest copy, and do not delete the log or its anchor; if this older log is the state you want, accept it knowingly with OpenOptions::accept_rollback (audited)"
    )]
    AuditCutShort {
        /// The log.
        log: PathBuf,
        /// Where its anchor is (a file, a keychain entry).
        anchor: String,
        /// The last record the anchor vouches for.
        anchored: u64,
        /// The last record in the log.
        found: u64,
    },
    /// An audit log's anchor refuses it otherwise: the log was replaced by
    /// another one, has records but no anchor, or the anchor is damaged or
    /// belongs to another log.
    #[error(
        "audit log {log} is refused by its anchor ({anchor}): {source} (for Secrets::open: OpenOptions::accept_rollback)"
    )]
    AuditAnchor {
        /// The log.
        log: PathBuf,
        /// Where its anchor is.
        anchor: String,
        /// What the anchor found.
        #[source]
        source: AnchorError,
    },
    /// An audit log the index of this state's logs vouches for is gone:
    /// deleted (with its anchor, or with the whole audit directory).
    #[error(
        "audit log {log} is missing, but the index of this state's audit logs ({index}) says {count} logs were written: it was deleted, with its anchor or with the audit directory. Restore it from a backup; if losing it is the state you want, accept it knowingly with OpenOptions::accept_rollback (audited)"
    )]
    AuditLogMissing {
        /// The missing log.
        log: PathBuf,
        /// Where the index is.
        index: String,
        /// How many logs the index vouches for.
        count: u64,
    },
    /// The index of the audit logs is gone although the state shows it was
    /// written (its catalog is authenticated already).
    #[error(
        "the index of the audit logs in {dir} ({index}) is missing, although this state was written by a version that keeps it: it was deleted, perhaps with audit logs. Restore it (and the logs) from a backup, or accept the logs as they are knowingly with OpenOptions::accept_rollback (audited)"
    )]
    AuditIndexMissing {
        /// The audit directory.
        dir: PathBuf,
        /// Where the index should be.
        index: String,
    },
    /// The index of the audit logs cannot be read or does not
    /// authenticate (forged, damaged, or another state's).
    #[error(
        "the index of the audit logs ({index}) cannot be used: {source}. Restore it from a backup, or accept the logs as they are knowingly with OpenOptions::accept_rollback (audited)"
    )]
    AuditIndex {
        /// Where the index is.
        index: String,
        /// What failed.
        #[source]
        source: AnchorError,
    },
    /// An audit log does not verify (edited, forged, or another key).
    #[error(
        "audit log {log} does not verify ({source}); investigate it, then restore it from a backup or move it aside with its anchor"
    )]
    AuditTampered {
        /// The log.
        log: PathBuf,
        /// What verification found.
        #[source]
        source: VerifyError,
    },
    /// The catalog does not authenticate under its key: it was edited
    /// outside tyrum-secrets (a revoked entry set active, a scope or label
    /// changed), or the key is not this catalog's.
    #[error(
        "catalog {catalog} does not authenticate under its key ({key}): it was edited outside tyrum-secrets (a revoked entry set active, a scope or label changed) or the key is another catalog's; restore the newest copy of the catalog from a backup, and never edit it by hand"
    )]
    CatalogTampered {
        /// The catalog file.
        catalog: PathBuf,
        /// Where its key is.
        key: String,
    },
    /// The catalog's anchor refuses it: an older copy was put back, it was
    /// replaced by another catalog or deleted, or its anchor is missing or
    /// damaged.
    #[error(
        "catalog {catalog} is refused by its anchor ({anchor}): {source}. Restore the newest copy, and do not delete the catalog or its anchor; if this older catalog is the state you want, accept it knowingly with OpenOptions::accept_rollback (audited)"
    )]
    CatalogAnchor {
        /// The catalog file.
        catalog: PathBuf,
        /// Where its anchor is.
        anchor: String,
        /// What the anchor found.
        #[source]
        source: AnchorError,
    },
    /// The catalog carries no MAC, but this state's catalog is
    /// authenticated: it was replaced by an unauthenticated copy (a
    /// downgrade, which could un-revoke a handle).
    #[error(
        "catalog {catalog} carries no MAC, but this state's catalog is authenticated ({evidence} exists): it was replaced by an unauthenticated copy; restore the newest authenticated copy from a backup, or, if this file is right, accept it knowingly with OpenOptions::accept_rollback (audited)"
    )]
    CatalogDowngraded {
        /// The catalog file.
        catalog: PathBuf,
        /// What shows the catalog was authenticated (its key, its anchor).
        evidence: String,
    },
    /// The catalog is authenticated, but its key is gone.
    #[error(
        "catalog {catalog} is authenticated, but its key is missing from {key}; restore the key from a backup (a new key cannot open this catalog)"
    )]
    CatalogKeyMissing {
        /// The catalog file.
        catalog: PathBuf,
        /// Where the key should be.
        key: String,
    },
    /// The stored catalog key is not a key.
    #[error(
        "{key} does not hold a catalog key ({len} bytes; expected 32 bytes or 64 hex digits); restore it from a backup"
    )]
    CatalogKeyInvalid {
        /// Where the key is.
        key: String,
        /// How many bytes it holds.
        len: usize,
    },
    /// The audit keys cannot be read or made.
    #[error("audit keys: {reason}")]
    AuditKeys {
        /// What is wrong and what to do.
        reason: String,
    },
    /// The audit sink could not be opened.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The policy file cannot be used.
    #[error("policy file {path} ({key}): {source}")]
    Policy {
        /// The file.
        path: PathBuf,
        /// The key naming it, and where that was set.
        key: String,
        /// What is wrong.
        #[source]
        source: PolicyError,
    },
    /// The redactor could not be pre-loaded, or its audit record not
    /// written.
    #[error(transparent)]
    Preload(#[from] PreloadError),
    /// The catalog cannot be opened.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// An I/O error on the state directory.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl From<KeyError> for OpenError {
    fn from(error: KeyError) -> Self {
        OpenError::AuditKeys {
            reason: error.to_string(),
        }
    }
}

impl OpenError {
    pub(crate) fn io(
        context: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        OpenError::Io {
            context,
            path: path.to_owned(),
            source,
        }
    }
}
