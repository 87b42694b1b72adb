//! `Secrets::open` on the Kubernetes profile: a Secret volume laid out as
//! kubelet writes it, rotated by a `..data` swap while the handle is in use,
//! plus a value from an environment variable.

#![cfg(feature = "env")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "../crates/tyrum-secrets-env/tests/support/kubelet.rs"]
mod kubelet;
mod support;

use kubelet::KubeletVolume;
use tyrum_secrets::{
    Config, Creation, ExposeSecret, KindSpec, Locator, NewSecret, OpenError, Profile, ProviderId,
    Scope, SecretKind, Secrets,
};

fn config(setup: &support::Setup, volume: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.profile = Some(Profile::Kubernetes);
    config.state_dir = Some(setup.state_dir());
    config.policy_file = Some(setup.dir().join("policy.json"));
    config.kubernetes.mounted_dir = Some(volume.to_owned());
    config
        .kubernetes
        .env_vars
        .insert("path".to_owned(), "PATH".to_owned());
    // The test harness runs threads, so the variable cannot be removed; it
    // is PATH, kept on purpose (removal is tested in open_processes.rs).
    config.kubernetes.dangerous_keep_env = true;
    config
}

fn import(secrets: &Secrets, provider: &str, locator: &str) -> tyrum_secrets::SecretHandle {
    let spec = NewSecret::new(
        ProviderId::new(provider).unwrap(),
        Scope::new("ci").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    secrets
        .admin()
        .import(spec, Locator::new(locator).unwrap(), &support::operator())
        .unwrap()
}

#[test]
fn a_mounted_secret_follows_a_kubelet_swap_and_stays_masked() {
    let setup = support::Setup::new();
    let root = setup.dir().join("volume");
    std::fs::create_dir(&root).unwrap();
    let volume =
        KubeletVolume::create(&root, &[("db-password", b"pg-mounted-first-1".to_vec())]).unwrap();

    let secrets = Secrets::open(&config(&setup, &root)).unwrap();
    let created = &secrets.report().created;
    let key_file = setup.state_dir().join("audit.key");
    assert!(
        created.contains(&Creation::KeyFile(key_file.clone())),
        "{created:?}"
    );
    assert!(created.contains(&Creation::Catalog(setup.state_dir().join("catalog.json"))));
    assert_eq!(std::fs::metadata(&key_file).unwrap().len(), 64);

    let handle = import(&secrets, "mounted", "db-password");
    let first = secrets
        .resolver()
        .resolve(handle.id(), &support::request())
        .unwrap();
    assert_eq!(first.expose_secret(), b"pg-mounted-first-1");

    // kubelet rotates the Secret: a new timestamped directory and a `..data` swap.
    volume
        .write(&[("db-password", b"pg-mounted-second-2".to_vec())])
        .unwrap();
    let second = secrets
        .resolver()
        .resolve(handle.id(), &support::request())
        .unwrap();
    assert_eq!(second.expose_secret(), b"pg-mounted-second-2");
    let shown = secrets
        .redactor()
        .redact_str("old pg-mounted-first-1 new pg-mounted-second-2")
        .into_inner();
    assert_eq!(shown, format!("old [{0}] new [{0}]", handle.id()));
    drop(secrets);

    // A restart pre-loads the current value.
    let again = Secrets::open(&config(&setup, &root)).unwrap();
    assert!(again.report().created.is_empty());
    assert_eq!(again.report().preload.loaded_count(), 1);
    assert!(
        !again
            .redactor()
            .redact_str("pg-mounted-second-2")
            .as_str()
            .contains("pg-mounted")
    );
    assert_eq!(again.verify_audit().unwrap().len(), 1);
}

#[test]
fn an_environment_variable_is_a_value_of_provider_env() {
    let setup = support::Setup::new();
    let root = setup.dir().join("volume");
    std::fs::create_dir(&root).unwrap();
    let secrets = Secrets::open(&config(&setup, &root)).unwrap();
    let handle = import(&secrets, "env", "path");
    let resolved = secrets
        .resolver()
        .resolve(handle.id(), &support::request())
        .unwrap();
    let expected = std::env::var_os("PATH").unwrap();
    assert_eq!(resolved.expose_secret(), expected.as_encoded_bytes());
    // The provider is read-only: creating a value there is refused.
    let spec = NewSecret::new(
        ProviderId::new("mounted").unwrap(),
        Scope::new("ci").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    let err = secrets
        .admin()
        .create(
            spec,
            &tyrum_secrets::SecretBytes::from(b"sk-not-writable".to_vec()),
            &support::operator(),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("read-only") || err.to_string().contains("not supported"),
        "{err}"
    );
}

#[test]
fn a_pod_without_a_configured_source_is_told_what_to_set() {
    let setup = support::Setup::new();
    let mut config = Config::default();
    config.profile = Some(Profile::Kubernetes);
    config.state_dir = Some(setup.state_dir());
    let err = Secrets::open(&config).unwrap_err();
    assert!(matches!(err, OpenError::MissingSetting { .. }), "{err:?}");
    assert!(err.to_string().contains("kubernetes.mounted_dir"), "{err}");
    assert!(
        !setup.state_dir().exists(),
        "a failed open left the state directory"
    );
}

#[test]
fn a_missing_audit_key_file_on_a_later_run_is_refused() {
    let setup = support::Setup::new();
    let root = setup.dir().join("volume");
    std::fs::create_dir(&root).unwrap();
    drop(Secrets::open(&config(&setup, &root)).unwrap());
    std::fs::remove_file(setup.state_dir().join("audit.key")).unwrap();
    let err = Secrets::open(&config(&setup, &root)).unwrap_err();
    assert!(err.to_string().contains("audit key file"), "{err}");
    assert!(err.to_string().contains("Restore it"), "{err}");
}

#[test]
fn keeping_env_secrets_needs_the_dangerous_setting_and_is_noted() {
    let setup = support::Setup::new();
    let root = setup.dir().join("volume");
    std::fs::create_dir(&root).unwrap();
    let mut config = config(&setup, &root);

    // remove_env = false alone is refused, naming the opt-out.
    config.kubernetes.dangerous_keep_env = false;
    config.kubernetes.remove_env = false;
    let err = Secrets::open(&config).unwrap_err();
    assert!(
        matches!(&err, OpenError::MissingSetting { key, .. } if key.contains("kubernetes.dangerous_keep_env")),
        "{err:?}"
    );

    // With it, the open goes ahead and its report says what it means.
    config.kubernetes.dangerous_keep_env = true;
    let secrets = Secrets::open(&config).unwrap();
    let notes = secrets.report().notes.join("\n");
    assert!(notes.contains("kubernetes.dangerous_keep_env"), "{notes}");
    assert!(notes.contains("every child process"), "{notes}");
}
