//! Every decision path of the resolver writes the right audit record
//! exactly once — or, when the audit sink fails or hangs, hands out nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tyrum_secrets::{
    AdminRequest, ApprovalGrant, ApprovalRejection, AuditChainKey, AuditError, AuditRecord,
    AuditSink, Catalog, DecisionReason, Destination, Effect, ErrorKind, ExposeSecret,
    FingerprintKey, HandleId, JsonLinesAuditSink, KindSpec, MemoryApprovals, MemoryAuditSink,
    MemoryCatalogStore, MemoryProvider, NewSecret, Outcome, ProviderId, Purpose, Redactor,
    Requester, ResolveError, ResolveRequest, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes,
    SecretHandle, SecretKind, SecretProvider, Timestamp, verify_audit_log,
};
use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

const POLICY: &str = r#"{
  "rules": [
    {"id": "open", "effect": "allow", "secret": "memory:open/*"},
    {"id": "guarded", "effect": "require_approval", "secret": "memory:guarded/*"},
    {"id": "forbidden", "effect": "deny", "secret": "memory:forbidden/*"}
  ]
}"#;

struct Fixture {
    catalog: Arc<Catalog>,
    /// Records to a sink of its own, so `sink` holds resolve records only.
    admin: SecretAdmin,
    provider: Arc<FaultyProvider<MemoryProvider>>,
    sink: Arc<MemoryAuditSink>,
    approvals: Arc<MemoryApprovals>,
    resolver: Resolver,
}

impl Fixture {
    fn new() -> Self {
        Self::with_sink(None, |b| b)
    }

    fn with_sink(
        sink_override: Option<Arc<dyn AuditSink>>,
        configure: impl FnOnce(tyrum_secrets::ResolverBuilder) -> tyrum_secrets::ResolverBuilder,
    ) -> Self {
        let provider = Arc::new(FaultyProvider::new(
            MemoryProvider::new(),
            FaultPlan::none(),
        ));
        let catalog = Arc::new(
            Catalog::new(MemoryCatalogStore::new()).with_shared_provider(
                ProviderId::new("memory").unwrap(),
                provider.clone() as Arc<dyn SecretProvider>,
            ),
        );
        let sink = Arc::new(MemoryAuditSink::new());
        let approvals = Arc::new(MemoryApprovals::new());
        let builder = Resolver::builder(
            catalog.clone(),
            RulePolicy::from_json_str(POLICY).unwrap(),
            sink_override.unwrap_or_else(|| sink.clone()),
        )
        .approvals(approvals.clone());
        let resolver = configure(builder).build().unwrap();
        let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
            .without_redaction()
            .build()
            .unwrap();
        Self {
            catalog,
            admin,
            provider,
            sink,
            approvals,
            resolver,
        }
    }

    fn create(&self, scope: &str, kind: KindSpec, value: &str) -> SecretHandle {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new(scope).unwrap(),
            kind,
        );
        self.admin
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()), &by())
            .unwrap()
    }

    fn api_key(&self, scope: &str, value: &str) -> SecretHandle {
        self.create(
            scope,
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
            value,
        )
    }

    /// Resolves and returns the result plus the records this attempt added.
    fn attempt(
        &self,
        id: &HandleId,
        request: &ResolveRequest,
    ) -> (Result<Vec<u8>, ResolveError>, Vec<AuditRecord>) {
        let before = self.sink.len();
        let result = self
            .resolver
            .resolve(id, request)
            .map(|s| s.value().expose_secret().to_vec());
        let records = self.sink.records()[before..].to_vec();
        (result, records)
    }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("resolver path test").unwrap(),
    )
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha")
            .unwrap()
            .workspace("acme")
            .unwrap()
            .conversation("conv-1")
            .unwrap()
            .channel("slack")
            .unwrap()
            .tool("http.fetch")
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("fetch the build status").unwrap(),
    )
    .to(Destination::host("api.example.com").unwrap())
}

fn in_a_minute() -> Timestamp {
    Timestamp::now().saturating_add(Duration::from_secs(60))
}

