//! What an auth profile is: a model-provider credential of one agent, as
//! handles and metadata. Never a value.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::AuthProfileError;
use crate::{HandleId, Timestamp};

/// Longest accepted profile id, in bytes.
const MAX_PROFILE_ID_LEN: usize = 128;
/// Longest accepted model-provider name, in bytes.
const MAX_PROVIDER_LEN: usize = 64;
/// Longest accepted agent id or label, in bytes.
const MAX_TEXT_LEN: usize = 256;
/// Longest accepted note, in bytes.
const MAX_NOTE_LEN: usize = 1024;

/// One model-provider credential of one agent: which handles hold it, when
/// its access token expires, labels to tell accounts apart, and whether it
/// may be used now.
///
/// It holds handles, never values, so it may be stored and shown anywhere;
/// serde round-trips it. Build one with [`AuthProfile::api_key`],
/// [`AuthProfile::oauth`] or [`AuthProfile::token`]; state fields change only
/// through [`AuthProfiles`](super::AuthProfiles) (outcome reports, refresh).
///
/// ```
/// use tyrum_secrets_core::{AuthProfile, HandleId, ModelProvider, ProfileId};
///
/// let profile = AuthProfile::api_key(
///     ProfileId::new("openai:work")?,
///     "agent-alpha",
///     ModelProvider::new("openai")?,
///     HandleId::generate()?,
/// )?
/// .email("ops@example.com")?;
/// let json = serde_json::to_string(&profile)?;
/// assert_eq!(serde_json::from_str::<AuthProfile>(&json)?, profile);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthProfile {
    /// The profile's id, unique in its store.
    pub id: ProfileId,
    /// The agent that owns it: an agent id as
    /// [`Requester`](crate::Requester) has it (lower-cased ASCII letters,
    /// digits and `_ - . : / @`).
    #[serde(deserialize_with = "deserialize_agent")]
    pub agent: String,
    /// Other agents allowed to use it. Profiles are not shared unless listed
    /// here.
    #[serde(
        default,
        skip_serializing_if = "BTreeSet::is_empty",
        deserialize_with = "deserialize_agents"
    )]
    pub shared_with: BTreeSet<String>,
    /// The model provider it is a credential for.
    pub provider: ModelProvider,
    /// The credential type and the handles that hold it.
    pub credential: Credential,
    /// Labels that tell accounts apart. Safe to show; never a secret.
    #[serde(default, skip_serializing_if = "ProfileLabels::is_empty")]
    pub labels: ProfileLabels,
    /// Active, cooling down or disabled.
    #[serde(default)]
    pub status: ProfileStatus,
    /// When a call with this profile last succeeded, to within
    /// [`LAST_GOOD_USE_GRANULARITY`](super::LAST_GOOD_USE_GRANULARITY). The
    /// stable order tries the profile used longest ago first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good_use: Option<Timestamp>,
    /// OAuth refresh bookkeeping.
    #[serde(default, skip_serializing_if = "RefreshState::is_initial")]
    pub refresh: RefreshState,
    /// Bumped by the store on every successful write; the compare-and-set
    /// token.
    #[serde(default)]
    pub revision: u64,
}

impl AuthProfile {
    /// A profile whose credential is an API key held by `api_key`.
    ///
    /// The agent id is lower-cased, as [`Requester`](crate::Requester) does.
    ///
    /// # Errors
    /// [`AuthProfileError::Invalid`] when the agent id is empty, longer than
    /// 256 bytes or holds a character outside ASCII letters, digits and
    /// `_ - . : / @`.
    pub fn api_key(
        id: ProfileId,
        agent: impl Into<String>,
        provider: ModelProvider,
        api_key: HandleId,
    ) -> Result<Self, AuthProfileError> {
        Self::new(id, agent, provider, Credential::ApiKey { api_key })
    }

