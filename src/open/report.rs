//! What an open did, for the caller to show or log (never printed by the
//! library itself).

use std::fmt;
use std::path::{Path, PathBuf};

use super::state::{Created, LOCK_NAME, RECORD_NAME};
use crate::Profile;
use tyrum_secrets_core::{PreloadReport, SkipReason};

/// What [`Secrets::open`](crate::Secrets::open) did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OpenReport {
    /// The profile opened.
    pub profile: Profile,
    /// Why this profile: where it was set, or what detection found.
    pub profile_reason: String,
    /// The state directory.
    pub state_dir: PathBuf,
    /// What this open created (empty on a later run).
    pub created: Vec<Creation>,
    /// The audit log this open writes to.
    pub audit_log: PathBuf,
    /// Records that log held when it was opened.
    pub audit_records_before: u64,
    /// Where that log's anchor is (a file, a keychain entry).
    pub audit_anchor: String,
    /// Where the file store's anchor is (single host).
    pub store_anchor: Option<String>,
    /// Where the catalog's anchor is (the profiles whose catalog is in the
    /// state directory).
    pub catalog_anchor: Option<String>,
    /// What this open repaired or accepted: a store upgraded to format 2,
    /// a rollback accepted with [`OpenOptions::accept_rollback`](crate::OpenOptions::accept_rollback).
    pub recovered: Vec<Recovery>,
    /// What the redactor was pre-loaded with, and what it could not take.
    pub preload: PreloadReport,
    /// Warnings for the operator (a keychain that forgets at reboot).
    pub notes: Vec<String>,
}

/// A change an open made to existing state, beyond its audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// The file store was in format 1 (no chain for an anchor to check): it
    /// was rewritten in format 2, atomically, and its anchor started. Done
    /// once, after the rest of the open was checked; values and versions
    /// are unchanged.
    StoreUpgraded(PathBuf),
    /// The file store's anchor refused it, and the operator accepted it as
    /// it is (recorded in the audit log first).
    StoreAccepted {
        /// The store.
        store: PathBuf,
        /// What the anchor said.
        refusal: String,
    },
    /// The index of the audit logs refused them (a log it vouches for is
    /// missing, or the index is missing or damaged), and the operator
    /// accepted the logs as they are (recorded in the audit log); the
    /// index was rewritten from the logs found.
    AuditLogsAccepted {
        /// The audit directory.
        dir: PathBuf,
        /// Where the index is.
        index: String,
        /// What was refused.
        refusal: String,
    },
    /// The catalog was in the plain format from before authentication (no
    /// key and no anchor of an authenticated catalog existed): it was
    /// sealed under a new key (kept in the profile's provider) and its
    /// anchor started, recorded in the audit log first. Done once; entries
    /// are unchanged.
    CatalogUpgraded(PathBuf),
    /// The catalog's anchor refused it (or it had lost its MAC), and the
    /// operator accepted it as it is (recorded in the audit log first).
    CatalogAccepted {
        /// The catalog file.
        catalog: PathBuf,
        /// What was refused.
        refusal: String,
    },
    /// An audit log's anchor refused it, and the operator accepted it as it
    /// is (recorded in that log).
    AuditLogAccepted {
        /// The log.
        log: PathBuf,
        /// What the anchor said.
        refusal: String,
    },
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recovery::StoreUpgraded(store) => write!(
                f,
                "upgraded the file store {} to format 2 and anchored it",
                store.display()
            ),
            Recovery::StoreAccepted { store, refusal } => write!(
                f,
                "accepted the file store {} as it is (on record in the audit log); its anchor said: {refusal}",
                store.display()
            ),
            Recovery::AuditLogsAccepted {
                dir,
                index,
                refusal,
            } => write!(
                f,
                "accepted the audit logs in {} as they are (on record in the audit log) and rewrote their index ({index}); it was refused because: {refusal}",
                dir.display()
            ),
            Recovery::CatalogUpgraded(catalog) => write!(
                f,
                "upgraded the catalog {} to the authenticated format and anchored it (on record in the audit log)",
                catalog.display()
            ),
            Recovery::CatalogAccepted { catalog, refusal } => write!(
                f,
                "accepted the catalog {} as it is (on record in the audit log); it was refused because: {refusal}",
                catalog.display()
            ),
            Recovery::AuditLogAccepted { log, refusal } => write!(
                f,
                "accepted the audit log {} as it is (on record in the log); its anchor said: {refusal}",
                log.display()
            ),
        }
    }
}

