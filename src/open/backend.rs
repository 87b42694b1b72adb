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

use super::OpenError;
use super::audit::KeysHome;
use crate::{Config, Profile};

/// `path` with `suffix` appended to its file name.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
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
