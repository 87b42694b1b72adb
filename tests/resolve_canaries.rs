//! No audit file, error message or `Debug` output of the resolve path (or of
//! the admin changes before it) ever contains a value, whatever the value
//! and whatever the outcome.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::fmt::Write as _;
use std::sync::Arc;

use proptest::prelude::*;
use tyrum_secrets::{
    AdminRequest, AuditChainKey, AuditSink, Catalog, FingerprintKey, JsonLinesAuditSink, KindSpec,
    MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId, Purpose, Redactor, Requester,
    ResolveRequest, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind,
    SecretProvider,
};
use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

/// The resolver's redactor refuses values shorter than this, so the
/// refusal path runs for some of the generated values (16 to 48 bytes).
const RESOLVER_MIN_LEN: usize = 32;

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
    // The admin writes to the same audit file and registers nothing, so
    // every value gets created and the resolver's refusal path runs.
    let admin = SecretAdmin::builder(catalog.clone(), sink.clone())
        .without_redaction()
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("canary setup").unwrap(),
    );
    let resolver = Resolver::builder(catalog.clone(), policy, sink)
        .redactor(Redactor::with_min_value_len(RESOLVER_MIN_LEN))
        .fingerprint_key(FingerprintKey::generate().unwrap())
        .build()
        .unwrap();
    let create = |scope: &str| {
        let spec = NewSecret::new(
            memory.clone(),
            Scope::new(scope).unwrap(),
            KindSpec::new(SecretKind::Password, None).unwrap(),
        );
        admin
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()), &by)
            .unwrap()
    };
    let open = create("open/a");
    let guarded = create("guarded/a");
    let denied = create("closed/a");
    let revoked = create("open/b");
    admin.revoke(revoked.id(), &by).unwrap();
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
        "{resolver:?} {admin:?} {:?}",
        catalog.list().unwrap()
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
        // 4 creates and a revoke, then 9 resolve attempts.
        prop_assert!(audit.lines().count() >= 14, "every attempt was audited");
        for haystack in [&seen, &audit] {
            prop_assert!(!haystack.contains(&value));
            prop_assert!(!haystack.contains(&hex(value.as_bytes())));
        }
    }
}
