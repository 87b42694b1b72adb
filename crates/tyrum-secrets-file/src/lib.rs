#![doc = include_str!("../README.md")]

mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod lock;
mod options;
mod provider;
mod recovery;
mod store;

pub use error::FileError;
pub use key::{
    KEY_LEN, KdfLimits, KdfParams, KeyKind, KeySource, MAX_PASSPHRASE_FILE_LEN, StoreKey,
};
pub use lock::WriterLock;
pub use options::FileOptions;
pub use provider::FileProvider;
