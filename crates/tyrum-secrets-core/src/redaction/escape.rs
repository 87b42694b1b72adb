//! The encoders the redactor imitates: base64, hex, percent-encoding and
//! the escaping of text, each written as the real encoders write it.
//!
//! Every encoder appends to a [`WipedBuf`], which never leaves a copy of
//! a value (or of an encoding of it) in freed memory. [`changed_by`] tells,
//! from one pass over a value, which encoders would write it as it is, so
//! that they need not run: for a typical API key most of them.

use std::fmt::Write as _;

use super::wipe::WipedBuf;

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
    const ALL: [Percent; 6] = [
        Percent::Rfc3986,
        Percent::UriComponent,
        Percent::Uri,
        Percent::PythonQuote,
        Percent::Form,
        Percent::PythonQuotePlus,
    ];

    const fn raw(self) -> &'static [u8] {
        match self {
            Percent::Rfc3986 => b"-._~",
            Percent::UriComponent => b"-_.!~*'()",
            Percent::Uri => b"-_.!~*'();,/?:@&=+$#",
            Percent::PythonQuote => b"-_.~/",
            Percent::Form => b"*-._",
            Percent::PythonQuotePlus => b"-_.~",
        }
    }

    const fn space_as_plus(self) -> bool {
        matches!(self, Percent::Form | Percent::PythonQuotePlus)
    }

    /// This style's bit in [`changed_by`]'s answer: set when it encodes
    /// some byte of the value other than as itself.
    pub(super) const fn changes(self) -> Changes {
        1 << (self as u16)
    }
}

/// A set of encoders, as bits: see [`changed_by`].
pub(super) type Changes = u16;

/// JSON string escaping (`"`, `\`, control characters).
pub(super) const JSON: Changes = 1 << 6;
/// JSON string escaping, ASCII-only (also DEL and everything non-ASCII).
pub(super) const JSON_ASCII: Changes = 1 << 7;
/// Rust's `{:?}` (everything but printable ASCII other than `"` and `\`).
pub(super) const DEBUG: Changes = 1 << 8;
/// `tracing-subscriber`'s escapes (ESC, BEL, BS, FF, DEL, and `0xC2`, the
/// first byte of every C1 control).
pub(super) const TRACING: Changes = 1 << 9;
/// Not ASCII: the value may not be UTF-8.
pub(super) const NON_ASCII: Changes = 1 << 10;
/// A line break: the value has lines.
pub(super) const NEWLINE: Changes = 1 << 11;

/// Per byte, the encoders that write it other than as itself (or may: a
/// set bit only makes the encoder run).
const CHANGES: [Changes; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        let mut bits = 0;
        let mut s = 0;
        while s < Percent::ALL.len() {
            let style = Percent::ALL[s];
            if !byte.is_ascii_alphanumeric() && !contains(style.raw(), byte) {
                bits |= style.changes();
            }
            s += 1;
        }
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            bits |= JSON | JSON_ASCII;
        }
        if byte >= 0x7f {
            bits |= JSON_ASCII;
        }
        if byte == b'"' || byte == b'\\' || byte < 0x20 || byte >= 0x7f {
            bits |= DEBUG;
        }
        if matches!(byte, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2) {
            bits |= TRACING;
        }
        if byte >= 0x80 {
            bits |= NON_ASCII;
        }
        if byte == b'\n' {
            bits |= NEWLINE;
        }
        table[b] = bits;
        b += 1;
    }
    table
};

const fn contains(set: &[u8], byte: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] == byte {
            return true;
        }
        i += 1;
    }
    false
}

/// The encoders that write some byte of `value` other than as itself: the
/// others would write `value` unchanged.
pub(super) fn changed_by(value: &[u8]) -> Changes {
    value
        .iter()
        .fold(0, |bits, &b| bits | CHANGES[usize::from(b)])
}

/// Appends `value` percent-encoded as `style` does it, with these hex
/// digits.
pub(super) fn percent(out: &mut WipedBuf, value: &[u8], digits: &[u8; 16], style: Percent) {
    let changes = style.changes();
    out.write_with(value.len() * 3, |buf| {
        let mut at = 0;
        for &b in value {
            let written: &[u8] = if CHANGES[usize::from(b)] & changes == 0 {
                &[b]
            } else if b == b' ' && style.space_as_plus() {
                b"+"
            } else {
                &[
                    b'%',
                    digits[usize::from(b >> 4)],
                    digits[usize::from(b & 0x0f)],
                ]
            };
            if let Some(slot) = buf.get_mut(at..at + written.len()) {
                slot.copy_from_slice(written);
            }
            at += written.len();
        }
        at
    });
}

