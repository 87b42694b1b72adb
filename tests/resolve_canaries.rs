//! No audit file, error message or `Debug` output of the resolve path ever
//! contains a resolved value, whatever the value and whatever the outcome.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::fmt::Write as _;
use std::sync::Arc;

use proptest::prelude::*;
use tyrum_secrets::{
    AuditChainKey, AuditSink, Catalog, ExposeSecret, FingerprintKey, HandleId, JsonLinesAuditSink,
    KindSpec, MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId, Purpose, RedactionHook,
    RedactionHookError, Requester, ResolveRequest, Resolver, RulePolicy, Scope, SecretBytes,
    SecretKind, SecretProvider,
};
use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

/// Refuses values containing `!`, so the refusal path runs for some values.
#[derive(Debug)]
struct RefusesBang;

impl RedactionHook for RefusesBang {
    fn register(&self, handle: &HandleId, value: &SecretBytes) -> Result<(), RedactionHookError> {
        if value.expose_secret().contains(&b'!') {
            return Err(RedactionHookError::new(handle.clone(), "contains a bang"));
        }
        Ok(())
    }
}

/// Every message of an error and its sources, in Display and Debug.
fn describe(error: &dyn std::error::Error, out: &mut String) {
    let _ = write!(out, "{error} {error:?} ");
    if let Some(source) = error.source() {
        describe(source, out);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn exercise(value: &str) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let provider = Arc::new(FaultyProvider::new(
        MemoryProvider::new(),
        FaultPlan::none(),
    ));
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_shared_provider(memory.clone(), provider.clone() as Arc<dyn SecretProvider>),
    );
    let sink: Arc<dyn AuditSink> =
        Arc::new(JsonLinesAuditSink::open(&path, AuditChainKey::generate().unwrap()).unwrap());
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "open", "effect": "allow", "secret": "memory:open/*"},
            {"id": "guarded", "effect": "require_approval", "secret": "memory:guarded/*"}
        ]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink)
        .redaction(Arc::new(RefusesBang))
        .fingerprint_key(FingerprintKey::generate().unwrap())
        .build()
        .unwrap();
    let create = |scope: &str| {
        let spec = NewSecret::new(
            memory.clone(),
            Scope::new(scope).unwrap(),
            KindSpec::new(SecretKind::Password, None).unwrap(),
        );
        catalog
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()))
            .unwrap()
    };
    let open = create("open/a");
    let guarded = create("guarded/a");
    let denied = create("closed/a");
    let revoked = create("open/b");
    catalog.revoke(revoked.id(), "test").unwrap();
    let request = ResolveRequest::new(
        Requester::new("alpha").unwrap().tool_call("c1").unwrap(),
        Purpose::new("canary check").unwrap(),
    );

    let mut seen = String::new();
    let mut record = |result: Result<String, Box<dyn std::error::Error>>| match result {
        Ok(debug) => seen.push_str(&debug),
        Err(e) => describe(&*e, &mut seen),
    };
    for id in [open.id(), guarded.id(), denied.id(), revoked.id()] {
        record(
            resolver
                .resolve(id, &request)
                .map(|s| format!("{s:?}"))
                .map_err(Into::into),
        );
    }
    provider.set_plan(FaultPlan::fail_all());
    record(
        resolver
            .resolve(open.id(), &request)
            .map(|s| format!("{s:?}"))
            .map_err(Into::into),
    );
    provider.set_plan(FaultPlan::none());
    let args = serde_json::json!({"a": open.id().to_string(), "b": denied.id().to_string()});
    record(
        resolver
            .substitute_json(&args, &request)
            .map(|s| format!("{s:?}"))
            .map_err(Into::into),
    );
    let args = serde_json::json!({"a": open.id().to_string()});
    record(
        resolver
            .substitute_json(&args, &request)
            .map(|s| format!("{s:?}"))
            .map_err(Into::into),
    );
    record(
        resolver
            .render_template(&format!("Bearer {{{{{}}}}}", open.id()), &request)
            .map(|s| format!("{s:?}"))
            .map_err(Into::into),
    );
    let mut command = std::process::Command::new("true");
    record(
        resolver
            .inject_env(
                &mut command,
                [("V", open.id()), ("W", denied.id())],
                &request,
            )
            .map(|()| String::new())
            .map_err(Into::into),
    );
    seen.push_str(&format!(
        "{resolver:?} {:?}",
        catalog.store().list().unwrap()
    ));
    (seen, std::fs::read(&path).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn resolved_values_never_reach_audit_files_errors_or_debug_output(
        value in "[A-Za-z0-9!+/=_.-]{16,48}"
    ) {
        let (seen, audit) = exercise(&value);
        let audit = String::from_utf8(audit).unwrap();
        prop_assert!(audit.lines().count() >= 9, "every attempt was audited");
        for haystack in [&seen, &audit] {
            prop_assert!(!haystack.contains(&value));
            prop_assert!(!haystack.contains(&hex(value.as_bytes())));
        }
    }
}
