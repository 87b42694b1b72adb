//! Mapping environment variables to locators, and the refusals of the env
//! provider. Tests that change the process environment live in
//! `env_process.rs`, which runs them in child processes.

#![allow(clippy::expect_used, reason = "a test fails loudly on a broken setup")]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use tyrum_secrets_core::{
    ExposeSecret, Locator, ProviderError, SecretBytes, SecretProvider, Version, VersionSelector,
    VersionState,
};
use tyrum_secrets_env::{EnvError, EnvLoader};

fn locator(name: &str) -> Locator {
    Locator::new(name).expect("valid locator")
}

fn vars(list: &[(&str, &[u8])]) -> Vec<(OsString, OsString)> {
    list.iter()
        .map(|(name, value)| ((*name).into(), OsString::from_vec(value.to_vec())))
        .collect()
}

fn read(provider: &impl SecretProvider, name: &str) -> Vec<u8> {
    provider
        .read(&locator(name), VersionSelector::Latest)
        .expect("read")
        .value
        .expose_secret()
        .to_vec()
}

#[test]
fn a_prefix_rule_maps_the_rest_of_the_name_and_ignores_other_variables() {
    let provider = EnvLoader::new()
        .prefix("TYRUM_SECRET_")
        .load_from(vars(&[
            ("TYRUM_SECRET_OPENAI", b"sk-openai-1111"),
            ("TYRUM_SECRET_db/password", b"pg-2222"),
            ("TYRUM_SECRETX", b"not-mine-3333"),
            ("HOME", b"/root"),
        ]))
        .expect("load");
    assert_eq!(read(&provider, "OPENAI"), b"sk-openai-1111");
    assert_eq!(read(&provider, "db/password"), b"pg-2222");
    let listed = provider.list().expect("list");
    assert_eq!(listed, [locator("OPENAI"), locator("db/password")]);
    assert_eq!(
        provider.variable_name(&locator("OPENAI")),
        Some(std::ffi::OsStr::new("TYRUM_SECRET_OPENAI"))
    );
}

#[test]
fn an_explicit_map_reads_named_variables_and_may_share_one() {
    let provider = EnvLoader::new()
        .variable(locator("openai/api-key"), "OPENAI_API_KEY")
        .variable(locator("openai/alias"), "OPENAI_API_KEY")
        .load_from(vars(&[("OPENAI_API_KEY", b"sk-explicit-4444")]))
        .expect("load");
    assert_eq!(read(&provider, "openai/api-key"), b"sk-explicit-4444");
    assert_eq!(read(&provider, "openai/alias"), b"sk-explicit-4444");
}

#[test]
fn a_missing_mapped_variable_fails_the_load() {
    let result = EnvLoader::new()
        .variable(locator("k"), "NOT_SET_ANYWHERE")
        .load_from(vars(&[("OTHER", b"x")]));
    assert!(
        matches!(&result, Err(EnvError::Missing { name }) if name == "NOT_SET_ANYWHERE"),
        "{:?}",
        result.err()
    );
}

#[test]
fn an_impossible_variable_name_is_refused() {
    for name in ["", "A=B", "A\0B"] {
        let result = EnvLoader::new()
            .variable(locator("k"), name)
            .load_from(Vec::new());
        assert!(
            matches!(result, Err(EnvError::InvalidName { .. })),
            "{name:?}"
        );
    }
}

#[test]
fn two_variables_for_one_locator_are_refused() {
    let result = EnvLoader::new()
        .variable(locator("KEY"), "EXPLICIT")
        .prefix("P_")
        .load_from(vars(&[("EXPLICIT", b"one-value"), ("P_KEY", b"two-value")]));
    assert!(
        matches!(result, Err(EnvError::DuplicateLocator { .. })),
        "{:?}",
        result.err()
    );
}

#[test]
fn non_utf8_values_load_as_their_exact_bytes() {
    let value: &[u8] = b"\xff\xfe-not-utf8-\x80\x00?";
    let provider = EnvLoader::new()
        .prefix("BIN_")
        .load_from(vars(&[("BIN_KEY", value)]))
        .expect("load");
    assert_eq!(read(&provider, "KEY"), value);
}

#[test]
fn names_that_cannot_be_locators_are_skipped_not_a_panic() {
    let provider = EnvLoader::new()
        .prefix("P_")
        .load_from(vec![
            (OsString::from_vec(b"P_\xffBAD".to_vec()), "v1-value".into()),
            ("P_".into(), "v2-value".into()),
            ("P_TAB\tNAME".into(), "v3-value".into()),
            ("P_GOOD".into(), "v4-value".into()),
        ])
        .expect("load");
    assert_eq!(provider.list().expect("list"), [locator("GOOD")]);
    assert!(format!("{provider:?}").contains("skipped_names: 3"));
}

#[test]
fn every_locator_has_one_version_and_writes_are_read_only() {
    let provider = EnvLoader::new()
        .prefix("P_")
        .load_from(vars(&[("P_KEY", b"value-5555")]))
        .expect("load");
    let key = locator("KEY");
    let got = provider.read(&key, VersionSelector::Latest).expect("read");
    assert_eq!(got.version, Version::FIRST);
    let v2 = Version::FIRST.next().expect("v2");
    assert!(matches!(
        provider.read(&key, VersionSelector::Exact(v2)),
        Err(ProviderError::VersionNotFound { .. })
    ));
    let versions = provider.versions(&key).expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].state, VersionState::Live);
    assert!(matches!(
        provider.write(&key, &SecretBytes::from(b"x".to_vec())),
        Err(ProviderError::ReadOnly { .. })
    ));
    assert!(matches!(
        provider.versions(&locator("absent")),
        Err(ProviderError::NotFound { .. })
    ));
    assert!(provider.capabilities().read_only);
}

#[test]
fn removal_is_refused_by_load_from() {
    let result = EnvLoader::new()
        .remove_from_environment(true)
        .load_from(Vec::new());
    assert!(matches!(
        result,
        Err(EnvError::RemovalNeedsProcessEnvironment)
    ));
}

#[test]
fn removal_is_refused_while_another_thread_runs_and_removes_nothing() {
    let (stop, parked) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || parked.recv());
    let result = EnvLoader::new()
        .variable(locator("cargo/pkg-name"), "CARGO_PKG_NAME")
        .remove_from_environment(true)
        .load();
    stop.send(()).expect("wake the thread");
    let _ = other.join();
    assert!(
        matches!(result, Err(EnvError::NotSingleThreaded { threads }) if threads >= 2),
        "{:?}",
        result.err()
    );
    assert!(
        std::env::var_os("CARGO_PKG_NAME").is_some(),
        "a refused load removed the variable"
    );
}

#[test]
fn debug_of_the_provider_and_errors_holds_no_value() {
    const CANARY: &[u8] = b"CANARY-env-debug-9d8c7b";
    let provider = EnvLoader::new()
        .prefix("P_")
        .load_from(vars(&[("P_KEY", CANARY)]))
        .expect("load");
    let duplicate = EnvLoader::new()
        .variable(locator("KEY"), "OTHER")
        .prefix("P_")
        .load_from(vars(&[("P_KEY", CANARY), ("OTHER", CANARY)]))
        .expect_err("duplicate");
    let read = provider
        .read(&locator("KEY"), VersionSelector::Latest)
        .expect("read");
    let missing = provider
        .read(&locator("NOPE"), VersionSelector::Latest)
        .expect_err("missing");
    let text = format!("{provider:?} {provider:#?} {read:?} {duplicate:?} {duplicate} {missing:?}");
    assert!(!text.contains("CANARY"), "a value leaked: {text}");
}