fn only(records: Vec<AuditRecord>) -> AuditRecord {
    assert_eq!(records.len(), 1, "exactly one audit record per attempt");
    records.into_iter().next().unwrap()
}

#[test]
fn allowed_resolve_returns_the_value_and_records_the_grant() {
    let f = Fixture::new();
    let h = f.api_key("open/ci", "sk-allowed-value-1");
    let (result, records) = f.attempt(h.id(), &request());
    assert_eq!(result.unwrap(), b"sk-allowed-value-1");
    let r = only(records);
    assert_eq!(r.outcome, Outcome::Resolved);
    assert_eq!(r.decision, Some(Effect::Allow));
    assert_eq!(r.rule.as_deref(), Some("open"));
    assert_eq!(r.error_kind, None);
    assert_eq!(&r.handle_id, h.id());
    assert_eq!(r.provider.as_ref(), Some(h.provider()));
    assert_eq!(r.scope.as_ref(), Some(h.scope()));
    assert_eq!(r.version.map(|v| v.get()), Some(1));
    assert_eq!(r.purpose, "fetch the build status");
    assert_eq!(r.destination.as_deref(), Some("api.example.com"));
    assert_eq!(r.requester.tool_call_id(), Some("call-1"));
    assert_eq!(r.requester.channel_id(), Some("slack"));
    assert!(f.catalog.entry(h.id()).unwrap().last_resolved_at.is_some());
}

#[test]
fn record_names_the_node_and_auth_profile_a_request_carries() {
    let f = Fixture::new();
    let h = f.api_key("open/ci", "sk-allowed-value-2");
    let (_, plain) = f.attempt(h.id(), &request());
    let plain = only(plain);
    assert_eq!(plain.action, tyrum_secrets::Action::Resolve);
    assert_eq!((plain.node, plain.auth_profile), (None, None));

    let tagged = request()
        .for_node("node-7")
        .unwrap()
        .via_auth_profile("openai-work")
        .unwrap();
    let (result, records) = f.attempt(h.id(), &tagged);
    assert!(result.is_ok());
    let r = only(records);
    assert_eq!(r.node.as_deref(), Some("node-7"));
    assert_eq!(r.auth_profile.as_deref(), Some("openai-work"));
    assert!(request().for_node("").is_err());
    assert!(request().via_auth_profile("a\nb").is_err());
}

