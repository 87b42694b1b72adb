//! Injection hands values to the execution context through the same
//! policy and audit path, all or nothing, and never as a literal handle.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;
use std::sync::Arc;

use serde_json::json;
use tyrum_secrets_core::{
    AdminRequest, Catalog, ErrorKind, ExposeSecret, HandleId, InjectError, KindSpec,
    MemoryAuditSink, MemoryCatalogStore, MemoryProvider, NewSecret, Outcome, ProviderId, Purpose,
    Requester, ResolveError, ResolveRequest, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes,
    SecretHandle, SecretKind,
};

struct Fixture {
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
        r#"{"rules": [{"id": "tools", "effect": "allow", "secret": "memory:tools/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .build()
        .unwrap();
    // The admin records to its own sink, so `sink` holds resolves only.
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new()))
        .redactor(resolver.redactor().unwrap().clone())
        .build()
        .unwrap();
    Fixture {
        admin,
        sink,
        resolver,
    }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("injection test").unwrap(),
    )
}

impl Fixture {
    fn secret(&self, scope: &str, value: &[u8]) -> SecretHandle {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new(scope).unwrap(),
            KindSpec::new(SecretKind::BearerToken, None).unwrap(),
        );
        self.admin
            .create(spec, &SecretBytes::from(value.to_vec()), &by())
            .unwrap()
    }
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha")
            .unwrap()
            .tool("shell.exec")
            .unwrap()
            .tool_call("call-7")
            .unwrap(),
        Purpose::new("run the deploy script").unwrap(),
    )
}

