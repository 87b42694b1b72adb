//! An approval grant resolves a secret only for the workspace,
//! conversation, tool and destination the operator approved, not for
//! another tenant, conversation, tool or host that reuses the approved tool
//! call id.

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
    ProviderId, Purpose, Redactor, Requester, ResolveError, ResolveRequest, Resolver, RulePolicy,
    Scope, SecretAdmin, SecretBytes, Timestamp,
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
    let admin = SecretAdmin::builder(
        catalog.clone(),
        Arc::new(MemoryAuditSink::new()),
        &Redactor::new(),
    )
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

/// Gateways and models number tool calls per conversation (`call_0`,
/// `call_1`, ...), so tool call ids collide across conversations and
/// tenants: a grant must name the workspace and conversation it was
/// approved in.
#[test]
fn a_grant_for_one_workspace_and_conversation_does_not_satisfy_another() {
    let handle = tyrum_secrets_core::HandleId::generate().unwrap();
    let approved = Requester::new("alpha")
        .unwrap()
        .workspace("acme")
        .unwrap()
        .conversation("conv-1")
        .unwrap()
        .tool("http.fetch")
        .unwrap()
        .tool_call("call_1")
        .unwrap();
    let grant = ApprovalGrant::for_request(
        "appr-1",
        handle.clone(),
        &approved,
        None,
        Timestamp::now().saturating_add(Duration::from_secs(600)),
    )
    .unwrap()
    .reusable();
    let elsewhere = Requester::new("alpha")
        .unwrap()
        .workspace("other-tenant")
        .unwrap()
        .conversation("conv-9")
        .unwrap()
        .tool("http.fetch")
        .unwrap()
        .tool_call("call_1")
        .unwrap();
    assert_eq!(
        grant.check_binding(&handle, &elsewhere, None, Timestamp::now()),
        Err(ApprovalRejection::OtherWorkspace),
        "a grant approved in workspace acme / conv-1 satisfies workspace other-tenant / conv-9"
    );
    assert_eq!(grant.workspace.as_deref(), Some("acme"));
    assert_eq!(grant.conversation.as_deref(), Some("conv-1"));
}

/// Through the resolver: the grant is refused in another workspace or
/// conversation, and the audit record names the rejection.
#[test]
fn the_resolver_refuses_a_grant_from_another_conversation_and_records_why() {
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new()),
    );
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "prod", "effect": "require_approval", "secret": "memory:prod/*"}]}"#,
    )
    .unwrap();
    let approvals = Arc::new(MemoryApprovals::new());
    let sink = Arc::new(MemoryAuditSink::new());
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .approvals(approvals.clone())
        .build()
        .unwrap();
    let admin = SecretAdmin::builder(
        catalog,
        Arc::new(MemoryAuditSink::new()),
        resolver.redactor().unwrap(),
    )
    .build()
    .unwrap();
    let by = AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("test setup").unwrap(),
    );
    let handle = admin
        .create(
            NewSecret::new(memory, Scope::new("prod/api").unwrap(), KindSpec::api_key()),
            &SecretBytes::from(b"sk-tenant-bound-CANARY-1".to_vec()),
            &by,
        )
        .unwrap();
    let requester = |workspace: &str, conversation: &str| {
        Requester::new("alpha")
            .unwrap()
            .workspace(workspace)
            .unwrap()
            .conversation(conversation)
            .unwrap()
            .tool("http.fetch")
            .unwrap()
            .tool_call("call_1")
            .unwrap()
    };
    let purpose = Purpose::new("call the api").unwrap();
    let grant = approvals.issue(
        ApprovalGrant::for_request(
            "appr-tenant",
            handle.id().clone(),
            &requester("acme", "conv-1"),
            None,
            Timestamp::now().saturating_add(Duration::from_secs(60)),
        )
        .unwrap()
        .reusable(),
    );
    for (workspace, conversation, expected) in [
        ("other-tenant", "conv-1", ApprovalRejection::OtherWorkspace),
        ("acme", "conv-9", ApprovalRejection::OtherConversation),
    ] {
        let request = ResolveRequest::new(requester(workspace, conversation), purpose.clone())
            .with_approval(grant.clone());
        match resolver.resolve(handle.id(), &request) {
            Err(ResolveError::ApprovalRejected { rejection, .. }) => {
                assert_eq!(rejection, expected)
            }
            other => panic!("{workspace} / {conversation}: {other:?}"),
        }
        let record = sink.records().pop().unwrap();
        assert_eq!(record.outcome, Outcome::Denied);
        assert_eq!(record.approval_id.as_deref(), Some("appr-tenant"));
        assert_eq!(record.approval_rejection, Some(expected));
    }
    let approved = ResolveRequest::new(requester("acme", "conv-1"), purpose).with_approval(grant);
    let secret = resolver.resolve(handle.id(), &approved).unwrap();
    assert_eq!(secret.value().expose_secret(), b"sk-tenant-bound-CANARY-1");
}
