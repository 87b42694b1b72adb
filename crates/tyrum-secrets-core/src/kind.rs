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
/// expiry cannot be represented.
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
    pub fn session_cookie(expires_at: Timestamp) -> Self {
        Self {
            kind: SecretKind::SessionCookie,
            expires_at: Some(expires_at),
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
    fn kind_names_round_trip_through_serde() {
        for kind in SecretKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<SecretKind>(&json).unwrap(), kind);
        }
    }
}
