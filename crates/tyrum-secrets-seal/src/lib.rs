#![doc = include_str!("../README.md")]

mod clock;
pub mod envelope;
mod node;
mod open;
pub mod replay;
mod seal;
mod suite;
#[cfg(test)]
mod vectors;

pub use clock::{Clock, ManualClock, SystemClock};
pub use envelope::{
    EnvelopeError, EnvelopeId, EnvelopeIdParseError, MAX_ENVELOPE_LEN, MAX_VALUE_LEN, SealedSecret,
};
pub use node::{
    IdentityError, NODE_ID_MAX_LEN, NodeId, NodeIdError, NodeIdentity, NodePublicKey,
    PairingRecord, PublicKeyParseError,
};
pub use open::{
    DEFAULT_MAX_LIFETIME, Expected, OpenError, OpenedSecret, OpenedSecrets, Opener, OpenerBuilder,
};
pub use replay::{FileReplayGuard, MemoryReplayGuard, Recorded, ReplayError, ReplayGuard};
pub use seal::{DEFAULT_TTL, SealError, SealFor, SealOptions};
