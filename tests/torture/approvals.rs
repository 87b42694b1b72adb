//! The run's approval store, shared by every process through the file
//! system, as a gateway's approval store would be: the admin issues grants
//! into `approvals/issued/<id>.json`; a verifier consumes a one-shot grant
//! by renaming it to `approvals/used/<id>.json`. A rename is atomic, so of
//! several processes presenting one grant at once exactly one wins.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tyrum_secrets::{ApprovalGrant, ApprovalRejection, ApprovalVerifier, Timestamp};

use crate::events::{EventLog, Kind};

#[derive(Debug)]
pub(crate) struct FileApprovals {
    dir: PathBuf,
    events: Option<Arc<EventLog>>,
}

impl FileApprovals {
    pub(crate) fn new(run: &Path, events: Option<Arc<EventLog>>) -> FileApprovals {
        FileApprovals {
            dir: run.join("approvals"),
            events,
        }
    }

    /// Creates the store's directories.
    pub(crate) fn create(run: &Path) {
        for sub in ["issued", "used"] {
            fs::create_dir_all(run.join("approvals").join(sub)).expect("create the approval store");
        }
    }

    fn issued_path(&self, id: &str) -> PathBuf {
        self.dir.join("issued").join(format!("{id}.json"))
    }

    fn used_path(&self, id: &str) -> PathBuf {
        self.dir.join("used").join(format!("{id}.json"))
    }

    /// Issues `grant` (atomically: a reader sees all of it or nothing).
    pub(crate) fn issue(&self, grant: &ApprovalGrant) -> std::io::Result<()> {
        let text = serde_json::to_vec(grant).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{}.tmp", grant.approval_id));
        fs::write(&tmp, text)?;
        fs::rename(&tmp, self.issued_path(&grant.approval_id))
    }

    /// The grants currently issued and unused (a snapshot).
    pub(crate) fn issued(&self) -> Vec<ApprovalGrant> {
        let Ok(entries) = fs::read_dir(self.dir.join("issued")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect()
    }

    /// Removes issued grants that expired before `before`.
    pub(crate) fn sweep(&self, before: Timestamp) {
        for grant in self.issued() {
            if grant.expires_at < before {
                let _ = fs::remove_file(self.issued_path(&grant.approval_id));
            }
        }
    }
}

impl ApprovalVerifier for FileApprovals {
    fn verify_and_consume(
        &self,
        grant: &ApprovalGrant,
        now: Timestamp,
    ) -> Result<(), ApprovalRejection> {
        let id = &grant.approval_id;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(ApprovalRejection::Unknown);
        }
        let issued = self.issued_path(id);
        let stored: ApprovalGrant = match fs::read(&issued) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| ApprovalRejection::Unknown)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(if self.used_path(id).exists() {
                    ApprovalRejection::AlreadyUsed
                } else {
                    ApprovalRejection::Unknown
                });
            }
            Err(_) => return Err(ApprovalRejection::Unknown),
        };
        if &stored != grant {
            return Err(ApprovalRejection::Unknown);
        }
        if now >= stored.expires_at {
            return Err(ApprovalRejection::Expired);
        }
        if !stored.one_shot {
            return Ok(());
        }
        match fs::rename(&issued, self.used_path(id)) {
            Ok(()) => {
                if let Some(events) = &self.events {
                    events.emit(Kind::Consumed { g: id.clone() });
                }
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(ApprovalRejection::AlreadyUsed),
            Err(_) => Err(ApprovalRejection::Unknown),
        }
    }
}
