//! The durable replay guard reads its store only if it is a regular file
//! of bounded size at the path itself: a FIFO, a device, a symbolic link or
//! a huge file there is refused at once, never waited on or read whole.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tyrum_secrets_seal::{FileReplayGuard, ReplayError};

/// Opens the guard at `path` on another thread; fails the test if the open
/// does not return (a generous bound: only "does not hang" is checked).
fn open_without_hanging(path: &Path) -> Result<FileReplayGuard, ReplayError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(FileReplayGuard::open(owned));
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("FileReplayGuard::open({}) hangs", path.display()))
}

fn mkfifo(path: &Path) {
    assert!(
        std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success()
    );
}

#[cfg(unix)]
#[test]
fn a_replay_store_at_a_fifo_or_device_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("replay");
    mkfifo(&fifo);
    for path in [fifo, PathBuf::from("/dev/zero"), dir.path().to_owned()] {
        let result = open_without_hanging(&path);
        let err = result.expect_err("a special file opened as a replay store");
        assert!(
            err.to_string().contains("not a regular file"),
            "{}: {err}",
            path.display()
        );
    }
}

/// A link planted at the store's path would redirect the guard's appends
/// and truncations (it cuts torn lines off) to another file.
#[cfg(unix)]
#[test]
fn a_symlink_at_the_replay_store_path_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious");
    std::fs::write(&target, b"not a replay store, and no header line").unwrap();
    let link = dir.path().join("replay");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = open_without_hanging(&link).expect_err("opened through a symbolic link");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"not a replay store, and no header line"
    );

    // A link swapped in after the guard opened: the next record refuses.
    let real = dir.path().join("real");
    let guard = FileReplayGuard::open(&real).unwrap();
    std::fs::remove_file(&real).unwrap();
    std::os::unix::fs::symlink(&target, &real).unwrap();
    let id = tyrum_secrets_seal::EnvelopeId::from_bytes([9; 16]);
    let now = tyrum_secrets_core::Timestamp::from_unix_millis(0);
    let later = tyrum_secrets_core::Timestamp::from_unix_millis(100);
    use tyrum_secrets_seal::ReplayGuard as _;
    assert!(guard.record(&id, later, now).is_err());
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"not a replay store, and no header line"
    );
}
