//! `Config`: what [`Secrets::open`](crate::Secrets::open) needs, from a TOML
//! file, `TYRUM_SECRETS_*` environment variables, or code.
//!
//! Unknown keys and variables are errors that name the key (and its line),
//! a value of the wrong type is an error that says what it must be, and an
//! environment variable overrides the file. Secrets are never config values:
//! the config names where they are (a passphrase file, a key file, a
//! keychain entry), or the caller supplies a prompt.
//!
#![doc = include_str!("keys.md")]

mod error;
mod keys;
pub(crate) mod load;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Location};
pub use keys::CONFIG_ENV;

use crate::Profile;

/// Everything [`Secrets::open`](crate::Secrets::open) needs to know. The
/// smallest useful config is
///
/// ```toml
/// profile = "single-host"
/// state_dir = "/var/lib/tyrum-secrets"
/// ```
///
/// with the store's passphrase in the file named by `passphrase_file` (or
/// `TYRUM_SECRETS_PASSPHRASE_FILE`). Every key and its default is listed in
/// the [module documentation](self).
///
/// ```
/// use tyrum_secrets::{Config, Profile};
///
/// let config = Config::from_toml_str(r#"
///     profile = "single-host"
///     state_dir = "/var/lib/tyrum-secrets"
///     passphrase_file = "/run/secrets/tyrum-passphrase"
/// "#)?;
/// assert_eq!(config.profile, Some(Profile::SingleHost));
/// assert_eq!(config.audit.timeout_ms, 5000); // a default
///
/// let err = Config::from_toml_str("state_dir = \"/x\"\nstatedir = \"/y\"\n").unwrap_err();
/// assert_eq!(err.to_string(),
///     "config line 2: unknown key `statedir` (did you mean `state_dir`?); see the list of keys in the tyrum-secrets config documentation");
/// # Ok::<(), tyrum_secrets::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The deployment profile. Default: [`Profile::detect`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Where catalog, audit log and (single host) the store live; created
    /// with mode 0700 if missing. Default: the user's data directory for
    /// `desktop`; required otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// A file holding the file store's passphrase (single host). One
    /// trailing newline is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// A file holding the file store's raw 32-byte key (single host),
    /// created on first run if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The rule policy (JSON). Default: none, and every request is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
    /// A directory for the anchors that would otherwise be files beside
    /// what they anchor (`<file>.anchor`): on another volume, or one that
    /// backups of the state directory leave out, so that rolling the state
    /// directory back does not roll its anchors back with it. Created with
    /// mode 0700. Default: none (beside each file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_dir: Option<PathBuf>,
    /// A file with the key that authenticates the catalog in the state
    /// directory (32 random bytes, or 64 hex digits), created on first run
    /// if missing. Default: kept in the profile's provider (the file store,
    /// the keychain); for `kubernetes`, `catalog.key` in the state
    /// directory, which protects against nothing that can write it: mount
    /// a Secret and name its file here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_key_file: Option<PathBuf>,
    /// The encrypted file store (single host).
    #[serde(default)]
    pub file: FileConfig,
    /// The OS keychain (desktop).
    #[serde(default)]
    pub keychain: KeychainConfig,
    /// Mounted Secret volumes and environment variables (Kubernetes).
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// OpenBao / Vault (cluster).
    #[serde(default)]
    pub vault: VaultConfig,
    /// The audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The redactor.
    #[serde(default)]
    pub redaction: RedactionConfig,
    /// Where each key's value came from.
    #[serde(skip)]
    origins: BTreeMap<&'static str, Location>,
}

/// `[file]`: the encrypted file store of the single-host profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct FileConfig {
    /// The store file, relative to `state_dir` unless absolute. Default
    /// `secrets.tyrum`.
    pub path: PathBuf,
    /// Take the store's key from this OS keychain entry instead of a
    /// passphrase (needs feature `keychain`; created on first run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keychain_key: Option<String>,
    /// Argon2id memory for a new store, in KiB (at least 19,456). Default
    /// 65,536 (64 MiB). An existing store keeps the factors it was made with.
    pub kdf_memory_kib: u32,
    /// Argon2id passes for a new store (at least 2). Default 3.
    pub kdf_passes: u32,
    /// Argon2id lanes for a new store. Default 4.
    pub kdf_lanes: u32,
    /// How long a writer waits for another process's lock. Default 10,000.
    pub lock_timeout_ms: u64,
    /// Where the store's rollback anchor is kept: [`AnchorPlace::File`]
    /// (beside the store, or in `anchor_dir`) or [`AnchorPlace::Keychain`]
    /// (the OS keychain `[keychain]` names; feature `keychain`). Default
    /// `file`.
    pub anchor: AnchorPlace,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("secrets.tyrum"),
            keychain_key: None,
            kdf_memory_kib: 65_536,
            kdf_passes: 3,
            kdf_lanes: 4,
            lock_timeout_ms: 10_000,
            anchor: AnchorPlace::File,
        }
    }
}

