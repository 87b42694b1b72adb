#![doc = include_str!("../README.md")]

pub use tyrum_secrets_core as core;
pub use tyrum_secrets_core::*;

#[cfg(feature = "env")]
pub use tyrum_secrets_env as env;

#[cfg(feature = "keychain")]
pub use tyrum_secrets_keychain as keychain;
