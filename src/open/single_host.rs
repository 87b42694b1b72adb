//! The single-host profile's encrypted file store: its key, its anchor,
//! the options every open (and a rekey) uses, and the upgrade or accepted
//! rollback that waits until the rest of an open has checked out.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::SecretProvider;

use super::anchors::{Place, Placed};
use super::backend::{Backend, keychain_provider, provider_id, sibling, single_host_values};
use super::report::Recovery;
use super::state::Created;
use super::{OpenError, OpenOptions, PassphraseRequest};
use crate::Config;
use crate::config::load::resolve;

/// The encrypted file store in the state directory, opened against its
/// anchor.
///
/// Two cases wait until the rest of the open has been checked, so that a
/// failed open changes no file: a format-1 store (rewritten as format 2
/// with its anchor, [`PendingStore::finish`]), and a store its anchor
/// refuses when the options accept that knowingly. Meanwhile the store is
/// opened without its anchor, for reading only (the audit keys).
pub(crate) fn single_host(
    config: &Config,
    options: &OpenOptions,
    state_dir: &Path,
    existing: bool,
    state_id: Option<&str>,
    created: &mut Created,
) -> Result<(Backend, Option<PendingStore>), OpenError> {
    use tyrum_secrets_file::{FileError, FileProvider};

    let store = resolve(state_dir, &config.file.path);
    let store_exists = store.exists();
    if existing && !store_exists {
        return Err(OpenError::StateIncomplete {
            what: "the file store",
            path: store,
        });
    }
    let (secret, source_desc) = store_secret(config, options, &store, store_exists, created)?;
    let placed = store_anchor(config, state_id, &store, Some(created))?;
    let plain = store_options(config, options)?;
    let anchored = plain.clone().anchor(placed.anchor.clone());
    let lock = sibling(&store, ".lock");
    let failed =
        |e: FileError| store_error(e, &store, &placed.location, &secret, &source_desc, config);
    let opened = placed.track(created, &[&store, &lock], || {
        Ok(FileProvider::open_with(
            &store,
            secret.source(),
            anchored.clone(),
        ))
    })?;
    let (provider, pending) = match opened {
        Ok(provider) => (provider, None),
        Err(e) => {
            let action = match e {
                FileError::UpgradeRequired { .. } => StoreAction::Upgrade,
                FileError::Anchor { source, .. } if source.is_acceptable() => {
                    match &options.accept_rollback {
                        Some(by) => StoreAction::Accept(by.clone(), source.to_string()),
                        None => {
                            return Err(OpenError::StoreAnchor {
                                store: store.clone(),
                                anchor: placed.location.clone(),
                                source,
                            });
                        }
                    }
                }
                other => return Err(failed(other)),
            };
            // Read-only until the change is made.
            let provider =
                FileProvider::open_with(&store, secret.source(), plain.clone()).map_err(failed)?;
            let pending = PendingStore {
                store: store.clone(),
                anchor: placed.location.clone(),
                secret,
                source_desc: source_desc.clone(),
                anchored,
                action,
            };
            (provider, Some(pending))
        }
    };
    let provider: Arc<dyn SecretProvider> = Arc::new(provider);
    let backend = Backend {
        providers: vec![(provider_id("file")?, Arc::clone(&provider))],
        keys_provider: Some((provider, format!("the file store {}", store.display()))),
        keychain: None,
        values: single_host_values(config),
        notes: Vec::new(),
        store_anchor: Some(placed.location.clone()),
        catalog: None,
    };
    Ok((backend, pending))
}

/// Where the single-host `store`'s anchor is: the place an open puts it
/// (made ready when `created` is given, as a first open does), so that a
/// rekey opens the store exactly as an open does.
pub(crate) fn store_anchor(
    config: &Config,
    state_id: Option<&str>,
    store: &Path,
    created: Option<&mut Created>,
) -> Result<Placed, OpenError> {
    let place = Place::new(
        config.file.anchor,
        config.anchor_dir.as_deref(),
        state_id,
        || keychain_provider(config),
    )?;
    if let Some(created) = created {
        place.prepare(created)?;
    }
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".to_owned());
    place.anchor(store, &name)
}

