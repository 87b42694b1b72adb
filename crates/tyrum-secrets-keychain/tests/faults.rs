//! Store failures reach the caller as typed errors that carry no value, and
//! a failure at any point of an operation leaves earlier versions intact.
//!
//! Two ways of failing: keyring-core's mock store told to fail (its
//! `Cred::set_error`), and a wrapper store that fails exactly the N-th store
//! call, so every step of every operation is hit.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a test failure"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, CredentialPersistence, Entry, Error as StoreError, mock};
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, Version, VersionSelector,
};
use tyrum_secrets_keychain::{CredentialStore, KeychainProvider};

const CANARY: &[u8] = b"CANARY-fault-3d9b1f0a77";

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::from(bytes.to_vec())
}

fn locator(name: &str) -> Locator {
    Locator::new(name).expect("valid locator")
}

/// A D-Bus transport failure as the Secret Service store reports it.
#[derive(Debug)]
struct FakeDbusError;
impl std::fmt::Display for FakeDbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "DBus error: The name org.freedesktop.secrets was not provided by any .service files",
        )
    }
}
impl std::error::Error for FakeDbusError {}

/// A store error kind: its name, how to make one, and the provider error it
/// must become.
type ErrorCase = (&'static str, fn() -> StoreError, fn(&ProviderError) -> bool);

/// Every kind of store error.
fn error_cases() -> Vec<ErrorCase> {
    vec![
        (
            "NoStorageAccess",
            || StoreError::NoStorageAccess("collection is locked".into()),
            |e| matches!(e, ProviderError::PermissionDenied { .. }),
        ),
        (
            "PlatformFailure (D-Bus)",
            || StoreError::PlatformFailure(Box::new(FakeDbusError)),
            |e| matches!(e, ProviderError::Unavailable { .. }),
        ),
        (
            "PlatformFailure (other)",
            || StoreError::PlatformFailure("quota exceeded".into()),
            |e| matches!(e, ProviderError::Backend { .. }),
        ),
        (
            "BadEncoding",
            || StoreError::BadEncoding(CANARY.to_vec()),
            |e| matches!(e, ProviderError::Corrupt { .. }),
        ),
        (
            "BadDataFormat",
            || StoreError::BadDataFormat(CANARY.to_vec(), "bad".into()),
            |e| matches!(e, ProviderError::Corrupt { .. }),
        ),
        (
            "BadStoreFormat",
            || StoreError::BadStoreFormat("truncated".into()),
            |e| matches!(e, ProviderError::Corrupt { .. }),
        ),
        (
            "Ambiguous",
            || StoreError::Ambiguous(Vec::new()),
            |e| matches!(e, ProviderError::Corrupt { .. }),
        ),
        (
            "TooLong",
            || StoreError::TooLong("secret".into(), 2560),
            |e| matches!(e, ProviderError::Backend { .. }),
        ),
        (
            "Invalid",
            || StoreError::Invalid("secret".into(), "rejected".into()),
            |e| matches!(e, ProviderError::Backend { .. }),
        ),
        (
            "NotSupportedByStore",
            || StoreError::NotSupportedByStore("no".into()),
            |e| matches!(e, ProviderError::Backend { .. }),
        ),
    ]
}

type Op = fn(&KeychainProvider, &Locator) -> Result<(), ProviderError>;

fn operations() -> Vec<(&'static str, Op)> {
    vec![
        ("read latest", |p, l| {
            p.read(l, VersionSelector::Latest).map(drop)
        }),
        ("read exact", |p, l| {
            p.read(l, VersionSelector::Exact(Version::FIRST)).map(drop)
        }),
        ("write", |p, l| {
            p.write(l, &secret(b"a-third-value-333")).map(drop)
        }),
        ("delete", |p, l| p.delete(l, Version::FIRST)),
        ("destroy", |p, l| p.destroy(l, Version::FIRST)),
        ("list", |p, _| p.list().map(drop)),
        ("versions", |p, l| p.versions(l).map(drop)),
    ]
}

fn mock_creds(store: &mock::Store) -> Vec<Arc<mock::Cred>> {
    store
        .inner
        .lock()
        .expect("mock store lock")
        .borrow()
        .iter()
        .cloned()
        .collect()
}

fn clear_errors(store: &mock::Store) {
    for cred in mock_creds(store) {
        cred.inner
            .lock()
            .expect("mock cred lock")
            .borrow_mut()
            .error = None;
    }
}

#[test]
fn every_mock_store_failure_reaches_the_caller_as_a_typed_error() {
    for (kind, make_error, expected) in error_cases() {
        for (op_name, op) in operations() {
            let store = mock::Store::new().expect("mock store");
            let dyn_store: Arc<CredentialStore> = store.clone();
            let provider = KeychainProvider::new(dyn_store).expect("provider");
            let l = locator("faults/api-key");
            provider.write(&l, &secret(CANARY)).expect("first write");
            provider
                .write(&l, &secret(b"second-value-2222"))
                .expect("second write");

            for cred in mock_creds(&store) {
                cred.set_error(make_error());
            }
            let result = op(&provider, &l);
            let err = match result {
                Err(err) => err,
                Ok(()) => {
                    panic!("{op_name} succeeded although every item was told to fail ({kind})")
                }
            };
            assert!(
                expected(&err),
                "{op_name} with {kind} gave the wrong error: {err:?}"
            );
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("CANARY-fault"),
                "{op_name} with {kind}: the error shows a value: {shown}"
            );

            clear_errors(&store);
            let latest = provider
                .read(&l, VersionSelector::Latest)
                .unwrap_or_else(|e| panic!("after {op_name} failed with {kind}, read failed: {e}"));
            assert_eq!(
                latest.value.expose_secret(),
                b"second-value-2222",
                "a failed {op_name} ({kind}) changed the latest value"
            );
        }
    }
}

