//! The injection helpers work from any `ValueSource`, not only from the
//! resolver: values already resolved elsewhere (a paired node's opened
//! envelopes) go through the same checks, all or nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use serde_json::json;
use tyrum_secrets_core::{
    AdminRequest, Catalog, ExposeSecret, HandleId, Inject, InjectError, KindSpec, MemoryAuditSink,
    MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId, Purpose, Requester, ResolveRequest,
    Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, ValueSource,
};

/// Values handed over already resolved, counting how often each is asked.
#[derive(Default)]
struct Handed {
    values: BTreeMap<HandleId, Vec<u8>>,
    asked: RefCell<Vec<HandleId>>,
}

impl Handed {
    fn with(mut self, id: &HandleId, value: &[u8]) -> Self {
        self.values.insert(id.clone(), value.to_vec());
        self
    }
}

impl ValueSource for Handed {
    fn value(&self, id: &HandleId) -> Result<SecretBytes, InjectError> {
        self.asked.borrow_mut().push(id.clone());
        self.values
            .get(id)
            .map(|v| SecretBytes::from(v.clone()))
            .ok_or_else(|| InjectError::NotProvided { id: id.clone() })
    }
}

fn id() -> HandleId {
    HandleId::generate().unwrap()
}

#[test]
fn json_and_header_helpers_work_from_handed_over_values() {
    let (a, b) = (id(), id());
    let source = Handed::default()
        .with(&a, b"tok-source-CANARY-1")
        .with(&b, b"tok-source-CANARY-2");
    let args = json!({"x": a.to_string(), "y": [a.to_string(), b.to_string()], "n": 1});
    let substituted = source.substitute_json(&args).unwrap();
    assert_eq!(substituted.expose_secret()["x"], "tok-source-CANARY-1");
    assert_eq!(substituted.expose_secret()["y"][1], "tok-source-CANARY-2");
    assert_eq!(source.asked.borrow().len(), 2, "once per distinct handle");
    assert!(!format!("{substituted:?}").contains("CANARY"));

    let header = source
        .render_header_value(&format!("Bearer {{{{{a}}}}}"))
        .unwrap();
    assert_eq!(header.expose_secret(), "Bearer tok-source-CANARY-1");
    let broken = Handed::default().with(&a, b"tok-CANARY-3\r\nX-Evil: 1");
    assert!(matches!(
        broken.render_header_value(&format!("Bearer {{{{{a}}}}}")),
        Err(InjectError::HeaderBreak { id: Some(ref at) }) if *at == a
    ));
    assert!(matches!(
        source.render_template(&format!("Bearer {a}")),
        Err(InjectError::EmbeddedHandle { .. })
    ));
}

#[cfg(unix)]
#[test]
fn env_injection_from_handed_over_values_reaches_the_child() {
    let a = id();
    let source = Handed::default().with(&a, b"tok-source-env-CANARY-4");
    let mut command = Command::new("sh");
    command.args(["-c", r#"printf '%s' "$TYRUM_SOURCE_TEST_TOKEN""#]);
    source
        .inject_env(&mut command, [("TYRUM_SOURCE_TEST_TOKEN", &a)])
        .unwrap();
    assert_eq!(command.output().unwrap().stdout, b"tok-source-env-CANARY-4");
}

#[cfg(unix)]
#[test]
fn a_handle_the_source_lacks_injects_nothing_and_is_named() {
    let (have, missing) = (id(), id());
    let source = Handed::default().with(&have, b"tok-source-CANARY-5");
    let mut command = Command::new("sh");
    command.args(["-c", r#"printf '%s' "${HAVE-unset}""#]);
    let err = source
        .inject_env(&mut command, [("HAVE", &have), ("MISSING", &missing)])
        .unwrap_err();
    assert!(matches!(err, InjectError::NotProvided { ref id } if *id == missing));
    assert!(err.to_string().contains(&missing.to_string()));
    assert!(!format!("{err} {err:?}").contains("CANARY"));
    assert_eq!(command.output().unwrap().stdout, b"unset");

    let args = json!([have.to_string(), missing.to_string()]);
    assert!(matches!(
        source.substitute_json(&args),
        Err(InjectError::NotProvided { .. })
    ));
    // A bad name is refused before any value is asked for.
    source.asked.borrow_mut().clear();
    assert!(matches!(
        source.inject_env(&mut command, [("A=B", &have)]),
        Err(InjectError::InvalidEnvName { .. })
    ));
    assert!(source.asked.borrow().is_empty());
}

#[test]
fn the_resolver_as_a_source_resolves_through_policy_and_audit() {
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new()),
    );
    let sink = Arc::new(MemoryAuditSink::new());
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "tools", "effect": "allow", "secret": "memory:tools/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .build()
        .unwrap();
    let spec = |scope: &str| {
        NewSecret::new(
            memory.clone(),
            Scope::new(scope).unwrap(),
            KindSpec::new(SecretKind::BearerToken, None).unwrap(),
        )
    };
    // The admin records to its own sink, so `sink` holds resolves only.
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new()))
        .redactor(resolver.redactor().unwrap().clone())
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("value source test").unwrap(),
    );
    let create = |scope: &str, value: &[u8]| {
        admin
            .create(spec(scope), &SecretBytes::from(value.to_vec()), &by)
            .unwrap()
    };
    let allowed = create("tools/a", b"tok-resolver-CANARY-6");
    let denied = create("other", b"tok-resolver-CANARY-7");
    let request = ResolveRequest::new(
        Requester::new("alpha").unwrap(),
        Purpose::new("call the api").unwrap(),
    );
    let source = resolver.for_request(&request);
    let args = json!([allowed.id().to_string(), allowed.id().to_string()]);
    let substituted = source.substitute_json(&args).unwrap();
    assert_eq!(substituted.expose_secret()[1], "tok-resolver-CANARY-6");
    assert_eq!(sink.len(), 1, "one resolve, one record per distinct handle");
    let err = source
        .render_template(&format!("{{{{{}}}}}", denied.id()))
        .unwrap_err();
    assert!(matches!(err, InjectError::Resolve { ref id, .. } if id == denied.id()));
    assert_eq!(sink.len(), 2);
}

#[cfg(feature = "http")]
#[test]
fn a_handed_over_value_renders_into_a_sensitive_http_header() {
    let (a, b) = (id(), id());
    let source = Handed::default()
        .with(&a, b"tok-source-http-CANARY-8")
        .with(&b, b"tok-with-del-\x7f-CANARY-9");
    let value = source
        .render_http_header_value(&format!("Bearer {{{{{a}}}}}"))
        .unwrap();
    assert!(value.is_sensitive());
    assert_eq!(value.as_bytes(), b"Bearer tok-source-http-CANARY-8");
    assert!(!format!("{value:?}").contains("CANARY"));
    assert!(matches!(
        source.render_http_header_value(&format!("Bearer {{{{{b}}}}}")),
        Err(InjectError::InvalidHeaderValue)
    ));
}