/// The options every open of the single-host store uses, without its
/// anchor.
pub(crate) fn store_options(
    config: &Config,
    options: &OpenOptions,
) -> Result<tyrum_secrets_file::FileOptions, OpenError> {
    use tyrum_secrets_file::{FileOptions, KdfParams};

    let mut file_options = FileOptions::default()
        .lock_timeout(Duration::from_millis(config.file.lock_timeout_ms))
        .kdf_params(KdfParams::new(
            config.file.kdf_memory_kib,
            config.file.kdf_passes,
            config.file.kdf_lanes,
        )?);
    if options.insecure_kdf {
        file_options = file_options.dangerous_insecure_kdf_for_tests();
    }
    Ok(file_options)
}

/// What waits until the rest of an open has been checked.
enum StoreAction {
    /// Rewrite a format-1 store as format 2 and start its anchor.
    Upgrade,
    /// Accept a store its anchor refuses (the refusal, as text), on record.
    Accept(tyrum_secrets_core::AdminRequest, String),
}

/// A change to the single-host store that waits until the rest of the
/// open has been checked.
pub(crate) struct PendingStore {
    store: PathBuf,
    /// Where its anchor is, for messages.
    anchor: String,
    secret: StoreSecret,
    source_desc: String,
    anchored: tyrum_secrets_file::FileOptions,
    action: StoreAction,
}

impl PendingStore {
    /// Makes the change (recording an accepted rollback in `audit`) and
    /// opens the store against its anchor.
    pub(crate) fn finish(
        self,
        audit: &dyn tyrum_secrets_core::AuditSink,
        config: &Config,
    ) -> Result<(Arc<dyn SecretProvider>, Recovery), OpenError> {
        use tyrum_secrets_file::FileProvider;

        let failed = |e| {
            store_error(
                e,
                &self.store,
                &self.anchor,
                &self.secret,
                &self.source_desc,
                config,
            )
        };
        let (provider, recovery) = match self.action {
            StoreAction::Upgrade => {
                FileProvider::upgrade(&self.store, self.secret.source(), self.anchored.clone())
                    .map_err(failed)?;
                let provider =
                    FileProvider::open_with(&self.store, self.secret.source(), self.anchored)
                        .map_err(failed)?;
                (provider, Recovery::StoreUpgraded(self.store.clone()))
            }
            StoreAction::Accept(by, refusal) => {
                let provider = FileProvider::accept_rollback(
                    &self.store,
                    self.secret.source(),
                    self.anchored,
                    audit,
                    &by,
                )
                .map_err(failed)?;
                let recovery = Recovery::StoreAccepted {
                    store: self.store.clone(),
                    refusal,
                };
                (provider, recovery)
            }
        };
        Ok((Arc::new(provider), recovery))
    }
}

/// A file-store error as an open error that names what to fix.
pub(crate) fn store_error(
    error: tyrum_secrets_file::FileError,
    store: &Path,
    anchor: &str,
    secret: &StoreSecret,
    source_desc: &str,
    config: &Config,
) -> OpenError {
    use tyrum_secrets_file::FileError;

    let passphrase_file = |reason: String| {
        let StoreSecret::PassphraseFile(path) = secret else {
            return None;
        };
        Some(OpenError::KeyFile {
            what: "passphrase file",
            path: path.clone(),
            key: config.describe("passphrase_file"),
            reason,
        })
    };
    match error {
        FileError::Decrypt { .. } => OpenError::WrongKey {
            store: store.to_owned(),
            source_desc: source_desc.to_owned(),
        },
        FileError::PassphraseFile { reason, .. } => {
            passphrase_file(format!("cannot be used: {reason}")).unwrap_or(OpenError::NoStoreKey)
        }
        FileError::Io { path, source, .. } if matches!(secret, StoreSecret::PassphraseFile(p) if *p == path) =>
        {
            let reason = match source.kind() {
                ErrorKind::NotFound => "does not exist; write the store's passphrase into it (mode 0600), or point the setting at the file that holds it".to_owned(),
                ErrorKind::PermissionDenied => "cannot be read by this user; fix its owner or mode".to_owned(),
                _ => format!("cannot be read ({source})"),
            };
            passphrase_file(reason).unwrap_or(OpenError::NoStoreKey)
        }
        FileError::Anchor { source, .. } if source.is_acceptable() => OpenError::StoreAnchor {
            store: store.to_owned(),
            anchor: anchor.to_owned(),
            source,
        },
        other => OpenError::Store(other),
    }
}

