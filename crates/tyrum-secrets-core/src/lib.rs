#![doc = include_str!("../README.md")]

pub mod catalog;
pub mod durable;
pub mod handle;
mod kind;
mod memory;
pub mod provider;
pub mod redaction;
mod time;
mod value;

pub use catalog::{
    Catalog, CatalogEntry, CatalogError, CatalogStore, EntryStatus, JsonFileCatalogStore,
    MemoryCatalogStore, NewSecret, Retirement, RotateOptions, VersionPin,
};
pub use handle::{
    HandleId, HandleParseError, NameError, ProviderId, RandomnessError, Scope, SecretHandle,
};
pub use kind::{KindError, KindSpec, SecretKind};
pub use memory::MemoryProvider;
pub use provider::{
    Capabilities, Locator, LocatorError, Operation, Persistence, ProviderError, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionState, VersionedSecret,
};
pub use redaction::{Redacted, RedactionError, Redactor};
pub use time::Timestamp;
pub use value::{
    ExposeSecret, SecretBox, SecretBytes, SecretSlice, SecretString, bytes_from_string,
    string_from_bytes,
};
