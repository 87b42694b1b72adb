use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::audit::{AuditError, AuditRecord, ErrorKind, MemoryAuditSink, Outcome};
use crate::{
    CatalogError, ExposeSecret as _, KindSpec, MemoryCatalogStore, MemoryProvider, ProviderError,
    ProviderId, Purpose, Requester, Scope, SecretKind, SecretProvider, VersionSelector,
};

/// A sink that fails while `failing` is set, recording otherwise.
#[derive(Debug, Default)]
struct SwitchSink {
    failing: AtomicBool,
    records: MemoryAuditSink,
}

impl AuditSink for SwitchSink {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(AuditError::rejected("disk full (simulated)"));
        }
        self.records.record(record)
    }

    fn may_block(&self) -> bool {
        false
    }
}

struct Fixture {
    catalog: Arc<Catalog>,
    provider: Arc<MemoryProvider>,
    sink: Arc<SwitchSink>,
    admin: SecretAdmin,
}

impl Fixture {
    fn new() -> Self {
        let provider = Arc::new(MemoryProvider::new());
        let catalog = Arc::new(
            Catalog::new(MemoryCatalogStore::new())
                .with_shared_provider(memory(), provider.clone() as Arc<dyn SecretProvider>),
        );
        let sink = Arc::new(SwitchSink::default());
        let admin = SecretAdmin::builder(catalog.clone(), sink.clone())
            .build()
            .unwrap();
        Self {
            catalog,
            provider,
            sink,
            admin,
        }
    }

    fn records(&self) -> Vec<AuditRecord> {
        self.sink.records.records()
    }

    fn fail_audit(&self, failing: bool) {
        self.sink.failing.store(failing, Ordering::SeqCst);
    }

    fn create(&self, value: &str) -> SecretHandle {
        self.admin.create(api_key(), &bytes(value), &by()).unwrap()
    }
}

fn memory() -> ProviderId {
    ProviderId::new("memory").unwrap()
}

fn api_key() -> NewSecret {
    NewSecret::new(
        memory(),
        Scope::new("workspace/acme").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    )
}

fn bytes(text: &str) -> SecretBytes {
    SecretBytes::from(text.as_bytes().to_vec())
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("ops-alice").unwrap(),
        Purpose::new("incident 42").unwrap(),
    )
}

/// The single record a call added, checked for the fields every admin
/// record carries.
fn only(records: &[AuditRecord], action: Action, id: &HandleId) -> AuditRecord {
    assert_eq!(records.len(), 1, "one record per change: {records:?}");
    let r = records[0].clone();
    assert_eq!(r.action, action);
    assert_eq!(&r.handle_id, id);
    assert_eq!(r.requester.agent(), "ops-alice");
    assert_eq!(r.purpose, "incident 42");
    r
}

#[test]
fn every_change_writes_one_applied_record_naming_who_why_and_what() {
    let f = Fixture::new();
    let h = f.create("sk-first-value-1");
    let r = only(&f.records(), Action::Create, h.id());
    assert_eq!(r.outcome, Outcome::Applied);
    assert_eq!(r.version, Some(Version::FIRST));
    assert_eq!(r.provider, Some(memory()));
    assert_eq!(r.kind, Some(SecretKind::ApiKey));

    type Step<'a> = Box<dyn Fn() -> Result<(), AdminError> + 'a>;
    let steps: Vec<(Action, Step<'_>)> = vec![
        (
            Action::Rotate,
            Box::new(|| {
                f.admin
                    .rotate(
                        h.id(),
                        &bytes("sk-second-value-2"),
                        RotateOptions::default().retire_previous_after(Duration::from_secs(60)),
                        &by(),
                    )
                    .map(drop)
            }),
        ),
        (Action::Revoke, Box::new(|| f.admin.revoke(h.id(), &by()))),
        (Action::Restore, Box::new(|| f.admin.restore(h.id(), &by()))),
        (
            Action::SetExpiry,
            Box::new(|| {
                f.admin
                    .set_expiry(h.id(), Some(Timestamp::from_unix_millis(u64::MAX)), &by())
            }),
        ),
        (
            Action::SetLabel,
            Box::new(|| f.admin.set_label(h.id(), "owner", Some("ops"), &by())),
        ),
        (
            Action::Destroy,
            Box::new(|| f.admin.destroy(h.id(), Version::FIRST, &by())),
        ),
    ];
    for (action, step) in steps {
        let before = f.records().len();
        step().unwrap();
        let r = only(&f.records()[before..], action, h.id());
        assert_eq!(r.outcome, Outcome::Applied, "{action}");
        assert_eq!(r.error_kind, None, "{action}");
    }
    let records = f.records();
    assert_eq!(
        records[1].version.map(Version::get),
        Some(2),
        "rotate names v2"
    );
    assert_eq!(
        records[4].expires_at,
        Some(Timestamp::from_unix_millis(u64::MAX))
    );
    assert_eq!(
        records[5].label,
        Some(LabelChange {
            key: "owner".into(),
            value: Some("ops".into())
        })
    );
    assert_eq!(records[6].version, Some(Version::FIRST), "destroy names v1");
    let entry = f.admin.entry(h.id()).unwrap();
    assert_eq!(entry.labels.get("owner").map(String::as_str), Some("ops"));
    assert!(
        entry.retiring.is_empty(),
        "the destroyed version is not retiring"
    );
}

