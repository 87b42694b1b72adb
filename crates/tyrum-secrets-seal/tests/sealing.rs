//! Sealing on the gateway and opening on the node: round trip, wrong keys,
//! tampering, relabelled fields, replay, expiry, policy and audit, canaries.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Parts, gateway, holds, node, node_with, request};
use serde_json::json;
use tyrum_secrets_core::{
    ErrorKind, ExposeSecret as _, HandleId, Inject as _, InjectError, Locator, MemoryProvider,
    Outcome, Redactor, ResolveError, SecretBytes, Version,
};
use tyrum_secrets_seal::{
    Expected, FileReplayGuard, MemoryReplayGuard, NodeId, NodeIdentity, OpenError, OpenedSecrets,
    Opener, SealError, SealFor as _, SealOptions, SealedSecret,
};

const CANARY: &[u8] = b"tok-seal-CANARY-8b1f4c2e";

#[test]
fn a_sealed_value_opens_on_its_node_and_injects_everywhere() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node = node("node-a");
    let envelope = gw
        .resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    assert_eq!(envelope.handle(), h.id());
    assert_eq!(envelope.version(), Version::FIRST);
    assert_eq!(envelope.tool_call(), "call-1");
    assert_eq!(envelope.node().as_str(), "node-a");

    // Carried as text, as bytes, or inside serde.
    let carried: SealedSecret = envelope.to_string().parse().unwrap();
    assert_eq!(carried, envelope);
    let opened = node
        .opener
        .open(
            &carried,
            &Expected::tool_call("call-1").handle(h.id().clone()),
        )
        .unwrap();
    assert_eq!(opened.expose_secret(), CANARY);
    assert_eq!(opened.handle(), h.id());
    assert_eq!(opened.envelope_id(), envelope.envelope_id());

    let header = opened
        .render_header_value(&format!("Bearer {{{{{}}}}}", h.id()))
        .unwrap();
    assert_eq!(
        header.expose_secret().as_bytes(),
        [b"Bearer ", CANARY].concat()
    );
    let args = opened
        .substitute_json(&json!({"token": h.id().to_string()}))
        .unwrap();
    assert_eq!(
        args.expose_secret()["token"].as_str().unwrap().as_bytes(),
        CANARY
    );
    #[cfg(unix)]
    {
        let mut child = Command::new("sh");
        child.args(["-c", r#"printf '%s' "$SEALED_TOKEN""#]);
        opened
            .inject_env(&mut child, [("SEALED_TOKEN", h.id())])
            .unwrap();
        assert_eq!(child.output().unwrap().stdout, CANARY);
    }
    // The node's redactor knows the value.
    let line = format!("echo {}", String::from_utf8_lossy(CANARY));
    assert_eq!(
        node.redactor.redact_str(&line).as_str(),
        format!("echo [{}]", h.id())
    );
    // A handle the envelope does not carry is not handed over.
    let other = HandleId::generate().unwrap();
    assert!(matches!(
        opened.substitute_json(&json!([other.to_string()])),
        Err(InjectError::NotProvided { .. })
    ));
}

#[test]
fn several_opened_values_serve_one_step() {
    let gw = gateway();
    let a = gw.secret("tools/a", b"tok-seal-multi-A-1234");
    let b = gw.secret("tools/b", b"tok-seal-multi-B-5678");
    let node = node("node-a");
    let expected = Expected::tool_call("call-9");
    let opened: OpenedSecrets = [&a, &b]
        .iter()
        .map(|h| {
            let envelope = gw
                .resolver
                .seal_for(&node.pairing, h.id(), &request("call-9"))
                .unwrap();
            node.opener.open(&envelope, &expected).unwrap()
        })
        .collect();
    assert_eq!(opened.len(), 2);
    let args = opened
        .substitute_json(&json!({"a": a.id().to_string(), "b": [b.id().to_string()]}))
        .unwrap();
    assert_eq!(args.expose_secret()["a"], "tok-seal-multi-A-1234");
    assert_eq!(args.expose_secret()["b"][0], "tok-seal-multi-B-5678");
    assert!(!format!("{opened:?}").contains("tok-seal"));
}

#[test]
fn another_nodes_key_does_not_open_it() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node_a = node("node-a");
    let envelope = gw
        .resolver
        .seal_for(&node_a.pairing, h.id(), &request("call-1"))
        .unwrap();
    // Same node id, another key: a node that lost its key and made a new
    // one, or an impostor that took its name.
    let impostor = node("node-a");
    assert_ne!(impostor.pairing.public_key(), node_a.pairing.public_key());
    let err = impostor
        .opener
        .open(&envelope, &Expected::tool_call("call-1"))
        .unwrap_err();
    assert!(matches!(err, OpenError::Undecryptable), "{err}");
    // Another node id: refused before decrypting.
    let node_b = node("node-b");
    assert!(matches!(
        node_b
            .opener
            .open(&envelope, &Expected::tool_call("call-1")),
        Err(OpenError::WrongNode)
    ));
    // The rightful node still opens it: failed attempts burn nothing.
    node_a
        .opener
        .open(&envelope, &Expected::tool_call("call-1"))
        .unwrap();
}

