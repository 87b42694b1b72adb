//! Logging in to a real OpenBao: a token (given, from a file), AppRole and
//! a Kubernetes service-account login (bao's `jwt` method with a locally
//! generated signing key); renewal; re-login once after a token dies, then
//! a typed error; one login for many threads.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::jwt::{AUDIENCE, ClusterIssuer, ISSUER};
use support::*;
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, SecretString,
    VersionSelector,
};
use tyrum_secrets_testkit::bao::BaoServer;
use tyrum_secrets_vault::{VaultAuth, VaultClient, VaultError, VaultProvider};

fn provider(server: &BaoServer, auth: VaultAuth) -> VaultProvider {
    VaultProvider::new(
        VaultClient::new(config(server), auth).unwrap(),
        fresh_mount("auth"),
    )
}

fn round_trip(provider: &VaultProvider) -> Result<(), ProviderError> {
    let locator = Locator::new("login/check").unwrap();
    let version = provider.write(&locator, &SecretBytes::from(b"login-check-value".to_vec()))?;
    let read = provider.read(&locator, VersionSelector::Exact(version))?;
    assert_eq!(read.value.expose_secret(), b"login-check-value");
    Ok(())
}

fn kv_policy(server: &BaoServer) {
    policy(server, "kv", KV_ALL);
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_given_token_reads_and_writes() {
    let server = shared_server();
    kv_policy(server);
    let token = create_token(server, &["-policy=kv"]);
    round_trip(&provider(
        server,
        VaultAuth::token(SecretString::from(token)),
    ))
    .unwrap();
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_revoked_given_token_is_a_typed_error_after_one_recheck() {
    let server = shared_server();
    kv_policy(server);
    let token = create_token(server, &["-policy=kv"]);
    let p = provider(server, VaultAuth::token(SecretString::from(token.clone())));
    round_trip(&p).unwrap();
    server.bao(&["token", "revoke", &token]);
    let err = round_trip(&p).unwrap_err();
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("expired or revoked"), "{err}");
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_token_file_is_reread_when_its_token_dies() {
    let server = shared_server();
    kv_policy(server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let first = create_token(server, &["-policy=kv"]);
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let p = provider(server, VaultAuth::token_file(&file));
    round_trip(&p).unwrap();

    // An agent replaced the token and revoked the old one.
    let second = create_token(server, &["-policy=kv"]);
    std::fs::write(&file, &second).unwrap();
    server.bao(&["token", "revoke", &first]);
    round_trip(&p).unwrap();

    // Revoked with no replacement: one re-read, then a typed error.
    server.bao(&["token", "revoke", &second]);
    let err = round_trip(&p).unwrap_err();
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err}"
    );
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn an_expired_token_from_a_file_fails_typed_until_the_file_is_refreshed() {
    let server = shared_server();
    kv_policy(server);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let short = create_token(server, &["-policy=kv", "-ttl=2s", "-renewable=false"]);
    std::fs::write(&file, &short).unwrap();
    let p = provider(server, VaultAuth::token_file(&file));
    round_trip(&p).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let err = round_trip(&p).unwrap_err();
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err}"
    );
    std::fs::write(&file, create_token(server, &["-policy=kv"])).unwrap();
    round_trip(&p).unwrap();
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_token_from_another_provider_is_used() {
    let server = shared_server();
    kv_policy(server);
    let holder = Arc::new(tyrum_secrets_core::MemoryProvider::new());
    let locator = Locator::new("bao/token").unwrap();
    let token = create_token(server, &["-policy=kv"]);
    holder
        .write(&locator, &SecretBytes::from(token.into_bytes()))
        .unwrap();
    round_trip(&provider(server, VaultAuth::token_from(holder, locator))).unwrap();
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn app_role_logs_in_and_logs_in_again_once_after_revocation() {
    let server = shared_server();
    kv_policy(server);
    let (role_id, secret_id) = app_role(server, "relogin", "kv", &[]);
    let p = provider(server, VaultAuth::app_role(role_id, secret_id));
    round_trip(&p).unwrap();

    // Every token this role got is revoked: the next call logs in again.
    server.bao(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    round_trip(&p).unwrap();

    // Revoked again, and the role can no longer log in: a typed error,
    // not a loop.
    server.bao(&["delete", "auth/approle/role/relogin"]);
    server.bao(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    let err = round_trip(&p).unwrap_err();
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("approle login"), "{err}");
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn app_role_with_a_wrong_secret_id_is_a_login_error() {
    let server = shared_server();
    kv_policy(server);
    let (role_id, _) = app_role(server, "wrong-secret", "kv", &[]);
    let client = VaultClient::new(
        config(server),
        VaultAuth::app_role(role_id, SecretString::from("not-the-secret-id".to_owned())),
    )
    .unwrap();
    let err = client.login().unwrap_err();
    assert!(matches!(err, VaultError::Login { .. }), "{err}");
    assert!(!err.is_transient());
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn an_expired_app_role_token_is_replaced_by_a_new_login() {
    let server = shared_server();
    kv_policy(server);
    let (role_id, secret_id) = app_role(
        server,
        "short-lived",
        "kv",
        &["token_ttl=2s", "token_max_ttl=2s"],
    );
    let p = provider(server, VaultAuth::app_role(role_id, secret_id));
    round_trip(&p).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    round_trip(&p).unwrap();
}

/// Kubernetes login as a worker pod does it, against bao's `jwt` method
/// holding the pretend cluster's public key.
fn kubernetes_setup(server: &BaoServer, issuer: &ClusterIssuer, mount: &str) {
    kv_policy(server);
    server.bao(&["auth", "enable", &format!("-path={mount}"), "jwt"]);
    let config = serde_json::json!({
        "jwt_validation_pubkeys": [issuer.public_key_pem()],
        "bound_issuer": ISSUER,
    });
    server.bao_with_input(
        &["write", &format!("auth/{mount}/config"), "-"],
        config.to_string().as_bytes(),
    );
    let role = serde_json::json!({
        "role_type": "jwt",
        "bound_audiences": [AUDIENCE],
        "user_claim": "sub",
        "bound_subject": "system:serviceaccount:tyrum:worker",
        "token_policies": ["kv"],
        "token_ttl": "60s",
    });
    server.bao_with_input(
        &["write", &format!("auth/{mount}/role/tyrum-worker"), "-"],
        role.to_string().as_bytes(),
    );
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn kubernetes_service_account_login_with_a_token_file() {
    let server = shared_server();
    let issuer = ClusterIssuer::new();
    kubernetes_setup(server, &issuer, "k8s-login");
    let dir = tempfile::tempdir().unwrap();
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, issuer.service_account_token("tyrum", "worker")).unwrap();
    let p = provider(
        server,
        VaultAuth::kubernetes_with_token_file("tyrum-worker", &jwt_file).at_mount("k8s-login"),
    );
    round_trip(&p).unwrap();

    // The kubelet rotated the token and the old session was revoked: the
    // new file is read at the next login.
    std::fs::write(&jwt_file, issuer.service_account_token("tyrum", "worker")).unwrap();
    server.bao(&["token", "revoke", "-mode=path", "auth/k8s-login/login"]);
    round_trip(&p).unwrap();
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn another_service_account_is_refused() {
    let server = shared_server();
    let issuer = ClusterIssuer::new();
    kubernetes_setup(server, &issuer, "k8s-refuse");
    let dir = tempfile::tempdir().unwrap();
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, issuer.service_account_token("tyrum", "intruder")).unwrap();
    let client = VaultClient::new(
        config(server),
        VaultAuth::kubernetes_with_token_file("tyrum-worker", &jwt_file).at_mount("k8s-refuse"),
    )
    .unwrap();
    let err = client.login().unwrap_err();
    assert!(matches!(err, VaultError::Login { .. }), "{err}");

    // A token signed by another cluster's key is refused too.
    let stranger = ClusterIssuer::new();
    std::fs::write(&jwt_file, stranger.service_account_token("tyrum", "worker")).unwrap();
    let err = client.login().unwrap_err();
    assert!(matches!(err, VaultError::Login { .. }), "{err}");

    // A missing token file is an I/O error naming the file.
    std::fs::remove_file(&jwt_file).unwrap();
    let err = client.login().unwrap_err();
    assert!(matches!(err, VaultError::Io { .. }), "{err}");
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn renewal_keeps_one_token_alive_past_its_ttl() {
    // Its own server: the test counts the tokens on it.
    let server = start();
    kv_policy(&server);
    let (role_id, secret_id) = app_role(
        &server,
        "renewed",
        "kv",
        &["token_ttl=3s", "token_max_ttl=1h"],
    );
    let p = provider(&server, VaultAuth::app_role(role_id, secret_id));
    round_trip(&p).unwrap();
    let tokens = token_count(&server);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(900));
        round_trip(&p).unwrap();
    }
    assert_eq!(
        token_count(&server),
        tokens,
        "the token was replaced by new logins instead of being renewed"
    );
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn many_threads_hitting_a_revoked_token_share_one_login() {
    let server = start();
    kv_policy(&server);
    let (role_id, secret_id) = app_role(&server, "herd", "kv", &[]);
    let p = provider(&server, VaultAuth::app_role(role_id, secret_id));
    let locator = Locator::new("herd/value").unwrap();
    p.write(&locator, &SecretBytes::from(b"herd-value-1234".to_vec()))
        .unwrap();
    server.bao(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    let before = token_count(&server);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                p.read(&locator, VersionSelector::Latest)
                    .expect("a read after re-login");
            });
        }
    });
    assert_eq!(
        token_count(&server),
        before + 1,
        "threads logged in more than once"
    );
}