#[test]
fn revoke_stores_the_request_reason() {
    let f = Fixture::new();
    let h = f.create("sk-revoke-reason-1");
    f.admin.revoke(h.id(), &by()).unwrap();
    match f.admin.entry(h.id()).unwrap().status {
        crate::EntryStatus::Revoked { reason, .. } => assert_eq!(reason, "incident 42"),
        other => panic!("not revoked: {other:?}"),
    }
}

#[test]
fn a_change_whose_record_cannot_be_written_is_not_made() {
    let f = Fixture::new();
    let h = f.create("sk-audited-value-1");
    f.fail_audit(true);

    let err = f.admin.revoke(h.id(), &by()).unwrap_err();
    assert!(matches!(
        err,
        AdminError::Audit {
            action: Action::Revoke,
            ..
        }
    ));
    assert!(f.catalog.lookup(h.id()).is_ok(), "not revoked");

    let err = f
        .admin
        .rotate(
            h.id(),
            &bytes("sk-unaudited-2"),
            RotateOptions::default(),
            &by(),
        )
        .unwrap_err();
    assert!(matches!(err, AdminError::Audit { .. }));
    let entry = f.catalog.entry(h.id()).unwrap();
    assert_eq!(
        entry.current,
        VersionPin::Pinned(Version::FIRST),
        "not moved"
    );
    let published = Version::new(2).unwrap();
    assert!(
        matches!(
            f.provider
                .read(&entry.locator, VersionSelector::Exact(published)),
            Err(ProviderError::VersionNotFound { .. })
        ),
        "the unrecorded version was removed from the provider again"
    );

    let err = f
        .admin
        .create(api_key(), &bytes("sk-unaudited-3"), &by())
        .unwrap_err();
    assert!(matches!(err, AdminError::Audit { .. }));
    assert_eq!(f.admin.list().unwrap().len(), 1, "no handle was created");

    for result in [
        f.admin.restore(h.id(), &by()),
        f.admin
            .set_expiry(h.id(), Some(Timestamp::from_unix_millis(1)), &by()),
        f.admin.set_label(h.id(), "k", Some("v"), &by()),
        f.admin.destroy(h.id(), Version::new(9).unwrap(), &by()),
    ] {
        assert!(
            matches!(result, Err(AdminError::Audit { .. })),
            "{result:?}"
        );
    }
    assert_eq!(f.catalog.entry(h.id()).unwrap(), entry, "nothing changed");
    f.fail_audit(false);
    assert_eq!(f.records().len(), 1, "only the create before the outage");
}