#[test]
fn every_single_bit_flip_is_a_typed_error() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node = node("node-a");
    let envelope = gw
        .resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    let bytes = envelope.as_bytes();
    let expected = Expected::tool_call("call-1");
    let mut parse_errors = 0;
    let mut open_errors = 0;
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        match SealedSecret::from_bytes(&flipped) {
            Err(e) => {
                parse_errors += 1;
                assert!(!holds(e.to_string().as_bytes(), CANARY));
            }
            Ok(tampered) => match node.opener.open(&tampered, &expected) {
                Ok(_) => panic!("bit {bit} flipped and the envelope still opened"),
                Err(e) => {
                    open_errors += 1;
                    assert!(!holds(format!("{e} {e:?}").as_bytes(), CANARY));
                }
            },
        }
    }
    assert_eq!(parse_errors + open_errors, bytes.len() * 8);
    assert!(open_errors > bytes.len() * 4, "most flips reach the AEAD");
    // Nothing was recorded by the failures: the original opens once.
    node.opener.open(&envelope, &expected).unwrap();
}

/// Relabels one field of a genuine envelope, keeping its ciphertext, and
/// opens it with an opener that expects the new label.
#[test]
fn a_relabelled_field_does_not_open() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let other_handle = gw.secret("tools/other", b"tok-seal-other-value-1");
    let keys = MemoryProvider::new();
    let node_a = node_with("node-a", &keys, MemoryReplayGuard::new());
    // A node with the same key under another id: only the bound node id
    // tells the two apart.
    let key = tyrum_secrets_core::SecretProvider::read(
        &keys,
        &Locator::new("node/identity").unwrap(),
        tyrum_secrets_core::VersionSelector::Latest,
    )
    .unwrap()
    .value;
    let twin = Opener::builder(
        NodeIdentity::from_private_key(NodeId::new("node-b").unwrap(), &key).unwrap(),
        MemoryReplayGuard::new(),
        Redactor::new(),
    )
    .build();
    let envelope = gw
        .resolver
        .seal_for(&node_a.pairing, h.id(), &request("call-1"))
        .unwrap();
    let parts = Parts::split(envelope.as_bytes());
    assert_eq!(parts.join(), envelope.as_bytes(), "FORMAT.md layout");

    let relabel = |edit: &dyn Fn(&mut Parts)| {
        let mut p = parts.clone();
        edit(&mut p);
        SealedSecret::from_bytes(&p.join()).expect("a relabelled envelope still parses")
    };
    let cases: Vec<(&str, SealedSecret, &Opener, Expected)> = vec![
        (
            "tool call",
            relabel(&|p| p.tool_call = b"call-2".to_vec()),
            &node_a.opener,
            Expected::tool_call("call-2"),
        ),
        (
            "handle",
            relabel(&|p| p.handle = other_handle.id().as_str().as_bytes().to_vec()),
            &node_a.opener,
            Expected::tool_call("call-1").handle(other_handle.id().clone()),
        ),
        (
            "version",
            relabel(&|p| p.version = 2),
            &node_a.opener,
            Expected::tool_call("call-1"),
        ),
        (
            "node",
            relabel(&|p| p.node = b"node-b".to_vec()),
            &twin,
            Expected::tool_call("call-1"),
        ),
        (
            "expiry",
            relabel(&|p| p.expires_at += 60_000),
            &node_a.opener,
            Expected::tool_call("call-1"),
        ),
        (
            "envelope id",
            relabel(&|p| p.envelope_id[0] ^= 0xff),
            &node_a.opener,
            Expected::tool_call("call-1"),
        ),
    ];
    for (field, relabelled, opener, expected) in cases {
        let err = opener.open(&relabelled, &expected).unwrap_err();
        assert!(
            matches!(err, OpenError::Undecryptable),
            "{field} relabelled: {err}"
        );
    }

    // The ciphertext of one envelope under the header of another.
    let second = gw
        .resolver
        .seal_for(&node_a.pairing, h.id(), &request("call-1"))
        .unwrap();
    let mut spliced = Parts::split(second.as_bytes());
    spliced.sealed = parts.sealed.clone();
    let spliced = SealedSecret::from_bytes(&spliced.join()).unwrap();
    assert!(matches!(
        node_a.opener.open(&spliced, &Expected::tool_call("call-1")),
        Err(OpenError::Undecryptable)
    ));

    // Without relabelling, the expectations themselves are checked.
    assert!(matches!(
        node_a
            .opener
            .open(&envelope, &Expected::tool_call("call-2")),
        Err(OpenError::WrongToolCall)
    ));
    assert!(matches!(
        node_a.opener.open(
            &envelope,
            &Expected::tool_call("call-1").handle(other_handle.id().clone())
        ),
        Err(OpenError::WrongHandle)
    ));
    node_a
        .opener
        .open(&envelope, &Expected::tool_call("call-1"))
        .unwrap();
}

