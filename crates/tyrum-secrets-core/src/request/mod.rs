//! The request vocabulary: who asks for a secret ([`Requester`]), why
//! ([`Purpose`]) and where the value goes ([`Destination`]).
//!
//! Policy, approvals, audit and the resolver all speak it, so it sits below
//! all of them and depends on none.

mod destination;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use destination::Destination;

/// Longest accepted requester attribute, in bytes.
const MAX_ATTRIBUTE_LEN: usize = 256;
/// Longest accepted purpose, in bytes.
const MAX_PURPOSE_LEN: usize = 1024;

/// Who asks for a secret: the agent and, where known, the workspace,
/// conversation, channel, tool and tool call. Written to every audit record.
///
/// # Identifier alphabet
///
/// Policy rules match the agent and tool ids, and audit records show every
/// attribute, so two names that look alike must not be two ids:
///
/// - **agent and tool ids** are ASCII letters, digits and `_ - . : / @`,
///   1 to 256 bytes, and **case-insensitive**: they are lower-cased on the
///   way in, so `Shell.exec` *is* `shell.exec` and meets every rule that
///   names it. Policy patterns for them must be written in lower case.
/// - **workspace, conversation, channel and tool call ids** (and a resolve
///   request's node and auth profile) are visible ASCII (`!` to `~`, no
///   space), 1 to 256 bytes, compared exactly (case kept).
///
/// Anything else — Unicode look-alikes (fullwidth `ｓhell`, Cyrillic `е`),
/// zero-width and bidirectional format characters (`U+200B`, `U+202E`,
/// `U+FEFF`), spaces, control characters — is refused with a
/// [`RequestError`], never normalised into a match: a gateway that has such
/// names must map them to ASCII ids itself.
///
/// Deserializing applies the same checks and lower-casing as the
/// constructors, so a stored requester cannot carry an empty agent, a
/// look-alike tool id or an empty tool call id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRequester")]
pub struct Requester {
    agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

impl Requester {
    /// A requester for `agent` (lower-cased; see the
    /// [identifier alphabet](Self#identifier-alphabet)).
    ///
    /// # Errors
    /// [`RequestError`] when the agent id is empty, longer than 256 bytes,
    /// or holds a character outside ASCII letters, digits and `_ - . : / @`.
    pub fn new(agent: impl Into<String>) -> Result<Self, RequestError> {
        Ok(Self {
            agent: identifier("agent", agent.into())?,
            workspace: None,
            conversation: None,
            channel: None,
            tool_id: None,
            tool_call_id: None,
        })
    }

    /// Sets the workspace.
    ///
    /// # Errors
    /// [`RequestError`] when it is empty, longer than 256 bytes, or holds
    /// a character outside visible ASCII.
    pub fn workspace(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.workspace = Some(attribute("workspace", value.into())?);
        Ok(self)
    }

    /// Sets the conversation.
    ///
    /// # Errors
    /// As [`workspace`](Self::workspace), for this attribute.
    pub fn conversation(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.conversation = Some(attribute("conversation", value.into())?);
        Ok(self)
    }

    /// Sets the channel.
    ///
    /// # Errors
    /// As [`workspace`](Self::workspace), for this attribute.
    pub fn channel(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.channel = Some(attribute("channel", value.into())?);
        Ok(self)
    }

    /// Sets the tool id (`http.fetch`, `shell.exec`), lower-cased.
    ///
    /// # Errors
    /// As [`Requester::new`], for this attribute.
    pub fn tool(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.tool_id = Some(identifier("tool_id", value.into())?);
        Ok(self)
    }

    /// Sets the tool call id that approvals bind to.
    ///
    /// # Errors
    /// As [`workspace`](Self::workspace), for this attribute.
    pub fn tool_call(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.tool_call_id = Some(attribute("tool_call_id", value.into())?);
        Ok(self)
    }

    /// The agent id.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The workspace, if given.
    pub fn workspace_id(&self) -> Option<&str> {
        self.workspace.as_deref()
    }

    /// The conversation, if given.
    pub fn conversation_id(&self) -> Option<&str> {
        self.conversation.as_deref()
    }

    /// The channel, if given.
    pub fn channel_id(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The tool id, if given.
    pub fn tool_id(&self) -> Option<&str> {
        self.tool_id.as_deref()
    }

    /// The tool call id, if given.
    pub fn tool_call_id(&self) -> Option<&str> {
        self.tool_call_id.as_deref()
    }
}

/// The serialized form of a [`Requester`], checked on the way in.
#[derive(Deserialize)]
struct RawRequester {
    agent: String,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    conversation: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    tool_id: Option<String>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

impl TryFrom<RawRequester> for Requester {
    type Error = RequestError;