/// A store over the mock that fails exactly the N-th credential call.
#[derive(Debug)]
struct FailNth {
    inner: Arc<mock::Store>,
    calls: Arc<AtomicUsize>,
    fail_at: Arc<AtomicUsize>,
    persistence_durable: bool,
}

struct CountedCred {
    inner: Entry,
    calls: Arc<AtomicUsize>,
    fail_at: Arc<AtomicUsize>,
}

impl CountedCred {
    fn tick(&self) -> keyring_core::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n == self.fail_at.load(Ordering::SeqCst) {
            Err(StoreError::PlatformFailure("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

impl CredentialApi for CountedCred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        self.tick()?;
        self.inner.set_secret(secret)
    }
    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.tick()?;
        self.inner.get_secret()
    }
    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.tick()?;
        self.inner.delete_credential()
    }
    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        self.tick()?;
        Ok(None)
    }
    fn get_specifiers(&self) -> Option<(String, String)> {
        self.inner.get_specifiers()
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn debug_fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CountedCred")
    }
}

impl CredentialStoreApi for FailNth {
    fn vendor(&self) -> String {
        "fail-nth test store".to_owned()
    }
    fn id(&self) -> String {
        self.inner.id()
    }
    fn build(
        &self,
        service: &str,
        user: &str,
        modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        let inner = self.inner.build(service, user, modifiers)?;
        Ok(Entry::new_with_credential(Arc::new(CountedCred {
            inner,
            calls: Arc::clone(&self.calls),
            fail_at: Arc::clone(&self.fail_at),
        })))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn persistence(&self) -> CredentialPersistence {
        if self.persistence_durable {
            CredentialPersistence::UntilDelete
        } else {
            CredentialPersistence::ProcessOnly
        }
    }
}

struct Harness {
    store: Arc<FailNth>,
    provider: KeychainProvider,
}

impl Harness {
    fn new(chunk_len: usize) -> Self {
        let store = Arc::new(FailNth {
            inner: mock::Store::new().expect("mock store"),
            calls: Arc::new(AtomicUsize::new(0)),
            fail_at: Arc::new(AtomicUsize::new(usize::MAX)),
            persistence_durable: false,
        });
        let dyn_store: Arc<CredentialStore> = store.clone();
        let provider = KeychainProvider::builder(dyn_store)
            .chunk_len(chunk_len)
            .build()
            .expect("provider");
        Self { store, provider }
    }

    /// Runs `op` counting its store calls, with no failure.
    fn count(&self, op: impl FnOnce(&KeychainProvider)) -> usize {
        let before = self.store.calls.load(Ordering::SeqCst);
        op(&self.provider);
        self.store.calls.load(Ordering::SeqCst) - before
    }

