//! The encodings of a secret value that the redactor also looks for.
//!
//! Every builder here writes into a buffer sized up front and wrapped in
//! [`Zeroizing`], so no reallocation leaves an unwiped copy of a value (or
//! of an encoding of it) in freed memory.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::{ExposeSecret as _, SecretBytes};

/// Every form of `value` the redactor matches, each at least `min_len`
/// bytes, sorted and without duplicates.
///
/// What is included, and why:
///
/// - the value itself;
/// - base64, standard and URL-safe alphabets, of the value sitting at byte
///   offset 0, 1 and 2 of a larger encoded buffer (`user:password` in HTTP
///   Basic auth puts the password at an arbitrary offset). Only the
///   characters whose 6 bits come entirely from the value are kept: at
///   offset 0 the first `floor(8n/6)` characters, at offset 1 the leading 2
///   characters are dropped, at offset 2 the leading 3. Padding and the
///   trailing partial character (which depends on what follows the value)
///   are never part of the pattern;
/// - lower- and upper-case hex;
/// - percent-encoding of the whole value: RFC 3986 (everything outside
///   `A-Za-z0-9-._~` as `%XX`), the same with lower-case hex digits, and
///   `application/x-www-form-urlencoded` (space as `+`);
/// - for UTF-8 values: JSON string escaping as `serde_json` and JavaScript
///   write it, the ASCII-only form (`\uXXXX`, as Python's `json.dumps`
///   writes it), Rust's `{:?}` escaping (what `tracing` writes for `&str`
///   fields), and the escaping `tracing-subscriber`'s fmt layer applies to
///   event messages and error fields (ESC, BEL, BS, FF and DEL as `\x1b`,
///   `\x07`, `\x08`, `\x0c`, `\x7f`; C1 controls as `\u{80}`...`\u{9f}`);
/// - each line of a multi-line value (split at `\n`, a trailing `\r`
///   dropped), except PEM armour lines (`-----BEGIN ...`, `-----END ...`),
///   which are public boilerplate.
///
/// Variants shorter than `min_len` are skipped rather than registered: a
/// short line of a multi-line value, or the base64 core of a value near the
/// minimum, would mask ordinary text. The whole value (and its longer
/// encodings) still match, so skipping only loses the case where that short
/// piece appears on its own.
pub(crate) fn variants(value: &[u8], min_len: usize) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(24);
    out.push(Zeroizing::new(value.to_vec()));
    for offset in 0..3 {
        out.push(base64_core(value, offset, false));
        out.push(base64_core(value, offset, true));
    }
    out.push(hex(value, HEX_LOWER));
    out.push(hex(value, HEX_UPPER));
    out.push(percent(value, HEX_UPPER, Percent::Rfc3986));
    out.push(percent(value, HEX_LOWER, Percent::Rfc3986));
    out.push(percent(value, HEX_UPPER, Percent::Form));
    if let Ok(text) = std::str::from_utf8(value) {
        out.push(json_escaped(text, false));
        out.push(json_escaped(text, true));
        out.push(debug_escaped(text));
        out.push(tracing_escaped(text));
    }
    if value.contains(&b'\n') {
        for line in value.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !is_pem_armour(line) {
                out.push(Zeroizing::new(line.to_vec()));
            }
        }
    }
    out.retain(|v| v.len() >= min_len.max(1));
    out.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
    out.dedup_by(|a, b| a.as_slice() == b.as_slice());
    out
}

