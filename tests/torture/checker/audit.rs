//! Invariant 2: the audit records against what the processes did.

use std::collections::HashMap;

use tyrum_secrets::Outcome;

use super::Check;
use super::model::{self, End, Model, attempt_of};
use crate::node;

/// Invariant 2: every hand-over has exactly one `resolved` record, stored
/// before the hand-over; every record names a real attempt or operation;
/// every acknowledged change has its record. (The chains' verification is
/// checked with the final state.)
pub(super) fn audit_checks(model: &Model, check: &mut Check) {
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
