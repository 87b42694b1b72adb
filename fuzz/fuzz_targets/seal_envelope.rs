//! Parses arbitrary bytes (and text) as a sealed envelope, and opens every
//! envelope that parses with a fixed node key, for its own node, tool call
//! and a clock just before its expiry, so the fuzzer reaches HPKE decap and
//! the AEAD with arbitrary keys and ciphertexts. Must never panic, hang or
//! allocate without bound, and never open.
#![no_main]

use tyrum_secrets_core::{Redactor, SecretBytes, Timestamp};
use tyrum_secrets_seal::{
    Expected, ManualClock, MemoryReplayGuard, NodeIdentity, Opener, SealedSecret,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<SealedSecret>();
    }
    let Ok(envelope) = SealedSecret::from_bytes(data) else {
        return;
    };
    let Ok(identity) =
        NodeIdentity::from_private_key(envelope.node().clone(), &SecretBytes::from(vec![7u8; 32]))
    else {
        return;
    };
    let before = envelope.expires_at().unix_millis().saturating_sub(1);
    let opener = Opener::builder(identity, MemoryReplayGuard::new(), Redactor::new())
        .clock(ManualClock::new(Timestamp::from_unix_millis(before)))
        .build();
    let opened = opener.open(&envelope, &Expected::tool_call(envelope.tool_call()));
    assert!(opened.is_err(), "an envelope nobody sealed opened");
});
