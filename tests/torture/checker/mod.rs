//! The checker: reads every log of a run, the audit logs and the final
//! state, and checks the invariants, each a named check with the
//! violations it found.
//!
//! # Ordering across processes
//!
//! Every process runs on one host and stamps its events with the same
//! clock (`SystemTime`, ns). "After" between two processes is only claimed
//! with causal evidence plus a margin (`plan.margin_ms`, default 5 ms,
//! absorbing clock adjustments): an admin change is known to be in effect
//! from its acknowledgement (logged after the call returned) plus the
//! margin, until the start of the next change of that handle (logged before
//! the call) minus the margin. A worker's hand-over is known to have passed
//! the resolver's last catalog check between the moment its audit record
//! was stored (logged by the audit layer after the sink returned; the check
//! comes after it) and the moment the worker logged the hand-over. Only when
//! that whole window lies inside a known interval is a hand-over judged
//! against that interval's state. A rotation binds resolves that *started*
//! after its acknowledgement plus the margin: a resolve in flight across a
//! rotation may return the version it looked up (the grace rule; the
//! previous version stays readable until it is retired).
//!
//! An operation whose process was killed before it returned leaves what it
//! changes unknown until the admin's next start, which observes every
//! handle and logs what it saw.

mod audit;
mod grants;
mod model;
mod revocation;
mod scan;
mod versions;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::plan::Plan;
use model::{End, Model};

/// One named check and what it found.
#[derive(Debug)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) violations: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Check {
        Check {
            name,
            violations: Vec::new(),
        }
    }

    pub(crate) fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The checks and the run's numbers.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) checks: Vec<Check>,
    pub(crate) stats: BTreeMap<String, u64>,
}

impl Report {
    pub(crate) fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.name)
            .collect()
    }

    #[cfg_attr(
        not(all(feature = "torture-mutations", debug_assertions)),
        allow(dead_code, reason = "for the mutation checks")
    )]
    pub(crate) fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            let status = if check.passed() { "holds" } else { "VIOLATED" };
            writeln!(f, "  {:<40} {status}", check.name)?;
            for v in check.violations.iter().take(8) {
                writeln!(f, "      - {v}")?;
            }
            if check.violations.len() > 8 {
                writeln!(f, "      ... and {} more", check.violations.len() - 8)?;
            }
        }
        Ok(())
    }
}

pub(crate) const REVOKED_OR_EXPIRED: &str = "1 no hand-over after revoke or expiry";
pub(crate) const AUDITED: &str = "2 every hand-over and change audited";
pub(crate) const NO_RAW_VALUE: &str = "3 no raw value in any file";
pub(crate) const ROTATION: &str = "4 rotation: no older version, none lost";
pub(crate) const ONE_SHOT: &str = "5 one-shot grants used at most once";
pub(crate) const OPENS: &str = "6 the state opens cleanly";
pub(crate) const POLICY: &str = "policy and grant binding enforced";
pub(crate) const PROCESSES: &str = "processes stop on their own";

/// The checks that need only the event logs (invariants 1, 4 per
/// hand-over, 5 and the policy), on `events`: for testing the checker on a
/// made-up history.
pub(crate) fn judge_events(events: Vec<crate::events::Event>, margin_ms: u64) -> Vec<Check> {
    let model = Model::from_events(events);
    let margin = margin_ms * 1_000_000;
    let mut rotation = Check::new(ROTATION);
    versions::rotation_checks(&model, margin, &mut rotation);
    vec![
        revocation::revoked_or_expired(&model, margin),
        rotation,
        grants::one_shot(&model),
        grants::policy(&model),
    ]
}

