//! Shared setup of the `Secrets::open` tests: a temporary directory with a
//! passphrase file and a policy, and a snapshot of every file under a
//! directory to prove a failed open changed nothing.

#![allow(dead_code, reason = "each test binary uses part of the helper")]
#![allow(unreachable_pub, reason = "a test helper module")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tyrum_secrets::{
    AdminRequest, Config, KindSpec, NewSecret, OpenError, OpenOptions, ProviderId, Purpose,
    Requester, ResolveRequest, Scope, SecretBytes, SecretHandle, SecretKind, Secrets,
};

/// The policy of every test: agent `gateway` may resolve anything in scope
/// `ci` of any provider; everyone else is denied.
pub const POLICY: &str = r#"{ "default": "deny",
  "rules": [ { "id": "gateway-ci", "effect": "allow", "secret": "*:ci", "agent": "gateway" } ] }"#;

pub struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("passphrase"), "test passphrase\n").unwrap();
        std::fs::write(dir.path().join("policy.json"), POLICY).unwrap();
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn passphrase_file(&self) -> PathBuf {
        self.dir.path().join("passphrase")
    }

    /// The single-host config of these tests.
    pub fn config(&self) -> Config {
        let mut config = Config::single_host(self.state_dir(), self.passphrase_file());
        config.policy_file = Some(self.dir.path().join("policy.json"));
        config
    }

    /// Opens with cheap KDF parameters.
    pub fn open(&self) -> Result<Secrets, OpenError> {
        Secrets::open_with(
            &self.config(),
            OpenOptions::new().dangerous_insecure_kdf_for_tests(),
        )
    }

    /// Creates an API key in scope `ci` of the profile's first provider.
    pub fn create(&self, secrets: &Secrets, value: &[u8]) -> SecretHandle {
        create_in(secrets, "file", value)
    }

    /// A request the policy allows.
    pub fn request(&self) -> ResolveRequest {
        request()
    }
}

pub fn create_in(secrets: &Secrets, provider: &str, value: &[u8]) -> SecretHandle {
    let spec = NewSecret::new(
        ProviderId::new(provider).unwrap(),
        Scope::new("ci").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    secrets
        .admin()
        .create(spec, &SecretBytes::from(value.to_vec()), &operator())
        .unwrap()
}

/// The operator of these tests, for admin changes.
pub fn operator() -> AdminRequest {
    AdminRequest::new(
        Requester::new("operator").unwrap(),
        Purpose::new("test setup").unwrap(),
    )
}

pub fn request() -> ResolveRequest {
    ResolveRequest::new(
        Requester::new("gateway").unwrap(),
        Purpose::new("test").unwrap(),
    )
}

/// Every file under `dir` (relative path → bytes).
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.strip_prefix(root).unwrap().display().to_string();
        if path.is_dir() {
            out.insert(format!("{name}/"), Vec::new());
            walk(root, &path, out);
        } else {
            out.insert(name, std::fs::read(&path).unwrap_or_default());
        }
    }
}

/// Rewrites the authenticated catalog at `path` as a plain (version 1)
/// file, as a catalog from before authentication was.
pub fn make_plain(path: &Path) {
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let fields = file.as_object_mut().unwrap();
    for name in ["generation", "count", "prev", "mac"] {
        fields.remove(name);
    }
    fields.insert("version".to_owned(), serde_json::json!(1));
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}

/// Sets every entry of the catalog at `path` active again, as someone with
/// write access to the state directory would (each must be revoked).
pub fn un_revoke(path: &Path) {
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let entries = file["entries"].as_object_mut().unwrap();
    assert!(!entries.is_empty());
    for entry in entries.values_mut() {
        assert_eq!(entry["status"]["state"], "revoked", "{entry}");
        entry["status"] = serde_json::json!({"state": "active"});
    }
    std::fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
}
