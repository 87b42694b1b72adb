//! Secret values of the run, derived from the seed and the admin operation
//! that created them, and never written anywhere by the harness: the admin
//! derives the value it creates or rotates in; workers and the injected
//! tool recognise a value by deriving it again; the checker derives every
//! value any started operation could have created and looks for each (and
//! its encodings) in every file of the run.
//!
//! Every value starts with `tq` and the operation number in six hex digits,
//! so a process that holds a value can say which operation made it (and so
//! which handle and version) without writing the value down.
//!
//! The encodings here are written independently of the redactor's, from
//! the formats' own definitions, so a variant the redactor forgot is a
//! leak the checker finds.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use zeroize::Zeroizing;

use crate::plan::Rng;

/// Characters of the plain part of values.
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Characters that make the encodings differ from the raw value: quotes,
/// backslash, slash, plus, percent, space, ampersand.
const SPECIAL: &[u8] =
    b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789 \"\\/+%=&<>'!#$*?;:,.~-_@[]{}()";

/// The kinds of value, by `k % CLASSES`: alphanumeric, punctuation,
/// multi-line, a little non-ASCII, control characters, more non-ASCII.
pub(crate) const CLASSES: u64 = 6;
/// ESC, BEL, BS, FF and DEL: the controls `tracing-subscriber`'s fmt layer
/// escapes in event messages (`\x1b`..), which the redactor covers.
const CONTROLS: [u8; 5] = [0x1b, 0x07, 0x08, 0x0c, 0x7f];

/// The value admin operation `k` creates (or rotates in).
pub(crate) fn value_for(seed: u64, k: u64) -> Zeroizing<Vec<u8>> {
    let mut rng = Rng::new(seed, "value", k);
    let mut out = Zeroizing::new(Vec::with_capacity(80));
    write!(Hex(&mut out), "tq{k:06x}").expect("writing to a Vec cannot fail");
    let mut push = |out: &mut Zeroizing<Vec<u8>>, set: &[u8], n: usize| {
        for _ in 0..n {
            out.push(set[rng.below(set.len() as u64) as usize]);
        }
    };
    match k % CLASSES {
        0 => push(&mut out, ALNUM, 24),
        1 => push(&mut out, SPECIAL, 22),
        2 => {
            // Three lines, each long enough to be masked on its own.
            push(&mut out, ALNUM, 14);
            out.push(b'\n');
            push(&mut out, ALNUM, 20);
            out.push(b'\n');
            push(&mut out, ALNUM, 20);
        }
        3 => {
            push(&mut out, ALNUM, 10);
            out.extend_from_slice("é€".as_bytes());
            push(&mut out, ALNUM, 10);
        }
        4 => {
            // The controls `tracing-subscriber` escapes in messages (ESC,
            // BEL, BS, FF, DEL), each once, in an order of the value's own.
            let mut controls = CONTROLS;
            let mut order = Rng::new(seed, "controls", k);
            for i in (1..controls.len()).rev() {
                let j = order.below(i as u64 + 1) as usize;
                controls.swap(i, j);
            }
            for c in controls {
                push(&mut out, ALNUM, 3);
                out.push(c);
            }
            push(&mut out, ALNUM, 4);
        }
        _ => {
            // Non-ASCII UTF-8 of every width, and a C1 control (NEL),
            // which `tracing-subscriber` writes as `\u{85}`.
            push(&mut out, ALNUM, 6);
            out.extend_from_slice("ü".as_bytes());
            push(&mut out, ALNUM, 4);
            out.extend_from_slice("\u{85}".as_bytes());
            push(&mut out, ALNUM, 4);
            out.extend_from_slice("日本🔑".as_bytes());
            push(&mut out, ALNUM, 4);
        }
    }
    out
}

/// A `fmt::Write` into a wiped buffer.
struct Hex<'a>(&'a mut Zeroizing<Vec<u8>>);

