#![doc = include_str!("../README.md")]

pub use tyrum_secrets_core as core;
pub use tyrum_secrets_core::*;

/// The encrypted file provider, the embedded default for a single host.
#[cfg(feature = "file")]
pub use tyrum_secrets_file as file;

/// Environment variables and Kubernetes mounted-secret directories.
#[cfg(feature = "env")]
pub use tyrum_secrets_env as env;

/// The OS keychain provider: macOS Keychain, Windows Credential Manager,
/// Secret Service, kernel keyutils.
#[cfg(feature = "keychain")]
pub use tyrum_secrets_keychain as keychain;

/// Sealed hand-off of a resolved value to a paired node (HPKE, RFC 9180).
#[cfg(feature = "seal")]
pub use tyrum_secrets_seal as seal;
/// OpenBao / HashiCorp Vault KV v2: the shared provider and catalog store
/// for clusters.
#[cfg(feature = "vault")]
pub use tyrum_secrets_vault as vault;

pub mod config;
mod open;
pub mod operator;
mod profile;

pub use config::{Config, ConfigError};
#[cfg(feature = "file")]
pub use open::RekeyReport;
pub use open::{
    AuditEntry, AuditLayer, Creation, OpenError, OpenOptions, OpenReport, PassphrasePrompt,
    PassphraseRequest, ProviderLayer, Recovery, Secrets,
};
pub use profile::{Detection, Profile, SERVICE_ACCOUNT_TOKEN};