/// The standard base64 alphabet.
pub(super) const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// The URL-safe base64 alphabet.
pub(super) const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Appends the base64 characters determined by `value` alone when it
/// starts at byte `offset` (0, 1 or 2) of a 3-byte group: the characters
/// whose 6 bits all come from the value, without padding and without the
/// partial characters at either end (which depend on the neighbouring
/// bytes).
pub(super) fn base64_core(out: &mut WipedBuf, value: &[u8], offset: usize, alphabet: &[u8; 64]) {
    let char_at = |bits: u32| alphabet[(bits & 63) as usize];
    // The value's first `head` bytes end the group it starts in; of that
    // group's characters, the ones after the value's start are whole.
    let head = (3 - offset % 3) % 3;
    let (first, rest): ([u8; 2], &[u8]) = match (head, value) {
        (1, [b0, rest @ ..]) => ([char_at(u32::from(*b0)), 0], rest),
        (2, [b0, b1, rest @ ..]) => {
            let group = (u32::from(*b0) << 8) | u32::from(*b1);
            ([char_at(group >> 6), char_at(group)], rest)
        }
        (0, _) => ([0; 2], value),
        // Too short to fill a whole character.
        _ => return,
    };
    out.write_with(head + rest.len().div_ceil(3) * 4, |buf| {
        let (lead, body) = buf.split_at_mut(head.min(buf.len()));
        lead.copy_from_slice(first.get(..lead.len()).unwrap_or_default());
        let mut groups = rest.chunks_exact(3);
        let mut chars = body.chunks_exact_mut(4);
        for (group, chars) in groups.by_ref().zip(chars.by_ref()) {
            let bits =
                (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
            chars.copy_from_slice(&[
                char_at(bits >> 18),
                char_at(bits >> 12),
                char_at(bits >> 6),
                char_at(bits),
            ]);
        }
        let whole = head + rest.len() / 3 * 4;
        // A last group of 1 or 2 bytes fills 1 or 2 whole characters.
        let last: &[u8] = match groups.remainder() {
            [b0] => &[char_at(u32::from(*b0) >> 2)],
            [b0, b1] => {
                let bits = (u32::from(*b0) << 8) | u32::from(*b1);
                &[char_at(bits >> 10), char_at(bits >> 4)]
            }
            _ => &[],
        };
        if let Some(tail) = buf.get_mut(whole..whole + last.len()) {
            tail.copy_from_slice(last);
        }
        whole + last.len()
    });
}

/// Appends `value` in hex with these digits.
pub(super) fn hex(out: &mut WipedBuf, value: &[u8], digits: &[u8; 16]) {
    out.write_with(value.len() * 2, |buf| {
        for (pair, &b) in buf.chunks_exact_mut(2).zip(value) {
            pair.copy_from_slice(&[digits[usize::from(b >> 4)], digits[usize::from(b & 0x0f)]]);
        }
        value.len() * 2
    });
}

/// Appends the inside of a JSON string literal holding `text`: `"`, `\`
/// and control characters escaped (short forms where JSON has them), and
/// with `ascii_only` DEL and every non-ASCII character as `\uXXXX`
/// (surrogate pairs above the BMP), lower-case hex as `serde_json`,
/// JavaScript and Python write it.
pub(super) fn json_escaped(out: &mut WipedBuf, text: &str, ascii_only: bool) {
    // Worst case: 12 bytes (`\uXXXX\uXXXX`) for a 4-byte character, 6 for a
    // 1-byte control character.
    out.reserve(text.len() * 6);
    let bytes = text.as_bytes();
    let mut units = [0u16; 2];
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            // The ASCII-only form escapes everything outside space..tilde,
            // as Python's `json.dumps` does: non-ASCII and DEL.
            0..0x20 => unicode_escape(out, u16::from(b)),
            0x7f if ascii_only => unicode_escape(out, 0x7f),
            0x80.. if ascii_only => {
                // `b` starts a character (every earlier one was consumed
                // whole), so `i - 1` is a boundary.
                let Some(c) = text.get(i - 1..).and_then(|rest| rest.chars().next()) else {
                    break;
                };
                for unit in c.encode_utf16(&mut units).iter() {
                    unicode_escape(out, *unit);
                }
                i += c.len_utf8() - 1;
            }
            b => out.push(b),
        }
    }
    units.fill(0);
}

fn unicode_escape(out: &mut WipedBuf, unit: u16) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX_LOWER[usize::from((unit >> 12) & 0x0f)],
        HEX_LOWER[usize::from((unit >> 8) & 0x0f)],
        HEX_LOWER[usize::from((unit >> 4) & 0x0f)],
        HEX_LOWER[usize::from(unit & 0x0f)],
    ]);
}

/// Appends `format!("{text:?}")`, quotes included: Rust's `Debug` escaping
/// of a string, which `tracing` uses for `&str` fields. The caller drops
/// the quotes.
pub(super) fn debug_quoted(out: &mut WipedBuf, text: &str) {
    // `{:?}` writes at most 10 bytes (`\u{10ffff}`) per character and adds
    // two quotes.
    out.reserve(text.len() * 10 + 2);
    // Writing into a `WipedBuf` cannot fail.
    let _ = write!(out, "{text:?}");
}

/// Appends what `tracing-subscriber`'s fmt layer (0.3.20 and later) writes
/// for `text` in an event message or an error field: its
/// terminal-injection guard replaces ESC, BEL, BS, FF and DEL with `\x1b`,
/// `\x07`, `\x08`, `\x0c`, `\x7f`, and C1 controls (U+0080 to U+009F) with
/// `\u{80}` to `\u{9f}` (lower-case hex, no padding); everything else
/// stays.
pub(super) fn tracing_escaped(out: &mut WipedBuf, text: &str) {
    // At most 4 bytes out per byte in (`\x1b` for 1 byte, `\u{80}` for 2).
    out.reserve(text.len() * 4);
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
}
