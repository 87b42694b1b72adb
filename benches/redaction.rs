//! Redaction throughput and registration cost, with their baselines
//! measured in the same run.
//!
//! `redaction/<values>`: for each number of registered values (each with all
//! its encoded variants), over log-like text that holds a few secrets:
//!
//! - `engine`: [`Redactor::redact_str`] over the whole text;
//! - `writer`: the same text written through [`Redactor::writer`] in 64 KiB
//!   chunks into `io::sink()`;
//! - `bare_scan`: a bare `aho-corasick` leftmost-longest `find_iter` over
//!   the same patterns, counting matches: what the first milestone's engine
//!   cost. The targets: `engine` and `writer` at least 2.5 times
//!   this at 1,000 and 10,000 values, and at least 1 GiB/s at 1,000;
//! - `naive_replace`: a loop calling `str::replace` once per registered
//!   variant, which is how many gateways redact today. It costs
//!   (variants × bytes), so it runs on a slice of the text sized to keep one
//!   iteration near a quarter of a second (1 MiB at most, 16 KiB at least).
//!   Every benchmark reports `Throughput::Bytes`, so compare the naive loop
//!   per byte (MiB/s), not per iteration.
//!
//! `registration/<values>`: with that many values registered, and a 32 KiB
//! PEM certificate bundle and an 8 KiB run of one byte among them:
//!
//! - `register_one`: registering one more 24-byte key (target: at most
//!   1 ms at 10,000 values);
//! - `rebuild_baseline`: compiling one aho-corasick automaton over every
//!   pattern, which the first milestone did at every registration.
//!
//! Memory per registered value is printed before each group (growth of
//! the resident set while registering, Linux only; it includes the
//! allocator's slack, so it is an upper bound).
//!
//! Environment:
//! - `REDACTION_BENCH_MIB`: size of the text, default 16;
//! - `REDACTION_BENCH_VALUES`: comma-separated value counts, default
//!   `1,100,1000,10000`;
//! - `REDACTION_BENCH_REGISTRATION`: value counts for the registration
//!   groups, default `1000,10000`.
//!
//! Run with `cargo bench --bench redaction`. Sample sizes are small (10,
//! flat sampling) so the whole run takes a few minutes on two cores.
#![allow(
    clippy::unwrap_used,
    reason = "benchmark set-up: a failure should abort the run"
)]

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use aho_corasick::{AhoCorasick, MatchKind};
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use std::cell::Cell;
use tyrum_secrets::redaction::{DEFAULT_MIN_VALUE_LEN, encoded_variants};
use tyrum_secrets::{ExposeSecret as _, HandleId, Redactor, SecretBytes};

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

