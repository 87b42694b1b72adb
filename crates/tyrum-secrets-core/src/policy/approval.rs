//! Approval grants: a human said yes to one handle, for one agent, in one
//! tool call of one tool toward one destination, until a deadline.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::request::{Destination, Requester};
use crate::{HandleId, Timestamp};

/// A grant the gateway issued when an operator approved a resolve. Holds no
/// secret; the gateway may store and pass it around freely, but only an
/// [`ApprovalVerifier`] decides whether it is genuine and still unused.
///
/// A grant satisfies a required approval only when it is bound to the same
/// handle, agent, tool call, tool and destination as the request, has not
/// expired, and the verifier accepts it. A grant names the tool and the
/// destination the operator saw, or none: a grant without a tool satisfies
/// only requests that name no tool, and likewise for the destination, so a
/// grant approved for `http.fetch` toward `api.github.com` never resolves a
/// secret for `shell.exec`, or toward another host, under the same tool
/// call id. [`ApprovalGrant::for_request`] binds all of them at once.
///
/// ```
/// use std::time::Duration;
/// use tyrum_secrets_core::{ApprovalGrant, ApprovalRejection, Destination, HandleId, Requester, Timestamp};
///
/// let handle = HandleId::generate()?;
/// let asked = Requester::new("alpha")?.tool("http.fetch")?.tool_call("call-1")?;
/// let github = Destination::host("api.github.com")?;
/// let now = Timestamp::now();
/// let grant = ApprovalGrant::for_request("appr-1", handle.clone(), &asked, Some(&github),
///     now.saturating_add(Duration::from_secs(60)))?.reusable();
/// assert_eq!(grant.check_binding(&handle, &asked, Some(&github), now), Ok(()));
///
/// let shell = Requester::new("alpha")?.tool("shell.exec")?.tool_call("call-1")?;
/// assert_eq!(grant.check_binding(&handle, &shell, Some(&github), now), Err(ApprovalRejection::OtherTool));
/// let elsewhere = Destination::host("evil.example")?;
/// assert_eq!(grant.check_binding(&handle, &asked, Some(&elsewhere), now),
///     Err(ApprovalRejection::OtherDestination));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// The tool approved (compared case-insensitively, as requester tool
    /// ids are lower-cased); `None` satisfies only requests naming no tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The destination approved; `None` satisfies only requests naming no
    /// destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Destination>,
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
    /// A one-shot grant for a request that names no tool and no
    /// destination; add them with [`for_tool`](Self::for_tool) and
    /// [`to`](Self::to), or build the grant with
    /// [`for_request`](Self::for_request).
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
            tool: None,
            destination: None,
            expires_at,
            one_shot: true,
        }
    }

    /// A one-shot grant bound to everything the operator saw: the handle,
    /// the requester's agent, tool call and tool, and the destination.
    ///
    /// # Errors
    /// [`ApprovalRejection::NoToolCall`] when the requester names no tool
    /// call: approvals bind to one.
    pub fn for_request(
        approval_id: impl Into<String>,
        handle: HandleId,
        requester: &Requester,
        destination: Option<&Destination>,
        expires_at: Timestamp,
    ) -> Result<Self, ApprovalRejection> {
        let call = requester
            .tool_call_id()
            .ok_or(ApprovalRejection::NoToolCall)?;
        Ok(Self {
            tool: requester.tool_id().map(str::to_owned),
            destination: destination.cloned(),
            ..Self::one_shot(approval_id, handle, requester.agent(), call, expires_at)
        })
    }

    /// The same grant, bound to tool `tool`.
    pub fn for_tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    /// The same grant, bound to destination `destination`.
    pub fn to(mut self, destination: Destination) -> Self {
        self.destination = Some(destination);
        self
    }

    /// The same grant, reusable until it expires.
    pub fn reusable(mut self) -> Self {
        self.one_shot = false;
        self
    }

    /// Checks that the grant is bound to `handle`, the requester's agent,
    /// tool call and tool, and `destination`, and unexpired at `now`. Does
    /// not ask the verifier.
    ///
    /// Agent and tool compare case-insensitively (requester ids are
    /// lower-cased ASCII); a grant and a request must agree on whether a
    /// tool and a destination are named at all.
    ///
    /// # Errors
    /// The [`ApprovalRejection`] that applies first.
    pub fn check_binding(
        &self,
        handle: &HandleId,
        requester: &Requester,
        destination: Option<&Destination>,
        now: Timestamp,
    ) -> Result<(), ApprovalRejection> {
        if &self.handle != handle {
            return Err(ApprovalRejection::OtherHandle);
        }
        if !self.agent.eq_ignore_ascii_case(requester.agent()) {
            return Err(ApprovalRejection::OtherAgent);
        }
        match requester.tool_call_id() {
            None => return Err(ApprovalRejection::NoToolCall),
            Some(call) if call != self.tool_call_id => {
                return Err(ApprovalRejection::OtherToolCall);
            }
            Some(_) => {}
        }
        let same_tool = match (self.tool.as_deref(), requester.tool_id()) {
            (None, None) => true,
            (Some(granted), Some(asked)) => granted.eq_ignore_ascii_case(asked),
            _ => false,
        };
        if !same_tool {
            return Err(ApprovalRejection::OtherTool);
        }
        if self.destination.as_ref() != destination {
            return Err(ApprovalRejection::OtherDestination);
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
    /// The grant is for another tool (or the grant and the request differ
    /// in naming one).
    #[error("the approval grant is for another tool; ask for an approval of this tool")]
    OtherTool,
    /// The grant is for another destination (or the grant and the request
    /// differ in naming one).
    #[error(
        "the approval grant is for another destination; ask for an approval of this destination"
    )]
    OtherDestination,
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
    use crate::request::Destination;

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
        assert_eq!(g.check_binding(&h, &req, None, now), Ok(()));
        assert_eq!(
            g.check_binding(&other, &req, None, now),
            Err(ApprovalRejection::OtherHandle)
        );
        let beta = Requester::new("beta").unwrap().tool_call("call-1").unwrap();
        assert_eq!(
            g.check_binding(&h, &beta, None, now),
            Err(ApprovalRejection::OtherAgent)
        );
        let call2 = Requester::new("alpha")
            .unwrap()
            .tool_call("call-2")
            .unwrap();
        assert_eq!(
            g.check_binding(&h, &call2, None, now),
            Err(ApprovalRejection::OtherToolCall)
        );
        let no_call = Requester::new("alpha").unwrap();
        assert_eq!(
            g.check_binding(&h, &no_call, None, now),
            Err(ApprovalRejection::NoToolCall)
        );
        assert_eq!(
            g.check_binding(&h, &req, None, g.expires_at),
            Err(ApprovalRejection::Expired)
        );
    }

    #[test]
    fn binding_checks_tool_and_destination() {
        let h = HandleId::generate().unwrap();
        let github = Destination::host("api.github.com").unwrap();
        let evil = Destination::host("evil.example").unwrap();
        let g = grant(&h).for_tool("HTTP.fetch").to(github.clone());
        let now = Timestamp::now();
        let asking = |tool: Option<&str>| {
            let r = Requester::new("alpha")
                .unwrap()
                .tool_call("call-1")
                .unwrap();
            match tool {
                Some(tool) => r.tool(tool).unwrap(),
                None => r,
            }
        };
        let fetch = asking(Some("http.fetch"));
        assert_eq!(g.check_binding(&h, &fetch, Some(&github), now), Ok(()));
        for (requester, destination, expected) in [
            (
                asking(Some("shell.exec")),
                Some(&github),
                ApprovalRejection::OtherTool,
            ),
            (asking(None), Some(&github), ApprovalRejection::OtherTool),
            (
                fetch.clone(),
                Some(&evil),
                ApprovalRejection::OtherDestination,
            ),
            (fetch.clone(), None, ApprovalRejection::OtherDestination),
        ] {
            assert_eq!(
                g.check_binding(&h, &requester, destination, now),
                Err(expected)
            );
        }
        // A grant naming no tool or destination binds requests naming none.
        let bare = grant(&h);
        assert_eq!(
            bare.check_binding(&h, &fetch, None, now),
            Err(ApprovalRejection::OtherTool)
        );
        assert_eq!(
            bare.check_binding(&h, &asking(None), Some(&github), now),
            Err(ApprovalRejection::OtherDestination)
        );
        assert_eq!(bare.check_binding(&h, &asking(None), None, now), Ok(()));
    }

    #[test]
    fn for_request_binds_what_the_request_names() {
        let h = HandleId::generate().unwrap();
        let at = Timestamp::now().saturating_add(Duration::from_secs(60));
        let asked = Requester::new("Alpha")
            .unwrap()
            .tool("Http.Fetch")
            .unwrap()
            .tool_call("call-1")
            .unwrap();
        let github = Destination::host("api.github.com").unwrap();
        let g = ApprovalGrant::for_request("a", h.clone(), &asked, Some(&github), at).unwrap();
        assert_eq!(
            g,
            ApprovalGrant::one_shot("a", h.clone(), "alpha", "call-1", at)
                .for_tool("http.fetch")
                .to(github)
        );
        let no_call = Requester::new("alpha").unwrap();
        assert_eq!(
            ApprovalGrant::for_request("a", h, &no_call, None, at),
            Err(ApprovalRejection::NoToolCall)
        );
    }

    #[test]
    fn grants_round_trip_and_old_grants_bind_no_tool() {
        let h = HandleId::generate().unwrap();
        let g = grant(&h)
            .for_tool("http.fetch")
            .to(Destination::host("api.github.com").unwrap());
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<ApprovalGrant>(&json).unwrap(), g);
        let bare = grant(&h);
        let mut old = serde_json::to_value(&bare).unwrap();
        assert!(old.get("tool").is_none() && old.get("destination").is_none());
        assert_eq!(
            serde_json::from_value::<ApprovalGrant>(old.clone()).unwrap(),
            bare
        );
        old["destination"] = serde_json::json!("2852039166");
        assert!(serde_json::from_value::<ApprovalGrant>(old).is_err());
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
