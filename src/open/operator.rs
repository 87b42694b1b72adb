//! What an operator reads from an opened state beyond a gateway's needs:
//! the provider new values go to, the audit records of every log, and the
//! records whose fingerprint matches a candidate value.

use std::path::PathBuf;

use serde::Deserialize;
use tyrum_secrets_core::{AuditRecord, ProviderId, SecretBytes};

use super::{OpenError, Secrets, audit};
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

/// A line of a chained log, as far as reading it needs.
#[derive(Deserialize)]
struct Line {
    entry: LineEntry,
}

#[derive(Deserialize)]
struct LineEntry {
    seq: u64,
    record: AuditRecord,
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
        for (log, count) in audit::verify_all(&self.audit_dir, &self.audit_keys)? {
            let bytes = std::fs::read(&log)
                .map_err(|e| OpenError::io("cannot read the audit log", &log, e))?;
            // The log may have grown since it was verified: read only the
            // records that were.
            for line in bytes.split(|b| *b == b'\n').take(count as usize) {
                let parsed: Line =
                    serde_json::from_slice(line).map_err(|_| OpenError::StateCorrupt {
                        path: log.clone(),
                        reason: "a verified audit line does not parse".to_owned(),
                    })?;
                out.push(AuditEntry {
                    log: log.clone(),
                    seq: parsed.entry.seq,
                    record: parsed.entry.record,
                });
            }
        }
        out.sort_by(|a, b| (a.record.time, &a.log, a.seq).cmp(&(b.record.time, &b.log, b.seq)));
        Ok(out)
    }

    /// The audit records whose value fingerprint matches `candidate`: where
    /// a value that turned up somewhere (a paste, a leak) was handed out,
    /// as Vault's audit-hash answers. Records without a fingerprint (audit
    /// fingerprints off, denied or failed attempts) never match.
    ///
    /// # Errors
    /// As [`audit_records`](Self::audit_records), or audit keys that cannot
    /// be used.
    pub fn find_value(&self, candidate: &SecretBytes) -> Result<Vec<AuditEntry>, OpenError> {
        let key = self.audit_keys.fingerprint()?;
        Ok(self
            .audit_records()?
            .into_iter()
            .filter(|entry| key.matches(&entry.record, candidate))
            .collect())
    }
}
