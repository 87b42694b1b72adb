//! Audit: one record for every resolve attempt and every administrative
//! change ([`Action`]), never the value.
//!
//! [`AuditSink`] is the trait; core ships [`MemoryAuditSink`] and
//! [`JsonLinesAuditSink`], a JSON-lines file whose records are chained with
//! HMAC-SHA256 so [`verify_audit_log`] detects edited, reordered, inserted
//! and deleted records (and truncation, given the last known
//! [`ChainHead`]); anchored ([`JsonLinesAuditSink::open_anchored`]), it
//! refuses on open a log cut short or rolled back.
//!
//! The resolver fails closed on audit: if the sink reports an error, or does
//! not answer within the configured timeout, the resolve fails and no value
//! is handed out.
//!
//! # Blocking sinks, timeouts and late writes
//!
//! Sinks that never block ([`AuditSink::may_block`] is `false`, like
//! [`MemoryAuditSink`]) are called inline. Every other sink is called on a
//! worker thread the resolver owns, and the resolving thread waits at most
//! the audit timeout (default 5 s). A record still queued when its caller
//! gives up is never written. A record whose write had already started may
//! land after its caller gave up: the log then claims a hand-over that did
//! not happen. That is the safe direction — a log may over-report, never
//! under-report — so read a `resolved` record as "the value may have been
//! handed out". When a sink hangs, later records queue up to a bound and
//! then fail at once ([`AuditError::Backlogged`]); no caller ever waits past
//! the timeout.

mod chain;
mod fingerprint;
pub(crate) mod gate;

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use chain::{
    AuditChainKey, ChainHead, JsonLinesAuditSink, VerifyError, VerifyProblem, verify_audit_bytes,
    verify_audit_log,
};
pub use fingerprint::{Fingerprint, FingerprintKey, KeyError};

use crate::anchor::{AnchorError, ChainPosition};
use crate::policy::{ApprovalRejection, DecisionReason, Effect};
use crate::request::{Purpose, Requester};
use crate::{HandleId, ProviderId, Scope, SecretKind, Timestamp, Version};

/// One resolve attempt or administrative change ([`AuditRecord::action`]),
/// as the audit log keeps it. Holds no secret value; at most a keyed
/// [`Fingerprint`] of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// When the attempt started.
    pub time: Timestamp,
    /// Unique id of the attempt.
    pub request_id: String,
    /// The handle asked for.
    pub handle_id: HandleId,
    /// Its provider, once the catalog knew the handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderId>,
    /// Its scope, once the catalog knew the handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Its kind, once the catalog knew the handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SecretKind>,
    /// The provider version read, when a read happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// Who asked.
    pub requester: Requester,
    /// Why.
    pub purpose: String,
    /// Where the value was going.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The policy's effect, when the policy was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Effect>,
    /// Why the policy decided so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<DecisionReason>,
    /// The rule that decided, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The approval presented, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// The class of failure, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Why an approval did not satisfy, when that was the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_rejection: Option<ApprovalRejection>,
    /// Keyed HMAC of the value handed out, when the resolver has a
    /// [`FingerprintKey`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// What was done: a resolve, or an administrative change.
    #[serde(default)]
    pub action: Action,
    /// The paired node a sealed value was resolved for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The auth profile whose credential was resolved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_profile: Option<String>,
    /// The expiry an administrative change gave the handle (create, rotate
    /// with a new expiry, set_expiry). On a [`Action::SetExpiry`] record
    /// `None` means the expiry was cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// The label a [`Action::SetLabel`] record set or cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<LabelChange>,
    /// The secret's values may go out unmasked: its create (or import)
    /// record says the operator allowed it, and a resolve record says the
    /// value handed out was not registered with the redactor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unmasked: bool,
    /// The handles and versions an [`Action::Preload`] record loaded into
    /// the redactor (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<LoadedVersions>,
    /// How many records an [`Action::Rekey`] re-sealed under a fresh data
    /// key; absent when only the key protecting the data key changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resealed: Option<u64>,
}

