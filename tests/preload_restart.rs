//! Masking survives a restart: values created (and some resolved) by one
//! resolver are masked in the very first log line of a fresh resolver over
//! the same files, before it resolved anything — once it pre-loaded its
//! redactor. Revoked values and in-grace old versions included.

#![cfg(all(feature = "file", feature = "tracing"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tyrum_secrets::file::{FileOptions, FileProvider, KeySource};
use tyrum_secrets::{
    Action, AdminRequest, AuditChainKey, AuditRecord, AuditSink, Catalog, HandleId,
    JsonFileCatalogStore, JsonLinesAuditSink, KindSpec, LoadedVersions, NewSecret, Outcome,
    ProviderId, Purpose, Requester, ResolveRequest, Resolver, RotateOptions, RulePolicy, Scope,
    SecretAdmin, SecretBytes, SecretKind, SecretString, SkipReason, Version, verify_audit_log,
};

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

/// Everything one process opens over the shared files.
struct Process {
    catalog: Arc<Catalog>,
    sink: Arc<dyn AuditSink>,
    resolver: Resolver,
}

fn chain_key() -> AuditChainKey {
    AuditChainKey::new(SecretBytes::from(vec![9u8; 32])).unwrap()
}

fn start(dir: &Path) -> Process {
    let file = FileProvider::open_with(
        dir.join("secrets.tyrum"),
        KeySource::Passphrase(SecretString::from("preload test passphrase")),
        FileOptions::default().dangerous_insecure_kdf_for_tests(),
    )
    .unwrap();
    let catalog = Arc::new(
        Catalog::new(JsonFileCatalogStore::open(dir.join("catalog.json")).unwrap())
            .with_provider(ProviderId::new("file").unwrap(), file),
    );
    let sink: Arc<dyn AuditSink> = Arc::new(open_audit_log(&dir.join("audit.jsonl")));
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "all", "effect": "allow", "secret": "file:preload/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, sink.clone())
        .build()
        .unwrap();
    Process {
        catalog,
        sink,
        resolver,
    }
}

/// Opens the audit log, waiting (bounded) for the previous run's audit
/// worker thread, which lets go of the log shortly after its resolver is
/// dropped.
fn open_audit_log(path: &Path) -> JsonLinesAuditSink {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match JsonLinesAuditSink::open(path, chain_key()) {
            Err(tyrum_secrets::AuditError::Locked { .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.unwrap(),
        }
    }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("ops-alice").unwrap(),
        Purpose::new("preload test").unwrap(),
    )
}

fn value(text: &str) -> SecretBytes {
    SecretBytes::from(text.as_bytes().to_vec())
}

/// The values of the first process, made per run (never literals that a
/// log could match by accident).
struct Values {
    resolved: String,
    never_resolved: String,
    old_version: String,
    new_version: String,
    revoked: String,
}

impl Values {
    fn new() -> Self {
        let tag = format!("{}-{}", std::process::id(), HandleId::generate().unwrap());
        Self {
            resolved: format!("sk-resolved-{tag}"),
            never_resolved: format!("sk-never-resolved-{tag}"),
            old_version: format!("sk-old-version-{tag}"),
            new_version: format!("sk-new-version-{tag}"),
            revoked: format!("sk-revoked-leaked-{tag}"),
        }
    }

    fn all(&self) -> [&str; 5] {
        [
            &self.resolved,
            &self.never_resolved,
            &self.old_version,
            &self.new_version,
            &self.revoked,
        ]
    }
}

struct Handles {
    resolved: HandleId,
    never_resolved: HandleId,
    rotated: HandleId,
    revoked: HandleId,
    unmasked_pin: HandleId,
}

