//! A Secret Service that is missing, goes away mid-test, or is locked gives
//! a typed error within the provider's bound: never a panic, never a hang.
//!
//! Each test starts its own private `dbus-daemon` (no service activation, so
//! nothing starts a Secret Service behind our back) and, where needed, its
//! own `gnome-keyring-daemon` on it with a fresh HOME. The provider must
//! talk to that bus, which it finds through `DBUS_SESSION_BUS_ADDRESS`; the
//! crate forbids `unsafe` (so no `set_var`), hence the checks run in a child
//! test process started with that variable set.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test code: a failed expectation is a test failure"
)]
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, VersionSelector,
};
use tyrum_secrets_keychain::{KeychainError, KeychainProvider, stores};

/// The bound each provider call gets in these tests.
const BOUND: Duration = Duration::from_secs(5);
/// "Does not hang": generous, never a performance assertion.
const NO_HANG: Duration = Duration::from_secs(60);
const CHILD_ROLE: &str = "TYRUM_KEYCHAIN_TEST_ROLE";
const KEYRING_PID: &str = "TYRUM_KEYCHAIN_TEST_KEYRING_PID";
const CANARY: &[u8] = b"CANARY-outage-51c0e2d4";

/// A child process that is killed when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a private session bus without service activation; returns it and
/// its address.
fn private_bus(dir: &Path) -> (Killed, String) {
    let config = dir.join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            dir.display()
        ),
    )
    .expect("write the bus config");
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon runs (install the dbus package; scripts/test does)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut address = String::new();
    BufReader::new(stdout)
        .read_line(&mut address)
        .expect("dbus-daemon prints its address");
    let address = address.trim().to_owned();
    assert!(address.starts_with("unix:"), "bus address: {address:?}");
    (Killed(child), address)
}

/// Starts an unlocked gnome-keyring with a fresh HOME on `bus`.
fn keyring_daemon(dir: &Path, bus: &str) -> Killed {
    let home = dir.join("home");
    let run = dir.join("run");
    std::fs::create_dir_all(home.join(".local/share")).expect("home");
    std::fs::create_dir_all(&run).expect("runtime dir");
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_RUNTIME_DIR", &run)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnome-keyring-daemon runs (install gnome-keyring; scripts/test does)");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(b"outage-test-pw\n")
        .expect("give gnome-keyring its password");
    drop(stdin);
    Killed(child)
}

/// Runs the ignored test `role` of this binary in a child process on `bus`
/// and checks that it passed.
fn run_child(role: &str, bus: &str, keyring_pid: Option<u32>) {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            role,
            "--exact",
            "--include-ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ROLE, role)
        .env("DBUS_SESSION_BUS_ADDRESS", bus);
    if let Some(pid) = keyring_pid {
        command.env(KEYRING_PID, pid.to_string());
    }
    let output = command.output().expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The child prints the errors an operator would read; shown with
    // --nocapture.
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {role} failed:\n{stdout}\n{stderr}"
    );
    assert!(
        !stdout.contains("CANARY-outage") && !stderr.contains("CANARY-outage"),
        "child {role} printed a value"
    );
}

/// Whether this process is the child playing `role`.
fn is_child(role: &str) -> bool {
    std::env::var(CHILD_ROLE).is_ok_and(|r| r == role)
}

/// Connects to the Secret Service on the child's bus, retrying while the
/// freshly started daemon claims its name.
fn connect_when_ready() -> KeychainProvider {
    let started = Instant::now();
    loop {
        match stores::secret_service(BOUND) {
            Ok(store) => {
                return KeychainProvider::builder(store)
                    .namespace("tyrum-outage")
                    .timeout(BOUND)
                    .build()
                    .expect("valid configuration");
            }
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("gnome-keyring never answered on the private bus: {e}"),
        }
    }
}

fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::from(bytes.to_vec())
}

#[test]
#[ignore = "needs dbus-daemon; run scripts/test"]
fn no_secret_service_on_the_bus_is_a_typed_error_within_the_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_bus, address) = private_bus(dir.path());
    run_child(
        "child_connects_to_a_bus_without_secret_service",
        &address,
        None,
    );
}

