//! The test vector of FORMAT.md: sealing with its fixed inputs gives its
//! bytes, and its bytes open to its value.

#![allow(clippy::unwrap_used, reason = "test code")]

use tyrum_secrets_core::{ExposeSecret as _, HandleId, Redactor, SecretBytes, Timestamp, Version};

use crate::envelope::Binding;
use crate::suite::FixedRandom;
use crate::{EnvelopeId, Expected, ManualClock, MemoryReplayGuard, NodeId, NodeIdentity, Opener};

const FORMAT: &str = include_str!("../FORMAT.md");

/// RFC 9180 A.2.1's recipient key pair and ephemeral input keying material.
const NODE_PRIVATE_KEY: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
const EPHEMERAL_IKM: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
const ENVELOPE_ID: &str = "000102030405060708090a0b0c0d0e0f";
const EXPIRES_AT: u64 = 1_893_456_000_000; // 2030-01-01T00:00:00.000Z
const VERSION: u64 = 3;
const NODE: &str = "build-7";
const HANDLE: &str = "vectorHandle0123456789abcde";
const TOOL_CALL: &str = "call-42";
const VALUE: &[u8] = b"sk-test-vector-value";

fn hex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The envelope hex as FORMAT.md prints it, between the markers.
fn documented_envelope() -> Vec<u8> {
    let start = FORMAT.find("<!-- vector:envelope -->").unwrap();
    let end = FORMAT.find("<!-- /vector:envelope -->").unwrap();
    let block = &FORMAT[start..end];
    let body = block.split("```").nth(1).unwrap();
    hex(body)
}

fn seal_vector() -> Vec<u8> {
    let identity = NodeIdentity::from_private_key(
        NodeId::new(NODE).unwrap(),
        &SecretBytes::from(hex(NODE_PRIVATE_KEY)),
    )
    .unwrap();
    let node = NodeId::new(NODE).unwrap();
    let handle = HandleId::parse_bare(HANDLE).unwrap();
    let binding = Binding {
        envelope_id: ENVELOPE_ID.parse::<EnvelopeId>().unwrap(),
        expires_at: Timestamp::from_unix_millis(EXPIRES_AT),
        version: Version::new(VERSION).unwrap(),
        node: &node,
        handle: &handle,
        tool_call: TOOL_CALL,
    };
    crate::seal::seal_value(
        identity.public_key().as_bytes(),
        None,
        &binding,
        VALUE,
        &mut FixedRandom(hex(EPHEMERAL_IKM)),
    )
    .unwrap()
    .into_bytes()
}

#[test]
fn sealing_the_vector_inputs_gives_the_documented_envelope() {
    let sealed = seal_vector();
    assert_eq!(
        to_hex(&sealed),
        to_hex(&documented_envelope()),
        "FORMAT.md's vector is stale; the envelope is now:\n{}",
        to_hex(&sealed)
    );
}

#[test]
fn the_documented_envelope_opens_to_the_vector_value() {
    let identity = NodeIdentity::from_private_key(
        NodeId::new(NODE).unwrap(),
        &SecretBytes::from(hex(NODE_PRIVATE_KEY)),
    )
    .unwrap();
    let opener = Opener::builder(identity, MemoryReplayGuard::new(), Redactor::new())
        .clock(ManualClock::new(Timestamp::from_unix_millis(
            EXPIRES_AT - 60_000,
        )))
        .build();
    let envelope = crate::SealedSecret::from_bytes(&documented_envelope()).unwrap();
    assert_eq!(envelope.handle().as_str(), HANDLE);
    assert_eq!(envelope.tool_call(), TOOL_CALL);
    let opened = opener
        .open(&envelope, &Expected::tool_call(TOOL_CALL))
        .unwrap();
    assert_eq!(opened.expose_secret(), VALUE);
    // The documented text form is the same envelope.
    let start = FORMAT.find("<!-- vector:text -->").unwrap();
    let end = FORMAT.find("<!-- /vector:text -->").unwrap();
    let text: String = FORMAT[start..end]
        .split("```")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(text.parse::<crate::SealedSecret>().unwrap(), envelope);
}
