//! What a secret is for, and the metadata each kind requires.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The kind of a secret. Kinds drive policy (payment instruments are refused
/// unless enabled) and validity (a session cookie must carry an expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecretKind {
    /// A model-provider or service API key.
    ApiKey,
    /// An OAuth access token.
    OauthAccessToken,
    /// An OAuth refresh token.
    OauthRefreshToken,
    /// A bearer token for an HTTP API.
    BearerToken,
    /// A messaging-channel token (bot token, webhook URL token).
    ChannelToken,
    /// A shared secret used to sign or verify webhooks.
    WebhookSecret,
    /// A web session cookie. Always carries an explicit expiry.
    SessionCookie,
    /// A payment instrument (card number, wallet token). Refused unless the
    /// operator enabled payment instruments and a policy rule allows them.
    PaymentInstrument,
    /// A password.
    Password,
    /// Anything else.
    Generic,
}

impl SecretKind {
    /// Every kind, in declaration order.
    pub const ALL: [SecretKind; 10] = [
        SecretKind::ApiKey,
        SecretKind::OauthAccessToken,
        SecretKind::OauthRefreshToken,
        SecretKind::BearerToken,
        SecretKind::ChannelToken,
        SecretKind::WebhookSecret,
        SecretKind::SessionCookie,
        SecretKind::PaymentInstrument,
        SecretKind::Password,
        SecretKind::Generic,
    ];

    /// The snake_case name used in serialized state and policy files.
    pub const fn as_str(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "api_key",
            SecretKind::OauthAccessToken => "oauth_access_token",
            SecretKind::OauthRefreshToken => "oauth_refresh_token",
            SecretKind::BearerToken => "bearer_token",
            SecretKind::ChannelToken => "channel_token",
            SecretKind::WebhookSecret => "webhook_secret",
            SecretKind::SessionCookie => "session_cookie",
            SecretKind::PaymentInstrument => "payment_instrument",
            SecretKind::Password => "password",
            SecretKind::Generic => "generic",
        }
    }

    /// Whether secrets of this kind must carry an explicit expiry.
    pub const fn requires_expiry(self) -> bool {
        matches!(self, SecretKind::SessionCookie)
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind together with the expiry it needs.
///
/// The only constructors check that kinds which require an expiry
/// ([`SecretKind::SessionCookie`]) get one, so a session cookie without an
/// expiry cannot be represented. Constant inputs need no `Result`: each kind
/// without a required expiry has an infallible constructor, and so does any
/// kind given an expiry ([`expiring`](Self::expiring),
/// [`session_cookie`](Self::session_cookie)). Only [`new`](Self::new),
/// whose kind and expiry are both run-time values, can fail.
///
/// ```
/// use std::time::Duration;
/// use tyrum_secrets_core::{KindSpec, SecretKind, Timestamp};
///
/// assert_eq!(KindSpec::api_key().kind(), SecretKind::ApiKey);
/// let in_a_day = Timestamp::now().saturating_add(Duration::from_secs(86_400));
/// let token = KindSpec::bearer_token().with_expiry(in_a_day);
/// assert_eq!(token.expires_at(), Some(in_a_day));
/// assert!(KindSpec::new(SecretKind::SessionCookie, None).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KindSpec {
    kind: SecretKind,
    expires_at: Option<Timestamp>,
}

impl KindSpec {
    /// A kind with an optional expiry.
    ///
    /// # Errors
    /// [`KindError::ExpiryRequired`] when `kind` requires an expiry and
    /// `expires_at` is `None`.
    pub fn new(kind: SecretKind, expires_at: Option<Timestamp>) -> Result<Self, KindError> {
        if kind.requires_expiry() && expires_at.is_none() {
            return Err(KindError::ExpiryRequired { kind });
        }
        Ok(Self { kind, expires_at })
    }

    /// A session cookie, which always expires.
    pub const fn session_cookie(expires_at: Timestamp) -> Self {
        Self::expiring(SecretKind::SessionCookie, expires_at)
    }

    /// Any kind with an expiry: never invalid.
    pub const fn expiring(kind: SecretKind, expires_at: Timestamp) -> Self {
        Self {
            kind,
            expires_at: Some(expires_at),
        }
    }

    /// The same spec with an expiry (replacing any it had).
    pub const fn with_expiry(mut self, expires_at: Timestamp) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// A model-provider or service API key, without expiry.
    pub const fn api_key() -> Self {
        Self::unexpiring(SecretKind::ApiKey)
    }

