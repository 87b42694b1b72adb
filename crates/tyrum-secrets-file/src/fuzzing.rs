//! Entry point for the cargo-fuzz target in `fuzz/`. Not a stable API.

use std::path::Path;

use crate::format::{self, HEADER_LEN};
use crate::key::{KdfLimits, KeySource, StoreKey};
use crate::store::load_bytes;

/// Parses `data` as a store file the way opening one does, with a fixed raw
/// key and tiny KDF caps, and also scans the bytes after the header as a
/// record log without decryption (random bytes never get past the key
/// unwrap, so the framing parser is exercised directly too). Must never
/// panic, hang or allocate without bound.
pub fn parse_store_bytes(data: &[u8]) {
    let path = Path::new("fuzz-input");
    let limits = KdfLimits::new(64, 2, 2);
    for source in [
        KeySource::Key(StoreKey::from_bytes([0x42; crate::KEY_LEN])),
        KeySource::passphrase("fuzz"),
    ] {
        let _ = load_bytes(data, path, &source, &limits, None);
    }
    if data.len() > HEADER_LEN {
        let _ = format::scan(&data[HEADER_LEN..], HEADER_LEN as u64, path);
    }
    let _ = format::scan(data, 0, path);
}