#[cfg(unix)]
#[test]
fn child_process_receives_the_injected_env_var_and_the_parent_does_not() {
    let f = fixture();
    let h = f.secret("tools/deploy", b"tok-child-env-CANARY-81");
    let mut command = Command::new("sh");
    command.args(["-c", r#"printf '%s' "$TYRUM_INJECT_TEST_TOKEN""#]);
    f.resolver
        .inject_env(
            &mut command,
            [("TYRUM_INJECT_TEST_TOKEN", h.id())],
            &request(),
        )
        .unwrap();
    let output = command.output().unwrap();
    assert!(output.status.success());
    assert_eq!(output.stdout, b"tok-child-env-CANARY-81");
    assert!(std::env::var_os("TYRUM_INJECT_TEST_TOKEN").is_none());
    let records = f.sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Resolved);
    assert_eq!(records[0].requester.tool_call_id(), Some("call-7"));
}

#[cfg(unix)]
#[test]
fn failed_env_injection_sets_nothing() {
    let f = fixture();
    let good = f.secret("tools/a", b"tok-good-value-1");
    let revoked = f.secret("tools/b", b"tok-revoked-value-1");
    f.admin.revoke(revoked.id(), &by()).unwrap();
    let mut command = Command::new("sh");
    command.args(["-c", r#"printf '%s' "${GOOD-unset}""#]);
    let err = f
        .resolver
        .inject_env(
            &mut command,
            [("GOOD", good.id()), ("BAD", revoked.id())],
            &request(),
        )
        .unwrap_err();
    assert!(matches!(err, InjectError::Resolve { ref id, .. } if id == revoked.id()));
    assert_eq!(command.output().unwrap().stdout, b"unset");

    let nul = f.secret("tools/nul", b"tok-with\0nul");
    let err = f
        .resolver
        .inject_env(&mut command, [("NUL", nul.id())], &request())
        .unwrap_err();
    assert!(matches!(err, InjectError::ValueHasNul { .. }));

    let before = f.sink.len();
    let err = f
        .resolver
        .inject_env(&mut command, [("A=B", good.id())], &request())
        .unwrap_err();
    assert!(matches!(err, InjectError::InvalidEnvName { .. }));
    assert_eq!(
        f.sink.len(),
        before,
        "a bad name is refused before resolving"
    );
}

#[test]
fn every_handle_string_in_tool_arguments_is_substituted_once() {
    let f = fixture();
    let token = f.secret("tools/api", b"tok-json-CANARY-1");
    let other = f.secret("tools/other", b"tok-json-CANARY-2");
    let args = json!({
        "url": "https://api.example.com",
        "headers": [token.id().to_string(), "plain"],
        "nested": {"again": token.id().to_string(), "second": other.id().to_string()},
        "count": 3,
        "note": "SECRET: not a handle, wrong case"
    });
    let substituted = f.resolver.substitute_json(&args, &request()).unwrap();
    let value = substituted.expose_secret();
    assert_eq!(value["headers"][0], "tok-json-CANARY-1");
    assert_eq!(value["headers"][1], "plain");
    assert_eq!(value["nested"]["again"], "tok-json-CANARY-1");
    assert_eq!(value["nested"]["second"], "tok-json-CANARY-2");
    assert_eq!(value["count"], 3);
    assert_eq!(value["note"], "SECRET: not a handle, wrong case");
    assert_eq!(f.sink.len(), 2, "one resolve per distinct handle");
    assert!(!format!("{substituted:?}").contains("CANARY"));
    let text = substituted.to_secret_string();
    assert!(text.expose_secret().contains("tok-json-CANARY-2"));
    assert!(!format!("{text:?}").contains("CANARY"));
}

#[test]
fn one_failing_handle_substitutes_nothing_and_names_the_handle() {
    let f = fixture();
    let good = f.secret("tools/api", b"tok-json-CANARY-3");
    let denied = f.secret("elsewhere", b"tok-json-CANARY-4");
    let args = json!({"a": good.id().to_string(), "b": denied.id().to_string()});
    let err = f.resolver.substitute_json(&args, &request()).unwrap_err();
    match &err {
        InjectError::Resolve { id, source } => {
            assert_eq!(id, denied.id());
            assert!(matches!(**source, ResolveError::Denied { .. }));
        }
        other => panic!("expected a resolve error, got {other:?}"),
    }
    let message = format!("{err} {err:?}");
    assert!(message.contains(&denied.id().to_string()));
    assert!(!message.contains("CANARY"));
    let kinds: Vec<_> = f.sink.records().iter().map(|r| r.error_kind).collect();
    assert_eq!(kinds, [None, Some(ErrorKind::Denied)]);
}

#[test]
fn malformed_unknown_and_revoked_handles_are_errors_not_literals() {
    let f = fixture();
    let args = json!({"headers": [{"auth": "secret:too-short"}]});
    match f.resolver.substitute_json(&args, &request()) {
        Err(InjectError::MalformedHandle { at, .. }) => assert_eq!(at, "/headers/0/auth"),
        other => panic!("expected a malformed handle, got {other:?}"),
    }
    assert!(
        f.sink.is_empty(),
        "nothing resolves when a handle is malformed"
    );

    let unknown = HandleId::generate().unwrap();
    let err = f
        .resolver
        .substitute_json(&json!([unknown.to_string()]), &request())
        .unwrap_err();
    assert!(matches!(
        err,
        InjectError::Resolve { ref source, .. } if matches!(**source, ResolveError::UnknownHandle { .. })
    ));

    let revoked = f.secret("tools/r", b"tok-revoked-2");
    f.admin.revoke(revoked.id(), &by()).unwrap();
    let err = f
        .resolver
        .render_template(&format!("Bearer {{{{{}}}}}", revoked.id()), &request())
        .unwrap_err();
    assert!(matches!(
        err,
        InjectError::Resolve { ref source, .. } if matches!(**source, ResolveError::Revoked { .. })
    ));
}

#[test]
fn header_template_renders_into_a_secret_string() {
    let f = fixture();
    let h = f.secret("tools/api", b"tok-header-CANARY-5");
    let rendered = f
        .resolver
        .render_template(&format!("Bearer {{{{ {} }}}}", h.id()), &request())
        .unwrap();
    assert_eq!(rendered.expose_secret(), "Bearer tok-header-CANARY-5");
    assert!(!format!("{rendered:?}").contains("CANARY"));
    let binary = f.secret(
        "tools/bin",
        &[0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, 0x82, 0x83],
    );
    assert!(matches!(
        f.resolver
            .render_template(&format!("{{{{{}}}}}", binary.id()), &request()),
        Err(InjectError::NotUtf8 { .. })
    ));
}

#[test]
fn header_values_refuse_line_breaks_in_secrets_and_templates() {
    let f = fixture();
    let clean = f.secret("tools/api", b"tok-clean-CANARY-6");
    let rendered = f
        .resolver
        .render_header_value(&format!("Bearer {{{{{}}}}}", clean.id()), &request())
        .unwrap();
    assert_eq!(rendered.expose_secret(), "Bearer tok-clean-CANARY-6");

    for (scope, value) in [
        ("tools/crlf", &b"tok-CANARY-7\r\nX-Injected: 1"[..]),
        ("tools/lf", b"tok-CANARY-8\nHost: evil.example"),
        ("tools/nul", b"tok-CANARY-9\0tail"),
    ] {
        let h = f.secret(scope, value);
        let template = format!("Bearer {{{{{}}}}}", h.id());
        let err = f
            .resolver
            .render_header_value(&template, &request())
            .unwrap_err();
        assert!(
            matches!(&err, InjectError::HeaderBreak { id: Some(id) } if id == h.id()),
            "{err}"
        );
        assert!(!format!("{err} {err:?}").contains("CANARY"));
        // The general template renderer keeps multi-line values.
        assert!(f.resolver.render_template(&template, &request()).is_ok());
    }
    let err = f
        .resolver
        .render_header_value(
            &format!("Bearer {{{{{}}}}}\r\nX-Evil: 1", clean.id()),
            &request(),
        )
        .unwrap_err();
    assert!(
        matches!(err, InjectError::HeaderBreak { id: None }),
        "{err}"
    );
}

#[test]
fn handles_inside_strings_or_keys_are_errors_not_literals() {
    // A handle that would not be substituted (inside a longer string, or as
    // an object key) must not reach the tool as text: for a revoked or
    // unknown handle that would be a fail-open literal.
    let f = fixture();
    let h = f.secret("tools/api", b"tok-embedded-CANARY-6");
    let revoked = f.secret("tools/r", b"tok-embedded-CANARY-7");
    f.admin.revoke(revoked.id(), &by()).unwrap();
    let cases = [
        (
            json!({"headers": {"auth": format!("Bearer {}", h.id())}}),
            "/headers/auth",
        ),
        (json!([format!(" {}", revoked.id())]), "/0"),
        (json!({"a": {revoked.id().to_string(): "x"}}), ""),
        (json!({format!("x-{}", h.id()): 1}), ""),
    ];
    for (args, at_expected) in cases {
        match f.resolver.substitute_json(&args, &request()) {
            Err(InjectError::EmbeddedHandle { at }) => {
                if !at_expected.is_empty() {
                    assert_eq!(at, at_expected);
                }
            }
            Err(other) => panic!("expected an embedded handle error for {args}, got {other:?}"),
            Ok(_) => panic!("{args} was passed on with a literal handle"),
        }
    }
    assert!(
        f.sink.is_empty(),
        "nothing resolves when a handle is misplaced"
    );
    // Prose that merely mentions the word is fine.
    let ok = json!({"note": "the secret: keep it safe", "h": h.id().to_string()});
    assert!(f.resolver.substitute_json(&ok, &request()).is_ok());
}

#[test]
fn template_handles_outside_placeholders_or_after_an_extra_brace_are_not_literals() {
    let f = fixture();
    let h = f.secret("tools/api", b"tok-template-CANARY-8");
    let rendered = f
        .resolver
        .render_template(&format!("{{{{{{{}}}}}}}", h.id()), &request())
        .unwrap();
    assert_eq!(rendered.expose_secret(), "{tok-template-CANARY-8}");
    assert!(matches!(
        f.resolver
            .render_template(&format!("Bearer {}", h.id()), &request()),
        Err(InjectError::EmbeddedHandle { .. })
    ));
    assert!(matches!(
        f.resolver
            .render_template(&format!("{{{{x}}}} {}", h.id()), &request()),
        Err(InjectError::EmbeddedHandle { .. })
    ));
    let plain = f
        .resolver
        .render_template("{{ name }} {{{x}}}", &request())
        .unwrap();
    assert_eq!(plain.expose_secret(), "{{ name }} {{{x}}}");
}
