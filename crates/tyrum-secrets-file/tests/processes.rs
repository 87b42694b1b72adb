//! Real processes against one store file: anchored writers killed with
//! SIGKILL at random moments, an upgrade from format 1 killed at random
//! moments, concurrent writer processes, and a lock holder that dies.
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
use tyrum_secrets_file::{FileError, FileOptions, FileProvider, KeySource, StoreKey};
use tyrum_secrets_testkit::process;

const PASSPHRASE: &str = "process-test passphrase";

fn options() -> FileOptions {
    FileOptions::default().dangerous_insecure_kdf_for_tests()
}

fn open(path: &Path) -> FileProvider {
    FileProvider::open_with(path, KeySource::passphrase(PASSPHRASE), options())
        .unwrap_or_else(|e| panic!("the store does not open: {e}"))
}

/// The crash rounds keep the anchor in `<store>.anchor`.
fn open_anchored(path: &Path) -> FileProvider {
    FileProvider::open_with(
        path,
        KeySource::passphrase(PASSPHRASE),
        options().anchor_beside(),
    )
    .unwrap_or_else(|e| panic!("the anchored store does not open: {e}"))
}

/// The key of the format-1 test vector the upgrade rounds start from.
fn v1_key() -> KeySource {
    KeySource::Key(StoreKey::from_bytes(std::array::from_fn(|i| i as u8)))
}

fn loc(name: &str) -> Locator {
    Locator::new(name).unwrap()
}

fn main() {
    process::main(
        &[
            ("sigkilled_writers_lose_no_acknowledged_write", crash_rounds),
            (
                "sigkilled_upgrade_leaves_a_complete_v1_or_v2_store",
                upgrade_rounds,
            ),
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
            let p = open_anchored(&path);
            println!("ready");
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
        "upgrade" => {
            println!("ready");
            let upgraded = FileProvider::upgrade(&path, v1_key(), options().anchor_beside())
                .unwrap_or_else(|e| panic!("upgrade failed: {e}"));
            println!("done {upgraded}");
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

/// Starts `role`, waits until it says it is ready (its open is done), lets
/// it run for a random while, kills it with SIGKILL, and returns its
/// complete output lines.
fn run_and_kill(
    role: &str,
    path: &Path,
    tag: &str,
    max_micros: u64,
    jitter: &mut process::Rng,
) -> Vec<String> {
    let mut child = spawn(role, path, tag);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "ready", "the {role} worker did not start");
    std::thread::sleep(Duration::from_micros(jitter.below(max_micros)));
    child.kill().unwrap(); // SIGKILL on Unix
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    child.wait().unwrap();
    rest.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| line.trim().to_owned())
        .collect()
}

fn crash_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.tyrum");
    drop(open_anchored(&path));
    let mut jitter = process::Rng::from_env_or_time();
    let mut acked_total = 0;
    for round in 0..200 {
        let tag = format!("r{round}");
        let lines = run_and_kill("crash", &path, &tag, 60_000, &mut jitter);
        let acked: Vec<u64> = lines
            .iter()
            .filter_map(|line| line.strip_prefix("ack ")?.parse().ok())
            .collect();
        // The anchor never disagrees with the file after a kill: the store
        // opens against it every round.
        let p = open_anchored(&path);
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
    let p = open_anchored(&path);
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

/// Every value of a store, by locator and version.
fn all_values(p: &FileProvider) -> Vec<(String, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for locator in p.list().unwrap() {
        for info in p.versions(&locator).unwrap() {
            if let Ok(got) = p.read(&locator, VersionSelector::Exact(info.version)) {
                out.push((
                    locator.to_string(),
                    info.version.get(),
                    got.value.expose_secret().to_vec(),
                ));
            }
        }
    }
    out
}

fn upgrade_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgrade.tyrum");
    let anchor = dir.path().join("upgrade.tyrum.anchor");
    // A format-1 store large enough for a kill to land mid-upgrade: the
    // format-1 vector, appended to (appends keep format 1).
    let vector = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1-rawkey.tyrum");
    std::fs::copy(&vector, &path).unwrap();
    let p = FileProvider::open_with(&path, v1_key(), options()).unwrap();
    let batch: Vec<(Locator, SecretBytes)> = (0..3000)
        .map(|i| {
            (
                loc(&format!("bulk/{}", i % 300)),
                SecretBytes::from(format!("bulk-{i}").into_bytes()),
            )
        })
        .collect();
    p.write_many(&batch).unwrap();
    assert_eq!(p.format_version(), 1);
    let expected = all_values(&p);
    drop(p);
    let v1 = std::fs::read(&path).unwrap();
    // How long an upgrade takes here, so the kills spread over all of it.
    let started = Instant::now();
    let mut child = spawn("upgrade", &path, "");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        child.wait().unwrap().success() && out.contains("done true"),
        "{out}"
    );
    let span = (started.elapsed().as_micros() as u64).max(1_000) * 3 / 2;
    eprintln!(
        "one upgrade (with process start) takes {} ms",
        span * 2 / 3 / 1000
    );
    let mut jitter = process::Rng::from_env_or_time();
    let (mut saw_v1, mut saw_v2) = (0, 0);
    for round in 0..40 {
        std::fs::write(&path, &v1).unwrap();
        let _ = std::fs::remove_file(&anchor);
        let lines = run_and_kill("upgrade", &path, "", span, &mut jitter);
        // Without the anchor: the complete old store or the complete new one.
        let p = FileProvider::open_with(&path, v1_key(), options())
            .unwrap_or_else(|e| panic!("round {round}: the store does not open: {e}"));
        let format = p.format_version();
        assert!(
            all_values(&p) == expected,
            "round {round}: format {format} lost values"
        );
        drop(p);
        if lines.iter().any(|l| l.starts_with("done")) {
            assert_eq!(format, 2, "round {round}: acknowledged but not upgraded");
        }
        if format == 1 {
            saw_v1 += 1;
            // The killed upgrade announced at most the new file: running it
            // again succeeds.
            assert!(FileProvider::upgrade(&path, v1_key(), options().anchor_beside()).unwrap());
        } else {
            saw_v2 += 1;
        }
        let p = FileProvider::open_with(&path, v1_key(), options().anchor_beside())
            .unwrap_or_else(|e| panic!("round {round}: the upgraded store fails its anchor: {e}"));
        assert_eq!(p.format_version(), 2);
        assert!(
            all_values(&p) == expected,
            "round {round}: values differ after the upgrade"
        );
    }
    eprintln!("upgrade rounds: killed {saw_v1} times before the rename, {saw_v2} after");
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
