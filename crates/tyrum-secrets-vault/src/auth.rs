//! Authentication: where the client token comes from, and keeping it
//! valid.
//!
//! A [`VaultAuth`] says how to get a token: a given token (a
//! [`SecretString`], a file an agent keeps fresh, or another provider), an
//! AppRole login, or a Kubernetes service-account login. The session in a
//! [`VaultClient`](crate::VaultClient) then:
//!
//! - renews a renewable token (`auth/token/renew-self`) once two thirds of
//!   its TTL have passed, and logs in again instead when renewal is refused
//!   or capped by the token's max TTL;
//! - on a 403, asks the server whether the token itself is still valid
//!   (`auth/token/lookup-self`): if it is, the 403 is a policy denial and
//!   is returned as such; if not (expired, revoked), it logs in again (or
//!   re-reads the token source) once and the request is retried once;
//! - does all of this one thread at a time per client: threads that hit
//!   the same expired token wait for one login and use its token (no
//!   thundering herd of logins).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tyrum_secrets_core::{ExposeSecret, Locator, SecretProvider, SecretString, VersionSelector};
use zeroize::Zeroizing;

use crate::VaultError;
use crate::http::{Exchange, Reply, Transport};
use crate::wire::{AuthResponse, LookupResponse};

/// Where the pod's service-account token is mounted in Kubernetes.
pub const KUBERNETES_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How the client gets its token. `Debug` names the method, mount and role,
/// never a token, secret id or JWT.
///
/// ```
/// use tyrum_secrets_vault::VaultAuth;
/// use tyrum_secrets_core::SecretString;
///
/// let approle = VaultAuth::app_role("worker-role-id", SecretString::from("s3cr3t-id".to_owned()));
/// let pod = VaultAuth::kubernetes("tyrum-worker").at_mount("kubernetes-prod");
/// assert!(!format!("{approle:?}").contains("s3cr3t-id"));
/// # drop(pod);
/// ```
#[derive(Clone)]
pub struct VaultAuth {
    method: Method,
}

#[derive(Clone)]
enum Method {
    Token(TokenSource),
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Arc<SecretString>,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt_path: PathBuf,
    },
}

#[derive(Clone)]
enum TokenSource {
    Value(Arc<SecretString>),
    File(PathBuf),
    Provider(Arc<dyn SecretProvider>, Locator),
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.method {
            Method::Token(TokenSource::Value(_)) => f.write_str("VaultAuth::Token(given)"),
            Method::Token(TokenSource::File(path)) => {
                write!(f, "VaultAuth::Token(file {})", path.display())
            }
            Method::Token(TokenSource::Provider(_, locator)) => {
                write!(f, "VaultAuth::Token(provider locator {locator})")
            }
            Method::AppRole { mount, .. } => write!(f, "VaultAuth::AppRole(auth/{mount})"),
            Method::Kubernetes { mount, role, .. } => {
                write!(f, "VaultAuth::Kubernetes(auth/{mount}, role {role})")
            }
        }
    }
}

impl VaultAuth {
    /// A token given directly. It cannot be replaced: once it expires or
    /// is revoked, calls fail with [`VaultError::TokenRejected`].
    pub fn token(token: SecretString) -> Self {
        Self {
            method: Method::Token(TokenSource::Value(Arc::new(token))),
        }
    }

    /// A token read from `path` (surrounding whitespace ignored), re-read
    /// when the server rejects the one in use: the file an OpenBao agent
    /// sink keeps fresh.
    pub fn token_file(path: impl Into<PathBuf>) -> Self {
        Self {
            method: Method::Token(TokenSource::File(path.into())),
        }
    }

    /// A token read from another provider (latest version, UTF-8),
    /// re-read when the server rejects the one in use.
    pub fn token_from(provider: Arc<dyn SecretProvider>, locator: Locator) -> Self {
        Self {
            method: Method::Token(TokenSource::Provider(provider, locator)),
        }
    }

    /// AppRole login (`auth/approle/login`) with a role id and a secret id.
    pub fn app_role(role_id: impl Into<String>, secret_id: SecretString) -> Self {
        Self {
            method: Method::AppRole {
                mount: "approle".into(),
                role_id: role_id.into(),
                secret_id: Arc::new(secret_id),
            },
        }
    }

