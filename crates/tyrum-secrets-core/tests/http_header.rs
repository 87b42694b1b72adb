//! With the `http` feature, a rendered header comes back as an
//! `http::HeaderValue` marked sensitive, through the same policy and audit
//! path as any resolve.

#![cfg(feature = "http")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use tyrum_secrets_core::{
    AdminRequest, Catalog, InjectError, KindSpec, MemoryAuditSink, MemoryCatalogStore,
    MemoryProvider, NewSecret, Outcome, ProviderId, Purpose, Requester, ResolveRequest, Resolver,
    RulePolicy, Scope, SecretAdmin, SecretBytes, SecretHandle,
};

struct Fixture {
    /// Records to a sink of its own, so `sink` holds resolves only.
    admin: SecretAdmin,
    sink: Arc<MemoryAuditSink>,
    resolver: Resolver,
}

fn fixture() -> Fixture {
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(ProviderId::new("memory").unwrap(), MemoryProvider::new()),
    );
    let sink = Arc::new(MemoryAuditSink::new());
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "http", "effect": "allow", "secret": "memory:http/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .build()
        .unwrap();
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    Fixture {
        admin,
        sink,
        resolver,
    }
}

impl Fixture {
    fn secret(&self, scope: &str, value: &[u8]) -> SecretHandle {
        let by = AdminRequest::new(
            Requester::new("operator").unwrap(),
            Purpose::new("test setup").unwrap(),
        );
        self.admin
            .create(
                NewSecret::new(
                    ProviderId::new("memory").unwrap(),
                    Scope::new(scope).unwrap(),
                    KindSpec::bearer_token(),
                ),
                &SecretBytes::from(value.to_vec()),
                &by,
            )
            .unwrap()
    }
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha")
            .unwrap()
            .tool("http.fetch")
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("call the API").unwrap(),
    )
}

#[test]
fn header_value_is_rendered_and_marked_sensitive() {
    let f = fixture();
    let h = f.secret("http/api", b"tok-http-CANARY-41");
    let value = f
        .resolver
        .render_http_header_value(&format!("Bearer {{{{{}}}}}", h.id()), &request())
        .unwrap();
    assert!(value.is_sensitive());
    assert_eq!(value.as_bytes(), b"Bearer tok-http-CANARY-41");
    assert!(!format!("{value:?}").contains("CANARY"), "{value:?}");
    assert_eq!(f.sink.records().pop().unwrap().outcome, Outcome::Resolved);
}

#[test]
fn a_value_an_http_header_cannot_carry_is_refused() {
    let f = fixture();
    for (scope, value) in [
        ("http/del", &b"tok\x7fCANARY"[..]),
        ("http/bell", b"tok\x07CANARY"),
    ] {
        let h = f.secret(scope, value);
        let result = f
            .resolver
            .render_http_header_value(&format!("Bearer {{{{{}}}}}", h.id()), &request());
        match result {
            Err(e @ InjectError::InvalidHeaderValue) => {
                assert!(!e.to_string().contains("CANARY"), "{e}")
            }
            other => panic!("{scope}: {other:?}"),
        }
    }
    let h = f.secret("http/newline", b"tok\r\nX-Evil: 1");
    assert!(matches!(
        f.resolver
            .render_http_header_value(&format!("{{{{{}}}}}", h.id()), &request()),
        Err(InjectError::HeaderBreak { .. })
    ));
}