impl std::fmt::Write for Hex<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The operation that made `value`, if it is a value of this run.
pub(crate) fn identify(seed: u64, value: &[u8]) -> Option<u64> {
    let digits = value.get(2..8)?;
    if !value.starts_with(b"tq") {
        return None;
    }
    let k = u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
    (value_for(seed, k).as_slice() == value).then_some(k)
}

/// How a worker writes a value it holds into a log line, as a program
/// echoing a credential might.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogForm {
    /// `{}`: the raw value.
    Display,
    /// `{:?}`: Rust's string escaping.
    Debug,
    HexLower,
    HexUpper,
    /// Base64 of `prefix + value` (HTTP basic auth), standard or URL-safe.
    Base64 {
        prefix_len: usize,
        url_safe: bool,
    },
    PercentUpper,
    PercentLower,
    Form,
    /// A JSON string, as serde_json writes it.
    Json,
    /// A JSON string with every non-ASCII character `\uXXXX`.
    JsonAscii,
}

impl LogForm {
    pub(crate) const ALL: [LogForm; 14] = [
        LogForm::Display,
        LogForm::Debug,
        LogForm::HexLower,
        LogForm::HexUpper,
        LogForm::Base64 {
            prefix_len: 0,
            url_safe: false,
        },
        LogForm::Base64 {
            prefix_len: 1,
            url_safe: false,
        },
        LogForm::Base64 {
            prefix_len: 2,
            url_safe: false,
        },
        LogForm::Base64 {
            prefix_len: 1,
            url_safe: true,
        },
        LogForm::Base64 {
            prefix_len: 2,
            url_safe: true,
        },
        LogForm::PercentUpper,
        LogForm::PercentLower,
        LogForm::Form,
        LogForm::Json,
        LogForm::JsonAscii,
    ];

    /// `value` in this form (lossy UTF-8 for the text forms; values are
    /// UTF-8).
    pub(crate) fn render(self, value: &[u8]) -> Zeroizing<String> {
        let text = || String::from_utf8_lossy(value).into_owned();
        Zeroizing::new(match self {
            LogForm::Display => text(),
            LogForm::Debug => format!("{:?}", text()),
            LogForm::HexLower => hex(value, false),
            LogForm::HexUpper => hex(value, true),
            LogForm::Base64 {
                prefix_len,
                url_safe,
            } => {
                let mut input = Zeroizing::new(b"ops:"[..prefix_len.min(4)].to_vec());
                input.extend_from_slice(value);
                if url_safe {
                    URL_SAFE.encode(&input[..])
                } else {
                    STANDARD.encode(&input[..])
                }
            }
            LogForm::PercentUpper => percent(value, true, false),
            LogForm::PercentLower => percent(value, false, false),
            LogForm::Form => percent(value, true, true),
            LogForm::Json => serde_json::to_string(&text()).expect("a string serializes"),
            LogForm::JsonAscii => format!("\"{}\"", json_ascii(&text())),
        })
    }
}

/// How a worker's log line carries a tool's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogPath {
    /// In the event message: `tracing-subscriber` escapes ESC, BEL, BS,
    /// FF, DEL and C1 controls in it.
    Message,
    /// As a `&str` field: written with Rust's `{:?}`.
    Field,
}

impl LogPath {
    pub(crate) const ALL: [LogPath; 2] = [LogPath::Message, LogPath::Field];
}

