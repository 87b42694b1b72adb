//! Behaviour of the redactor, its writer and `Redacted`.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::*;

pub(super) fn handle(n: u32) -> HandleId {
    HandleId::parse_bare(&format!("test-handle-{n:012}")).unwrap()
}

pub(super) fn secret(value: impl AsRef<[u8]>) -> SecretBytes {
    SecretBytes::from(value.as_ref().to_vec())
}

pub(super) fn placeholder(n: u32) -> String {
    format!("[{}]", handle(n))
}

pub(super) fn redactor_with(values: &[(u32, &str)]) -> Redactor {
    let redactor = Redactor::new();
    for (n, value) in values {
        redactor.register(&handle(*n), &secret(value)).unwrap();
    }
    redactor
}

#[test]
fn registered_value_is_replaced_by_its_handle_placeholder() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c")]);
    let out = redactor.redact_str("key=sk-live-4f9a8b7c;");
    assert_eq!(out.as_str(), format!("key={};", placeholder(1)));
}

#[test]
fn text_without_secrets_is_borrowed_not_copied() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c")]);
    let text = "nothing to see here, sk-live but not the key";
    assert!(matches!(redactor.redact_str(text).into_inner(), Cow::Borrowed(t) if t == text));
    assert!(matches!(
        redactor.redact_bytes(text.as_bytes()).into_inner(),
        Cow::Borrowed(_)
    ));
    let empty = Redactor::new();
    assert!(matches!(
        empty.redact_str(text).into_inner(),
        Cow::Borrowed(_)
    ));
}

#[test]
fn every_encoded_variant_is_redacted() {
    let value = "p@ss wörd/+?&=\"\\\u{7}-0123456789";
    let redactor = redactor_with(&[(1, value)]);
    let variants = encoded_variants(&secret(value), redactor.min_value_len());
    // Standard and URL-safe base64 coincide for some offsets of this value.
    assert!(variants.len() >= 12, "only {} variants", variants.len());
    for variant in &variants {
        let text = [b"before ".as_slice(), variant.expose_secret(), b" after"].concat();
        let out = redactor.redact_bytes(&text);
        assert_eq!(
            out.as_bytes(),
            [b"before ".as_slice(), placeholder(1).as_bytes(), b" after"].concat()
        );
    }
}

#[test]
fn password_inside_basic_auth_header_is_redacted_at_any_offset() {
    let password = "hunter2-correct-horse";
    let redactor = redactor_with(&[(1, password)]);
    for user in ["a", "ab", "abc", "alice", "bob@example.com"] {
        let header = format!(
            "Authorization: Basic {}",
            STANDARD.encode(format!("{user}:{password}"))
        );
        let out = redactor.redact_str(&header);
        assert!(out.as_str().contains(&placeholder(1)), "user {user}: {out}");
        // At most the characters mixing in the user name or the padding
        // remain: fewer than one base64 group either side.
        let encoded_len = header.len() - "Authorization: Basic ".len();
        let left = out.as_str().len() - "Authorization: Basic ".len() - placeholder(1).len();
        assert!(left <= encoded_len - password.len(), "user {user}: {out}");
    }
}

#[test]
fn value_that_is_a_prefix_of_another_does_not_split_the_longer_one() {
    let redactor = redactor_with(&[(1, "abcdefgh"), (2, "abcdefghijklmnop")]);
    let long = redactor.redact_str("x abcdefghijklmnop y");
    assert_eq!(long.as_str(), format!("x {} y", placeholder(2)));
    let short = redactor.redact_str("x abcdefghijkl y");
    assert_eq!(short.as_str(), format!("x {}ijkl y", placeholder(1)));
}

