//! The record of which audit logs a state directory has (review 1, #2).
//!
//! Each log is anchored on its own, so a log cut short is refused; but a
//! log deleted together with its anchor, or the whole audit directory,
//! leaves nothing to refuse. The index closes that: an authenticated
//! record (core's `Anchor`, sealed under the audit chain key with a subject
//! of its own) of how many logs were ever written, kept where the logs'
//! anchors are (`audit.anchor`: beside the audit directory as
//! `<audit dir>.anchor`, in `anchor_dir`, or in the keychain). Logs are
//! numbered from 0 and never renumbered, so every slot below the count must
//! exist; a missing one is refused on open and by `verify_audit`.
//!
//! The index is advanced at the end of an open (after the log it took
//! exists, so a crash leaves the index behind the logs, never ahead). An
//! index that is missing altogether is refused where the state shows it
//! was written (the local catalog's key existed before this open); it is
//! made on a first open and when a state from before it is upgraded.

use std::path::{Path, PathBuf};

use tyrum_secrets_core::{
    Action, AdminRequest, Anchor, AnchorHead, AnchorKey, AnchorSeal, AuditChainKey, AuditError,
    AuditRecord, AuditSink, HandleId, JsonLinesAuditSink, Outcome, SecretBytes, Timestamp,
};

use super::OpenError;
use super::anchors::{Place, Placed};
use super::audit::{self, AuditKeys};
use super::report::Recovery;
use super::state::Created;

/// The index's name where it is not beside the audit directory.
const NAME: &str = "audit-logs";
/// Binds the index's tag to what it is: never a log's anchor.
const SUBJECT: &[u8] = b"tyrum-secrets audit log index";
/// Names the index in audit records, in place of a handle id.
const MARKER: &str = "tyrum-secrets-audit-log-index";

/// The index of the audit logs in one audit directory.
pub(crate) struct AuditIndex {
    dir: PathBuf,
    placed: Placed,
    /// The count it held when checked (`None`: no index, or accepted).
    count: Option<u64>,
}

/// A refusal the operator accepted, to record once the log is open.
pub(crate) struct Accepted {
    by: AdminRequest,
    refusal: String,
    /// The logs the index vouched for that are gone.
    missing: Vec<u32>,
}

impl AuditIndex {
    /// The index of the logs in `dir`, kept in `place`.
    pub(crate) fn new(place: &Place, dir: &Path) -> Result<Self, OpenError> {
        Ok(Self {
            dir: dir.to_owned(),
            placed: place.anchor(dir, NAME)?,
            count: None,
        })
    }