#[test]
fn denied_resolve_never_reaches_the_provider() {
    let f = Fixture::new();
    let h = f.api_key("forbidden/x", "sk-denied-value-1");
    let calls = f.provider.calls();
    let (result, records) = f.attempt(h.id(), &request());
    match result {
        Err(ResolveError::Denied { rule, reason, .. }) => {
            assert_eq!(rule.as_deref(), Some("forbidden"));
            assert_eq!(reason, DecisionReason::Rule);
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(f.provider.calls(), calls, "no provider read after a denial");
    let r = only(records);
    assert_eq!(r.outcome, Outcome::Denied);
    assert_eq!(r.decision, Some(Effect::Deny));
    assert_eq!(r.error_kind, Some(ErrorKind::Denied));
    assert_eq!(r.version, None);
}

#[test]
fn unmatched_secret_is_denied_by_default() {
    let f = Fixture::new();
    let h = f.api_key("elsewhere", "sk-default-denied-1");
    let (result, records) = f.attempt(h.id(), &request());
    assert!(matches!(
        result,
        Err(ResolveError::Denied {
            rule: None,
            reason: DecisionReason::Default,
            ..
        })
    ));
    assert_eq!(only(records).error_kind, Some(ErrorKind::Denied));
}

#[test]
fn missing_approval_is_refused() {
    let f = Fixture::new();
    let h = f.api_key("guarded/prod", "sk-guarded-value-1");
    let calls = f.provider.calls();
    let (result, records) = f.attempt(h.id(), &request());
    assert!(matches!(
        result,
        Err(ResolveError::ApprovalRejected {
            rejection: ApprovalRejection::Missing,
            ..
        })
    ));
    assert_eq!(f.provider.calls(), calls);
    let r = only(records);
    assert_eq!(r.outcome, Outcome::Denied);
    assert_eq!(r.decision, Some(Effect::RequireApproval));
    assert_eq!(r.error_kind, Some(ErrorKind::ApprovalRejected));
    assert_eq!(r.approval_rejection, Some(ApprovalRejection::Missing));
}

#[test]
fn wrong_approvals_are_refused_and_a_right_one_is_used_once() {
    let f = Fixture::new();
    let h = f.api_key("guarded/prod", "sk-guarded-value-2");
    let other = f.api_key("guarded/other", "sk-guarded-value-3");
    let grant = |id: &str, handle: &HandleId, call: &str, expires: Timestamp| {
        f.approvals.issue(
            ApprovalGrant::one_shot(id, handle.clone(), "alpha", call, expires)
                .for_tool("http.fetch")
                .to(Destination::host("api.example.com").unwrap()),
        )
    };
    let cases = [
        (
            grant("a-other-handle", other.id(), "call-1", in_a_minute()),
            ApprovalRejection::OtherHandle,
        ),
        (
            grant("a-other-call", h.id(), "call-2", in_a_minute()),
            ApprovalRejection::OtherToolCall,
        ),
        (
            grant(
                "a-expired",
                h.id(),
                "call-1",
                Timestamp::from_unix_millis(1),
            ),
            ApprovalRejection::Expired,
        ),
        (
            ApprovalGrant::one_shot(
                "a-never-issued",
                h.id().clone(),
                "alpha",
                "call-1",
                in_a_minute(),
            )
            .for_tool("http.fetch")
            .to(Destination::host("api.example.com").unwrap()),
            ApprovalRejection::Unknown,
        ),
    ];
    for (g, expected) in cases {
        let approval_id = g.approval_id.clone();
        let (result, records) = f.attempt(h.id(), &request().with_approval(g));
        match result {
            Err(ResolveError::ApprovalRejected { rejection, .. }) => {
                assert_eq!(rejection, expected, "{approval_id}")
            }
            other => panic!("{approval_id}: expected a rejection, got {other:?}"),
        }
        let r = only(records);
        assert_eq!(r.approval_rejection, Some(expected));
        assert_eq!(r.outcome, Outcome::Denied);
        // A grant for another handle is not this handle's approval id.
        if expected != ApprovalRejection::OtherHandle {
            assert_eq!(r.approval_id.as_deref(), Some(approval_id.as_str()));
        }
    }
    assert!(
        !f.approvals.is_used("a-other-call"),
        "a mis-bound grant is not consumed"
    );

    let good = grant("a-good", h.id(), "call-1", in_a_minute());
    let (result, records) = f.attempt(h.id(), &request().with_approval(good.clone()));
    assert_eq!(result.unwrap(), b"sk-guarded-value-2");
    let r = only(records);
    assert_eq!(r.outcome, Outcome::Resolved);
    assert_eq!(r.approval_id.as_deref(), Some("a-good"));

    let (result, records) = f.attempt(h.id(), &request().with_approval(good));
    assert!(matches!(
        result,
        Err(ResolveError::ApprovalRejected {
            rejection: ApprovalRejection::AlreadyUsed,
            ..
        })
    ));
    assert_eq!(
        only(records).approval_rejection,
        Some(ApprovalRejection::AlreadyUsed)
    );
}

#[test]
fn revoked_handle_fails_and_is_recorded() {
    let f = Fixture::new();
    let h = f.api_key("open/ci", "sk-revoked-value-1");
    f.admin.revoke(h.id(), &by()).unwrap();
    let (result, records) = f.attempt(h.id(), &request());
    assert!(matches!(result, Err(ResolveError::Revoked { .. })));
    let r = only(records);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.error_kind, Some(ErrorKind::Revoked));
    assert_eq!(
        r.decision, None,
        "the policy is not asked for a revoked handle"
    );
}

#[test]
fn expired_handle_fails_and_is_recorded() {
    let f = Fixture::new();
    let h = f.create(
        "open/web",
        KindSpec::session_cookie(Timestamp::from_unix_millis(1_000)),
        "session-cookie-value-1",
    );
    let (result, records) = f.attempt(h.id(), &request());
    assert!(matches!(result, Err(ResolveError::Expired { .. })));
    assert_eq!(only(records).error_kind, Some(ErrorKind::Expired));
}

#[test]
fn unknown_handle_fails_and_is_recorded() {
    let f = Fixture::new();
    let id = HandleId::generate().unwrap();
    let (result, records) = f.attempt(&id, &request());
    assert!(matches!(result, Err(ResolveError::UnknownHandle { .. })));
    let r = only(records);
    assert_eq!(r.error_kind, Some(ErrorKind::UnknownHandle));
    assert_eq!(r.provider, None);
}

#[test]
fn provider_failure_is_recorded_as_such() {
    let f = Fixture::new();
    let h = f.api_key("open/ci", "sk-provider-fail-1");
    f.provider.set_plan(FaultPlan::fail_all());
    let (result, records) = f.attempt(h.id(), &request());
    assert!(matches!(result, Err(ResolveError::Provider { .. })));
    let r = only(records);
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.decision, Some(Effect::Allow));
    assert_eq!(r.error_kind, Some(ErrorKind::Provider));
    assert_eq!(r.version, None);
    f.provider.set_plan(FaultPlan::none());
    assert!(f.attempt(h.id(), &request()).0.is_ok());
}

