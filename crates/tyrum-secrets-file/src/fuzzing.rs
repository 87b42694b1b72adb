//! Entry points for the cargo-fuzz targets in `fuzz/` and for the
//! stable-toolchain fuzz run (`examples/fuzz_smoke.rs`, driven by
//! `scripts/fuzz-smoke`). Not a stable API. Each must never panic, hang or
//! allocate without bound, whatever the input.

use std::path::Path;

use tyrum_secrets_core::anchor::{Anchor, MemoryAnchor};

use crate::format::{self, HEADER_LEN_V1, HEADER_LEN_V2};
use crate::key::{KdfLimits, KeySource, StoreKey};
use crate::store::{judge, load_bytes};

/// The passphrase of the checked-in test vectors (`tests/data`).
const VECTOR_PASSPHRASE: &str = "tyrum test vector passphrase";

/// The keys a fuzz input is tried with: a fixed raw key, the raw key and
/// passphrase of the test vectors (so inputs mutated from a vector get past
/// the key unwrap into the record and chain parsers), and another
/// passphrase. KDF caps keep every passphrase attempt cheap.
fn sources() -> [KeySource; 4] {
    [
        KeySource::Key(StoreKey::from_bytes([0x42; crate::KEY_LEN])),
        KeySource::Key(StoreKey::from_bytes(std::array::from_fn(|i| i as u8))),
        KeySource::passphrase(VECTOR_PASSPHRASE),
        KeySource::passphrase("fuzz"),
    ]
}

fn limits() -> KdfLimits {
    KdfLimits::new(64, 2, 2)
}

/// Parses `data` as a store file the way opening one does, with each test
/// key (a fixed raw key, the vectors' raw key and passphrase, another
/// passphrase) and tiny KDF caps, and also scans the bytes after either
/// header length as a record log without decryption (random bytes rarely
/// get past the key unwrap, so the framing parser is exercised directly
/// too).
pub fn parse_store_bytes(data: &[u8]) {
    let path = Path::new("fuzz-input");
    for source in sources() {
        let _ = load_bytes(data, path, &source, &limits(), None, None);
    }
    for base in [HEADER_LEN_V1, HEADER_LEN_V2] {
        if data.len() > base {
            let _ = format::scan(&data[base..], base as u64, path);
        }
    }
    let _ = format::scan(data, 0, path);
}

/// Parses `data` as an anchor's stored bytes.
pub fn parse_anchor_bytes(data: &[u8]) {
    let memory = MemoryAnchor::new();
    memory.set_bytes(Some(data.to_vec()));
    if let Ok(Some(sealed)) = Anchor::new(memory).load() {
        let _ = sealed.claimed().count();
        let _ = sealed.claims_a_file();
    }
}

/// Opens `store` as a store file whose anchor holds `anchor`, the whole
/// open path: anchor parse, store parse with the chain positions the
/// anchor claims, and the anchor check.
pub fn open_store_with_anchor(store: &[u8], anchor: &[u8]) {
    let path = Path::new("fuzz-input");
    let memory = MemoryAnchor::new();
    memory.set_bytes(Some(anchor.to_vec()));
    let anchor = Anchor::new(memory);
    let Ok(sealed) = anchor.load() else {
        return;
    };
    for source in sources() {
        if let Ok(loaded) = load_bytes(store, path, &source, &limits(), None, sealed.as_ref()) {
            let _ = judge(&anchor, sealed.as_ref(), &loaded);
        }
    }
}

/// One fuzz input for every entry point: the whole input as a store and as
/// an anchor, then split by its first two bytes (little-endian length of
/// the store part) into a store and its anchor.
pub fn fuzz_one(data: &[u8]) {
    parse_store_bytes(data);
    parse_anchor_bytes(data);
    if let [a, b, rest @ ..] = data {
        let split = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
        let (store, anchor) = rest.split_at(split);
        open_store_with_anchor(store, anchor);
    }
}
