//! The resolver's redaction defaults: its own redactor, the pre-load of
//! every value still in use, and the explicit, audited opt-in for values too
//! short to mask.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tyrum_secrets_core::{
    Action, AdminRequest, AuditError, AuditRecord, AuditSink, Catalog, ErrorKind, ExposeSecret,
    HandleId, KindSpec, Locator, MemoryAuditSink, MemoryCatalogStore, MemoryProvider, NewSecret,
    Outcome, PreloadError, ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver,
    RotateOptions, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, SecretProvider,
    SkipReason, Version,
};

/// Records to memory, or fails while `failing` is set.
#[derive(Debug, Default)]
struct Switch {
    failing: AtomicBool,
    records: MemoryAuditSink,
}

impl AuditSink for Switch {
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
    sink: Arc<Switch>,
    resolver: Resolver,
    admin: SecretAdmin,
}

fn fixture() -> Fixture {
    let provider = Arc::new(MemoryProvider::new());
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_shared_provider(memory(), provider.clone() as Arc<dyn SecretProvider>),
    );
    let sink = Arc::new(Switch::default());
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "all", "effect": "allow", "secret": "memory:*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .build()
        .unwrap();
    // An admin without a redactor, so these tests decide what is registered.
    let admin = SecretAdmin::builder(catalog.clone(), sink.clone())
        .without_redaction()
        .build()
        .unwrap();
    Fixture {
        catalog,
        provider,
        sink,
        resolver,
        admin,
    }
}

fn memory() -> ProviderId {
    ProviderId::new("memory").unwrap()
}

fn spec() -> NewSecret {
    NewSecret::new(
        memory(),
        Scope::new("app").unwrap(),
        KindSpec::new(SecretKind::Password, None).unwrap(),
    )
}

fn bytes(text: &str) -> SecretBytes {
    SecretBytes::from(text.as_bytes().to_vec())
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("ops-alice").unwrap(),
        Purpose::new("redaction defaults").unwrap(),
    )
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("agent-1").unwrap(),
        Purpose::new("log in").unwrap(),
    )
}

fn start_up() -> (Requester, Purpose) {
    (
        Requester::new("gateway").unwrap(),
        Purpose::new("start-up").unwrap(),
    )
}

#[test]
fn short_value_allowed_unmasked_is_handed_out_unregistered_and_recorded_so() {
    let f = fixture();
    let pin = f
        .admin
        .create(spec().allow_unmasked(), &bytes("482913"), &by())
        .unwrap();
    let secret = f.resolver.resolve(pin.id(), &request()).unwrap();
    assert_eq!(secret.value().expose_secret(), b"482913");
    let redactor = f.resolver.redactor().unwrap();
    assert_eq!(redactor.value_count(), 0, "the value is not masked");
    let record = f.sink.records.records().pop().unwrap();
    assert_eq!(
        (record.action, record.outcome),
        (Action::Resolve, Outcome::Resolved)
    );
    assert!(
        record.allow_unmasked,
        "the record says it went out unmasked"
    );

    // A long enough value of such a secret is still masked.
    f.admin
        .rotate(
            pin.id(),
            &bytes("a-longer-passphrase"),
            RotateOptions::default(),
            &by(),
        )
        .unwrap();
    f.resolver.resolve(pin.id(), &request()).unwrap();
    assert_eq!(redactor.value_count(), 1);
    assert!(!f.sink.records.records().pop().unwrap().allow_unmasked);
}

