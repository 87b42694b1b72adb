//! Multi-process tests: a small runner for `harness = false` test binaries
//! that re-execute themselves as worker processes (crash tests kill them with
//! SIGKILL; concurrency tests run several at once), and a seeded generator
//! for kill timings.
//!
//! A test binary's `main` calls [`main`] with its tests and its worker
//! function. Run normally, it runs the tests and prints libtest's lines
//! (`test <name> ... ok`, `test result: ...`), so `cargo test` filters and
//! summaries work; started by [`worker_command`], it runs the worker role.
//!
//! ```no_run
//! use tyrum_secrets_testkit::process;
//!
//! fn worker(role: &str, args: &[String]) {
//!     // e.g. write in a loop, printing an acknowledgement after each Ok
//!     let _ = (role, args);
//! }
//!
//! fn killed_writer_loses_nothing() {
//!     let mut child = process::spawn_worker("writer", &["/tmp/store"]);
//!     child.kill().unwrap();
//!     child.wait().unwrap();
//! }
//!
//! fn main() {
//!     process::main(&[("killed_writer_loses_nothing", killed_writer_loses_nothing)], worker);
//! }
//! ```

#![allow(
    clippy::expect_used,
    reason = "test infrastructure: a broken environment fails the test run"
)]

use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that turns a test binary into a worker.
pub const WORKER_ENV: &str = "TYRUM_TEST_WORKER";

/// Runs `tests` (name, function) like libtest does, unless this process is a
/// worker, in which case `worker` gets its role and arguments.
///
/// Non-flag arguments filter tests by substring, as with libtest; `--list`
/// lists them. A test fails by panicking; the process exits with 101 if any
/// did.
pub fn main(tests: &[(&str, fn())], worker: fn(&str, &[String])) {
    run(tests, worker, None);
}

/// [`main`] for tests that need a real service: like libtest's
/// `#[ignore = reason]`, they run only with `--ignored` or
/// `--include-ignored` (as `scripts/test` passes) and are reported as
/// ignored otherwise.
pub fn main_ignored(reason: &str, tests: &[(&str, fn())], worker: fn(&str, &[String])) {
    run(tests, worker, Some(reason));
}

fn run(tests: &[(&str, fn())], worker: fn(&str, &[String]), ignore: Option<&str>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(role) = std::env::var(WORKER_ENV) {
        worker(&role, &args);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| filters.iter().all(|f| name.contains(f.as_str())))
        .collect();
    let run_ignored = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    if let (Some(reason), false) = (ignore, run_ignored) {
        println!("\nrunning {} tests", selected.len());
        for (name, _) in &selected {
            println!("test {name} ... ignored, {reason}");
        }
        println!(
            "\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; {} filtered out\n",
            selected.len(),
            tests.len() - selected.len()
        );
        return;
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = 0;
    for (name, test) in &selected {
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    let passed = selected.len() - failed;
    let status = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {} filtered out\n",
        tests.len() - selected.len()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

/// A command that runs this test binary again as a worker with `role`.
/// Add arguments, environment and stdio as the test needs.
pub fn worker_command(role: &str) -> Command {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut command = Command::new(exe);
    command.env(WORKER_ENV, role).stdin(Stdio::null());
    command
}

/// Starts this test binary again as a worker with `role` and `args`, its
/// stdout piped to the caller and its stderr inherited.
pub fn spawn_worker(role: &str, args: &[&str]) -> Child {
    worker_command(role)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a worker process")
}

/// xorshift64*: enough randomness for kill timings, reproducible from the
/// printed seed (set `TYRUM_TEST_SEED` to replay a run). Not for secrets.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from `TYRUM_TEST_SEED`, or from the clock; prints the seed.
    pub fn from_env_or_time() -> Self {
        let seed = std::env::var("TYRUM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            .max(1);
        println!("random seed {seed} (replay with TYRUM_TEST_SEED={seed})");
        Self(seed)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
