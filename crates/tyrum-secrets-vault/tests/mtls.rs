//! Mutual TLS against a real OpenBao: a dev server with a second listener
//! that requires a client certificate signed by a CA made for this test
//! (`tls_require_and_verify_client_cert`). With
//! `VaultConfig::client_cert_pem` the provider writes and reads over it;
//! without a client certificate, or with one from another CA, every call
//! fails at once with a typed TLS error that names the client certificate
//! and carries no token, value or key.
//!
//! Each refusal is checked next to a control that differs only in the
//! client certificate and works: a client that never sent its certificate
//! would fail the control, so no test here passes without the certificate
//! reaching the server.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use support::*;
use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, SecretSlice, SecretString,
    VersionSelector,
};
use tyrum_secrets_testkit::bao::BaoServer;
use tyrum_secrets_vault::{VaultAuth, VaultClient, VaultConfig, VaultError, VaultProvider};

/// A throwaway certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `sans` with `usage`; (certificate, key) PEM.
    fn leaf(&self, name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Leaf {
    fn key(&self) -> SecretSlice<u8> {
        SecretSlice::from(self.key_pem.as_bytes().to_vec())
    }
}

/// One server for this test binary, and the certificates around it.
struct Fixture {
    server: BaoServer,
    /// Signed the server's certificate: what clients trust (`ca_pem`).
    server_ca: Ca,
    /// Signed by the CA the listener trusts for clients.
    client: Leaf,
    /// A well-formed client certificate from a CA the listener does not
    /// trust.
    rogue: Leaf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server_ca = Ca::new("tyrum test server CA");
        let client_ca = Ca::new("tyrum test client CA");
        let rogue_ca = Ca::new("tyrum test rogue CA");
        let server_cert =
            server_ca.leaf("bao", &["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let client = client_ca.leaf("worker", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let rogue = rogue_ca.leaf("worker", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let server = BaoServer::builder()
            .mtls_listener(
                &server_cert.cert_pem,
                &server_cert.key_pem,
                &client_ca.pem(),
            )
            .start();
        keep_all_versions(&server);
        Fixture {
            server,
            server_ca,
            client,
            rogue,
        }
    })
}

/// A configuration for the mTLS listener trusting the server's CA, without
/// a client certificate; no retries, so a refusal is seen as it comes.
fn mtls_config(f: &Fixture) -> VaultConfig {
    let address = f.server.mtls_address().expect("the fixture asks for one");
    assert!(address.starts_with("https://"), "{address}");
    VaultConfig::new(address)
        .unwrap()
        .ca_pem(f.server_ca.pem().as_bytes())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .retries(0)
}

fn with_cert(config: VaultConfig, leaf: &Leaf) -> VaultConfig {
    config
        .client_cert_pem(leaf.cert_pem.as_bytes(), &leaf.key())
        .unwrap()
}

fn root_token(f: &Fixture) -> VaultAuth {
    VaultAuth::token(SecretString::from(f.server.root_token().to_owned()))
}

const VALUE: &[u8] = b"mtls-canary-value-7c41\x00\xff binary tail";

/// What no refusal may carry: the token, the value, the client key.
fn assert_no_secret(f: &Fixture, leaf: &Leaf, text: &str) {
    assert!(!text.contains(f.server.root_token()), "token in: {text}");
    assert!(!text.contains("mtls-canary-value"), "value in: {text}");
    let key_body = leaf.key_pem.lines().nth(1).expect("a PEM body line");
    assert!(!text.contains(key_body), "client key in: {text}");
    assert!(!text.contains("PRIVATE KEY"), "key PEM in: {text}");
}

/// The refusal of a client whose certificate the listener does not accept.
fn assert_refused(f: &Fixture, leaf: &Leaf, config: VaultConfig) {
    let address = config.address().to_owned();
    // The client: a typed error naming the refused client certificate (not
    // the server's CA), not transient: retrying cannot help.
    let client = VaultClient::new(config.clone(), root_token(f)).unwrap();
    let err = client.login().unwrap_err();
    assert!(
        matches!(err, VaultError::ClientCertRefused { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient(), "{err}");
    let message = err.to_string();
    assert!(message.contains(&address), "{message}");
    assert!(message.contains("client_cert_pem"), "{message}");
    assert_no_secret(f, leaf, &message);
    assert_no_secret(f, leaf, &format!("{err:?}"));

    // The provider: writes and reads fail the same way; nothing is written.
    let p = VaultProvider::new(
        VaultClient::new(config, root_token(f)).unwrap(),
        fresh_mount("refused"),
    );
    let locator = Locator::new("mtls/refused").unwrap();
    let err = p
        .write(&locator, &SecretBytes::from(VALUE.to_vec()))
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("client_cert_pem"), "{err}");
    assert_no_secret(f, leaf, &err.to_string());
    assert_no_secret(f, leaf, &format!("{err:?}"));
    let err = p.read(&locator, VersionSelector::Latest).unwrap_err();
    assert!(
        matches!(err, ProviderError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert_no_secret(f, leaf, &err.to_string());

    // Over the plain dev listener, as root: the refused write left nothing.
    let plain = VaultProvider::new(root_client(&f.server), p.mount().clone());
    let err = plain.read(&locator, VersionSelector::Latest).unwrap_err();
    assert!(matches!(err, ProviderError::NotFound { .. }), "{err:?}");
}

#[test]
#[ignore = "needs OpenBao (bao); run scripts/test"]
fn a_client_certificate_from_the_trusted_ca_writes_and_reads_over_mtls() {
    let f = fixture();
    let p = VaultProvider::new(
        VaultClient::new(with_cert(mtls_config(f), &f.client), root_token(f)).unwrap(),
        fresh_mount("mtls"),
    );
    let locator = Locator::new("mtls/value").unwrap();
    let first = p
        .write(&locator, &SecretBytes::from(VALUE.to_vec()))
        .unwrap();
    let second = p
        .write(&locator, &SecretBytes::from(b"second".to_vec()))
        .unwrap();
    assert_ne!(first, second);
    let read = p.read(&locator, VersionSelector::Exact(first)).unwrap();
    assert_eq!(read.value.expose_secret(), VALUE);
    let latest = p.read(&locator, VersionSelector::Latest).unwrap();
    assert_eq!(latest.version, second);
    assert_eq!(latest.value.expose_secret(), b"second");

    // The same server holds it: read back over the plain dev listener.
    let plain = VaultProvider::new(root_client(&f.server), p.mount().clone());
    let read = plain.read(&locator, VersionSelector::Exact(first)).unwrap();
    assert_eq!(read.value.expose_secret(), VALUE);

    // The configuration's Debug says a client certificate is set, and
    // shows none of its key.
    let debug = format!("{:?}", with_cert(mtls_config(f), &f.client));
    assert!(debug.contains("client_cert: true"), "{debug}");
    assert_no_secret(f, &f.client, &debug);
}

#[test]
#[ignore = "needs OpenBao (bao); run scripts/test"]
fn without_a_client_certificate_the_mtls_listener_refuses_with_a_typed_error() {
    let f = fixture();
    // Control: the same configuration plus the client certificate works.
    VaultClient::new(with_cert(mtls_config(f), &f.client), root_token(f))
        .unwrap()
        .login()
        .unwrap();
    assert_refused(f, &f.client, mtls_config(f));
}

#[test]
#[ignore = "needs OpenBao (bao); run scripts/test"]
fn a_client_certificate_from_another_ca_is_refused() {
    let f = fixture();
    // Control: the trusted CA's certificate works where the rogue one fails.
    VaultClient::new(with_cert(mtls_config(f), &f.client), root_token(f))
        .unwrap()
        .login()
        .unwrap();
    assert_refused(f, &f.rogue, with_cert(mtls_config(f), &f.rogue));
}
