//! The JSON-file store's loader: a wrong path or a damaged file is a typed
//! error that never quotes the file, never a hang or a panic.

use super::*;

#[test]
fn a_damaged_store_file_is_corrupt_and_the_error_quotes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.json");
    for (content, what) in [
        ("sk-live-CANARY-not-json", "invalid JSON syntax"),
        (
            r#"{"format": "sk-live-CANARY", "version": 1, "profiles": {}}"#,
            "format is not",
        ),
        (
            r#"{"format": "tyrum-secrets-auth-profiles", "version": 9, "profiles": {}}"#,
            "version 9",
        ),
        (
            r#"{"format": "tyrum-secrets-auth-profiles", "version": 1, "profiles": {"p": {"id": "sk-live-CANARY"}}}"#,
            "not an auth-profile store",
        ),
        (
            r#"{"format": "tyrum-secrets-auth-profiles", "version": 1, "profi"#,
            "ends early",
        ),
    ] {
        std::fs::write(&path, content).unwrap();
        let error = JsonFileAuthProfileStore::open(&path).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, AuthProfileError::Corrupt { .. }), "{text}");
        assert!(text.contains(what), "{what}: {text}");
        assert!(!text.contains("CANARY"), "{text}");
    }
}

#[test]
fn a_profile_filed_under_another_id_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.json");
    let store = JsonFileAuthProfileStore::open(&path).unwrap();
    let p =
        AuthProfile::api_key(id("p"), "agent-a", openai(), HandleId::generate().unwrap()).unwrap();
    store.compare_and_set(p, None).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("\"p\": {", "\"q\": {", 1);
    std::fs::write(&path, text).unwrap();
    let error = JsonFileAuthProfileStore::open(&path).unwrap_err();
    assert!(error.to_string().contains("carries another id"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_store_path_naming_a_device_or_directory_fails_at_once() {
    for path in ["/dev/zero", "/"] {
        let error = JsonFileAuthProfileStore::open(path).unwrap_err();
        let AuthProfileError::Io { source, .. } = &error else {
            panic!("{path}: {error}")
        };
        assert_eq!(
            source.kind(),
            std::io::ErrorKind::InvalidInput,
            "{path}: {error}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_store_file_and_its_lock_directory_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.json");
    let store = JsonFileAuthProfileStore::open(&path).unwrap();
    store
        .compare_and_set(
            AuthProfile::api_key(id("p"), "agent-a", openai(), HandleId::generate().unwrap())
                .unwrap(),
            None,
        )
        .unwrap();
    drop(store.lock_refresh(&id("p"), Duration::ZERO).unwrap());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("profiles.json.refresh")), 0o700);
}