/// The file store's key, in a form that can make a
/// [`KeySource`](tyrum_secrets_file::KeySource) each time one is needed
/// (an open, an upgrade, a recovery).
pub(crate) enum StoreSecret {
    /// `passphrase_file`: read by the file store each time it derives the
    /// key.
    PassphraseFile(PathBuf),
    /// A passphrase from the caller's prompt.
    Passphrase(tyrum_secrets_core::SecretString),
    /// A raw key: read from `key_file`, or from the keychain
    /// (`file.keychain_key`).
    Key(tyrum_secrets_core::SecretBox<[u8; 32]>),
}

impl StoreSecret {
    pub(crate) fn source(&self) -> tyrum_secrets_file::KeySource {
        use tyrum_secrets_file::{KeySource, StoreKey};
        match self {
            StoreSecret::PassphraseFile(path) => KeySource::passphrase_file(path),
            StoreSecret::Passphrase(passphrase) => KeySource::Passphrase(passphrase.clone()),
            StoreSecret::Key(key) => KeySource::Key(StoreKey::from(key)),
        }
    }
}

/// The file store's key and a description of it for errors.
pub(crate) fn store_secret(
    config: &Config,
    options: &OpenOptions,
    store: &Path,
    store_exists: bool,
    created: &mut Created,
) -> Result<(StoreSecret, String), OpenError> {
    use tyrum_secrets_file::{KEY_LEN, StoreKey};

    if let Some(path) = &config.passphrase_file {
        let key = config.describe("passphrase_file");
        return Ok((
            StoreSecret::PassphraseFile(path.clone()),
            format!("the passphrase file {} ({key})", path.display()),
        ));
    }
    if let Some(path) = &config.key_file {
        let key = config.describe("key_file");
        let desc = format!("the key file {} ({key})", path.display());
        let fail = |reason: String| OpenError::KeyFile {
            what: "key file",
            path: path.clone(),
            key: key.clone(),
            reason,
        };
        // Read here, as a regular file checked on the opened descriptor (a
        // FIFO never blocks the open), and handed to the store as a key.
        let key = match super::keyfile::read_small(path, KEY_LEN as u64) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    fail(format!(
                        "holds {} bytes; a key file holds exactly {KEY_LEN} raw bytes",
                        bytes.len()
                    ))
                })?;
                tyrum_secrets_core::SecretBox::new(Box::new(key))
            }
            Err(e) if e.kind() == ErrorKind::NotFound && !store_exists => {
                created.track(&[path], || {
                    StoreKey::write_new_key_file(path)
                        .map_err(|e| fail(format!("cannot be created: {e}")))
                })?;
                let bytes = super::keyfile::read_small(path, KEY_LEN as u64)
                    .map_err(|e| fail(format!("cannot be read after creating it: {e}")))?;
                let key: [u8; KEY_LEN] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| fail("was not written whole; remove it and retry".to_owned()))?;
                tyrum_secrets_core::SecretBox::new(Box::new(key))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(fail(
                    "does not exist, but the store does; restore the key file that opens it"
                        .to_owned(),
                ));
            }
            Err(e) => return Err(fail(format!("cannot be used: {e}"))),
        };
        return Ok((StoreSecret::Key(key), desc));
    }
    if let Some(name) = &config.file.keychain_key {
        #[cfg(feature = "keychain")]
        {
            use tyrum_secrets_keychain::FileStoreKeySource;
            let keychain = super::backend::keychain_store(config)?;
            let source = FileStoreKeySource::new(keychain, name)?
                .timeout(Duration::from_millis(config.keychain.timeout_ms));
            let key = if store_exists {
                source.load()?
            } else {
                source.load_or_create()?
            };
            return Ok((
                StoreSecret::Key(key),
                format!(
                    "the keychain entry {name:?} ({})",
                    config.describe("file.keychain_key")
                ),
            ));
        }
        #[cfg(not(feature = "keychain"))]
        {
            let _ = name;
            return Err(OpenError::FeatureMissing {
                profile: crate::Profile::SingleHost,
                feature: "keychain",
            });
        }
    }
    if let Some(prompt) = &options.prompt {
        let passphrase = prompt(&PassphraseRequest {
            store: store.to_owned(),
            new_store: !store_exists,
        })
        .map_err(|message| OpenError::Prompt { message })?;
        return Ok((
            StoreSecret::Passphrase(passphrase),
            "the passphrase prompt".to_owned(),
        ));
    }
    Err(OpenError::NoStoreKey)
}