/// A sink that always fails.
#[derive(Debug)]
struct FailingSink;

impl AuditSink for FailingSink {
    fn record(&self, _: AuditRecord) -> Result<(), AuditError> {
        Err(AuditError::rejected("disk full (simulated)"))
    }
}

#[test]
fn sink_failure_returns_no_value() {
    for may_block in [false, true] {
        #[derive(Debug)]
        struct Failing(bool);
        impl AuditSink for Failing {
            fn record(&self, r: AuditRecord) -> Result<(), AuditError> {
                FailingSink.record(r)
            }
            fn may_block(&self) -> bool {
                self.0
            }
        }
        let f = Fixture::with_sink(Some(Arc::new(Failing(may_block))), |b| b);
        let h = f.api_key("open/ci", "sk-sink-fail-1");
        let result = f.resolver.resolve(h.id(), &request());
        match result {
            Err(ResolveError::Audit {
                id,
                source: AuditError::Rejected { .. },
            }) => {
                assert_eq!(&id, h.id())
            }
            other => panic!("expected an audit failure, got {other:?}"),
        }
        // Failed and denied attempts fail with the audit error too.
        let denied = f.api_key("forbidden/x", "sk-sink-fail-2");
        assert!(matches!(
            f.resolver.resolve(denied.id(), &request()),
            Err(ResolveError::Audit { .. })
        ));
    }
}

/// A sink that blocks until the test ends.
#[derive(Debug, Default)]
struct HangingSink {
    release: Mutex<bool>,
    released: Condvar,
    entered: AtomicUsize,
}

impl AuditSink for HangingSink {
    fn record(&self, _: AuditRecord) -> Result<(), AuditError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut done = self.release.lock().unwrap();
        while !*done {
            done = self.released.wait(done).unwrap();
        }
        Ok(())
    }
}

#[test]
fn sink_timeout_returns_no_value_and_does_not_hang() {
    let sink = Arc::new(HangingSink::default());
    let f = Fixture::with_sink(Some(sink.clone()), |b| {
        b.audit_timeout(Duration::from_millis(200))
    });
    let h = f.api_key("open/ci", "sk-sink-timeout-1");
    let started = Instant::now();
    let result = f.resolver.resolve(h.id(), &request());
    assert!(matches!(
        result,
        Err(ResolveError::Audit {
            source: AuditError::Timeout { .. },
            ..
        })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "resolve did not hang"
    );
    *sink.release.lock().unwrap() = true;
    sink.released.notify_all();
}

#[test]
fn redactor_sees_every_value_and_a_refusal_fails_closed() {
    let redactor = Redactor::with_min_value_len(8);
    let f = Fixture::with_sink(None, |b| b.redactor(redactor.clone()));
    let long = f.api_key("open/ci", "sk-long-enough-1");
    let short = f.api_key("open/ci2", "short");
    assert!(f.attempt(long.id(), &request()).0.is_ok());
    assert_eq!(
        redactor.redact_str("echo sk-long-enough-1").as_str(),
        format!("echo [{}]", long.id())
    );
    let (result, records) = f.attempt(short.id(), &request());
    assert!(matches!(result, Err(ResolveError::Redaction { .. })));
    let r = only(records);
    assert_eq!(r.error_kind, Some(ErrorKind::Redaction));
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        redactor.value_count(),
        1,
        "the refused value is not registered"
    );
}

