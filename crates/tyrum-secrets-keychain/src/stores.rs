//! The platform credential stores, built for the caller to pass to
//! [`KeychainProvider::new`](crate::KeychainProvider::new).
//!
//! The caller picks the store; this crate never installs a keyring-core
//! default store. On Linux both the Secret Service and the kernel keyring
//! are available and the choice is the operator's: the Secret Service is
//! durable but needs a desktop session (or a started gnome-keyring), the
//! kernel keyring always exists but forgets at reboot.
//!
//! The macOS and Windows constructors compile only on those targets and
//! are not exercised by this repository's tests, which run on Linux.

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
use std::sync::Arc;
#[cfg(target_os = "linux")]
use std::time::Duration;

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
use keyring_core::CredentialStore;

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
use crate::error::KeychainError;

/// The freedesktop Secret Service (gnome-keyring, KWallet, KeePassXC) on the
/// session bus named by `DBUS_SESSION_BUS_ADDRESS`, items in the default
/// (login) collection.
///
/// Connecting talks to the service, so it runs on a worker thread bounded
/// by `timeout`.
///
/// # Errors
/// [`KeychainError::Unavailable`] when no session bus or no Secret Service
/// answers, [`KeychainError::TimedOut`] when it does not answer in time.
#[cfg(target_os = "linux")]
pub fn secret_service(timeout: Duration) -> Result<Arc<CredentialStore>, KeychainError> {
    let action = "connecting to the Secret Service";
    crate::provider::bounded(action, timeout, move || {
        let store = dbus_secret_service_keyring_store::Store::new()
            .map_err(|e| KeychainError::from_store(e, action))?;
        let store: Arc<CredentialStore> = store;
        Ok(store)
    })
}

/// The Linux kernel keyring (keyutils): keys in the session keyring, linked
/// to the user's persistent keyring when there is one. Values last until
/// reboot at most ([`Persistence::UntilReboot`](tyrum_secrets_core::Persistence)).
///
/// # Errors
/// Never today; the `Result` leaves room for store configuration errors.
#[cfg(target_os = "linux")]
pub fn kernel_keyutils() -> Result<Arc<CredentialStore>, KeychainError> {
    let store = linux_keyutils_keyring_store::Store::new()
        .map_err(|e| KeychainError::from_store(e, "opening the kernel keyring"))?;
    let store: Arc<CredentialStore> = store;
    Ok(store)
}

/// The macOS login Keychain (generic passwords). Untested here: this
/// repository's tests run on Linux.
///
/// # Errors
/// The store's own failures.
#[cfg(target_os = "macos")]
pub fn macos_keychain() -> Result<Arc<CredentialStore>, KeychainError> {
    let store = apple_native_keyring_store::keychain::Store::new()
        .map_err(|e| KeychainError::from_store(e, "opening the macOS Keychain"))?;
    let store: Arc<CredentialStore> = store;
    Ok(store)
}

/// Windows Credential Manager (generic credentials, at most 2,560 bytes
/// each; the provider splits longer values). Untested here: this
/// repository's tests run on Linux.
///
/// # Errors
/// The store's own failures.
#[cfg(target_os = "windows")]
pub fn windows_credential_manager() -> Result<Arc<CredentialStore>, KeychainError> {
    let store = windows_native_keyring_store::Store::new()
        .map_err(|e| KeychainError::from_store(e, "opening Windows Credential Manager"))?;
    let store: Arc<CredentialStore> = store;
    Ok(store)
}
