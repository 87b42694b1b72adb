//! What a failed `Secrets::open` leaves behind, and opens that must not
//! hang: a failed first open keeps `open.lock` and cleans up while it still
//! holds it (so a third open cannot run beside a second), a failed open
//! over an existing store writes nothing into it, and special files named
//! as key files are refused instead of blocking the open.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use support::{Setup, snapshot};
use tyrum_secrets::{AuditError, AuditRecord, AuditSink, OpenOptions, Secrets, file};

/// An audit sink that refuses every record (after `delay`).
#[derive(Debug)]
struct Refusing {
    delay: Duration,
}

impl AuditSink for Refusing {
    fn record(&self, _record: AuditRecord) -> Result<(), AuditError> {
        std::thread::sleep(self.delay);
        Err(AuditError::rejected("refused by the test"))
    }
}

fn mkfifo(path: &std::path::Path) {
    assert!(
        std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_failed_first_open_keeps_the_open_lock_so_a_third_open_waits_for_the_second() {
    let setup = Arc::new(Setup::new());
    // The operator made the state directory (a mounted volume, say).
    std::fs::create_dir(setup.state_dir()).unwrap();

    // A: a first open whose audit sink refuses the pre-load's record, so it
    // fails after creating the store, the catalog, the log ...
    let (a_inside_tx, a_inside_rx) = mpsc::channel::<()>();
    let a = {
        let setup = Arc::clone(&setup);
        std::thread::spawn(move || {
            let options = OpenOptions::new()
                .dangerous_insecure_kdf_for_tests()
                .audit_layer(move |_| {
                    let _ = a_inside_tx.send(());
                    Arc::new(Refusing {
                        delay: Duration::from_millis(1500),
                    })
                });
            Secrets::open_with(&setup.config(), options).map(drop)
        })
    };
    a_inside_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("A never got inside the open lock");
    // B: waits on A's open.lock, then blocks inside it (in its provider
    // layer) until told to go on.
    let (b_inside_tx, b_inside_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
    let b = {
        let setup = Arc::clone(&setup);
        std::thread::spawn(move || {
            let options = OpenOptions::new()
                .dangerous_insecure_kdf_for_tests()
                .provider_layer(move |_, p| {
                    let _ = b_inside_tx.send(());
                    let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
                    p
                });
            Secrets::open_with(&setup.config(), options).map(drop)
        })
    };
    assert!(a.join().unwrap().is_err(), "A was meant to fail");
    b_inside_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("B never got the open lock");
    assert!(
        setup.state_dir().join("open.lock").exists(),
        "the failed open removed open.lock"
    );
    // C: an ordinary open while B is inside the lock must wait for B.
    let (c_tx, c_rx) = mpsc::channel();
    {
        let setup = Arc::clone(&setup);
        std::thread::spawn(move || {
            let _ = c_tx.send(setup.open().map(drop).map_err(|e| e.to_string()));
        });
    }
    let c = c_rx.recv_timeout(Duration::from_secs(5));
    let _ = go_tx.send(());
    let b = b.join().unwrap();
    assert!(
        c.is_err(),
        "C finished while B held the open lock; C: {c:?}, B: {:?}",
        b.map_err(|e| e.to_string())
    );
    assert!(b.is_ok(), "{:?}", b.map_err(|e| e.to_string()));
    // C then goes ahead.
    c_rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
}

#[test]
fn a_failed_first_open_over_an_existing_store_writes_nothing_into_it() {
    let setup = Setup::new();
    std::fs::create_dir(setup.state_dir()).unwrap();
    // A store made before any open (by the CLI, or restored from a backup),
    // with no state record beside it.
    let store = setup.state_dir().join("secrets.tyrum");
    drop(
        file::FileProvider::open_with(
            &store,
            file::KeySource::passphrase("test passphrase"),
            file::FileOptions::default().dangerous_insecure_kdf_for_tests(),
        )
        .unwrap(),
    );
    let before = snapshot(&setup.state_dir());
    let failed = Secrets::open_with(
        &setup.config(),
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .audit_layer(|_| {
                Arc::new(Refusing {
                    delay: Duration::ZERO,
                })
            }),
    );
    assert!(failed.is_err());
    let after = snapshot(&setup.state_dir());
    let changed: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v) && k.as_str() != "open.lock")
        .map(|(k, _)| k.clone())
        .collect();
    assert!(changed.is_empty(), "a failed open changed {changed:?}");
    // And the next open, which succeeds, makes the keys then.
    let secrets = setup.open().unwrap();
    assert_eq!(secrets.verify_audit().unwrap().len(), 1);
}

#[test]
fn a_key_file_that_is_a_fifo_is_refused_instead_of_blocking_the_open() {
    let setup = Setup::new();
    let fifo = setup.dir().join("key.fifo");
    mkfifo(&fifo);
    let mut config = setup.config();
    config.passphrase_file = None;
    config.key_file = Some(fifo);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = Secrets::open_with(
            &config,
            OpenOptions::new().dangerous_insecure_kdf_for_tests(),
        );
        let _ = tx.send(r.map(drop).map_err(|e| e.to_string()));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Secrets::open with key_file = a FIFO did not return");
    let err = result.unwrap_err();
    assert!(err.contains("key.fifo"), "{err}");
}

#[test]
fn an_audit_key_file_that_is_a_fifo_is_refused_instead_of_blocking_the_open() {
    let setup = Setup::new();
    let fifo = setup.dir().join("audit-key.fifo");
    mkfifo(&fifo);
    let mut config = setup.config();
    config.audit.key_file = Some(fifo);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = Secrets::open_with(
            &config,
            OpenOptions::new().dangerous_insecure_kdf_for_tests(),
        );
        let _ = tx.send(r.map(drop).map_err(|e| e.to_string()));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Secrets::open with audit.key_file = a FIFO did not return");
    let err = result.unwrap_err();
    assert!(err.contains("audit-key.fifo"), "{err}");
}

#[test]
fn a_config_file_that_is_a_fifo_is_refused_instead_of_blocking_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    mkfifo(&fifo);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(tyrum_secrets::Config::from_file(&fifo).map_err(|e| e.to_string()));
    });
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("loading a FIFO as the config did not return")
        .unwrap_err();
    assert!(err.contains("config.fifo"), "{err}");
}