#[test]
fn an_envelope_opens_once_even_across_a_node_restart() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("replay");
    let keys = MemoryProvider::new();
    let expected = Expected::tool_call("call-1");

    let node = node_with("node-a", &keys, FileReplayGuard::open(&store).unwrap());
    let first = gw
        .resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    let second = gw
        .resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    node.opener.open(&first, &expected).unwrap();
    let err = node.opener.open(&first, &expected).unwrap_err();
    assert!(matches!(err, OpenError::Replayed), "{err}");
    drop(node);

    // The node restarts: its key from the provider, its replay store from
    // the file.
    let restarted = node_with("node-a", &keys, FileReplayGuard::open(&store).unwrap());
    assert!(matches!(
        restarted.opener.open(&first, &expected),
        Err(OpenError::Replayed)
    ));
    // Another envelope for the same step still opens, once.
    restarted.opener.open(&second, &expected).unwrap();
    assert!(matches!(
        restarted.opener.open(&second, &expected),
        Err(OpenError::Replayed)
    ));

    // The replay store holds envelope ids, never the value.
    let stored = std::fs::read(&store).unwrap();
    assert!(!holds(&stored, CANARY));
    let text = String::from_utf8(stored).unwrap();
    assert!(text.contains(&first.envelope_id().to_string()));
}

#[test]
fn a_memory_guard_forgets_on_restart_which_is_why_nodes_use_the_file() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let keys = MemoryProvider::new();
    let node = node_with("node-a", &keys, MemoryReplayGuard::new());
    let envelope = gw
        .resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    node.opener
        .open(&envelope, &Expected::tool_call("call-1"))
        .unwrap();
    let restarted = node_with("node-a", &keys, MemoryReplayGuard::new());
    assert!(
        restarted
            .opener
            .open(&envelope, &Expected::tool_call("call-1"))
            .is_ok()
    );
}

