//! [`Redacted<T>`]: proof, in the type, that content passed the redactor.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

/// Content that has passed the [`Redactor`](super::Redactor): every value
/// registered at that moment, and its encodings, replaced by
/// `[secret:<handle_id>]`.
///
/// The field is private and only the redactor constructs one, so an API
/// that takes `Redacted<T>` cannot be handed unredacted content by mistake.
/// The gateway's persistence and egress APIs (state store, artifacts,
/// outbox and event payloads, audit and log sinks, model context) take
/// `Redacted<T>`: forgetting to redact does not compile.
///
/// The one way around it is [`Redacted::dangerous_assume_redacted`], for
/// content that cannot hold a secret (a constant, a number, a handle); every
/// use is one grep away.
///
/// `Redacted` serializes as its content (transparently) but deliberately
/// does not implement `Deserialize`: content read back from outside has not
/// passed this process's redactor.
///
/// Redaction is relative to what was registered when it ran: a value
/// registered later is not retroactively removed from content redacted
/// earlier.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps content that passed the redactor. Only the redaction module
    /// calls this.
    pub(crate) fn new(value: T) -> Self {
        Self(value)
    }

    /// Marks `value` as redacted without looking at it.
    ///
    /// Only for content that cannot hold a secret: literals, numbers, ids,
    /// handles, text built solely from such parts. Anything that carries
    /// user, tool, model or provider output must go through the redactor.
    pub fn dangerous_assume_redacted(value: T) -> Self {
        Self(value)
    }

    /// The redacted content.
    pub fn as_inner(&self) -> &T {
        &self.0
    }

    /// The redacted content, unwrapped. What you do with it afterwards is no
    /// longer tracked by the type.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<'a> Redacted<Cow<'a, str>> {
    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same text, owned.
    pub fn into_owned(self) -> Redacted<String> {
        Redacted(self.0.into_owned())
    }
}

impl Redacted<String> {
    /// The redacted text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'a> Redacted<Cow<'a, [u8]>> {
    /// The redacted bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The same bytes, owned.
    pub fn into_owned(self) -> Redacted<Vec<u8>> {
        Redacted(self.0.into_owned())
    }
}

impl<T: fmt::Display> fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize> Serialize for Redacted<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