    fn try_from(raw: RawRequester) -> Result<Self, Self::Error> {
        let optional =
            |field, value: Option<String>| value.map(|v| attribute(field, v)).transpose();
        Ok(Self {
            agent: identifier("agent", raw.agent)?,
            workspace: optional("workspace", raw.workspace)?,
            conversation: optional("conversation", raw.conversation)?,
            channel: optional("channel", raw.channel)?,
            tool_id: raw.tool_id.map(|v| identifier("tool_id", v)).transpose()?,
            tool_call_id: optional("tool_call_id", raw.tool_call_id)?,
        })
    }
}

/// Why the secret is needed, in the caller's words. Required and non-empty;
/// written to the audit record, so it must never hold a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Purpose(String);

impl Purpose {
    /// Checks and wraps a purpose.
    ///
    /// # Errors
    /// [`RequestError::EmptyPurpose`] when it is empty or blank,
    /// [`RequestError::TooLong`] past 1024 bytes,
    /// [`RequestError::ControlCharacter`], or
    /// [`RequestError::FormatCharacter`] for an invisible format character
    /// (`U+202E` and the like) that would disguise the audit record.
    pub fn new(text: impl Into<String>) -> Result<Self, RequestError> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(RequestError::EmptyPurpose);
        }
        let text = checked("purpose", text, MAX_PURPOSE_LEN)?;
        if let Some((position, _)) = text.char_indices().find(|(_, c)| is_format(*c)) {
            return Err(RequestError::FormatCharacter {
                field: "purpose",
                position,
            });
        }
        Ok(Self(text))
    }

    /// The purpose as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resolve request is not well-formed. Never repeats the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The purpose is empty or blank.
    #[error("a resolve request needs a purpose; say why the secret is needed")]
    EmptyPurpose,
    /// A requester attribute is empty.
    #[error("the requester {field} is empty")]
    Empty {
        /// Which attribute.
        field: &'static str,
    },
    /// A field is too long.
    #[error("the {field} is {len} bytes; at most {max} are allowed")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field holds a control character.
    #[error("the {field} has a control character at byte {position}")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
        /// Byte offset of the character.
        position: usize,
    },
    /// An identifier holds a character outside its alphabet (see
    /// [`Requester`]'s identifier alphabet): a look-alike, a format
    /// character, a space.
    #[error(
        "the {field} has a character outside {allowed} at byte {position}; \
         identifiers are ASCII so that look-alike names cannot escape a policy rule"
    )]
    InvalidCharacter {
        /// Which field.
        field: &'static str,
        /// Byte offset of the character.
        position: usize,
        /// The characters allowed.
        allowed: &'static str,
    },
    /// Free text (the purpose) holds an invisible Unicode format character
    /// (zero-width, bidirectional override) that would disguise an audit
    /// record.
    #[error("the {field} has an invisible format character at byte {position}")]
    FormatCharacter {
        /// Which field.
        field: &'static str,
        /// Byte offset of the character.
        position: usize,
    },
    /// The destination is not a host name or address.
    #[error("the destination host is not valid: {reason}")]
    InvalidHost {
        /// What is wrong.
        reason: &'static str,
    },
    /// The destination is a number that IPv4 parsers read as an address,
    /// in a form other than four decimal octets (`2852039166`,
    /// `169.254.43518`, `0xa9.0xfe.0xa9.0xfe`, a leading zero).
    #[error(
        "the destination host is a numeric address in an ambiguous form; \
         give an IPv4 address as four decimal numbers 0-255 without leading zeros (169.254.169.254)"
    )]
    AmbiguousAddress,
    /// The destination URL has no host or is read differently by
    /// different clients.
    #[error("the destination URL is not usable: {reason}")]
    InvalidUrl {
        /// What is wrong.
        reason: &'static str,
    },
}

/// Agent and tool ids: ASCII letters (lower-cased), digits and `_-.:/@`.
pub(crate) fn identifier(field: &'static str, value: String) -> Result<String, RequestError> {
    let value = nonempty(field, value)?;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_-.:/@".contains(&b);
    if let Some(position) = value.bytes().position(|b| !allowed(b)) {
        return Err(RequestError::InvalidCharacter {
            field,
            position,
            allowed: "ASCII letters, digits and _ - . : / @",
        });
    }
    Ok(value.to_ascii_lowercase())
}

/// Other requester attributes: visible ASCII, case kept.
pub(crate) fn attribute(field: &'static str, value: String) -> Result<String, RequestError> {
    let value = nonempty(field, value)?;
    if let Some(position) = value.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(RequestError::InvalidCharacter {
            field,
            position,
            allowed: "visible ASCII (! to ~, no space)",
        });
    }
    Ok(value)
}

