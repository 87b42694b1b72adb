//! The first milestone's encoders, kept as written then, as the reference
//! that [`Forms`](super::variants::Forms) is tested against: whatever
//! the faster code does, it must produce exactly these forms.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use super::config::{Encoding, Encodings};

/// Every form of `value` with `encodings`, each at least `min_len` bytes,
/// sorted and without duplicates.
pub(super) fn variants(
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

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Which characters a percent-encoder leaves raw (besides ASCII letters
/// and digits), and whether it writes space as `+`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Percent {
    /// RFC 3986: unreserved characters stay, everything else is `%XX`.
    Rfc3986,
    /// JavaScript's `encodeURIComponent`.
    UriComponent,
    /// JavaScript's `encodeURI`: reserved characters stay too.
    Uri,
    /// Python's `urllib.parse.quote(s, safe="/")`.
    PythonQuote,
    /// WHATWG `application/x-www-form-urlencoded` (browsers,
    /// `URLSearchParams`, Java's `URLEncoder`): space becomes `+`.
    Form,
    /// Python's `urllib.parse.quote_plus`: space becomes `+`.
    PythonQuotePlus,
}

impl Percent {
    fn raw(self) -> &'static [u8] {
        match self {
            Percent::Rfc3986 => b"-._~",
            Percent::UriComponent => b"-_.!~*'()",
            Percent::Uri => b"-_.!~*'();,/?:@&=+$#",
            Percent::PythonQuote => b"-_.~/",
            Percent::Form => b"*-._",
            Percent::PythonQuotePlus => b"-_.~",
        }
    }

    fn space_as_plus(self) -> bool {
        matches!(self, Percent::Form | Percent::PythonQuotePlus)
    }
}

/// `value` percent-encoded as `style` does it, with these hex digits.
fn percent(value: &[u8], digits: &[u8; 16], style: Percent) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || style.raw().contains(&b) {
            out.push(b);
        } else if b == b' ' && style.space_as_plus() {
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
