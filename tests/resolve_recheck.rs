//! A revoke or an expiry that lands while a resolve is in flight — during
//! the provider read or the audit write — stops the hand-over: the resolver
//! checks the catalog again after its audit record is durable, fails closed
//! with `Revoked` or `Expired`, and records why.
//!
//! The races are set up with real threads and a slow read from the
//! testkit's `FaultyProvider`. No test asserts a duration: each checks that
//! its precondition held (the revoke returned while the read was still in
//! flight; the read finished after the expiry) and then asserts the
//! outcome. On a machine too loaded for the precondition to hold, an
//! attempt is repeated with longer delays.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tyrum_secrets::{
    Action, AdminRequest, AuditError, AuditRecord, AuditSink, Catalog, ErrorKind, KindSpec,
    Locator, MemoryAuditSink, MemoryCatalogStore, MemoryProvider, NewSecret, Outcome,
    ProviderError, ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver,
    RulePolicy, Scope, SecretAdmin, SecretBytes, SecretHandle, SecretKind, SecretProvider,
    Timestamp, VersionSelector, VersionedSecret,
};
use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

/// A provider that notes when each read has finished, so a test can tell
/// whether something happened while a read was still in flight.
#[derive(Debug, Default)]
struct Watched {
    inner: MemoryProvider,
    finished_reads: AtomicU64,
    last_finished_at: Mutex<Option<Timestamp>>,
}

impl SecretProvider for Watched {
    fn capabilities(&self) -> tyrum_secrets::Capabilities {
        self.inner.capabilities()
    }
    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let result = self.inner.read(locator, version);
        *self.last_finished_at.lock().unwrap() = Some(Timestamp::now());
        self.finished_reads.fetch_add(1, Ordering::SeqCst);
        result
    }
    fn write(
        &self,
        locator: &Locator,
        value: &SecretBytes,
    ) -> Result<tyrum_secrets::Version, ProviderError> {
        self.inner.write(locator, value)
    }
}

struct Fixture {
    provider: Arc<FaultyProvider<Watched>>,
    records: Arc<MemoryAuditSink>,
    resolver: Resolver,
    admin: SecretAdmin,
}

fn fixture() -> Fixture {
    let records = Arc::new(MemoryAuditSink::new());
    fixture_with_sink(records.clone(), records)
}

fn fixture_with_sink(sink: Arc<dyn AuditSink>, records: Arc<MemoryAuditSink>) -> Fixture {
    let provider = Arc::new(FaultyProvider::new(Watched::default(), FaultPlan::none()));
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new()).with_shared_provider(
            ProviderId::new("memory").unwrap(),
            provider.clone() as Arc<dyn SecretProvider>,
        ),
    );
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "open", "effect": "allow", "secret": "memory:open/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink)
        .audit_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    // The admin records to a sink of its own: `records` holds resolves only.
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new()))
        .redactor(resolver.redactor().unwrap().clone())
        .build()
        .unwrap();
    Fixture {
        provider,
        records,
        resolver,
        admin,
    }
}

impl Fixture {
    fn create(&self, kind: KindSpec, value: &str) -> SecretHandle {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new("open/recheck").unwrap(),
            kind,
        );
        self.admin
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()), &by())
            .unwrap()
    }

    fn reads_finished(&self) -> u64 {
        self.provider.inner().finished_reads.load(Ordering::SeqCst)
    }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("ops-alice").unwrap(),
        Purpose::new("key leaked").unwrap(),
    )
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("agent-1")
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("call the api").unwrap(),
    )
}

