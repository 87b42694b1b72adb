//! What an operator reads from an opened state beyond a gateway's needs:
//! the provider new values go to, and the audit records of every log.

use std::path::PathBuf;

use tyrum_secrets_core::{AuditRecord, ProviderId};

use super::{OpenError, Secrets, audit_index};
use crate::Profile;

/// One record of an audit log, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// The log that holds it.
    pub log: PathBuf,
    /// Its sequence number in that log (from 1).
    pub seq: u64,
    /// The record (never a value; at most a keyed fingerprint of one).
    pub record: AuditRecord,
}

impl Secrets {
    /// The provider new values are written to: `file` for the single-host
    /// profile, `keychain` for the desktop; none for Kubernetes, whose
    /// providers are read-only.
    pub fn default_provider(&self) -> Option<ProviderId> {
        let name = match self.profile {
            Profile::SingleHost => "file",
            Profile::Desktop => "keychain",
            _ => return None,
        };
        ProviderId::new(name).ok()
    }

    /// Every record of every audit log of the state directory, each log
    /// verified against its anchor and the chain key first, ordered by
    /// time (then log, then sequence).
    ///
    /// # Errors
    /// As [`verify_audit`](Self::verify_audit): the first log that does not
    /// verify; or an I/O error.
    pub fn audit_records(&self) -> Result<Vec<AuditEntry>, OpenError> {
        let mut out = Vec::new();
        // Each log's records as verified, from the bytes verified.
        for (log, records) in
            audit_index::read_all(&self.audit_dir, &self.audit_keys, &self.audit_anchors)?
        {
            for (seq, record) in (1..).zip(records) {
                out.push(AuditEntry {
                    log: log.clone(),
                    seq,
                    record,
                });
            }
        }
        out.sort_by(|a, b| (a.record.time, &a.log, a.seq).cmp(&(b.record.time, &b.log, b.seq)));
        Ok(out)
    }
}
