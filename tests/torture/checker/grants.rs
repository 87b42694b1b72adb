//! Invariant 5, and the policy and grant binding.

use std::collections::HashMap;

use tyrum_secrets::Outcome;

use super::model::Model;
use super::{Check, ONE_SHOT, POLICY};

/// Invariant 5.
pub(super) fn one_shot(model: &Model) -> Check {
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
pub(super) fn policy(model: &Model) -> Check {
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