/// Every form of `value` that a [`Redactor`](super::Redactor) with minimum
/// value length `min_len` matches, as secret values.
///
/// The list is what [`Redactor::register`](super::Redactor::register) adds
/// for the value (see the [module docs](super) for the encodings). Tests and
/// benchmarks use it to check that every variant is redacted; nothing in
/// the redactor needs it.
pub fn encoded_variants(value: &SecretBytes, min_len: usize) -> Vec<SecretBytes> {
    variants(value.expose_secret(), min_len)
        .into_iter()
        .map(|v| SecretBytes::from(v.to_vec()))
        .collect()
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The base64 characters determined by `value` alone when it starts at byte
/// `offset` (0, 1 or 2) of a 3-byte group, without padding.
fn base64_core(value: &[u8], offset: usize, url_safe: bool) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(Vec::with_capacity(offset + value.len()));
    input.resize(offset, 0);
    input.extend_from_slice(value);
    let mut encoded = Zeroizing::new(vec![0u8; input.len().div_ceil(3) * 4]);
    let engine = if url_safe {
        &URL_SAFE_NO_PAD
    } else {
        &STANDARD_NO_PAD
    };
    // The buffer holds the padded length, which is at least the unpadded one,
    // so encoding cannot run out of room; an error leaves the pattern empty,
    // and empty patterns are dropped with the short ones.
    let written = engine
        .encode_slice(&input[..], &mut encoded[..])
        .unwrap_or(0);
    // Character i covers bits [6i, 6i + 6) of the group-aligned input; the
    // value covers bits [8 offset, 8 (offset + n)).
    let first = (8 * offset).div_ceil(6);
    let end = (8 * input.len() / 6).min(written);
    if first >= end {
        return Zeroizing::new(Vec::new());
    }
    Zeroizing::new(encoded[first..end].to_vec())
}

fn hex(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for &b in value {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0f)]);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Percent {
    /// RFC 3986: unreserved characters stay, everything else is `%XX`.
    Rfc3986,
    /// WHATWG `application/x-www-form-urlencoded`: `*-._` and alphanumerics
    /// stay, space becomes `+`.
    Form,
}

fn percent(value: &[u8], digits: &[u8; 16], style: Percent) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        let keep = match style {
            Percent::Rfc3986 => b.is_ascii_alphanumeric() || b"-._~".contains(&b),
            Percent::Form => b.is_ascii_alphanumeric() || b"*-._".contains(&b),
        };
        if keep {
            out.push(b);
        } else if style == Percent::Form && b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 0x0f)],
            ]);
        }
    }
    out
}

