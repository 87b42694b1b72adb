//! Review 1, finding 3, through the resolver: with the authenticated JSON
//! catalog (key and anchor in the secret provider, as the facade wires it),
//! editing `catalog.json` to un-revoke a handle, or putting back the copy
//! from before the revoke, makes every resolve fail closed with a typed
//! catalog error; the value never comes back, and no error shows it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tyrum_secrets_core::{
    AdminRequest, Anchor, AnchorError, Catalog, CatalogError, CatalogKey, JsonFileCatalogStore,
    KindSpec, Locator, MemoryAuditSink, MemoryProvider, NewSecret, ProviderId, Purpose, Requester,
    ResolveError, ResolveRequest, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes,
    SecretHandle, SecretKind, SecretProvider,
};

const CANARY: &str = "sk-canary-catalog-integrity-7f3a";

/// One deployment: a provider holding the values, the catalog key and the
/// catalog's anchor; a catalog file beside it.
struct Deployment {
    _dir: tempfile::TempDir,
    path: PathBuf,
    provider: Arc<dyn SecretProvider>,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            path: dir.path().join("catalog.json"),
            _dir: dir,
            provider: Arc::new(MemoryProvider::new()),
        }
    }

    /// What a process opening the deployment does (`create` on the first
    /// open only).
    fn open_store(&self, create: bool) -> Result<JsonFileCatalogStore, CatalogError> {
        let key = CatalogKey::in_provider(
            &*self.provider,
            &Locator::new("tyrum-secrets-internal/catalog-key").unwrap(),
            create,
        )?;
        let anchor = Anchor::provider(
            Arc::clone(&self.provider),
            Locator::new("tyrum-secrets-internal/catalog-anchor").unwrap(),
        );
        JsonFileCatalogStore::open_authenticated(&self.path, key, anchor)
    }

    fn open(&self, create: bool) -> (Resolver, SecretAdmin) {
        let catalog = Arc::new(
            Catalog::new(self.open_store(create).unwrap())
                .with_shared_provider(ProviderId::new("memory").unwrap(), self.provider.clone()),
        );
        let policy =
            RulePolicy::from_json_str(r#"{"rules":[{"id":"all","effect":"allow","secret":"*"}]}"#)
                .unwrap();
        let resolver = Resolver::builder(catalog.clone(), policy, Arc::new(MemoryAuditSink::new()))
            .build()
            .unwrap();
        let admin = SecretAdmin::builder(
            catalog,
            Arc::new(MemoryAuditSink::new()),
            resolver.redactor().unwrap(),
        )
        .build()
        .unwrap();
        (resolver, admin)
    }
}

fn by() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("key leaked").unwrap(),
    )
}

fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("alpha").unwrap().tool("shell.exec").unwrap(),
        Purpose::new("run the deploy script").unwrap(),
    )
}

fn create(admin: &SecretAdmin) -> SecretHandle {
    let spec = NewSecret::new(
        ProviderId::new("memory").unwrap(),
        Scope::new("ci").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    admin
        .create(spec, &SecretBytes::from(CANARY.as_bytes().to_vec()), &by())
        .unwrap()
}

/// What an attacker with write access to the state directory does: every
/// entry set active again, the rest of the file (its MAC) kept.
fn un_revoke_by_hand(path: &Path) {
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for entry in file["entries"].as_object_mut().unwrap().values_mut() {
        entry["status"] = serde_json::json!({"state": "active"});
    }
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

/// The resolve failed closed with this catalog error, and says nothing of
/// the value.
fn catalog_error(result: Result<impl Sized, ResolveError>) -> CatalogError {
    let Err(err) = result else {
        panic!("the revoked handle resolved");
    };
    let text = format!("{err} {err:?}");
    assert!(!text.contains(CANARY), "the error shows the value: {text}");
    match err {
        ResolveError::Catalog { source, .. } => source,
        other => panic!("not a catalog error: {other}"),
    }
}

#[test]
fn an_edited_catalog_does_not_un_revoke_a_handle() {
    let deployment = Deployment::new();
    let (resolver, admin) = deployment.open(true);
    let handle = create(&admin);
    assert!(resolver.resolve(handle.id(), &request()).is_ok());
    admin.revoke(handle.id(), &by()).unwrap();
    assert!(matches!(
        resolver.resolve(handle.id(), &request()),
        Err(ResolveError::Revoked { .. })
    ));

    un_revoke_by_hand(&deployment.path);
    let err = catalog_error(resolver.resolve(handle.id(), &request()));
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
    // A process started after the edit does not open the catalog at all.
    let err = deployment.open_store(false).unwrap_err();
    assert!(matches!(err, CatalogError::Tampered { .. }), "{err}");
}

#[test]
fn a_catalog_rolled_back_to_before_the_revoke_does_not_un_revoke_a_handle() {
    let deployment = Deployment::new();
    let (resolver, admin) = deployment.open(true);
    let handle = create(&admin);
    let before_revoke = std::fs::read(&deployment.path).unwrap();
    admin.revoke(handle.id(), &by()).unwrap();

    // An authentic copy, written under the key, but older than the anchor
    // kept in the provider.
    std::fs::write(&deployment.path, &before_revoke).unwrap();
    let err = catalog_error(resolver.resolve(handle.id(), &request()));
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err}"
    );
    let err = deployment.open_store(false).unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            }
        ),
        "{err}"
    );
}