#[test]
#[ignore = "child role of no_secret_service_on_the_bus_is_a_typed_error_within_the_bound"]
fn child_connects_to_a_bus_without_secret_service() {
    if !is_child("child_connects_to_a_bus_without_secret_service") {
        return;
    }
    let started = Instant::now();
    match stores::secret_service(BOUND) {
        Err(e @ KeychainError::Unavailable { .. }) => {
            println!("no service: {e}");
            assert!(e.to_string().contains("Secret Service"), "{e}");
            assert!(ProviderError::from(e).is_transient());
        }
        Err(e) => panic!("a bus without a Secret Service gave {e:?}"),
        Ok(_) => panic!("connected to a Secret Service that does not exist"),
    }
    assert!(started.elapsed() < NO_HANG);
}

#[test]
#[ignore = "needs dbus-daemon and gnome-keyring; run scripts/test"]
fn secret_service_stopped_mid_test_is_a_typed_error_within_the_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_bus, address) = private_bus(dir.path());
    let keyring = keyring_daemon(dir.path(), &address);
    run_child(
        "child_loses_the_secret_service",
        &address,
        Some(keyring.0.id()),
    );
}

#[test]
#[ignore = "child role of secret_service_stopped_mid_test_is_a_typed_error_within_the_bound"]
fn child_loses_the_secret_service() {
    if !is_child("child_loses_the_secret_service") {
        return;
    }
    let provider = connect_when_ready();
    let locator = Locator::new("outage/api-key").expect("locator");
    let v1 = provider.write(&locator, &secret(CANARY)).expect("write");
    let read = provider
        .read(&locator, VersionSelector::Exact(v1))
        .expect("read while the service runs");
    assert_eq!(read.value.expose_secret(), CANARY);

    // Stop the daemon the parent started for this test, by its pid.
    let pid = std::env::var(KEYRING_PID).expect("the parent passes the keyring pid");
    let status = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "could not stop gnome-keyring {pid}");

    for attempt in 0..3 {
        let started = Instant::now();
        let results = [
            provider.read(&locator, VersionSelector::Latest).map(drop),
            provider.write(&locator, &secret(CANARY)).map(drop),
            provider.list().map(drop),
        ];
        for result in results {
            match result {
                Err(e @ ProviderError::Unavailable { .. }) => {
                    println!("stopped: {e}");
                    assert!(e.is_transient());
                    assert!(!format!("{e} {e:?}").contains("CANARY-outage"));
                }
                other => panic!("attempt {attempt}: a stopped Secret Service gave {other:?}"),
            }
        }
        assert!(started.elapsed() < NO_HANG);
    }
}

#[test]
#[ignore = "needs dbus-daemon and gnome-keyring; run scripts/test"]
fn locked_collection_is_a_typed_error_within_the_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_bus, address) = private_bus(dir.path());
    let _keyring = keyring_daemon(dir.path(), &address);
    run_child("child_meets_a_locked_collection", &address, None);
}

#[test]
#[ignore = "child role of locked_collection_is_a_typed_error_within_the_bound"]
fn child_meets_a_locked_collection() {
    if !is_child("child_meets_a_locked_collection") {
        return;
    }
    let provider = connect_when_ready();
    let locator = Locator::new("locked/api-key").expect("locator");
    provider.write(&locator, &secret(CANARY)).expect("write");

    // `secret-tool lock` crashes on Debian 12; ask the service directly.
    let status = Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("dbus-send runs");
    assert!(status.success(), "could not lock the login collection");

    let started = Instant::now();
    match provider.read(&locator, VersionSelector::Latest) {
        // No prompter can start on the private bus, so gnome-keyring
        // dismisses the unlock prompt: access denied, not a hang.
        Err(e @ ProviderError::PermissionDenied { .. }) => {
            println!("locked: {e}");
            assert!(!format!("{e} {e:?}").contains("CANARY-outage"));
        }
        other => panic!("a locked collection gave {other:?}"),
    }
    // Writing and listing meet the same lock: still "locked", never
    // reported as a missing service.
    match provider.write(&locator, &secret(CANARY)) {
        Err(e @ ProviderError::PermissionDenied { .. }) => {
            println!("locked write: {e}");
            assert!(!format!("{e} {e:?}").contains("CANARY-outage"));
        }
        other => panic!("writing to a locked collection gave {other:?}"),
    }
    match provider.list() {
        Err(ProviderError::PermissionDenied { .. }) => {}
        other => panic!("listing a locked collection gave {other:?}"),
    }
    assert!(started.elapsed() < NO_HANG);
}