/// The inside of a JSON string literal holding `text`: `"`, `\` and control
/// characters escaped (short forms where JSON has them), and with
/// `ascii_only` DEL and every non-ASCII character as `\uXXXX` (surrogate
/// pairs above the BMP), lower-case hex as `serde_json`, JavaScript and
/// Python write it.
fn json_escaped(text: &str, ascii_only: bool) -> Zeroizing<Vec<u8>> {
    // Worst case: 12 bytes (`\uXXXX\uXXXX`) for a 4-byte character, 6 for a
    // 1-byte control character.
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 6));
    let mut units = [0u16; 2];
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            // The ASCII-only form escapes everything outside space..tilde,
            // as Python's `json.dumps` does: non-ASCII and DEL.
            c if c < ' ' || (ascii_only && (!c.is_ascii() || c == '\u{7f}')) => {
                for unit in c.encode_utf16(&mut units).iter() {
                    out.extend_from_slice(b"\\u");
                    for shift in [12u16, 8, 4, 0] {
                        out.push(HEX_LOWER[usize::from((unit >> shift) & 0x0f)]);
                    }
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    units.fill(0);
    out
}

/// The inside of `format!("{text:?}")`: Rust's `Debug` escaping of a string,
/// which `tracing` uses for `&str` fields.
fn debug_escaped(text: &str) -> Zeroizing<Vec<u8>> {
    // `{:?}` writes at most 10 bytes (`\u{10ffff}`) per character and adds two
    // quotes; reserving that up front means the `String` never reallocates.
    let mut out = Zeroizing::new(String::with_capacity(text.len() * 10 + 2));
    // Writing into a `String` cannot fail.
    let _ = write!(out, "{text:?}");
    let inner = out
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or("");
    Zeroizing::new(inner.as_bytes().to_vec())
}

/// What `tracing-subscriber`'s fmt layer (0.3.20 and later) writes for
/// `text` in an event message or an error field: its terminal-injection
/// guard replaces ESC, BEL, BS, FF and DEL with `\x1b`, `\x07`, `\x08`,
/// `\x0c`, `\x7f`, and C1 controls (U+0080 to U+009F) with `\u{80}` to
/// `\u{9f}` (lower-case hex, no padding); everything else stays.
fn tracing_escaped(text: &str) -> Zeroizing<Vec<u8>> {
    // At most 4 bytes out per byte in (`\x1b` for 1 byte, `\u{80}` for 2).
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 4));
    for c in text.chars() {
        match c {
            '\u{1b}' | '\u{07}' | '\u{08}' | '\u{0c}' | '\u{7f}' => {
                let b = c as u8;
                out.extend_from_slice(&[
                    b'\\',
                    b'x',
                    HEX_LOWER[usize::from(b >> 4)],
                    HEX_LOWER[usize::from(b & 0x0f)],
                ]);
            }
            '\u{80}'..='\u{9f}' => {
                let b = c as u8;
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'{',
                    HEX_LOWER[usize::from(b >> 4)],
                    HEX_LOWER[usize::from(b & 0x0f)],
                    b'}',
                ]);
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

fn is_pem_armour(line: &[u8]) -> bool {
    (line.starts_with(b"-----BEGIN ") || line.starts_with(b"-----END ")) && line.ends_with(b"-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(value: &[u8], min_len: usize) -> Vec<String> {
        variants(value, min_len)
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn base64_cores_appear_in_the_encoding_of_any_surrounding_buffer() {
        let value = b"sk-live-0123456789+/?";
        let found = variants(value, 8);
        for prefix_len in 0..6 {
            for suffix_len in 0..4 {
                let mut buffer = vec![b'x'; prefix_len];
                buffer.extend_from_slice(value);
                buffer.extend(std::iter::repeat_n(b'y', suffix_len));
                for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                    let encoded = engine.encode(&buffer);
                    let hit = found.iter().any(|v| {
                        encoded
                            .as_bytes()
                            .windows(v.len())
                            .any(|w| w == v.as_slice())
                    });
                    assert!(hit, "no variant inside base64 of prefix {prefix_len}");
                }
            }
        }
    }

    #[test]
    fn base64_core_drops_characters_that_depend_on_neighbours() {
        // "abcdefgh" at offset 0: 64 bits, 10 whole characters; the 11th
        // mixes in 2 bits of whatever follows.
        assert_eq!(&base64_core(b"abcdefgh", 0, false)[..], b"YWJjZGVmZ2");
        let at1 = STANDARD_NO_PAD.encode(b"\0abcdefgh");
        assert_eq!(
            &base64_core(b"abcdefgh", 1, false)[..],
            &at1.as_bytes()[2..12]
        );
        let at2 = STANDARD_NO_PAD.encode(b"\0\0abcdefgh");
        assert_eq!(
            &base64_core(b"abcdefgh", 2, false)[..],
            &at2.as_bytes()[3..13]
        );
    }

    #[test]
    fn text_encodings_match_their_reference_encoders() {
        let value = "pa ss/wörd\"\n\u{1}😀-x";
        let all = strings(value.as_bytes(), 8);
        let json = serde_json::to_string(value).unwrap();
        assert!(all.contains(&json[1..json.len() - 1].to_owned()));
        let debug = format!("{value:?}");
        assert!(all.contains(&debug[1..debug.len() - 1].to_owned()));
        assert!(
            all.iter().any(|v| v.contains("\\ud83d\\ude00")),
            "ASCII-only JSON"
        );
        assert!(all.contains(&"pa%20ss%2Fw%C3%B6rd%22%0A%01%F0%9F%98%80-x".to_owned()));
        assert!(all.contains(&"pa+ss%2Fw%C3%B6rd%22%0A%01%F0%9F%98%80-x".to_owned()));
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(all.contains(&hex));
        assert!(all.contains(&hex.to_uppercase()));
    }

    #[test]
    fn short_lines_and_pem_armour_are_not_variants() {
        let value = b"-----BEGIN KEY-----\r\nMIIBOgIBAAJBAKj34\nshort\n-----END KEY-----";
        let all = strings(value, 8);
        assert!(all.contains(&"MIIBOgIBAAJBAKj34".to_owned()));
        assert!(!all.contains(&"short".to_owned()));
        assert!(
            !all.iter()
                .any(|v| v == "-----BEGIN KEY-----" || v == "-----END KEY-----")
        );
    }

    #[test]
    fn variants_are_never_shorter_than_the_minimum() {
        for v in variants(b"abcdefgh\nab", 8) {
            assert!(v.len() >= 8);
        }
        assert!(variants(b"abcdefgh", 12).iter().all(|v| v.len() >= 12));
    }
}