#[test]
fn short_value_without_the_opt_in_is_refused_at_resolve() {
    let f = fixture();
    let pin = f.admin.create(spec(), &bytes("482913"), &by()).unwrap();
    let err = f.resolver.resolve(pin.id(), &request()).unwrap_err();
    assert!(matches!(err, ResolveError::Redaction { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("allow_unmasked"),
        "the error says what to do: {text}"
    );
    assert!(!text.contains("482913"), "{text}");
    let record = f.sink.records.records().pop().unwrap();
    assert_eq!(record.error_kind, Some(ErrorKind::Redaction));
    assert!(!record.allow_unmasked);
}

#[test]
fn preload_registers_every_version_in_use_in_one_record() {
    let f = fixture();
    let grace = RotateOptions::default().retire_previous_after(Duration::from_secs(3600));
    let rotated = f
        .admin
        .create(spec(), &bytes("old-value-0001"), &by())
        .unwrap();
    f.admin
        .rotate(rotated.id(), &bytes("new-value-0002"), grace, &by())
        .unwrap();
    let revoked = f
        .admin
        .create(spec(), &bytes("leaked-value-0003"), &by())
        .unwrap();
    f.admin.revoke(revoked.id(), &by()).unwrap();
    let expired = f
        .admin
        .create(
            NewSecret::new(
                memory(),
                Scope::new("web").unwrap(),
                KindSpec::session_cookie(tyrum_secrets_core::Timestamp::from_unix_millis(1)),
            ),
            &bytes("session=expired-0004"),
            &by(),
        )
        .unwrap();
    // An imported handle follows the provider's latest version.
    let locator = Locator::new("external/token").unwrap();
    f.provider
        .write(&locator, &bytes("external-v1-0005"))
        .unwrap();
    let imported = f.admin.import(spec(), locator.clone(), &by()).unwrap();
    f.provider
        .write(&locator, &bytes("external-v2-0006"))
        .unwrap();
    let short = f.admin.create(spec(), &bytes("12345"), &by()).unwrap();

    let before = f.sink.records.len();
    let (who, why) = start_up();
    let report = f.resolver.preload_redactor(&who, &why).unwrap();
    let text = "old-value-0001 new-value-0002 leaked-value-0003 session=expired-0004 \
                external-v2-0006";
    let redacted = f.resolver.redactor().unwrap().redact_str(text);
    assert_eq!(
        redacted.as_str(),
        format!(
            "[{r}] [{r}] [{v}] [{e}] [{i}]",
            r = rotated.id(),
            v = revoked.id(),
            e = expired.id(),
            i = imported.id()
        )
    );
    assert_eq!(report.loaded_count(), 5);
    let v2 = Version::new(2).unwrap();
    let of = |id: &HandleId| {
        report
            .loaded
            .iter()
            .find(|l| &l.handle_id == id)
            .map(|l| l.versions.clone())
    };
    assert_eq!(of(rotated.id()), Some(vec![Version::FIRST, v2]));
    assert_eq!(of(imported.id()), Some(vec![v2]), "the latest version");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(&report.skipped[0].handle_id, short.id());
    assert_eq!(report.skipped[0].reason, SkipReason::TooShort);

    let records = f.sink.records.records();
    assert_eq!(records.len(), before + 1, "one record for the pre-load");
    let record = &records[before];
    assert_eq!(
        (record.action, record.outcome),
        (Action::Preload, Outcome::Applied)
    );
    assert_eq!(record.loaded, report.loaded);
    assert_eq!(record.requester.agent(), "gateway");
    assert!(
        f.catalog.entry(&record.handle_id).is_err(),
        "the record's handle id names the batch, not a handle"
    );
    let json = serde_json::to_string(&records).unwrap();
    for value in [
        "old-value",
        "new-value",
        "leaked-value",
        "expired-0004",
        "external-v",
    ] {
        assert!(!json.contains(value), "a record holds {value}");
    }
}

#[test]
fn preload_skips_an_unreadable_version_and_loads_the_rest() {
    let f = fixture();
    let grace = RotateOptions::default().retire_previous_after(Duration::from_secs(3600));
    let h = f
        .admin
        .create(spec(), &bytes("first-value-0001"), &by())
        .unwrap();
    f.admin
        .rotate(h.id(), &bytes("second-value-0002"), grace, &by())
        .unwrap();
    // v1 disappears from the provider behind the catalog's back.
    let locator = f.catalog.entry(h.id()).unwrap().locator;
    f.provider.destroy(&locator, Version::FIRST).unwrap();
    let (who, why) = start_up();
    let report = f.resolver.preload_redactor(&who, &why).unwrap();
    assert_eq!(report.loaded_count(), 1);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].version, Some(Version::FIRST));
    assert!(matches!(
        report.skipped[0].reason,
        SkipReason::Unreadable { .. }
    ));
    let redactor = f.resolver.redactor().unwrap();
    assert_eq!(
        redactor.redact_str("second-value-0002").as_str(),
        format!("[{}]", h.id())
    );
}

#[test]
fn preload_masks_even_when_its_record_cannot_be_written() {
    let f = fixture();
    let h = f
        .admin
        .create(spec(), &bytes("value-during-outage"), &by())
        .unwrap();
    f.sink.failing.store(true, Ordering::SeqCst);
    let (who, why) = start_up();
    let err = f.resolver.preload_redactor(&who, &why).unwrap_err();
    assert!(matches!(err, PreloadError::Audit { .. }), "{err}");
    assert_eq!(
        f.resolver
            .redactor()
            .unwrap()
            .redact_str("value-during-outage")
            .as_str(),
        format!("[{}]", h.id()),
        "masking is never withheld because the log is down"
    );
}

#[test]
fn admin_preload_names_the_operator_and_a_resolver_without_redaction_cannot_preload() {
    let f = fixture();
    f.admin
        .create(spec(), &bytes("admin-preloaded-1"), &by())
        .unwrap();
    let admin = SecretAdmin::builder(f.catalog.clone(), f.sink.clone())
        .build()
        .unwrap();
    let report = admin.preload_redactor(&by()).unwrap();
    assert_eq!(report.loaded_count(), 1);
    let record = f.sink.records.records().pop().unwrap();
    assert_eq!(record.action, Action::Preload);
    assert_eq!(record.requester.agent(), "ops-alice");
    assert_eq!(record.purpose, "redaction defaults");

    let policy = RulePolicy::from_json_str(r#"{"rules": []}"#).unwrap();
    let bare = Resolver::builder(f.catalog.clone(), policy, f.sink.clone())
        .without_redaction()
        .build()
        .unwrap();
    let (who, why) = start_up();
    assert!(matches!(
        bare.preload_redactor(&who, &why),
        Err(PreloadError::NoRedactor)
    ));
}
