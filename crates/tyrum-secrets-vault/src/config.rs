//! How to reach the server: address, namespace, TLS, timeouts, retries.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{ExposeSecret, SecretSlice};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};

use crate::VaultError;

/// Default bound on one HTTP exchange (connect, send, receive).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of retries of an idempotent call after a transient error.
pub const DEFAULT_RETRIES: u32 = 3;

/// Where the server is and how to talk to it.
///
/// ```
/// use std::time::Duration;
/// use tyrum_secrets_vault::VaultConfig;
///
/// let config = VaultConfig::new("https://bao.internal:8200")?
///     .namespace("team-a")
///     .timeout(Duration::from_secs(5));
/// // Plain HTTP is refused unless explicitly allowed (dev servers only).
/// assert!(VaultConfig::new("http://127.0.0.1:8200")?.check().is_err());
/// assert!(VaultConfig::new("http://127.0.0.1:8200")?.dangerous_allow_http().check().is_ok());
/// # drop(config);
/// # Ok::<(), tyrum_secrets_vault::VaultError>(())
/// ```
#[derive(Clone)]
pub struct VaultConfig {
    pub(crate) address: String,
    pub(crate) namespace: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) roots: Option<Arc<Vec<Certificate<'static>>>>,
    pub(crate) client_cert: Option<ClientCert>,
    pub(crate) allow_http: bool,
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field(
                "roots",
                &match &self.roots {
                    Some(roots) => format!("{} given CA certificate(s)", roots.len()),
                    None => "platform".to_owned(),
                },
            )
            .field("client_cert", &self.client_cert.is_some())
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl VaultConfig {
    /// A server at `address` (`https://host:8200`; a path after the host
    /// is kept for servers behind a reverse proxy). TLS trusts the
    /// platform's roots until [`ca_pem`](Self::ca_pem) says otherwise.
    ///
    /// # Errors
    /// [`VaultError::Config`] when the address is not `http(s)://host...`
    /// or carries a query, a fragment or credentials.
    pub fn new(address: &str) -> Result<Self, VaultError> {
        let address = address.trim_end_matches('/');
        let rest = address
            .strip_prefix("https://")
            .or_else(|| address.strip_prefix("http://"));
        let bad = |why: &str| VaultError::Config {
            message: format!("the address {address:?} {why}; give it as https://host:port"),
        };
        let Some(rest) = rest else {
            return Err(bad("does not start with https:// or http://"));
        };
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad(
                "has a query, fragment, credentials, space or control character",
            ));
        }
        Ok(Self {
            address: address.to_owned(),
            namespace: None,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_secs(1),
            roots: None,
            client_cert: None,
            allow_http: false,
        })
    }

    /// The server address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `X-Vault-Namespace: namespace` with every request (Vault
    /// Enterprise and OpenBao namespaces).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Bounds every HTTP exchange, connect to last byte (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times an idempotent call (a read, a list, a login) is
    /// retried after a transient error, with jittered exponential backoff
    /// (default 3). Writes are never retried after a transient error: it is
    /// unknown whether they landed.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The backoff before the first retry and its cap (defaults 50 ms and
    /// 1 s); each retry waits a random time up to `base * 2^attempt`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Trusts exactly the CA certificates in `pem` (one or more
    /// `CERTIFICATE` blocks) instead of the platform's roots.
    ///
    /// # Errors
    /// [`VaultError::Config`] when `pem` holds no certificate or does not
    /// parse.
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, VaultError> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item.map_err(|e| config(format!("the CA bundle does not parse: {e}")))? {
                PemItem::Certificate(cert) => certs.push(cert),
                _ => continue,
            }
        }
        if certs.is_empty() {
            return Err(config("the CA bundle holds no CERTIFICATE block"));
        }
        self.roots = Some(Arc::new(certs));
        Ok(self)
    }

    /// [`ca_pem`](Self::ca_pem) from a file.
    ///
    /// # Errors
    /// [`VaultError::Io`] when the file cannot be read, else as
    /// [`ca_pem`](Self::ca_pem).
    pub fn ca_pem_file(self, path: impl AsRef<Path>) -> Result<Self, VaultError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|source| VaultError::Io {
            what: "CA bundle",
            path: path.to_owned(),
            source,
        })?;
        self.ca_pem(&pem)
    }

    /// Presents a client certificate (mutual TLS, for a `cert` auth method
    /// or a listener that requires one): `chain_pem` holds the certificate
    /// chain, `key_pem` its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`VaultError::Config`] when either does not parse.
    pub fn client_cert_pem(
        mut self,
        chain_pem: &[u8],
        key_pem: &SecretSlice<u8>,
    ) -> Result<Self, VaultError> {
        let mut chain = Vec::new();
        for item in ureq::tls::parse_pem(chain_pem) {
            if let PemItem::Certificate(cert) =
                item.map_err(|e| config(format!("the client certificate does not parse: {e}")))?
            {
                chain.push(cert);
            }
        }
        if chain.is_empty() {
            return Err(config(
                "the client certificate PEM holds no CERTIFICATE block",
            ));
        }
        // The parser's error names the PEM section, never key bytes.
        let key = PrivateKey::from_pem(key_pem.expose_secret()).map_err(|_| {
            config("the client key PEM holds no PKCS#8, PKCS#1 or SEC1 private key")
        })?;
        self.client_cert = Some(ClientCert::new_with_certs(&chain, key));
        Ok(self)
    }

    /// Allows a plain `http://` address. Tokens, secret ids and values then
    /// cross the network in clear text: for dev servers on loopback only.
    pub fn dangerous_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Checks that the configuration can be used.
    ///
    /// # Errors
    /// [`VaultError::Config`] for an `http://` address without
    /// [`dangerous_allow_http`](Self::dangerous_allow_http), or a zero
    /// timeout.
    pub fn check(&self) -> Result<(), VaultError> {
        if self.address.starts_with("http://") && !self.allow_http {
            return Err(config(format!(
                "{} is plain HTTP, which sends tokens and values in clear text; use https://, \
                 or call dangerous_allow_http() for a dev server on loopback",
                self.address
            )));
        }
        if self.timeout.is_zero() {
            return Err(config("the timeout is zero; every call would fail"));
        }
        Ok(())
    }
}

fn config(message: impl Into<String>) -> VaultError {
    VaultError::Config {
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            VaultConfig::new("https://bao:8200/").unwrap().address(),
            "https://bao:8200"
        );
        for bad in [
            "bao:8200",
            "ftp://bao",
            "https://",
            "https://user:pw@bao",
            "https://bao/?x",
            "https://bao/#x",
        ] {
            assert!(VaultConfig::new(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn plain_http_needs_the_dangerous_switch() {
        let config = VaultConfig::new("http://127.0.0.1:8200").unwrap();
        let err = config.check().unwrap_err().to_string();
        assert!(err.contains("dangerous_allow_http"), "{err}");
        assert!(config.dangerous_allow_http().check().is_ok());
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused() {
        let config = VaultConfig::new("https://bao").unwrap();
        assert!(config.clone().ca_pem(b"not a pem").is_err());
        assert!(
            config
                .ca_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let config = VaultConfig::new("https://bao").unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("platform"), "{debug}");
        assert!(debug.contains("client_cert: false"), "{debug}");
    }
}
