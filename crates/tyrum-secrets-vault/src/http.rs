//! One HTTP exchange with the server: the ureq agent (one keep-alive pool),
//! the headers, the timeout, the mapping of transport failures and statuses
//! to [`VaultError`], and response bodies read into memory that is wiped.

use std::io::Read as _;
use std::time::Duration;

use tyrum_secrets_core::{ExposeSecret, SecretString};
use ureq::http::HeaderValue;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use zeroize::Zeroizing;

use crate::resolve::CachingResolver;
use crate::{VaultConfig, VaultError};

/// The largest response body read (a 1 MiB value is ~1.4 MiB of base64).
const MAX_BODY: u64 = 64 << 20;

/// The HTTP method of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// One request: where, what, and how to describe it in errors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exchange<'a> {
    /// Named in errors: "read", "write", "login"...
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    /// The API path after `/v1/`, percent-encoded.
    pub(crate) path: &'a str,
    /// A query: `("version", "3")`, `("list", "true")`.
    pub(crate) query: Option<(&'static str, &'a str)>,
    /// A JSON body (may hold a value or a credential; never logged).
    pub(crate) body: Option<&'a [u8]>,
    /// Whether repeating the request cannot change the outcome (reads,
    /// lists, logins): only these are retried after a transient error.
    pub(crate) idempotent: bool,
}

impl<'a> Exchange<'a> {
    pub(crate) fn get(operation: &'static str, path: &'a str) -> Self {
        Self {
            operation,
            method: Method::Get,
            path,
            query: None,
            body: None,
            idempotent: true,
        }
    }

    pub(crate) fn post(operation: &'static str, path: &'a str, body: &'a [u8]) -> Self {
        Self {
            operation,
            method: Method::Post,
            path,
            query: None,
            body: Some(body),
            idempotent: false,
        }
    }

    pub(crate) fn query(mut self, key: &'static str, value: &'a str) -> Self {
        self.query = Some((key, value));
        self
    }

