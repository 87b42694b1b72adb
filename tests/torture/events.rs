//! The event logs: every process appends what it did and saw to its own
//! JSON-lines file (`logs/<role>.events.jsonl`), one `write` per line, so a
//! SIGKILL loses at most the line being written. Never a value: handles,
//! versions, operation numbers, outcomes, timestamps.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::plan::now_ns;

/// One line of an event log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Event {
    /// When it was written, ns since the epoch.
    pub(crate) t: u64,
    /// `admin`, `w0`.., `harness`, `checker`.
    pub(crate) role: String,
    /// Which start of that role (0 first, +1 per restart).
    pub(crate) inc: u32,
    #[serde(flatten)]
    pub(crate) kind: Kind,
}

/// What happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub(crate) enum Kind {
    /// `Secrets::open` returned.
    Opened {
        mutation: Option<String>,
        audit_log: String,
        preloaded: usize,
    },
    /// `Secrets::open` failed (invariant 6).
    OpenFailed { error: String },
    /// A worker starts attempt `a` on handle `h`. `expect` is `deny` when
    /// the policy or the grant binding must refuse it.
    Start {
        a: String,
        h: String,
        class: String,
        mode: String,
        grant: Option<String>,
        one_shot: Option<bool>,
        expect: String,
    },
    /// The audit layer saw record `purpose` stored (after the sink
    /// returned).
    Audited {
        purpose: String,
        action: String,
        outcome: String,
    },
    /// A value of attempt `a` was handed over: made by admin operation
    /// `op` (`None`: not a value of this run), version when known.
    Handed {
        a: String,
        op: Option<u64>,
        version: Option<u64>,
    },
    /// Attempt `a` failed with `error` (an error kind, never a message
    /// that could hold text from elsewhere).
    Refused { a: String, error: String },
    /// A one-shot grant was consumed by this process's verifier.
    Consumed { g: String },
    /// The audit layer injected a fault.
    AuditFault { fault: String },
    /// Running totals of provider faults in this process.
    ProviderFaults {
        calls: u64,
        failed: u64,
        delayed: u64,
    },
    /// The admin starts operation `k`.
    OpStart {
        k: u64,
        op: String,
        h: Option<String>,
        /// set_expiry: the new expiry (ms since the epoch), if any.
        expiry_ms: Option<u64>,
        /// destroy: the version destroyed.
        version: Option<u64>,
        /// rotate: grace period of the previous version.
        grace_ms: Option<u64>,
    },
    /// Operation `k` returned Ok (rotate and create: the new version;
    /// create: the new handle).
    OpAck {
        k: u64,
        version: Option<u64>,
        #[serde(default)]
        h: Option<String>,
    },
    /// Operation `k` returned an error.
    OpFail { k: u64, error: String },
    /// The admin read the state of handle `h` (after a start).
    Observe {
        h: String,
        revoked: bool,
        expires_ms: Option<u64>,
        version: Option<u64>,
    },
    /// The admin issued a grant.
    GrantIssued {
        g: String,
        h: String,
        one_shot: bool,
        expires_ms: u64,
    },
    /// The admin finished setting up the handles.
    SetupDone,
    /// The process reached the deadline and stops.
    Exit,
    /// Harness: a process was started.
    Spawn { target: String, target_inc: u32 },
    /// Harness: a process was sent SIGKILL.
    Kill { target: String, target_inc: u32 },
    /// Harness: a process ended on its own (`code` None: by a signal).
    Exited {
        target: String,
        target_inc: u32,
        code: Option<i32>,
    },
}

/// An append-only event log of one process.
#[derive(Debug)]
pub(crate) struct EventLog {
    file: Mutex<File>,
    role: String,
    inc: u32,
}

impl EventLog {
    /// Opens the log of `role` for start `inc`. A line the previous start
    /// was killed in the middle of is ended first, so it stays one torn line
    /// of its own.
    pub(crate) fn open(dir: &Path, role: &str, inc: u32) -> EventLog {
        let path = path(dir, role);
        let torn = std::fs::read(&path).is_ok_and(|b| b.last().is_some_and(|&c| c != b'\n'));
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open the event log");
        if torn {
            file.write_all(b"\n").expect("end a torn line");
        }
        EventLog {
            file: Mutex::new(file),
            role: role.to_owned(),
            inc,
        }
    }

    /// Which start of its role this process is.
    pub(crate) fn inc(&self) -> u32 {
        self.inc
    }

    /// Appends `kind`, stamped now. The stamp is taken under the lock, so
    /// the lines of one log are in time order.
    pub(crate) fn emit(&self, kind: Kind) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let event = Event {
            t: now_ns(),
            role: self.role.clone(),
            inc: self.inc,
            kind,
        };
        let mut line = serde_json::to_vec(&event).expect("an event serializes");
        line.push(b'\n');
        file.write_all(&line).expect("append to the event log");
    }
}

/// The event log of `role` in the run's log directory.
pub(crate) fn path(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("{role}.events.jsonl"))
}

/// Every event of one log, in order, and how many torn lines (a kill in
/// the middle of a write) were skipped.
pub(crate) fn read(path: &Path) -> Result<(Vec<Event>, usize), String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut events = Vec::new();
    let mut torn = 0;
    for line in BufReader::new(file).split(b'\n') {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        match serde_json::from_slice(&line) {
            Ok(event) => events.push(event),
            Err(_) => torn += 1,
        }
    }
    Ok((events, torn))
}