/// Waits (polling, bounded) until `what` holds.
fn wait_until(what: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !what() {
        assert!(
            Instant::now() < deadline,
            "the other thread never got there"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The two records of an attempt stopped by the re-check: `resolved` first
/// (durable before the re-check), then `failed` with the reason, same
/// request.
fn assert_stopped_by_recheck(records: &[AuditRecord], kind: ErrorKind) {
    assert_eq!(records.len(), 2, "{records:?}");
    let (first, second) = (&records[0], &records[1]);
    assert_eq!(first.action, Action::Resolve);
    assert_eq!(first.outcome, Outcome::Resolved);
    assert_eq!(second.outcome, Outcome::Failed);
    assert_eq!(second.error_kind, Some(kind));
    assert_eq!(first.request_id, second.request_id);
    assert_eq!(first.version, second.version, "the read happened");
}

#[test]
fn revoke_returning_while_the_read_is_in_flight_stops_the_hand_over() {
    for read_delay_ms in [1_000, 4_000, 15_000] {
        let f = fixture();
        let h = f.create(
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
            "sk-recheck-revoke-1",
        );
        f.provider
            .set_plan(FaultPlan::delay_all(Duration::from_millis(read_delay_ms)));
        let (calls, finished) = (f.provider.calls(), f.reads_finished());
        let (result, revoked_mid_read) = std::thread::scope(|s| {
            let resolving = s.spawn(|| {
                f.resolver
                    .resolve(h.id(), &request())
                    .map(|secret| secret.version())
            });
            // The read has started (and sleeps in the provider).
            wait_until(|| f.provider.calls() > calls);
            f.admin.revoke(h.id(), &by()).unwrap();
            let revoked_mid_read = f.reads_finished() == finished;
            (resolving.join().unwrap(), revoked_mid_read)
        });
        if !revoked_mid_read {
            eprintln!("the revoke took longer than a {read_delay_ms} ms read; retrying");
            continue;
        }
        assert!(
            matches!(result, Err(ResolveError::Revoked { .. })),
            "a value was handed out after its revoke returned: {result:?}"
        );
        assert_stopped_by_recheck(&f.records.records(), ErrorKind::Revoked);
        return;
    }
    panic!("the machine was too slow to set the race up; nothing was tested");
}

#[test]
fn expiring_cookie_behind_a_slow_read_is_not_handed_out_after_its_expiry() {
    for (expires_in_ms, read_delay_ms) in [(300, 1_500), (2_000, 6_000), (8_000, 20_000)] {
        let f = fixture();
        let expires_at = Timestamp::now().saturating_add(Duration::from_millis(expires_in_ms));
        let h = f.create(
            KindSpec::session_cookie(expires_at),
            "session=recheck-expiry-1",
        );
        f.provider
            .set_plan(FaultPlan::delay_all(Duration::from_millis(read_delay_ms)));
        let calls = f.provider.calls();
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                f.resolver
                    .resolve(h.id(), &request())
                    .map(|secret| secret.version())
            })
            .join()
            .unwrap()
        });
        let read_started = f.provider.calls() > calls;
        let read_finished_after_expiry = f
            .provider
            .inner()
            .last_finished_at
            .lock()
            .unwrap()
            .is_some_and(|at| at >= expires_at);
        if !read_started || !read_finished_after_expiry {
            eprintln!("the setup missed the window ({expires_in_ms} ms expiry); retrying");
            continue;
        }
        assert!(
            matches!(result, Err(ResolveError::Expired { .. })),
            "a cookie was handed out after its expiry: {result:?}"
        );
        assert_stopped_by_recheck(&f.records.records(), ErrorKind::Expired);
        return;
    }
    panic!("the machine was too slow to set the race up; nothing was tested");
}

/// A sink that holds the first `resolved` record until released, telling
/// the test when it has it.
#[derive(Debug)]
struct HoldResolved {
    inner: Arc<MemoryAuditSink>,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

impl AuditSink for HoldResolved {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        if record.outcome == Outcome::Resolved
            && let Some(entered) = self.entered.lock().unwrap().take()
        {
            let release = self.release.lock().unwrap().take().unwrap();
            entered.send(()).unwrap();
            release.recv().unwrap();
        }
        self.inner.record(record)
    }
}

#[test]
fn revoke_while_the_audit_write_is_in_flight_stops_the_hand_over() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let records = Arc::new(MemoryAuditSink::new());
    let sink = Arc::new(HoldResolved {
        inner: records.clone(),
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    let f = fixture_with_sink(sink, records);
    let h = f.create(
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        "sk-recheck-audit-1",
    );
    let result = std::thread::scope(|s| {
        let resolving = s.spawn(|| {
            f.resolver
                .resolve(h.id(), &request())
                .map(|secret| secret.version())
        });
        entered.recv().unwrap(); // the `resolved` record is being written
        f.admin.revoke(h.id(), &by()).unwrap();
        release.send(()).unwrap();
        resolving.join().unwrap()
    });
    assert!(
        matches!(result, Err(ResolveError::Revoked { .. })),
        "{result:?}"
    );
    assert_stopped_by_recheck(&f.records.records(), ErrorKind::Revoked);
}

#[test]
fn a_resolve_that_nothing_interrupts_writes_one_record_and_hands_over() {
    let f = fixture();
    let h = f.create(
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        "sk-recheck-plain-1",
    );
    assert!(f.resolver.resolve(h.id(), &request()).is_ok());
    let records = f.records.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Resolved);
}
