//! [`VaultClient`]: one server, one keep-alive connection pool, one token.

use std::fmt;
use std::sync::Arc;

use crate::auth::{Recovery, Session};
use crate::http::{Exchange, Reply, Transport};
use crate::{VaultAuth, VaultConfig, VaultError};

/// A connection to one OpenBao or Vault server: the HTTP agent (one
/// keep-alive pool, a timeout on every call) and the session that keeps a
/// token valid. Cheap to clone; clones share the pool and the token, so a
/// [`VaultProvider`](crate::VaultProvider) and a
/// [`VaultCatalogStore`](crate::VaultCatalogStore) built from one client
/// log in once.
///
/// Every call:
/// - is bounded by the configured timeout;
/// - if idempotent (reads, lists, metadata, logins), is retried after a
///   transient error (sealed, standby, unreachable, timed out, 429, 5xx) a
///   bounded number of times with jittered backoff; writes are not;
/// - on a 403, is retried once if the token turned out to be expired or
///   revoked and a new one was obtained, and otherwise fails with
///   [`VaultError::PermissionDenied`].
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    session: Session,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultClient")
            .field("address", &self.inner.transport.address())
            .field("session", &self.inner.session)
            .finish()
    }
}

impl VaultClient {
    /// A client for the server in `config`, authenticating with `auth`.
    /// Nothing is sent until the first call (or [`login`](Self::login)).
    ///
    /// # Errors
    /// [`VaultError::Config`] when the configuration cannot be used (plain
    /// HTTP not allowed, a bad namespace).
    pub fn new(config: VaultConfig, auth: VaultAuth) -> Result<Self, VaultError> {
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport::new(&config)?,
                session: Session::new(auth),
            }),
        })
    }

    /// The server address.
    pub fn address(&self) -> &str {
        self.inner.transport.address()
    }

    /// Gets a token now (logs in, or reads the token source) instead of at
    /// the first call, so a misconfiguration shows at start-up.
    ///
    /// # Errors
    /// A login or token-source failure.
    pub fn login(&self) -> Result<(), VaultError> {
        self.inner.session.token(&self.inner.transport).map(|_| ())
    }

    /// Sends an authenticated request; see the type's docs for retries and
    /// 403 handling. `Ok` for 2xx, 400 and 404, which the caller reads.
    pub(crate) fn call(&self, exchange: &Exchange<'_>) -> Result<Reply, VaultError> {
        let transport = &self.inner.transport;
        let session = &self.inner.session;
        let mut attempt = 0;
        let mut recovered = false;
        loop {
            let result = session
                .token(transport)
                .and_then(|token| Ok((transport.send(exchange, Some(&token.value))?, token)));
            match result {
                Err(e)
                    if e.is_transient() && exchange.idempotent && transport.may_retry(attempt) =>
                {
                    tracing::debug!(operation = exchange.operation, attempt, error = %e, "retrying");
                    std::thread::sleep(transport.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok((reply, token)) if reply.status == 403 => {
                    let denied = || VaultError::PermissionDenied {
                        operation: exchange.operation,
                        path: exchange.path.to_owned(),
                    };
                    if recovered {
                        return Err(denied());
                    }
                    match session.recover(transport, token.generation, exchange.operation)? {
                        Recovery::Denied => return Err(denied()),
                        Recovery::Retry => recovered = true,
                    }
                }
                Ok((reply, _)) => return Ok(reply),
            }
        }
    }
}
