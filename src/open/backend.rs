//! The providers of each profile. Each function checks what it can before
//! writing anything, and tracks every file it creates.

#![cfg_attr(
    not(all(feature = "file", feature = "env", feature = "keychain")),
    allow(unused_imports, unused_variables, dead_code)
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{ProviderId, SecretProvider};

use super::audit::KeysHome;
use super::state::Created;
use super::{OpenError, OpenOptions, PassphraseRequest};
use crate::config::load::resolve;
use crate::{Config, Profile};

/// What a profile's values live in.
pub(crate) struct Backend {
    /// Providers by id, as the catalog names them.
    pub(crate) providers: Vec<(ProviderId, Arc<dyn SecretProvider>)>,
    /// The provider that keeps the audit keys, if the profile has a
    /// writable one.
    pub(crate) keys_provider: Option<(Arc<dyn SecretProvider>, String)>,
    /// For the state record: what holds the values. A change would shadow
    /// them, so it is refused.
    pub(crate) values: String,
    /// Warnings for the operator.
    pub(crate) notes: Vec<String>,
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

fn provider_id(name: &str) -> Result<ProviderId, OpenError> {
    ProviderId::new(name).map_err(|e| OpenError::AuditKeys {
        reason: format!("internal: provider id {name}: {e}"),
    })
}

/// What the single-host store is called in the state record.
pub(crate) fn single_host_values(config: &Config) -> String {
    format!("the file store {}", config.file.path.display())
}

/// The encrypted file store in the state directory.
#[cfg(feature = "file")]
pub(crate) fn single_host(
    config: &Config,
    options: &OpenOptions,
    state_dir: &Path,
    existing: bool,
    created: &mut Created,
) -> Result<Backend, OpenError> {
    use tyrum_secrets_file::{FileError, FileProvider};

    let store = resolve(state_dir, &config.file.path);
    let store_exists = store.exists();
    if existing && !store_exists {
        return Err(OpenError::StateIncomplete {
            what: "the file store",
            path: store,
        });
    }
    let (source, source_desc) = store_key(config, options, &store, store_exists, created)?;
    let file_options = file_options(config, options)?;
    let lock = {
        let mut name = store
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        store.with_file_name(name)
    };
    let provider = created.track(&[&store, &lock], || {
        FileProvider::open_with(&store, source, file_options).map_err(|e| match e {
            FileError::Decrypt { .. } => OpenError::WrongKey {
                store: store.clone(),
                source_desc: source_desc.clone(),
            },
            other => OpenError::Store(other),
        })
    })?;
    let provider: Arc<dyn SecretProvider> = Arc::new(provider);
    Ok(Backend {
        providers: vec![(provider_id("file")?, Arc::clone(&provider))],
        keys_provider: Some((provider, format!("the file store {}", store.display()))),
        values: single_host_values(config),
        notes: Vec::new(),
    })
}

/// How the single-host store is opened (by an open, and by a rekey, which
/// must open it the same way).
#[cfg(feature = "file")]
pub(super) fn file_options(
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

/// The file store's key source and a description of it for errors.
#[cfg(feature = "file")]
pub(super) fn store_key(
    config: &Config,
    options: &OpenOptions,
    store: &Path,
    store_exists: bool,
    created: &mut Created,
) -> Result<(tyrum_secrets_file::KeySource, String), OpenError> {
    use tyrum_secrets_file::{KeySource, StoreKey};

    if let Some(path) = &config.passphrase_file {
        let key = config.describe("passphrase_file");
        let passphrase = super::keyfile::read_passphrase(path, &key)?;
        return Ok((
            KeySource::Passphrase(passphrase),
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
        let store_key = if path.exists() {
            StoreKey::read_key_file(path).map_err(|e| fail(e.to_string()))?
        } else if !store_exists {
            created.track(&[path], || {
                StoreKey::write_new_key_file(path)
                    .map_err(|e| fail(format!("cannot be created: {e}")))
            })?
        } else {
            return Err(fail(
                "does not exist, but the store does; restore the key file that opens it".to_owned(),
            ));
        };
        return Ok((KeySource::Key(store_key), desc));
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
                KeySource::Key(StoreKey::from(&key)),
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
            KeySource::Passphrase(passphrase),
            "the passphrase prompt".to_owned(),
        ));
    }
    Err(OpenError::NoStoreKey)
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
    Ok(Backend {
        providers: vec![(provider_id("keychain")?, Arc::clone(&provider))],
        keys_provider: Some((
            provider,
            format!("the OS keychain (namespace {})", config.keychain.namespace),
        )),
        values: desktop_values(config),
        notes,
    })
}

/// What the Kubernetes profile's values are in, for the state record.
pub(crate) const KUBERNETES_VALUES: &str = "mounted Secret volumes and environment variables";

/// Mounted Secret volumes and environment variables, read-only.
#[cfg(feature = "env")]
pub(crate) fn kubernetes(config: &Config) -> Result<Backend, OpenError> {
    use tyrum_secrets_core::Locator;
    use tyrum_secrets_env::{EnvLoader, MountedSecretProvider};

    let k = &config.kubernetes;
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
        let mut loader = EnvLoader::new().remove_from_environment(k.remove_env);
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
        providers.push((provider_id("env")?, Arc::new(loader.load()?)));
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
        values: KUBERNETES_VALUES.to_owned(),
        notes: Vec::new(),
    })
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
