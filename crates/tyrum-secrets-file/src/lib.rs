#![doc = include_str!("../README.md")]

mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod lock;
mod provider;
mod store;

pub use error::FileError;
pub use key::{KEY_LEN, KdfLimits, KdfParams, KeyKind, KeySource, StoreKey};
pub use lock::WriterLock;
pub use provider::{FileOptions, FileProvider};
