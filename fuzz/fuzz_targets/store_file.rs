//! Parses arbitrary bytes as an encrypted store file (header, KDF caps, key
//! unwrap, record framing, the format-2 chain), as an anchor record, and —
//! split by the first two bytes — as a store checked against its anchor,
//! the way opening a store does. Must never panic, hang or allocate without
//! bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tyrum_secrets_file::fuzzing::fuzz_one(data);
});
