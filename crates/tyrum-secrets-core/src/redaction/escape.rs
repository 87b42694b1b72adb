//! Escaping and percent-encoding of text, as the encoders the redactor
//! imitates write it.
//!
//! Every builder writes into a buffer sized up front and wrapped in
//! [`Zeroizing`], so no reallocation leaves an unwiped copy of a value (or
//! of an encoding of it) in freed memory.

use std::fmt::Write as _;

use zeroize::Zeroizing;

pub(super) const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";
pub(super) const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Which characters a percent-encoder leaves raw (besides ASCII letters
/// and digits), and whether it writes space as `+`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Percent {
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
pub(super) fn percent(value: &[u8], digits: &[u8; 16], style: Percent) -> Zeroizing<Vec<u8>> {
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
pub(super) fn json_escaped(text: &str, ascii_only: bool) -> Zeroizing<Vec<u8>> {
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
pub(super) fn debug_escaped(text: &str) -> Zeroizing<Vec<u8>> {
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
pub(super) fn tracing_escaped(text: &str) -> Zeroizing<Vec<u8>> {
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
