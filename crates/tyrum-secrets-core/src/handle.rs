//! Secret handles: the opaque references the model, plans and stored state
//! hold instead of values.
//!
//! A handle's text form is `secret:<id>`. The id is random (never derived
//! from the value), so holding a handle grants nothing and reveals nothing.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::SecretKind;

/// The prefix of a handle's text form.
pub const HANDLE_PREFIX: &str = "secret:";

/// Random bytes in a freshly generated handle id (160 bits).
const ID_RANDOM_BYTES: usize = 20;
/// Shortest id the parser accepts: 22 URL-safe base64 characters hold 128 bits.
pub const HANDLE_ID_MIN_LEN: usize = 22;
/// Longest id the parser accepts.
pub const HANDLE_ID_MAX_LEN: usize = 64;

/// The random identifier of a secret handle.
///
/// Generated ids carry 160 random bits as 27 URL-safe base64 characters.
/// The parser accepts 22 to 64 characters of `[A-Za-z0-9_-]`, so ids from
/// other generators of at least 128 bits stay valid.
///
/// `Display` and serde use the text form `secret:<id>`; [`HandleId::as_str`]
/// is the bare id.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HandleId(String);

impl HandleId {
    /// A fresh random id from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`RandomnessError`] when the operating system cannot supply randomness.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut bytes = [0u8; ID_RANDOM_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| RandomnessError)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Parses a bare id (without the `secret:` prefix).
    ///
    /// # Errors
    /// A [`HandleParseError`] naming what is wrong. The error never repeats
    /// the input, which may be a secret pasted where a handle belonged.
    pub fn parse_bare(id: &str) -> Result<Self, HandleParseError> {
        if id.is_empty() {
            return Err(HandleParseError::EmptyId);
        }
        if id.len() > HANDLE_ID_MAX_LEN {
            return Err(HandleParseError::TooLong { len: id.len() });
        }
        if let Some(position) = id
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(HandleParseError::InvalidCharacter { position });
        }
        if id.len() < HANDLE_ID_MIN_LEN {
            return Err(HandleParseError::TooShort { len: id.len() });
        }
        Ok(Self(id.to_owned()))
    }

    /// The bare id, without the `secret:` prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HandleId {
    type Err = HandleParseError;

    /// Parses the text form `secret:<id>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > HANDLE_PREFIX.len() + HANDLE_ID_MAX_LEN {
            return Err(HandleParseError::TooLong {
                len: text.len().saturating_sub(HANDLE_PREFIX.len()),
            });
        }
        let id = text
            .strip_prefix(HANDLE_PREFIX)
            .ok_or(HandleParseError::MissingPrefix)?;
        Self::parse_bare(id)
    }
}

impl fmt::Display for HandleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HANDLE_PREFIX}{}", self.0)
    }
}

impl fmt::Debug for HandleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandleId({HANDLE_PREFIX}{})", self.0)
    }
}

impl Serialize for HandleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HandleId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A handle text did not parse. Never carries the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleParseError {
    /// The text does not start with `secret:`.
    #[error("a secret handle starts with \"secret:\"")]
    MissingPrefix,
    /// Nothing follows `secret:`.
    #[error("the secret handle has no id after \"secret:\"")]
    EmptyId,
    /// The id is shorter than 22 characters (128 bits).
    #[error("the secret handle id is {len} characters; at least {HANDLE_ID_MIN_LEN} are required")]
    TooShort {
        /// Length of the id.
        len: usize,
    },
    /// The id is longer than 64 characters.
    #[error("the secret handle id is {len} characters; at most {HANDLE_ID_MAX_LEN} are allowed")]
    TooLong {
        /// Length of the id (at least; long inputs are not scanned).
        len: usize,
    },
    /// The id holds a character outside `[A-Za-z0-9_-]`.
    #[error("the secret handle id has a character outside [A-Za-z0-9_-] at byte {position}")]
    InvalidCharacter {
        /// Byte offset of the first bad character within the id.
        position: usize,
    },
}

