//! Invariant 1: no value handed out after an acknowledged revoke or after
//! expiry (see the ordering rule in the module above).

use std::collections::HashMap;

use super::model::{self, End, Model};
use super::{Check, REVOKED_OR_EXPIRED, ms};

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
pub(super) fn revoked_or_expired(model: &Model, margin: u64) -> Check {
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