#[test]
fn overlapping_values_are_merged_without_leaking_a_tail() {
    let redactor = redactor_with(&[(1, "AAAABBBBCCCC"), (2, "CCCCDDDDEEEE")]);
    let out = redactor.redact_str("<AAAABBBBCCCCDDDDEEEE>");
    assert_eq!(
        out.as_str(),
        format!("<{}{}>", placeholder(1), placeholder(2))
    );
    // A partial overlap that completes neither value leaves ordinary text.
    let out = redactor.redact_str("<CCCCDDDDEEEE AAAABBBBCCCCDDDD>");
    assert_eq!(
        out.as_str(),
        format!("<{} {}DDDD>", placeholder(2), placeholder(1))
    );
    // A chain of three.
    let redactor = redactor_with(&[(1, "11112222"), (2, "22223333"), (3, "33334444")]);
    let out = redactor.redact_str("111122223333444455");
    assert_eq!(
        out.as_str(),
        format!("{}{}{}55", placeholder(1), placeholder(2), placeholder(3))
    );
}

#[test]
fn value_wholly_inside_a_longer_match_is_not_named_twice() {
    let redactor = redactor_with(&[(1, "0123456789abcdef"), (2, "456789ab")]);
    let out = redactor.redact_str("[0123456789abcdef]");
    assert_eq!(out.as_str(), format!("[{}]", placeholder(1)));
}

#[test]
fn unicode_values_are_redacted_and_output_stays_utf8() {
    let redactor = redactor_with(&[(1, "пароль-😀-秘密")]);
    let out = redactor.redact_str("ключ: пароль-😀-秘密!");
    assert_eq!(out.as_str(), format!("ключ: {}!", placeholder(1)));

    // A non-UTF-8 value can match inside multi-byte characters of text: the
    // span is widened to whole characters (here all three emoji).
    let raw = Redactor::new();
    raw.register(
        &handle(2),
        &secret([0x98, 0x80, 0xF0, 0x9F, 0x98, 0x80, 0xF0, 0x9F]),
    )
    .unwrap();
    let out = raw.redact_str("a😀😀😀b");
    assert_eq!(out.as_str(), format!("a{}b", placeholder(2)));
    assert!(
        matches!(raw.redact_bytes("a😀😀😀b".as_bytes()).into_inner(), Cow::Owned(b) if b.len() > 4)
    );
}

#[test]
fn each_line_of_a_multi_line_value_is_redacted_on_its_own() {
    let value = "-----BEGIN KEY-----\r\nMIIBOgIBAAJBAKj34GkxFhD9\r\nshort\r\nZ29vZCBsaW5lIHR3bw==\r\n-----END KEY-----";
    let redactor = redactor_with(&[(1, value)]);
    assert_eq!(redactor.redact_str(value).as_str(), placeholder(1));
    let out = redactor.redact_str("line: MIIBOgIBAAJBAKj34GkxFhD9 and Z29vZCBsaW5lIHR3bw==");
    assert_eq!(
        out.as_str(),
        format!("line: {} and {}", placeholder(1), placeholder(1))
    );
    // Lines shorter than the minimum and PEM armour are ordinary text.
    let out = redactor.redact_str("short -----BEGIN KEY-----");
    assert_eq!(out.as_str(), "short -----BEGIN KEY-----");
}

#[test]
fn short_value_is_refused_with_an_error_that_never_contains_it() {
    let redactor = Redactor::new();
    let canary = "CANARY7";
    let error = redactor.register(&handle(1), &secret(canary)).unwrap_err();
    assert!(matches!(
        error,
        RedactionError::ValueTooShort { min: 8, .. }
    ));
    let message = error.to_string();
    let debug = format!("{error:?}");
    assert!(
        message.contains(&handle(1).to_string()) && message.contains('8'),
        "{message}"
    );
    for text in [&message, &debug] {
        assert!(!text.contains(canary) && !text.contains("ANARY"), "{text}");
    }
    assert_eq!(redactor.value_count(), 0);
    assert!(matches!(
        redactor.register(&handle(1), &secret("")),
        Err(RedactionError::ValueTooShort { .. })
    ));
}