#[test]
fn a_change_that_fails_after_its_record_is_recorded_as_failed() {
    let f = Fixture::new();
    let h = f.create("sk-retire-fails-1");
    f.admin
        .rotate(
            h.id(),
            &bytes("sk-retire-fails-2"),
            RotateOptions::default().retire_previous_after(Duration::ZERO),
            &by(),
        )
        .unwrap();
    // v1 was retired (destroyed) by the zero-grace rotation, with its own
    // record; destroying it again is a provider no-op, and destroying the
    // current version is refused before any record of a change.
    let records = f.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[2].action, Action::Retire);
    assert_eq!(records[2].version, Some(Version::FIRST));

    let err = f
        .admin
        .destroy(h.id(), Version::new(2).unwrap(), &by())
        .unwrap_err();
    assert!(matches!(err, AdminError::Invalid { .. }), "{err}");
    let r = f.records().last().cloned().unwrap();
    assert_eq!((r.action, r.outcome), (Action::Destroy, Outcome::Failed));
    assert_eq!(r.error_kind, Some(ErrorKind::Catalog));

    // A provider that refuses the destroy after the record was written.
    let ro = ProviderId::new("ro").unwrap();
    let env_like = Arc::new(MemoryProvider::new());
    let locator = Locator::new("external/key").unwrap();
    env_like
        .write(&locator, &bytes("sk-external-value-1"))
        .unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_shared_provider(ro.clone(), Arc::new(ReadOnly(env_like))),
    );
    let sink = Arc::new(MemoryAuditSink::new());
    let admin = SecretAdmin::builder(catalog, sink.clone()).build().unwrap();
    let spec = NewSecret::new(
        ro,
        Scope::new("ext").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    let h = admin.import(spec, locator, &by()).unwrap();
    let err = admin.destroy(h.id(), Version::FIRST, &by()).unwrap_err();
    assert!(matches!(err, AdminError::Provider { .. }), "{err}");
    let records = sink.records();
    let tail: Vec<_> = records[1..]
        .iter()
        .map(|r| (r.action, r.outcome, r.request_id.clone()))
        .collect();
    assert_eq!(tail.len(), 2);
    assert_eq!((tail[0].0, tail[0].1), (Action::Destroy, Outcome::Applied));
    assert_eq!((tail[1].0, tail[1].1), (Action::Destroy, Outcome::Failed));
    assert_eq!(tail[0].2, tail[1].2, "the failure names the same request");
}

/// A provider that can be read but refuses every change, as env vars do.
#[derive(Debug)]
struct ReadOnly(Arc<MemoryProvider>);

impl SecretProvider for ReadOnly {
    fn capabilities(&self) -> crate::Capabilities {
        crate::Capabilities::read_only(crate::Persistence::External, true)
    }
    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<crate::VersionedSecret, ProviderError> {
        self.0.read(locator, version)
    }
}

#[test]
fn new_values_are_masked_before_anyone_resolves_them() {
    let f = Fixture::new();
    let redactor = f.admin.redactor().unwrap().clone();
    let h = f.create("sk-masked-at-create-1");
    assert_eq!(
        redactor.redact_str("saw sk-masked-at-create-1").as_str(),
        format!("saw [{}]", h.id())
    );
    f.admin
        .rotate(
            h.id(),
            &bytes("sk-masked-at-rotate-2"),
            RotateOptions::default(),
            &by(),
        )
        .unwrap();
    assert_eq!(
        redactor
            .redact_str("saw sk-masked-at-rotate-2 and sk-masked-at-create-1")
            .as_str(),
        format!("saw [{0}] and [{0}]", h.id())
    );
}

#[test]
fn short_values_are_refused_unless_allowed_unmasked_and_the_record_says_so() {
    let f = Fixture::new();
    let err = f
        .admin
        .create(api_key(), &bytes("123456"), &by())
        .unwrap_err();
    assert!(matches!(err, AdminError::Redaction { .. }), "{err}");
    assert!(err.to_string().contains("allow_unmasked"), "{err}");
    assert!(!err.to_string().contains("123456"), "{err}");
    assert!(f.admin.list().unwrap().is_empty());
    let r = f.records().pop().unwrap();
    assert_eq!((r.action, r.outcome), (Action::Create, Outcome::Failed));
    assert_eq!(r.error_kind, Some(ErrorKind::Redaction));

    let h = f
        .admin
        .create(api_key().allow_unmasked(), &bytes("123456"), &by())
        .unwrap();
    let r = f.records().pop().unwrap();
    assert_eq!((r.action, r.outcome), (Action::Create, Outcome::Applied));
    assert!(
        r.allow_unmasked,
        "the create record says the value is not masked"
    );
    let entry = f.admin.entry(h.id()).unwrap();
    assert!(entry.allow_unmasked);
    // The opt-in belongs to the secret: rotating to another short value works.
    f.admin
        .rotate(h.id(), &bytes("654321"), RotateOptions::default(), &by())
        .unwrap();
    assert_eq!(
        f.admin.redactor().unwrap().value_count(),
        0,
        "nothing masked"
    );
}

