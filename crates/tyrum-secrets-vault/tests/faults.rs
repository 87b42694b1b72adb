//! Outages against a real OpenBao: a sealed server is a typed, transient
//! `Unavailable` and works again once unsealed; a killed or hung server is
//! a transient error within the timeout, never a hang; a policy that
//! forbids a path is `PermissionDenied`, answered without a re-login loop;
//! the server's TLS CA is accepted when configured and refused when not.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::*;
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, SecretString,
    VersionSelector,
};
use tyrum_secrets_testkit::bao::BaoServer;
use tyrum_secrets_vault::{VaultAuth, VaultClient, VaultConfig, VaultError, VaultProvider};

fn value() -> SecretBytes {
    SecretBytes::from(b"fault-test-value-1234".to_vec())
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_sealed_server_is_unavailable_and_works_again_after_unseal() {
    let server = start();
    let p = VaultProvider::new(root_client(&server), fresh_mount("seal"));
    let locator = Locator::new("sealed/value").unwrap();
    let version = p.write(&locator, &value()).unwrap();

    server.seal();
    let err = p.read(&locator, VersionSelector::Latest).unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("sealed"), "{err}");
    let err = p.write(&locator, &value()).unwrap_err();
    assert!(err.is_transient(), "{err}");

    server.unseal();
    let read = p.read(&locator, VersionSelector::Exact(version)).unwrap();
    assert_eq!(read.value.expose_secret(), b"fault-test-value-1234");
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_killed_server_is_a_transient_error() {
    let mut server = start();
    let p = VaultProvider::new(root_client(&server), fresh_mount("kill"));
    let locator = Locator::new("killed/value").unwrap();
    p.write(&locator, &value()).unwrap();
    server.kill();
    let err = p.read(&locator, VersionSelector::Latest).unwrap_err();
    assert!(matches!(err, ProviderError::Unavailable { .. }), "{err}");
    let err = p.write(&locator, &value()).unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    // A listener that accepts connections and never answers: the loopback
    // stand-in for a hung server or a black-holed network.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline && held.len() < 3 {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        held
    });
    let client = VaultClient::new(
        VaultConfig::new(&address)
            .unwrap()
            .dangerous_allow_http()
            .timeout(Duration::from_millis(300))
            .retries(1)
            .backoff(Duration::from_millis(1), Duration::from_millis(5)),
        VaultAuth::token(SecretString::from("unused-token".to_owned())),
    )
    .unwrap();
    let err = client.login().unwrap_err();
    assert!(matches!(err, VaultError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
    drop(accepted);
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn a_forbidden_path_is_permission_denied_without_a_new_login() {
    let server = start();
    policy(
        &server,
        "only-allowed",
        r#"path "secret/data/allowed/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/allowed/*" { capabilities = ["read", "list"] }"#,
    );
    let (role_id, secret_id) = app_role(&server, "narrow", "only-allowed", &[]);
    let p = VaultProvider::new(
        VaultClient::new(config(&server), VaultAuth::app_role(role_id, secret_id)).unwrap(),
        tyrum_secrets_vault::KvMount::new("secret").unwrap(),
    );
    let allowed = Locator::new("allowed/key").unwrap();
    p.write(&allowed, &value()).unwrap();
    let tokens = token_count(&server);

    let forbidden = Locator::new("forbidden/key").unwrap();
    for result in [
        p.read(&forbidden, VersionSelector::Latest).map(|_| ()),
        p.write(&forbidden, &value()).map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, ProviderError::PermissionDenied { .. }),
            "{err}"
        );
        assert!(!err.is_transient());
        assert!(err.to_string().contains("policies"), "{err}");
    }
    assert_eq!(
        token_count(&server),
        tokens,
        "a policy denial made the client log in again"
    );
    p.read(&allowed, VersionSelector::Latest).unwrap();
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn the_dev_tls_ca_is_accepted_when_configured_and_refused_when_not() {
    let server = BaoServer::start_tls();
    assert!(server.address().starts_with("https://"));
    let token = || VaultAuth::token(SecretString::from(server.root_token().to_owned()));

    // Configured with the server's CA: works.
    let p = VaultProvider::new(
        VaultClient::new(config(&server), token()).unwrap(),
        fresh_mount("tls"),
    );
    let locator = Locator::new("tls/value").unwrap();
    p.write(&locator, &value()).unwrap();

    // The platform's roots do not know the dev CA: a TLS error, not
    // transient, nothing sent.
    let untrusting = VaultClient::new(
        VaultConfig::new(server.address())
            .unwrap()
            .timeout(Duration::from_secs(5)),
        token(),
    )
    .unwrap();
    let err = untrusting.login().unwrap_err();
    assert!(matches!(err, VaultError::Tls { .. }), "{err}");
    assert!(!err.is_transient());

    // Another CA is refused too.
    let other = BaoServer::start_tls();
    let wrong_ca = VaultClient::new(
        VaultConfig::new(server.address())
            .unwrap()
            .ca_pem_file(other.ca_pem().unwrap())
            .unwrap(),
        token(),
    )
    .unwrap();
    let err = wrong_ca.login().unwrap_err();
    assert!(matches!(err, VaultError::Tls { .. }), "{err}");

    // Plain HTTP to a TLS server's address is refused before sending.
    let http = server.address().replacen("https://", "http://", 1);
    let err = VaultClient::new(VaultConfig::new(&http).unwrap(), token()).unwrap_err();
    assert!(matches!(err, VaultError::Config { .. }), "{err}");
}