#[test]
fn expiry_is_checked_against_the_nodes_clock() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node = node("node-a");
    let expected = Expected::tool_call("call-1");
    let options = SealOptions::default().ttl(Duration::from_secs(60));
    let seal = || {
        gw.resolver
            .seal_for_with(&node.pairing, h.id(), &request("call-1"), &options)
            .unwrap()
    };

    let envelope = seal();
    // The node's clock runs behind the gateway's by a little: fine.
    node.clock.set(envelope.expires_at());
    let err = node.opener.open(&envelope, &expected).unwrap_err();
    assert!(matches!(err, OpenError::Expired), "at the expiry: {err}");
    node.clock
        .set(tyrum_secrets_core::Timestamp::from_unix_millis(
            envelope.expires_at().unix_millis() - 1,
        ));
    node.opener.open(&envelope, &expected).unwrap();

    let late = seal();
    node.clock.set(late.expires_at());
    node.clock.advance(Duration::from_secs(3600));
    assert!(matches!(
        node.opener.open(&late, &expected),
        Err(OpenError::Expired)
    ));
    // An expired envelope is refused before the replay guard: once the
    // clock is back, it still opens (so pruning expired ids is safe).
    node.clock.set(tyrum_secrets_core::Timestamp::now());
    node.opener.open(&late, &expected).unwrap();

    // An envelope that would open for longer than the node allows.
    let long = gw
        .resolver
        .seal_for_with(
            &node.pairing,
            h.id(),
            &request("call-1"),
            &SealOptions::default().ttl(Duration::from_secs(2 * 3600)),
        )
        .unwrap();
    assert!(matches!(
        node.opener.open(&long, &expected),
        Err(OpenError::LifetimeTooLong)
    ));
}

#[test]
fn a_denied_request_seals_nothing_and_leaves_one_record() {
    let gw = gateway();
    let denied = gw.secret("elsewhere", CANARY);
    let node = node("node-a");
    let err = gw
        .resolver
        .seal_for(&node.pairing, denied.id(), &request("call-1"))
        .unwrap_err();
    assert!(
        matches!(err.resolve_error(), Some(ResolveError::Denied { .. })),
        "{err}"
    );
    assert!(!holds(format!("{err} {err:?}").as_bytes(), CANARY));
    let records = gw.sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Denied);
    assert_eq!(records[0].error_kind, Some(ErrorKind::Denied));
    assert_eq!(records[0].node.as_deref(), Some("node-a"));
}

#[test]
fn an_allowed_request_leaves_exactly_one_record_naming_the_node() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node = node("node-a");
    gw.resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    let records = gw.sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Resolved);
    assert_eq!(records[0].node.as_deref(), Some("node-a"));
    assert_eq!(records[0].requester.tool_call_id(), Some("call-1"));
    assert_eq!(records[0].handle_id, *h.id());
    let json = serde_json::to_vec(&records).unwrap();
    assert!(!holds(&json, CANARY));
}

#[test]
fn requests_that_cannot_be_sealed_resolve_nothing() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node = node("node-a");
    let no_tool_call = tyrum_secrets_core::ResolveRequest::new(
        tyrum_secrets_core::Requester::new("alpha").unwrap(),
        tyrum_secrets_core::Purpose::new("deploy").unwrap(),
    );
    assert!(matches!(
        gw.resolver.seal_for(&node.pairing, h.id(), &no_tool_call),
        Err(SealError::NoToolCall)
    ));
    let for_other = request("call-1").for_node("node-b").unwrap();
    assert!(matches!(
        gw.resolver.seal_for(&node.pairing, h.id(), &for_other),
        Err(SealError::OtherNode)
    ));
    assert!(gw.sink.is_empty(), "refused before resolving");
}