#[test]
fn minimum_value_length_is_configurable() {
    let redactor = Redactor::with_min_value_len(4);
    redactor.register(&handle(1), &secret("abcd")).unwrap();
    assert_eq!(
        redactor.redact_str("xabcdx").as_str(),
        format!("x{}x", placeholder(1))
    );
    let strict = Redactor::with_min_value_len(32);
    assert!(
        strict
            .register(&handle(1), &secret("sk-live-4f9a8b7c"))
            .is_err()
    );
    assert_eq!(Redactor::with_min_value_len(0).min_value_len(), 1);
}

#[test]
fn register_all_is_all_or_nothing() {
    let redactor = Redactor::new();
    let (h1, h2) = (handle(1), handle(2));
    let (good, bad) = (secret("long-enough-value"), secret("short"));
    assert!(redactor.register_all([(&h1, &good), (&h2, &bad)]).is_err());
    assert_eq!(redactor.value_count(), 0);
    assert_eq!(
        redactor.redact_str("long-enough-value").as_str(),
        "long-enough-value"
    );
}

#[test]
fn same_value_under_two_handles_is_named_after_the_first_until_removed() {
    let redactor = redactor_with(&[(1, "shared-value-123"), (2, "shared-value-123")]);
    assert_eq!(
        redactor.redact_str("shared-value-123").as_str(),
        placeholder(1)
    );
    assert_eq!(redactor.remove(&handle(1)), 1);
    assert_eq!(
        redactor.redact_str("shared-value-123").as_str(),
        placeholder(2)
    );
    assert_eq!(redactor.remove(&handle(2)), 1);
    assert_eq!(
        redactor.redact_str("shared-value-123").as_str(),
        "shared-value-123"
    );
}

#[test]
fn every_version_of_a_rotated_handle_stays_redacted_until_removed() {
    let redactor = redactor_with(&[(1, "version-one-value"), (1, "version-two-value")]);
    // Registering a pair again is a no-op.
    redactor
        .register(&handle(1), &secret("version-two-value"))
        .unwrap();
    assert_eq!(redactor.value_count(), 2);
    assert_eq!(redactor.handle_count(), 1);
    let text = "old=version-one-value new=version-two-value";
    let expected = format!("old={} new={}", placeholder(1), placeholder(1));
    assert_eq!(redactor.redact_str(text).as_str(), expected);

    assert!(redactor.remove_value(&handle(1), &secret("version-one-value")));
    assert!(!redactor.remove_value(&handle(1), &secret("version-one-value")));
    let out = redactor.redact_str(text);
    assert_eq!(
        out.as_str(),
        format!("old=version-one-value new={}", placeholder(1))
    );

    assert_eq!(redactor.remove(&handle(1)), 1);
    assert_eq!(redactor.remove(&handle(1)), 0);
    assert_eq!(redactor.redact_str(text).as_str(), text);
}

#[test]
fn a_removed_value_registers_again() {
    let redactor = redactor_with(&[(1, "version-one-value"), (2, "other-handle-value")]);
    assert!(redactor.remove_value(&handle(1), &secret("version-one-value")));
    assert_eq!(
        redactor.redact_str("version-one-value").as_str(),
        "version-one-value"
    );
    redactor
        .register(&handle(1), &secret("version-one-value"))
        .unwrap();
    assert_eq!((redactor.value_count(), redactor.handle_count()), (2, 2));
    assert_eq!(
        redactor
            .redact_str("version-one-value other-handle-value")
            .as_str(),
        format!("{} {}", placeholder(1), placeholder(2))
    );
}

#[test]
fn json_values_and_keys_are_redacted_at_every_depth() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c"), (2, "4111111111111111")]);
    let input = json!({
        "headers": {"authorization": "Bearer sk-live-4f9a8b7c"},
        "sk-live-4f9a8b7c": ["nested", {"deeper": "x sk-live-4f9a8b7c x"}],
        "card": 4111111111111111u64,
        "count": 3,
        "ok": true,
        "none": null,
    });
    let out = redactor.redact_json(&input).into_inner();
    let p1 = placeholder(1);
    assert_eq!(
        out["headers"]["authorization"],
        json!(format!("Bearer {p1}"))
    );
    assert_eq!(out[&p1][1]["deeper"], json!(format!("x {p1} x")));
    assert_eq!(out["card"], json!(placeholder(2)));
    assert_eq!(out["count"], json!(3));
    assert!(!out.to_string().contains("sk-live-4f9a8b7c"));
    assert!(!out.to_string().contains("4111111111111111"));
}

