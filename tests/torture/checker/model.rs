//! What the logs say happened: attempts, admin operations, observations,
//! grants, opens, kills, faults; and the audit records of every log.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tyrum_secrets::AuditRecord;

use crate::events::{self, Event, Kind};

/// One worker attempt, from its log.
#[derive(Debug, Default, Clone)]
pub(crate) struct Attempt {
    pub(crate) h: String,
    pub(crate) class: String,
    pub(crate) mode: String,
    pub(crate) grant: Option<String>,
    pub(crate) expect: String,
    pub(crate) t_start: u64,
    /// When the audit layer saw its `resolved` record stored, if before the
    /// hand-over (or at all).
    pub(crate) t_audited: Option<u64>,
    /// Whether that came before the hand-over in the process's own log.
    pub(crate) audited_before_handed: bool,
    pub(crate) handed: Option<Handed>,
    pub(crate) refused: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Handed {
    pub(crate) t: u64,
    pub(crate) op: Option<u64>,
    pub(crate) version: Option<u64>,
}

/// One admin operation.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) k: u64,
    pub(crate) kind: String,
    pub(crate) h: Option<String>,
    pub(crate) t_start: u64,
    pub(crate) expiry_ms: Option<u64>,
    pub(crate) version: Option<u64>,
    pub(crate) end: End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// Returned Ok at `t`, with the new version for create and rotate.
    Ack { t: u64, version: Option<u64> },
    /// Returned an error at `t`.
    Fail { t: u64 },
    /// The process died first.
    Unknown,
}

#[derive(Debug, Clone)]
pub(crate) struct Observation {
    pub(crate) t: u64,
    pub(crate) h: String,
    pub(crate) revoked: bool,
    pub(crate) expires_ms: Option<u64>,
}

/// One audit record, where it was found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) log: PathBuf,
    pub(crate) line: usize,
    pub(crate) record: AuditRecord,
}

#[derive(Debug, Default)]
pub(crate) struct Model {
    pub(crate) attempts: HashMap<String, Attempt>,
    pub(crate) ops: BTreeMap<u64, Op>,
    pub(crate) observations: Vec<Observation>,
    /// Grant id → (handle, one-shot).
    pub(crate) grants: HashMap<String, (String, bool)>,
    /// Grant id → times a verifier consumed it.
    pub(crate) consumed: HashMap<String, u64>,
    /// (role, start) → open error (None: opened).
    pub(crate) opens: BTreeMap<(String, u32), Option<String>>,
    pub(crate) spawns: Vec<(String, u32)>,
    pub(crate) kills: Vec<(String, u32)>,
    pub(crate) exits: Vec<(String, u32, Option<i32>)>,
    pub(crate) mutations_seen: Vec<String>,
    /// Audit purposes whose record the audit layer saw stored, with their
    /// outcome, by attempt (for records stored after the hand-over, or with
    /// no hand-over).
    pub(crate) audit_faults: BTreeMap<String, u64>,
    /// (role, start) → last provider fault counters (calls, failed, delayed).
    pub(crate) provider_faults: BTreeMap<(String, u32), (u64, u64, u64)>,
    pub(crate) records: Vec<Found>,
    /// Event log lines cut by a kill mid-write (skipped).
    pub(crate) torn_lines: u64,
    /// Problems reading the logs themselves.
    pub(crate) unreadable: Vec<String>,
}

/// The attempt id in a resolve record's purpose.
pub(crate) fn attempt_of(purpose: &str) -> Option<&str> {
    purpose.strip_prefix("torture attempt ")
}

/// The admin operation number in a change record's purpose.
pub(crate) fn op_of(purpose: &str) -> Option<u64> {
    purpose.strip_prefix("torture op ")?.parse().ok()
}