    /// An OAuth access token, without expiry.
    pub const fn oauth_access_token() -> Self {
        Self::unexpiring(SecretKind::OauthAccessToken)
    }

    /// An OAuth refresh token, without expiry.
    pub const fn oauth_refresh_token() -> Self {
        Self::unexpiring(SecretKind::OauthRefreshToken)
    }

    /// A bearer token for an HTTP API, without expiry.
    pub const fn bearer_token() -> Self {
        Self::unexpiring(SecretKind::BearerToken)
    }

    /// A messaging-channel token, without expiry.
    pub const fn channel_token() -> Self {
        Self::unexpiring(SecretKind::ChannelToken)
    }

    /// A webhook signing secret, without expiry.
    pub const fn webhook_secret() -> Self {
        Self::unexpiring(SecretKind::WebhookSecret)
    }

    /// A payment instrument (still refused unless the policy enables payment instruments), without expiry.
    pub const fn payment_instrument() -> Self {
        Self::unexpiring(SecretKind::PaymentInstrument)
    }

    /// A password, without expiry.
    pub const fn password() -> Self {
        Self::unexpiring(SecretKind::Password)
    }

    /// Any other secret, without expiry.
    pub const fn generic() -> Self {
        Self::unexpiring(SecretKind::Generic)
    }

    /// Only for kinds that do not require an expiry (every caller names one).
    const fn unexpiring(kind: SecretKind) -> Self {
        Self {
            kind,
            expires_at: None,
        }
    }

    /// The kind.
    pub fn kind(&self) -> SecretKind {
        self.kind
    }

    /// When secrets of this spec stop resolving, if ever.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
}

impl<'de> Deserialize<'de> for KindSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            kind: SecretKind,
            expires_at: Option<Timestamp>,
        }
        let raw = Raw::deserialize(deserializer)?;
        KindSpec::new(raw.kind, raw.expires_at).map_err(serde::de::Error::custom)
    }
}

/// A kind's metadata does not meet its rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KindError {
    /// The kind must carry an explicit expiry.
    #[error("a {kind} secret must carry an explicit expiry; set expires_at")]
    ExpiryRequired {
        /// The kind that requires it.
        kind: SecretKind,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_without_expiry_is_refused() {
        let err = KindSpec::new(SecretKind::SessionCookie, None).unwrap_err();
        assert_eq!(
            err,
            KindError::ExpiryRequired {
                kind: SecretKind::SessionCookie
            }
        );
        let json = r#"{"kind":"session_cookie","expires_at":null}"#;
        assert!(serde_json::from_str::<KindSpec>(json).is_err());
    }

    #[test]
    fn other_kinds_need_no_expiry() {
        for kind in SecretKind::ALL {
            let spec = KindSpec::new(kind, None);
            assert_eq!(spec.is_ok(), !kind.requires_expiry(), "{kind}");
        }
    }

    #[test]
    fn infallible_constructors_match_the_checked_one() {
        let unexpiring = [
            KindSpec::api_key(),
            KindSpec::oauth_access_token(),
            KindSpec::oauth_refresh_token(),
            KindSpec::bearer_token(),
            KindSpec::channel_token(),
            KindSpec::webhook_secret(),
            KindSpec::payment_instrument(),
            KindSpec::password(),
            KindSpec::generic(),
        ];
        // Every kind but the one that needs an expiry has one, in order.
        let kinds: Vec<SecretKind> = unexpiring.iter().map(KindSpec::kind).collect();
        let expected: Vec<SecretKind> = SecretKind::ALL
            .into_iter()
            .filter(|k| !k.requires_expiry())
            .collect();
        assert_eq!(kinds, expected);
        for spec in unexpiring {
            assert_eq!(Ok(spec), KindSpec::new(spec.kind(), None));
        }
        let at = Timestamp::from_unix_millis(1_000);
        for kind in SecretKind::ALL {
            assert_eq!(
                Ok(KindSpec::expiring(kind, at)),
                KindSpec::new(kind, Some(at))
            );
        }
        assert_eq!(
            KindSpec::session_cookie(at),
            KindSpec::new(SecretKind::SessionCookie, Some(at)).unwrap()
        );
        assert_eq!(KindSpec::api_key().with_expiry(at).expires_at(), Some(at));
    }

    #[test]
    fn kind_names_round_trip_through_serde() {
        for kind in SecretKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<SecretKind>(&json).unwrap(), kind);
        }
    }
}