/// The form a worker logs `value` in when it picked `form` for `path`:
/// `form`, unless the line would then hold an escaping of an escaping that
/// the redactor does not cover, in which case the raw value (`Display`),
/// whose message and field forms it does cover.
///
/// The redactor covers each encoding of the value, and JSON escaping
/// applied twice; not other compositions. Two arise here with the control
/// characters: `{:?}` of a `{:?}` form that holds `\u{..}` escapes (ESC,
/// BEL, BS, FF, DEL, C1, writes `\\u{1b}`), and either path over a
/// `serde_json` form that keeps DEL or a C1 control raw (the message
/// escapes it to `\x7f`, the field to `\u{7f}`, inside JSON escapes).
/// The footing test in `tests/torture.rs` checks that every form a worker
/// logs is masked; these two would not be (a limit of the redactor, not
/// of this test).
pub(crate) fn loggable(form: LogForm, path: LogPath, value: &[u8]) -> LogForm {
    let text = String::from_utf8_lossy(value);
    let json_keeps_control = text
        .chars()
        .any(|c| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c));
    let debug_unicode = text
        .chars()
        .any(|c| c.escape_debug().to_string().starts_with("\\u"));
    let uncovered = match (form, path) {
        (LogForm::Json, _) => json_keeps_control,
        (LogForm::Debug, LogPath::Field) => debug_unicode,
        _ => false,
    };
    if uncovered { LogForm::Display } else { form }
}

/// Every form of `value` the redactor promises to mask, each at least
/// `min_len` bytes: the checker looks for all of them.
pub(crate) fn variants(value: &[u8], min_len: usize) -> Vec<(&'static str, Zeroizing<Vec<u8>>)> {
    let mut out: Vec<(&'static str, Zeroizing<Vec<u8>>)> =
        vec![("raw", Zeroizing::new(value.to_vec()))];
    for offset in 0..3 {
        for (name, url) in [("base64", false), ("base64url", true)] {
            out.push((name, base64_core(value, offset, url)));
        }
    }
    out.push(("hex", Zeroizing::new(hex(value, false).into_bytes())));
    out.push(("HEX", Zeroizing::new(hex(value, true).into_bytes())));
    out.push((
        "percent",
        Zeroizing::new(percent(value, true, false).into_bytes()),
    ));
    out.push((
        "percent-lower",
        Zeroizing::new(percent(value, false, false).into_bytes()),
    ));
    out.push((
        "form",
        Zeroizing::new(percent(value, true, true).into_bytes()),
    ));
    // JavaScript's encodeURI and encodeURIComponent, Python's
    // `quote(s, safe="/")` and `quote_plus(s)`.
    for (name, raw, plus) in [
        ("encodeURI", URI_RAW, false),
        ("encodeURIComponent", URI_COMPONENT_RAW, false),
        ("python-quote", b"-._~/".as_slice(), false),
        ("python-quote-plus", b"-._~".as_slice(), true),
    ] {
        out.push((
            name,
            Zeroizing::new(percent_raw(value, raw, plus).into_bytes()),
        ));
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let json = serde_json::to_string(text).expect("a string serializes");
        let inner = &json[1..json.len() - 1];
        out.push(("json", Zeroizing::new(inner.as_bytes().to_vec())));
        let twice = serde_json::to_string(inner).expect("a string serializes");
        out.push((
            "json-twice",
            Zeroizing::new(twice.as_bytes()[1..twice.len() - 1].to_vec()),
        ));
        let ascii = json_ascii(text);
        out.push((
            "json-ascii-twice",
            Zeroizing::new(json_ascii(&ascii).into_bytes()),
        ));
        out.push(("json-ascii", Zeroizing::new(ascii.into_bytes())));
        let debug = format!("{text:?}");
        out.push((
            "debug",
            Zeroizing::new(debug.as_bytes()[1..debug.len() - 1].to_vec()),
        ));
        out.push((
            "tracing",
            Zeroizing::new(tracing_escaped(text).into_bytes()),
        ));
    }
    // PEM (64 columns) and MIME (76) wrapping of the value's base64, where
    // it is long enough to wrap.
    let core = base64_core(value, 0, false);
    for width in [64, 76] {
        if core.len() > width {
            for eol in ["\n", "\r\n"] {
                let mut wrapped = Zeroizing::new(Vec::new());
                for (i, chunk) in core.chunks(width).enumerate() {
                    if i > 0 {
                        wrapped.extend_from_slice(eol.as_bytes());
                    }
                    wrapped.extend_from_slice(chunk);
                }
                out.push(("base64-wrapped", wrapped));
            }
        }
    }
    if value.contains(&b'\n') {
        for line in value.split(|&b| b == b'\n') {
            out.push(("line", Zeroizing::new(line.to_vec())));
        }
    }
    out.retain(|(_, v)| v.len() >= min_len.max(1));
    out
}

/// The base64 characters that depend only on `value` when it sits at byte
/// `offset` (mod 3) of a longer encoded input: the encoding of
/// `offset` filler bytes and the value, minus the characters that mix in
/// filler bits at the start and whatever follows at the end.
fn base64_core(value: &[u8], offset: usize, url_safe: bool) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(vec![0u8; offset]);
    input.extend_from_slice(value);
    let encoded = Zeroizing::new(if url_safe {
        URL_SAFE_NO_PAD.encode(&input[..])
    } else {
        STANDARD_NO_PAD.encode(&input[..])
    });
    // Characters are 6-bit groups; the value's bits start at 8*offset and
    // end at 8*(offset+len). Keep the groups wholly inside.
    let first = (8 * offset).div_ceil(6);
    let last = (8 * input.len()) / 6;
    Zeroizing::new(
        encoded
            .as_bytes()
            .get(first..last.min(encoded.len()))
            .unwrap_or_default()
            .to_vec(),
    )
}

