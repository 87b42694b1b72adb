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
    match k % 4 {
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
        _ => {
            push(&mut out, ALNUM, 10);
            out.extend_from_slice("é€".as_bytes());
            push(&mut out, ALNUM, 10);
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
    if let Ok(text) = std::str::from_utf8(value) {
        let json = serde_json::to_string(text).expect("a string serializes");
        let inner = &json[1..json.len() - 1];
        out.push(("json", Zeroizing::new(inner.as_bytes().to_vec())));
        out.push(("json-ascii", Zeroizing::new(json_ascii(text).into_bytes())));
        let debug = format!("{text:?}");
        out.push((
            "debug",
            Zeroizing::new(debug.as_bytes()[1..debug.len() - 1].to_vec()),
        ));
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

/// The inside of a JSON string with every non-ASCII character escaped.
fn json_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
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