#[test]
fn destroying_the_current_version_or_clearing_a_cookie_expiry_is_refused() {
    let f = Fixture::new();
    let h = f.create("sk-current-version-1");
    let err = f.admin.destroy(h.id(), Version::FIRST, &by()).unwrap_err();
    assert!(
        matches!(
            err,
            AdminError::Invalid {
                action: Action::Destroy,
                ..
            }
        ),
        "{err}"
    );
    assert!(f.catalog.lookup(h.id()).is_ok());

    let spec = NewSecret::new(
        memory(),
        Scope::new("web").unwrap(),
        KindSpec::session_cookie(Timestamp::now().saturating_add(Duration::from_secs(60))),
    );
    let cookie = f
        .admin
        .create(spec, &bytes("session=abcdef012345"), &by())
        .unwrap();
    let err = f.admin.set_expiry(cookie.id(), None, &by()).unwrap_err();
    assert!(matches!(err, AdminError::Invalid { .. }), "{err}");
    assert!(f.catalog.entry(cookie.id()).unwrap().expires_at.is_some());
    f.admin
        .set_expiry(h.id(), Some(Timestamp::from_unix_millis(1)), &by())
        .unwrap();
    assert!(matches!(
        f.catalog.lookup(h.id()),
        Err(CatalogError::Expired { .. })
    ));
    f.admin.set_expiry(h.id(), None, &by()).unwrap();
    assert!(
        f.catalog.lookup(h.id()).is_ok(),
        "an API key's expiry can be cleared"
    );
}

#[test]
fn unknown_handles_are_typed_and_recorded() {
    let f = Fixture::new();
    let id = HandleId::generate().unwrap();
    assert!(matches!(
        f.admin.revoke(&id, &by()),
        Err(AdminError::UnknownHandle { .. })
    ));
    assert!(matches!(
        f.admin.entry(&id),
        Err(AdminError::UnknownHandle { .. })
    ));
    let r = f.records().pop().unwrap();
    assert_eq!((r.action, r.outcome), (Action::Revoke, Outcome::Failed));
    assert_eq!(r.error_kind, Some(ErrorKind::UnknownHandle));
}

#[test]
fn retire_due_records_each_version_before_removing_it() {
    let f = Fixture::new();
    let a = f.create("sk-retire-a-1");
    let b = f.create("sk-retire-b-1");
    let grace = RotateOptions::default().retire_previous_after(Duration::from_secs(60));
    for h in [&a, &b] {
        f.admin
            .rotate(h.id(), &bytes("sk-retire-next-2"), grace, &by())
            .unwrap();
    }
    let before = f.records().len();
    assert_eq!(f.admin.retire_due(&by()).unwrap(), 0, "nothing due yet");
    assert_eq!(f.records().len(), before);

    f.fail_audit(true);
    let later = Timestamp::now().saturating_add(Duration::from_secs(120));
    assert!(matches!(
        f.admin.retire_due_at(later, &by()),
        Err(AdminError::Audit {
            action: Action::Retire,
            ..
        })
    ));
    let entry = f.catalog.entry(a.id()).unwrap();
    assert!(
        f.provider
            .read(&entry.locator, VersionSelector::Exact(Version::FIRST))
            .is_ok(),
        "not retired without a record"
    );
    f.fail_audit(false);
    assert_eq!(f.admin.retire_due_at(later, &by()).unwrap(), 2);
    let retired: Vec<_> = f.records()[before..]
        .iter()
        .map(|r| (r.action, r.handle_id.clone(), r.version))
        .collect();
    let mut expected = vec![
        (Action::Retire, a.id().clone(), Some(Version::FIRST)),
        (Action::Retire, b.id().clone(), Some(Version::FIRST)),
    ];
    expected.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(retired, expected);
    let value = f
        .provider
        .read(&entry.locator, VersionSelector::Latest)
        .unwrap();
    assert_eq!(value.value.expose_secret(), b"sk-retire-next-2");
}

#[test]
fn admin_and_builder_debug_show_no_values() {
    let f = Fixture::new();
    f.create("sk-debug-CANARY-1");
    let builder = SecretAdmin::builder(f.catalog.clone(), f.sink.clone());
    let text = format!("{:?} {:?} {builder:?}", f.admin, AdminRequest::clone(&by()));
    assert!(!text.contains("CANARY"), "{text}");
}
