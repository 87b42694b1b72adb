//! Several processes updating one JSON-file catalog lose nothing: 4
//! processes each add 100 labels to one shared entry, racing through
//! compare-and-set, and all 400 labels are there at the end.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use tyrum_secrets::{
    AdminRequest, Catalog, HandleId, JsonFileCatalogStore, KindSpec, MemoryAuditSink,
    MemoryProvider, NewSecret, ProviderId, Purpose, Requester, Scope, SecretAdmin, SecretBytes,
    SecretKind,
};
use tyrum_secrets_testkit::process;

const PROCESSES: usize = 4;
const UPDATES: usize = 100;

fn main() {
    process::main(
        &[(
            "four_processes_updating_one_entry_lose_nothing",
            concurrent_updates,
        )],
        worker,
    );
}

/// An admin over the JSON-file catalog at `path`, auditing to memory.
fn admin(path: &Path) -> SecretAdmin {
    let catalog = Catalog::new(JsonFileCatalogStore::open(path).expect("the catalog opens"))
        .with_provider(ProviderId::new("memory").unwrap(), MemoryProvider::new());
    SecretAdmin::builder(Arc::new(catalog), Arc::new(MemoryAuditSink::bounded(16)))
        .without_redaction()
        .build()
        .expect("the admin builds")
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("labeller").unwrap(),
        Purpose::new("concurrency test").unwrap(),
    )
}

fn worker(_role: &str, args: &[String]) {
    let admin = admin(Path::new(&args[0]));
    let id: HandleId = args[1].parse().unwrap();
    let worker = &args[2];
    for i in 0..UPDATES {
        admin
            .set_label(&id, &format!("w{worker}-{i:03}"), Some("x"), &by())
            .unwrap_or_else(|e| panic!("worker {worker} update {i}: {e}"));
    }
}

fn concurrent_updates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let parent = admin(&path);
    let spec = NewSecret::new(
        ProviderId::new("memory").unwrap(),
        Scope::new("race").unwrap(),
        KindSpec::new(SecretKind::Generic, None).unwrap(),
    );
    let handle = parent
        .create(spec, &SecretBytes::from(b"race-test-value".to_vec()), &by())
        .unwrap();
    let id = handle.id().to_string();
    let children: Vec<_> = (0..PROCESSES)
        .map(|w| process::spawn_worker("labeller", &[path.to_str().unwrap(), &id, &w.to_string()]))
        .collect();
    for mut child in children {
        let mut ignored = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut ignored)
            .unwrap();
        assert!(child.wait().unwrap().success(), "a worker failed");
    }
    let entry = parent.entry(handle.id()).unwrap();
    let expected: Vec<String> = (0..PROCESSES)
        .flat_map(|w| (0..UPDATES).map(move |i| format!("w{w}-{i:03}")))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|k| !entry.labels.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} updates lost, e.g. {:?}",
        missing.len(),
        expected.len(),
        missing.first()
    );
    assert_eq!(entry.labels.len(), PROCESSES * UPDATES);
    assert_eq!(
        entry.revision,
        1 + (PROCESSES * UPDATES) as u64,
        "every update bumped the revision once"
    );
}
