#![doc = include_str!("../README.md")]

mod blob;
mod error;
mod file_key;
mod index;
mod provider;
pub mod stores;

pub use error::{KeychainError, PlatformError};
pub use file_key::{
    FILE_KEY_LEN, FILE_KEY_SERVICE, FileStoreKeySource, load_or_create_file_store_key,
};
pub use keyring_core;
pub use keyring_core::CredentialStore;
pub use provider::{
    DEFAULT_MAX_VALUE_LEN, DEFAULT_NAMESPACE, DEFAULT_TIMEOUT, KEYUTILS_ITEM_LEN, KeychainProvider,
    KeychainProviderBuilder, WINDOWS_MAX_ITEM_LEN, persistence_warning,
};
