//! The encodings the redactor matches: each as a real encoder writes it,
//! and each one that can be turned off.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::tests::{handle, placeholder, redactor_with, secret};
use super::*;

/// Reserved characters, a space, non-ASCII, quotes and a backslash: every
/// percent-encoder and escaper below treats some of them differently.
const VALUE: &str = "p@ss wörd/+?&=;x~*'(!)\"\\";

/// `text` with the form of `VALUE` in it replaced by its placeholder.
fn assert_redacted(redactor: &Redactor, text: &str) {
    assert_eq!(
        redactor.redact_str(&format!("<{text}>")).as_str(),
        format!("<{}>", placeholder(1)),
        "{text}"
    );
}

#[test]
fn python_ascii_json_form_of_a_value_with_del_is_redacted() {
    // `json.dumps("pass\x7fword-1234\u00e9\x01\x1b")` in Python, whose
    // ASCII-only output escapes everything outside space..tilde, DEL too.
    let redactor = redactor_with(&[(1, "pass\u{7f}word-1234\u{e9}\u{1}\u{1b}")]);
    let dumped = r#"{"token": "pass\u007fword-1234\u00e9\u0001\u001b"}"#;
    assert_eq!(
        redactor.redact_str(dumped).as_str(),
        format!(r#"{{"token": "{}"}}"#, placeholder(1))
    );
}

#[test]
fn percent_encodings_that_leave_reserved_characters_raw_are_redacted() {
    let redactor = redactor_with(&[(1, VALUE)]);
    // Written by node (`encodeURI`, `encodeURIComponent`) and Python 3
    // (`urllib.parse.quote(v, safe="/")`).
    for encoded in [
        "p@ss%20w%C3%B6rd/+?&=;x~*'(!)%22%5C",
        "p%40ss%20w%C3%B6rd%2F%2B%3F%26%3D%3Bx~*'(!)%22%5C",
        "p%40ss%20w%C3%B6rd/%2B%3F%26%3D%3Bx~%2A%27%28%21%29%22%5C",
    ] {
        assert_redacted(&redactor, encoded);
    }
}

#[test]
fn form_encodings_with_plus_for_space_are_redacted() {
    let redactor = redactor_with(&[(1, VALUE)]);
    // `new URLSearchParams({k: v})` in node, `quote_plus(v)` in Python 3.
    for encoded in [
        "p%40ss+w%C3%B6rd%2F%2B%3F%26%3D%3Bx%7E*%27%28%21%29%22%5C",
        "p%40ss+w%C3%B6rd%2F%2B%3F%26%3D%3Bx~%2A%27%28%21%29%22%5C",
    ] {
        assert_redacted(&redactor, encoded);
    }
}

#[test]
fn json_escaped_twice_is_redacted() {
    let redactor = redactor_with(&[(1, VALUE)]);
    // A JSON document holding the value, stored as a string in another.
    let inner = serde_json::json!({ "password": VALUE }).to_string();
    let outer = serde_json::json!({ "tool_output": inner }).to_string();
    assert_eq!(
        redactor.redact_str(&outer).as_str(),
        format!(
            r#"{{"tool_output":"{{\"password\":\"{}\"}}"}}"#,
            placeholder(1)
        )
    );
    // Python 3: `json.dumps(json.dumps(v))`, ASCII-only both times.
    let python = r#""\"p@ss w\\u00f6rd/+?&=;x~*'(!)\\\"\\\\\"""#;
    assert_eq!(
        redactor.redact_str(python).as_str(),
        format!(r#""\"{}\"""#, placeholder(1))
    );
}

#[test]
fn base64_wrapped_at_64_and_76_columns_is_redacted() {
    // A DER-like key of 300 bytes in a PEM block (64 columns, `\n`) and as
    // a MIME part (76 columns, `\r\n`).
    let key: Vec<u8> = (0..300u32).map(|i| (i * 89 + 7) as u8).collect();
    let redactor = Redactor::new();
    redactor.register(&handle(1), &secret(&key)).unwrap();
    let encoded = STANDARD.encode(&key);
    for (width, newline) in [(64, "\n"), (64, "\r\n"), (76, "\r\n"), (76, "\n")] {
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(width)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        let document = format!(
            "-----BEGIN PRIVATE KEY-----{newline}{}{newline}-----END PRIVATE KEY-----{newline}",
            lines.join(newline)
        );
        let out = redactor.redact_str(&document).into_owned();
        // Only what depends on the end of the data may remain: the last
        // partial character and the padding.
        let body = out
            .as_str()
            .strip_prefix(&format!("-----BEGIN PRIVATE KEY-----{newline}"))
            .and_then(|rest| rest.strip_prefix(&placeholder(1)))
            .unwrap_or_else(|| panic!("{width} columns: {out}"));
        assert!(
            body.len() <= 3 + 2 * newline.len() + 28,
            "{width}: {body:?}"
        );
        for line in &lines {
            assert!(!out.as_str().contains(&line[..8.min(line.len())]), "{out}");
        }
    }
}

#[test]
fn base64_of_a_value_shorter_than_a_line_is_not_wrapped() {
    let value = b"sk-live-0123456789abcdef0123456789abcdef";
    let wrapped = encoded_variants_with(
        &secret(value),
        DEFAULT_MIN_VALUE_LEN,
        Encodings::none().with(Encoding::Base64Wrapped),
    );
    // 40 bytes encode to 53 characters: one line, no break to match.
    assert_eq!(wrapped.len(), 1, "only the value itself");
}

#[test]
fn each_encoding_can_be_turned_off() {
    // Long enough to wrap, multi-line, with control characters, quotes,
    // non-ASCII and reserved characters: every family has forms of its own.
    let value = format!("{VALUE}\u{1b}[0m-0123456789abcdef0123\nsecond-line-of-the-value");
    let all = encoded_variants(&secret(&value), DEFAULT_MIN_VALUE_LEN);
    for encoding in Encoding::ALL {
        let without = Encodings::all().without(encoding);
        let kept = encoded_variants_with(&secret(&value), DEFAULT_MIN_VALUE_LEN, without);
        let own: Vec<&SecretBytes> = all
            .iter()
            .filter(|form| {
                !kept
                    .iter()
                    .any(|k| k.expose_secret() == form.expose_secret())
            })
            .collect();
        assert!(!own.is_empty(), "{encoding:?} adds no form of its own");

        let on = Redactor::new();
        let off = Redactor::builder().encodings(without).build();
        for redactor in [&on, &off] {
            redactor.register(&handle(1), &secret(&value)).unwrap();
        }
        assert_eq!(off.encodings(), without);
        for form in own {
            let text = [b"<".as_slice(), form.expose_secret(), b">"].concat();
            let whole = format!("<{}>", placeholder(1)).into_bytes();
            assert_eq!(on.redact_bytes(&text).as_bytes(), whole, "{encoding:?} on");
            assert_ne!(
                off.redact_bytes(&text).as_bytes(),
                whole,
                "{encoding:?} off"
            );
        }
    }
}

#[test]
fn with_no_encodings_only_the_value_itself_is_matched() {
    let redactor = Redactor::builder().encodings(Encodings::none()).build();
    redactor
        .register(&handle(1), &secret("sk-live-4f9a8b7c"))
        .unwrap();
    assert_eq!(redactor.pattern_count(), 1);
    let hex: String = "sk-live-4f9a8b7c"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(redactor.redact_str(&hex).as_str(), hex);
    assert_eq!(
        redactor.redact_str("k=sk-live-4f9a8b7c").as_str(),
        format!("k={}", placeholder(1))
    );
}