/// Where an anchor (the head of an append-only file, checked on open so a
/// file cut short or rolled back is refused) is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AnchorPlace {
    /// A file beside the anchored one (`<file>.anchor`), or in `anchor_dir`
    /// when set. It catches one file rolled back or cut short on its own;
    /// a directory restored whole takes its anchors along, unless
    /// `anchor_dir` is elsewhere.
    #[default]
    File,
    /// An entry in the OS keychain that `[keychain]` names (feature
    /// `keychain`): outside the directory, so rolling the directory back
    /// is caught too.
    Keychain,
}

/// `[keychain]`: the OS keychain of the desktop profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KeychainConfig {
    /// Which keychain. Default [`KeychainStore::Platform`].
    pub store: KeychainStore,
    /// Prefix of every keychain item. Default `tyrum-secrets`.
    pub namespace: String,
    /// Bound on each keychain call. Default 10,000.
    pub timeout_ms: u64,
}

impl Default for KeychainConfig {
    fn default() -> Self {
        Self {
            store: KeychainStore::Platform,
            namespace: "tyrum-secrets".to_owned(),
            timeout_ms: 10_000,
        }
    }
}

/// Which OS keychain holds the values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeychainStore {
    /// The platform's: macOS Keychain, Windows Credential Manager, the
    /// Secret Service elsewhere.
    #[default]
    Platform,
    /// The freedesktop Secret Service (gnome-keyring, KWallet).
    SecretService,
    /// The Linux kernel keyring: values last until reboot.
    Keyutils,
    /// The macOS login Keychain.
    MacosKeychain,
    /// Windows Credential Manager.
    WindowsCredentialManager,
}

/// `[kubernetes]`: where a pod's secrets are.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KubernetesConfig {
    /// A mounted Secret volume (kubelet's `..data` layout or plain files);
    /// its keys are locators of provider `mounted`. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounted_dir: Option<PathBuf>,
    /// Every variable starting with this prefix is a value of provider
    /// `env`, its locator the rest of the name. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_prefix: Option<String>,
    /// Variables by locator (`"openai/api-key" = "OPENAI_API_KEY"`), values
    /// of provider `env`. Default: none.
    pub env_vars: BTreeMap<String, String>,
    /// Remove the loaded variables from the process environment so child
    /// processes do not inherit them. This needs a process that is still
    /// single-threaded at open (open at the top of `main`); an open that
    /// cannot remove them fails. Default true; `false` is refused unless
    /// `dangerous_keep_env` is set.
    pub remove_env: bool,
    /// Keep the loaded variables in the environment: every child process
    /// the gateway starts then inherits every secret variable, with no
    /// resolve, policy check or audit record. Noted in the open report.
    /// Default false.
    pub dangerous_keep_env: bool,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            mounted_dir: None,
            env_prefix: None,
            env_vars: BTreeMap::new(),
            remove_env: true,
            dangerous_keep_env: false,
        }
    }
}

/// `[vault]`: the OpenBao (or Vault) server of the cluster profile, shared
/// by every process: the values and the catalog live in its KV version 2
/// engine. Credentials are never config values: the token comes from a
/// file, or from a login (AppRole with the secret id in a file, or the
/// pod's Kubernetes service-account token).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct VaultConfig {
    /// The server, `https://host:8200`. Required for `cluster`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The namespace sent with every request (`X-Vault-Namespace`).
    /// Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The CA bundle (PEM) to trust for the server's certificate instead
    /// of the platform's roots. Default: none (the platform's roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Log in with the token in this file (surrounding whitespace ignored),
    /// re-read when the server rejects the one in use (an agent's sink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// AppRole login: the role id (not a secret; with
    /// `approle_secret_id_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approle_role_id: Option<String>,
    /// AppRole login: the file holding the secret id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approle_secret_id_file: Option<PathBuf>,
    /// Kubernetes service-account login as this role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_role: Option<String>,
    /// The service-account token for `kubernetes_role`. Default: the pod's
    /// projected token.
    pub kubernetes_token_file: PathBuf,
    /// The auth method's mount, for `approle_*` and `kubernetes_role`.
    /// Default: `approle`, `kubernetes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_mount: Option<String>,
    /// The KV version 2 mount of values and catalog. Default `secret`.
    pub kv_mount: String,
    /// The path under `kv_mount` of the values. Default `tyrum/values`.
    pub values_path: String,
    /// The path under `kv_mount` of the catalog (one entry per handle).
    /// Default `tyrum/catalog`.
    pub catalog_path: String,
    /// Bound on each HTTP exchange. Default 10,000.
    pub timeout_ms: u64,
    /// Allow a plain `http://` address: tokens and values then cross the
    /// network in clear text. Only for a dev server on loopback. Default
    /// false.
    pub dangerous_allow_http: bool,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            address: None,
            namespace: None,
            ca_file: None,
            token_file: None,
            approle_role_id: None,
            approle_secret_id_file: None,
            kubernetes_role: None,
            kubernetes_token_file: PathBuf::from(
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ),
            auth_mount: None,
            kv_mount: "secret".to_owned(),
            values_path: "tyrum/values".to_owned(),
            catalog_path: "tyrum/catalog".to_owned(),
            timeout_ms: 10_000,
            dangerous_allow_http: false,
        }
    }
}

