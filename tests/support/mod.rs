//! Shared pieces of the multi-process tests: a tiny harness for
//! `harness = false` test binaries that re-execute themselves as workers,
//! and a seeded random generator.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that turns a test binary into a worker.
pub(crate) const WORKER_ENV: &str = "TYRUM_TEST_WORKER";

/// Runs `tests` (name, function) like libtest does, printing libtest's lines,
/// unless this process is a worker, in which case `worker` gets its role.
pub(crate) fn main(tests: &[(&str, fn())], worker: fn(&str, &[String])) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(role) = std::env::var(WORKER_ENV) {
        worker(&role, &args);
        return;
    }
    // `cargo test -- --include-ignored` and filters are passed through; run
    // the tests whose names contain every non-flag argument.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let selected: Vec<_> = tests
        .iter()
        .filter(|(name, _)| filters.iter().all(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = 0;
    for (name, test) in &selected {
        let outcome = std::panic::catch_unwind(test);
        match outcome {
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
        "\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

/// Starts this test binary again as a worker with `role` and `args`, its
/// stdout piped to the caller.
pub(crate) fn spawn_worker(role: &str, args: &[&str]) -> Child {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    Command::new(exe)
        .args(args)
        .env(WORKER_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a worker process")
}

/// xorshift64*: enough randomness for kill timings, reproducible from the
/// printed seed (set `TYRUM_TEST_SEED` to replay a run).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn from_env_or_time() -> Self {
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

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
