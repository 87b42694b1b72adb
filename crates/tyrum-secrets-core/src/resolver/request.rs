//! A resolve request: the requester, purpose and destination of the
//! [`request`](crate::request) vocabulary, plus the approval grants it
//! carries.

use crate::policy::ApprovalGrant;
use crate::request::{Destination, Purpose, Requester};

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
}

impl ResolveRequest {
    /// A request by `requester` for `purpose`.
    pub fn new(requester: Requester, purpose: Purpose) -> Self {
        Self {
            requester,
            purpose,
            destination: None,
            approvals: Vec::new(),
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