    fn fail_call(&self, offset: usize) {
        let now = self.store.calls.load(Ordering::SeqCst);
        self.store.fail_at.store(now + offset, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.store.fail_at.store(usize::MAX, Ordering::SeqCst);
    }
}

fn long_value(tag: u8) -> Vec<u8> {
    (0..300u32).map(|i| (i as u8) ^ tag).collect()
}

/// Writes two versions (split across items) and returns the harness.
fn seeded(l: &Locator) -> (Harness, Vec<(Version, Vec<u8>)>) {
    let h = Harness::new(100);
    let mut written = Vec::new();
    for tag in [1u8, 2] {
        let value = long_value(tag);
        let v = h.provider.write(l, &secret(&value)).expect("seed write");
        written.push((v, value));
    }
    (h, written)
}

fn assert_intact(h: &Harness, l: &Locator, written: &[(Version, Vec<u8>)], context: &str) {
    for (v, value) in written {
        let got = h
            .provider
            .read(l, VersionSelector::Exact(*v))
            .unwrap_or_else(|e| panic!("{context}: {v} no longer reads: {e}"));
        assert!(
            got.value.expose_secret() == value.as_slice(),
            "{context}: {v} reads another value"
        );
    }
}

#[test]
fn a_failure_at_any_step_of_a_write_loses_no_acknowledged_version() {
    let l = locator("faults/write");
    let calls = {
        let (h, _) = seeded(&l);
        h.count(|p| {
            p.write(&l, &secret(&long_value(3))).expect("write");
        })
    };
    assert!(calls > 3, "a chunked write makes several store calls");
    let mut failures = 0;
    for step in 0..calls {
        let (h, mut written) = seeded(&l);
        h.fail_call(step);
        let result = h.provider.write(&l, &secret(&long_value(3)));
        h.heal();
        assert_intact(&h, &l, &written, &format!("failure at write call {step}"));
        // An error means the write did not happen; success means it did.
        // Only clean-up after the point of no return may fail silently.
        let latest = h
            .provider
            .read(&l, VersionSelector::Latest)
            .expect("latest");
        match result {
            Err(ProviderError::Backend { .. }) => {
                failures += 1;
                assert!(
                    latest.value.expose_secret() == long_value(2).as_slice(),
                    "write failed at call {step} of {calls}, yet its value is the latest"
                );
            }
            Ok(v) => {
                assert_eq!(latest.version, v);
                assert!(latest.value.expose_secret() == long_value(3).as_slice());
                written.push((v, long_value(3)));
            }
            Err(e) => panic!("failure at call {step} of {calls}: {e:?}"),
        }
        // A retry gets a fresh version and every version reads its own value.
        let v = h
            .provider
            .write(&l, &secret(&long_value(4)))
            .expect("retry");
        assert!(written.iter().all(|(old, _)| *old < v));
        written.push((v, long_value(4)));
        assert_intact(&h, &l, &written, &format!("retry after write call {step}"));
    }
    assert!(
        failures * 2 > calls,
        "most store calls of a write must report their failure ({failures} of {calls})"
    );
}

#[test]
fn a_failure_at_any_step_of_delete_or_destroy_keeps_other_versions() {
    let l = locator("faults/delete");
    for destroy in [false, true] {
        let name = if destroy { "destroy" } else { "delete" };
        let run = |p: &KeychainProvider, v: Version| {
            if destroy {
                p.destroy(&l, v)
            } else {
                p.delete(&l, v)
            }
        };
        let calls = {
            let (h, written) = seeded(&l);
            h.count(|p| run(p, written[0].0).expect("remove"))
        };
        for step in 0..calls {
            let (h, written) = seeded(&l);
            let (target, target_value) = written[0].clone();
            h.fail_call(step);
            let result = run(&h.provider, target);
            h.heal();
            if let Err(e) = &result {
                assert!(
                    matches!(e, ProviderError::Backend { .. }),
                    "{name}: failure at call {step} of {calls}: {e:?}"
                );
            }
            assert_intact(
                &h,
                &l,
                &written[1..],
                &format!("{name} failed at call {step}"),
            );
            // The target either still reads its own value or is gone; it is
            // never torn, and retrying finishes the job.
            match h.provider.read(&l, VersionSelector::Exact(target)) {
                Ok(got) => {
                    assert!(
                        result.is_err(),
                        "{name} succeeded but the version still reads"
                    );
                    assert!(got.value.expose_secret() == target_value.as_slice());
                }
                Err(ProviderError::VersionNotFound { .. } | ProviderError::Corrupt { .. }) => {}
                Err(e) => panic!("{name} failed at call {step}: reading the target gave {e}"),
            }
            match run(&h.provider, target) {
                Ok(()) | Err(ProviderError::VersionNotFound { .. }) => {}
                Err(e) => panic!("{name} retry after call {step} failed: {e}"),
            }
            assert!(matches!(
                h.provider.read(&l, VersionSelector::Exact(target)),
                Err(ProviderError::VersionNotFound { .. })
            ));
        }
    }
}

#[test]
fn a_store_that_panics_gives_a_typed_error() {
    #[derive(Debug)]
    struct Panicking;
    impl CredentialStoreApi for Panicking {
        fn vendor(&self) -> String {
            "panicking test store".to_owned()
        }
        fn id(&self) -> String {
            "panicking".to_owned()
        }
        fn build(
            &self,
            _: &str,
            _: &str,
            _: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            panic!("the store broke (test)")
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }
    let provider = KeychainProvider::new(Arc::new(Panicking)).expect("provider");
    let result = provider.read(&locator("any"), VersionSelector::Latest);
    assert!(
        matches!(result, Err(ProviderError::Backend { .. })),
        "{result:?}"
    );
}

#[test]
fn a_store_that_hangs_times_out_with_a_typed_error() {
    #[derive(Debug)]
    struct Hanging;
    impl CredentialStoreApi for Hanging {
        fn vendor(&self) -> String {
            "hanging test store".to_owned()
        }
        fn id(&self) -> String {
            "hanging".to_owned()
        }
        fn build(
            &self,
            _: &str,
            _: &str,
            _: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            // Like a D-Bus call waiting on an unlock prompt nobody answers.
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Err(StoreError::NoEntry)
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }
    let provider = KeychainProvider::builder(Arc::new(Hanging))
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .expect("provider");
    let started = std::time::Instant::now();
    let result = provider.write(&locator("any"), &secret(CANARY));
    match &result {
        Err(e @ ProviderError::Unavailable { message }) => {
            assert!(message.contains("did not answer"), "{e}");
            assert!(!format!("{e:?}").contains("CANARY-fault"));
        }
        other => panic!("a hanging store gave {other:?}"),
    }
    // Generous bound: only "does not hang".
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn file_store_key_is_created_once_and_returned_after() {
    let store = Arc::new(FailNth {
        inner: mock::Store::new().expect("mock store"),
        calls: Arc::new(AtomicUsize::new(0)),
        fail_at: Arc::new(AtomicUsize::new(usize::MAX)),
        persistence_durable: true,
    });
    let dyn_store: Arc<CredentialStore> = store.clone();
    let first = tyrum_secrets_keychain::load_or_create_file_store_key(&dyn_store, "file-store")
        .expect("created");
    let again = tyrum_secrets_keychain::load_or_create_file_store_key(&dyn_store, "file-store")
        .expect("loaded");
    assert_eq!(first.expose_secret(), again.expose_secret());
    assert_ne!(
        first.expose_secret(),
        &[0u8; 32],
        "the key is random, not zero"
    );
    let other = tyrum_secrets_keychain::load_or_create_file_store_key(&dyn_store, "other-store")
        .expect("created");
    assert_ne!(first.expose_secret(), other.expose_secret());
    let loaded = tyrum_secrets_keychain::FileStoreKeySource::new(dyn_store.clone(), "file-store")
        .expect("source")
        .load()
        .expect("load without create");
    assert_eq!(first.expose_secret(), loaded.expose_secret());

    // A failing keychain is a typed error, not a fresh key.
    store
        .fail_at
        .store(store.calls.load(Ordering::SeqCst), Ordering::SeqCst);
    let failed = tyrum_secrets_keychain::load_or_create_file_store_key(&dyn_store, "file-store");
    assert!(matches!(
        failed,
        Err(tyrum_secrets_keychain::KeychainError::Store { .. })
    ));
}

#[test]
fn file_store_key_is_refused_in_a_store_that_forgets() {
    let store: Arc<CredentialStore> = mock::Store::new().expect("mock store");
    let result = tyrum_secrets_keychain::load_or_create_file_store_key(&store, "file-store");
    assert!(matches!(
        result,
        Err(tyrum_secrets_keychain::KeychainError::NotDurable { .. })
    ));
    let source = tyrum_secrets_keychain::FileStoreKeySource::new(store.clone(), "file-store")
        .expect("source")
        .dangerous_allow_non_durable();
    assert!(matches!(
        source.load(),
        Err(tyrum_secrets_keychain::KeychainError::NotFound { .. })
    ));
    let key = source.load_or_create().expect("allowed explicitly");
    assert_eq!(
        key.expose_secret(),
        source.load().expect("now exists").expose_secret()
    );
}

#[test]
fn file_store_key_rejects_an_item_it_did_not_write() {
    let store = mock::Store::new().expect("mock store");
    store
        .build(tyrum_secrets_keychain::FILE_KEY_SERVICE, "file-store", None)
        .expect("entry")
        .set_secret(CANARY)
        .expect("planted");
    let dyn_store: Arc<CredentialStore> = store;
    let result = tyrum_secrets_keychain::FileStoreKeySource::new(dyn_store, "file-store")
        .expect("source")
        .dangerous_allow_non_durable()
        .load_or_create();
    match result {
        Err(e @ tyrum_secrets_keychain::KeychainError::Corrupt { .. }) => {
            assert!(!format!("{e} {e:?}").contains("CANARY-fault"));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a planted item was taken as the key"),
    }
}

#[test]
fn values_over_the_limit_are_refused_naming_the_limit() {
    let store: Arc<CredentialStore> = mock::Store::new().expect("mock store");
    let provider = KeychainProvider::builder(store)
        .max_value_len(1000)
        .build()
        .expect("provider");
    assert_eq!(provider.capabilities().max_value_len, Some(1000));
    let result = provider.write(&locator("big"), &secret(&[7u8; 1001]));
    match result {
        Err(
            e @ ProviderError::ValueTooLarge {
                len: 1001,
                max: 1000,
            },
        ) => {
            assert!(e.to_string().contains("1000"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_configuration_is_refused() {
    let store = || -> Arc<CredentialStore> { mock::Store::new().expect("mock store") };
    for namespace in [
        "",
        "has#hash",
        "has@at",
        "has.dot",
        "has space",
        &"x".repeat(65),
    ] {
        assert!(
            KeychainProvider::builder(store())
                .namespace(namespace)
                .build()
                .is_err(),
            "namespace {namespace:?} was accepted"
        );
    }
    assert!(
        KeychainProvider::builder(store())
            .chunk_len(10)
            .build()
            .is_err()
    );
    assert!(
        KeychainProvider::builder(store())
            .timeout(std::time::Duration::ZERO)
            .build()
            .is_err()
    );
}

#[test]
fn provider_and_errors_debug_show_no_value() {
    let store: Arc<CredentialStore> = mock::Store::new().expect("mock store");
    let provider = KeychainProvider::new(store).expect("provider");
    let l = locator("canary/debug");
    provider.write(&l, &secret(CANARY)).expect("write");
    let shown = format!("{provider:?} {provider:#?}");
    assert!(!shown.contains("CANARY-fault"), "{shown}");
    let missing = provider
        .read(
            &l,
            VersionSelector::Exact(Version::new(9).expect("nonzero")),
        )
        .expect_err("missing version");
    assert!(!format!("{missing} {missing:?}").contains("CANARY-fault"));
}

#[test]
fn bookkeeping_items_hold_no_value_bytes() {
    let store = mock::Store::new().expect("mock store");
    let dyn_store: Arc<CredentialStore> = store.clone();
    let provider = KeychainProvider::new(dyn_store).expect("provider");
    let l = locator("canary/bookkeeping");
    provider.write(&l, &secret(CANARY)).expect("write");
    let mut value_items = 0;
    for cred in mock_creds(&store) {
        let (service, _) = cred.specifiers.clone();
        let bytes = cred
            .inner
            .lock()
            .expect("mock cred lock")
            .borrow()
            .secret
            .clone()
            .unwrap_or_default();
        let holds_canary = bytes.windows(CANARY.len()).any(|w| w == CANARY);
        if service.ends_with("#index") || service.ends_with("#locators") {
            assert!(!holds_canary, "{service} holds the value");
        } else if holds_canary {
            value_items += 1;
        }
    }
    assert_eq!(
        value_items, 1,
        "the value lives in exactly one version item"
    );
}

#[test]
fn persistence_is_reported_and_warned_about() {
    let forgetful: Arc<CredentialStore> = mock::Store::new().expect("mock store");
    let provider = KeychainProvider::new(forgetful).expect("provider");
    assert_eq!(
        provider.capabilities().persistence,
        tyrum_secrets_core::Persistence::Process
    );
    assert!(provider.persistence_warning().is_some());

    let durable: Arc<CredentialStore> = Arc::new(FailNth {
        inner: mock::Store::new().expect("mock store"),
        calls: Arc::new(AtomicUsize::new(0)),
        fail_at: Arc::new(AtomicUsize::new(usize::MAX)),
        persistence_durable: true,
    });
    let provider = KeychainProvider::new(durable).expect("provider");
    assert_eq!(
        provider.capabilities().persistence,
        tyrum_secrets_core::Persistence::Durable
    );
    assert_eq!(provider.persistence_warning(), None);
    assert!(
        tyrum_secrets_keychain::persistence_warning(tyrum_secrets_core::Persistence::UntilReboot)
            .is_some_and(|w| w.contains("reboot"))
    );
}

/// Threads of this process named like the provider's workers.
fn keychain_worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == "tyrum-keychain")
        })
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn calls_that_time_out_behind_a_hung_call_leave_no_thread_behind() {
    #[derive(Debug)]
    struct HangsOnce(std::sync::atomic::AtomicBool);
    impl CredentialStoreApi for HangsOnce {
        fn vendor(&self) -> String {
            "hangs-once test store".to_owned()
        }
        fn id(&self) -> String {
            "hangs-once".to_owned()
        }
        fn build(
            &self,
            _: &str,
            _: &str,
            _: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            // The first call waits on an unlock prompt nobody answers (for
            // the length of the test); it holds the namespace lock.
            if !self.0.swap(true, Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_secs(30));
            }
            Err(StoreError::NoEntry)
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }
    let provider = KeychainProvider::builder(Arc::new(HangsOnce(Default::default())))
        .namespace("hangs-once")
        .timeout(std::time::Duration::from_millis(20))
        .build()
        .expect("provider");
    let before = keychain_worker_threads();
    const CALLS: usize = 40;
    for _ in 0..CALLS {
        let result = provider.read(&locator("any"), VersionSelector::Latest);
        assert!(
            matches!(result, Err(ProviderError::Unavailable { .. })),
            "{result:?}"
        );
    }
    // Workers that gave up exit promptly; only the hung call's own thread
    // (and a few of other tests running meanwhile) may remain.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut extra = keychain_worker_threads().saturating_sub(before);
    while extra > 10 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        extra = keychain_worker_threads().saturating_sub(before);
    }
    assert!(
        extra <= 10,
        "{extra} worker threads of {CALLS} timed-out calls are still waiting for the lock"
    );
}

#[test]
fn an_interrupted_destroy_of_the_latest_version_leaves_latest_readable() {
    let l = locator("faults/destroy-latest");
    let calls = {
        let (h, written) = seeded(&l);
        h.count(|p| p.destroy(&l, written[1].0).expect("destroy"))
    };
    for step in 0..calls {
        let (h, written) = seeded(&l);
        let (target, target_value) = written[1].clone();
        h.fail_call(step);
        let result = h.provider.destroy(&l, target);
        h.heal();
        // Latest is the target while it still reads whole, else the version
        // before it; never an error because half of the target is gone.
        let latest = h
            .provider
            .read(&l, VersionSelector::Latest)
            .unwrap_or_else(|e| {
                panic!("destroy failed at call {step} of {calls}: latest gives {e}")
            });
        if latest.version == target {
            assert!(
                result.is_err(),
                "destroy succeeded but the version still reads"
            );
            assert!(latest.value.expose_secret() == target_value.as_slice());
        } else {
            assert_eq!(latest.version, written[0].0, "failure at call {step}");
            assert!(latest.value.expose_secret() == written[0].1.as_slice());
        }
    }
}

#[test]
fn a_timeout_too_long_to_add_to_now_means_no_deadline() {
    let store: Arc<CredentialStore> = mock::Store::new().expect("mock store");
    let provider = KeychainProvider::builder(store)
        .timeout(std::time::Duration::MAX)
        .build()
        .expect("provider");
    let l = locator("no-deadline");
    let v = provider
        .write(&l, &secret(b"value-without-deadline"))
        .expect("write");
    let got = provider.read(&l, VersionSelector::Latest).expect("read");
    assert_eq!(got.version, v);
    assert!(got.value.expose_secret() == b"value-without-deadline");
}
