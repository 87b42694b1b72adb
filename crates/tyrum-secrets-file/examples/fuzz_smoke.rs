//! A time-bounded fuzz run of the store and anchor parsers on the stable
//! toolchain, so every `scripts/test` run exercises them even where
//! cargo-fuzz and nightly are missing (`scripts/fuzz-smoke` runs this, then
//! cargo-fuzz if it is there).
//!
//! ```text
//! cargo run -p tyrum-secrets-file --example fuzz_smoke -- [SECONDS] [SEED]
//! ```
//!
//! Inputs are random bytes and mutations (bit flips, byte and integer
//! overwrites, cuts, repeats, insertions, splices) of the test vectors in
//! `tests/data/`, also paired store-plus-anchor the way
//! `tyrum_secrets_file::fuzzing::fuzz_one` splits them. An input that
//! panics is written to `target/fuzz-smoke-crash.bin` and the run fails; so
//! does one that takes longer than 10 s (a hang). Reproduce a run with its
//! printed seed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test driver: a panic outside the fuzzed code is a failed run"
)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tyrum_secrets_file::fuzzing::fuzz_one;

const SLOW: Duration = Duration::from_secs(10);

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args
        .next()
        .map_or(20, |s| s.parse().expect("SECONDS is a number"));
    let seed: u64 = args.next().map_or_else(
        || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        },
        |s| s.parse().expect("SEED is a number"),
    );
    println!("fuzz_smoke: {seconds}s, seed {seed} (replay: fuzz_smoke {seconds} {seed})");
    let seeds = seeds();
    assert!(!seeds.is_empty(), "no test vectors found to seed from");
    let mut rng = Rng(seed.max(1));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut slowest) = (0u64, Duration::ZERO);
    while Instant::now() < deadline {
        let input = if rng.below(10) == 0 {
            let len = rng.below(2048) as usize;
            (0..len).map(|_| rng.byte()).collect()
        } else {
            let base = &seeds[rng.below(seeds.len() as u64) as usize];
            let other = &seeds[rng.below(seeds.len() as u64) as usize];
            mutate(base, other, &mut rng)
        };
        let started = Instant::now();
        if catch_unwind(AssertUnwindSafe(|| fuzz_one(&input))).is_err() {
            fail(&input, "panicked");
        }
        let took = started.elapsed();
        if took > SLOW {
            fail(&input, "took longer than 10 s");
        }
        slowest = slowest.max(took);
        runs += 1;
    }
    println!(
        "fuzz_smoke: ok, {runs} inputs from {} seeds, slowest {} ms",
        seeds.len(),
        slowest.as_millis()
    );
}

fn fail(input: &[u8], what: &str) -> ! {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-smoke-crash.bin");
    let _ = std::fs::create_dir_all(out.parent().unwrap());
    std::fs::write(&out, input).unwrap();
    eprintln!("fuzz_smoke: an input {what}; saved to {}", out.display());
    std::process::exit(1);
}

/// Every test vector, and each store paired with its anchor in the layout
/// `fuzz_one` splits (two length bytes, the store, the anchor).
fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut seeds = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tyrum" || e == "anchor"))
        .collect();
    names.sort();
    for path in &names {
        let bytes = std::fs::read(path).unwrap();
        // The anchor record itself, out of its slot file, too.
        if path.extension().is_some_and(|e| e == "anchor") && bytes.len() > 20 {
            let len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
            if let Some(record) = bytes.get(20..20 + len) {
                seeds.push(record.to_vec());
            }
        }
        let mut anchor_name = path.as_os_str().to_owned();
        anchor_name.push(".anchor");
        if let Ok(anchor) = std::fs::read(&anchor_name) {
            let len = u32::from_le_bytes(anchor[16..20].try_into().unwrap()) as usize;
            let mut paired = (bytes.len() as u16).to_le_bytes().to_vec();
            paired.extend_from_slice(&bytes);
            paired.extend_from_slice(&anchor[20..20 + len]);
            seeds.push(paired);
        }
        seeds.push(bytes);
    }
    seeds
}

fn mutate(base: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len() as u64;
        let at = rng.below(len + 1) as usize;
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(len) as usize;
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(len) as usize;
                out[i] = rng.byte();
            }
            2 if out.len() >= 4 => {
                // An interesting integer where a length or count may be.
                let i = rng.below(len - 3) as usize;
                let value: u32 = match rng.below(5) {
                    0 => 0,
                    1 => u32::MAX,
                    2 => 1,
                    3 => (16 << 20) + 564,
                    _ => rng.below(u64::from(u32::MAX)) as u32,
                };
                out[i..i + 4].copy_from_slice(&value.to_le_bytes());
            }
            3 => out.truncate(at),
            4 if at < out.len() => {
                let end = at + rng.below((out.len() - at) as u64 + 1) as usize;
                out.drain(at..end);
            }
            5 if at < out.len() => {
                let end = at + rng.below((out.len() - at).min(512) as u64 + 1) as usize;
                let chunk = out[at..end].to_vec();
                let to = rng.below(out.len() as u64 + 1) as usize;
                out.splice(to..to, chunk);
            }
            6 => {
                let n = rng.below(64) as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
                out.splice(at..at, bytes);
            }
            7 if !other.is_empty() => {
                let from = rng.below(other.len() as u64) as usize;
                let end = from + rng.below((other.len() - from).min(1024) as u64 + 1) as usize;
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                // Swap two equal-sized chunks (moves frames around).
                if out.len() >= 2 {
                    let n = rng.below((out.len() / 2) as u64).max(1) as usize;
                    let a = rng.below((out.len() - n) as u64 + 1) as usize;
                    let b = rng.below((out.len() - n) as u64 + 1) as usize;
                    if a + n <= b || b + n <= a {
                        for k in 0..n {
                            out.swap(a + k, b + k);
                        }
                    }
                }
            }
        }
    }
    out
}

/// xorshift64*: reproducible from the printed seed. Not for secrets.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn byte(&mut self) -> u8 {
        self.below(256) as u8
    }
}
