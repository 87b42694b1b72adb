//! Approval grants: a human said yes to one handle, for one agent, in one
//! tool call, until a deadline.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::request::Requester;
use crate::{HandleId, Timestamp};

/// A grant the gateway issued when an operator approved a resolve. Holds no
/// secret; the gateway may store and pass it around freely, but only an
/// [`ApprovalVerifier`] decides whether it is genuine and still unused.
///
/// A grant satisfies a required approval only when it is bound to the same
/// handle, agent and tool call as the request, has not expired, and the
/// verifier accepts it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApprovalGrant {
    /// The gateway's id of the approval.
    pub approval_id: String,
    /// The handle approved.
    pub handle: HandleId,
    /// The agent approved.
    pub agent: String,
    /// The tool call approved.
    pub tool_call_id: String,
    /// After this instant the grant no longer satisfies anything.
    pub expires_at: Timestamp,
    /// Whether the grant satisfies one resolve only.
    #[serde(default = "one_shot_default")]
    pub one_shot: bool,
}

fn one_shot_default() -> bool {
    true
}

impl ApprovalGrant {
    /// A one-shot grant.
    pub fn one_shot(
        approval_id: impl Into<String>,
        handle: HandleId,
        agent: impl Into<String>,
        tool_call_id: impl Into<String>,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            approval_id: approval_id.into(),
            handle,
            agent: agent.into(),
            tool_call_id: tool_call_id.into(),
            expires_at,
            one_shot: true,
        }
    }

    /// The same grant, reusable until it expires.
    pub fn reusable(mut self) -> Self {
        self.one_shot = false;
        self
    }

    /// Checks that the grant is bound to `handle`, the requester's agent and
    /// tool call, and unexpired at `now`. Does not ask the verifier.
    ///
    /// # Errors
    /// The [`ApprovalRejection`] that applies first.
    pub fn check_binding(
        &self,
        handle: &HandleId,
        requester: &Requester,
        now: Timestamp,
    ) -> Result<(), ApprovalRejection> {
        if &self.handle != handle {
            return Err(ApprovalRejection::OtherHandle);
        }
        if self.agent != requester.agent() {
            return Err(ApprovalRejection::OtherAgent);
        }
        match requester.tool_call_id() {
            None => return Err(ApprovalRejection::NoToolCall),
            Some(call) if call != self.tool_call_id => {
                return Err(ApprovalRejection::OtherToolCall);
            }
            Some(_) => {}
        }
        if now >= self.expires_at {
            return Err(ApprovalRejection::Expired);
        }
        Ok(())
    }
}

/// Why a grant did not satisfy a required approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalRejection {
    /// No grant was attached for this handle.
    #[error("no approval grant was attached for this handle; ask an operator to approve")]
    Missing,
    /// The grant is for another handle.
    #[error("the approval grant is for another secret handle")]
    OtherHandle,
    /// The grant is for another agent.
    #[error("the approval grant is for another agent")]
    OtherAgent,
    /// The request names no tool call, so no grant can bind to it.
    #[error("the request names no tool call; approvals bind to a tool call id")]
    NoToolCall,
    /// The grant is for another tool call.
    #[error("the approval grant is for another tool call")]
    OtherToolCall,
    /// The grant expired.
    #[error("the approval grant expired; ask for a new approval")]
    Expired,
    /// The verifier does not know the grant: it was never issued, was
    /// withdrawn, or its fields were altered.
    #[error("the approval grant is not one the gateway issued")]
    Unknown,
    /// The one-shot grant was already used.
    #[error("the one-shot approval grant was already used; ask for a new approval")]
    AlreadyUsed,
}

/// Decides whether a grant is genuine and, for one-shot grants, consumes it.
/// The gateway implements it over its approval store.
///
/// The resolver checks the binding ([`ApprovalGrant::check_binding`]) before
/// asking the verifier, so a grant presented for the wrong handle or tool
/// call is never consumed.
pub trait ApprovalVerifier: Send + Sync + fmt::Debug {
    /// Accepts `grant` at `now`, marking a one-shot grant used.
    ///
    /// # Errors
    /// [`ApprovalRejection::Unknown`], [`ApprovalRejection::AlreadyUsed`],
    /// [`ApprovalRejection::Expired`] or another rejection.
    fn verify_and_consume(
        &self,
        grant: &ApprovalGrant,
        now: Timestamp,
    ) -> Result<(), ApprovalRejection>;
}

impl<V: ApprovalVerifier + ?Sized> ApprovalVerifier for std::sync::Arc<V> {
    fn verify_and_consume(
        &self,
        grant: &ApprovalGrant,
        now: Timestamp,
    ) -> Result<(), ApprovalRejection> {
        (**self).verify_and_consume(grant, now)
    }
}

/// A verifier that accepts nothing: the resolver's default, so that a policy
/// requiring approval fails closed until the gateway plugs its own in.
#[derive(Clone, Copy, Debug, Default)]
pub struct RejectAllApprovals;