impl Model {
    /// The model of the run in `run`: every event log, and the audit logs
    /// of every state directory (one shared, or one per cluster process).
    pub(crate) fn load(run: &Path, plan: &crate::plan::Plan) -> Model {
        let mut model = Model::default();
        let logs = run.join("logs");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&logs)
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.retain(|p| p.to_string_lossy().ends_with(".events.jsonl"));
        paths.sort();
        for path in paths {
            match events::read(&path) {
                Ok((events, torn)) => {
                    model.torn_lines += torn as u64;
                    for event in events {
                        model.add(event);
                    }
                }
                Err(e) => model.unreadable.push(e),
            }
        }
        for state in crate::node::state_dirs(run, plan) {
            model.load_audit(&state.join("audit"));
        }
        if model.records.is_empty() {
            model.unreadable.push(format!(
                "{}: no audit record in any state directory",
                run.display()
            ));
        }
        model
    }

    /// A model of `events` alone, with no audit records: for checking the
    /// checker's ordering rules on a made-up history.
    pub(crate) fn from_events(events: Vec<Event>) -> Model {
        let mut model = Model::default();
        for event in events {
            model.add(event);
        }
        model
    }

    fn add(&mut self, event: Event) {
        let Event { t, role, inc, kind } = event;
        match kind {
            Kind::Opened { mutation, .. } => {
                if let Some(m) = mutation {
                    self.mutations_seen.push(m);
                }
                self.opens.insert((role, inc), None);
            }
            Kind::OpenFailed { error } => {
                self.opens.insert((role, inc), Some(error));
            }
            Kind::Start {
                a,
                h,
                class,
                mode,
                grant,
                expect,
                ..
            } => {
                self.attempts.insert(
                    a,
                    Attempt {
                        h,
                        class,
                        mode,
                        grant,
                        expect,
                        t_start: t,
                        ..Attempt::default()
                    },
                );
            }
            Kind::Audited {
                purpose, outcome, ..
            } => {
                if let Some(a) = attempt_of(&purpose)
                    && outcome == "resolved"
                    && let Some(attempt) = self.attempts.get_mut(a)
                {
                    attempt.t_audited = Some(t);
                    attempt.audited_before_handed = attempt.handed.is_none();
                }
            }
            Kind::Handed { a, op, version } => {
                if let Some(attempt) = self.attempts.get_mut(&a) {
                    attempt.handed = Some(Handed { t, op, version });
                }
            }
            Kind::Refused { a, error } => {
                if let Some(attempt) = self.attempts.get_mut(&a) {
                    attempt.refused = Some(error);
                }
            }
            Kind::Consumed { g } => *self.consumed.entry(g).or_default() += 1,
            Kind::AuditFault { fault } => *self.audit_faults.entry(fault).or_default() += 1,
            Kind::ProviderFaults {
                calls,
                failed,
                delayed,
            } => {
                self.provider_faults
                    .insert((role, inc), (calls, failed, delayed));
            }
            Kind::OpStart {
                k,
                op,
                h,
                expiry_ms,
                version,
                ..
            } => {
                self.ops.insert(
                    k,
                    Op {
                        k,
                        kind: op,
                        h,
                        t_start: t,
                        expiry_ms,
                        version,
                        end: End::Unknown,
                    },
                );
            }
            Kind::OpAck { k, version, h } => {
                if let Some(op) = self.ops.get_mut(&k) {
                    op.end = End::Ack { t, version };
                    if op.h.is_none() {
                        op.h = h;
                    }
                }
            }
            Kind::OpFail { k, .. } => {
                if let Some(op) = self.ops.get_mut(&k) {
                    op.end = End::Fail { t };
                }
            }
            Kind::Observe {
                h,
                revoked,
                expires_ms,
                ..
            } => self.observations.push(Observation {
                t,
                h,
                revoked,
                expires_ms,
            }),
            Kind::GrantIssued { g, h, one_shot, .. } => {
                self.grants.insert(g, (h, one_shot));
            }
            Kind::Spawn { target, target_inc } => self.spawns.push((target, target_inc)),
            Kind::Kill { target, target_inc } => self.kills.push((target, target_inc)),
            Kind::Exited {
                target,
                target_inc,
                code,
            } => self.exits.push((target, target_inc, code)),
            Kind::SetupDone | Kind::Exit => {}
        }
    }

    fn load_audit(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.unreadable
                .push(format!("{}: no audit directory", dir.display()));
            return;
        };
        let mut logs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        logs.sort();
        for log in logs {
            let Ok(text) = std::fs::read_to_string(&log) else {
                self.unreadable
                    .push(format!("{}: unreadable", log.display()));
                continue;
            };
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                match parse_record(line) {
                    Some(record) => self.records.push(Found {
                        log: log.clone(),
                        line: i + 1,
                        record,
                    }),
                    // A torn last line: a kill mid-append, cut on reopen.
                    None if i + 1 == lines.len() && !text.ends_with('\n') => {}
                    None => self.unreadable.push(format!(
                        "{} line {}: not an audit record",
                        log.display(),
                        i + 1
                    )),
                }
            }
        }
    }

    /// Every admin operation on handle `h`, in order.
    pub(crate) fn ops_on<'a>(&'a self, h: &'a str) -> impl Iterator<Item = &'a Op> + 'a {
        self.ops
            .values()
            .filter(move |op| op.h.as_deref() == Some(h))
    }
}

/// The record in one line of a chained audit log.
fn parse_record(line: &str) -> Option<AuditRecord> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let record = value.get("entry")?.get("record")?;
    serde_json::from_value(record.clone()).ok()
}
