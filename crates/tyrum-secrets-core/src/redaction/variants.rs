//! The forms of a secret value that the redactor looks for.
//!
//! [`Forms`] writes the forms of one value after another into one
//! [`WipedBuf`], reused from value to value (it grows by hand, the old
//! buffer wiped, and is wiped when dropped), and hands out each distinct
//! form in a buffer of its own size: a registration of thousands of values
//! allocates once per pattern it keeps, not two or three times per
//! encoder. Encoders that would write a value unchanged (most of them for
//! a typical API key) are not run at all.

use std::ops::Range;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::config::{Encoding, Encodings};
use super::escape::{
    self, BASE64_STANDARD, BASE64_URL_SAFE, Changes, HEX_LOWER, HEX_UPPER, Percent,
};
use super::group::PatternBytes;
use super::wipe::WipedBuf;
use crate::{ExposeSecret as _, SecretBytes};

/// Writes the forms of values, one value at a time; see the
/// [module docs](self).
pub(super) struct Forms {
    min_len: usize,
    encodings: Encodings,
    /// The current value's forms, back to back.
    bytes: WipedBuf,
    /// Where each form lies in `bytes`.
    forms: Vec<Range<usize>>,
    /// The ones kept: long enough, and not equal to an earlier one.
    kept: Vec<Range<usize>>,
    /// The JSON form of the current value, for the JSON-twice forms.
    scratch: WipedBuf,
}

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
    let mut out: Vec<Zeroizing<Vec<u8>>> = Forms::new(min_len, encodings)
        .of(value)
        .iter()
        .map(|form| Zeroizing::new(form.to_vec()))
        .collect();
    out.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
    out
}

impl Forms {
    /// Writes forms for `encodings`, leaving out the ones shorter than
    /// `min_len` (and empty ones).
    pub(super) fn new(min_len: usize, encodings: Encodings) -> Self {
        Self {
            min_len: min_len.max(1),
            encodings,
            bytes: WipedBuf::default(),
            forms: Vec::new(),
            kept: Vec::new(),
            scratch: WipedBuf::default(),
        }
    }

    /// The distinct forms of `value` at least the minimum length, in no
    /// particular order, each in a buffer of its own that is wiped when
    /// the last holder drops it. See [`variants`] for what they are.
    pub(super) fn of(&mut self, value: &[u8]) -> Vec<Arc<PatternBytes>> {
        self.write(value);
        let Self {
            bytes,
            forms,
            kept,
            min_len,
            ..
        } = self;
        let form = |range: &Range<usize>| bytes.get(range.clone()).unwrap_or_default();
        // A handful of forms, nearly all of different lengths or differing
        // in their first bytes: comparing each with the ones before is
        // cheaper than sorting them.
        kept.clear();
        for range in forms.iter() {
            if range.len() >= *min_len
                && !kept
                    .iter()
                    .any(|k| k.len() == range.len() && form(k) == form(range))
            {
                kept.push(range.clone());
            }
        }
        kept.iter()
            .map(|range| Arc::new(Zeroizing::new(form(range).to_vec())))
            .collect()
    }

    /// Writes every form of `value` that the encodings select into `bytes`,
    /// listed in `forms` (with duplicates and short ones).
    fn write(&mut self, value: &[u8]) {
        self.bytes.clear();
        self.forms.clear();
        let encodings = self.encodings;
        let on = |encoding| encodings.contains(encoding);
        let changes = escape::changed_by(value);
        // An encoder that would write the value unchanged is not run: its
        // form would be a duplicate of the value.
        let changed = |bits: Changes| changes & bits != 0;

        self.add(|out| out.extend_from_slice(value));
        if on(Encoding::Base64) {
            for offset in 0..3 {
                let standard =
                    self.add(|out| escape::base64_core(out, value, offset, BASE64_STANDARD));
                // The alphabets differ only in `+` and `/`.
                let differs = self
                    .bytes
                    .get(standard)
                    .is_some_and(|form| form.iter().any(|b| matches!(b, b'+' | b'/')));
                if differs {
                    self.add(|out| escape::base64_core(out, value, offset, BASE64_URL_SAFE));
                }
            }
        }
        if on(Encoding::Base64Wrapped) {
            self.write_wrapped(value);
        }
        if on(Encoding::Hex) {
            self.add(|out| escape::hex(out, value, HEX_LOWER));
            self.add(|out| escape::hex(out, value, HEX_UPPER));
        }
        let mut percent = |style: Percent, digits| {
            if changed(style.changes()) {
                self.add(|out| escape::percent(out, value, digits, style));
            }
        };
        if on(Encoding::Percent) {
            percent(Percent::Rfc3986, HEX_UPPER);
            percent(Percent::Rfc3986, HEX_LOWER);
        }
        if on(Encoding::PercentReservedRaw) {
            for style in [Percent::Uri, Percent::UriComponent, Percent::PythonQuote] {
                percent(style, HEX_UPPER);
            }
        }
        if on(Encoding::FormUrlencoded) {
            percent(Percent::Form, HEX_UPPER);
            percent(Percent::PythonQuotePlus, HEX_UPPER);
        }
        if let Ok(text) = std::str::from_utf8(value) {
            self.write_text(text, changes);
        }
        if on(Encoding::Lines) && changed(escape::NEWLINE) {
            for line in value.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !is_pem_armour(line) {
                    self.add(|out| out.extend_from_slice(line));
                }
            }
        }
    }

    /// The text forms of `text`; `changes` says which encoders change it.
    fn write_text(&mut self, text: &str, changes: Changes) {
        let encodings = self.encodings;
        let on = |encoding| encodings.contains(encoding);
        let Self {
            bytes,
            forms,
            scratch,
            ..
        } = self;
        for (ascii_only, bits) in [(false, escape::JSON), (true, escape::JSON_ASCII)] {
            // A value JSON leaves unchanged, it leaves unchanged twice.
            if changes & bits == 0 || !(on(Encoding::Json) || on(Encoding::JsonTwice)) {
                continue;
            }
            scratch.clear();
            escape::json_escaped(scratch, text, ascii_only);
            if on(Encoding::Json) {
                add_to(bytes, forms, |out| out.extend_from_slice(scratch));
            }
            if on(Encoding::JsonTwice) {
                // Escaping keeps text text, so this always succeeds.
                if let Ok(once) = std::str::from_utf8(scratch) {
                    add_to(bytes, forms, |out| {
                        escape::json_escaped(out, once, ascii_only)
                    });
                }
            }
        }
        if on(Encoding::RustDebug) && changes & escape::DEBUG != 0 {
            let quoted = add_to(bytes, forms, |out| escape::debug_quoted(out, text));
            // Without its quotes (always there).
            if let Some(form) = forms.last_mut()
                && quoted.len() >= 2
            {
                *form = quoted.start + 1..quoted.end - 1;
            }
        }
        if on(Encoding::TracingEscapes) && changes & escape::TRACING != 0 {
            add_to(bytes, forms, |out| escape::tracing_escaped(out, text));
        }
    }

    /// The offset-0 standard base64 of `value` wrapped at 64 and 76
    /// columns, with `\n` and `\r\n`, where it spans a line break.
    fn write_wrapped(&mut self, value: &[u8]) {
        let start = self.bytes.len();
        escape::base64_core(&mut self.bytes, value, 0, BASE64_STANDARD);
        let core = start..self.bytes.len();
        for width in [64, 76] {
            if core.len() <= width {
                continue;
            }
            for newline in [&b"\n"[..], b"\r\n"] {
                self.add(|out| {
                    let mut line = core.start;
                    while line < core.end {
                        if line > core.start {
                            out.extend_from_slice(newline);
                        }
                        out.extend_from_within(line..(line + width).min(core.end));
                        line += width;
                    }
                });
            }
        }
    }

    /// Appends one form, written by `write` at the end of the buffer, and
    /// returns where it lies.
    fn add(&mut self, write: impl FnOnce(&mut WipedBuf)) -> Range<usize> {
        add_to(&mut self.bytes, &mut self.forms, write)
    }
}

