//! The keychain provider's errors and how store errors map onto them.

use std::time::Duration;

use tyrum_secrets_core::{Locator, Persistence, ProviderError, Version};
use zeroize::Zeroize;

/// A platform error boxed by a store crate (a D-Bus error, an errno).
pub type PlatformError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A keychain operation failed. Messages never carry secret bytes.
///
/// Every variant converts into [`ProviderError`] for callers that only see
/// the [`SecretProvider`](tyrum_secrets_core::SecretProvider) trait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeychainError {
    /// No secret is stored at the locator.
    #[error("no secret at locator {locator}")]
    NotFound {
        /// The locator asked for.
        locator: Locator,
    },
    /// The locator exists but not at this version.
    #[error("locator {locator} has no readable version {version}")]
    VersionNotFound {
        /// The locator asked for.
        locator: Locator,
        /// The version asked for.
        version: Version,
    },
    /// The value is larger than this provider stores.
    #[error(
        "the value is {len} bytes; this keychain provider stores at most {max} \
         (raise it with KeychainProviderBuilder::max_value_len if the platform's quota allows)"
    )]
    ValueTooLarge {
        /// Size of the value.
        len: usize,
        /// The provider's limit.
        max: usize,
    },
    /// The keychain refused access: a locked collection, a dismissed unlock
    /// prompt, a kernel keyring this process may not use.
    #[error(
        "the keychain refused access while {action}: {message}; unlock it (log in to the \
         desktop session, or `gnome-keyring-daemon --unlock`), grant this program access, \
         or on Linux run in a session keyring you own (`keyctl session -`), then retry"
    )]
    AccessDenied {
        /// What the provider was doing.
        action: String,
        /// What the platform said.
        message: String,
    },
    /// No keychain service answered (no D-Bus session, no Secret Service
    /// daemon, a daemon that went away).
    #[error(
        "the keychain is unavailable while {action}: {message}; start a Secret Service \
         (gnome-keyring, KWallet) on this session bus, or pick the kernel keyutils store"
    )]
    Unavailable {
        /// What the provider was doing.
        action: String,
        /// What the platform said.
        message: String,
    },
    /// The store did not answer within the provider's timeout.
    #[error(
        "the keychain did not answer within {timeout:?} while {action}; it may be waiting \
         on an unlock prompt or its daemon hung: unlock or restart it, then retry \
         (a write that timed out may still land as a new version)"
    )]
    TimedOut {
        /// What the provider was doing.
        action: String,
        /// The bound that passed.
        timeout: Duration,
    },
    /// Keychain items written by this provider are malformed or missing.
    #[error("keychain data is corrupt: {message}")]
    Corrupt {
        /// Where, without any secret bytes.
        message: String,
    },
    /// Any other store failure.
    #[error("the keychain store failed while {action}: {message}")]
    Store {
        /// What the provider was doing.
        action: String,
        /// What the store said.
        message: String,
        /// The platform error, if the store gave one.
        #[source]
        source: Option<PlatformError>,
    },
    /// The provider was configured with values it cannot use.
    #[error("invalid keychain provider configuration: {message}")]
    Config {
        /// What to change.
        message: String,
    },
    /// The store keeps values only until reboot or process exit, and the
    /// operation needs durable storage.
    #[error(
        "this keychain store keeps values only {persistence}; a file-store key kept there \
         is lost at reboot and with it every record. Use the Secret Service, macOS Keychain \
         or Windows Credential Manager, or a passphrase"
    )]
    NotDurable {
        /// What the store reports.
        persistence: Persistence,
    },
    /// The worker thread running a store call could not start or panicked.
    #[error("a keychain worker thread failed while {action}: {message}")]
    Worker {
        /// What the provider was doing.
        action: String,
        /// What went wrong.
        message: String,
    },
}

