//! Crash safety of the JSON-file catalog: a child process updating the
//! catalog in a loop is killed with SIGKILL at random moments, 100 times.
//! After every kill the catalog must open, and every update the child saw
//! return `Ok` must be there. The random moment is counted from when the
//! child says it is ready, so process start-up on a loaded machine does not
//! swallow the window.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets::{
    AdminRequest, Catalog, CatalogStore, HandleId, JsonFileCatalogStore, KindSpec, MemoryAuditSink,
    MemoryProvider, NewSecret, ProviderId, Purpose, Requester, Scope, SecretAdmin, SecretBytes,
    SecretKind,
};
use tyrum_secrets_testkit::process;

const ROUNDS: usize = 100;

fn main() {
    process::main(
        &[(
            "json_catalog_survives_sigkill_with_every_acknowledged_update",
            crash_rounds,
        )],
        worker,
    );
}

/// An admin over the JSON-file catalog at `path` (auditing to memory: the
/// catalog's durability is what is tested here).
fn admin(path: &Path) -> SecretAdmin {
    let store = JsonFileCatalogStore::open(path).expect("the catalog opens");
    let catalog = Catalog::new(store)
        .with_provider(ProviderId::new("memory").unwrap(), MemoryProvider::new());
    SecretAdmin::builder(Arc::new(catalog), Arc::new(MemoryAuditSink::bounded(16)))
        .without_redaction()
        .build()
        .expect("the admin builds")
}

/// Child: create a handle, then label it, forever; acknowledge each `Ok` on
/// stdout only after the call returned.
fn worker(_role: &str, args: &[String]) {
    let admin = admin(Path::new(&args[0]));
    let by = AdminRequest::new(
        Requester::new("crash-writer").unwrap(),
        Purpose::new("crash test").unwrap(),
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for i in 0u64.. {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new("crash").unwrap(),
            KindSpec::new(SecretKind::Generic, None).unwrap(),
        );
        let handle = admin
            .create(spec, &SecretBytes::from(b"crash-test-value".to_vec()), &by)
            .expect("create");
        writeln!(out, "created {}", handle.id()).unwrap();
        out.flush().unwrap();
        admin
            .set_label(handle.id(), "step", Some(&i.to_string()), &by)
            .expect("label");
        writeln!(out, "labelled {} {i}", handle.id()).unwrap();
        out.flush().unwrap();
    }
}

fn crash_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    let mut rng = process::Rng::from_env_or_time();
    let mut created: Vec<HandleId> = Vec::new();
    let mut labelled: Vec<(HandleId, String)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = process::spawn_worker("catalog-writer", &[path.to_str().unwrap()]);
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        // (A child that never gets ready is killed all the same.)
        let _ = ready.recv_timeout(Duration::from_secs(60));
        std::thread::sleep(Duration::from_micros(rng.below(80_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["created", id] => created.push(id.parse().unwrap()),
                ["labelled", id, step] => labelled.push((id.parse().unwrap(), (*step).to_owned())),
                _ => {} // a line cut by the kill was never acknowledged
            }
        }
        let store = JsonFileCatalogStore::open(&path).unwrap_or_else(|e| {
            panic!("round {round}: the catalog does not open after SIGKILL: {e}")
        });
        for id in &created {
            assert!(
                store.get(id).unwrap().is_some(),
                "round {round}: acknowledged create of {id} lost"
            );
        }
        for (id, step) in &labelled {
            let entry = store.get(id).unwrap().unwrap();
            assert_eq!(
                entry.labels.get("step"),
                Some(step),
                "round {round}: acknowledged label of {id} lost"
            );
        }
    }
    println!(
        "{ROUNDS} SIGKILL rounds: {} acknowledged creates and {} labels all present",
        created.len(),
        labelled.len()
    );
    assert!(
        created.len() > ROUNDS / 2,
        "the worker rarely got to write; the test proves little"
    );
}
