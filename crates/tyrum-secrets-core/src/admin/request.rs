//! Who asks for an administrative change, and why.

use crate::request::{Purpose, Requester};

/// Who asks for an administrative change, and why. The audit record of the
/// change names both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    actor: Requester,
    reason: Purpose,
}

impl AdminRequest {
    /// A change by `actor` (an operator, a rotation job) for `reason`.
    pub fn new(actor: Requester, reason: Purpose) -> Self {
        Self { actor, reason }
    }

    /// Who asks.
    pub fn actor(&self) -> &Requester {
        &self.actor
    }

    /// Why. A revoke stores it as the revocation reason. Never a secret.
    pub fn reason(&self) -> &Purpose {
        &self.reason
    }
}
