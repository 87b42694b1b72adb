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

mod model;
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tyrum_secrets::{ExposeSecret as _, Outcome, VersionSelector, VersionState};

use crate::events::EventLog;
use crate::node;
use crate::plan::Plan;
use crate::values;
use model::{End, Model};

pub(crate) use model::attempt_of;

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

/// Checks the run in `run`.
pub(crate) fn check(run: &Path, plan: &Plan, hung: &[String]) -> Report {
    let model = Model::load(run);
    let margin = plan.margin_ms * 1_000_000;
    let mut checks = Vec::new();

    let mut opens = Check::new(OPENS);
    let mut rotation = Check::new(ROTATION);
    let mut audited = Check::new(AUDITED);
    let mut raw = Check::new(NO_RAW_VALUE);
    final_state(
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
    // so every read of it must succeed.
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

    checks.push(revoked_or_expired(&model, margin));
    audit_checks(&model, &mut audited);
    checks.push(audited);
    scan::scan(run, plan, &model, &mut raw);
    checks.push(raw);
    rotation_checks(&model, margin, &mut rotation);
    checks.push(rotation);
    checks.push(one_shot(&model));
    checks.push(opens);
    checks.push(policy(&model));
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

/// A stretch of time in which what the admin did to a handle is known.
#[derive(Debug, Clone, Copy)]
struct Known {
    from: u64,
    to: u64,
    revoked: Option<bool>,
    expiry_ms: Option<Option<u64>>,
}

/// The known stretches of handle `h`.
fn timeline(model: &Model, h: &str, margin: u64) -> Vec<Known> {
    enum Step<'a> {
        Op(&'a model::Op),
        Observed(&'a model::Observation),
    }
    let mut steps: Vec<(u64, Step<'_>)> = model
        .ops_on(h)
        .map(|op| (op.t_start, Step::Op(op)))
        .collect();
    steps.extend(
        model
            .observations
            .iter()
            .filter(|o| o.h == h)
            .map(|o| (o.t, Step::Observed(o))),
    );
    steps.sort_by_key(|(t, _)| *t);
    let mut out = Vec::new();
    let mut current: Option<Known> = None;
    let close = |current: &mut Option<Known>, out: &mut Vec<Known>, to: u64| {
        if let Some(mut known) = current.take() {
            known.to = to;
            if known.to > known.from {
                out.push(known);
            }
        }
    };
    for (_, step) in steps {
        match step {
            Step::Op(op) => {
                let before = current.map(|c| (c.revoked, c.expiry_ms));
                close(&mut current, &mut out, op.t_start.saturating_sub(margin));
                let (mut revoked, mut expiry) = before.unwrap_or((None, None));
                match op.end {
                    End::Ack { t, .. } => {
                        match op.kind.as_str() {
                            "create" => {
                                revoked = Some(false);
                                expiry = Some(None);
                            }
                            "revoke" => revoked = Some(true),
                            "restore" => revoked = Some(false),
                            "set_expiry" => expiry = Some(op.expiry_ms),
                            _ => {}
                        }
                        current = Some(Known {
                            from: t + margin,
                            to: u64::MAX,
                            revoked,
                            expiry_ms: expiry,
                        });
                    }
                    // A change that failed was not made.
                    End::Fail { t } => {
                        current = Some(Known {
                            from: t + margin,
                            to: u64::MAX,
                            revoked,
                            expiry_ms: expiry,
                        });
                    }
                    End::Unknown => {
                        match op.kind.as_str() {
                            "revoke" | "restore" => revoked = None,
                            "set_expiry" => expiry = None,
                            _ => {}
                        }
                        current = Some(Known {
                            from: op.t_start,
                            to: u64::MAX,
                            revoked,
                            expiry_ms: expiry,
                        });
                    }
                }
            }
            Step::Observed(o) => {
                close(&mut current, &mut out, o.t);
                current = Some(Known {
                    from: o.t,
                    to: u64::MAX,
                    revoked: Some(o.revoked),
                    expiry_ms: Some(o.expires_ms),
                });
            }
        }
    }
    close(&mut current, &mut out, u64::MAX);
    out
}

/// Invariant 1: no hand-over whose last catalog check certainly came after
/// an acknowledged revoke (and before the next restore started), or after
/// the expiry in force. Also: what the admin observes after a restart
/// agrees with what was acknowledged before it.
fn revoked_or_expired(model: &Model, margin: u64) -> Check {
    let mut check = Check::new(REVOKED_OR_EXPIRED);
    let mut timelines: HashMap<&str, Vec<Known>> = HashMap::new();
    for (a, attempt) in &model.attempts {
        let Some(handed) = attempt.handed else {
            continue;
        };
        let known = timelines
            .entry(attempt.h.as_str())
            .or_insert_with(|| timeline(model, &attempt.h, margin));
        let lo = attempt
            .t_audited
            .filter(|_| attempt.audited_before_handed)
            .unwrap_or(attempt.t_start);
        let hi = handed.t;
        let Some(stretch) = known.iter().find(|k| k.from <= lo && hi <= k.to) else {
            continue;
        };
        if stretch.revoked == Some(true) {
            check.violations.push(format!(
                "attempt {a} ({}) handed out handle {} at {} while it was revoked (revoked since {})",
                attempt.mode,
                attempt.h,
                ms(hi),
                ms(stretch.from)
            ));
        }
        if let Some(Some(expiry)) = stretch.expiry_ms
            && lo > expiry * 1_000_000 + margin
        {
            check.violations.push(format!(
                "attempt {a} ({}) handed out handle {} after its expiry at {expiry} ms (its record was stored at {})",
                attempt.mode,
                attempt.h,
                ms(lo)
            ));
        }
    }
    // What a restarted admin observes agrees with the known state just
    // before it.
    for o in &model.observations {
        let known = timelines
            .entry(o.h.as_str())
            .or_insert_with(|| timeline(model, &o.h, margin));
        let Some(k) = known.iter().find(|k| k.to == o.t) else {
            continue;
        };
        if k.revoked.is_some_and(|r| r != o.revoked) {
            check.violations.push(format!(
                "handle {} was observed {} at {} although its last acknowledged change left it {}",
                o.h,
                if o.revoked { "revoked" } else { "active" },
                ms(o.t),
                if o.revoked { "active" } else { "revoked" },
            ));
        }
        if k.expiry_ms.is_some_and(|e| e != o.expires_ms) {
            check.violations.push(format!(
                "handle {} was observed with expiry {:?} at {} although its last acknowledged change set {:?}",
                o.h,
                o.expires_ms,
                ms(o.t),
                k.expiry_ms.flatten()
            ));
        }
    }
    check
}

/// Invariant 2: every hand-over has exactly one `resolved` record, stored
/// before the hand-over; every record names a real attempt or operation;
/// every acknowledged change has its record. (The chains' verification is
/// checked with the final state.)
fn audit_checks(model: &Model, check: &mut Check) {
    let mut resolved: HashMap<&str, Vec<&model::Found>> = HashMap::new();
    let mut failed_ids: HashMap<&str, u64> = HashMap::new();
    let mut applied: HashMap<u64, Vec<&model::Found>> = HashMap::new();
    for found in &model.records {
        let r = &found.record;
        let action = node::name(&r.action);
        match action.as_str() {
            "resolve" => match attempt_of(&r.purpose) {
                Some(a) if model.attempts.contains_key(a) => {
                    if r.outcome == Outcome::Resolved {
                        resolved.entry(a).or_default().push(found);
                    } else {
                        *failed_ids.entry(r.request_id.as_str()).or_default() += 1;
                    }
                }
                _ => check.violations.push(format!(
                    "{} line {}: a resolve record names no attempt any worker started",
                    found.log.display(),
                    found.line
                )),
            },
            "preload" => {}
            _ => match model::op_of(&r.purpose).and_then(|k| model.ops.get(&k)) {
                Some(op) => {
                    let expected: &[&str] = match op.kind.as_str() {
                        "create" => &["create"],
                        "rotate" => &["rotate", "retire"],
                        "revoke" => &["revoke"],
                        "restore" => &["restore"],
                        "destroy" => &["destroy"],
                        "set_expiry" => &["set_expiry"],
                        "retire_due" => &["retire"],
                        _ => &[],
                    };
                    if !expected.contains(&action.as_str()) {
                        check.violations.push(format!(
                            "{} line {}: a {action} record names operation {} which was a {}",
                            found.log.display(),
                            found.line,
                            op.k,
                            op.kind
                        ));
                    }
                    if let Some(h) = &op.h
                        && r.handle_id.as_str() != h
                    {
                        check.violations.push(format!(
                            "{} line {}: a {action} record of operation {} names handle {} instead of {h}",
                            found.log.display(),
                            found.line,
                            op.k,
                            r.handle_id
                        ));
                    }
                    if r.outcome == Outcome::Applied && action == op.kind {
                        applied.entry(op.k).or_default().push(found);
                    }
                }
                None => check.violations.push(format!(
                    "{} line {}: a {action} record names no operation the admin started",
                    found.log.display(),
                    found.line
                )),
            },
        }
    }
    for (a, attempt) in &model.attempts {
        if attempt.handed.is_none() {
            continue;
        }
        if !attempt.audited_before_handed {
            check.violations.push(format!(
                "attempt {a} ({}): the value was handed over before its audit record was stored",
                attempt.mode
            ));
        }
        let records = resolved.get(a.as_str()).map_or(&[][..], Vec::as_slice);
        if records.len() != 1 {
            check.violations.push(format!(
                "attempt {a} ({}) was handed out with {} `resolved` records instead of one",
                attempt.mode,
                records.len()
            ));
        }
        for found in records {
            if failed_ids.contains_key(found.record.request_id.as_str()) {
                check.violations.push(format!(
                    "attempt {a} was handed out although its record was followed by a failure record"
                ));
            }
        }
    }
    for op in model.ops.values() {
        let End::Ack { version, .. } = op.end else {
            continue;
        };
        if !matches!(
            op.kind.as_str(),
            "create" | "rotate" | "revoke" | "restore" | "destroy" | "set_expiry"
        ) {
            continue;
        }
        let records = applied.get(&op.k).map_or(&[][..], Vec::as_slice);
        match records {
            [] => check.violations.push(format!(
                "operation {} ({}) was acknowledged with no `applied` record",
                op.k, op.kind
            )),
            [found] => {
                if let (Some(v), Some(rv)) = (version, found.record.version)
                    && v != rv.get()
                {
                    check.violations.push(format!(
                        "operation {} ({}) made version {v} but its record says {rv}",
                        op.k, op.kind
                    ));
                }
            }
            _ => check.violations.push(format!(
                "operation {} ({}) has {} `applied` records",
                op.k,
                op.kind,
                records.len()
            )),
        }
    }
}

/// Invariant 4, per hand-over: the value belongs to the handle (and to the
/// version said), and is not older than a rotation acknowledged before the
/// resolve started.
fn rotation_checks(model: &Model, margin: u64, check: &mut Check) {
    for (a, attempt) in &model.attempts {
        let Some(handed) = attempt.handed else {
            continue;
        };
        let Some(k) = handed.op else {
            check.violations.push(format!(
                "attempt {a} ({}) received a value that no admin operation of this run made",
                attempt.mode
            ));
            continue;
        };
        let Some(op) = model
            .ops
            .get(&k)
            .filter(|op| op.h.as_deref() == Some(attempt.h.as_str()))
        else {
            check.violations.push(format!(
                "attempt {a} ({}) on handle {} received the value of operation {k}, which was not a create or rotation of that handle",
                attempt.mode, attempt.h
            ));
            continue;
        };
        if let (
            End::Ack {
                version: Some(v), ..
            },
            Some(got),
        ) = (op.end, handed.version)
            && v != got
        {
            check.violations.push(format!(
                "attempt {a} received operation {k}'s value labelled version {got}; operation {k} made version {v}"
            ));
        }
        let newer = model
            .ops_on(&attempt.h)
            .filter(|o| matches!(o.kind.as_str(), "create" | "rotate"))
            .filter(|o| matches!(o.end, End::Ack { t, .. } if t + margin < attempt.t_start))
            .map(|o| o.k)
            .max();
        if let Some(j) = newer
            && k < j
        {
            check.violations.push(format!(
                "attempt {a} ({}) started at {} and received operation {k}'s value, older than operation {j}'s rotation acknowledged before it started",
                attempt.mode,
                ms(attempt.t_start)
            ));
        }
    }
}

/// Invariant 5.
fn one_shot(model: &Model) -> Check {
    let mut check = Check::new(ONE_SHOT);
    let mut handed: HashMap<&str, Vec<&str>> = HashMap::new();
    for (a, attempt) in &model.attempts {
        if let (Some(g), Some(_)) = (&attempt.grant, attempt.handed) {
            handed.entry(g.as_str()).or_default().push(a.as_str());
        }
    }
    let one_shot = |g: &str| model.grants.get(g).is_some_and(|(_, one)| *one);
    for (g, attempts) in &handed {
        if one_shot(g) && attempts.len() > 1 {
            check.violations.push(format!(
                "one-shot grant {g} was used by {} hand-overs: {}",
                attempts.len(),
                attempts.join(", ")
            ));
        }
    }
    for (g, n) in &model.consumed {
        if *n > 1 {
            check.violations.push(format!(
                "one-shot grant {g} was consumed {n} times by the approval store"
            ));
        }
    }
    let mut failed: HashMap<&str, ()> = HashMap::new();
    for found in &model.records {
        if found.record.outcome == Outcome::Failed {
            failed.insert(found.record.request_id.as_str(), ());
        }
    }
    let mut recorded: HashMap<&str, u64> = HashMap::new();
    for found in &model.records {
        let r = &found.record;
        if r.outcome == Outcome::Resolved
            && !failed.contains_key(r.request_id.as_str())
            && let Some(g) = &r.approval_id
            && one_shot(g)
        {
            *recorded.entry(g.as_str()).or_default() += 1;
        }
    }
    for (g, n) in recorded {
        if n > 1 {
            check.violations.push(format!(
                "one-shot grant {g} has {n} `resolved` audit records"
            ));
        }
    }
    check
}

/// Attempts the policy or the grant binding must refuse were refused.
fn policy(model: &Model) -> Check {
    let mut check = Check::new(POLICY);
    for (a, attempt) in &model.attempts {
        if attempt.expect == "deny" && attempt.handed.is_some() {
            check.violations.push(format!(
                "attempt {a} ({} on a {} handle) was handed a value",
                attempt.mode, attempt.class
            ));
        }
    }
    check
}

/// The state after the run: it opens, its audit logs verify against their
/// anchors (invariants 2 and 6); every version the catalog points at, or
/// that an acknowledged operation made and nothing removed, is still there
/// with its value (invariant 4); every value in the store is one the
/// harness knows (so the scan covers it, invariant 3).
#[allow(clippy::too_many_arguments, reason = "one call, four checks fed")]
fn final_state(
    run: &Path,
    plan: &Plan,
    model: &Model,
    opens: &mut Check,
    rotation: &mut Check,
    audited: &mut Check,
    raw: &mut Check,
) {
    let events = Arc::new(EventLog::open(&run.join("logs"), "checker", 0));
    let node = match node::open(run, plan, &events, "checker") {
        Ok(node) => node,
        Err(e) => {
            opens
                .violations
                .push(format!("the state does not open after the run: {e}"));
            return;
        }
    };
    match node.secrets.verify_audit() {
        Ok(logs) => {
            if logs.is_empty() {
                audited.violations.push("no audit log verified".into());
            }
        }
        Err(e) => audited
            .violations
            .push(format!("an audit log does not verify after the run: {e}")),
    }
    let provider = node.provider.inner();
    let Ok(entries) = node.secrets.admin().list() else {
        opens
            .violations
            .push("the catalog cannot be listed after the run".into());
        return;
    };
    let retired: Vec<(String, u64)> = model
        .records
        .iter()
        .filter(|f| node::name(&f.record.action) == "retire")
        .filter_map(|f| {
            Some((
                f.record.handle_id.as_str().to_owned(),
                f.record.version?.get(),
            ))
        })
        .collect();
    for entry in &entries {
        let h = entry.id().as_str();
        let live: Vec<u64> = match provider.versions(&entry.locator) {
            Ok(versions) => versions
                .iter()
                .filter(|v| v.state == VersionState::Live)
                .map(|v| v.version.get())
                .collect(),
            Err(e) => {
                rotation
                    .violations
                    .push(format!("the versions of {h} cannot be listed: {e}"));
                continue;
            }
        };
        let read = |v: u64| {
            tyrum_secrets::Version::new(v)
                .and_then(|v| {
                    provider
                        .read(&entry.locator, VersionSelector::Exact(v))
                        .ok()
                })
                .and_then(|s| values::identify(plan.seed, s.value.expose_secret()))
        };
        for &v in &live {
            match read(v) {
                Some(k) if model.ops.get(&k).is_some_and(|op| op.h.as_deref() == Some(h)) => {}
                Some(k) => raw.violations.push(format!(
                    "version {v} of {h} holds operation {k}'s value, not one made for this handle"
                )),
                None => raw.violations.push(format!(
                    "version {v} of {h} holds a value the harness does not know (the scan cannot cover it)"
                )),
            }
        }
        // Every acknowledged version that nothing removed is still there.
        let current = match entry.current {
            tyrum_secrets::VersionPin::Pinned(v) => Some(v.get()),
            tyrum_secrets::VersionPin::Latest => None,
        };
        for op in model.ops_on(h) {
            let End::Ack {
                version: Some(v), ..
            } = op.end
            else {
                continue;
            };
            let removed = retired.contains(&(h.to_owned(), v))
                || model
                    .ops_on(h)
                    .any(|o| o.kind == "destroy" && o.version == Some(v));
            if removed && current != Some(v) {
                continue;
            }
            match read(v) {
                Some(k) if k == op.k => {}
                Some(k) => rotation.violations.push(format!(
                    "version {v} of {h} (made by operation {}) now holds operation {k}'s value",
                    op.k
                )),
                None => rotation.violations.push(format!(
                    "version {v} of {h}, acknowledged by operation {}, is lost",
                    op.k
                )),
            }
        }
        let newest = model
            .ops_on(h)
            .filter(|o| matches!(o.kind.as_str(), "create" | "rotate"))
            .filter_map(|o| match o.end {
                End::Ack {
                    version: Some(v), ..
                } => Some(v),
                _ => None,
            })
            .max();
        if let (Some(newest), Some(current)) = (newest, current)
            && current < newest
        {
            rotation.violations.push(format!(
                "{h} points at version {current}, older than the acknowledged version {newest}"
            ));
        }
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
    s.insert("duration_ms".into(), plan.duration_ms);
    s
}

/// A timestamp for messages: ms since the epoch.
fn ms(ns: u64) -> String {
    format!("{} ms", ns / 1_000_000)
}
