//! Single-flight OAuth refresh across processes: 4 processes that share an
//! encrypted file store, a JSON-file catalog and a JSON-file profile store
//! hit one expired access token at the same moment. The token endpoint is a
//! counter file under a lock that refuses a spent refresh token. Exactly one
//! refresh happens, all 4 get the new access token, and the old refresh
//! token is retired from the store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets::file::{FileOptions, FileProvider, KeySource, StoreKey};
use tyrum_secrets::{
    AdminRequest, AuthProfile, AuthProfileStore, AuthProfiles, Catalog, Credential, ExposeSecret,
    JsonFileAuthProfileStore, JsonFileCatalogStore, KindSpec, MemoryAuditSink, ModelProvider,
    NewSecret, ProfileId, ProviderError, ProviderId, Purpose, RefreshError, RefreshRequest,
    RefreshedTokens, Refresher, Requester, ResolveRequest, Resolver, RulePolicy, Scope,
    SecretAdmin, SecretBytes, SecretKind, SecretProvider, Timestamp, VersionPin, VersionSelector,
};
use tyrum_secrets_testkit::process;

const PROCESSES: usize = 4;

fn main() {
    process::main(
        &[(
            "four_processes_with_an_expired_token_refresh_once_and_share_the_new_token",
            four_processes_refresh_once,
        )],
        worker,
    );
}

struct Shared {
    catalog: Arc<Catalog>,
    admin: SecretAdmin,
    store: Arc<JsonFileAuthProfileStore>,
}

fn open(dir: &Path) -> Shared {
    let file = FileProvider::open_with(
        dir.join("secrets.tyrum"),
        KeySource::KeyFile(dir.join("store.key")),
        FileOptions::default(),
    )
    .expect("the file store opens");
    let catalog = Catalog::new(JsonFileCatalogStore::open(dir.join("catalog.json")).unwrap())
        .with_provider(ProviderId::new("file").unwrap(), file);
    let store = JsonFileAuthProfileStore::open(dir.join("profiles.json")).unwrap();
    let catalog = Arc::new(catalog);
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    Shared {
        catalog,
        admin,
        store: Arc::new(store),
    }
}

/// The token endpoint: a counter in a file under an exclusive lock. Each
/// call counts; the n-th accepts only `refresh-<n>` (a spent token is
/// refused, as a real endpoint refuses a replay) and issues
/// `access-<n+1>` / `refresh-<n+1>`.
#[derive(Debug)]
struct CounterFileEndpoint {
    counter: PathBuf,
}

impl Refresher for CounterFileEndpoint {
    fn refresh(&self, request: &RefreshRequest<'_>) -> Result<RefreshedTokens, RefreshError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.counter)
            .unwrap();
        file.lock().unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        let n: u32 = text.trim().parse().unwrap_or(0);
        file.set_len(0).unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        write!(file, "{}", n + 1).unwrap();
        file.sync_all().unwrap();
        // Slow, like a real endpoint: the other workers pile up meanwhile.
        std::thread::sleep(Duration::from_millis(200));
        file.unlock().unwrap();
        if request.refresh_token().expose_secret() != format!("refresh-{n}").as_bytes() {
            return Err(RefreshError::Rejected { status: Some(400) });
        }
        Ok(RefreshedTokens::new(
            SecretBytes::from(format!("access-{}", n + 1).into_bytes()),
            Some(Duration::from_secs(3600)),
        )
        .with_refresh_token(SecretBytes::from(format!("refresh-{}", n + 1).into_bytes())))
    }
}

fn openai() -> ModelProvider {
    ModelProvider::new("openai").unwrap()
}

