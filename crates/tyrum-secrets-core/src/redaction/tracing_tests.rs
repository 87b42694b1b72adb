//! The tracing writer under a real `tracing_subscriber::fmt()` subscriber.

use std::io::{self, Write as _};
use std::sync::{Arc, Mutex};

use ::tracing::Level;
use tracing_subscriber::fmt::MakeWriter as _;

use super::tests::{handle, secret};
use super::*;

/// A writer into a shared buffer, so the test can read what was logged.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn placeholder(n: u32) -> String {
    format!("[{}]", handle(n))
}

/// Runs `log` under a TRACE-level fmt subscriber writing through the
/// redactor, and returns the output. `bare` drops time, level and target.
fn logged(redactor: &Redactor, bare: bool, log: impl FnOnce()) -> String {
    let capture = Capture::default();
    let sink = capture.clone();
    let writer = redactor.make_writer(move || sink.clone());
    let builder = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_writer(writer);
    if bare {
        let subscriber = builder
            .without_time()
            .with_level(false)
            .with_target(false)
            .finish();
        ::tracing::subscriber::with_default(subscriber, log);
    } else {
        ::tracing::subscriber::with_default(builder.finish(), log);
    }
    capture.text()
}

#[test]
fn trace_and_debug_events_are_redacted_like_errors() {
    let redactor = Redactor::new();
    let value = "pa\"ss\\word-1234";
    redactor.register(&handle(1), &secret(value)).unwrap();
    let out = logged(&redactor, false, || {
        ::tracing::trace!(token = value, "trace {value}");
        ::tracing::debug!(token = %value, "debug");
        ::tracing::error!(token = ?value, "error");
    });
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("TRACE") && out.contains("DEBUG"), "{out}");
    // `token = value` writes the `{:?}` form: `"pa\"ss\\word-1234"`.
    assert!(!out.contains("word-1234"), "{out}");
    assert_eq!(out.matches(&placeholder(1)).count(), 4, "{out}");
}

#[test]
fn multi_line_secret_in_one_event_is_redacted_on_both_lines() {
    let redactor = Redactor::new();
    let value = "first-line-of-key\nsecond-line-of-key";
    redactor.register(&handle(1), &secret(value)).unwrap();
    let out = logged(&redactor, false, || ::tracing::trace!("key: {value}"));
    assert!(!out.contains("line-of-key"), "{out}");
    assert!(out.contains(&placeholder(1)), "{out}");
}

#[test]
fn secret_split_across_two_log_lines_of_different_events_is_redacted() {
    let redactor = Redactor::new();
    let value = "first-line-of-key\nsecond-line-of-key";
    redactor.register(&handle(1), &secret(value)).unwrap();
    // With the full prefix (time, level, target) between the lines, each
    // line is caught as a line of the value.
    let out = logged(&redactor, false, || {
        for line in value.lines() {
            ::tracing::trace!("{line}");
        }
    });
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!out.contains("line-of-key"), "{out}");
    for line in out.lines() {
        assert!(line.ends_with(&placeholder(1)), "{out}");
    }
}

#[test]
fn short_continuation_line_in_the_next_event_is_redacted() {
    let redactor = Redactor::new();
    // The second line is shorter than the minimum, so it is no pattern of its
    // own: only the carried tail of the previous event can catch it.
    let value = "long-first-line-of-key\nxyz12";
    redactor.register(&handle(1), &secret(value)).unwrap();
    let out = logged(&redactor, true, || {
        ::tracing::info!("long-first-line-of-key");
        ::tracing::info!("xyz12");
        ::tracing::info!("xyz12");
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [placeholder(1).as_str(), placeholder(1).as_str(), "xyz12"],
        "{out}"
    );
}

#[test]
fn secret_split_across_writes_of_one_event_is_redacted() {
    let redactor = Redactor::new();
    redactor
        .register(&handle(1), &secret("sk-live-4f9a8b7c"))
        .unwrap();
    let capture = Capture::default();
    let sink = capture.clone();
    let make = redactor.make_writer(move || sink.clone());
    {
        let mut event = make.make_writer();
        event.write_all(b"token=sk-li").unwrap();
        event.write_all(b"ve-4f9a").unwrap();
        event.write_all(b"8b7c done\n").unwrap();
        assert_eq!(
            capture.text(),
            "",
            "nothing is written before the event ends"
        );
    }
    assert_eq!(capture.text(), format!("token={} done\n", placeholder(1)));
}

#[test]
fn values_registered_after_the_subscriber_was_built_are_redacted() {
    let redactor = Redactor::new();
    let clone = redactor.clone();
    let out = logged(&redactor, true, move || {
        clone
            .register(&handle(1), &secret("late-registered-value"))
            .unwrap();
        ::tracing::trace!("late-registered-value");
    });
    assert_eq!(out, format!("{}\n", placeholder(1)));
}

#[test]
fn values_with_control_characters_tracing_escapes_are_redacted() {
    // tracing-subscriber's fmt layer writes ESC, BEL, BS, FF and DEL in an
    // event message as `\x1b`, `\x07`, `\x08`, `\x0c`, `\x7f`, and C1
    // controls as `\u{80}`: a value holding one is no longer its raw bytes.
    for control in ['\u{1b}', '\u{7}', '\u{8}', '\u{c}', '\u{7f}', '\u{85}'] {
        let redactor = Redactor::new();
        let value = format!("tok{control}en-secret-4f9a8b7c");
        redactor.register(&handle(1), &secret(&value)).unwrap();
        let out = logged(&redactor, true, || {
            ::tracing::info!("message {value}");
            let error = std::io::Error::other(value.clone());
            ::tracing::info!(error = &error as &dyn std::error::Error, "failed");
        });
        assert!(!out.contains("secret-4f9a8b7c"), "{control:?}: {out}");
        assert_eq!(out.matches(&placeholder(1)).count(), 2, "{out}");
    }
}