fn counts(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// `count` handles and API-key-like values, as the gateway registers them.
fn registered(count: usize, rng: &mut Rng) -> (Vec<HandleId>, Vec<SecretBytes>) {
    let handles = (0..count)
        .map(|i| HandleId::parse_bare(&format!("bench-handle-{i:012}")).unwrap())
        .collect();
    let secrets = make_values(count, rng)
        .into_iter()
        .map(|v| SecretBytes::from(v.into_bytes()))
        .collect();
    (handles, secrets)
}

/// The process's resident set, in bytes (Linux; `None` elsewhere).
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// A certificate bundle of about `bytes` bytes: PEM blocks of 20 lines of
/// 64 base64 characters.
fn pem_bundle(bytes: usize, rng: &mut Rng) -> String {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    while out.len() < bytes {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for _ in 0..20 {
            out.extend((0..64).map(|_| BASE64[rng.below(64)] as char));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// API-key-like values: `sk-live-` plus 32 alphanumerics.
fn make_values(count: usize, rng: &mut Rng) -> Vec<String> {
    (0..count)
        .map(|_| format!("sk-live-{}", rng.token(32)))
        .collect()
}

/// Log-like text of about `bytes` bytes. Roughly one line in 2,000 carries
/// one of the first `secrets` patterns.
fn make_text(bytes: usize, secrets: &[Vec<u8>], rng: &mut Rng) -> String {
    const LEVELS: [&str; 5] = ["TRACE", "DEBUG", " INFO", " WARN", "ERROR"];
    const TARGETS: [&str; 4] = [
        "gateway::tool_call",
        "gateway::planner",
        "executor::http",
        "store::outbox",
    ];
    const WORDS: [&str; 12] = [
        "request",
        "completed",
        "retrying",
        "tool",
        "call",
        "status",
        "user",
        "workspace",
        "latency",
        "queued",
        "approved",
        "conversation",
    ];
    let mut text = String::with_capacity(bytes + 512);
    let mut line = 0u64;
    while text.len() < bytes {
        line += 1;
        let words: Vec<&str> = (0..4 + rng.below(6))
            .map(|_| WORDS[rng.below(12)])
            .collect();
        text.push_str(&format!(
            "2026-11-28T12:{:02}:{:02}.{:03}Z {} {}{{conversation=c-{} tool=http.get}}: {} request_id={} status={} latency_ms={} url=https://api.example.com/v1/items/{}",
            (line / 60_000) % 60,
            (line / 1000) % 60,
            line % 1000,
            LEVELS[rng.below(5)],
            TARGETS[rng.below(4)],
            rng.below(10_000),
            words.join(" "),
            rng.token(16),
            [200, 201, 404, 500][rng.below(4)],
            rng.below(2000),
            rng.below(100_000),
        ));
        if !secrets.is_empty() && rng.below(2000) == 0 {
            text.push_str(" auth=");
            text.push_str(&String::from_utf8_lossy(&secrets[rng.below(secrets.len())]));
        }
        text.push('\n');
    }
    text
}

fn floor_to_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn bench_redaction(c: &mut Criterion) {
    let text_bytes = env_usize("REDACTION_BENCH_MIB", 16) << 20;
    for count in counts("REDACTION_BENCH_VALUES", &[1, 100, 1_000, 10_000]) {
        let mut rng = Rng(0x5EED_0000 + count as u64);
        let (handles, secrets) = registered(count, &mut rng);

        let redactor = Redactor::new();
        let started = Instant::now();
        redactor
            .register_all(handles.iter().zip(secrets.iter()))
            .unwrap();
        eprintln!(
            "{count} values: {} patterns, longest {} bytes, registered in {:?}",
            redactor.pattern_count(),
            redactor.max_pattern_len(),
            started.elapsed()
        );

        // The same patterns the redactor holds, for the baselines.
        let mut patterns: Vec<(Vec<u8>, String)> = Vec::new();
        for (handle, secret) in handles.iter().zip(&secrets) {
            for variant in encoded_variants(secret, DEFAULT_MIN_VALUE_LEN) {
                patterns.push((variant.expose_secret().to_vec(), format!("[{handle}]")));
            }
        }
        patterns.sort();
        patterns.dedup_by(|a, b| a.0 == b.0);
        let bare = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns.iter().map(|(p, _)| p))
            .unwrap();

        let samples: Vec<Vec<u8>> = patterns.iter().take(64).map(|(p, _)| p.clone()).collect();
        let text = make_text(text_bytes, &samples, &mut rng);
        let naive_bytes = ((1usize << 28) / patterns.len().max(1)).clamp(16 << 10, 1 << 20);
        let naive_text = &text[..floor_to_char_boundary(&text, naive_bytes.min(text.len()))];

        let mut group = c.benchmark_group(format!("redaction/{count}"));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));

        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function("engine", |b| {
            b.iter(|| {
                black_box(redactor.redact_str(black_box(&text)))
                    .as_str()
                    .len()
            })
        });
        group.bench_function("writer", |b| {
            b.iter(|| {
                let mut writer = redactor.writer(std::io::sink());
                for chunk in text.as_bytes().chunks(64 << 10) {
                    writer.write_all(chunk).unwrap();
                }
                writer.finish().unwrap()
            })
        });
        group.bench_function("bare_scan", |b| {
            b.iter(|| bare.find_iter(black_box(text.as_bytes())).count())
        });

        group.throughput(Throughput::Bytes(naive_text.len() as u64));
        group.bench_function(
            format!("naive_replace_{}KiB", naive_text.len() >> 10),
            |b| {
                b.iter(|| {
                    let mut out = naive_text.to_owned();
                    for (pattern, placeholder) in &patterns {
                        if let Ok(pattern) = std::str::from_utf8(pattern) {
                            out = out.replace(pattern, placeholder);
                        }
                    }
                    out.len()
                })
            },
        );
        group.finish();
    }
}

fn bench_registration(c: &mut Criterion) {
    // Registered first, each kept alive, before any other allocation, so
    // that the resident set grows by what the redactors hold.
    let mut prepared = Vec::new();
    for count in counts("REDACTION_BENCH_REGISTRATION", &[1_000, 10_000]) {
        let mut rng = Rng(0x5EED_1000 + count as u64);
        let (handles, secrets) = registered(count, &mut rng);
        let redactor = Redactor::new();
        let before = resident_bytes();
        let started = Instant::now();
        redactor
            .register_all(handles.iter().zip(secrets.iter()))
            .unwrap();
        let took = started.elapsed();
        let per_value = before
            .zip(resident_bytes())
            .map(|(b, a)| format!("{} bytes", a.saturating_sub(b) / count));
        eprintln!(
            "{count} values: {} patterns, registered in bulk in {took:?}, memory per value \
             (resident set growth) {}",
            redactor.pattern_count(),
            per_value.as_deref().unwrap_or("n/a"),
        );
        prepared.push((count, rng, redactor, handles, secrets));
    }
    for (count, mut rng, redactor, mut handles, mut secrets) in prepared {
        // The large values the issue names, among the others.
        for (i, large) in [pem_bundle(32 << 10, &mut rng), "A".repeat(8 << 10)]
            .into_iter()
            .enumerate()
        {
            handles.push(HandleId::parse_bare(&format!("bench-large-{i:012}")).unwrap());
            secrets.push(SecretBytes::from(large.into_bytes()));
            redactor
                .register(&handles[handles.len() - 1], &secrets[secrets.len() - 1])
                .unwrap();
        }

        let mut group = c.benchmark_group(format!("registration/{count}"));
        group
            .sample_size(20)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let serial = Cell::new(0u64);
        let handle = HandleId::parse_bare("bench-new-key-000000000000").unwrap();
        group.bench_function("register_one", |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    serial.set(serial.get() + 1);
                    let key =
                        SecretBytes::from(format!("sk-new-{:016}", serial.get()).into_bytes());
                    let started = Instant::now();
                    redactor.register(&handle, &key).unwrap();
                    spent += started.elapsed();
                    // Untimed: keep the registered set the same size.
                    redactor.remove_value(&handle, &key);
                }
                spent
            })
        });

        let mut patterns: Vec<Vec<u8>> = secrets
            .iter()
            .flat_map(|s| encoded_variants(s, DEFAULT_MIN_VALUE_LEN))
            .map(|v| v.expose_secret().to_vec())
            .collect();
        patterns.sort();
        patterns.dedup();
        group.sample_size(10);
        group.bench_function("rebuild_baseline", |b| {
            b.iter(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .unwrap()
                    .memory_usage()
            })
        });
        group.finish();
    }
}

mod group {
    #![allow(
        missing_docs,
        reason = "criterion_group! generates an undocumented pub fn"
    )]
    criterion::criterion_group!(benches, super::bench_registration, super::bench_redaction);
}
criterion_main!(group::benches);
