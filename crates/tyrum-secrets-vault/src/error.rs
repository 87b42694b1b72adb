//! The OpenBao client's errors and how they map onto the provider and
//! catalog errors.
//!
//! No message ever carries a response body (it may hold a value, a token or
//! a secret id), a token, a secret id or a value: only the operation, the
//! KV path (metadata), the HTTP status and a fixed reason.

use std::path::PathBuf;
use std::time::Duration;

use tyrum_secrets_core::{CatalogError, ProviderError};

/// An OpenBao (or Vault) request failed. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The client configuration cannot be used.
    #[error("invalid OpenBao configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A locator, mount or prefix cannot be a KV path.
    #[error("{what} cannot be used as an OpenBao KV path: {reason}")]
    InvalidPath {
        /// The text refused (a locator, a mount or prefix; never secret).
        what: String,
        /// Why.
        reason: &'static str,
    },
    /// The server answered 503: it is sealed, or a standby that does not
    /// serve requests. Transient: retry after it is unsealed or the active
    /// node answers.
    #[error(
        "OpenBao at {address} is sealed or on standby (HTTP 503) during {operation}; \
         unseal it or point the client at the active node, then retry"
    )]
    Sealed {
        /// What the client was doing.
        operation: &'static str,
        /// The server address.
        address: String,
    },
    /// The server could not be reached, did not answer in time, or answered
    /// 429 or 5xx. Transient.
    #[error("OpenBao at {address} is unavailable during {operation}: {reason}; retry later")]
    Unavailable {
        /// What the client was doing.
        operation: &'static str,
        /// The server address.
        address: String,
        /// What happened (a status, "connection refused", a timeout).
        reason: String,
    },
    /// The server answered 403 to a valid token: its policies do not allow
    /// the operation on this path. Not retried.
    #[error(
        "OpenBao denied {operation} on {path} (HTTP 403): the token's policies do not \
         allow it; grant the capability in a policy of this role, or use another role"
    )]
    PermissionDenied {
        /// What the client was doing.
        operation: &'static str,
        /// The API path (metadata, never a value).
        path: String,
    },
    /// The token was rejected (expired or revoked) and logging in again, or
    /// re-reading the token source, did not give a usable one.
    #[error(
        "OpenBao rejected the client token (expired or revoked) during {operation}, and \
         {recovery}; renew the credentials and retry"
    )]
    TokenRejected {
        /// What the client was doing.
        operation: &'static str,
        /// What was tried to recover.
        recovery: &'static str,
    },
    /// A login was refused.
    #[error("OpenBao {method} login at auth/{mount} failed: {reason}")]
    Login {
        /// The auth method (`approle`, `kubernetes`/`jwt`).
        method: &'static str,
        /// The auth mount.
        mount: String,
        /// Why, with what to check (never the credentials).
        reason: String,
    },
    /// Another writer changed the path first (a lost check-and-set);
    /// nothing was written.
    #[error(
        "another writer changed {path} first during {operation}; nothing was written, \
         re-read and retry"
    )]
    Conflict {
        /// What the client was doing.
        operation: &'static str,
        /// The KV path.
        path: String,
    },
    /// The TLS connection failed (an untrusted or mismatched certificate).
    #[error(
        "TLS with OpenBao at {address} failed: {reason}; give the CA that signed the \
         server's certificate (VaultConfig::ca_pem) or check the address's host name"
    )]
    Tls {
        /// The server address.
        address: String,
        /// What rustls reported (certificate problems; never data).
        reason: String,
    },
    /// The server refused this client's TLS certificate, or its lack of
    /// one: the listener requires mutual TLS
    /// (`tls_require_and_verify_client_cert`) and the client sent no
    /// certificate, or one not signed by a CA the listener trusts. Not
    /// transient: retrying with the same certificate cannot help.
    #[error(
        "OpenBao at {address} refused the TLS handshake over this client's certificate \
         ({reason}): the listener requires a client certificate signed by a CA it trusts; \
         give one with VaultConfig::client_cert_pem, issued by the CA in the listener's \
         tls_client_ca_file"
    )]
    ClientCertRefused {
        /// The server address.
        address: String,
        /// The TLS alert the server sent (never data).
        reason: String,
    },
    /// The server answered in a way this client does not understand.
    #[error(
        "OpenBao answered {operation} with {what}; check that the mount is a KV version 2 \
         engine and the server is OpenBao or Vault"
    )]
    Protocol {
        /// What the client was doing.
        operation: &'static str,
        /// What was unexpected (a status, a missing field; never a body).
        what: String,
    },
    /// Data stored at a path does not have the shape tyrum-secrets uses.
    #[error("the data at {path} is not in the shape tyrum-secrets stores: {reason}")]
    Corrupt {
        /// The KV path.
        path: String,
        /// What is wrong (never the data).
        reason: String,
    },
    /// A token or service-account JWT file could not be read.
    #[error("cannot read the {what} file {path}: {source}")]
    Io {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl VaultError {
    /// Whether a retry of the same call might succeed (sealed, standby,
    /// unreachable, timed out, 429, 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            VaultError::Sealed { .. } | VaultError::Unavailable { .. }
        )
    }

    pub(crate) fn timeout(operation: &'static str, address: &str, timeout: Duration) -> Self {
        VaultError::Unavailable {
            operation,
            address: address.to_owned(),
            reason: format!("no answer within {timeout:?}"),
        }
    }
}

impl From<VaultError> for ProviderError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Sealed { .. } | VaultError::Unavailable { .. } => {
                ProviderError::Unavailable {
                    message: error.to_string(),
                }
            }
            VaultError::PermissionDenied { .. }
            | VaultError::TokenRejected { .. }
            | VaultError::Login { .. }
            | VaultError::ClientCertRefused { .. } => ProviderError::PermissionDenied {
                message: error.to_string(),
            },
            VaultError::Corrupt { .. } => ProviderError::Corrupt {
                message: error.to_string(),
            },
            VaultError::Io { what, path, source } => ProviderError::Io {
                context: format!("reading the {what} file {}", path.display()),
                source,
            },
            VaultError::Config { .. }
            | VaultError::InvalidPath { .. }
            | VaultError::Conflict { .. }
            | VaultError::Tls { .. }
            | VaultError::Protocol { .. } => ProviderError::Backend {
                message: error.to_string(),
                source: None,
            },
        }
    }
}

impl From<VaultError> for CatalogError {
    /// Backend failures of the shared catalog store arrive as
    /// [`CatalogError::Provider`] with the typed [`ProviderError`]
    /// ([`ProviderError::Unavailable`] is transient), so callers match one
    /// set of kinds whichever side of the catalog failed.
    fn from(error: VaultError) -> Self {
        CatalogError::Provider(error.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_and_unavailable_are_transient_provider_errors() {
        for error in [
            VaultError::Sealed {
                operation: "read",
                address: "https://bao:8200".into(),
            },
            VaultError::timeout("read", "https://bao:8200", Duration::from_secs(3)),
        ] {
            assert!(error.is_transient());
            let provider: ProviderError = error.into();
            assert!(provider.is_transient(), "{provider}");
        }
    }

    #[test]
    fn denials_are_permission_denied_and_not_transient() {
        let error = VaultError::PermissionDenied {
            operation: "read",
            path: "secret/data/x".into(),
        };
        assert!(!error.is_transient());
        assert!(matches!(
            ProviderError::from(error),
            ProviderError::PermissionDenied { .. }
        ));
    }
}
