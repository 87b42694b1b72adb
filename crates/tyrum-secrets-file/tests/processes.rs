//! Real processes against one store file: writers killed with SIGKILL at
//! random moments, concurrent writer processes, and a lock holder that dies.
//!
//! `harness = false`: the testkit's process runner runs the checks and
//! re-executes this binary for the child processes.

#![allow(
    clippy::unwrap_used,
    reason = "a test binary without the test harness: a panic is a test failure"
)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, VersionSelector,
};
use tyrum_secrets_file::{FileError, FileOptions, FileProvider, KeySource};
use tyrum_secrets_testkit::process;

const PASSPHRASE: &str = "process-test passphrase";

fn options() -> FileOptions {
    FileOptions::default().dangerous_insecure_kdf_for_tests()
}

fn open(path: &Path) -> FileProvider {
    FileProvider::open_with(path, KeySource::passphrase(PASSPHRASE), options())
        .unwrap_or_else(|e| panic!("the store does not open: {e}"))
}

fn loc(name: &str) -> Locator {
    Locator::new(name).unwrap()
}

fn main() {
    process::main(
        &[
            ("sigkilled_writers_lose_no_acknowledged_write", crash_rounds),
            ("four_writer_processes_lose_no_write", concurrent_processes),
            ("lock_of_a_killed_holder_is_released", stale_lock_recovered),
        ],
        |role, _args| worker(role),
    );
}

fn worker(role: &str) {
    let path = PathBuf::from(std::env::var("TYRUM_STORE").unwrap());
    let tag = std::env::var("TYRUM_TAG").unwrap_or_default();
    match role {
        // Writes forever, printing an ack after each write that returned Ok.
        "crash" => {
            let p = open(&path);
            for i in 0u64.. {
                let value = format!("value-{tag}-{i}");
                p.write(
                    &loc(&format!("{tag}/k{i}")),
                    &SecretBytes::from(value.into_bytes()),
                )
                .unwrap();
                println!("ack {i}");
                if i % 8 == 7 {
                    p.compact().unwrap();
                }
            }
        }
        "concurrent" => {
            let p = open(&path);
            for i in 0..250 {
                let value = format!("writer-{tag}-{i}");
                p.write(&loc("shared"), &SecretBytes::from(value.into_bytes()))
                    .unwrap();
            }
        }
        "hold-lock" => {
            let p = open(&path);
            let _lock = p.lock_writers().unwrap();
            println!("locked");
            std::thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown worker role {other}"),
    }
}

fn spawn(role: &str, path: &Path, tag: &str) -> Child {
    process::worker_command(role)
        .env("TYRUM_STORE", path)
        .env("TYRUM_TAG", tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn crash_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.tyrum");
    let mut jitter = process::Rng::from_env_or_time();
    let mut acked_total = 0;
    for round in 0..200 {
        let tag = format!("r{round}");
        let mut child = spawn("crash", &path, &tag);
        std::thread::sleep(Duration::from_micros(jitter.below(12_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child.wait().unwrap();
        let acked: Vec<u64> = out
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .filter_map(|line| line.trim().strip_prefix("ack ")?.parse().ok())
            .collect();
        if !path.exists() {
            assert!(acked.is_empty(), "round {round}: acked writes but no store");
            continue;
        }
        let p = open(&path);
        for i in &acked {
            let got = p
                .read(&loc(&format!("{tag}/k{i}")), VersionSelector::Latest)
                .unwrap_or_else(|e| panic!("round {round}: acked write {i} is lost: {e}"));
            assert!(
                got.value.expose_secret() == format!("value-{tag}-{i}").as_bytes(),
                "round {round}: write {i} reads another value"
            );
        }
        acked_total += acked.len();
    }
    // The kill times must let some writes through, or nothing was tested.
    assert!(acked_total > 0, "no write was acknowledged in 200 rounds");
    // A final writer appends cleanly after 200 kills.
    let p = open(&path);
    p.write(
        &loc("final"),
        &SecretBytes::from(b"after-the-storm".to_vec()),
    )
    .unwrap();
    // Compaction sweeps the temporaries of rewrites killed mid-way.
    p.compact().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries survived: {leftovers:?}");
    eprintln!("crash rounds: {acked_total} acknowledged writes survived 200 SIGKILLs");
}

fn concurrent_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("concurrent.tyrum");
    // Create the store first so the four processes race on writes only.
    drop(open(&path));
    let children: Vec<Child> = (0..4)
        .map(|w| spawn("concurrent", &path, &w.to_string()))
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer process failed");
    }
    let p = open(&path);
    let shared = loc("shared");
    let versions = p.versions(&shared).unwrap();
    assert_eq!(versions.len(), 1000, "writes were lost");
    let mut values: Vec<Vec<u8>> = versions
        .iter()
        .map(|info| {
            p.read(&shared, VersionSelector::Exact(info.version))
                .unwrap()
                .value
                .expose_secret()
                .to_vec()
        })
        .collect();
    values.sort();
    let mut expected: Vec<Vec<u8>> = (0..4)
        .flat_map(|w| (0..250).map(move |i| format!("writer-{w}-{i}").into_bytes()))
        .collect();
    expected.sort();
    assert!(
        values == expected,
        "the 1000 versions are not the 1000 writes"
    );
}

fn stale_lock_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lock.tyrum");
    drop(open(&path));
    let mut holder = spawn("hold-lock", &path, "");
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");

    let waiting = FileProvider::open_with(
        &path,
        KeySource::passphrase(PASSPHRASE),
        options().lock_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let err = waiting
        .write(&loc("blocked"), &SecretBytes::from(b"must-wait".to_vec()))
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err}");
    assert!(matches!(
        waiting.lock_writers(),
        Err(FileError::LockTimeout { .. })
    ));
    // Readers are not blocked by the writer lock.
    assert!(waiting.list().unwrap().is_empty());

    holder.kill().unwrap(); // SIGKILL: the holder never unlocks
    holder.wait().unwrap();
    let start = Instant::now();
    waiting
        .write(
            &loc("unblocked"),
            &SecretBytes::from(b"after-the-kill".to_vec()),
        )
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "the dead holder's lock was not released"
    );
}