    /// Kubernetes service-account login (`auth/kubernetes/login`) as
    /// `role`, with the pod's token from [`KUBERNETES_TOKEN_PATH`], read
    /// afresh at each login (the kubelet rotates it).
    pub fn kubernetes(role: impl Into<String>) -> Self {
        Self::kubernetes_with_token_file(role, KUBERNETES_TOKEN_PATH)
    }

    /// [`kubernetes`](Self::kubernetes) with the service-account token read
    /// from `jwt_path`.
    pub fn kubernetes_with_token_file(
        role: impl Into<String>,
        jwt_path: impl Into<PathBuf>,
    ) -> Self {
        Self {
            method: Method::Kubernetes {
                mount: "kubernetes".into(),
                role: role.into(),
                jwt_path: jwt_path.into(),
            },
        }
    }

    /// Logs in at `auth/<mount>` instead of the method's default mount
    /// (`approle`, `kubernetes`); for a Kubernetes login this may be a
    /// `jwt` method configured with the cluster's signing keys. No effect on
    /// token sources.
    pub fn at_mount(mut self, mount: impl Into<String>) -> Self {
        match &mut self.method {
            Method::AppRole { mount: m, .. } | Method::Kubernetes { mount: m, .. } => {
                *m = mount.into();
            }
            Method::Token(_) => {}
        }
        self
    }
}

/// A token in use and the login or source read that produced it.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: Arc<SecretString>,
    pub(crate) generation: u64,
}

/// What a 403 turned out to be.
pub(crate) enum Recovery {
    /// The token is valid: the policy denies the request.
    Denied,
    /// A new token is in place: retry once.
    Retry,
}

#[derive(Clone, Copy)]
struct Lease {
    obtained: Instant,
    /// Zero: never expires.
    ttl: Duration,
    renewable: bool,
}

impl Lease {
    fn renewal_due(&self, now: Instant) -> bool {
        !self.ttl.is_zero() && now.duration_since(self.obtained) >= self.ttl * 2 / 3
    }

    fn expired(&self, now: Instant) -> bool {
        !self.ttl.is_zero() && now.duration_since(self.obtained) >= self.ttl
    }
}

#[derive(Default)]
struct State {
    token: Option<Arc<SecretString>>,
    generation: u64,
    lease: Option<Lease>,
}

/// The token of one client, kept valid; see the module docs.
pub(crate) struct Session {
    auth: VaultAuth,
    state: Mutex<State>,
    /// Held while logging in, renewing or recovering: one at a time.
    refresh: Mutex<()>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("auth", &self.auth)
            .field("generation", &self.lock().generation)
            .finish()
    }
}

