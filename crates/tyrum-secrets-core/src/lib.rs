#![doc = include_str!("../README.md")]

pub mod admin;
pub mod anchor;
pub mod audit;
pub mod auth_profile;
pub mod catalog;
pub mod durable;
pub mod handle;
pub mod inject;
mod kind;
mod memory;
mod mutation;
pub mod policy;
pub mod provider;
pub mod redaction;
pub mod request;
pub mod resolver;
mod time;
mod value;

pub use admin::{AdminError, AdminRequest, SecretAdmin, SecretAdminBuilder};
pub use anchor::{
    Anchor, AnchorError, AnchorHead, AnchorKey, AnchorSeal, AnchorStore, ChainPosition, FileAnchor,
    MemoryAnchor, ProviderAnchor,
};
pub use audit::{
    Action, AuditChainKey, AuditError, AuditRecord, AuditSink, ChainHead, ErrorKind, Fingerprint,
    FingerprintKey, JsonLinesAuditSink, LabelChange, LoadedVersions, MemoryAuditSink, Outcome,
    VerifyError, VerifyProblem, verify_audit_log,
};
pub use auth_profile::{
    AuthProfile, AuthProfileError, AuthProfileStore, AuthProfiles, AuthProfilesBuilder,
    CallOutcome, Choice, Clock, CooldownPolicy, Credential, CredentialType, DisableReason,
    FailureKind, FixedJitter, Jitter, JsonFileAuthProfileStore, ManualClock,
    MemoryAuthProfileStore, ModelProvider, Pin, PinKey, ProfileCredential, ProfileId,
    ProfileLabels, ProfileSet, ProfileStatus, RandomJitter, RefreshError, RefreshLock,
    RefreshRequest, RefreshState, RefreshedTokens, Refresher, Reported, Selection, Skipped, Slot,
    SystemClock, Unusable,
};
pub use catalog::{
    Catalog, CatalogEntry, CatalogError, CatalogStore, EntryStatus, JsonFileCatalogStore,
    MemoryCatalogStore, NewSecret, Retirement, RotateOptions, VersionPin,
};
pub use handle::{
    HandleId, HandleParseError, NameError, ProviderId, RandomnessError, Scope, SecretHandle,
};
pub use inject::{Inject, InjectError, ResolvingSource, SecretJson, ValueSource};
pub use kind::{KindError, KindSpec, SecretKind};
pub use memory::MemoryProvider;
#[doc(hidden)]
pub use mutation::active_mutation_name;
pub use policy::{
    ApprovalGrant, ApprovalRejection, ApprovalVerifier, Decision, DecisionReason, DefaultEffect,
    Effect, MemoryApprovals, Policy, PolicyError, PolicyInput, RejectAllApprovals, RulePolicy,
};
pub use provider::{
    Capabilities, Locator, LocatorError, Operation, Persistence, ProviderError, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionState, VersionedSecret,
};
pub use redaction::{Redacted, RedactionError, Redactor};
pub use request::{Destination, Purpose, RequestError, Requester};
pub use resolver::{
    PreloadError, PreloadReport, ResolveError, ResolveRequest, ResolvedSecret, Resolver,
    ResolverBuilder, SkipReason, SkippedVersion,
};
pub use time::Timestamp;
pub use value::{
    Alphabet, ExposeSecret, SecretBox, SecretBytes, SecretSlice, SecretString, bytes_from_string,
    random_bytes, random_string, string_from_bytes,
};