    /// An OAuth profile: an access token, optionally a refresh token, and
    /// when the access token expires (if known).
    ///
    /// # Errors
    /// As [`api_key`](Self::api_key).
    pub fn oauth(
        id: ProfileId,
        agent: impl Into<String>,
        provider: ModelProvider,
        access_token: HandleId,
        refresh_token: Option<HandleId>,
        expires_at: Option<Timestamp>,
    ) -> Result<Self, AuthProfileError> {
        let credential = Credential::Oauth {
            access_token,
            refresh_token,
            expires_at,
        };
        Self::new(id, agent, provider, credential)
    }

    /// A profile holding a static bearer token (no refresh), with an
    /// optional expiry.
    ///
    /// # Errors
    /// As [`api_key`](Self::api_key).
    pub fn token(
        id: ProfileId,
        agent: impl Into<String>,
        provider: ModelProvider,
        access_token: HandleId,
        expires_at: Option<Timestamp>,
    ) -> Result<Self, AuthProfileError> {
        let credential = Credential::Token {
            access_token,
            expires_at,
        };
        Self::new(id, agent, provider, credential)
    }

    fn new(
        id: ProfileId,
        agent: impl Into<String>,
        provider: ModelProvider,
        credential: Credential,
    ) -> Result<Self, AuthProfileError> {
        Ok(Self {
            id,
            agent: agent_id(agent.into())?,
            shared_with: BTreeSet::new(),
            provider,
            credential,
            labels: ProfileLabels::default(),
            status: ProfileStatus::Active,
            last_good_use: None,
            refresh: RefreshState::default(),
            revision: 0,
        })
    }

    /// Lets `agent` use this profile too.
    ///
    /// # Errors
    /// As [`api_key`](Self::api_key), for `agent`.
    pub fn share_with(mut self, agent: impl Into<String>) -> Result<Self, AuthProfileError> {
        self.shared_with.insert(agent_id(agent.into())?);
        Ok(self)
    }

    /// Sets the `account` label.
    ///
    /// # Errors
    /// [`AuthProfileError::Invalid`] when it is longer than 256 bytes or
    /// holds a control character.
    pub fn account(mut self, account: impl Into<String>) -> Result<Self, AuthProfileError> {
        self.labels.account = Some(checked_text("account label", account.into(), MAX_TEXT_LEN)?);
        Ok(self)
    }

    /// Sets the `email` label.
    ///
    /// # Errors
    /// As [`account`](Self::account).
    pub fn email(mut self, email: impl Into<String>) -> Result<Self, AuthProfileError> {
        self.labels.email = Some(checked_text("email label", email.into(), MAX_TEXT_LEN)?);
        Ok(self)
    }

    /// Sets the `workspace` label.
    ///
    /// # Errors
    /// As [`account`](Self::account).
    pub fn workspace(mut self, workspace: impl Into<String>) -> Result<Self, AuthProfileError> {
        self.labels.workspace = Some(checked_text(
            "workspace label",
            workspace.into(),
            MAX_TEXT_LEN,
        )?);
        Ok(self)
    }

    /// Sets the `notes` label (up to 1024 bytes; never a secret).
    ///
    /// # Errors
    /// As [`account`](Self::account), with a 1024-byte limit.
    pub fn notes(mut self, notes: impl Into<String>) -> Result<Self, AuthProfileError> {
        self.labels.notes = Some(checked_text("notes", notes.into(), MAX_NOTE_LEN)?);
        Ok(self)
    }

    /// Whether `agent` may use this profile: it owns it or it is listed in
    /// [`shared_with`](Self::shared_with).
    pub fn serves(&self, agent: &str) -> bool {
        self.agent == agent || self.shared_with.contains(agent)
    }

    /// The credential type.
    pub fn credential_type(&self) -> CredentialType {
        self.credential.credential_type()
    }
}

/// A credential's type and the handles that hold it, one per slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Credential {
    /// A long-lived API key.
    ApiKey {
        /// The handle holding the key.
        api_key: HandleId,
    },
    /// OAuth tokens: an access token that expires, and a refresh token that
    /// gets new ones.
    Oauth {
        /// The handle holding the access token.
        access_token: HandleId,
        /// The handle holding the refresh token, if there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_token: Option<HandleId>,
        /// When the access token expires, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Timestamp>,
    },
    /// A static bearer token that cannot be refreshed.
    Token {
        /// The handle holding the token.
        access_token: HandleId,
        /// When it expires, if it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<Timestamp>,
    },
}