fn nonempty(field: &'static str, value: String) -> Result<String, RequestError> {
    if value.is_empty() {
        return Err(RequestError::Empty { field });
    }
    checked(field, value, MAX_ATTRIBUTE_LEN)
}

fn checked(field: &'static str, value: String, max: usize) -> Result<String, RequestError> {
    if value.len() > max {
        return Err(RequestError::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if let Some((position, _)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(RequestError::ControlCharacter { field, position });
    }
    Ok(value)
}

/// Invisible Unicode format characters that change how text around them
/// looks (Unicode category Cf, the ones in use): soft hyphen, Arabic letter
/// mark, Mongolian vowel separator, zero-width and joiner characters,
/// bidirectional marks, embeddings, overrides and isolates, word joiner and
/// invisible operators, the byte order mark, interlinear annotation marks.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_purpose_is_refused() {
        assert_eq!(Purpose::new("").unwrap_err(), RequestError::EmptyPurpose);
        assert_eq!(
            Purpose::new(" \t ").unwrap_err(),
            RequestError::EmptyPurpose
        );
        assert!(Purpose::new("deploy").is_ok());
    }

    #[test]
    fn deserialized_requester_is_checked_like_a_constructed_one() {
        let ok: Requester =
            serde_json::from_str(r#"{"agent": "alpha", "tool_call_id": "c1"}"#).unwrap();
        assert_eq!(
            ok,
            Requester::new("alpha").unwrap().tool_call("c1").unwrap()
        );
        let round = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<Requester>(&round).unwrap(), ok);
        for bad in [
            r#"{"agent": ""}"#,
            r#"{"agent": "a
b"}"#,
            r#"{"agent": "alpha", "tool_call_id": ""}"#,
        ] {
            assert!(serde_json::from_str::<Requester>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requester_attributes_are_checked() {
        assert!(Requester::new("").is_err());
        assert!(Requester::new("a\nb").is_err());
        assert!(Requester::new("alpha").unwrap().tool_call("").is_err());
    }

    #[test]
    fn agent_and_tool_ids_are_lower_cased_ascii() {
        let r = Requester::new("CI-Bot")
            .unwrap()
            .tool("Shell.Exec")
            .unwrap();
        assert_eq!(r.agent(), "ci-bot");
        assert_eq!(r.tool_id(), Some("shell.exec"));
        for ok in ["mcp/github.create_issue", "ci@acme:7", "a_b-c.d"] {
            assert!(Requester::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "shell exec",
            "shell*",
            "\u{ff53}hell",
            "shell\u{200b}",
            "caf\u{e9}",
        ] {
            assert!(
                matches!(
                    Requester::new(bad),
                    Err(RequestError::InvalidCharacter { field: "agent", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn other_attributes_are_visible_ascii_with_case_kept() {
        let r = Requester::new("alpha")
            .unwrap()
            .conversation("Conv-7F3A")
            .unwrap()
            .tool_call("call_ABC+1=")
            .unwrap();
        assert_eq!(r.conversation_id(), Some("Conv-7F3A"));
        assert_eq!(r.tool_call_id(), Some("call_ABC+1="));
        for bad in ["call 1", "call\u{200b}1", "\u{202e}1llac", "c\u{430}ll"] {
            let alpha = Requester::new("alpha").unwrap();
            assert!(
                matches!(
                    alpha.tool_call(bad),
                    Err(RequestError::InvalidCharacter {
                        field: "tool_call_id",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn deserialized_requester_gets_the_same_alphabet_and_case() {
        let r: Requester = serde_json::from_str(
            r#"{"agent": "Alpha", "tool_id": "Shell.exec", "tool_call_id": "C1"}"#,
        )
        .unwrap();
        assert_eq!(r.agent(), "alpha");
        assert_eq!(r.tool_id(), Some("shell.exec"));
        assert_eq!(r.tool_call_id(), Some("C1"));
        for bad in [
            r#"{"agent": "alpha", "tool_id": "shell\u200b.exec"}"#,
            r#"{"agent": "alpha", "tool_id": "\u202eshell.exec"}"#,
            r#"{"agent": "\uff41lpha"}"#,
            r#"{"agent": "alpha", "workspace": "acme corp"}"#,
        ] {
            assert!(serde_json::from_str::<Requester>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn purpose_refuses_invisible_format_characters() {
        assert!(Purpose::new("rotate the k\u{e9}y for caf\u{e9} \u{1f511}").is_ok());
        for bad in [
            "deploy \u{202e}txt.exe",
            "a\u{200b}b",
            "\u{feff}x",
            "a\u{2066}b",
        ] {
            assert!(
                matches!(Purpose::new(bad), Err(RequestError::FormatCharacter { .. })),
                "{bad:?}"
            );
        }
    }
}
