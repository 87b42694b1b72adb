//! The node's replay guard: the envelope ids it has opened, each kept until
//! its envelope expires, so a copy of an envelope (a redelivered queue
//! message, an outbox row read twice, an attacker's recording) opens once.
//!
//! [`FileReplayGuard`] survives restarts and is shared safely by every
//! process of the node; [`MemoryReplayGuard`] forgets on restart.

mod file;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use tyrum_secrets_core::Timestamp;

use crate::EnvelopeId;

pub use file::FileReplayGuard;

/// Remembers opened envelope ids until they expire.
///
/// An implementation must record the id durably before it answers
/// [`Recorded::First`] (the value is handed out on that answer), keep it at
/// least until `expires_at`, and answer atomically: of two concurrent calls
/// for one id, at most one gets `First`.
pub trait ReplayGuard: Send + Sync + fmt::Debug {
    /// Records `id` (valid until `expires_at`) as opened at `now`, unless
    /// it was opened before.
    ///
    /// # Errors
    /// [`ReplayError`] when the store cannot be read or written; the
    /// envelope must then not be opened.
    fn record(
        &self,
        id: &EnvelopeId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Recorded, ReplayError>;
}

impl<G: ReplayGuard + ?Sized> ReplayGuard for std::sync::Arc<G> {
    fn record(
        &self,
        id: &EnvelopeId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Recorded, ReplayError> {
        (**self).record(id, expires_at, now)
    }
}

/// What the replay guard found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Not seen before; now recorded.
    First,
    /// Seen before: a replay.
    Replay,
}

/// A replay guard in memory: forgets everything on restart, so an envelope
/// opened before a restart opens again after it. Only for tests, and for
/// nodes whose envelopes cannot outlive the process that opens them.
#[derive(Debug, Default)]
pub struct MemoryReplayGuard {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    expiries: HashMap<EnvelopeId, Timestamp>,
    /// The size after the last pruning; pruning again waits until the map
    /// has doubled, so its cost is amortised.
    pruned_at_len: usize,
}

impl MemoryReplayGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ids it holds (expired ones included until pruned).
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expiries
            .len()
    }

    /// Whether it holds no id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn record(
        &self,
        id: &EnvelopeId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Recorded, ReplayError> {
        // The map stays consistent whatever panicked while it was held.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.expiries.contains_key(id) {
            return Ok(Recorded::Replay);
        }
        if seen.expiries.len() >= 2 * seen.pruned_at_len.max(32) {
            seen.expiries.retain(|_, expiry| *expiry > now);
            seen.pruned_at_len = seen.expiries.len();
        }
        seen.expiries.insert(*id, expires_at);
        Ok(Recorded::First)
    }
}

/// The replay store could not be used. Holds paths and line numbers, never
/// a value (the store holds none).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Reading or writing the store failed.
    #[error("{operation} the replay store {} failed: {source}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A complete line of the store is not an entry. Envelopes do not open
    /// until it is repaired: a damaged store could let one open twice.
    #[error(
        "line {line} of the replay store {} is damaged; no envelope opens until it is \
         repaired (remove the line, or the file once every envelope in it has expired)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
    },
    /// Another process held the store's lock for too long.
    #[error(
        "the replay store lock {} is held by another process; retry, or find the process that \
         holds it",
        path.display()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn id(n: u8) -> EnvelopeId {
        EnvelopeId::from_bytes([n; 16])
    }

    #[test]
    fn memory_guard_answers_once_per_id_and_prunes_expired_ids() {
        let guard = MemoryReplayGuard::new();
        let t = |ms| Timestamp::from_unix_millis(ms);
        assert_eq!(guard.record(&id(1), t(100), t(0)).unwrap(), Recorded::First);
        assert_eq!(
            guard.record(&id(1), t(100), t(0)).unwrap(),
            Recorded::Replay
        );
        for n in 2..=64 {
            guard.record(&id(n), t(100), t(0)).unwrap();
        }
        assert_eq!(guard.len(), 64);
        // Past every expiry, the next record prunes them all.
        guard.record(&id(200), t(1000), t(500)).unwrap();
        assert_eq!(guard.len(), 1);
    }
}
