//! A value, a token and an AppRole secret id never appear in an error, a
//! `Debug` output or a log line at trace level (this crate's `tracing`
//! events and ureq's `log` records), with the redacting `tracing` writer and
//! without it, through every path that touches them: writes, reads, bad
//! stored data, denials, revoked tokens, failed logins.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::sync::{Arc, Mutex, OnceLock};

use support::*;
use tyrum_secrets_core::{
    HandleId, Locator, Redactor, SecretBytes, SecretProvider, SecretString, VersionSelector,
};
use tyrum_secrets_testkit::bao::random_hex;
use tyrum_secrets_vault::{KvMount, VaultAuth, VaultClient, VaultProvider};

/// Every `log` record of the process (ureq logs through `log`).
fn log_records() -> &'static Mutex<Vec<u8>> {
    static RECORDS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        struct Capture;
        impl log::Log for Capture {
            fn enabled(&self, _: &log::Metadata<'_>) -> bool {
                true
            }
            fn log(&self, record: &log::Record<'_>) {
                let line = format!("{} {} {}\n", record.level(), record.target(), record.args());
                log_records()
                    .lock()
                    .unwrap()
                    .extend_from_slice(line.as_bytes());
            }
            fn flush(&self) {}
        }
        log::set_boxed_logger(Box::new(Capture)).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    RECORDS.get_or_init(Mutex::default)
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Canaries {
    value: String,
    token: String,
    secret_id: String,
    wrong_secret_id: String,
}

impl Canaries {
    fn new() -> Self {
        let tag = random_hex(8);
        Self {
            value: format!("CANARY-value-{tag}"),
            token: format!("CANARY-token-{tag}"),
            secret_id: format!("CANARY-secretid-{tag}"),
            wrong_secret_id: format!("CANARY-wrongid-{tag}"),
        }
    }

    fn all(&self) -> [&str; 4] {
        [
            &self.value,
            &self.token,
            &self.secret_id,
            &self.wrong_secret_id,
        ]
    }
}