#[test]
fn json_keys_that_collide_after_redaction_are_kept_with_a_suffix() {
    let redactor = redactor_with(&[(1, "version-one-value"), (1, "version-two-value")]);
    let p1 = placeholder(1);
    let input = json!({
        "version-one-value": 1,
        "version-two-value": 2,
        p1.clone(): 0,
    });
    let out = redactor.redact_json(&input).into_inner();
    let object = out.as_object().unwrap();
    assert_eq!(object.len(), 3);
    // The key that was not redacted keeps its name and value.
    assert_eq!(object[&p1], json!(0));
    let mut moved: Vec<i64> = [format!("{p1} #2"), format!("{p1} #3")]
        .iter()
        .map(|k| object[k].as_i64().unwrap())
        .collect();
    moved.sort_unstable();
    assert_eq!(moved, [1, 2]);
}

#[test]
fn writer_catches_a_value_split_at_every_point() {
    let value = "sk-live-4f9a8b7c";
    let redactor = redactor_with(&[(1, value)]);
    let text = format!("prefix {value} middle {value}");
    for split in 0..=text.len() {
        let mut writer = redactor.writer(Vec::new());
        writer.write_all(&text.as_bytes()[..split]).unwrap();
        writer.write_all(&text.as_bytes()[split..]).unwrap();
        let out = writer.finish().unwrap();
        let expected = format!("prefix {} middle {}", placeholder(1), placeholder(1));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected,
            "split at {split}"
        );
    }
}

#[test]
fn writer_holds_an_open_match_until_an_overlapping_value_is_complete() {
    // The hex of "AAAABBBB" is the longest pattern; "42zzzzzz" overlaps its
    // last two bytes. After the first write the hex match starts just before
    // the held-back tail and reaches into it: passing it on would cut off
    // the start of "42zzzzzz" and leak the rest.
    let redactor = redactor_with(&[(1, "AAAABBBB"), (2, "42zzzzzz")]);
    assert_eq!(redactor.max_pattern_len(), 16);
    let mut writer = redactor.writer(Vec::new());
    writer.write_all(b"xxxx4141414142424242").unwrap();
    writer.write_all(b"zzzzzz end").unwrap();
    let out = String::from_utf8(writer.finish().unwrap()).unwrap();
    assert_eq!(out, format!("xxxx{}{} end", placeholder(1), placeholder(2)));
}

#[test]
fn writer_memory_stays_bounded_when_a_value_repeats_endlessly() {
    // "abab..." holds overlapping occurrences of the value at every even
    // offset, so all of it merges into one ever-growing span.
    let redactor = redactor_with(&[(1, "abababab")]);
    let mut writer = redactor.writer(Vec::new());
    let mut max_held = 0;
    for _ in 0..(3 << 20) / (64 << 10) {
        writer.write_all(&b"ab".repeat(32 << 10)).unwrap();
        max_held = max_held.max(writer.held_back());
    }
    writer.write_all(b"|end").unwrap();
    let out = writer.finish().unwrap();
    assert!(
        max_held <= (1 << 20) + (64 << 10),
        "held back {max_held} bytes"
    );
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("abab"), "a repeated value leaked");
    assert!(out.starts_with(&placeholder(1)) && out.ends_with("|end"));
}

#[test]
fn writer_passes_non_utf8_streams_without_panicking() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c")]);
    let mut input: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    input.extend_from_slice(b"\xff\xfesk-live-4f9a8b7c\xc3");
    let mut writer = redactor.writer(Vec::new());
    for chunk in input.chunks(7) {
        writer.write_all(chunk).unwrap();
    }
    let out = writer.finish().unwrap();
    let mut expected: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    expected.extend_from_slice(b"\xff\xfe");
    expected.extend_from_slice(placeholder(1).as_bytes());
    expected.push(0xc3);
    assert_eq!(out, expected);
}

