//! An approval grant resolves a secret only for the tool and destination
//! the operator approved, not for another tool or host that reuses the
//! approved tool call id.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{
    AdminRequest, ApprovalGrant, ApprovalRejection, Catalog, Destination, ExposeSecret, KindSpec,
    MemoryApprovals, MemoryAuditSink, MemoryCatalogStore, MemoryProvider, NewSecret, Outcome,
    ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver, RulePolicy, Scope,
    SecretAdmin, SecretBytes, Timestamp,
};

fn request(tool: &str, host: &str) -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha")
            .unwrap()
            .tool(tool)
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("list pull requests").unwrap(),
    )
    .to(Destination::host(host).unwrap())
}

#[test]
fn a_grant_for_one_tool_and_host_does_not_resolve_for_another() {
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new()),
    );
    // The admin records to a sink of its own; `sink` holds resolves only.
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("test setup").unwrap(),
    );
    let handle = admin
        .create(
            NewSecret::new(
                memory,
                Scope::new("prod/github").unwrap(),
                KindSpec::api_key(),
            ),
            &SecretBytes::from(b"ghp-approved-CANARY-value".to_vec()),
            &by,
        )
        .unwrap();
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "prod", "effect": "require_approval", "secret": "memory:prod/*"}]}"#,
    )
    .unwrap();
    let approvals = Arc::new(MemoryApprovals::new());
    let sink = Arc::new(MemoryAuditSink::new());
    let resolver = Resolver::builder(catalog, policy, sink.clone())
        .approvals(approvals.clone())
        .build()
        .unwrap();

    let approved = request("http.fetch", "api.github.com");
    let grant = approvals.issue(
        ApprovalGrant::for_request(
            "appr-github",
            handle.id().clone(),
            approved.requester(),
            approved.destination(),
            Timestamp::now().saturating_add(Duration::from_secs(60)),
        )
        .unwrap()
        .reusable(),
    );

    for (tool, host, expected) in [
        ("shell.exec", "api.github.com", ApprovalRejection::OtherTool),
        (
            "http.fetch",
            "evil.example",
            ApprovalRejection::OtherDestination,
        ),
        ("shell.exec", "evil.example", ApprovalRejection::OtherTool),
    ] {
        let result = resolver.resolve(
            handle.id(),
            &request(tool, host).with_approval(grant.clone()),
        );
        match result {
            Err(ResolveError::ApprovalRejected { rejection, .. }) => {
                assert_eq!(rejection, expected, "{tool} toward {host}")
            }
            Err(e) => panic!("{tool} toward {host}: wrong error {e}"),
            Ok(_) => panic!(
                "the grant for http.fetch toward api.github.com resolved for {tool} toward {host}"
            ),
        }
        let record = sink.records().pop().unwrap();
        assert_eq!(record.outcome, Outcome::Denied);
        assert_eq!(record.approval_rejection, Some(expected));
    }
    // A request without the destination is not the approved request either.
    let no_destination =
        ResolveRequest::new(approved.requester().clone(), approved.purpose().clone())
            .with_approval(grant.clone());
    assert!(matches!(
        resolver.resolve(handle.id(), &no_destination),
        Err(ResolveError::ApprovalRejected {
            rejection: ApprovalRejection::OtherDestination,
            ..
        })
    ));

    // The approved tool toward the approved host (any spelling of the tool
    // id's case) resolves.
    let secret = resolver
        .resolve(
            handle.id(),
            &request("HTTP.Fetch", "API.GitHub.com.").with_approval(grant),
        )
        .unwrap();
    assert_eq!(secret.value().expose_secret(), b"ghp-approved-CANARY-value");
}