#[test]
fn resolver_owns_a_redactor_by_default_and_hands_out_that_one() {
    let f = Fixture::new();
    let h = f.api_key("open/ci", "sk-default-redactor-1");
    let first = f.resolver.redactor().expect("redaction is on by default");
    assert!(f.attempt(h.id(), &request()).0.is_ok());
    let again = f.resolver.redactor().unwrap();
    for redactor in [first, again] {
        assert_eq!(
            redactor.redact_str("got sk-default-redactor-1").as_str(),
            format!("got [{}]", h.id())
        );
    }
    let off = Fixture::with_sink(None, |b| b.without_redaction());
    assert!(off.resolver.redactor().is_none());
    let h = off.api_key("open/ci", "short");
    assert!(
        off.attempt(h.id(), &request()).0.is_ok(),
        "no redactor, no refusal"
    );
}

#[test]
fn file_audit_log_holds_every_attempt_verifies_and_fingerprints_match() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let chain_key = || AuditChainKey::new(SecretBytes::from(vec![3u8; 32])).unwrap();
    let fp_key = || FingerprintKey::new(SecretBytes::from(vec![4u8; 32])).unwrap();
    let sink: Arc<dyn AuditSink> = Arc::new(JsonLinesAuditSink::open(&path, chain_key()).unwrap());
    let f = Fixture::with_sink(Some(sink), |b| b.fingerprint_key(fp_key()));
    let ok = f.api_key("open/ci", "sk-file-audit-CANARY-1");
    let denied = f.api_key("forbidden/x", "sk-file-audit-CANARY-2");
    assert!(f.resolver.resolve(ok.id(), &request()).is_ok());
    assert!(f.resolver.resolve(denied.id(), &request()).is_err());

    let head = verify_audit_log(&path, &chain_key(), None).unwrap();
    assert_eq!(head.seq, 2);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("CANARY"), "the audit log holds no value");
    let records: Vec<AuditRecord> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["entry"]["record"].clone()).unwrap()
        })
        .collect();
    let value = SecretBytes::from(b"sk-file-audit-CANARY-1".to_vec());
    assert!(fp_key().matches(&records[0], &value));
    assert!(!fp_key().matches(
        &records[0],
        &SecretBytes::from(b"sk-file-audit-CANARY-2".to_vec())
    ));
    assert_eq!(
        records[1].fingerprint, None,
        "a denied attempt read no value"
    );
}

#[test]
fn concurrent_resolves_through_the_file_log_keep_one_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let chain_key = || AuditChainKey::new(SecretBytes::from(vec![5u8; 32])).unwrap();
    let sink: Arc<dyn AuditSink> = Arc::new(JsonLinesAuditSink::open(&path, chain_key()).unwrap());
    let f = Fixture::with_sink(Some(sink), |b| b);
    let ok = f.api_key("open/ci", "sk-concurrent-value-1");
    let denied = f.api_key("forbidden/x", "sk-concurrent-value-2");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (f, ok, denied) = (&f, &ok, &denied);
            scope.spawn(move || {
                for i in 0..25 {
                    let id = if (t + i) % 3 == 0 {
                        denied.id()
                    } else {
                        ok.id()
                    };
                    let result = f.resolver.resolve(id, &request());
                    assert_eq!(result.is_ok(), id == ok.id());
                }
            });
        }
    });
    let head = verify_audit_log(&path, &chain_key(), None).unwrap();
    assert_eq!(head.seq, 100, "one record per attempt, none lost");
}