#[test]
fn the_value_never_appears_in_envelopes_errors_or_debug() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let node = node("node-a");
    let envelope = gw
        .resolver
        .seal_for(&node.pairing, h.id(), &request("call-1"))
        .unwrap();
    assert!(!holds(envelope.as_bytes(), CANARY));
    assert!(!holds(envelope.to_string().as_bytes(), CANARY));
    assert!(!holds(format!("{envelope:?}").as_bytes(), CANARY));
    assert!(!holds(&serde_json::to_vec(&envelope).unwrap(), CANARY));

    let mut errors = Vec::new();
    for expected in [Expected::tool_call("call-2"), Expected::tool_call("call-1")] {
        if let Err(e) = node.opener.open(&envelope, &expected) {
            errors.push(e);
        }
    }
    let opened_err = node.opener.open(&envelope, &Expected::tool_call("call-1"));
    errors.push(opened_err.unwrap_err());
    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(!holds(text.as_bytes(), CANARY), "{text}");
        assert!(
            !text.contains("call-1") && !text.contains("call-2"),
            "{text}"
        );
    }

    // The opened value's Debug, and the node identity's.
    let gw2 = gateway();
    let h2 = gw2.secret("tools/deploy", CANARY);
    let envelope = gw2
        .resolver
        .seal_for(&node.pairing, h2.id(), &request("call-3"))
        .unwrap();
    let opened = node
        .opener
        .open(&envelope, &Expected::tool_call("call-3"))
        .unwrap();
    assert!(!holds(format!("{opened:?}").as_bytes(), CANARY));
    assert!(format!("{:?}", node.opener).contains("[REDACTED]"));
}

#[test]
fn a_value_the_nodes_redactor_refuses_is_not_handed_over() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let identity = NodeIdentity::generate(NodeId::new("node-a").unwrap()).unwrap();
    let pairing = identity.pairing_record();
    // A redactor whose minimum is longer than the value.
    let guard = Arc::new(MemoryReplayGuard::new());
    let opener = Opener::builder(identity, guard.clone(), Redactor::with_min_value_len(64)).build();
    let envelope = gw
        .resolver
        .seal_for(&pairing, h.id(), &request("call-1"))
        .unwrap();
    let err = opener
        .open(&envelope, &Expected::tool_call("call-1"))
        .unwrap_err();
    assert!(matches!(err, OpenError::Redaction(_)), "{err}");
    assert!(!holds(format!("{err} {err:?}").as_bytes(), CANARY));
    assert!(
        guard.is_empty(),
        "a refused value does not burn the envelope"
    );
}

#[test]
fn the_node_key_survives_in_its_provider() {
    let keys = MemoryProvider::new();
    let locator = Locator::new("node/identity").unwrap();
    let id = NodeId::new("node-a").unwrap();
    let created = NodeIdentity::create(id.clone(), &keys, &locator).unwrap();
    assert!(matches!(
        NodeIdentity::create(id.clone(), &keys, &locator),
        Err(tyrum_secrets_seal::IdentityError::AlreadyExists)
    ));
    let loaded = NodeIdentity::load(id.clone(), &keys, &locator).unwrap();
    assert_eq!(loaded.public_key(), created.public_key());
    assert_eq!(loaded.pairing_record(), created.pairing_record());
    assert!(!format!("{loaded:?}").contains("private_key: ["));

    let short = Locator::new("node/short").unwrap();
    tyrum_secrets_core::SecretProvider::write(&keys, &short, &SecretBytes::from(vec![1; 31]))
        .unwrap();
    assert!(matches!(
        NodeIdentity::load(id, &keys, &short),
        Err(tyrum_secrets_seal::IdentityError::InvalidKey)
    ));

    // The pairing record is plain data.
    let json = serde_json::to_string(&created.pairing_record()).unwrap();
    let back: tyrum_secrets_seal::PairingRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, created.pairing_record());
    assert!(
        serde_json::from_str::<tyrum_secrets_seal::PairingRecord>(
            r#"{"node":"a","public_key":"QxDul9iMwfCIpVdsd6sM9cOseX89lROcbIS1QpxZZio","private_key":"x"}"#
        )
        .is_err()
    );
}

#[test]
fn a_low_order_node_key_is_refused_after_the_audited_resolve() {
    let gw = gateway();
    let h = gw.secret("tools/deploy", CANARY);
    let bad = tyrum_secrets_seal::PairingRecord::new(
        NodeId::new("node-a").unwrap(),
        tyrum_secrets_seal::NodePublicKey::from_bytes([0; 32]),
    );
    assert!(matches!(
        gw.resolver.seal_for(&bad, h.id(), &request("call-1")),
        Err(SealError::UnusableNodeKey)
    ));
}