    /// Checks that every log the index vouches for exists. `required`: the
    /// state shows the index was written, so a missing index is refused.
    /// With `accept`, a refusal is accepted instead (record it with
    /// [`record_accepted`]) and the index is rewritten from the logs found.
    pub(crate) fn check(
        &mut self,
        keys: &AuditKeys,
        required: bool,
        accept: Option<&AdminRequest>,
    ) -> Result<Option<Accepted>, OpenError> {
        let mut missing = Vec::new();
        let refusal = match self.load(keys) {
            Ok(Some(count)) => {
                self.count = Some(count);
                let slots = super::audit::slots_if_any(&self.dir)?;
                let Ok(count32) = u32::try_from(count) else {
                    return Err(super::internal("the audit log index counts past u32"));
                };
                missing = (0..count32).filter(|n| !slots.contains(n)).collect();
                missing.first().map(|n| OpenError::AuditLogMissing {
                    log: self.dir.join(format!("{n}.jsonl")),
                    index: self.placed.location.clone(),
                    count,
                })
            }
            Ok(None) if required => Some(OpenError::AuditIndexMissing {
                dir: self.dir.clone(),
                index: self.placed.location.clone(),
            }),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        match (refusal, accept) {
            (None, _) => Ok(None),
            (Some(refusal), Some(by)) => {
                self.count = None;
                Ok(Some(Accepted {
                    by: by.clone(),
                    refusal: refusal.to_string(),
                    missing,
                }))
            }
            (Some(refusal), None) => Err(refusal),
        }
    }

    /// Advances the index to cover every log now in the directory (never
    /// below what it vouched for), tracking it in `created` if this makes
    /// it.
    pub(crate) fn advance(&self, keys: &AuditKeys, created: &mut Created) -> Result<(), OpenError> {
        let slots = super::audit::slots_if_any(&self.dir)?;
        let found = slots.last().map_or(0, |n| u64::from(*n) + 1);
        let count = self.count.map_or(found, |c| c.max(found));
        if self.count == Some(count) {
            return Ok(());
        }
        let seal = seal(keys)?;
        self.placed.track(created, &[], || {
            self.placed
                .anchor
                .advance(&seal, &AnchorHead::new(0, count, [0; 32]))
                .map_err(|source| OpenError::AuditIndex {
                    index: self.placed.location.clone(),
                    source,
                })
        })
    }

    /// Where the index is, for messages.
    pub(crate) fn location(&self) -> &str {
        &self.placed.location
    }

    /// How many logs the index vouches for; `None` without an index.
    fn load(&self, keys: &AuditKeys) -> Result<Option<u64>, OpenError> {
        load(&self.placed.anchor, &self.placed.location, keys)
    }
}

/// Records an accepted refusal in `audit`, makes the missing logs again
/// (each with its own record of the acceptance where its anchor outlived
/// it), and says so for the report.
pub(crate) fn record_accepted(
    accepted: Accepted,
    index: &AuditIndex,
    audit: &dyn AuditSink,
    (keys, place): (&AuditKeys, &Place),
    created: &mut Created,
) -> Result<Recovery, OpenError> {
    let missing: Vec<String> = accepted.missing.iter().map(u32::to_string).collect();
    let mut record = AuditRecord::new(
        Timestamp::now(),
        format!("accept-rollback:audit-logs:missing={}", missing.join(",")),
        HandleId::parse_bare(MARKER).map_err(super::internal)?,
        accepted.by.actor().clone(),
        accepted.by.reason().as_str().to_owned(),
    );
    record.action = Action::AcceptRollback;
    record.outcome = Outcome::Applied;
    audit.record(record)?;
    // The open may have started a missing slot's log itself.
    let present = super::audit::slots_if_any(&index.dir)?;
    for n in accepted.missing.iter().filter(|n| !present.contains(n)) {
        super::audit::recreate_slot(&index.dir, *n, keys, place, &accepted.by, created)?;
    }
    Ok(Recovery::AuditLogsAccepted {
        dir: index.dir.clone(),
        index: index.location().to_owned(),
        refusal: accepted.refusal,
    })
}

/// For `verify_audit`: every log the index in `place` vouches for is in
/// `dir` (no index: nothing to check).
pub(crate) fn verify(dir: &Path, keys: &AuditKeys, place: &Place) -> Result<(), OpenError> {
    let mut index = AuditIndex::new(place, dir)?;
    index.check(keys, false, None).map(drop)
}

fn load(anchor: &Anchor, location: &str, keys: &AuditKeys) -> Result<Option<u64>, OpenError> {
    let fail = |source| OpenError::AuditIndex {
        index: location.to_owned(),
        source,
    };
    let Some(sealed) = anchor.load().map_err(fail)? else {
        return Ok(None);
    };
    let anchored = sealed.open(&seal(keys)?).map_err(fail)?;
    Ok(Some(anchored.current.map_or(0, |head| head.count)))
}

fn seal(keys: &AuditKeys) -> Result<AnchorSeal, OpenError> {
    let key = keys.chain_bytes();
    let key = AnchorKey::new(SecretBytes::from(key.to_vec())).map_err(super::internal)?;
    Ok(AnchorSeal::new(key, SUBJECT.to_vec()))
}

/// Every audit log in `dir`, verified against its anchor in `place`
/// without changing anything (logs other opens hold included). For
/// operators' `audit verify`.
pub(crate) fn verify_all(
    dir: &Path,
    keys: &AuditKeys,
    place: &Place,
) -> Result<Vec<(PathBuf, u64)>, OpenError> {
    each_log(dir, keys, place, |log, key, anchor| {
        JsonLinesAuditSink::verify_anchored(log, key, anchor).map(|head| head.seq)
    })
}

/// [`verify_all`], returning each log's records: the ones verified, from
/// the bytes verified (each log is read once), so a log swapped after its
/// check cannot change the answer.
pub(crate) fn read_all(
    dir: &Path,
    keys: &AuditKeys,
    place: &Place,
) -> Result<Vec<(PathBuf, Vec<AuditRecord>)>, OpenError> {
    each_log(dir, keys, place, |log, key, anchor| {
        JsonLinesAuditSink::read_anchored(log, key, anchor).map(|(_, records)| records)
    })
}

/// Checks the index of the logs, then runs `check` (a verification under
/// the chain key and the log's anchor) on every log, in slot order.
fn each_log<T>(
    dir: &Path,
    keys: &AuditKeys,
    place: &Place,
    check: impl Fn(&Path, &AuditChainKey, &Anchor) -> Result<T, AuditError>,
) -> Result<Vec<(PathBuf, T)>, OpenError> {
    verify(dir, keys, place)?;
    let mut out = Vec::new();
    for n in audit::list_slots(dir)? {
        let log = audit::slot_path(dir, n);
        let placed = place.anchor(&log, &audit::slot_name(n))?;
        let found = check(&log, &keys.chain()?, &placed.anchor)
            .map_err(|e| audit::audit_error(e, &placed.location))?;
        out.push((log, found));
    }
    Ok(out)
}