/// The operating system could not supply random bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the operating system random number generator failed; no handle id was generated")]
pub struct RandomnessError;

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Longest accepted name, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Checks and wraps a name.
            ///
            /// # Errors
            /// [`NameError`] when the name is empty, too long or holds a
            /// character outside the allowed set.
            pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
                let name = name.into();
                check_name($what, &name, Self::MAX_LEN, $extra)?;
                Ok(Self(name))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::new(text)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::new(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// Names a configured provider instance (`file`, `vault-eu`, `env`).
    ///
    /// `[a-z0-9_.-]`, 1 to 64 bytes. Policy rules match `<provider>:<scope>`.
    ProviderId,
    "provider id",
    64,
    b""
);

name_type!(
    /// The scope a secret belongs to (`workspace/acme`, `agent.alpha`).
    ///
    /// `[a-z0-9_.-]` plus `/`, 1 to 128 bytes; no `:` and no `*`, which
    /// policy patterns reserve.
    Scope,
    "scope",
    128,
    b"/"
);

/// A name is not acceptable as a provider id or scope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the {what} is empty")]
    Empty {
        /// Which name.
        what: &'static str,
    },
    /// The name is too long.
    #[error("the {what} is {len} bytes; at most {max} are allowed")]
    TooLong {
        /// Which name.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside the allowed set.
    #[error("the {what} has a character outside [a-z0-9_.-{extra}] at byte {position}")]
    InvalidCharacter {
        /// Which name.
        what: &'static str,
        /// Byte offset of the first bad character.
        position: usize,
        /// Extra characters allowed beyond `[a-z0-9_.-]`.
        extra: &'static str,
    },
}

fn check_name(
    what: &'static str,
    name: &str,
    max: usize,
    extra: &'static [u8],
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            what,
            len: name.len(),
            max,
        });
    }
    let allowed = |b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b) || extra.contains(&b)
    };
    if let Some(position) = name.bytes().position(|b| !allowed(b)) {
        return Err(NameError::InvalidCharacter {
            what,
            position,
            // Both call sites pass ASCII; fall back to nothing rather than panic.
            extra: std::str::from_utf8(extra).unwrap_or(""),
        });
    }
    Ok(())
}

/// An opaque, serializable reference to a secret: what plans, workflows,
/// approvals and persisted state hold instead of the value.
///
/// It carries only what is safe to show: the random id, the provider id,
/// the scope and the kind. A handle is inert; holding one grants nothing.
///
/// ```
/// use tyrum_secrets_core::{HandleId, ProviderId, Scope, SecretHandle, SecretKind};
///
/// let handle = SecretHandle::new(
///     HandleId::generate()?,
///     ProviderId::new("file")?,
///     Scope::new("workspace/acme")?,
///     SecretKind::ApiKey,
/// );
/// let text = handle.id().to_string();
/// assert!(text.starts_with("secret:"));
/// assert_eq!(text.parse::<HandleId>()?, *handle.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretHandle {
    id: HandleId,
    provider: ProviderId,
    scope: Scope,
    kind: SecretKind,
}

impl SecretHandle {
    /// Assembles a handle. Catalogs mint handles; this is for them and for
    /// deserializing code.
    pub fn new(id: HandleId, provider: ProviderId, scope: Scope, kind: SecretKind) -> Self {
        Self {
            id,
            provider,
            scope,
            kind,
        }
    }

    /// The random id; its `Display` is the text form `secret:<id>`.
    pub fn id(&self) -> &HandleId {
        &self.id
    }

    /// The provider holding the value.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The scope the secret belongs to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// What the secret is for.
    pub fn kind(&self) -> SecretKind {
        self.kind
    }
}

impl fmt::Display for SecretHandle {
    /// The text form, `secret:<id>`, as the model and tool arguments see it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.id, f)
    }
}

/// Serde helpers to store a [`SecretHandle`] as its text form only.
///
/// Use with `#[serde(with = "tyrum_secrets_core::handle::as_text")]` on a
/// `HandleId` field where a compact `"secret:<id>"` string is wanted in a
/// struct that otherwise serializes handles as structs.
pub mod as_text {
    use super::HandleId;

    /// Serializes a handle id as `"secret:<id>"`.
    ///
    /// # Errors
    /// Whatever the serializer returns.
    pub fn serialize<S: serde::Serializer>(
        id: &HandleId,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(id, serializer)
    }

