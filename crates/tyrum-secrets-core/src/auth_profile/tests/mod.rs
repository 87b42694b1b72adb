//! Tests of auth profiles: a fixture with a memory catalog, a resolver
//! that allows everything and records to memory, a manual clock and fixed
//! jitter.

mod canary;
mod cooldown;
mod profile;
mod proptests;
mod refresh;
mod selection;
mod store_file;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::{
    AdminRequest, AuditSink, Catalog, HandleId, KindSpec, MemoryAuditSink, MemoryCatalogStore,
    MemoryProvider, NewSecret, ProviderId, Purpose, Requester, ResolveRequest, Resolver,
    RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, SecretProvider, Timestamp, VersionPin,
    VersionSelector,
};

/// 2027-01-15T08:00:00Z.
pub(super) const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

pub(super) const ALLOW_ALL: &str =
    r#"{"rules": [{"id": "all", "effect": "allow", "secret": "*"}]}"#;

pub(super) struct Fixture {
    pub(super) catalog: Arc<Catalog>,
    pub(super) provider: Arc<MemoryProvider>,
    pub(super) audit: Arc<MemoryAuditSink>,
    pub(super) resolver: Arc<Resolver>,
    pub(super) admin: SecretAdmin,
    pub(super) by: AdminRequest,
    pub(super) store: Arc<dyn AuthProfileStore>,
    pub(super) clock: Arc<ManualClock>,
    pub(super) jitter: Arc<FixedJitter>,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self::with_store(Arc::new(MemoryAuthProfileStore::new()))
    }

    pub(super) fn with_store(store: Arc<dyn AuthProfileStore>) -> Self {
        let provider = Arc::new(MemoryProvider::new());
        let catalog = Arc::new(
            Catalog::new(MemoryCatalogStore::new()).with_shared_provider(
                ProviderId::new("memory").unwrap(),
                provider.clone() as Arc<dyn SecretProvider>,
            ),
        );
        let audit = Arc::new(MemoryAuditSink::new());
        Self::assemble(catalog, provider, audit.clone(), audit, store)
    }

    pub(super) fn assemble(
        catalog: Arc<Catalog>,
        provider: Arc<MemoryProvider>,
        audit: Arc<MemoryAuditSink>,
        sink: Arc<dyn AuditSink>,
        store: Arc<dyn AuthProfileStore>,
    ) -> Self {
        let resolver = Arc::new(
            Resolver::builder(
                catalog.clone(),
                RulePolicy::from_json_str(ALLOW_ALL).unwrap(),
                sink.clone(),
            )
            .build()
            .unwrap(),
        );
        let mut admin = SecretAdmin::builder(catalog.clone(), sink);
        if let Some(redactor) = resolver.redactor() {
            admin = admin.redactor(redactor.clone());
        }
        Self {
            catalog,
            provider,
            audit,
            resolver,
            admin: admin.build().unwrap(),
            by: AdminRequest::new(
                Requester::new("ops").unwrap(),
                Purpose::new("set up the test").unwrap(),
            ),
            store,
            clock: Arc::new(ManualClock::new(T0)),
            jitter: Arc::new(FixedJitter::new(0)),
        }
    }

    /// A builder with this fixture's clock and jitter.
    pub(super) fn builder(&self) -> AuthProfilesBuilder {
        AuthProfiles::builder(
            self.store.clone(),
            self.admin.clone(),
            self.resolver.clone(),
        )
        .clock(self.clock.clone())
        .jitter(self.jitter.clone())
    }

    pub(super) fn profiles(&self) -> AuthProfiles {
        self.builder().build()
    }

    pub(super) fn secret(&self, kind: SecretKind, value: &str) -> HandleId {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new("models").unwrap(),
            KindSpec::new(kind, None).unwrap(),
        );
        let handle = self
            .admin
            .create(
                spec,
                &SecretBytes::from(value.as_bytes().to_vec()),
                &self.by,
            )
            .unwrap();
        handle.id().clone()
    }

    /// Stores an API-key profile of `agent-a` for `openai` holding
    /// `sk-<id>-value`.
    pub(super) fn api_key(&self, id: &str) -> AuthProfile {
        let handle = self.secret(SecretKind::ApiKey, &format!("sk-{id}-value"));
        let profile =
            AuthProfile::api_key(ProfileId::new(id).unwrap(), "agent-a", openai(), handle).unwrap();
        self.add(profile)
    }

    /// Stores an OAuth profile of `agent-a` for `openai` with access token
    /// `access-0`, refresh token `refresh-0` and the given expiry.
    pub(super) fn oauth(&self, id: &str, expires_at: Option<Timestamp>) -> AuthProfile {
        let access = self.secret(SecretKind::OauthAccessToken, "access-0");
        let refresh = self.secret(SecretKind::OauthRefreshToken, "refresh-0");
        let profile = AuthProfile::oauth(
            ProfileId::new(id).unwrap(),
            "agent-a",
            openai(),
            access,
            Some(refresh),
            expires_at,
        )
        .unwrap();
        self.add(profile)
    }

    pub(super) fn add(&self, mut profile: AuthProfile) -> AuthProfile {
        profile.revision = self.store.compare_and_set(profile.clone(), None).unwrap();
        profile
    }

    pub(super) fn get(&self, id: &str) -> AuthProfile {
        self.store
            .get(&ProfileId::new(id).unwrap())
            .unwrap()
            .unwrap()
    }

    /// Whether `version` of `handle` is still readable in the provider.
    pub(super) fn version_exists(&self, handle: &HandleId, version: crate::Version) -> bool {
        let entry = self.catalog.entry(handle).unwrap();
        self.provider
            .read(&entry.locator, VersionSelector::Exact(version))
            .is_ok()
    }

    pub(super) fn current_version(&self, handle: &HandleId) -> crate::Version {
        match self.catalog.entry(handle).unwrap().current {
            VersionPin::Pinned(v) => v,
            VersionPin::Latest => panic!("created handles are pinned"),
        }
    }
}