    pub(crate) fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

/// A response the caller interprets: 2xx, 400, 403 or 404. Other statuses
/// are errors. The body is wiped on drop.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl Reply {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The agent and what every request carries.
pub(crate) struct Transport {
    agent: ureq::Agent,
    resolver: CachingResolver,
    address: String,
    namespace: Option<HeaderValue>,
    timeout: Duration,
    retries: u32,
    backoff_base: Duration,
    backoff_max: Duration,
}

impl Transport {
    pub(crate) fn new(config: &VaultConfig) -> Result<Self, VaultError> {
        config.check()?;
        let roots = match &config.roots {
            Some(certs) => RootCerts::Specific(certs.clone()),
            None => RootCerts::PlatformVerifier,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .client_cert(config.client_cert.clone())
            .build();
        let config_built = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!config.allow_http)
            .timeout_global(Some(config.timeout))
            // A redirect would carry the token to another host.
            .max_redirects(0)
            .max_idle_connections_per_host(16)
            .user_agent(concat!("tyrum-secrets-vault/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        let resolver = CachingResolver::default();
        let agent = ureq::Agent::with_parts(
            config_built,
            ureq::unversioned::transport::DefaultConnector::new(),
            resolver.clone(),
        );
        let namespace = match &config.namespace {
            Some(ns) => Some(HeaderValue::from_str(ns).map_err(|_| VaultError::Config {
                message: "the namespace holds characters not allowed in an HTTP header".into(),
            })?),
            None => None,
        };
        Ok(Self {
            agent,
            resolver,
            address: config.address.clone(),
            namespace,
            timeout: config.timeout,
            retries: config.retries,
            backoff_base: config.backoff_base,
            backoff_max: config.backoff_max,
        })
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// [`send`](Self::send), retried after transient errors with jittered
    /// backoff when the exchange is idempotent.
    pub(crate) fn send_retrying(
        &self,
        exchange: &Exchange<'_>,
        token: Option<&SecretString>,
    ) -> Result<Reply, VaultError> {
        let mut attempt = 0;
        loop {
            match self.send(exchange, token) {
                Err(e) if e.is_transient() && exchange.idempotent && attempt < self.retries => {
                    tracing::debug!(operation = exchange.operation, attempt, error = %e, "retrying");
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// The wait before retry number `attempt` (from 0).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        backoff(attempt, self.backoff_base, self.backoff_max)
    }

    /// Whether an idempotent call may be retried after `attempt` retries.
    pub(crate) fn may_retry(&self, attempt: u32) -> bool {
        attempt < self.retries
    }

    /// Sends one request. `Ok` for 2xx, 400, 403 and 404; 503 is
    /// [`VaultError::Sealed`], 429 and 5xx [`VaultError::Unavailable`],
    /// anything else [`VaultError::Protocol`]. Never retries.
    pub(crate) fn send(
        &self,
        exchange: &Exchange<'_>,
        token: Option<&SecretString>,
    ) -> Result<Reply, VaultError> {
        let mut url = format!("{}/v1/{}", self.address, exchange.path);
        if let Some((key, value)) = exchange.query {
            url.push('?');
            url.push_str(key);
            url.push('=');
            url.push_str(value);
        }
        let token = match token {
            Some(token) => {
                let mut value = HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                    VaultError::Config {
                        message: "the token holds characters not allowed in an HTTP header; \
                                  check the token source"
                            .into(),
                    }
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let result = match (exchange.method, exchange.body) {
            (Method::Get, _) => {
                let mut request = self.agent.get(&url).header("X-Vault-Request", "true");
                if let Some(token) = token {
                    request = request.header("X-Vault-Token", token);
                }
                if let Some(ns) = &self.namespace {
                    request = request.header("X-Vault-Namespace", ns.clone());
                }
                request.call()
            }
            (Method::Post, body) => {
                let mut request = self
                    .agent
                    .post(&url)
                    .header("X-Vault-Request", "true")
                    .content_type("application/json");
                if let Some(token) = token {
                    request = request.header("X-Vault-Token", token);
                }
                if let Some(ns) = &self.namespace {
                    request = request.header("X-Vault-Namespace", ns.clone());
                }
                request.send(body.unwrap_or(b"{}"))
            }
        };
        let response = result.map_err(|e| {
            // The server may have moved: look its name up again next time.
            self.resolver.forget();
            self.transport_error(exchange.operation, e)
        })?;
        let status = response.status().as_u16();
        let body = read_wiped(response.into_body())
            .map_err(|e| self.transport_error(exchange.operation, e))?;
        match status {
            200..=299 | 400 | 403 | 404 => Ok(Reply { status, body }),
            503 => Err(VaultError::Sealed {
                operation: exchange.operation,
                address: self.address.clone(),
            }),
            429 | 500..=599 => Err(VaultError::Unavailable {
                operation: exchange.operation,
                address: self.address.clone(),
                reason: format!("HTTP {status}"),
            }),
            300..=399 => Err(VaultError::Protocol {
                operation: exchange.operation,
                what: format!(
                    "a redirect (HTTP {status}); point the client at the active node's address"
                ),
            }),
            _ => Err(VaultError::Protocol {
                operation: exchange.operation,
                what: format!("HTTP {status}"),
            }),
        }
    }

    fn transport_error(&self, operation: &'static str, error: ureq::Error) -> VaultError {
        use std::io::ErrorKind;
        let unavailable = |reason: &str| VaultError::Unavailable {
            operation,
            address: self.address.clone(),
            reason: reason.to_owned(),
        };
        match error {
            ureq::Error::Timeout(_) => VaultError::timeout(operation, &self.address, self.timeout),
            ureq::Error::Io(e) => match e.kind() {
                ErrorKind::ConnectionRefused => unavailable("connection refused"),
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
                | ErrorKind::NotConnected => unavailable("the connection was lost"),
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    VaultError::timeout(operation, &self.address, self.timeout)
                }
                // rustls reports certificate failures as InvalidData
                // carrying its error, which names the certificate problem.
                ErrorKind::InvalidData => self.tls_error(
                    e.get_ref()
                        .map_or_else(|| "invalid data".to_owned(), ToString::to_string),
                ),
                kind => unavailable(&format!("network error ({kind})")),
            },
            ureq::Error::HostNotFound => unavailable("the host name does not resolve"),
            ureq::Error::ConnectionFailed => unavailable("the connection failed"),
            ureq::Error::Tls(reason) => self.tls_error(reason.to_owned()),
            ureq::Error::Rustls(e) => self.tls_error(e.to_string()),
            ureq::Error::BodyExceedsLimit(limit) => VaultError::Protocol {
                operation,
                what: format!("a response larger than {limit} bytes"),
            },
            ureq::Error::Protocol(_) => VaultError::Protocol {
                operation,
                what: "malformed HTTP".to_owned(),
            },
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => VaultError::Config {
                message: format!("the request URL for {operation} is not valid; check the address"),
            },
            _ => unavailable("the HTTP client failed"),
        }
    }

    /// A TLS failure: [`VaultError::ClientCertRefused`] when the server
    /// refused the client's certificate, else [`VaultError::Tls`].
    fn tls_error(&self, reason: String) -> VaultError {
        let address = self.address.clone();
        if refuses_client_cert(&reason) {
            VaultError::ClientCertRefused { address, reason }
        } else {
            VaultError::Tls { address, reason }
        }
    }
}

/// Whether rustls's `reason` is a certificate alert received from the
/// server. An alert the server sends is about what this client sent, so a
/// certificate alert means the server refused the client's certificate (or
/// its absence); the client's own verdict on the server's certificate is an
/// "invalid peer certificate" error instead.
fn refuses_client_cert(reason: &str) -> bool {
    reason
        .strip_prefix("received fatal alert: ")
        .is_some_and(|alert| {
            matches!(
                alert.trim(),
                "CertificateRequired"
                    | "BadCertificate"
                    | "UnknownCA"
                    | "CertificateUnknown"
                    | "UnsupportedCertificate"
                    | "CertificateExpired"
                    | "CertificateRevoked"
                    | "AccessDenied"
            )
        })
}

/// Reads a body into memory that is wiped on drop, also while it grows.
fn read_wiped(body: ureq::Body) -> Result<Zeroizing<Vec<u8>>, ureq::Error> {
    let hint = body
        .content_length()
        .unwrap_or(0)
        .min(MAX_BODY)
        .try_into()
        .unwrap_or(0);
    let mut reader = body.into_with_config().limit(MAX_BODY).reader();
    let mut out = Zeroizing::new(Vec::with_capacity(hint.max(1024)));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = match reader.read(&mut chunk[..]) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ureq::Error::from(e)),
        };
        if out.len() + n > out.capacity() {
            let mut grown = Zeroizing::new(Vec::with_capacity((out.len() + n) * 2));
            grown.extend_from_slice(&out);
            out = grown; // the old buffer is wiped as it drops
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The error strings of an error response (`{"errors": [...]}`), for
/// recognising a case; never put in a message.
pub(crate) fn error_strings(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default()
}

/// A random duration in `0..=min(max, base * 2^attempt)` (full jitter).
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let window = base
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(max);
    let mut bytes = [0u8; 4];
    // Without randomness, wait the whole window: slower, still bounded.
    let fraction = getrandom::fill(&mut bytes).map_or(1.0, |()| {
        f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
    });
    window.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_within_its_window() {
        let base = Duration::from_millis(50);
        let max = Duration::from_secs(1);
        for attempt in 0..40 {
            let wait = backoff(attempt, base, max);
            let window = (base * 2u32.saturating_pow(attempt.min(16))).min(max);
            assert!(wait <= window, "attempt {attempt}: {wait:?} > {window:?}");
        }
    }

    #[test]
    fn only_certificate_alerts_from_the_server_blame_the_client_certificate() {
        for alert in ["CertificateRequired", "UnknownCA", "BadCertificate"] {
            assert!(
                refuses_client_cert(&format!("received fatal alert: {alert}")),
                "{alert}"
            );
        }
        for reason in [
            "received fatal alert: HandshakeFailure",
            "received fatal alert: ProtocolVersion",
            "invalid peer certificate: UnknownIssuer",
            "invalid data",
            "UnknownCA",
        ] {
            assert!(!refuses_client_cert(reason), "{reason}");
        }
    }

    #[test]
    fn error_strings_are_read_from_error_bodies_only() {
        assert_eq!(
            error_strings(br#"{"errors":["check-and-set parameter did not match"]}"#),
            vec!["check-and-set parameter did not match".to_owned()]
        );
        assert!(error_strings(b"not json").is_empty());
    }
}
