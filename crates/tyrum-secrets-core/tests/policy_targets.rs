//! The resolver gives the policy a handle's catalog labels, so a rule on
//! labels or on a handle id decides whatever provider the secret lives in.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use tyrum_secrets_core::{
    AdminRequest, Catalog, ExposeSecret, KindSpec, MemoryAuditSink, MemoryCatalogStore,
    MemoryProvider, NewSecret, ProviderId, Purpose, Requester, ResolveError, ResolveRequest,
    Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretHandle,
};

fn catalog() -> Arc<Catalog> {
    Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(ProviderId::new("memory").unwrap(), MemoryProvider::new())
            .with_provider(ProviderId::new("other").unwrap(), MemoryProvider::new()),
    )
}

fn create(
    catalog: &Arc<Catalog>,
    provider: &str,
    team: Option<&str>,
    value: &[u8],
) -> SecretHandle {
    let mut spec = NewSecret::new(
        ProviderId::new(provider).unwrap(),
        Scope::new("shared").unwrap(),
        KindSpec::api_key(),
    );
    if let Some(team) = team {
        spec = spec.label("team", team);
    }
    admin(catalog)
        .create(spec, &SecretBytes::from(value.to_vec()), &by())
        .unwrap()
}

/// Creating goes through the admin, which records to a sink of its own.
fn admin(catalog: &Arc<Catalog>) -> SecretAdmin {
    SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap()
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("test setup").unwrap(),
    )
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha").unwrap(),
        Purpose::new("charge a card").unwrap(),
    )
}

#[test]
fn resolver_decides_on_catalog_labels() {
    let catalog = catalog();
    let payments = create(
        &catalog,
        "memory",
        Some("payments"),
        b"sk-payments-CANARY-1",
    );
    let search = create(&catalog, "memory", Some("search"), b"sk-search-CANARY-2");
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "anything", "effect": "allow", "secret": "*"},
            {"id": "payments", "effect": "deny", "labels": {"team": "payments"}}
        ]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog, policy, Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    match resolver.resolve(payments.id(), &request()) {
        Err(ResolveError::Denied { rule, .. }) => assert_eq!(rule.as_deref(), Some("payments")),
        other => panic!("the payments secret was not denied: {other:?}"),
    }
    let got = resolver.resolve(search.id(), &request()).unwrap();
    assert_eq!(got.value().expose_secret(), b"sk-search-CANARY-2");
}

#[test]
fn a_handle_rule_follows_the_secret_not_its_provider() {
    let catalog = catalog();
    let moved = create(&catalog, "other", None, b"sk-moved-CANARY-3");
    let policy = RulePolicy::from_json_str(&format!(
        r#"{{"rules": [
            {{"id": "memory-only", "effect": "allow", "secret": "memory:*"}},
            {{"id": "this-secret", "effect": "allow", "handle": "{}"}}
        ]}}"#,
        moved.id()
    ))
    .unwrap();
    let resolver = Resolver::builder(catalog, policy, Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    let got = resolver.resolve(moved.id(), &request()).unwrap();
    assert_eq!(got.value().expose_secret(), b"sk-moved-CANARY-3");
}