#[test]
fn writer_releases_the_tail_redacted_when_dropped() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c")]);
    let mut sink = Vec::new();
    {
        let mut writer = redactor.writer(&mut sink);
        writer.write_all(b"tail sk-live-4f9a8b7c").unwrap();
    }
    assert_eq!(sink, format!("tail {}", placeholder(1)).into_bytes());
}

/// Refuses every other write for its first `flaky_calls` calls, and takes
/// at most 5 bytes a call, to exercise the writer's error path.
struct Flaky {
    out: Vec<u8>,
    calls: usize,
    flaky_calls: usize,
}

impl std::io::Write for Flaky {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls < self.flaky_calls && self.calls.is_multiple_of(2) {
            return Err(std::io::Error::other("flaky"));
        }
        let n = buf.len().min(5);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn writer_retries_after_inner_errors_and_never_passes_raw_bytes() {
    let value = "sk-live-4f9a8b7c";
    let redactor = redactor_with(&[(1, value)]);
    let text = format!("a {value} b {value} c ").repeat(20);
    let mut writer = redactor.writer(Flaky {
        out: Vec::new(),
        calls: 0,
        flaky_calls: 200,
    });
    let mut rest = text.as_bytes();
    let mut errors = 0;
    while !rest.is_empty() {
        match writer.write(&rest[..rest.len().min(9)]) {
            Ok(n) => rest = &rest[n..],
            Err(_) => errors += 1,
        }
    }
    assert!(errors > 0, "the inner writer never failed");
    let out = writer.finish().unwrap().out;
    let expected = format!("a {p} b {p} c ", p = placeholder(1)).repeat(20);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn redacted_serializes_and_displays_as_its_content() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c")]);
    let out = redactor.redact_str("k=sk-live-4f9a8b7c");
    assert_eq!(out.to_string(), format!("k={}", placeholder(1)));
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        format!("\"k={}\"", placeholder(1))
    );
    let owned: Redacted<String> = out.into_owned();
    assert_eq!(owned.as_str(), format!("k={}", placeholder(1)));
    let constant = Redacted::dangerous_assume_redacted("constant");
    assert_eq!(serde_json::to_string(&constant).unwrap(), "\"constant\"");
}

#[test]
fn debug_of_redactor_shows_counts_not_values() {
    let redactor = redactor_with(&[(1, "sk-live-4f9a8b7c"), (2, "another-secret-value")]);
    let debug = format!("{redactor:?}");
    assert!(
        debug.contains("handles: 2") && debug.contains("values: 2"),
        "{debug}"
    );
    assert!(
        !debug.contains("sk-live") && !debug.contains("another"),
        "{debug}"
    );
    let writer = redactor.writer(Vec::new());
    assert!(!format!("{writer:?}").contains("sk-live"));
}

#[test]
fn clones_share_one_registry() {
    let redactor = Redactor::new();
    let clone = redactor.clone();
    clone
        .register(&handle(1), &secret("sk-live-4f9a8b7c"))
        .unwrap();
    assert_eq!(
        redactor.redact_str("sk-live-4f9a8b7c").as_str(),
        placeholder(1)
    );
}

