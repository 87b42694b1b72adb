//! The forms of a secret value that the redactor looks for.
//!
//! Every builder here writes into a buffer sized up front and wrapped in
//! [`Zeroizing`], so no reallocation leaves an unwiped copy of a value (or
//! of an encoding of it) in freed memory.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::config::{Encoding, Encodings};
use super::escape::{
    HEX_LOWER, HEX_UPPER, Percent, debug_escaped, json_escaped, percent, tracing_escaped,
};
use crate::{ExposeSecret as _, SecretBytes};

/// Every form of `value` the redactor matches with `encodings`, each at
/// least `min_len` bytes, sorted and without duplicates.
///
/// What is included, and why:
///
/// - the value itself, always;
/// - [`Base64`](Encoding::Base64): standard and URL-safe alphabets, of the
///   value sitting at byte offset 0, 1 and 2 of a larger encoded buffer
///   (`user:password` in HTTP Basic auth puts the password at an arbitrary
///   offset). Only the characters whose 6 bits come entirely from the value
///   are kept: at offset 0 the first `floor(8n/6)` characters, at offset 1
///   the leading 2 characters are dropped, at offset 2 the leading 3.
///   Padding and the trailing partial character (which depends on what
///   follows the value) are never part of the pattern;
/// - [`Base64Wrapped`](Encoding::Base64Wrapped): the offset-0 standard
///   core with a line break every 64 characters (PEM) and every 76 (MIME),
///   each with `\n` and with `\r\n`, when the core is longer than a line;
/// - [`Hex`](Encoding::Hex): lower and upper case;
/// - [`Percent`](Encoding::Percent): RFC 3986 (everything outside
///   `A-Za-z0-9-._~` as `%XX`), upper- and lower-case hex digits;
/// - [`PercentReservedRaw`](Encoding::PercentReservedRaw): `encodeURI`
///   (also `;,/?:@&=+$#` raw), `encodeURIComponent` (`!*'()` raw) and
///   Python's `quote(s, safe="/")` (`/` raw), upper-case hex digits;
/// - [`FormUrlencoded`](Encoding::FormUrlencoded): space as `+`, with
///   WHATWG's raw set `*-._` and Python `quote_plus`'s `-._~`;
/// - for UTF-8 values: [`Json`](Encoding::Json) string escaping as
///   `serde_json` and JavaScript write it and the ASCII-only form (`\uXXXX`
///   for DEL and non-ASCII, as Python's `json.dumps` writes it);
///   [`JsonTwice`](Encoding::JsonTwice), each of those applied twice;
///   [`RustDebug`](Encoding::RustDebug), Rust's `{:?}` escaping (what
///   `tracing` writes for `&str` fields); and
///   [`TracingEscapes`](Encoding::TracingEscapes), what
///   `tracing-subscriber`'s fmt layer writes in event messages and error
///   fields (ESC, BEL, BS, FF and DEL as `\x1b`, `\x07`, `\x08`, `\x0c`,
///   `\x7f`; C1 controls as `\u{80}`...`\u{9f}`);
/// - [`Lines`](Encoding::Lines): each line of a multi-line value (split at
///   `\n`, a trailing `\r` dropped), except PEM armour lines
///   (`-----BEGIN ...`, `-----END ...`), which are public boilerplate.
///
/// Variants shorter than `min_len` are skipped rather than registered: a
/// short line of a multi-line value, or the base64 core of a value near the
/// minimum, would mask ordinary text. The whole value (and its longer
/// encodings) still match, so skipping only loses the case where that short
/// piece appears on its own.
pub(crate) fn variants(
    value: &[u8],
    min_len: usize,
    encodings: Encodings,
) -> Vec<Zeroizing<Vec<u8>>> {
    let on = |encoding| encodings.contains(encoding);
    let mut out: Vec<Zeroizing<Vec<u8>>> = Vec::with_capacity(32);
    out.push(Zeroizing::new(value.to_vec()));
    if on(Encoding::Base64) {
        for offset in 0..3 {
            out.push(base64_core(value, offset, false));
            out.push(base64_core(value, offset, true));
        }
    }
    if on(Encoding::Base64Wrapped) {
        let core = base64_core(value, 0, false);
        for width in [64, 76] {
            if core.len() > width {
                out.push(wrapped(&core, width, b"\n"));
                out.push(wrapped(&core, width, b"\r\n"));
            }
        }
    }
    if on(Encoding::Hex) {
        out.push(hex(value, HEX_LOWER));
        out.push(hex(value, HEX_UPPER));
    }
    if on(Encoding::Percent) {
        out.push(percent(value, HEX_UPPER, Percent::Rfc3986));
        out.push(percent(value, HEX_LOWER, Percent::Rfc3986));
    }
    if on(Encoding::PercentReservedRaw) {
        for style in [Percent::Uri, Percent::UriComponent, Percent::PythonQuote] {
            out.push(percent(value, HEX_UPPER, style));
        }
    }
    if on(Encoding::FormUrlencoded) {
        out.push(percent(value, HEX_UPPER, Percent::Form));
        out.push(percent(value, HEX_UPPER, Percent::PythonQuotePlus));
    }
    if let Ok(text) = std::str::from_utf8(value) {
        for ascii_only in [false, true] {
            let once = json_escaped(text, ascii_only);
            if on(Encoding::JsonTwice) {
                // Escaping keeps text text, so this always succeeds.
                if let Ok(once) = std::str::from_utf8(&once) {
                    out.push(json_escaped(once, ascii_only));
                }
            }
            if on(Encoding::Json) {
                out.push(once);
            }
        }
        if on(Encoding::RustDebug) {
            out.push(debug_escaped(text));
        }
        if on(Encoding::TracingEscapes) {
            out.push(tracing_escaped(text));
        }
    }
    if on(Encoding::Lines) && value.contains(&b'\n') {
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
/// value length `min_len` and every [`Encoding`] matches, as secret values.
///
/// The list is what [`Redactor::register`](super::Redactor::register) adds
/// for the value (see the [module docs](super) for the encodings). Tests and
/// benchmarks use it to check that every variant is redacted; nothing in
/// the redactor needs it.
pub fn encoded_variants(value: &SecretBytes, min_len: usize) -> Vec<SecretBytes> {
    encoded_variants_with(value, min_len, Encodings::all())
}

/// [`encoded_variants`] for a redactor that matches only `encodings`.
pub fn encoded_variants_with(
    value: &SecretBytes,
    min_len: usize,
    encodings: Encodings,
) -> Vec<SecretBytes> {
    variants(value.expose_secret(), min_len, encodings)
        .into_iter()
        .map(|v| SecretBytes::from(v.to_vec()))
        .collect()
}

/// `core` with `newline` after every `width` characters (not after the
/// last line).
fn wrapped(core: &[u8], width: usize, newline: &[u8]) -> Zeroizing<Vec<u8>> {
    let lines = core.len().div_ceil(width);
    let mut out = Zeroizing::new(Vec::with_capacity(core.len() + lines * newline.len()));
    for (i, line) in core.chunks(width).enumerate() {
        if i > 0 {
            out.extend_from_slice(newline);
        }
        out.extend_from_slice(line);
    }
    out
}

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

fn is_pem_armour(line: &[u8]) -> bool {
    (line.starts_with(b"-----BEGIN ") || line.starts_with(b"-----END ")) && line.ends_with(b"-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(value: &[u8], min_len: usize) -> Vec<String> {
        variants(value, min_len, Encodings::all())
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn base64_cores_appear_in_the_encoding_of_any_surrounding_buffer() {
        let value = b"sk-live-0123456789+/?";
        let found = variants(value, 8, Encodings::all());
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
        for v in variants(b"abcdefgh\nab", 8, Encodings::all()) {
            assert!(v.len() >= 8);
        }
        assert!(
            variants(b"abcdefgh", 12, Encodings::all())
                .iter()
                .all(|v| v.len() >= 12)
        );
    }
}