/// Worker: open everything, say ready, wait for the start signal, select
/// the profile and resolve its credential; print the token it got (a test
/// token, not a secret).
fn worker(_role: &str, args: &[String]) {
    let dir = PathBuf::from(&args[0]);
    let shared = open(&dir);
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "models", "effect": "allow", "secret": "file:models"}]}"#,
    )
    .unwrap();
    let resolver = Resolver::builder(
        shared.catalog.clone(),
        policy,
        Arc::new(MemoryAuditSink::new()),
    )
    .build()
    .unwrap();
    let profiles = AuthProfiles::builder(
        shared.store.clone(),
        shared.admin.clone(),
        Arc::new(resolver),
    )
    .refresher(Arc::new(CounterFileEndpoint {
        counter: dir.join("endpoint.counter"),
    }))
    .build();
    println!("ready");
    let go = dir.join("go");
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let who = Requester::new("agent-a").unwrap();
    let selection = profiles
        .select(&who, &openai())
        .expect("a profile is selected");
    let request = ResolveRequest::new(who, Purpose::new("call the model").unwrap());
    let credential = profiles
        .credential(selection.profile(), &request)
        .unwrap_or_else(|e| panic!("credential: {e}"));
    println!(
        "token {} generation {}",
        String::from_utf8_lossy(credential.expose_secret()),
        credential.profile().refresh.generation
    );
}

fn four_processes_refresh_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    StoreKey::write_new_key_file(&dir.join("store.key")).unwrap();
    let shared = open(dir);
    let create = |kind, value: &str| {
        let spec = NewSecret::new(
            ProviderId::new("file").unwrap(),
            Scope::new("models").unwrap(),
            KindSpec::new(kind, None).unwrap(),
        );
        let by = AdminRequest::new(
            Requester::new("ops").unwrap(),
            Purpose::new("sign in to the model provider").unwrap(),
        );
        let handle = shared
            .admin
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()), &by)
            .unwrap();
        handle.id().clone()
    };
    let access = create(SecretKind::OauthAccessToken, "access-0");
    let refresh = create(SecretKind::OauthRefreshToken, "refresh-0");
    let expired = Timestamp::from_unix_millis(Timestamp::now().unix_millis() - 1000);
    let profile = AuthProfile::oauth(
        ProfileId::new("openai:team").unwrap(),
        "agent-a",
        openai(),
        access.clone(),
        Some(refresh.clone()),
        Some(expired),
    )
    .unwrap();
    shared.store.compare_and_set(profile.clone(), None).unwrap();

    let mut children: Vec<_> = (0..PROCESSES)
        .map(|_| process::spawn_worker("refresher", &[dir.to_str().unwrap()]))
        .collect();
    let mut outputs: Vec<BufReader<_>> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for out in &mut outputs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    File::create(dir.join("go")).unwrap();
    let mut tokens = Vec::new();
    for (child, out) in children.iter_mut().zip(outputs) {
        tokens.extend(out.lines().map_while(Result::ok));
        assert!(child.wait().unwrap().success(), "a worker failed");
    }

    assert_eq!(tokens, vec!["token access-1 generation 1"; PROCESSES]);
    let calls = std::fs::read_to_string(dir.join("endpoint.counter")).unwrap();
    assert_eq!(
        calls.trim(),
        "1",
        "the token endpoint was called {calls} times"
    );

    // The old refresh (and access) token is retired: the handle points at
    // the new version and the old one is gone from the store.
    let file = FileProvider::open(
        dir.join("secrets.tyrum"),
        KeySource::KeyFile(dir.join("store.key")),
    )
    .unwrap();
    for handle in [&refresh, &access] {
        let entry = shared.catalog.entry(handle).unwrap();
        let VersionPin::Pinned(current) = entry.current else {
            panic!("pinned")
        };
        assert!(entry.retiring.is_empty());
        let now = file
            .read(&entry.locator, VersionSelector::Exact(current))
            .unwrap();
        assert!(now.value.expose_secret().ends_with(b"-1"));
        let first = tyrum_secrets::Version::FIRST;
        assert_ne!(current, first);
        assert!(matches!(
            file.read(&entry.locator, VersionSelector::Exact(first)),
            Err(ProviderError::VersionNotFound { .. } | ProviderError::NotFound { .. })
        ));
    }
    let stored = shared.store.get(&profile.id).unwrap().unwrap();
    assert_eq!(stored.refresh.generation, 1);
    let Credential::Oauth { expires_at, .. } = stored.credential else {
        panic!("still OAuth")
    };
    assert!(expires_at.unwrap() > Timestamp::now());
}