impl Session {
    pub(crate) fn new(auth: VaultAuth) -> Self {
        Self {
            auth,
            state: Mutex::new(State::default()),
            refresh: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update replaces whole fields after the network call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self, now: Instant) -> Option<Token> {
        let state = self.lock();
        let token = state.token.as_ref()?;
        if state.lease.is_some_and(|l| l.renewal_due(now)) {
            return None;
        }
        Some(Token {
            value: Arc::clone(token),
            generation: state.generation,
        })
    }

    /// A token to send: the current one, or one obtained or renewed now.
    pub(crate) fn token(&self, transport: &Transport) -> Result<Token, VaultError> {
        if let Some(token) = self.current(Instant::now()) {
            return Ok(token);
        }
        let _one_at_a_time = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(token) = self.current(now) {
            return Ok(token); // another thread renewed or logged in
        }
        let (token, lease) = {
            let state = self.lock();
            (state.token.clone(), state.lease)
        };
        match (token, lease) {
            (Some(token), Some(lease)) if lease.renewable => match self.renew(transport, &token) {
                Ok(renewed) => {
                    let mut state = self.lock();
                    // Capped by the max TTL: log in afresh next time rather
                    // than renew a shrinking lease.
                    let capped = renewed.ttl < lease.ttl && self.can_log_in();
                    state.lease = Some(Lease {
                        renewable: renewed.renewable && !capped,
                        ..renewed
                    });
                    tracing::debug!(ttl_secs = renewed.ttl.as_secs(), "OpenBao token renewed");
                }
                Err(e) if e.is_transient() && !lease.expired(now) => {
                    tracing::debug!(error = %e, "OpenBao token renewal failed; the token is still valid");
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(_) => self.obtain(transport)?,
            },
            (Some(_), Some(_)) if !self.can_log_in() => {
                // A given token that cannot be renewed: use it until the
                // server says otherwise.
                let mut state = self.lock();
                state.lease = None;
            }
            _ => self.obtain(transport)?,
        }
        let state = self.lock();
        let token = state.token.as_ref().ok_or(VaultError::TokenRejected {
            operation: "login",
            recovery: "no token was obtained",
        })?;
        Ok(Token {
            value: Arc::clone(token),
            generation: state.generation,
        })
    }

    /// After a 403 with the token of `generation`: decides whether it was a
    /// denial or a dead token, and in the second case gets a new token.
    pub(crate) fn recover(
        &self,
        transport: &Transport,
        generation: u64,
        operation: &'static str,
    ) -> Result<Recovery, VaultError> {
        let _one_at_a_time = self.refresh.lock().unwrap_or_else(|p| p.into_inner());
        let current = {
            let state = self.lock();
            if state.generation != generation {
                return Ok(Recovery::Retry); // another thread already replaced it
            }
            state.token.clone()
        };
        if let Some(token) = &current {
            let lookup = transport.send_retrying(
                &Exchange::get("token lookup", "auth/token/lookup-self"),
                Some(token),
            )?;
            if lookup.is_success() {
                return Ok(Recovery::Denied);
            }
        }
        tracing::debug!(
            operation,
            "OpenBao rejected the client token; obtaining a new one"
        );
        self.obtain(transport)?;
        let state = self.lock();
        let same = match (&current, &state.token) {
            (Some(old), Some(new)) => old.expose_secret() == new.expose_secret(),
            _ => false,
        };
        if same {
            return Err(VaultError::TokenRejected {
                operation,
                recovery: "re-reading the token source gave the same token",
            });
        }
        Ok(Recovery::Retry)
    }

    fn can_log_in(&self) -> bool {
        !matches!(self.auth.method, Method::Token(TokenSource::Value(_)))
    }

    /// Logs in, or reads the token source, and installs the token.
    fn obtain(&self, transport: &Transport) -> Result<(), VaultError> {
        let (token, lease) = match &self.auth.method {
            Method::Token(source) => {
                let token = Arc::new(read_source(source)?);
                let lease = lookup_lease(transport, &token)?;
                (token, lease)
            }
            Method::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                #[derive(Serialize)]
                struct Body<'a> {
                    role_id: &'a str,
                    secret_id: &'a str,
                }
                let body = json_wiped(
                    &Body {
                        role_id,
                        secret_id: secret_id.expose_secret(),
                    },
                    role_id.len() + secret_id.expose_secret().len(),
                );
                login(transport, "approle", mount, &body)?
            }
            Method::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt = read_trimmed(jwt_path, "service-account token")?;
                #[derive(Serialize)]
                struct Body<'a> {
                    role: &'a str,
                    jwt: &'a str,
                }
                let body = json_wiped(
                    &Body {
                        role,
                        jwt: jwt.expose_secret(),
                    },
                    role.len() + jwt.expose_secret().len(),
                );
                login(transport, "kubernetes", mount, &body)?
            }
        };
        let mut state = self.lock();
        state.token = Some(token);
        state.lease = lease;
        state.generation += 1;
        Ok(())
    }

    fn renew(&self, transport: &Transport, token: &SecretString) -> Result<Lease, VaultError> {
        let reply = transport.send(
            &Exchange::post("token renewal", "auth/token/renew-self", b"{}"),
            Some(token),
        )?;
        if !reply.is_success() {
            return Err(VaultError::TokenRejected {
                operation: "token renewal",
                recovery: "renewal was refused",
            });
        }
        let (_, lease) = parse_auth(&reply, "token renewal", false)?;
        Ok(lease)
    }
}