#[test]
fn redactions_during_registration_never_panic_and_see_completed_registrations() {
    use std::sync::atomic::AtomicU32;

    let redactor = Redactor::new();
    redactor
        .register(&handle(0), &secret("always-registered-0"))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // How many `kept-value-<i>` registrations have returned.
    let published = Arc::new(AtomicU32::new(0));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let redactor = redactor.clone();
            let stop = Arc::clone(&stop);
            let published = Arc::clone(&published);
            std::thread::spawn(move || {
                let mut checked = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let n = published.load(Ordering::Acquire);
                    let latest = n.checked_sub(1).map(|i| format!("kept-value-{i:04}"));
                    let text = format!(
                        "thread {t}: always-registered-0 rotating-value-17 {}",
                        latest.as_deref().unwrap_or("")
                    );
                    let out = redactor.redact_str(&text);
                    assert!(!out.as_str().contains("always-registered-0"), "{out}");
                    let mut writer = redactor.writer(Vec::new());
                    for chunk in text.as_bytes().chunks(5) {
                        writer.write_all(chunk).unwrap();
                    }
                    let streamed = String::from_utf8(writer.finish().unwrap()).unwrap();
                    assert!(!streamed.contains("always-registered-0"), "{streamed}");
                    if let Some(latest) = latest {
                        assert!(!out.as_str().contains(&latest), "{out}");
                        assert!(!streamed.contains(&latest), "{streamed}");
                        checked += 1;
                    }
                }
                checked
            })
        })
        .collect();
    for i in 0..150u32 {
        let kept = format!("kept-value-{i:04}");
        redactor.register(&handle(100 + i), &secret(&kept)).unwrap();
        published.store(i + 1, Ordering::Release);
        let rotating = format!("rotating-value-{i}");
        redactor
            .register(&handle(1 + i % 4), &secret(&rotating))
            .unwrap();
        assert_eq!(
            redactor.redact_str(&rotating).as_str(),
            placeholder(1 + i % 4)
        );
        if i % 3 == 0 {
            redactor.remove(&handle(1 + i % 4));
            assert_eq!(redactor.redact_str(&rotating).as_str(), rotating);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(
            reader.join().unwrap() > 0,
            "a reader never checked a registration"
        );
    }
}

#[test]
fn registration_seen_by_other_threads_after_register_returns() {
    let redactor = Redactor::new();
    for i in 0..50u32 {
        let value = format!("cross-thread-value-{i}");
        redactor.register(&handle(i), &secret(&value)).unwrap();
        let other = redactor.clone();
        let seen = std::thread::spawn(move || other.redact_str(&value).into_owned())
            .join()
            .unwrap();
        assert_eq!(seen.as_str(), placeholder(i));
    }
}

#[test]
fn resolver_registers_resolved_values_with_the_redactor() {
    use crate::{
        AdminRequest, Catalog, KindSpec, MemoryAuditSink, MemoryCatalogStore, MemoryProvider,
        NewSecret, ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver,
        RulePolicy, Scope, SecretAdmin, SecretKind,
    };

    let redactor = Redactor::new();
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new()),
    );
    let create = |value: &str| {
        let spec = NewSecret::new(
            memory.clone(),
            Scope::new("open/a").unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        );
        // An admin without a redactor: only the resolver registers here.
        let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
            .without_redaction()
            .build()
            .unwrap();
        let by = AdminRequest::new(
            Requester::new("operator").unwrap(),
            Purpose::new("redaction test").unwrap(),
        );
        admin.create(spec, &secret(value), &by).unwrap()
    };
    let long = create("sk-live-resolved-1234");
    let short = create("Xq7zK9");
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "open", "effect": "allow", "secret": "memory:open/*"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(catalog.clone(), policy, Arc::new(MemoryAuditSink::new()))
        .redactor(redactor.clone())
        .build()
        .unwrap();
    let request = ResolveRequest::new(
        Requester::new("alpha").unwrap().tool_call("c1").unwrap(),
        Purpose::new("redaction hook test").unwrap(),
    );

    let text = "tool printed sk-live-resolved-1234";
    assert_eq!(redactor.redact_str(text).as_str(), text);
    let _value = resolver.resolve(long.id(), &request).unwrap();
    assert_eq!(
        redactor.redact_str(text).as_str(),
        format!("tool printed [{}]", long.id())
    );

    // Too short to redact: the resolve fails closed, and says why without
    // the value.
    let error = resolver.resolve(short.id(), &request).unwrap_err();
    assert!(matches!(error, ResolveError::Redaction { .. }));
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        message.push_str(&s.to_string());
        source = s.source();
    }
    assert!(message.contains("minimum of 8 bytes"), "{message}");
    assert!(!message.contains("Xq7zK9"), "{message}");
}