/// A label set (`value` is `Some`) or cleared (`None`) by an administrative
/// change. Labels are safe to show; never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelChange {
    /// The label's key.
    pub key: String,
    /// Its new value, or `None` when it was removed.
    pub value: Option<String>,
}

/// One handle's versions that a redactor pre-load registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadedVersions {
    /// The handle.
    pub handle_id: HandleId,
    /// The versions whose values were registered, ascending.
    pub versions: Vec<Version>,
}

impl AuditRecord {
    /// A record of an attempt that has not got anywhere yet.
    pub fn new(
        time: Timestamp,
        request_id: String,
        handle_id: HandleId,
        requester: Requester,
        purpose: String,
    ) -> Self {
        Self {
            time,
            request_id,
            handle_id,
            provider: None,
            scope: None,
            kind: None,
            version: None,
            requester,
            purpose,
            destination: None,
            decision: None,
            decision_reason: None,
            rule: None,
            approval_id: None,
            outcome: Outcome::Failed,
            error_kind: None,
            approval_rejection: None,
            fingerprint: None,
            action: Action::Resolve,
            node: None,
            auth_profile: None,
            expires_at: None,
            label: None,
            allow_unmasked: false,
            loaded: Vec::new(),
            resealed: None,
        }
    }
}

impl AuditRecord {
    /// The record of an operator accepting a file its anchor refused
    /// ([`Action::AcceptRollback`]): who, why, and — in `request_id` — which
    /// head the anchor recorded and which the file has. `marker` names the
    /// file (a store id, a log) in place of a handle id.
    ///
    /// # Errors
    /// [`AuditError::Rejected`] when `marker` is not a valid handle id.
    pub fn accepted_rollback(
        marker: &str,
        by: &Requester,
        reason: &Purpose,
        refusal: &AnchorError,
        found: ChainPosition,
    ) -> Result<Self, AuditError> {
        let handle_id = HandleId::parse_bare(marker)
            .map_err(|_| AuditError::rejected("the file's marker is not a valid handle id"))?;
        let anchored = match refusal {
            AnchorError::RolledBack { anchored, .. } | AnchorError::Diverged { anchored, .. } => {
                format!("{}.{}", anchored.generation, anchored.count)
            }
            AnchorError::Missing { .. } => "none".to_owned(),
            _ => "unreadable".to_owned(),
        };
        let mut record = Self::new(
            Timestamp::now(),
            format!(
                "accept-rollback:anchored={anchored}:found={}.{}",
                found.generation, found.count
            ),
            handle_id,
            by.clone(),
            reason.as_str().to_owned(),
        );
        record.action = Action::AcceptRollback;
        record.outcome = Outcome::Applied;
        Ok(record)
    }
}

/// What an audit record is about. Records written before this field existed
/// read as [`Action::Resolve`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A resolve attempt: a value asked for by a requester.
    #[default]
    Resolve,
    /// A new handle was created with a value.
    Create,
    /// A handle was recorded for a value already in a provider.
    Import,
    /// A handle was rotated to a new version.
    Rotate,
    /// A handle was revoked.
    Revoke,
    /// A revoked handle was restored.
    Restore,
    /// A version was destroyed in its provider.
    Destroy,
    /// A handle's expiry was set or cleared.
    SetExpiry,
    /// A handle's label was set or cleared (labels can decide which policy
    /// rules apply).
    SetLabel,
    /// Old versions past their grace period were removed.
    Retire,
    /// Values were read to pre-load the redactor; none was handed out. The
    /// record's `loaded` names the handles and versions; its `handle_id`
    /// is a fresh id naming the batch, not a handle in the catalog.
    Preload,
    /// An operator accepted state older than its anchor.
    AcceptRollback,
    /// An operator changed the key that protects a file store (a new
    /// passphrase or key source) and, on request, re-sealed every record
    /// under a fresh data key ([`AuditRecord::resealed`]). The record's
    /// `handle_id` is a marker naming the store, not a handle; it names no
    /// key or passphrase.
    Rekey,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Resolve => "resolve",
            Action::Create => "create",
            Action::Import => "import",
            Action::Rotate => "rotate",
            Action::Revoke => "revoke",
            Action::Restore => "restore",
            Action::Destroy => "destroy",
            Action::SetExpiry => "set_expiry",
            Action::SetLabel => "set_label",
            Action::Retire => "retire",
            Action::Preload => "preload",
            Action::AcceptRollback => "accept_rollback",
            Action::Rekey => "rekey",
        })
    }
}

