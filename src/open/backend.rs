//! The providers of each profile. Each function checks what it can before
//! writing anything, and tracks every file it creates.

#![cfg_attr(
    not(all(feature = "file", feature = "env", feature = "keychain")),
    allow(unused_imports, unused_variables, dead_code)
)]

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{ProviderId, SecretProvider};

use super::anchors::Place;
use super::audit::KeysHome;
use super::report::Recovery;
use super::state::Created;
use super::{OpenError, OpenOptions, PassphraseRequest};
use crate::config::load::resolve;
use crate::{Config, Profile};

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// What a profile's values live in.
pub(crate) struct Backend {
    /// Providers by id, as the catalog names them.
    pub(crate) providers: Vec<(ProviderId, Arc<dyn SecretProvider>)>,
    /// The provider that keeps the audit keys, if the profile has a
    /// writable one.
    pub(crate) keys_provider: Option<(Arc<dyn SecretProvider>, String)>,
    /// The keychain provider, when the values are in the keychain (it
    /// keeps the audit anchors too, by default).
    pub(crate) keychain: Option<(Arc<dyn SecretProvider>, String)>,
    /// For the state record: what holds the values. A change would shadow
    /// them, so it is refused.
    pub(crate) values: String,
    /// Warnings for the operator.
    pub(crate) notes: Vec<String>,
    /// Where the store's anchor is, for a profile with a file store.
    pub(crate) store_anchor: Option<String>,
    /// The catalog store, when it is not the JSON file in the state
    /// directory (the cluster's shared catalog).
    pub(crate) catalog: Option<Arc<dyn tyrum_secrets_core::CatalogStore>>,
}

impl Backend {
    pub(crate) fn keys_home(
        &self,
        config: &Config,
        state_dir: &Path,
        profile: Profile,
    ) -> KeysHome<'_> {
        match (&config.audit.key_file, &self.keys_provider) {
            (Some(path), _) => KeysHome::File {
                path: path.clone(),
                key: config.describe("audit.key_file"),
            },
            (None, Some((provider, what))) => KeysHome::Provider {
                provider: provider.as_ref(),
                what: what.clone(),
            },
            (None, None) => KeysHome::File {
                path: state_dir.join("audit.key"),
                key: format!("the {profile} profile's default, `audit.key_file`"),
            },
        }
    }
}

impl Backend {
    /// Where the local catalog's key is kept: in `catalog_key_file` if
    /// set, else in the profile's writable provider, else in `catalog.key`
    /// in the state directory.
    pub(crate) fn catalog_key_home(
        &self,
        config: &Config,
        state_dir: &Path,
        profile: Profile,
    ) -> super::catalog::KeyHome<'_> {
        use super::catalog::KeyHome;
        match (&config.catalog_key_file, &self.keys_provider) {
            (Some(path), _) => KeyHome::File {
                path: path.clone(),
                key: config.describe("catalog_key_file"),
            },
            (None, Some((provider, what))) => KeyHome::Provider {
                provider: provider.as_ref(),
                what: what.clone(),
            },
            (None, None) => KeyHome::File {
                path: state_dir.join(super::catalog::KEY_FILE_NAME),
                key: format!("the {profile} profile's default, `catalog_key_file`"),
            },
        }
    }
}

pub(crate) fn provider_id(name: &str) -> Result<ProviderId, OpenError> {
    ProviderId::new(name).map_err(|e| OpenError::AuditKeys {
        reason: format!("internal: provider id {name}: {e}"),
    })
}

/// What the single-host store is called in the state record.
pub(crate) fn single_host_values(config: &Config) -> String {
    format!("the file store {}", config.file.path.display())
}

