//! `tyrum-secrets run -- cat FILE` throughput, with its baselines measured
//! in the same run, over log-like text that holds registered values:
//!
//! - `cat_pipe`: `cat FILE` through a plain pipe into this process: the
//!   floor of moving the bytes at all;
//! - `run_cat`: `tyrum-secrets run -- cat FILE`, the child's output through
//!   the CLI's redacting stream (open, pre-load and spawn included), the
//!   store's key derived from a passphrase (Argon2id at OWASP's minimum,
//!   19 MiB and 2 passes, about 35 ms of every run);
//! - `run_cat_key_file`: the same with the store's key in a key file (no
//!   derivation), as a service host keeps it;
//! - `redact_str`: [`Redactor::redact_str`] over the same text in this
//!   process, with the same values registered: the redactor's own
//!   throughput, as `benches/redaction.rs` measures it. The target is
//!   `run_cat` at 0.8 or more of it.
//!
//! Environment: `CLI_BENCH_MIB` (text size, default 256), `CLI_BENCH_VALUES`
//! (values put into the store, default 100). Run with `cargo bench -p
//! tyrum-secrets-cli --bench run`; smoke-run with `CLI_BENCH_MIB=16
//! cargo bench -p tyrum-secrets-cli --bench run -- --warm-up-time 1
//! --measurement-time 2`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark set-up: a failure should abort the run"
)]

use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use tyrum_secrets::{HandleId, Redactor, SecretBytes};

const BIN: &str = env!("CARGO_BIN_EXE_tyrum-secrets");

/// Deterministic xorshift64*, so every run measures the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len())] as char)
            .collect()
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Log-like text of about `bytes` bytes, as `benches/redaction.rs` makes
/// it: roughly one line in 2,000 carries one of `values`.
fn make_text(bytes: usize, values: &[String], rng: &mut Rng) -> String {
    const LEVELS: [&str; 5] = ["TRACE", "DEBUG", " INFO", " WARN", "ERROR"];
    const WORDS: [&str; 8] = [
        "request",
        "completed",
        "retrying",
        "tool",
        "call",
        "status",
        "latency",
        "queued",
    ];
    let mut text = String::with_capacity(bytes + 512);
    let mut line = 0u64;
    while text.len() < bytes {
        line += 1;
        let words: Vec<&str> = (0..4 + rng.below(6)).map(|_| WORDS[rng.below(8)]).collect();
        text.push_str(&format!(
            "2026-11-28T12:{:02}:{:02}.{:03}Z {} gateway::tool_call{{conversation=c-{} tool=http.get}}: {} request_id={} status={} url=https://api.example.com/v1/items/{}",
            (line / 60_000) % 60,
            (line / 1000) % 60,
            line % 1000,
            LEVELS[rng.below(5)],
            rng.below(10_000),
            words.join(" "),
            rng.token(16),
            [200, 201, 404, 500][rng.below(4)],
            rng.below(100_000),
        ));
        if rng.below(2000) == 0 {
            text.push_str(" auth=");
            text.push_str(&values[rng.below(values.len())]);
        }
        text.push('\n');
    }
    text
}

/// The binary with a single-host state in `dir`: its key in `dir/key` if
/// there is one, else derived from `dir/passphrase` (cheap key derivation:
/// the open is not what is measured).
fn cli(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("TYRUM_SECRETS_PROFILE", "single-host")
        .env("TYRUM_SECRETS_STATE_DIR", dir.join("state"));
    if dir.join("key").exists() {
        command.env("TYRUM_SECRETS_KEY_FILE", dir.join("key"));
    } else {
        command
            .env("TYRUM_SECRETS_PASSPHRASE_FILE", dir.join("passphrase"))
            .env("TYRUM_SECRETS_FILE_KDF_MEMORY_KIB", "19456")
            .env("TYRUM_SECRETS_FILE_KDF_PASSES", "2")
            .env("TYRUM_SECRETS_FILE_KDF_LANES", "1");
    }
    command
}

