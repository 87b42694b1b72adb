#![doc = include_str!("../README.md")]

mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod provider;
mod store;

pub use error::FileError;
pub use key::{KEY_LEN, KdfLimits, KdfParams, KeyKind, KeySource, StoreKey};
pub use provider::{FileOptions, FileProvider};
pub use store::WriterLock;