pub(super) fn openai() -> ModelProvider {
    ModelProvider::new("openai").unwrap()
}

pub(super) fn agent(name: &str) -> Requester {
    Requester::new(name).unwrap()
}

pub(super) fn conversation(agent: &str, conversation: &str) -> Requester {
    Requester::new(agent)
        .unwrap()
        .conversation(conversation)
        .unwrap()
}

pub(super) fn request(agent: &str) -> ResolveRequest {
    ResolveRequest::new(
        Requester::new(agent).unwrap(),
        Purpose::new("call the model").unwrap(),
    )
}

pub(super) fn id(text: &str) -> ProfileId {
    ProfileId::new(text).unwrap()
}

/// How a [`CountingRefresher`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Answer {
    /// New tokens `access-<n>` and `refresh-<n>` for the n-th call, valid
    /// for an hour.
    Rotate,
    /// The refresh token is refused.
    Reject,
    /// The endpoint is down, with this `Retry-After`.
    Unavailable(Option<Duration>),
}

/// A refresher that counts its calls and refuses a refresh token that is
/// not the newest one it issued (a spent token), as a real endpoint would.
#[derive(Debug)]
pub(super) struct CountingRefresher {
    pub(super) calls: AtomicU32,
    answer: Mutex<Answer>,
    pause: Duration,
}

impl CountingRefresher {
    pub(super) fn new(answer: Answer) -> Arc<Self> {
        Self::with_pause(answer, Duration::ZERO)
    }

    pub(super) fn with_pause(answer: Answer, pause: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicU32::new(0),
            answer: Mutex::new(answer),
            pause,
        })
    }

    pub(super) fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub(super) fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Refresher for CountingRefresher {
    fn refresh(&self, request: &RefreshRequest<'_>) -> Result<RefreshedTokens, RefreshError> {
        use crate::ExposeSecret as _;
        std::thread::sleep(self.pause);
        let answer = *self.answer.lock().unwrap();
        match answer {
            Answer::Reject => return Err(RefreshError::Rejected { status: Some(400) }),
            Answer::Unavailable(retry_after) => {
                return Err(RefreshError::Unavailable {
                    status: Some(503),
                    retry_after,
                });
            }
            Answer::Rotate => {}
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if request.refresh_token().expose_secret() != format!("refresh-{n}").as_bytes() {
            // Spent or unknown: what a token endpoint says to a replay.
            return Err(RefreshError::Rejected { status: Some(400) });
        }
        let next = n + 1;
        Ok(RefreshedTokens::new(
            SecretBytes::from(format!("access-{next}").into_bytes()),
            Some(Duration::from_secs(3600)),
        )
        .with_refresh_token(SecretBytes::from(format!("refresh-{next}").into_bytes())))
    }
}
