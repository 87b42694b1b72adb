//! A state directory for the built `tyrum-secrets` binary, and checks that
//! a canary value never shows where it must not.

#![allow(dead_code, reason = "each test file uses part of the support")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_tyrum-secrets");

/// A random canary value: `sk-canary-` and 32 hex digits.
pub(crate) fn canary() -> String {
    let a = RandomState::new().build_hasher().finish();
    let b = RandomState::new().build_hasher().finish();
    format!("sk-canary-{a:016x}{b:016x}")
}

/// A temporary single-host state (cheap key derivation) and every output
/// of the commands run on it, for the leak checks.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) canaries: Vec<String>,
    outputs: Mutex<Vec<Vec<u8>>>,
}

impl Env {
    /// A config in the environment, nothing created yet.
    pub(crate) fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("passphrase"),
            "correct horse battery staple\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Env {
            dir,
            canaries: Vec::new(),
            outputs: Mutex::new(Vec::new()),
        }
    }

    /// A config and an initialised state.
    pub(crate) fn init() -> Env {
        let env = Env::new();
        let out = env.run(&["init"], None);
        assert_ok(&out);
        env
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// The binary with a clean environment and this state's config.
    /// `tyrum-secrets run --env KEY=<handle> -- sh -c <script>`, not
    /// started.
    #[allow(dead_code, reason = "not every test binary runs a script")]
    pub(crate) fn sh_command(&self, handle: &str, script: &str) -> Command {
        let var = format!("KEY={handle}");
        self.command(&["run", "--env", &var, "--", "sh", "-c", script])
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("TYRUM_SECRETS_PROFILE", "single-host")
            .env("TYRUM_SECRETS_STATE_DIR", self.state_dir())
            .env("TYRUM_SECRETS_PASSPHRASE_FILE", self.path("passphrase"))
            .env("TYRUM_SECRETS_FILE_KDF_MEMORY_KIB", "19456")
            .env("TYRUM_SECRETS_FILE_KDF_PASSES", "2")
            .env("TYRUM_SECRETS_FILE_KDF_LANES", "1");
        command
    }

    /// Runs the binary with `stdin` (or an empty standard input).
    pub(crate) fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.run_command(self.command(args), stdin)
    }

    /// Runs `command` with `stdin`, remembering its output.
    pub(crate) fn run_command(&self, mut command: Command, stdin: Option<&[u8]>) -> Output {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            // A command that fails before reading closes the pipe early.
            let _ = input.write_all(bytes);
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        self.remember(&out);
        out
    }

    pub(crate) fn remember(&self, out: &Output) {
        let mut outputs = self.outputs.lock().unwrap();
        outputs.push(out.stdout.clone());
        outputs.push(out.stderr.clone());
    }

    /// Stores `value` with `put` and returns its handle.
    pub(crate) fn put(&mut self, value: &str, extra: &[&str]) -> String {
        self.canaries.push(value.to_owned());
        let mut args = vec!["put", "--scope", "ci", "--kind", "api_key"];
        args.extend_from_slice(extra);
        let out = self.run(&args, Some(format!("{value}\n").as_bytes()));
        assert_ok(&out);
        let handle = stdout(&out).trim().to_owned();
        assert!(handle.starts_with("secret:"), "{handle}");
        handle
    }

    /// No canary (raw, base64 or hex) in any output seen so far, nor in
    /// any file of the state directory.
    pub(crate) fn assert_no_leaks(&self) {
        let outputs = self.outputs.lock().unwrap();
        for canary in &self.canaries {
            for form in forms(canary) {
                for out in outputs.iter() {
                    assert!(
                        !contains(out, form.as_bytes()),
                        "{form} leaked into output: {}",
                        String::from_utf8_lossy(out)
                    );
                }
                for (path, bytes) in files(&self.state_dir()) {
                    assert!(
                        !contains(&bytes, form.as_bytes()),
                        "{form} leaked into {}",
                        path.display()
                    );
                }
            }
        }
    }
}

/// The forms of a value that must never show: raw, base64, hex.
pub(crate) fn forms(value: &str) -> Vec<String> {
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    vec![value.to_owned(), STANDARD.encode(value), hex]
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir`, with its bytes.
pub(crate) fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {}; stdout: {}",
        out.status.code(),
        stderr(out),
        stdout(out)
    );
}

/// Failed with `code` and said why in exactly one line on stderr that
/// contains `says` (case-insensitive).
pub(crate) fn assert_error(out: &Output, code: i32, says: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}; stdout: {}",
        stderr(out),
        stdout(out)
    );
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("tyrum-secrets: "), "{err:?}");
    assert!(
        err.to_lowercase().contains(&says.to_lowercase()),
        "{err:?} does not say {says:?}"
    );
}
