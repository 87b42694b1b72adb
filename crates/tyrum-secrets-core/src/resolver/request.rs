//! A resolve request: the requester, purpose and destination of the
//! [`request`](crate::request) vocabulary, plus the approval grants it
//! carries.

use crate::policy::ApprovalGrant;
use crate::request::{Destination, Purpose, RequestError, Requester};

/// A request to resolve one or more handles: requester, purpose, optional
/// destination and the approval grants the gateway holds for it.
///
/// ```
/// use tyrum_secrets_core::{Destination, Purpose, Requester, ResolveRequest};
///
/// let request = ResolveRequest::new(
///     Requester::new("agent-alpha")?.tool("http.fetch")?.tool_call("call-42")?,
///     Purpose::new("list open pull requests")?,
/// )
/// .to(Destination::host("api.github.com")?);
/// assert_eq!(request.requester().tool_call_id(), Some("call-42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveRequest {
    requester: Requester,
    purpose: Purpose,
    destination: Option<Destination>,
    approvals: Vec<ApprovalGrant>,
    node: Option<String>,
    auth_profile: Option<String>,
}

impl ResolveRequest {
    /// A request by `requester` for `purpose`.
    pub fn new(requester: Requester, purpose: Purpose) -> Self {
        Self {
            requester,
            purpose,
            destination: None,
            approvals: Vec::new(),
            node: None,
            auth_profile: None,
        }
    }

    /// The value will be sent to `destination`.
    pub fn to(mut self, destination: Destination) -> Self {
        self.destination = Some(destination);
        self
    }

    /// Attaches an approval grant. A request may carry one grant per handle
    /// it resolves; the resolver uses the grant bound to the handle at hand.
    pub fn with_approval(mut self, grant: ApprovalGrant) -> Self {
        self.approvals.push(grant);
        self
    }

    /// The value is resolved to be sealed for the paired node `node`; the
    /// audit record names it.
    ///
    /// # Errors
    /// [`RequestError`] when the node id is empty, too long or holds a
    /// control character.
    pub fn for_node(mut self, node: impl Into<String>) -> Result<Self, RequestError> {
        self.node = Some(crate::request::attribute("node", node.into())?);
        Ok(self)
    }

    /// The value is the credential of auth profile `profile`; the audit
    /// record names it.
    ///
    /// # Errors
    /// As [`for_node`](Self::for_node), for the profile id.
    pub fn via_auth_profile(mut self, profile: impl Into<String>) -> Result<Self, RequestError> {
        self.auth_profile = Some(crate::request::attribute("auth_profile", profile.into())?);
        Ok(self)
    }

    /// The paired node the value is sealed for, if any.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The auth profile the value belongs to, if any.
    pub fn auth_profile(&self) -> Option<&str> {
        self.auth_profile.as_deref()
    }

    /// Who asks.
    pub fn requester(&self) -> &Requester {
        &self.requester
    }

    /// Why.
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// Where the value goes, if said.
    pub fn destination(&self) -> Option<&Destination> {
        self.destination.as_ref()
    }

    /// The grants attached.
    pub fn approvals(&self) -> &[ApprovalGrant] {
        &self.approvals
    }
}
