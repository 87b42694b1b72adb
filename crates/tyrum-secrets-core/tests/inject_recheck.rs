//! A multi-handle injection re-checks every handle after the last value is
//! in hand and before anything is injected: a revoke of one handle that
//! lands while a later handle is still being resolved stops the whole
//! injection, and the audit log says why.
//!
//! The race is set up with a provider whose read of the second handle waits
//! for the test to let it go, so the revoke surely lands in between; no
//! test asserts a duration.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tyrum_secrets_core::{
    AdminRequest, Capabilities, Catalog, ErrorKind, HandleId, InjectError, KindSpec, Locator,
    MemoryAuditSink, MemoryCatalogStore, MemoryProvider, NewSecret, Outcome, ProviderError,
    ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver, RulePolicy, Scope,
    SecretAdmin, SecretBytes, SecretHandle, SecretKind, SecretProvider, Version, VersionSelector,
    VersionedSecret,
};

/// A provider whose read of one locator waits until the test releases it.
#[derive(Debug)]
struct Gated {
    inner: MemoryProvider,
    gate: Mutex<Option<Locator>>,
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl SecretProvider for Gated {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        if self.gate.lock().unwrap().as_ref() == Some(locator) {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self
                .release
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(60));
        }
        self.inner.read(locator, version)
    }
    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        self.inner.write(locator, value)
    }
}

struct Fixture {
    provider: Arc<Gated>,
    resolver: Arc<Resolver>,
    admin: SecretAdmin,
    /// Resolve records only: the admin records elsewhere.
    records: Arc<MemoryAuditSink>,
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

fn fixture() -> Fixture {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let provider = Arc::new(Gated {
        inner: MemoryProvider::new(),
        gate: Mutex::new(None),
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
    });
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new()).with_shared_provider(
            ProviderId::new("memory").unwrap(),
            provider.clone() as Arc<dyn SecretProvider>,
        ),
    );
    let records = Arc::new(MemoryAuditSink::new());
    let policy =
        RulePolicy::from_json_str(r#"{"rules":[{"id":"all","effect":"allow","secret":"*"}]}"#)
            .unwrap();
    let resolver = Arc::new(
        Resolver::builder(catalog.clone(), policy, records.clone())
            .build()
            .unwrap(),
    );
    let admin = SecretAdmin::builder(
        catalog,
        Arc::new(MemoryAuditSink::new()),
        resolver.redactor().unwrap(),
    )
    .build()
    .unwrap();
    Fixture {
        provider,
        resolver,
        admin,
        records,
        entered,
        release,
    }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("key leaked").unwrap(),
    )
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha")
            .unwrap()
            .tool("shell.exec")
            .unwrap()
            .tool_call("call-1")
            .unwrap(),
        Purpose::new("run the deploy script").unwrap(),
    )
}

impl Fixture {
    fn create(&self, value: &str) -> SecretHandle {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new("ci").unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        );
        self.admin
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()), &by())
            .unwrap()
    }

    /// Holds the next read of `id` until [`Self::revoke_while_held`].
    fn hold_reads_of(&self, id: &HandleId) {
        *self.provider.gate.lock().unwrap() = Some(self.admin.entry(id).unwrap().locator);
    }

    /// Waits until the held read has started, revokes `id` (the revoke
    /// returns while the read is still held), then lets the read go.
    fn revoke_while_held(&self, id: &HandleId) {
        self.entered
            .recv_timeout(Duration::from_secs(60))
            .expect("the held read never started");
        self.admin.revoke(id, &by()).unwrap();
        self.release.send(()).unwrap();
    }

    /// The resolve records of `id`, as (outcome, error kind).
    fn outcomes(&self, id: &HandleId) -> Vec<(Outcome, Option<ErrorKind>)> {
        self.records
            .records()
            .into_iter()
            .filter(|r| &r.handle_id == id)
            .map(|r| (r.outcome, r.error_kind))
            .collect()
    }
}

fn is_revoked(error: &InjectError, id: &HandleId) -> bool {
    matches!(
        error,
        InjectError::Resolve { id: at, source }
            if at == id && matches!(**source, ResolveError::Revoked { .. })
    )
}

#[test]
fn a_revoke_during_a_later_handles_read_stops_the_whole_injection() {
    let f = fixture();
    let first = f.create("sk-first-to-be-revoked");
    let second = f.create("sk-second-slow-read-01");
    f.hold_reads_of(second.id());

    let worker = {
        let resolver = Arc::clone(&f.resolver);
        let (first, second) = (first.id().clone(), second.id().clone());
        std::thread::spawn(move || {
            let mut cmd = Command::new("true");
            let result = resolver.inject_env(
                &mut cmd,
                [("FIRST", &first), ("SECOND", &second)],
                &request(),
            );
            let set: Vec<String> = cmd
                .get_envs()
                .map(|(k, _)| k.to_string_lossy().into_owned())
                .collect();
            (result, set)
        })
    };
    // `first` has been resolved and re-checked by its own resolve; the
    // revoke lands while `second` is still being read.
    f.revoke_while_held(first.id());
    let (result, set) = worker.join().unwrap();
    let error = result.expect_err("a handle revoked before injection was injected");
    assert!(is_revoked(&error, first.id()), "{error}");
    assert!(set.is_empty(), "variables set despite the error: {set:?}");
    // Its resolve was recorded as resolved; the re-check adds a failed
    // record saying why the value was not handed over.
    assert_eq!(
        f.outcomes(first.id()),
        [
            (Outcome::Resolved, None),
            (Outcome::Failed, Some(ErrorKind::Revoked))
        ]
    );
    let records = f.records.records();
    let ids: Vec<_> = records
        .iter()
        .filter(|r| &r.handle_id == first.id())
        .map(|r| r.request_id.clone())
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "the failed record belongs to the same attempt"
    );
}

#[test]
fn a_revoke_during_a_later_handles_read_stops_json_substitution() {
    let f = fixture();
    let first = f.create("sk-first-json-revoked-1");
    let second = f.create("sk-second-json-slow-01");
    f.hold_reads_of(second.id());

    let worker = {
        let resolver = Arc::clone(&f.resolver);
        let args = json!({"a": first.id().to_string(), "b": second.id().to_string()});
        std::thread::spawn(move || resolver.substitute_json(&args, &request()).map(drop))
    };
    f.revoke_while_held(first.id());
    let error = worker
        .join()
        .unwrap()
        .expect_err("substituted a revoked handle");
    assert!(is_revoked(&error, first.id()), "{error}");
    assert_eq!(
        f.outcomes(first.id()).last(),
        Some(&(Outcome::Failed, Some(ErrorKind::Revoked)))
    );
}

#[test]
fn handles_still_active_after_the_last_read_are_injected() {
    let f = fixture();
    let first = f.create("sk-first-still-active-1");
    let second = f.create("sk-second-still-active");
    let mut cmd = Command::new("true");
    f.resolver
        .inject_env(
            &mut cmd,
            [("FIRST", first.id()), ("SECOND", second.id())],
            &request(),
        )
        .unwrap();
    assert_eq!(cmd.get_envs().count(), 2);
    // One record per handle: the re-check of active handles writes none.
    assert_eq!(f.outcomes(first.id()), [(Outcome::Resolved, None)]);
    assert_eq!(f.outcomes(second.id()), [(Outcome::Resolved, None)]);
}