impl KeychainError {
    /// Maps a keyring-core error raised while doing `action`.
    ///
    /// `NoEntry` is mapped to [`KeychainError::Corrupt`]: callers for which a
    /// missing item is normal handle it before calling this. Store errors
    /// that carry secret bytes (`BadEncoding`, `BadDataFormat`) or entries
    /// (`Ambiguous`) are wiped and dropped here, never formatted.
    pub(crate) fn from_store(err: keyring_core::Error, action: &str) -> Self {
        use keyring_core::Error as E;
        let action = action.to_owned();
        match err {
            E::NoStorageAccess(source) => KeychainError::AccessDenied {
                action,
                message: source.to_string(),
            },
            E::PlatformFailure(source) => {
                let message = source.to_string();
                if is_no_service(&message) {
                    KeychainError::Unavailable { action, message }
                } else {
                    KeychainError::Store {
                        action,
                        message,
                        source: Some(source),
                    }
                }
            }
            E::NoEntry => KeychainError::Corrupt {
                message: format!("a keychain item is missing while {action}"),
            },
            E::BadEncoding(mut bytes) => {
                bytes.zeroize();
                KeychainError::Corrupt {
                    message: format!("the store could not decode an item while {action}"),
                }
            }
            E::BadDataFormat(mut bytes, _) => {
                bytes.zeroize();
                KeychainError::Corrupt {
                    message: format!("the store found a malformed item while {action}"),
                }
            }
            E::BadStoreFormat(reason) => KeychainError::Corrupt {
                message: format!("the store is malformed while {action}: {reason}"),
            },
            E::Ambiguous(entries) => KeychainError::Corrupt {
                message: format!(
                    "{} keychain items match one name while {action}; remove the duplicates \
                     (e.g. with seahorse or `secret-tool clear`)",
                    entries.len()
                ),
            },
            E::TooLong(name, limit) => KeychainError::Store {
                action,
                message: format!(
                    "the platform refused {name}: longer than its limit of {limit}; \
                     lower KeychainProviderBuilder::chunk_len or use shorter locators"
                ),
                source: None,
            },
            E::Invalid(what, reason) => KeychainError::Store {
                action,
                message: format!("the store refused {what}: {reason}"),
                source: None,
            },
            E::NotSupportedByStore(reason) => KeychainError::Store {
                action,
                message: format!("not supported by this store: {reason}"),
                source: None,
            },
            other => KeychainError::Store {
                action,
                // Remaining variants (NoDefaultStore and future ones) carry no
                // secret bytes; their Display is safe to keep.
                message: other.to_string(),
                source: None,
            },
        }
    }
}

/// Whether a platform failure means nobody answered on D-Bus: no session
/// bus, no Secret Service owner, a daemon that exited or stopped replying.
///
/// The store crate boxes `dbus_secret_service::Error`, whose `Display`
/// starts with "DBus error" for transport failures and says "No DBus
/// session" when there is no bus; other stores never use these words.
fn is_no_service(message: &str) -> bool {
    message.starts_with("DBus error") || message.contains("No DBus session")
}

impl From<KeychainError> for ProviderError {
    fn from(err: KeychainError) -> Self {
        match err {
            KeychainError::NotFound { locator } => ProviderError::NotFound { locator },
            KeychainError::VersionNotFound { locator, version } => {
                ProviderError::VersionNotFound { locator, version }
            }
            KeychainError::ValueTooLarge { len, max } => ProviderError::ValueTooLarge { len, max },
            e @ KeychainError::AccessDenied { .. } => ProviderError::PermissionDenied {
                message: e.to_string(),
            },
            e @ (KeychainError::Unavailable { .. } | KeychainError::TimedOut { .. }) => {
                ProviderError::Unavailable {
                    message: e.to_string(),
                }
            }
            KeychainError::Corrupt { message } => ProviderError::Corrupt { message },
            e => ProviderError::Backend {
                message: e.to_string(),
                source: Some(Box::new(e)),
            },
        }
    }
}
