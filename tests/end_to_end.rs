//! The whole trusted path on real files: encrypted file provider, JSON-file
//! catalog, rule policy, hash-chained audit file, redactor and a TRACE-level
//! tracing subscriber. A canary secret is resolved into tool arguments, the
//! tool "echoes" it in several encodings, and nothing that would be stored or
//! shown — redacted output, logs, errors, catalog, audit log, store file —
//! holds it.

#![cfg(all(feature = "file", feature = "tracing"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::io;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::json;
use tyrum_secrets::file::{FileOptions, FileProvider, KeySource};
use tyrum_secrets::{
    Action, AdminRequest, AuditChainKey, AuditRecord, Catalog, JsonFileCatalogStore,
    JsonLinesAuditSink, KindSpec, NewSecret, ProviderId, Purpose, Requester, ResolveRequest,
    Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, SecretString,
    verify_audit_log,
};

const CANARY: &str = "CANARY-e2e-sk-live-4b1d9f7a2c8e6";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn assert_no_canary(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
    let hex: String = CANARY.bytes().map(|b| format!("{b:02x}")).collect();
    for needle in [CANARY, b64.as_str(), hex.as_str(), "CANARY-e2e"] {
        assert!(
            !text.contains(needle),
            "{what} holds the canary ({needle}): {text}"
        );
    }
}

#[test]
fn canary_resolved_into_a_tool_never_reaches_storage_logs_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("secrets.tyrum");
    let catalog_path = dir.path().join("catalog.json");
    let audit_path = dir.path().join("audit.jsonl");

    let file = FileProvider::open_with(
        &store_path,
        KeySource::Passphrase(SecretString::from("e2e test passphrase")),
        FileOptions::default().dangerous_insecure_kdf_for_tests(),
    )
    .unwrap();
    let provider = ProviderId::new("file").unwrap();
    let catalog = Arc::new(
        Catalog::new(JsonFileCatalogStore::open(&catalog_path).unwrap())
            .with_provider(provider.clone(), file),
    );
    let policy = RulePolicy::from_json_str(
        r#"{ "rules": [ { "id": "http", "effect": "allow", "secret": "file:workspace/*",
                          "agent": "agent-1", "tool": "http.fetch" } ] }"#,
    )
    .unwrap();
    let chain_key = || AuditChainKey::new(SecretBytes::from(vec![42u8; 32])).unwrap();
    let sink = Arc::new(JsonLinesAuditSink::open(&audit_path, chain_key()).unwrap());
    // The defaults: the resolver owns the redactor, the admin shares it.
    let resolver = Resolver::builder(Arc::clone(&catalog), policy, sink.clone())
        .build()
        .unwrap();
    let redactor = resolver.redactor().unwrap().clone();
    let admin = SecretAdmin::builder(Arc::clone(&catalog), sink)
        .redactor(redactor.clone())
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("e2e setup").unwrap(),
    );
    let spec = NewSecret::new(
        provider,
        Scope::new("workspace/e2e").unwrap(),
        KindSpec::new(SecretKind::BearerToken, None).unwrap(),
    );
    let handle = admin
        .create(spec, &SecretBytes::from(CANARY.as_bytes().to_vec()), &by)
        .unwrap();

    let capture = Capture::default();
    let logs = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(redactor.make_writer(move || logs.clone()))
        .finish();

    tracing::subscriber::with_default(subscriber, || {
        let request = ResolveRequest::new(
            Requester::new("agent-1")
                .unwrap()
                .tool("http.fetch")
                .unwrap()
                .tool_call("c1")
                .unwrap(),
            Purpose::new("call the API").unwrap(),
        );
        let arguments = json!({ "url": "https://api.example.test/v1",
                                "headers": { "Authorization": handle.to_string() } });
        let substituted = resolver.substitute_json(&arguments, &request).unwrap();
        let token = substituted.expose_secret()["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(token, CANARY, "the executor got the value");

        // The tool echoes the secret back in ways tools do.
        let b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
        let tool_output = format!(
            "GET ok\nauthorization: {token}\nx-debug: {b64}\njson: {}\n",
            serde_json::to_string(&json!({ "token": token, token.clone(): 1 })).unwrap()
        );
        tracing::trace!(output = %tool_output, "tool finished");
        tracing::debug!(?tool_output, "tool output (debug)");
        let stored = redactor.redact_str(&tool_output);
        assert_no_canary("redacted tool output", stored.as_inner().as_bytes());
        assert!(stored.as_inner().contains(&format!("[{}]", handle.id())));
        let payload = redactor.redact_json(&json!({ "result": tool_output, token.clone(): "k" }));
        assert_no_canary(
            "redacted JSON payload",
            payload.as_inner().to_string().as_bytes(),
        );

        // Revoked: the dependent step fails closed, the error names the handle.
        admin.revoke(handle.id(), &by).unwrap();
        let err = resolver.substitute_json(&arguments, &request).unwrap_err();
        tracing::error!(%err, "substitution failed");
        assert_no_canary("error", format!("{err} {err:?}").as_bytes());
        assert!(err.to_string().contains(&handle.id().to_string()));
    });

    assert_no_canary("TRACE-level log", &capture.0.lock().unwrap());
    assert!(
        !capture.0.lock().unwrap().is_empty(),
        "the subscriber logged"
    );
    for path in [&store_path, &catalog_path, &audit_path] {
        assert_no_canary(&path.display().to_string(), &std::fs::read(path).unwrap());
    }
    let head = verify_audit_log(&audit_path, &chain_key(), None).unwrap();
    assert_eq!(
        head.seq, 4,
        "the create, the resolve, the revoke and the revoked attempt"
    );
    let actions: Vec<Action> = std::fs::read_to_string(&audit_path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let r: AuditRecord = serde_json::from_value(v["entry"]["record"].clone()).unwrap();
            r.action
        })
        .collect();
    assert_eq!(
        actions,
        [
            Action::Create,
            Action::Resolve,
            Action::Revoke,
            Action::Resolve
        ]
    );
}