    /// Deserializes `"secret:<id>"` with the strict parser.
    ///
    /// # Errors
    /// A serde error wrapping the [`super::HandleParseError`].
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HandleId, D::Error> {
        <HandleId as serde::Deserialize>::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_distinct_and_parse_back() {
        let a = HandleId::generate().unwrap();
        let b = HandleId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 27);
        assert_eq!(a.to_string().parse::<HandleId>().unwrap(), a);
    }

    #[test]
    fn malformed_handles_get_typed_errors() {
        let long = format!("secret:{}", "a".repeat(65));
        let cases: &[(&str, HandleParseError)] = &[
            ("", HandleParseError::MissingPrefix),
            (
                "sk-live-abcdefghijklmnopqrstuvwxyz",
                HandleParseError::MissingPrefix,
            ),
            (
                "SECRET:abcdefghijklmnopqrstuvwxyz",
                HandleParseError::MissingPrefix,
            ),
            ("secret:", HandleParseError::EmptyId),
            ("secret:abc", HandleParseError::TooShort { len: 3 }),
            (
                "secret:abcdefghijklmnopqrstuv=",
                HandleParseError::InvalidCharacter { position: 22 },
            ),
            (
                "secret: abcdefghijklmnopqrstuvw",
                HandleParseError::InvalidCharacter { position: 0 },
            ),
            (&long, HandleParseError::TooLong { len: 65 }),
        ];
        for (input, expected) in cases {
            assert_eq!(
                &input.parse::<HandleId>().unwrap_err(),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn huge_input_is_rejected_without_scanning() {
        let huge = "secret:".to_owned() + &"x".repeat(10_000_000);
        assert!(matches!(
            huge.parse::<HandleId>(),
            Err(HandleParseError::TooLong { .. })
        ));
    }

    #[test]
    fn parse_errors_never_echo_the_input() {
        let canary = "secret:CANARY-sk-live-9f8e7d6c5b4a/3210";
        let err = canary.parse::<HandleId>().unwrap_err();
        assert!(!format!("{err} {err:?}").contains("CANARY"));
    }

    #[test]
    fn handle_serializes_as_struct_and_id_as_text() {
        let handle = SecretHandle::new(
            HandleId::generate().unwrap(),
            ProviderId::new("file").unwrap(),
            Scope::new("workspace/acme").unwrap(),
            SecretKind::ApiKey,
        );
        let json = serde_json::to_value(&handle).unwrap();
        assert_eq!(json["id"], handle.id().to_string());
        assert_eq!(json["provider"], "file");
        assert_eq!(json["scope"], "workspace/acme");
        assert_eq!(json["kind"], "api_key");
        let back: SecretHandle = serde_json::from_value(json).unwrap();
        assert_eq!(back, handle);
        let bad = serde_json::json!({"id": "secret:short", "provider": "file",
            "scope": "s", "kind": "api_key"});
        assert!(serde_json::from_value::<SecretHandle>(bad).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(ProviderId::new("vault-eu.1").is_ok());
        assert!(ProviderId::new("").is_err());
        assert!(ProviderId::new("Vault").is_err());
        assert!(ProviderId::new("a/b").is_err());
        assert!(Scope::new("workspace/acme").is_ok());
        assert!(Scope::new("workspace:acme").is_err());
        assert!(Scope::new("workspace/*").is_err());
        assert!(Scope::new("x".repeat(129)).is_err());
    }

    proptest! {
        #[test]
        fn handle_text_round_trips(bytes in proptest::collection::vec(any::<u8>(), 16..48)) {
            let id = HandleId::parse_bare(&URL_SAFE_NO_PAD.encode(&bytes)).unwrap();
            let text = id.to_string();
            prop_assert_eq!(text.parse::<HandleId>().unwrap(), id.clone());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<HandleId>(&json).unwrap(), id);
        }

        #[test]
        fn parser_never_panics(text in ".{0,200}") {
            let _ = text.parse::<HandleId>();
            let prefixed = format!("secret:{text}");
            if let Ok(id) = prefixed.parse::<HandleId>() {
                prop_assert_eq!(id.to_string(), prefixed);
            }
        }

        #[test]
        fn parser_never_panics_on_id_alphabet(text in "secret:[A-Za-z0-9_=+/-]{0,80}") {
            match text.parse::<HandleId>() {
                Ok(id) => prop_assert_eq!(id.to_string(), text),
                Err(err) => prop_assert!(!err.to_string().is_empty()),
            }
        }
    }
}
