//! What the OpenBao tests share: a dev server per test binary (or per
//! test, for tests that seal or kill theirs), clients, and setup through the
//! `bao` CLI as root.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: not every test binary uses every helper"
)]

pub mod jwt;

use std::sync::OnceLock;
use std::time::Duration;

use tyrum_secrets_core::SecretString;
use tyrum_secrets_testkit::bao::{BaoServer, random_hex};
use tyrum_secrets_vault::{KvMount, VaultAuth, VaultClient, VaultConfig};

/// The reason on every test that needs the real server.
pub const NEEDS_BAO: &str = "needs OpenBao; run scripts/test";

/// One dev server for this test binary, killed when it exits.
pub fn shared_server() -> &'static BaoServer {
    static SERVER: OnceLock<BaoServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

/// A fresh dev server whose `secret/` mount keeps every version (KV v2
/// keeps 10 per key unless told otherwise; the suites read older ones).
pub fn start() -> BaoServer {
    let server = BaoServer::start();
    keep_all_versions(&server);
    server
}

/// Raises `secret/`'s `max_versions` past what any test writes.
pub fn keep_all_versions(server: &BaoServer) {
    server.bao(&["write", "secret/config", "max_versions=100000"]);
}

/// A client configuration for `server`: plain HTTP allowed for a dev
/// server, its CA for a TLS one, a short timeout.
pub fn config(server: &BaoServer) -> VaultConfig {
    let config = VaultConfig::new(server.address())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .backoff(Duration::from_millis(20), Duration::from_millis(200));
    match server.ca_pem() {
        Some(ca) => config.ca_pem_file(ca).unwrap(),
        None => config.dangerous_allow_http(),
    }
}

/// A client with the root token.
pub fn root_client(server: &BaoServer) -> VaultClient {
    VaultClient::new(
        config(server),
        VaultAuth::token(SecretString::from(server.root_token().to_owned())),
    )
    .unwrap()
}

/// `secret/` with a fresh random prefix: every test gets its own corner.
pub fn fresh_mount(name: &str) -> KvMount {
    KvMount::new("secret")
        .unwrap()
        .with_prefix(&format!("t-{}/{name}", random_hex(6)))
        .unwrap()
}

/// Writes a policy named `name`.
pub fn policy(server: &BaoServer, name: &str, hcl: &str) {
    server.bao_with_input(&["policy", "write", name, "-"], hcl.as_bytes());
}

/// Enables the AppRole method (once) and makes a role with `policies`;
/// returns its role id and a fresh secret id.
pub fn app_role(
    server: &BaoServer,
    role: &str,
    policies: &str,
    extra: &[&str],
) -> (String, SecretString) {
    let _ = server.try_bao(&["auth", "enable", "approle"]);
    let mut args = vec![
        "write".to_owned(),
        format!("auth/approle/role/{role}"),
        format!("token_policies={policies}"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    server.bao(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let role_id = server
        .bao(&[
            "read",
            "-field=role_id",
            &format!("auth/approle/role/{role}/role-id"),
        ])
        .trim()
        .to_owned();
    let secret_id = server
        .bao(&[
            "write",
            "-f",
            "-field=secret_id",
            &format!("auth/approle/role/{role}/secret-id"),
        ])
        .trim()
        .to_owned();
    (role_id, SecretString::from(secret_id))
}

/// A policy allowing everything under `secret/` (data, metadata, delete,
/// destroy).
pub const KV_ALL: &str =
    r#"path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#;

/// How many tokens the server holds (its token accessors).
pub fn token_count(server: &BaoServer) -> usize {
    let out = server.bao(&["list", "-format=json", "auth/token/accessors"]);
    serde_json::from_str::<Vec<String>>(&out).unwrap().len()
}

/// Creates a token with `args` (e.g. `-policy=kv`, `-ttl=3s`) and returns it.
pub fn create_token(server: &BaoServer, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "-field=token"];
    all.extend_from_slice(args);
    server.bao(&all).trim().to_owned()
}
