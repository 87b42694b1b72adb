//! What goes wrong with anchors.

use super::ChainPosition;
use crate::provider::ProviderError;

/// An anchor refused a file, or could not be read or written. Messages name
/// where the anchor is and what to do; never a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The file is behind its anchor: cut short or rolled back.
    #[error(
        "the file is older than its anchor at {location}: it holds {found}, the anchor records {anchored}. It was cut short or rolled back to an older copy; restore the newest copy, or accept this state with the owner's explicit (audited) recovery call"
    )]
    RolledBack {
        /// Where the anchor is.
        location: String,
        /// Where the anchor says the file is.
        anchored: ChainPosition,
        /// Where the file is.
        found: ChainPosition,
    },
    /// The file does not continue the chain its anchor records.
    #[error(
        "the file does not continue the state its anchor at {location} records ({anchored}; the file holds {found}). It was replaced by another copy, or rewritten by a process that did not use the anchor; restore the right copy, or accept this state with the owner's explicit (audited) recovery call"
    )]
    Diverged {
        /// Where the anchor is.
        location: String,
        /// Where the anchor says the file is.
        anchored: ChainPosition,
        /// Where the file is.
        found: ChainPosition,
    },
    /// There is no anchor, but the file already holds records.
    #[error(
        "no anchor at {location}, but the file already holds {count} records: the anchor was deleted, or this file is anchored for the first time. Restore the anchor, or accept the file's current state with the owner's explicit (audited) recovery call"
    )]
    Missing {
        /// Where the anchor should be.
        location: String,
        /// Records in the file.
        count: u64,
    },
    /// The anchor records a file that does not exist.
    #[error(
        "the anchor at {location} records a file that does not exist; restore the file, or remove the anchor if the file was deleted on purpose"
    )]
    FileMissing {
        /// Where the anchor is.
        location: String,
    },
    /// No head in the anchor authenticates under the file's key.
    #[error(
        "the anchor at {location} does not authenticate under this file's key: it belongs to another file, or it was forged. Restore it, or accept the file's current state with the owner's explicit (audited) recovery call"
    )]
    Unauthenticated {
        /// Where the anchor is.
        location: String,
    },
    /// The anchor's bytes are not an anchor.
    #[error(
        "the anchor at {location} is damaged or not an anchor; restore it, or accept the file's current state with the owner's explicit (audited) recovery call"
    )]
    Malformed {
        /// Where the anchor is.
        location: String,
    },
    /// Reading or writing an anchor file failed.
    #[error("anchor {location}: {context}; check the disk and permissions")]
    Io {
        /// The anchor file.
        location: String,
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The provider holding the anchor failed.
    #[error("anchor at {location}: the provider failed; check it and retry")]
    Provider {
        /// Where the anchor is.
        location: String,
        /// The provider's error.
        #[source]
        source: ProviderError,
    },
    /// A test anchor was told to fail.
    #[error("anchor at {location} is unavailable (told to fail)")]
    Unavailable {
        /// Where the anchor is.
        location: String,
    },
    /// The key is too short.
    #[error("the anchor key is {len} bytes; at least 32 random bytes are required")]
    KeyTooShort {
        /// Its length.
        len: usize,
    },
    /// The OS random number generator failed.
    #[error("the operating system random number generator failed; no key was generated")]
    Randomness,
}

impl AnchorError {
    /// Whether the owner's explicit recovery call may accept the file
    /// despite this error (it is about the anchor's claim, not about the
    /// file's integrity or a failing store).
    pub fn is_acceptable(&self) -> bool {
        matches!(
            self,
            AnchorError::RolledBack { .. }
                | AnchorError::Diverged { .. }
                | AnchorError::Missing { .. }
                | AnchorError::Unauthenticated { .. }
                | AnchorError::Malformed { .. }
        )
    }
}
