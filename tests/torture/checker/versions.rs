//! Invariant 4 (and the parts of 2, 3 and 6 that need the final state):
//! every hand-over's value against the rotations acknowledged before it,
//! and the state after the run.

use std::path::Path;
use std::sync::Arc;

use tyrum_secrets::{ExposeSecret as _, VersionSelector, VersionState};

use super::Check;
use super::model::{End, Model};
use crate::events::EventLog;
use crate::node;
use crate::plan::Plan;
use crate::values;

/// Invariant 4, per hand-over: the value belongs to the handle (and to the
/// version said), and is not older than a rotation acknowledged before the
/// resolve started.
pub(super) fn rotation_checks(model: &Model, margin: u64, check: &mut Check) {
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
                super::ms(attempt.t_start)
            ));
        }
    }
}

/// The state after the run: it opens, its audit logs verify against their
/// anchors (invariants 2 and 6); every version the catalog points at, or
/// that an acknowledged operation made and nothing removed, is still there
/// with its value (invariant 4); every value in the store is one the
/// harness knows (so the scan covers it, invariant 3).
#[allow(clippy::too_many_arguments, reason = "one call, four checks fed")]
pub(super) fn final_state(
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
    // A cluster process keeps its audit log (and the keys and anchor of its
    // chain) in its own state directory, which the checker's open above
    // does not see: reopen each one as its process would after a restart,
    // and verify its chains there (invariants 6 and 2).
    if plan.profile == "cluster" {
        let own = node::state_dir(run, plan, "checker");
        for dir in node::state_dirs(run, plan) {
            if dir == own {
                continue;
            }
            let role = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match node::open(run, plan, &events, &role) {
                Ok(reopened) => match reopened.secrets.verify_audit() {
                    Ok(logs) if logs.is_empty() => audited
                        .violations
                        .push(format!("{role}: no audit log verified in its state")),
                    Ok(_) => {}
                    Err(e) => audited.violations.push(format!(
                        "{role}: an audit log does not verify after the run: {e}"
                    )),
                },
                Err(e) => opens.violations.push(format!(
                    "the state of {role} does not open after the run: {e}"
                )),
            }
        }
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