impl Credential {
    /// The credential type.
    pub fn credential_type(&self) -> CredentialType {
        match self {
            Credential::ApiKey { .. } => CredentialType::ApiKey,
            Credential::Oauth { .. } => CredentialType::Oauth,
            Credential::Token { .. } => CredentialType::Token,
        }
    }

    /// Every slot that holds a handle, with the handle.
    pub fn slots(&self) -> impl Iterator<Item = (Slot, &HandleId)> {
        let (first, second) = match self {
            Credential::ApiKey { api_key } => ((Slot::ApiKey, api_key), None),
            Credential::Oauth {
                access_token,
                refresh_token,
                ..
            } => (
                (Slot::AccessToken, access_token),
                refresh_token.as_ref().map(|r| (Slot::RefreshToken, r)),
            ),
            Credential::Token { access_token, .. } => ((Slot::AccessToken, access_token), None),
        };
        std::iter::once(first).chain(second)
    }

    /// The handle a call to the model provider uses: the API key or the
    /// access token.
    pub fn call_handle(&self) -> &HandleId {
        match self {
            Credential::ApiKey { api_key } => api_key,
            Credential::Oauth { access_token, .. } | Credential::Token { access_token, .. } => {
                access_token
            }
        }
    }

    /// The refresh token's handle, for an OAuth credential that has one.
    pub fn refresh_handle(&self) -> Option<&HandleId> {
        match self {
            Credential::Oauth { refresh_token, .. } => refresh_token.as_ref(),
            _ => None,
        }
    }

    /// When the access token (or static token) expires, if known.
    pub fn expires_at(&self) -> Option<Timestamp> {
        match self {
            Credential::ApiKey { .. } => None,
            Credential::Oauth { expires_at, .. } | Credential::Token { expires_at, .. } => {
                *expires_at
            }
        }
    }
}

/// The type of a profile's credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    /// An API key.
    ApiKey,
    /// OAuth access and refresh tokens.
    Oauth,
    /// A static bearer token.
    Token,
}

/// A place in a credential that holds a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// The API key.
    ApiKey,
    /// The access token (OAuth or static).
    AccessToken,
    /// The OAuth refresh token.
    RefreshToken,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::ApiKey => "API key",
            Slot::AccessToken => "access token",
            Slot::RefreshToken => "refresh token",
        })
    }
}

/// Labels that tell accounts apart. Safe to show; never a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileLabels {
    /// The account at the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The account's email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The provider-side workspace or organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Free-form notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

impl ProfileLabels {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Whether a profile may be used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProfileStatus {
    /// Usable.
    #[default]
    Active,
    /// Failed recently; not selected before `until`. After `until` it is
    /// usable again, and the failure count keeps growing until a success.
    CoolingDown {
        /// Not selected before this instant.
        until: Timestamp,
        /// The failure that started the cooldown.
        reason: FailureKind,
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Not selected until an operator enables it again.
    Disabled {
        /// When it was disabled.
        at: Timestamp,
        /// Why.
        reason: DisableReason,
    },
}

/// A failure that puts a profile in a cooldown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The provider rate-limited the account.
    RateLimited,
    /// The provider failed (5xx).
    ServerError,
    /// The call timed out.
    Timeout,
    /// The account has a billing problem (quota, payment).
    Billing,
    /// The OAuth token endpoint could not be reached or failed.
    RefreshUnavailable,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::RateLimited => "rate limited",
            FailureKind::ServerError => "server error",
            FailureKind::Timeout => "timeout",
            FailureKind::Billing => "billing problem",
            FailureKind::RefreshUnavailable => "token refresh unavailable",
        })
    }
}

/// Why a profile is disabled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DisableReason {
    /// The provider rejected the credential (after one refresh, for OAuth).
    InvalidCredentials,
    /// The token endpoint rejected the refresh token.
    RefreshRejected,
    /// An operator disabled it.
    Operator {
        /// What the operator said. Never a secret.
        note: String,
    },
}

