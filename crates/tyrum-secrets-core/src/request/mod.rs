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
/// Deserializing applies the same checks as the constructors, so a stored
/// requester cannot carry an empty agent or tool call id.
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
    /// A requester for `agent`.
    ///
    /// # Errors
    /// [`RequestError`] when the agent id is empty, too long or holds a
    /// control character.
    pub fn new(agent: impl Into<String>) -> Result<Self, RequestError> {
        Ok(Self {
            agent: attribute("agent", agent.into())?,
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
    /// As [`Requester::new`], for this attribute.
    pub fn workspace(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.workspace = Some(attribute("workspace", value.into())?);
        Ok(self)
    }

    /// Sets the conversation.
    ///
    /// # Errors
    /// As [`Requester::new`], for this attribute.
    pub fn conversation(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.conversation = Some(attribute("conversation", value.into())?);
        Ok(self)
    }

    /// Sets the channel.
    ///
    /// # Errors
    /// As [`Requester::new`], for this attribute.
    pub fn channel(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.channel = Some(attribute("channel", value.into())?);
        Ok(self)
    }

    /// Sets the tool id (`http.fetch`, `shell.exec`).
    ///
    /// # Errors
    /// As [`Requester::new`], for this attribute.
    pub fn tool(mut self, value: impl Into<String>) -> Result<Self, RequestError> {
        self.tool_id = Some(attribute("tool_id", value.into())?);
        Ok(self)
    }

    /// Sets the tool call id that approvals bind to.
    ///
    /// # Errors
    /// As [`Requester::new`], for this attribute.
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
            agent: attribute("agent", raw.agent)?,
            workspace: optional("workspace", raw.workspace)?,
            conversation: optional("conversation", raw.conversation)?,
            channel: optional("channel", raw.channel)?,
            tool_id: optional("tool_id", raw.tool_id)?,
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
    /// [`RequestError::TooLong`] past 1024 bytes, or
    /// [`RequestError::ControlCharacter`].
    pub fn new(text: impl Into<String>) -> Result<Self, RequestError> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(RequestError::EmptyPurpose);
        }
        Ok(Self(checked("purpose", text, MAX_PURPOSE_LEN)?))
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

pub(crate) fn attribute(field: &'static str, value: String) -> Result<String, RequestError> {
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
}
