//! The encrypted file store: open, read and write costs, each next to a
//! baseline measured in the same run.
//!
//! The store uses a raw key, so Argon2id is outside every measurement.
//! Targets: open 10,000 secrets ≤ 50 ms (format 2: every record's tag and
//! chain link checked); read one ≤ 5 µs; one write costs the same at 100 and
//! at 100,000 secrets (dominated by fsync), and with the anchor in a sibling
//! file at most twice the append + fdatasync baseline (one append and its
//! fdatasync, one anchor-slot write and its fdatasync).

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]
#![allow(clippy::unwrap_used, reason = "a benchmark: a panic is a failed run")]

use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tyrum_secrets::file::{FileOptions, FileProvider, KeySource, StoreKey};
use tyrum_secrets::{Locator, MemoryProvider, SecretBytes, SecretProvider, VersionSelector};

const KEY: [u8; 32] = [0x5a; 32];

fn key() -> KeySource {
    KeySource::Key(StoreKey::from_bytes(KEY))
}

fn locator(i: usize) -> Locator {
    Locator::new(format!("bench/service-{i:06}/api-key")).unwrap()
}

fn value(i: usize) -> SecretBytes {
    SecretBytes::from(format!("sk-bench-{i:06}-{}", "x".repeat(32)).into_bytes())
}

/// A store at `path` holding `n` secrets, written in one batch.
fn store_with(path: &Path, n: usize) -> FileProvider {
    store_with_options(path, n, FileOptions::default())
}

fn store_with_options(path: &Path, n: usize, options: FileOptions) -> FileProvider {
    let p = FileProvider::open_with(path, key(), options).unwrap();
    let batch: Vec<(Locator, SecretBytes)> = (0..n).map(|i| (locator(i), value(i))).collect();
    p.write_many(&batch).unwrap();
    p
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("open.tyrum");
    drop(store_with(&path, 10_000));
    let mut group = c.benchmark_group("file_store/open_10k");
    group.bench_function("baseline: read the file's bytes", |b| {
        b.iter(|| black_box(std::fs::read(&path).unwrap()))
    });
    group.bench_function("open and verify every record", |b| {
        b.iter(|| black_box(FileProvider::open(&path, key()).unwrap()))
    });
    let anchored_path = dir.path().join("open-anchored.tyrum");
    let anchored = || FileOptions::default().anchor_beside();
    drop(store_with_options(&anchored_path, 10_000, anchored()));
    group.bench_function("open, verify and check the sibling anchor", |b| {
        b.iter(|| black_box(FileProvider::open_with(&anchored_path, key(), anchored()).unwrap()))
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let p = store_with(&dir.path().join("read.tyrum"), 10_000);
    let memory = MemoryProvider::new();
    let target = locator(4_242);
    memory.write(&target, &value(4_242)).unwrap();
    let mut group = c.benchmark_group("file_store/read_one_of_10k");
    group.bench_function("baseline: MemoryProvider", |b| {
        b.iter(|| black_box(memory.read(&target, VersionSelector::Latest).unwrap()))
    });
    group.bench_function("FileProvider", |b| {
        b.iter(|| black_box(p.read(&target, VersionSelector::Latest).unwrap()))
    });
    group.finish();
}

fn write(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("file_store/write_one");
    let floor_path = dir.path().join("fsync-floor");
    let mut floor = std::fs::File::create(&floor_path).unwrap();
    let record = [0x11u8; 120];
    group.bench_function("baseline: append 120 bytes + fdatasync", |b| {
        b.iter(|| {
            floor.write_all(&record).unwrap();
            floor.sync_data().unwrap();
        })
    });
    for n in [100, 100_000] {
        let p = store_with(&dir.path().join(format!("write-{n}.tyrum")), n);
        let target = locator(n / 2);
        group.bench_with_input(BenchmarkId::new("FileProvider", n), &n, |b, _| {
            b.iter(|| black_box(p.write(&target, &value(7)).unwrap()))
        });
        drop(p);
        let p = store_with_options(
            &dir.path().join(format!("write-anchored-{n}.tyrum")),
            n,
            FileOptions::default().anchor_beside(),
        );
        group.bench_with_input(
            BenchmarkId::new("FileProvider, anchor in a sibling file", n),
            &n,
            |b, _| b.iter(|| black_box(p.write(&target, &value(7)).unwrap())),
        );
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = open, read, write
}
criterion_main!(benches);