/// What came of a resolve attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The value was handed to the executor — unless the audit write that
    /// carried this record timed out after starting (see the
    /// [module docs](self) on late writes): a record may over-report a
    /// hand-over, never under-report one.
    Resolved,
    /// Policy or approval refused.
    Denied,
    /// Something failed (unknown, revoked, expired, provider, redaction).
    Failed,
    /// An administrative change was made (or a pre-load done) — unless a
    /// later record with the same `request_id` says it failed. The record
    /// is written before the change becomes visible, so, like
    /// [`Outcome::Resolved`], it may over-report, never under-report.
    Applied,
}

/// Classes of resolve failure, as audit records name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The handle is not in the catalog.
    UnknownHandle,
    /// The handle is revoked.
    Revoked,
    /// The handle expired.
    Expired,
    /// The policy denied.
    Denied,
    /// An approval was required and not satisfied.
    ApprovalRejected,
    /// The provider failed to read.
    Provider,
    /// The catalog failed (store error, provider not configured).
    Catalog,
    /// The redactor refused the value.
    Redaction,
    /// The audit sink failed (never in a written record; in errors only).
    Audit,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::UnknownHandle => "unknown_handle",
            ErrorKind::Revoked => "revoked",
            ErrorKind::Expired => "expired",
            ErrorKind::Denied => "denied",
            ErrorKind::ApprovalRejected => "approval_rejected",
            ErrorKind::Provider => "provider",
            ErrorKind::Catalog => "catalog",
            ErrorKind::Redaction => "redaction",
            ErrorKind::Audit => "audit",
        })
    }
}

/// Where audit records go.
///
/// `record` returns only once the record is as durable as the sink
/// promises (the file sink: written and fsynced). The resolver calls it
/// before it hands a value out and fails closed on any error.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Stores `record`.
    ///
    /// # Errors
    /// [`AuditError`]; the resolve that produced the record then fails.
    fn record(&self, record: AuditRecord) -> Result<(), AuditError>;

    /// Whether `record` may block on I/O or on other threads for long.
    ///
    /// The resolver calls sinks that may block on a worker thread and waits
    /// at most its audit timeout; sinks that answer `false` are called
    /// inline, which saves the thread hop. Answer `false` only for sinks
    /// that never wait on anything but a short, uncontended lock.
    fn may_block(&self) -> bool {
        true
    }
}

impl<S: AuditSink + ?Sized> AuditSink for std::sync::Arc<S> {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        (**self).record(record)
    }
    fn may_block(&self) -> bool {
        (**self).may_block()
    }
}

/// Keeps records in memory, for tests, examples and short-lived processes.
/// Optionally bounded: then it keeps the newest records.
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    records: Mutex<VecDeque<AuditRecord>>,
    capacity: Option<usize>,
}

impl MemoryAuditSink {
    /// An unbounded sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink keeping at most the newest `capacity` records.
    pub fn bounded(capacity: usize) -> Self {
        Self {
            records: Mutex::default(),
            capacity: Some(capacity.max(1)),
        }
    }

    /// The records held, oldest first.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.lock().iter().cloned().collect()
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<AuditRecord>> {
        // Each mutation is one push/pop; a poisoned queue is still consistent.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let mut records = self.lock();
        if self.capacity.is_some_and(|c| records.len() >= c) {
            records.pop_front();
        }
        records.push_back(record);
        Ok(())
    }

    fn may_block(&self) -> bool {
        false
    }
}

