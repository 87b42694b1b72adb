#![doc = include_str!("../README.md")]

mod auth;
mod catalog;
mod client;
mod config;
mod error;
mod http;
mod kv;
mod path;
mod provider;
mod resolve;
mod value;
mod wire;

pub use auth::{KUBERNETES_TOKEN_PATH, VaultAuth};
pub use catalog::VaultCatalogStore;
pub use client::VaultClient;
pub use config::{DEFAULT_RETRIES, DEFAULT_TIMEOUT, VaultConfig};
pub use error::VaultError;
pub use path::KvMount;
pub use provider::{DEFAULT_MAX_VALUE_LEN, VaultProvider};
