//! How a [`Redactor`] is configured: the minimum value length and the
//! [`Encodings`] it matches besides each value itself.

use std::fmt;

use super::{DEFAULT_MIN_VALUE_LEN, Redactor};

/// One family of forms a secret value takes in text, which the redactor
/// matches besides the value itself. Every family is on by default; see
/// [`Encodings`] to turn one off, and the [module docs](super) for exactly
/// what each matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// Base64, standard and URL-safe alphabets, of the value at byte offset
    /// 0, 1 and 2 of a larger encoded buffer, without padding or the
    /// characters that depend on neighbouring bytes.
    Base64,
    /// Standard base64 of the value at the start of the encoded data,
    /// wrapped at 64 columns (PEM) and at 76 (MIME), with `\n` or `\r\n`
    /// line breaks; only for values whose encoding spans a line break.
    Base64Wrapped,
    /// Lower- and upper-case hex.
    Hex,
    /// RFC 3986 percent-encoding: everything but `A-Za-z0-9-._~` as `%XX`,
    /// upper- and lower-case hex digits.
    Percent,
    /// Percent-encoding that leaves reserved characters raw, as
    /// JavaScript's `encodeURI` and `encodeURIComponent` and Python's
    /// `urllib.parse.quote(s, safe="/")` write it.
    PercentReservedRaw,
    /// `application/x-www-form-urlencoded`, space as `+`: as browsers,
    /// `URLSearchParams` and Java's `URLEncoder` write it (`*-._` raw) and
    /// as Python's `quote_plus` does (`-._~` raw).
    FormUrlencoded,
    /// JSON string escaping, as `serde_json` and JavaScript write it and in
    /// the ASCII-only form of Python's `json.dumps`.
    Json,
    /// JSON string escaping applied twice: a JSON document inside a JSON
    /// string, common in tool output.
    JsonTwice,
    /// Rust's `{:?}` string escaping (what `tracing` writes for `&str`
    /// fields).
    RustDebug,
    /// The escapes `tracing-subscriber`'s fmt layer writes for control
    /// characters in event messages and error fields (`\x1b`, `\u{85}`).
    TracingEscapes,
    /// Each line of a multi-line value on its own (PEM armour lines
    /// excepted).
    Lines,
}

impl Encoding {
    /// Every family, in declaration order.
    pub const ALL: [Encoding; 11] = [
        Encoding::Base64,
        Encoding::Base64Wrapped,
        Encoding::Hex,
        Encoding::Percent,
        Encoding::PercentReservedRaw,
        Encoding::FormUrlencoded,
        Encoding::Json,
        Encoding::JsonTwice,
        Encoding::RustDebug,
        Encoding::TracingEscapes,
        Encoding::Lines,
    ];

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of [`Encoding`]s. The default is all of them.
///
/// ```
/// use tyrum_secrets_core::redaction::{Encoding, Encodings};
/// use tyrum_secrets_core::Redactor;
///
/// let redactor = Redactor::builder()
///     .encodings(Encodings::all().without(Encoding::JsonTwice))
///     .build();
/// assert!(!redactor.encodings().contains(Encoding::JsonTwice));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encodings {
    bits: u16,
}

impl Encodings {
    /// Every encoding.
    pub const fn all() -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < Encoding::ALL.len() {
            bits |= Encoding::ALL[i].bit();
            i += 1;
        }
        Self { bits }
    }

    /// No encoding: only the values themselves are matched.
    pub const fn none() -> Self {
        Self { bits: 0 }
    }

    /// This set with `encoding` added.
    #[must_use]
    pub const fn with(self, encoding: Encoding) -> Self {
        Self {
            bits: self.bits | encoding.bit(),
        }
    }

    /// This set with `encoding` removed.
    #[must_use]
    pub const fn without(self, encoding: Encoding) -> Self {
        Self {
            bits: self.bits & !encoding.bit(),
        }
    }

    /// Whether `encoding` is in the set.
    pub const fn contains(self, encoding: Encoding) -> bool {
        self.bits & encoding.bit() != 0
    }

    /// The encodings in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Encoding> {
        Encoding::ALL.into_iter().filter(move |e| self.contains(*e))
    }
}

impl Default for Encodings {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Debug for Encodings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Configures a [`Redactor`]; made by [`Redactor::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedactorBuilder {
    pub(super) min_value_len: usize,
    pub(super) encodings: Encodings,
}

impl RedactorBuilder {
    pub(super) fn new() -> Self {
        Self {
            min_value_len: DEFAULT_MIN_VALUE_LEN,
            encodings: Encodings::all(),
        }
    }

    /// Refuse values shorter than `min` bytes and skip variants shorter
    /// than `min` (default [`DEFAULT_MIN_VALUE_LEN`]). A minimum of 0 is
    /// taken as 1: an empty pattern would match everywhere.
    pub fn min_value_len(mut self, min: usize) -> Self {
        self.min_value_len = min;
        self
    }

    /// Match these encodings of each value (default: all).
    pub fn encodings(mut self, encodings: Encodings) -> Self {
        self.encodings = encodings;
        self
    }

    /// The redactor, with nothing registered.
    pub fn build(self) -> Redactor {
        Redactor::from_builder(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_add_remove_and_list_encodings() {
        let all = Encodings::all();
        assert_eq!(all.iter().count(), Encoding::ALL.len());
        assert_eq!(Encodings::default(), all);
        let some = all.without(Encoding::Hex).without(Encoding::Lines);
        assert!(!some.contains(Encoding::Hex) && some.contains(Encoding::Json));
        assert_eq!(some.with(Encoding::Hex).with(Encoding::Lines), all);
        assert_eq!(Encodings::none().iter().count(), 0);
        assert_eq!(
            format!("{:?}", Encodings::none().with(Encoding::Json)),
            "{Json}"
        );
    }
}