fn hex(value: &[u8], upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for b in value {
        if upper {
            write!(out, "{b:02X}").expect("writing to a String cannot fail");
        } else {
            write!(out, "{b:02x}").expect("writing to a String cannot fail");
        }
    }
    out
}

/// RFC 3986 percent-encoding (unreserved characters kept), or with `form`
/// the WHATWG form encoding (`*-._` and alphanumerics kept, space as `+`).
fn percent(value: &[u8], upper: bool, form: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value {
        let keep = b.is_ascii_alphanumeric()
            || if form {
                b"*-._".contains(&b)
            } else {
                b"-._~".contains(&b)
            };
        if keep {
            out.push(char::from(b));
        } else if form && b == b' ' {
            out.push('+');
        } else if upper {
            write!(out, "%{b:02X}").expect("writing to a String cannot fail");
        } else {
            write!(out, "%{b:02x}").expect("writing to a String cannot fail");
        }
    }
    out
}

/// Characters JavaScript's `encodeURI` leaves as they are, besides
/// alphanumerics.
const URI_RAW: &[u8] = b"-_.!~*'();,/?:@&=+$#";
/// Characters `encodeURIComponent` leaves as they are, besides
/// alphanumerics.
const URI_COMPONENT_RAW: &[u8] = b"-_.!~*'()";

/// Percent-encoding with upper-case digits that leaves alphanumerics and
/// `raw` as they are (and with `plus`, writes space as `+`).
fn percent_raw(value: &[u8], raw: &[u8], plus: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for &b in value {
        if b.is_ascii_alphanumeric() || raw.contains(&b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            write!(out, "%{b:02X}").expect("writing to a String cannot fail");
        }
    }
    out
}

/// What `tracing-subscriber`'s fmt layer (0.3.20 on) writes for `text` in
/// an event message: ESC, BEL, BS, FF and DEL as `\x1b`, `\x07`, `\x08`,
/// `\x0c`, `\x7f`; C1 controls as `\u{80}`..`\u{9f}`.
fn tracing_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '\u{1b}' | '\u{7}' | '\u{8}' | '\u{c}' | '\u{7f}' => {
                write!(out, "\\x{:02x}", c as u32).expect("writing to a String cannot fail")
            }
            '\u{80}'..='\u{9f}' => {
                write!(out, "\\u{{{:x}}}", c as u32).expect("writing to a String cannot fail")
            }
            c => out.push(c),
        }
    }
    out
}

/// The inside of a JSON string with every non-ASCII character escaped, as
/// Python's `json.dumps` writes it (`\b`, `\f`, `\n`, `\r`, `\t` short; DEL
/// and everything outside space..tilde as `\u00XX`).
fn json_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(out, "\\u{unit:04x}").expect("writing to a String cannot fail");
                }
            }
        }
    }
    out
}