/// Something a first open created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Creation {
    /// A directory (the state directory, its parents, the audit directory),
    /// mode 0700.
    Directory(PathBuf),
    /// The encrypted file store.
    FileStore(PathBuf),
    /// The catalog.
    Catalog(PathBuf),
    /// An audit log (and its anchor).
    AuditLog(PathBuf),
    /// A key file (the store's key, or the audit keys).
    KeyFile(PathBuf),
    /// The state record.
    StateRecord(PathBuf),
}

impl fmt::Display for Creation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, path) = match self {
            Creation::Directory(p) => ("directory", p),
            Creation::FileStore(p) => ("encrypted file store", p),
            Creation::Catalog(p) => ("catalog", p),
            Creation::AuditLog(p) => ("audit log", p),
            Creation::KeyFile(p) => ("key file", p),
            Creation::StateRecord(p) => ("state record", p),
        };
        write!(f, "{what} {}", path.display())
    }
}

/// The report's view of what was created: lock files and anchors are left
/// out, the rest named by what it is.
pub(super) fn creations(created: &Created, state_dir: &Path, store: &Path) -> Vec<Creation> {
    let mut out = Vec::new();
    for path in created.paths() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let creation = if path.is_dir() {
            Creation::Directory(path.to_owned())
        } else if name == LOCK_NAME || extension == "lock" || extension == "anchor" {
            continue;
        } else if name == RECORD_NAME {
            Creation::StateRecord(path.to_owned())
        } else if name == super::CATALOG_NAME && path.parent() == Some(state_dir) {
            Creation::Catalog(path.to_owned())
        } else if extension == "jsonl" {
            Creation::AuditLog(path.to_owned())
        } else if path == store {
            Creation::FileStore(path.to_owned())
        } else {
            Creation::KeyFile(path.to_owned())
        };
        out.push(creation);
    }
    out
}

impl fmt::Display for OpenReport {
    /// A short summary for a terminal or a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "profile {} ({})", self.profile, self.profile_reason)?;
        writeln!(f, "state directory {}", self.state_dir.display())?;
        for creation in &self.created {
            writeln!(f, "created {creation}")?;
        }
        for recovery in &self.recovered {
            writeln!(f, "{recovery}")?;
        }
        writeln!(
            f,
            "audit log {} ({} records before this open), anchored in {}",
            self.audit_log.display(),
            self.audit_records_before,
            self.audit_anchor
        )?;
        if let Some(anchor) = &self.store_anchor {
            writeln!(f, "file store anchored in {anchor}")?;
        }
        if let Some(anchor) = &self.catalog_anchor {
            writeln!(f, "catalog authenticated and anchored in {anchor}")?;
        }
        writeln!(
            f,
            "redactor pre-loaded with {} values of {} handles",
            self.preload.loaded_count(),
            self.preload.loaded.len()
        )?;
        for skip in &self.preload.skipped {
            let why = match &skip.reason {
                SkipReason::AllowedUnmasked => {
                    "shorter than the minimum; unmasked by choice".to_owned()
                }
                SkipReason::TooShort => {
                    "shorter than the minimum; rotate it to a longer value".to_owned()
                }
                SkipReason::Unreadable { message } => format!("unreadable now: {message}"),
                other => format!("{other:?}"),
            };
            writeln!(f, "not pre-loaded: {}: {why}", skip.handle_id)?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
