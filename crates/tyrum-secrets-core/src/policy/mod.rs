//! Policy: may this requester resolve this secret, now, for this
//! destination?
//!
//! [`Policy`] is a trait so the gateway can plug its own policy bundle in;
//! [`RulePolicy`] is the rule policy core ships, loaded from JSON.
//! Approvals ([`ApprovalGrant`], [`ApprovalVerifier`]) satisfy a
//! [`Effect::RequireApproval`] decision.

mod approval;
mod pattern;
mod rules;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use approval::{
    ApprovalGrant, ApprovalRejection, ApprovalVerifier, MemoryApprovals, RejectAllApprovals,
};
pub use rules::{DefaultEffect, MAX_POLICY_LEN, PolicyError, RulePolicy};

use crate::SecretHandle;
use crate::request::{Destination, Purpose, Requester};

/// Decides whether a resolve may proceed.
///
/// Implementations must be pure decisions: no I/O that can hang, no
/// secret values (the policy never sees one).
pub trait Policy: Send + Sync + fmt::Debug {
    /// The decision for `input`.
    fn decide(&self, input: &PolicyInput<'_>) -> Decision;
}

impl<P: Policy + ?Sized> Policy for std::sync::Arc<P> {
    fn decide(&self, input: &PolicyInput<'_>) -> Decision {
        (**self).decide(input)
    }
}

/// What a policy decides on: the handle (id, provider, scope, kind) and its
/// catalog labels, who asks, why, and where the value goes.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PolicyInput<'a> {
    /// The handle asked for.
    pub handle: &'a SecretHandle,
    /// Who asks.
    pub requester: &'a Requester,
    /// Why.
    pub purpose: &'a Purpose,
    /// Where the value goes, if said.
    pub destination: Option<&'a Destination>,
    /// The handle's catalog labels, if the caller looked them up. `None`
    /// means unknown: a [`RulePolicy`] rule conditioned on labels then
    /// applies if it denies or requires approval, and never if it allows.
    pub labels: Option<&'a BTreeMap<String, String>>,
}

impl<'a> PolicyInput<'a> {
    /// Assembles an input without labels; add them with
    /// [`with_labels`](Self::with_labels).
    pub fn new(
        handle: &'a SecretHandle,
        requester: &'a Requester,
        purpose: &'a Purpose,
        destination: Option<&'a Destination>,
    ) -> Self {
        Self {
            handle,
            requester,
            purpose,
            destination,
            labels: None,
        }
    }

    /// The same input with the handle's catalog labels.
    pub fn with_labels(mut self, labels: &'a BTreeMap<String, String>) -> Self {
        self.labels = Some(labels);
        self
    }
}

/// What a policy decided and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Decision {
    /// Allow, require approval, or deny.
    pub effect: Effect,
    /// The rule that decided, if a rule did.
    pub rule: Option<String>,
    /// Why this effect.
    pub reason: DecisionReason,
}

impl Decision {
    /// A decision made by rule `rule`.
    pub fn by_rule(effect: Effect, rule: impl Into<String>) -> Self {
        Self {
            effect,
            rule: Some(rule.into()),
            reason: DecisionReason::Rule,
        }
    }

    /// A decision made by the default because no rule matched.
    pub fn by_default(effect: Effect) -> Self {
        Self {
            effect,
            rule: None,
            reason: DecisionReason::Default,
        }
    }

    /// A denial for `reason`.
    pub fn deny(reason: DecisionReason) -> Self {
        Self {
            effect: Effect::Deny,
            rule: None,
            reason,
        }
    }
}

/// A policy effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Resolve.
    Allow,
    /// Resolve only with a valid approval grant.
    RequireApproval,
    /// Refuse.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::RequireApproval => "require_approval",
            Effect::Deny => "deny",
        })
    }
}

/// Why a policy reached its effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionReason {
    /// A rule matched.
    Rule,
    /// No rule matched; the default applied.
    Default,
    /// The secret is a payment instrument and the operator has not enabled
    /// payment instruments.
    PaymentInstrumentsDisabled,
    /// The secret is a payment instrument and no rule naming the
    /// `payment_instrument` kind allows it.
    PaymentInstrumentNeedsRule,
}

impl fmt::Display for DecisionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecisionReason::Rule => "a policy rule matched",
            DecisionReason::Default => "no policy rule matched and the default applied",
            DecisionReason::PaymentInstrumentsDisabled => {
                "payment instruments are disabled; the operator must enable them in the policy"
            }
            DecisionReason::PaymentInstrumentNeedsRule => {
                "payment instruments need a rule that names the payment_instrument kind"
            }
        })
    }
}