impl fmt::Display for DisableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisableReason::InvalidCredentials => f.write_str("invalid credentials"),
            DisableReason::RefreshRejected => f.write_str("refresh token rejected"),
            DisableReason::Operator { note } => write!(f, "disabled by an operator: {note}"),
        }
    }
}

/// OAuth refresh bookkeeping of a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefreshState {
    /// How many times the tokens were refreshed. A caller holding an older
    /// generation holds an outdated access token.
    #[serde(default)]
    pub generation: u64,
    /// When the last refresh finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<Timestamp>,
    /// The current tokens come from a refresh made because the provider
    /// rejected the previous ones, and no call has succeeded since: one more
    /// rejection disables the profile.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_rejection: bool,
}

impl RefreshState {
    fn is_initial(&self) -> bool {
        *self == Self::default()
    }
}

/// An auth profile's id: `[A-Za-z0-9_.:@-]`, 1 to 128 bytes
/// (`openai:work`, `anthropic-ops@example.com`).
///
/// Cheap to clone.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileId(Arc<str>);

impl ProfileId {
    /// Checks and wraps an id.
    ///
    /// # Errors
    /// [`AuthProfileError::Invalid`] when it is empty, too long or holds a
    /// character outside the allowed set. The message never repeats it.
    pub fn new(id: impl AsRef<str>) -> Result<Self, AuthProfileError> {
        let id = id.as_ref();
        check_name("profile id", id, MAX_PROFILE_ID_LEN, |b| {
            b.is_ascii_alphanumeric() || b"_.:@-".contains(&b)
        })?;
        Ok(Self(Arc::from(id)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A model provider's name (`openai`, `anthropic`, `google-vertex`):
/// `[a-z0-9_.-]`, 1 to 64 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelProvider(Arc<str>);

impl ModelProvider {
    /// Checks and wraps a name.
    ///
    /// # Errors
    /// [`AuthProfileError::Invalid`] when it is empty, too long or holds a
    /// character outside the allowed set.
    pub fn new(name: impl AsRef<str>) -> Result<Self, AuthProfileError> {
        let name = name.as_ref();
        check_name("model provider", name, MAX_PROVIDER_LEN, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b)
        })?;
        Ok(Self(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_type {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = AuthProfileError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::new(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&*text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_type!(ProfileId);
text_type!(ModelProvider);

fn check_name(
    what: &'static str,
    name: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
) -> Result<(), AuthProfileError> {
    let problem = if name.is_empty() {
        format!("the {what} is empty")
    } else if name.len() > max {
        format!(
            "the {what} is {} bytes; at most {max} are allowed",
            name.len()
        )
    } else if let Some(position) = name.bytes().position(|b| !allowed(b)) {
        format!("the {what} has a character that is not allowed at byte {position}")
    } else {
        return Ok(());
    };
    Err(AuthProfileError::Invalid { message: problem })
}

/// Checks free text (agent ids, labels): non-empty for agents, bounded, no
/// control characters. The message never repeats the text.
pub(crate) fn checked_text(
    what: &'static str,
    text: String,
    max: usize,
) -> Result<String, AuthProfileError> {
    let problem = if text.is_empty() {
        format!("the {what} is empty")
    } else if text.len() > max {
        format!(
            "the {what} is {} bytes; at most {max} are allowed",
            text.len()
        )
    } else if let Some((position, _)) = text.char_indices().find(|(_, c)| c.is_control()) {
        format!("the {what} has a control character at byte {position}")
    } else {
        return Ok(text);
    };
    Err(AuthProfileError::Invalid { message: problem })
}

/// An agent id in the form [`Requester`](crate::Requester) keeps it, so that
/// profiles and requesters compare equal.
fn agent_id(agent: String) -> Result<String, AuthProfileError> {
    crate::request::identifier("agent", agent).map_err(|e| AuthProfileError::Invalid {
        message: e.to_string(),
    })
}

fn deserialize_agent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    agent_id(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

fn deserialize_agents<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeSet<String>, D::Error> {
    BTreeSet::<String>::deserialize(deserializer)?
        .into_iter()
        .map(|a| agent_id(a).map_err(serde::de::Error::custom))
        .collect()
}