impl ApprovalVerifier for RejectAllApprovals {
    fn verify_and_consume(
        &self,
        _grant: &ApprovalGrant,
        _now: Timestamp,
    ) -> Result<(), ApprovalRejection> {
        Err(ApprovalRejection::Unknown)
    }
}

/// An in-memory approval store for tests and examples: grants are issued
/// into it, and one-shot grants are consumed on first use.
#[derive(Debug, Default)]
pub struct MemoryApprovals {
    grants: Mutex<HashMap<String, Issued>>,
}

#[derive(Debug)]
struct Issued {
    grant: ApprovalGrant,
    used: bool,
}

impl MemoryApprovals {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `grant` as issued and returns it for attaching to a request.
    /// Issuing a grant with an existing approval id replaces the old one.
    pub fn issue(&self, grant: ApprovalGrant) -> ApprovalGrant {
        self.lock().insert(
            grant.approval_id.clone(),
            Issued {
                grant: grant.clone(),
                used: false,
            },
        );
        grant
    }

    /// Withdraws a grant; later uses are rejected as unknown.
    pub fn withdraw(&self, approval_id: &str) {
        self.lock().remove(approval_id);
    }

    /// Whether the grant with this id was used.
    pub fn is_used(&self, approval_id: &str) -> bool {
        self.lock().get(approval_id).is_some_and(|i| i.used)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Issued>> {
        // Every mutation under the lock is a single insert, remove or flag
        // store, so a poisoned map is still consistent.
        self.grants.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ApprovalVerifier for MemoryApprovals {
    fn verify_and_consume(
        &self,
        grant: &ApprovalGrant,
        now: Timestamp,
    ) -> Result<(), ApprovalRejection> {
        let mut grants = self.lock();
        let issued = grants
            .get_mut(&grant.approval_id)
            .filter(|i| &i.grant == grant)
            .ok_or(ApprovalRejection::Unknown)?;
        if now >= issued.grant.expires_at {
            return Err(ApprovalRejection::Expired);
        }
        if issued.grant.one_shot && issued.used {
            return Err(ApprovalRejection::AlreadyUsed);
        }
        issued.used = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn grant(handle: &HandleId) -> ApprovalGrant {
        ApprovalGrant::one_shot(
            "appr-1",
            handle.clone(),
            "alpha",
            "call-1",
            Timestamp::now().saturating_add(Duration::from_secs(60)),
        )
    }

    #[test]
    fn binding_checks_handle_agent_tool_call_and_expiry() {
        let h = HandleId::generate().unwrap();
        let other = HandleId::generate().unwrap();
        let g = grant(&h);
        let req = Requester::new("alpha")
            .unwrap()
            .tool_call("call-1")
            .unwrap();
        let now = Timestamp::now();
        assert_eq!(g.check_binding(&h, &req, now), Ok(()));
        assert_eq!(
            g.check_binding(&other, &req, now),
            Err(ApprovalRejection::OtherHandle)
        );
        let beta = Requester::new("beta").unwrap().tool_call("call-1").unwrap();
        assert_eq!(
            g.check_binding(&h, &beta, now),
            Err(ApprovalRejection::OtherAgent)
        );
        let call2 = Requester::new("alpha")
            .unwrap()
            .tool_call("call-2")
            .unwrap();
        assert_eq!(
            g.check_binding(&h, &call2, now),
            Err(ApprovalRejection::OtherToolCall)
        );
        let no_call = Requester::new("alpha").unwrap();
        assert_eq!(
            g.check_binding(&h, &no_call, now),
            Err(ApprovalRejection::NoToolCall)
        );
        assert_eq!(
            g.check_binding(&h, &req, g.expires_at),
            Err(ApprovalRejection::Expired)
        );
    }

    #[test]
    fn one_shot_grant_is_consumed_and_altered_grant_is_unknown() {
        let h = HandleId::generate().unwrap();
        let store = MemoryApprovals::new();
        let g = store.issue(grant(&h));
        let now = Timestamp::now();
        let mut forged = g.clone();
        forged.tool_call_id = "call-9".into();
        assert_eq!(
            store.verify_and_consume(&forged, now),
            Err(ApprovalRejection::Unknown)
        );
        assert_eq!(store.verify_and_consume(&g, now), Ok(()));
        assert!(store.is_used("appr-1"));
        assert_eq!(
            store.verify_and_consume(&g, now),
            Err(ApprovalRejection::AlreadyUsed)
        );
    }

    #[test]
    fn reusable_grant_is_accepted_until_expiry_and_withdrawal() {
        let h = HandleId::generate().unwrap();
        let store = MemoryApprovals::new();
        let g = store.issue(grant(&h).reusable());
        let now = Timestamp::now();
        assert_eq!(store.verify_and_consume(&g, now), Ok(()));
        assert_eq!(store.verify_and_consume(&g, now), Ok(()));
        assert_eq!(
            store.verify_and_consume(&g, g.expires_at),
            Err(ApprovalRejection::Expired)
        );
        store.withdraw("appr-1");
        assert_eq!(
            store.verify_and_consume(&g, now),
            Err(ApprovalRejection::Unknown)
        );
    }
}