/// `[audit]`: the audit log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Where records go besides the chained log file: [`AuditOutput::File`]
    /// or also to standard output. Default `file`.
    pub output: AuditOutput,
    /// Directory of the logs, relative to `state_dir` unless absolute.
    /// Default `audit`.
    pub dir: PathBuf,
    /// How long a resolve waits for its record. Default 5,000.
    pub timeout_ms: u64,
    /// Add a keyed fingerprint of each value handed out to its record, so
    /// an investigator can check a candidate value. Default true.
    pub fingerprints: bool,
    /// A file with the audit keys (64 random bytes, or 128 hex digits).
    /// Default: kept in the profile's provider; for `kubernetes`,
    /// `audit.key` in the state directory, created on first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Where each log's anchor is kept. Default: the keychain for
    /// `desktop`, a file otherwise (see [`AnchorPlace`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorPlace>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            output: AuditOutput::File,
            dir: PathBuf::from("audit"),
            timeout_ms: 5_000,
            fingerprints: true,
            key_file: None,
            anchor: None,
        }
    }
}

/// Where audit records go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AuditOutput {
    /// The chained JSON-lines log file in `audit.dir`.
    #[default]
    File,
    /// The log file, and each record's line also to standard output (for a
    /// pod's log collector).
    Stdout,
}

/// `[redaction]`: the redactor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedactionConfig {
    /// Values shorter than this many bytes are refused (they would mask
    /// ordinary text). Default 8.
    pub min_value_len: usize,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            min_value_len: tyrum_secrets_core::redaction::DEFAULT_MIN_VALUE_LEN,
        }
    }
}

impl Config {
    /// The config file named by `path`, else by `TYRUM_SECRETS_CONFIG`, else
    /// none; then every `TYRUM_SECRETS_*` variable of this process on top.
    ///
    /// # Errors
    /// [`ConfigError`]: the file cannot be read or is not valid TOML, a key
    /// or variable is unknown, or a value has the wrong type.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(path, std::env::vars_os())
    }

    /// [`load`](Self::load) with the variables given instead of the
    /// process environment (variables without the `TYRUM_SECRETS_` prefix
    /// are ignored).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn load_from(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(OsString, OsString)> = env.into_iter().collect();
        let named = env
            .iter()
            .find(|(name, _)| name == CONFIG_ENV)
            .map(|(_, value)| PathBuf::from(value));
        let file = match path.map(Path::to_owned).or(named) {
            Some(path) => Some((load::read_file(&path)?, path)),
            None => None,
        };
        load::load(
            file.as_ref()
                .map(|(text, path)| (text.as_str(), Some(path.as_path()))),
            env,
        )
    }

    /// The config file at `path` alone, without environment variables.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = load::read_file(path)?;
        load::load(Some((&text, Some(path))), [])
    }

    /// A config from TOML text alone (relative paths are taken from the
    /// working directory).
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        load::load(Some((text, None)), [])
    }

    /// A config from the `TYRUM_SECRETS_*` variables of this process alone.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_env() -> Result<Config, ConfigError> {
        load::load(None, std::env::vars_os())
    }

    /// The smallest single-host config: the store in `state_dir`, its
    /// passphrase in `passphrase_file`.
    pub fn single_host(state_dir: impl Into<PathBuf>, passphrase_file: impl Into<PathBuf>) -> Self {
        Config {
            profile: Some(Profile::SingleHost),
            state_dir: Some(state_dir.into()),
            passphrase_file: Some(passphrase_file.into()),
            ..Config::default()
        }
    }

    /// Where the value of `key` (`"state_dir"`, `"audit.timeout_ms"`) came
    /// from: a file's line, a variable, or [`Location::Default`] for a
    /// default or a value set in code.
    pub fn origin(&self, key: &str) -> Location {
        self.origins.get(key).cloned().unwrap_or(Location::Default)
    }

    /// The environment variable that sets `key`, if `key` is a config key.
    pub fn env_var(key: &str) -> Option<String> {
        keys::find(key).map(|k| keys::env_name(k.path))
    }

    /// Every config key, as written in a file.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        keys::KEYS.iter().map(|k| k.path)
    }

    /// "`key` (set by TYRUM_SECRETS_X)" or "`key` (/etc/x.toml line 3)":
    /// names a key and where its value came from, for errors.
    pub(crate) fn describe(&self, key: &str) -> String {
        match self.origin(key) {
            Location::Default => {
                format!("`{key}` (or {})", Config::env_var(key).unwrap_or_default())
            }
            origin => format!("`{key}` ({origin})"),
        }
    }
}

impl fmt::Display for Config {
    /// The config as TOML (it holds no secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match toml::to_string(self) {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

#[cfg(test)]
mod tests;