/// Runs every path and returns what it printed: errors and `Debug`s.
fn exercise(c: &Canaries) -> Vec<String> {
    let server = shared_server();
    policy(server, "kv", KV_ALL);
    let mut out = Vec::new();
    let mut note = |what: String| out.push(what);

    let role = format!("canary-{}", random_hex(4));
    let (role_id, _) = app_role(server, &role, "kv", &[]);
    server.bao(&[
        "write",
        &format!("auth/approle/role/{role}/custom-secret-id"),
        &format!("secret_id={}", c.secret_id),
    ]);
    server.bao(&["token", "create", &format!("-id={}", c.token), "-policy=kv"]);

    let mount = fresh_mount("canary");
    let auth = VaultAuth::app_role(role_id.clone(), SecretString::from(c.secret_id.clone()));
    note(format!("{auth:?}"));
    let client = VaultClient::new(config(server), auth).unwrap();
    let p = VaultProvider::new(client.clone(), mount.clone());
    let locator = Locator::new("canary/value").unwrap();
    let value = SecretBytes::from(c.value.clone().into_bytes());
    let v1 = p.write(&locator, &value).unwrap();
    let read = p.read(&locator, VersionSelector::Latest).unwrap();
    note(format!("{read:?} {p:?} {client:?} {p:#?}"));
    note(format!("{:?}", p.versions(&locator).unwrap()));
    p.delete(&locator, v1).unwrap();
    let gone = p.read(&locator, VersionSelector::Exact(v1)).unwrap_err();
    note(format!("{gone} {gone:?}"));

    // Data an operator wrote in another shape, holding the canary.
    let kv_path = |name: &str| format!("{}/{name}", mount.prefix().unwrap());
    server.bao(&[
        "kv",
        "put",
        "-mount=secret",
        &kv_path("bad/shape"),
        &format!("api_key={}", c.value),
    ]);
    server.bao(&[
        "kv",
        "put",
        "-mount=secret",
        &kv_path("bad/encoding"),
        "encoding=base64",
        &format!("value={}!", c.value),
    ]);
    for bad in ["bad/shape", "bad/encoding"] {
        let err = p
            .read(&Locator::new(bad).unwrap(), VersionSelector::Latest)
            .unwrap_err();
        note(format!("{err} {err:?}"));
    }

    // A denial, through a token that may only read elsewhere.
    policy(
        server,
        "elsewhere",
        r#"path "secret/data/elsewhere/*" { capabilities = ["read"] }"#,
    );
    let narrow = create_token(server, &["-policy=elsewhere"]);
    let denied = VaultProvider::new(
        VaultClient::new(config(server), VaultAuth::token(SecretString::from(narrow))).unwrap(),
        mount.clone(),
    )
    .read(&locator, VersionSelector::Latest)
    .unwrap_err();
    note(format!("{denied} {denied:?}"));

    // The canary token: works, then is revoked.
    let by_token = VaultProvider::new(
        VaultClient::new(
            config(server),
            VaultAuth::token(SecretString::from(c.token.clone())),
        )
        .unwrap(),
        mount.clone(),
    );
    by_token.write(&locator, &value).unwrap();
    note(format!("{by_token:?}"));
    server.bao(&["token", "revoke", &c.token]);
    let revoked = by_token
        .read(&locator, VersionSelector::Latest)
        .unwrap_err();
    note(format!("{revoked} {revoked:?}"));

    // A login with a wrong secret id.
    let wrong = VaultClient::new(
        config(server),
        VaultAuth::app_role(role_id, SecretString::from(c.wrong_secret_id.clone())),
    )
    .unwrap();
    let err = wrong.login().unwrap_err();
    note(format!("{err} {err:?} {wrong:?}"));

    // The catalog store and a mount, for their Debug.
    let store =
        tyrum_secrets_vault::VaultCatalogStore::new(client, KvMount::new("secret").unwrap());
    note(format!("{store:?}"));
    out
}

fn assert_clean(c: &Canaries, printed: &[String], tracing_out: &[u8]) {
    let logs = String::from_utf8_lossy(&log_records().lock().unwrap()).into_owned();
    let traced = String::from_utf8_lossy(tracing_out).into_owned();
    assert!(
        logs.contains("ureq"),
        "no ureq log record was captured at trace level: the check would see nothing"
    );
    assert!(
        traced.contains("logged in to OpenBao"),
        "no tracing event was captured: the check would see nothing"
    );
    for canary in c.all() {
        for text in printed {
            assert!(
                !text.contains(canary),
                "an error or Debug shows {canary}: {text}"
            );
        }
        assert!(!logs.contains(canary), "a log record shows {canary}");
        assert!(!traced.contains(canary), "a tracing event shows {canary}");
    }
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn no_secret_in_errors_debug_or_trace_logs_without_redaction() {
    let c = Canaries::new();
    log_records();
    let buffer = Buffer::default();
    let sink = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let printed = tracing::subscriber::with_default(subscriber, || exercise(&c));
    let traced = buffer.0.lock().unwrap().clone();
    assert_clean(&c, &printed, &traced);
}

#[test]
#[ignore = "needs OpenBao; run scripts/test"]
fn no_secret_in_errors_debug_or_trace_logs_with_the_redacting_writer() {
    let c = Canaries::new();
    log_records();
    let redactor = Redactor::new();
    redactor
        .register(
            &HandleId::generate().unwrap(),
            &SecretBytes::from(c.value.clone().into_bytes()),
        )
        .unwrap();
    let buffer = Buffer::default();
    let sink = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(redactor.make_writer(move || sink.clone()))
        .finish();
    let printed = tracing::subscriber::with_default(subscriber, || exercise(&c));
    let traced = buffer.0.lock().unwrap().clone();
    assert_clean(&c, &printed, &traced);
}