/// Checks the run in `run`.
pub(crate) fn check(run: &Path, plan: &Plan, hung: &[String]) -> Report {
    let model = Model::load(run, plan);
    let margin = plan.margin_ms * 1_000_000;
    let mut checks = Vec::new();

    let mut opens = Check::new(OPENS);
    let mut rotation = Check::new(ROTATION);
    let mut audited = Check::new(AUDITED);
    let mut raw = Check::new(NO_RAW_VALUE);
    versions::final_state(
        run,
        plan,
        &model,
        &mut opens,
        &mut rotation,
        &mut audited,
        &mut raw,
    );
    for (role, inc) in &model.spawns {
        match model.opens.get(&(role.clone(), *inc)) {
            Some(None) => {}
            Some(Some(error)) => opens.violations.push(format!(
                "{role} (start {inc}) could not open the state: {error}"
            )),
            None => {
                let killed = model.kills.contains(&(role.clone(), *inc));
                if !killed {
                    opens.violations.push(format!(
                        "{role} (start {inc}) never finished opening the state"
                    ));
                }
            }
        }
    }
    // A worker that finds the catalog unreadable mid-run saw a state that a
    // kill at that moment would leave behind: no fault touches the catalog,
    // so every read of it must succeed. (In a cluster run the catalog is in
    // OpenBao, where a kill cannot tear it; an unreadable catalog there is
    // a failed request to the server on loopback, reported the same way.)
    let torn: Vec<&String> = model
        .attempts
        .iter()
        .filter(|(_, a)| a.refused.as_deref() == Some("catalog"))
        .map(|(a, _)| a)
        .collect();
    if !torn.is_empty() {
        opens.violations.push(format!(
            "{} attempts found the catalog unreadable mid-run (e.g. {})",
            torn.len(),
            torn[0]
        ));
    }
    for problem in &model.unreadable {
        opens.violations.push(format!("unreadable log: {problem}"));
    }

    checks.push(revocation::revoked_or_expired(&model, margin));
    audit::audit_checks(&model, &mut audited);
    checks.push(audited);
    scan::scan(run, plan, &model, &mut raw);
    checks.push(raw);
    versions::rotation_checks(&model, margin, &mut rotation);
    checks.push(rotation);
    checks.push(grants::one_shot(&model));
    checks.push(opens);
    checks.push(grants::policy(&model));
    let mut processes = Check::new(PROCESSES);
    for h in hung {
        processes
            .violations
            .push(format!("{h} did not stop after the deadline"));
    }
    for (role, inc, code) in &model.exits {
        processes.violations.push(format!(
            "{role} (start {inc}) exited with {code:?} before the deadline"
        ));
    }
    if plan.mutation.is_none() && !model.mutations_seen.is_empty() {
        processes.violations.push(format!(
            "a process ran with a mutation switched on: {:?}",
            model.mutations_seen
        ));
    }
    checks.push(processes);

    Report {
        checks,
        stats: stats(&model, plan),
    }
}

fn stats(model: &Model, plan: &Plan) -> BTreeMap<String, u64> {
    let mut s: BTreeMap<String, u64> = BTreeMap::new();
    s.insert("attempts".into(), model.attempts.len() as u64);
    for attempt in model.attempts.values() {
        let key = match (&attempt.handed, &attempt.refused) {
            (Some(_), _) => format!("handed.{}", attempt.mode),
            (None, Some(e)) => format!("refused.{e}"),
            (None, None) => "attempt.interrupted".into(),
        };
        *s.entry(key).or_default() += 1;
        if attempt.handed.is_some() {
            *s.entry("handed".into()).or_default() += 1;
        }
    }
    for op in model.ops.values() {
        let outcome = match op.end {
            End::Ack { .. } => "ok",
            End::Fail { .. } => "failed",
            End::Unknown => "interrupted",
        };
        *s.entry(format!("admin.{}.{outcome}", op.kind)).or_default() += 1;
    }
    for (fault, n) in &model.audit_faults {
        s.insert(format!("fault.audit.{fault}"), *n);
    }
    let (mut failed, mut delayed) = (0, 0);
    for (_, f, d) in model.provider_faults.values() {
        failed += f;
        delayed += d;
    }
    s.insert("fault.provider.fail".into(), failed);
    s.insert("fault.provider.delay".into(), delayed);
    s.insert(
        "fault.kill.worker".into(),
        model.kills.iter().filter(|(r, _)| r != "admin").count() as u64,
    );
    s.insert(
        "fault.kill.admin".into(),
        model.kills.iter().filter(|(r, _)| r == "admin").count() as u64,
    );
    s.insert("audit.records".into(), model.records.len() as u64);
    s.insert("log.torn_lines".into(), model.torn_lines);
    s.insert("duration_ms".into(), plan.duration_ms);
    s
}

/// A timestamp for messages: ms since the epoch.
fn ms(ns: u64) -> String {
    format!("{} ms", ns / 1_000_000)
}
