//! Registration: what it costs with large values already registered, and
//! what concurrent redactions see while it runs.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::tests::{handle, placeholder, redactor_with, secret};
use super::*;

/// A certificate bundle of about `bytes` bytes: PEM blocks of 20 lines of
/// 64 base64 characters (pseudo-random, so every line differs).
pub(super) fn pem_bundle(bytes: usize) -> String {
    const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut out = String::with_capacity(bytes + 2048);
    while out.len() < bytes {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for _ in 0..20 {
            for _ in 0..64 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                out.push(char::from(BASE64[(state % 64) as usize]));
            }
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

#[test]
fn repetitive_value_is_compiled_without_a_dfa() {
    // aho-corasick picks a DFA for a few patterns, and builds it in time
    // super-linear in a repetitive pattern: an 8 KiB run of one byte took
    // seconds to register, and every later registration as long again,
    // under the registry mutex. The NFA builds in linear time. (The short
    // run comes first so that, were a DFA chosen, the test fails at once.)
    for len in [64, 8 << 10] {
        let redactor = redactor_with(&[(1, &"A".repeat(len))]);
        redactor
            .register(&handle(2), &secret("sk-live-0123456789abcdef"))
            .unwrap();
        assert_ne!(
            redactor.matcher().automaton_kind(),
            Some(aho_corasick::AhoCorasickKind::DFA),
            "{len}-byte run"
        );
    }
}

#[test]
fn registration_work_does_not_grow_with_large_values_already_registered() {
    // The first milestone rebuilt one automaton over every pattern at each
    // registration: with a 32 KiB PEM bundle registered (about 0.5 MiB of
    // patterns with its encodings) that took hundreds of milliseconds, under
    // the registry mutex, at every first resolve of another secret. Now a
    // registration copies only the pieces of the snapshot it changes.
    let pem = pem_bundle(32 << 10);
    let run = "A".repeat(8 << 10);
    let redactor = redactor_with(&[(1, &pem), (2, &run)]);
    let registered: usize = [&pem, &run]
        .iter()
        .flat_map(|v| encoded_variants(&secret(v), DEFAULT_MIN_VALUE_LEN))
        .map(|v| v.expose_secret().len())
        .sum();

    redactor
        .register(&handle(3), &secret("sk-live-0123456789abcdef"))
        .unwrap();
    let work = redactor.matcher().change_work();
    assert!(
        work <= 128 << 10 && work * 4 < registered,
        "registering a 24-byte key copied or built {work} bytes of structure \
         with {registered} bytes of patterns registered"
    );
    assert_eq!(
        redactor.redact_str("k=sk-live-0123456789abcdef").as_str(),
        format!("k={}", placeholder(3))
    );
    assert_eq!(redactor.redact_str(&pem).as_str(), placeholder(1));
    assert_eq!(
        redactor.redact_str(&format!("<{run}>")).as_str(),
        format!("<{}>", placeholder(2))
    );
}

#[test]
fn redactions_on_four_threads_see_every_registration_whole() {
    // Batches of three values are registered with `register_all` while four
    // threads redact text holding every value published so far and the
    // batch in flight. A published value must never survive; the batch in
    // flight must be redacted whole or not at all (no torn snapshot).
    for index_only in [false, true] {
        let redactor = Redactor::new();
        let redactor = if index_only {
            redactor.index_only()
        } else {
            redactor
        };
        let value = |batch: u32, i: u32| format!("batch-{batch:04}-value-{i}-{}", batch * 7 + i);
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU32::new(0));
        let readers: Vec<_> = (0..4)
            .map(|t| {
                let redactor = redactor.clone();
                let (stop, published) = (Arc::clone(&stop), Arc::clone(&published));
                std::thread::spawn(move || {
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let done = published.load(Ordering::Acquire);
                        let old = done.saturating_sub(1 + u32::try_from(rounds % 5).unwrap());
                        let seen: Vec<String> = (0..3).map(|i| value(old, i)).collect();
                        let flight: Vec<String> = (0..3).map(|i| value(done, i)).collect();
                        let text = format!("t{t} {} | {}", seen.join(" "), flight.join(" "));
                        let out = redactor.redact_str(&text).into_owned();
                        let mut writer = redactor.writer(Vec::new());
                        for chunk in text.as_bytes().chunks(1 + (rounds % 13) as usize) {
                            writer.write_all(chunk).unwrap();
                        }
                        let streamed = String::from_utf8(writer.finish().unwrap()).unwrap();
                        for out in [out.as_str(), streamed.as_str()] {
                            if done > 0 {
                                for v in &seen {
                                    assert!(!out.contains(v.as_str()), "{out}");
                                }
                            }
                        }
                        // One snapshot for the whole text: all or nothing.
                        let left = flight
                            .iter()
                            .filter(|v| out.as_str().contains(v.as_str()))
                            .count();
                        assert!(left == 0 || left == 3, "torn batch: {out}");
                        // The writer takes the current snapshot at each
                        // write, so the batch may arrive mid-stream: once
                        // one of its values is redacted, every later one is.
                        let left: Vec<bool> = flight
                            .iter()
                            .map(|v| streamed.contains(v.as_str()))
                            .collect();
                        assert!(
                            left.windows(2).all(|w| w[0] || !w[1]),
                            "torn batch: {streamed}"
                        );
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        for batch in 0..120u32 {
            let handles: Vec<HandleId> = (0..3).map(|i| handle(1000 + batch * 3 + i)).collect();
            let values: Vec<SecretBytes> = (0..3).map(|i| secret(value(batch, i))).collect();
            redactor
                .register_all(handles.iter().zip(values.iter()))
                .unwrap();
            published.store(batch + 1, Ordering::Release);
            // Churn: a rotating value comes and goes under another handle.
            let rotating = secret(format!("rotating-value-{batch:04}"));
            redactor.register(&handle(1), &rotating).unwrap();
            assert!(redactor.remove_value(&handle(1), &rotating));
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().unwrap() > 0, "a reader never ran");
        }
    }
}
