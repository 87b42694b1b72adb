//! Canary: credential values never reach a profile, an error, a `Debug`
//! form, the profile store file, the catalog file or the audit log, through
//! selection, hand-over, refresh (granted and refused) and every outcome.

use super::*;
use crate::{AuditChainKey, ExposeSecret, JsonFileCatalogStore, JsonLinesAuditSink};

const CANARY: &str = "CANARY-authprof";

/// Issues canary tokens; refuses when told, and keeps the `Debug` forms it
/// saw.
#[derive(Debug, Default)]
struct CanaryRefresher {
    reject: std::sync::atomic::AtomicBool,
    seen: Mutex<Vec<String>>,
}

impl Refresher for CanaryRefresher {
    fn refresh(&self, request: &RefreshRequest<'_>) -> Result<RefreshedTokens, RefreshError> {
        assert!(
            request
                .refresh_token()
                .expose_secret()
                .starts_with(CANARY.as_bytes())
        );
        let tokens = RefreshedTokens::new(
            SecretBytes::from(format!("{CANARY}-access-new-5b2e").into_bytes()),
            Some(Duration::from_secs(600)),
        )
        .with_refresh_token(SecretBytes::from(
            format!("{CANARY}-refresh-new-77aa").into_bytes(),
        ));
        let mut seen = self.seen.lock().unwrap();
        seen.push(format!("{request:?}"));
        seen.push(format!("{tokens:?}"));
        if self.reject.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RefreshError::Rejected { status: Some(400) });
        }
        Ok(tokens)
    }
}

fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(CANARY),
        "{what} holds a canary value: {text}"
    );
}

#[test]
fn no_value_in_profiles_errors_debug_store_files_or_audit_records() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("profiles.json");
    let catalog_path = dir.path().join("catalog.json");
    let audit_path = dir.path().join("audit.jsonl");
    let provider = Arc::new(MemoryProvider::new());
    let catalog = Arc::new(
        Catalog::new(JsonFileCatalogStore::open(&catalog_path).unwrap()).with_shared_provider(
            ProviderId::new("memory").unwrap(),
            provider.clone() as Arc<dyn SecretProvider>,
        ),
    );
    let sink = Arc::new(
        JsonLinesAuditSink::open(&audit_path, AuditChainKey::generate().unwrap()).unwrap(),
    );
    let store = Arc::new(JsonFileAuthProfileStore::open(&store_path).unwrap());
    let fx = Fixture::assemble(
        catalog,
        provider,
        Arc::new(MemoryAuditSink::new()),
        sink,
        store,
    );
    let refresher = Arc::new(CanaryRefresher::default());
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut note = |what: &str, text: String| texts.push((what.to_owned(), text));

    let key = fx.secret(SecretKind::ApiKey, &format!("{CANARY}-sk-1c9d"));
    let access = fx.secret(SecretKind::OauthAccessToken, &format!("{CANARY}-access-0"));
    let refresh = fx.secret(
        SecretKind::OauthRefreshToken,
        &format!("{CANARY}-refresh-0"),
    );
    let api = fx.add(AuthProfile::api_key(id("a-key"), "agent-a", openai(), key).unwrap());
    let oauth = fx.add(
        AuthProfile::oauth(
            id("b-oauth"),
            "agent-a",
            openai(),
            access,
            Some(refresh),
            Some(T0),
        )
        .unwrap(),
    );

    // Selection and hand-over, with a refresh on the way.
    for who in [agent("agent-a"), conversation("agent-a", "c1")] {
        let selection = profiles.select(&who, &openai()).unwrap();
        note(
            "selection",
            format!("{selection:?} {}", selection.explain()),
        );
        let credential = profiles
            .credential(selection.profile(), &request("agent-a"))
            .unwrap();
        assert!(credential.expose_secret().starts_with(CANARY.as_bytes()));
        note("credential", format!("{credential:?}"));
        profiles
            .report(credential.profile(), CallOutcome::Success)
            .unwrap();
    }
    let refreshed = profiles
        .credential(&fx.get("b-oauth"), &request("agent-a"))
        .unwrap();
    note("refreshed", format!("{refreshed:?}"));

    // Every outcome.
    for outcome in [
        CallOutcome::RateLimited {
            retry_after: Some(Duration::from_secs(5)),
        },
        CallOutcome::ServerError { retry_after: None },
        CallOutcome::Timeout,
        CallOutcome::Billing,
        CallOutcome::Success,
    ] {
        note(
            "reported",
            format!("{:?}", profiles.report(&api, outcome).unwrap()),
        );
    }
    // A refused refresh, and the errors on the way.
    refresher
        .reject
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let current = fx.get("b-oauth");
    note(
        "invalid",
        format!(
            "{:?}",
            profiles
                .report(&current, CallOutcome::InvalidCredentials)
                .unwrap()
        ),
    );
    let errors = [
        profiles.refresh(&fx.get("b-oauth")).unwrap_err(),
        profiles.credential(&api, &request("agent-z")).unwrap_err(),
    ];
    assert_eq!(
        profiles
            .report(&oauth, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Stale
    );
    profiles
        .report(&api, CallOutcome::InvalidCredentials)
        .unwrap();
    let none = profiles.select(&agent("agent-a"), &openai()).unwrap_err();
    for error in errors.iter().chain([&none]) {
        note("error", format!("{error} / {error:?}"));
    }
    note("profiles", format!("{profiles:?}"));
    note("store", format!("{:?}", fx.store));
    for profile in fx.store.snapshot().unwrap().profiles() {
        note("profile json", serde_json::to_string(profile).unwrap());
        note("profile debug", format!("{profile:?}"));
    }
    note("refresher saw", refresher.seen.lock().unwrap().join(" "));
    assert!(!refresher.seen.lock().unwrap().is_empty());

    for path in [&store_path, &catalog_path, &audit_path] {
        let bytes = std::fs::read(path).unwrap();
        note(
            &path.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        );
    }
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(audit.contains(r#""auth_profile":"b-oauth""#), "{audit}");
    assert!(audit.contains(r#""auth_profile":"a-key""#), "{audit}");

    for (what, text) in &texts {
        assert_clean(what, text);
    }
}