/// Posts a login and returns the token and its lease.
fn login(
    transport: &Transport,
    method: &'static str,
    mount: &str,
    body: &[u8],
) -> Result<(Arc<SecretString>, Option<Lease>), VaultError> {
    let path = format!("auth/{mount}/login");
    let reply =
        transport.send_retrying(&Exchange::post("login", &path, body).idempotent(), None)?;
    let refused = |reason: String| VaultError::Login {
        method,
        mount: mount.to_owned(),
        reason,
    };
    match reply.status {
        200..=299 => {}
        400 | 403 => {
            return Err(refused(format!(
                "the credentials were refused (HTTP {}); check the role, that the credentials \
                 are current and bound to it",
                reply.status
            )));
        }
        404 => {
            return Err(refused(
                "no such auth method or role (HTTP 404); check the auth mount and role name".into(),
            ));
        }
        status => return Err(refused(format!("HTTP {status}"))),
    }
    let (token, lease) = parse_auth(&reply, "login", true)?;
    let token = token.ok_or_else(|| refused("the response carries no client token".into()))?;
    tracing::debug!(
        method,
        mount,
        ttl_secs = lease.ttl.as_secs(),
        "logged in to OpenBao"
    );
    Ok((token, Some(lease)))
}

fn parse_auth(
    reply: &Reply,
    operation: &'static str,
    want_token: bool,
) -> Result<(Option<Arc<SecretString>>, Lease), VaultError> {
    let protocol = |what: &str| VaultError::Protocol {
        operation,
        what: what.to_owned(),
    };
    let parsed: AuthResponse<'_> = serde_json::from_slice(&reply.body)
        .map_err(|_| protocol("a body that is not an auth response"))?;
    let auth = parsed
        .auth
        .ok_or_else(|| protocol("a response without `auth`"))?;
    let token = if want_token {
        auth.client_token
            .as_ref()
            .map(|t| Arc::new(SecretString::from(t.as_str().to_owned())))
    } else {
        None
    };
    Ok((
        token,
        Lease {
            obtained: Instant::now(),
            ttl: Duration::from_secs(auth.lease_duration),
            renewable: auth.renewable,
        },
    ))
}

/// The lease of a given token, if the token may look itself up.
fn lookup_lease(transport: &Transport, token: &SecretString) -> Result<Option<Lease>, VaultError> {
    let reply = transport.send_retrying(
        &Exchange::get("token lookup", "auth/token/lookup-self"),
        Some(token),
    )?;
    if !reply.is_success() {
        // Invalid, or not allowed to look itself up: the first real call
        // finds out which.
        return Ok(None);
    }
    let parsed: LookupResponse =
        serde_json::from_slice(&reply.body).map_err(|_| VaultError::Protocol {
            operation: "token lookup",
            what: "a body that is not a token lookup".into(),
        })?;
    Ok(Some(Lease {
        obtained: Instant::now(),
        ttl: Duration::from_secs(parsed.data.ttl),
        renewable: parsed.data.renewable,
    }))
}

fn read_source(source: &TokenSource) -> Result<SecretString, VaultError> {
    match source {
        TokenSource::Value(token) => Ok(SecretString::from(token.expose_secret().to_owned())),
        TokenSource::File(path) => read_trimmed(path, "token"),
        TokenSource::Provider(provider, locator) => {
            let secret = provider
                .read(locator, VersionSelector::Latest)
                .map_err(|e| VaultError::TokenRejected {
                    operation: "token read",
                    recovery: if e.is_transient() {
                        "the provider holding the token is unavailable"
                    } else {
                        "the provider holding the token could not read it"
                    },
                })?;
            let text = std::str::from_utf8(secret.value.expose_secret()).map_err(|_| {
                VaultError::TokenRejected {
                    operation: "token read",
                    recovery: "the token in the provider is not UTF-8",
                }
            })?;
            Ok(SecretString::from(text.trim().to_owned()))
        }
    }
}

fn read_trimmed(path: &Path, what: &'static str) -> Result<SecretString, VaultError> {
    use std::io::Read as _;
    let io = |source| VaultError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // Sized up front so the buffer never reallocates (leaving a copy).
    let mut text = Zeroizing::new(String::with_capacity(
        usize::try_from(len).unwrap_or(0).saturating_add(1),
    ));
    file.read_to_string(&mut text).map_err(io)?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// A JSON body of strings totalling `len` bytes, in memory that is wiped
/// on drop.
fn json_wiped(body: &impl Serialize, len: usize) -> Zeroizing<Vec<u8>> {
    // Escaping grows a byte to at most six; sized so the Vec never
    // reallocates (leaving an unwiped copy).
    let mut out = Zeroizing::new(Vec::with_capacity(len * 6 + 128));
    // Plain strings into a Vec: cannot fail.
    let _ = serde_json::to_writer(&mut *out, body);
    out
}
