//! An unreadable secret file is `PermissionDenied`, tested for real.
//!
//! Tests run as root here, and root reads mode-000 files. So `main` builds
//! the volumes, then re-executes this binary as user `nobody` through
//! `setpriv` (util-linux), where mode 000 does deny the read. Without root the
//! child runs as the current user; without `setpriv` the test is reported as
//! ignored with the reason.

#![allow(clippy::expect_used, reason = "a test fails loudly on a broken setup")]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use support::kubelet::KubeletVolume;
use tyrum_secrets_core::{ExposeSecret, Locator, ProviderError, SecretProvider, VersionSelector};
use tyrum_secrets_env::MountedSecretProvider;

const WORKER: &str = "TYRUM_MOUNT_WORKER_ROOT";
const NOBODY: &str = "65534";
/// The worker's exit code when it cannot reach the test files at all (a
/// umask or mount that keeps `nobody` out): the check did not run.
const SETUP_FAILED: u8 = 3;

enum Failure {
    Setup(String),
    Check(String),
}

fn main() -> ExitCode {
    if let Some(root) = std::env::var_os(WORKER) {
        return match check_as_unprivileged(Path::new(&root)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Setup(message)) => {
                eprintln!("{message}");
                ExitCode::from(SETUP_FAILED)
            }
            Err(Failure::Check(message)) => {
                eprintln!("worker failed: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let name = "an_unreadable_file_is_permission_denied_for_an_unprivileged_reader";
    match run() {
        Ok(Outcome::Ran) => {
            println!("test {name} ... ok");
            println!("\ntest result: ok. 1 passed; 0 failed");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Skipped(reason)) => {
            println!("test {name} ... ignored, {reason}");
            println!("\ntest result: ok. 0 passed; 0 failed; 1 ignored");
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("test {name} ... FAILED\n    {message}");
            println!("\ntest result: FAILED. 0 passed; 1 failed");
            ExitCode::FAILURE
        }
    }
}

enum Outcome {
    Ran,
    Skipped(String),
}

fn make_readable_by_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

fn run() -> Result<Outcome, String> {
    let base = tempfile::tempdir().expect("tempdir");
    make_readable_by_all(base.path());

    // kubelet layout: the data file of `locked` is mode 000.
    let kubelet = base.path().join("kubelet");
    std::fs::create_dir(&kubelet).expect("mkdir");
    make_readable_by_all(&kubelet);
    let volume = KubeletVolume::create(
        &kubelet,
        &[
            ("open", b"readable-value-1".to_vec()),
            ("locked", b"locked-value-22".to_vec()),
            ("search-only/nested", b"nested-value-333".to_vec()),
        ],
    )
    .expect("kubelet write");
    let data = kubelet.join(volume.data_target().expect("..data"));
    std::fs::set_permissions(data.join("locked"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod 000");
    // A directory others may search but not list: reading through it needs
    // only the search bit, as a plain open of the path would.
    std::fs::set_permissions(
        data.join("search-only"),
        std::fs::Permissions::from_mode(0o711),
    )
    .expect("chmod 711");

    // Plain files, as a subPath mount.
    let plain = base.path().join("plain");
    std::fs::create_dir(&plain).expect("mkdir");
    make_readable_by_all(&plain);
    std::fs::write(plain.join("open"), b"readable-value-1").expect("write");
    std::fs::set_permissions(plain.join("open"), std::fs::Permissions::from_mode(0o644))
        .expect("chmod");
    std::fs::write(plain.join("locked"), b"locked-value-22").expect("write");
    std::fs::set_permissions(plain.join("locked"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod 000");

    let exe = std::env::current_exe().expect("current_exe");
    let privileged = std::fs::File::open(plain.join("locked")).is_ok();
    for root in [&kubelet, &plain] {
        let mut command = if privileged {
            let mut command = Command::new("setpriv");
            command
                .args([
                    &format!("--reuid={NOBODY}"),
                    &format!("--regid={NOBODY}"),
                    "--clear-groups",
                ])
                .arg(&exe);
            command
        } else {
            Command::new(&exe)
        };
        command.env(WORKER, root);
        let output = match command.output() {
            Ok(output) => output,
            Err(e) if privileged && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Outcome::Skipped(format!(
                    "running as root and setpriv is not installed ({e})"
                )));
            }
            Err(e) => return Err(format!("spawn the worker: {e}")),
        };
        // setpriv exits 126/127 when it cannot execute the binary.
        let code = output.status.code();
        if privileged && matches!(code, Some(126 | 127)) || code == Some(i32::from(SETUP_FAILED)) {
            return Ok(Outcome::Skipped(format!(
                "the unprivileged worker could not reach the test files: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        if !output.status.success() {
            return Err(format!(
                "worker for {} exited with {}: {}",
                root.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    Ok(Outcome::Ran)
}

fn check_as_unprivileged(root: &Path) -> Result<(), Failure> {
    let provider =
        MountedSecretProvider::open(root).map_err(|e| Failure::Setup(format!("open: {e}")))?;
    let locator = |name| Locator::new(name).expect("valid locator");
    // The reader can read at all: the denial below is the file's mode.
    let open = provider
        .read(&locator("open"), VersionSelector::Latest)
        .map_err(|e| Failure::Setup(format!("readable file: {e}")))?;
    if open.value.expose_secret() != b"readable-value-1" {
        return Err(Failure::Check("readable file read back wrong".into()));
    }
    if root.join("..data").exists() {
        match provider.read(&locator("search-only/nested"), VersionSelector::Latest) {
            Ok(got) if got.value.expose_secret() == b"nested-value-333" => {}
            Ok(_) => return Err(Failure::Check("nested file read back wrong".into())),
            Err(e) => {
                return Err(Failure::Check(format!(
                    "a file under a search-only directory does not read: {e}"
                )));
            }
        }
    }
    match provider.read(&locator("locked"), VersionSelector::Latest) {
        Err(ProviderError::PermissionDenied { message }) => {
            if message.contains("locked-value") {
                return Err(Failure::Check("the error holds the value".into()));
            }
            Ok(())
        }
        Err(e) => Err(Failure::Check(format!(
            "expected PermissionDenied, got {e}"
        ))),
        Ok(_) => Err(Failure::Check("a mode-000 file was read".into())),
    }
}