/// The encrypted file store in the state directory, opened against its
/// anchor.
///
/// Two cases wait until the rest of the open has been checked, so that a
/// failed open changes no file: a format-1 store (rewritten as format 2
/// with its anchor, [`PendingStore::finish`]), and a store its anchor
/// refuses when the options accept that knowingly. Meanwhile the store is
/// opened without its anchor, for reading only (the audit keys).
#[cfg(feature = "file")]
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
#[cfg(feature = "file")]
pub(crate) fn store_anchor(
    config: &Config,
    state_id: Option<&str>,
    store: &Path,
    created: Option<&mut Created>,
) -> Result<super::anchors::Placed, OpenError> {
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
#[cfg(feature = "file")]
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
#[cfg(feature = "file")]
enum StoreAction {
    /// Rewrite a format-1 store as format 2 and start its anchor.
    Upgrade,
    /// Accept a store its anchor refuses (the refusal, as text), on record.
    Accept(tyrum_secrets_core::AdminRequest, String),
}

/// A change to the single-host store that waits until the rest of the
/// open has been checked.
#[cfg(feature = "file")]
pub(crate) struct PendingStore {
    store: PathBuf,
    /// Where its anchor is, for messages.
    anchor: String,
    secret: StoreSecret,
    source_desc: String,
    anchored: tyrum_secrets_file::FileOptions,
    action: StoreAction,
}

#[cfg(feature = "file")]
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
#[cfg(feature = "file")]
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
#[cfg(feature = "file")]
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

#[cfg(feature = "file")]
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
#[cfg(feature = "file")]
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
            let keychain = keychain_store(config)?;
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
                profile: Profile::SingleHost,
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

/// The OS keychain `[keychain]` names, as a provider (for values on the
/// desktop, for anchors elsewhere), and a description of it.
#[cfg(feature = "keychain")]
pub(crate) fn keychain_provider(
    config: &Config,
) -> Result<(Arc<dyn SecretProvider>, String), OpenError> {
    use tyrum_secrets_keychain::KeychainProvider;

    let store = keychain_store(config)?;
    let provider = KeychainProvider::builder(store)
        .namespace(config.keychain.namespace.clone())
        .timeout(Duration::from_millis(config.keychain.timeout_ms))
        .build()?;
    Ok((
        Arc::new(provider),
        format!("the OS keychain (namespace {})", config.keychain.namespace),
    ))
}

/// Without the keychain backend, a keychain anchor cannot be kept.
#[cfg(not(feature = "keychain"))]
pub(crate) fn keychain_provider(
    _config: &Config,
) -> Result<(Arc<dyn SecretProvider>, String), OpenError> {
    Err(OpenError::FeatureMissing {
        profile: Profile::SingleHost,
        feature: "keychain",
    })
}

/// The credential store `[keychain]` names.
#[cfg(feature = "keychain")]
pub(crate) fn keychain_store(
    config: &Config,
) -> Result<Arc<tyrum_secrets_keychain::CredentialStore>, OpenError> {
    use tyrum_secrets_keychain::{KeychainError, stores};

    use crate::config::KeychainStore;
    let timeout = Duration::from_millis(config.keychain.timeout_ms);
    let _ = timeout;
    let unsupported = |name: &str| {
        Err(OpenError::Keychain(KeychainError::Config {
            message: format!(
                "keychain.store = \"{name}\" ({}) is not available on {}; pick another store",
                config.describe("keychain.store"),
                std::env::consts::OS
            ),
        }))
    };
    match config.keychain.store {
        #[cfg(target_os = "linux")]
        KeychainStore::Platform | KeychainStore::SecretService => {
            Ok(stores::secret_service(timeout)?)
        }
        #[cfg(target_os = "linux")]
        KeychainStore::Keyutils => Ok(stores::kernel_keyutils()?),
        #[cfg(target_os = "macos")]
        KeychainStore::Platform | KeychainStore::MacosKeychain => Ok(stores::macos_keychain()?),
        #[cfg(target_os = "windows")]
        KeychainStore::Platform | KeychainStore::WindowsCredentialManager => {
            Ok(stores::windows_credential_manager()?)
        }
        other => unsupported(match other {
            KeychainStore::Platform => "platform",
            KeychainStore::SecretService => "secret-service",
            KeychainStore::Keyutils => "keyutils",
            KeychainStore::MacosKeychain => "macos-keychain",
            KeychainStore::WindowsCredentialManager => "windows-credential-manager",
        }),
    }
}

/// What the desktop profile's values are in, for the state record.
pub(crate) fn desktop_values(config: &Config) -> String {
    format!("the OS keychain, namespace {}", config.keychain.namespace)
}

/// The OS keychain.
#[cfg(feature = "keychain")]
pub(crate) fn desktop(config: &Config) -> Result<Backend, OpenError> {
    use tyrum_secrets_keychain::KeychainProvider;

    let store = keychain_store(config)?;
    let provider = KeychainProvider::builder(store)
        .namespace(config.keychain.namespace.clone())
        .timeout(Duration::from_millis(config.keychain.timeout_ms))
        .build()?;
    let notes = provider
        .persistence_warning()
        .map(|w| vec![w.to_owned()])
        .unwrap_or_default();
    let provider: Arc<dyn SecretProvider> = Arc::new(provider);
    let what = format!("the OS keychain (namespace {})", config.keychain.namespace);
    Ok(Backend {
        providers: vec![(provider_id("keychain")?, Arc::clone(&provider))],
        keys_provider: Some((Arc::clone(&provider), what.clone())),
        keychain: Some((provider, what)),
        values: desktop_values(config),
        notes,
        store_anchor: None,
        catalog: None,
    })
}

/// What the Kubernetes profile's values are in, for the state record.
pub(crate) const KUBERNETES_VALUES: &str = "mounted Secret volumes and environment variables";

/// Mounted Secret volumes and environment variables, read-only.
#[cfg(feature = "env")]
pub(crate) fn kubernetes(config: &Config) -> Result<Backend, OpenError> {
    use tyrum_secrets_core::Locator;
    use tyrum_secrets_env::{EnvError, EnvLoader, MountedSecretProvider};

    let k = &config.kubernetes;
    let keep = k.dangerous_keep_env;
    if !k.remove_env && !keep {
        return Err(OpenError::MissingSetting {
            profile: Profile::Kubernetes,
            key: config.describe("kubernetes.dangerous_keep_env"),
            why: "kubernetes.remove_env = false leaves every secret variable to every child process the gateway starts, with no resolve, policy check or audit record; set kubernetes.dangerous_keep_env = true to accept that knowingly, or remove kubernetes.remove_env",
        });
    }
    let mut notes = Vec::new();
    let mut providers: Vec<(ProviderId, Arc<dyn SecretProvider>)> = Vec::new();
    if let Some(dir) = &k.mounted_dir {
        let mounted =
            MountedSecretProvider::open(dir.clone()).map_err(|source| OpenError::Mount {
                path: dir.clone(),
                source,
            })?;
        providers.push((provider_id("mounted")?, Arc::new(mounted)));
    }
    if k.env_prefix.is_some() || !k.env_vars.is_empty() {
        let mut loader = EnvLoader::new().remove_from_environment(!keep);
        if let Some(prefix) = &k.env_prefix {
            loader = loader.prefix(prefix.clone());
        }
        for (locator, var) in &k.env_vars {
            let locator = Locator::new(locator.clone()).map_err(|e| {
                OpenError::Config(crate::ConfigError::WrongType {
                    at: config.origin("kubernetes.env_vars"),
                    key: "kubernetes.env_vars".to_owned(),
                    expected: "locators as keys".to_owned(),
                    found: format!("a key that is not a locator ({e})"),
                })
            })?;
            loader = loader.variable(locator, var.clone());
        }
        let loaded = loader.load().map_err(|source| match source {
            EnvError::NotSingleThreaded { .. } | EnvError::ThreadCountUnknown { .. } => {
                OpenError::EnvRemoval {
                    key: config.describe("kubernetes.dangerous_keep_env"),
                    source,
                }
            }
            other => OpenError::Env(other),
        })?;
        providers.push((provider_id("env")?, Arc::new(loaded)));
        if !keep {
            hide_start_up_environment(&mut notes);
        }
        if keep {
            notes.push(format!(
                "the secret variables stay in this process's environment ({}): every child process it starts inherits them without a resolve, a policy check or an audit record; start children with env_clear()",
                config.describe("kubernetes.dangerous_keep_env")
            ));
        }
    }
    if providers.is_empty() {
        return Err(OpenError::MissingSetting {
            profile: Profile::Kubernetes,
            key: format!(
                "{} or {}",
                config.describe("kubernetes.mounted_dir"),
                config.describe("kubernetes.env_prefix")
            ),
            why: "where the pod's secrets are (a mounted Secret volume, or environment variables)",
        });
    }
    Ok(Backend {
        providers,
        keys_provider: None,
        keychain: None,
        values: KUBERNETES_VALUES.to_owned(),
        notes,
        store_anchor: None,
        catalog: None,
    })
}

/// Removing the variables keeps them from children, but the kernel still
/// serves the environment this process started with at
/// `/proc/<pid>/environ` to every process of the same user: the tools the
/// gateway starts. A process that is not dumpable has those files owned by
/// root, so only root reads them (nor can the same user ptrace it, and it
/// leaves no core dump). Children are dumpable again after `exec`.
#[cfg(feature = "env")]
fn hide_start_up_environment(notes: &mut Vec<String>) {
    #[cfg(target_os = "linux")]
    let hidden =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .map_err(|e| e.to_string());
    #[cfg(not(target_os = "linux"))]
    let hidden: Result<(), String> = Err("not Linux".to_owned());
    if let Err(why) = hidden {
        notes.push(format!(
            "the removed secret variables can still be read from /proc/<pid>/environ by every process of this user, the tools this process starts included ({why}); prefer mounted Secret volumes"
        ));
    }
}

/// The default state directory of the desktop profile: the user's data
/// directory plus `tyrum-secrets`.
pub(crate) fn desktop_state_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = match std::env::consts::OS {
        "macos" => var("HOME").map(|h| h.join("Library/Application Support")),
        "windows" => var("APPDATA"),
        _ => var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share"))),
    }?;
    Some(base.join("tyrum-secrets"))
}