/// The first process: creates, rotates, revokes, resolves one value.
fn first_run(dir: &Path, values: &Values) -> Handles {
    let p = start(dir);
    let admin = SecretAdmin::builder(p.catalog.clone(), p.sink.clone())
        .redactor(p.resolver.redactor().unwrap().clone())
        .build()
        .unwrap();
    let create = |text: &str, spec: NewSecret| admin.create(spec, &value(text), &by()).unwrap();
    let spec = || {
        NewSecret::new(
            ProviderId::new("file").unwrap(),
            Scope::new("preload/app").unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        )
    };
    let resolved = create(&values.resolved, spec());
    let never_resolved = create(&values.never_resolved, spec());
    let rotated = create(&values.old_version, spec());
    admin
        .rotate(
            rotated.id(),
            &value(&values.new_version),
            RotateOptions::default().retire_previous_after(Duration::from_secs(3600)),
            &by(),
        )
        .unwrap();
    let revoked = create(&values.revoked, spec());
    admin.revoke(revoked.id(), &by()).unwrap();
    let pin = create("482913", spec().allow_unmasked());
    let request = ResolveRequest::new(
        Requester::new("agent-1").unwrap(),
        Purpose::new("before the restart").unwrap(),
    );
    p.resolver.resolve(resolved.id(), &request).unwrap();
    Handles {
        resolved: resolved.id().clone(),
        never_resolved: never_resolved.id().clone(),
        rotated: rotated.id().clone(),
        revoked: revoked.id().clone(),
        unmasked_pin: pin.id().clone(),
    }
}

#[test]
fn never_resolved_values_are_masked_in_the_first_log_line_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let values = Values::new();
    let handles = first_run(dir.path(), &values);

    // The restart: everything reopened from the files.
    let p = start(dir.path());
    let redactor = p.resolver.redactor().unwrap().clone();
    let line = format!(
        "first line after restart: {} {} {} {} {}",
        values.resolved,
        values.never_resolved,
        values.old_version,
        values.new_version,
        values.revoked
    );
    assert_eq!(
        redactor.redact_str(&line).as_str(),
        line,
        "a fresh redactor knows nothing: without the pre-load this line leaks"
    );

    let report = p
        .resolver
        .preload_redactor(
            &Requester::new("gateway").unwrap(),
            &Purpose::new("start-up").unwrap(),
        )
        .unwrap();

    let capture = Capture::default();
    let logs = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(redactor.make_writer(move || logs.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, || tracing::info!("{line}"));
    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert_eq!(logged.lines().count(), 1, "{logged}");
    for value in values.all() {
        assert!(
            !logged.contains(value),
            "the first log line leaks: {logged}"
        );
    }
    for id in [
        &handles.resolved,
        &handles.never_resolved,
        &handles.rotated,
        &handles.revoked,
    ] {
        assert!(
            logged.contains(&format!("[{id}]")),
            "{id} not named: {logged}"
        );
    }

    // The report and the one audit record name handles and versions only.
    let v = |n| Version::new(n).unwrap();
    let mut expected = vec![
        (handles.resolved.clone(), vec![v(1)]),
        (handles.never_resolved.clone(), vec![v(1)]),
        (handles.rotated.clone(), vec![v(1), v(2)]),
        (handles.revoked.clone(), vec![v(1)]),
    ];
    expected.sort();
    let loaded: Vec<_> = report
        .loaded
        .iter()
        .map(|l| (l.handle_id.clone(), l.versions.clone()))
        .collect();
    assert_eq!(loaded, expected);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].handle_id, handles.unmasked_pin);
    assert_eq!(report.skipped[0].reason, SkipReason::AllowedUnmasked);

    let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    for value in values.all().into_iter().chain(["482913"]) {
        assert!(!text.contains(value), "the audit log holds a value");
    }
    let records: Vec<AuditRecord> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["entry"]["record"].clone()).unwrap()
        })
        .collect();
    let preloads: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.action == Action::Preload)
        .collect();
    assert_eq!(preloads.len(), 1, "one record for the whole pre-load");
    let record = preloads[0];
    assert_eq!(record.outcome, Outcome::Applied);
    assert_eq!(record.requester.agent(), "gateway");
    let recorded: Vec<LoadedVersions> = record.loaded.clone();
    assert_eq!(recorded, report.loaded);
    let head = verify_audit_log(&dir.path().join("audit.jsonl"), &chain_key(), None).unwrap();
    assert_eq!(head.seq, records.len() as u64);
}