/// Appends one form, written by `write` at the end of `bytes`, to `forms`
/// and returns where it lies.
fn add_to(
    bytes: &mut WipedBuf,
    forms: &mut Vec<Range<usize>>,
    write: impl FnOnce(&mut WipedBuf),
) -> Range<usize> {
    let start = bytes.len();
    write(bytes);
    let form = start..bytes.len();
    forms.push(form.clone());
    form
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

/// The standard (or URL-safe) base64 characters determined by `value`
/// alone at byte `offset` of a 3-byte group, on their own.
#[cfg(test)]
fn base64_core(value: &[u8], offset: usize, url_safe: bool) -> Zeroizing<Vec<u8>> {
    let alphabet = if url_safe {
        BASE64_URL_SAFE
    } else {
        BASE64_STANDARD
    };
    let mut out = WipedBuf::default();
    escape::base64_core(&mut out, value, offset, alphabet);
    Zeroizing::new(out.to_vec())
}

fn is_pem_armour(line: &[u8]) -> bool {
    (line.starts_with(b"-----BEGIN ") || line.starts_with(b"-----END ")) && line.ends_with(b"-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use proptest::strategy::Strategy as _;

    use super::super::variants_reference as reference;

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The encoders were rewritten for speed; their forms must be the
        /// first milestone's, byte for byte, for every value and setting,
        /// and for values pushed one after another into one buffer.
        #[test]
        fn forms_are_the_reference_encoders_forms(
            values in proptest::collection::vec(form_test_value(), 1..6),
            min in 0usize..14,
            encodings in proptest::prop_oneof![
                proptest::strategy::Just(Encodings::all()),
                proptest::prelude::any::<u16>().prop_map(|mask| Encoding::ALL
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .fold(Encodings::none(), |set, (_, e)| set.with(*e))),
            ],
        ) {
            // One writer for every value, as a registration uses it.
            let mut forms = Forms::new(min, encodings);
            for value in &values {
                let expected: Vec<Vec<u8>> = reference::variants(value, min, encodings)
                    .iter()
                    .map(|v| v.to_vec())
                    .collect();
                let mut got: Vec<Vec<u8>> = forms.of(value).iter().map(|f| f.to_vec()).collect();
                got.sort_unstable();
                proptest::prop_assert_eq!(got, expected);
            }
        }
    }

    /// Values that exercise every encoder: arbitrary bytes, text with
    /// every kind of character the escapers treat apart, and values long
    /// enough to wrap.
    fn form_test_value() -> impl proptest::prelude::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            "[ -~]{0,40}".prop_map(String::into_bytes),
            "[a-z\\-_.!~*'();,/?:@&=+$# \"\\\\\t\n\r\u{0}\u{1b}\u{7}\u{8}\u{c}\u{7f}\u{80}\u{85}\u{9f}\u{a0}\u{e9}\u{300}\u{200b}\u{feff}\u{1f600}]{0,40}"
                .prop_map(String::into_bytes),
            "\\PC{0,30}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 40..260),
            "-----BEGIN KEY-----\r?\n[A-Za-z0-9+/]{0,70}\r?\n[ -~]{0,10}\n-----END KEY-----"
                .prop_map(String::into_bytes),
        ]
    }
}