/// An audit sink could not record. The resolve that needed the record fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Writing or syncing the audit log failed.
    #[error("audit log {path}: {context}; check the disk and permissions, then retry")]
    Io {
        /// The log file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The sink did not answer in time.
    #[error(
        "the audit sink did not confirm the record within {after:?}; the resolve failed closed. Check the audit storage"
    )]
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// Too many records wait for a slow sink.
    #[error("{queued} audit records are waiting for a slow sink; the resolve failed closed")]
    Backlogged {
        /// The queue capacity.
        queued: usize,
    },
    /// The sink's worker thread is gone or could not be started.
    #[error("the audit worker is not running: {message}")]
    WorkerUnavailable {
        /// What happened.
        message: String,
    },
    /// An earlier write failed in a way that left the log unusable; the
    /// sink refuses further records until it is reopened.
    #[error(
        "audit log {path} is unusable after an earlier failed write; reopen it after checking the disk"
    )]
    Broken {
        /// The log file.
        path: PathBuf,
    },
    /// Another sink (in this or another process) has the log open.
    #[error("audit log {path} is open in another writer; one process appends to a log at a time")]
    Locked {
        /// The log file.
        path: PathBuf,
    },
    /// The existing log does not verify; the sink will not extend it.
    #[error(
        "audit log {path} does not verify ({source}); investigate before appending, or move it aside"
    )]
    Tampered {
        /// The log file.
        path: PathBuf,
        /// What verification found.
        #[source]
        source: VerifyError,
    },
    /// The log's anchor refuses it (cut short, rolled back, replaced, or
    /// not anchored yet), or the anchor cannot be read or written.
    #[error(
        "audit log {path}, anchor check: {source}. (For an audit log the recovery call is JsonLinesAuditSink::accept_rollback.)"
    )]
    Anchor {
        /// The log file.
        path: PathBuf,
        /// What the anchor found.
        #[source]
        source: AnchorError,
    },
    /// A custom sink refused the record.
    #[error("the audit sink refused the record: {message}")]
    Rejected {
        /// What the sink said; never a secret.
        message: String,
    },
}

impl AuditError {
    /// A sink-specific refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        AuditError::Rejected {
            message: message.into(),
        }
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Decodes lower-case hex; `None` on anything else.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_upper_case() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(unhex("00ABFF"), None);
        assert_eq!(unhex("0"), None);
    }

    #[test]
    fn bounded_memory_sink_keeps_the_newest() {
        let sink = MemoryAuditSink::bounded(2);
        let requester = Requester::new("a").unwrap();
        for n in 0..3 {
            let record = AuditRecord::new(
                Timestamp::from_unix_millis(n),
                format!("r{n}"),
                HandleId::generate().unwrap(),
                requester.clone(),
                "p".into(),
            );
            sink.record(record).unwrap();
        }
        let ids: Vec<_> = sink.records().into_iter().map(|r| r.request_id).collect();
        assert_eq!(ids, ["r1", "r2"]);
    }

    /// Records written before `rekey` existed keep their bytes (no
    /// `resealed` key is added) and still parse; a rekey record round-trips.
    #[test]
    fn rekey_records_round_trip_and_older_records_are_unchanged() {
        let mut record = AuditRecord::new(
            Timestamp::from_unix_millis(1),
            "r1".into(),
            HandleId::generate().unwrap(),
            Requester::new("operator").unwrap(),
            "p".into(),
        );
        record.action = Action::Create;
        record.outcome = Outcome::Applied;
        let older = serde_json::to_string(&record).unwrap();
        assert!(!older.contains("resealed"), "{older}");
        let parsed: AuditRecord = serde_json::from_str(&older).unwrap();
        assert_eq!(parsed, record);

        record.action = Action::Rekey;
        record.resealed = Some(3);
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains(r#""action":"rekey""#), "{text}");
        assert!(text.contains(r#""resealed":3"#), "{text}");
        assert_eq!(serde_json::from_str::<AuditRecord>(&text).unwrap(), record);
    }
}