/// A state in `dir` (with a passphrase, or a key file when `key_file`)
/// holding `values`.
fn state(dir: &Path, key_file: bool, values: &[String]) {
    if key_file {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap();
        std::fs::write(dir.join("key"), key).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir.join("key"), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
    } else {
        std::fs::write(dir.join("passphrase"), "bench passphrase\n").unwrap();
    }
    assert!(
        cli(dir, &["init"])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    for value in values {
        put(dir, value);
    }
}

fn put(dir: &Path, value: &str) {
    let mut child = cli(dir, &["put", "--scope", "bench", "--kind", "api_key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Runs `command`, reading its standard output into a sink; returns the
/// bytes read.
fn drain(mut command: Command) -> u64 {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let n = std::io::copy(&mut out, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
    n
}

fn bench_run(c: &mut Criterion) {
    let bytes = env_usize("CLI_BENCH_MIB", 256) << 20;
    let count = env_usize("CLI_BENCH_VALUES", 100).max(1);
    let mut rng = Rng(0x05EE_DC11);
    let values: Vec<String> = (0..count)
        .map(|_| format!("sk-live-{}", rng.token(32)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    state(dir.path(), false, &values);
    let keyed = tempfile::tempdir().unwrap();
    state(keyed.path(), true, &values);
    let text = make_text(bytes, &values, &mut rng);
    let file = dir.path().join("log.txt");
    std::fs::write(&file, &text).unwrap();

    let redactor = Redactor::new();
    let handles: Vec<HandleId> = (0..count).map(|_| HandleId::generate().unwrap()).collect();
    let secrets: Vec<SecretBytes> = values
        .iter()
        .map(|v| SecretBytes::from(v.as_bytes().to_vec()))
        .collect();
    redactor
        .register_all(handles.iter().zip(secrets.iter()))
        .unwrap();

    // The redacted output is not the input: the values were masked.
    let mut run = cli(dir.path(), &["run", "--", "cat"]);
    run.arg(&file);
    let masked = drain(run);
    assert_ne!(masked, text.len() as u64, "run -- cat did not mask");
    let mut run = cli(keyed.path(), &["run", "--", "cat"]);
    run.arg(&file);
    assert_eq!(drain(run), masked, "the key-file state masks the same");

    let mut group = c.benchmark_group(format!("cli_run/{count}_values"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("cat_pipe", |b| {
        b.iter(|| {
            let mut cat = Command::new("cat");
            cat.arg(&file);
            black_box(drain(cat))
        });
    });
    group.bench_function("run_cat", |b| {
        b.iter(|| {
            let mut run = cli(dir.path(), &["run", "--", "cat"]);
            run.arg(&file);
            black_box(drain(run))
        });
    });
    group.bench_function("run_cat_key_file", |b| {
        b.iter(|| {
            let mut run = cli(keyed.path(), &["run", "--", "cat"]);
            run.arg(&file);
            black_box(drain(run))
        });
    });
    group.bench_function("redact_str", |b| {
        b.iter(|| black_box(redactor.redact_str(black_box(&text)).as_str().len()));
    });
    group.finish();

    let mut startup = c.benchmark_group(format!("cli_run/{count}_values"));
    startup.sample_size(10).sampling_mode(SamplingMode::Flat);
    // What every run costs before the first byte: starting the CLI and
    // opening the store (its Argon2id key derivation above all), so the
    // streaming rate is 256 MiB / (run_cat - run_startup).
    startup.bench_function("run_startup", |b| {
        b.iter(|| black_box(drain(cli(dir.path(), &["run", "--", "true"]))));
    });
    startup.bench_function("run_startup_key_file", |b| {
        b.iter(|| black_box(drain(cli(keyed.path(), &["run", "--", "true"]))));
    });
    startup.finish();
}

mod group {
    #![allow(
        missing_docs,
        reason = "criterion_group! generates an undocumented pub fn"
    )]
    criterion::criterion_group!(benches, super::bench_run);
}
criterion_main!(group::benches);
