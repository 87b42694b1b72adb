use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::keys::{KEYS, Kind, env_name};
use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

fn from_text_and_env(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load::load(Some((text, None)), vars(env))
}

/// A value of the right kind for `key`, as TOML.
fn sample(kind: Kind) -> String {
    match kind {
        Kind::Str | Kind::Path | Kind::StatePath => "\"/sample\"".to_owned(),
        Kind::Integer { min, .. } => min.to_string(),
        Kind::Bool => "true".to_owned(),
        Kind::Enum(names) => format!("\"{}\"", names[0]),
        Kind::StrMap => "{ \"a/b\" = \"A_B\" }".to_owned(),
    }
}

/// TOML text that sets every key in the table once.
fn every_key() -> String {
    let mut top = String::new();
    let mut sections: std::collections::BTreeMap<&str, String> = Default::default();
    for key in KEYS {
        match key.path.split_once('.') {
            None => top.push_str(&format!("{} = {}\n", key.path, sample(key.kind))),
            Some((section, name)) => sections
                .entry(section)
                .or_default()
                .push_str(&format!("{name} = {}\n", sample(key.kind))),
        }
    }
    // Only one key source may be set.
    top = top.replace("\nkey_file = \"/sample\"\n", "\n");
    for (section, body) in sections {
        let body = body
            .replace("keychain_key = \"/sample\"\n", "")
            .replace("approle_secret_id_file = \"/sample\"\n", "")
            .replace("kubernetes_role = \"/sample\"\n", "");
        top.push_str(&format!("[{section}]\n{body}"));
    }
    top
}

#[test]
fn smallest_config_is_profile_and_state_dir() {
    let config =
        Config::from_toml_str("profile = \"single-host\"\nstate_dir = \"/var/lib/t\"\n").unwrap();
    assert_eq!(config.profile, Some(Profile::SingleHost));
    assert_eq!(config.state_dir.as_deref(), Some(Path::new("/var/lib/t")));
    assert_eq!(config.file.path, PathBuf::from("secrets.tyrum"));
    assert_eq!(config.audit.output, AuditOutput::File);
    assert!(config.audit.fingerprints);
    assert_eq!(config.origin("state_dir").to_string(), "config line 2");
    assert_eq!(config.origin("audit.dir"), Location::Default);
}

#[test]
fn the_key_table_matches_the_config_struct() {
    // Every key in the table deserializes (deny_unknown_fields would refuse
    // a key the struct lacks) ...
    let text = every_key();
    let config = Config::from_toml_str(&text).unwrap();
    // ... and every field the struct serializes is in the table.
    let out: toml::Table = toml::from_str(&config.to_string()).unwrap();
    let mut written = Vec::new();
    for (name, value) in &out {
        match value {
            toml::Value::Table(inner) if name != "kubernetes.env_vars" => {
                for inner_name in inner.keys() {
                    written.push(format!("{name}.{inner_name}"));
                }
            }
            _ => written.push(name.clone()),
        }
    }
    for path in &written {
        assert!(super::keys::find(path).is_some(), "{path} is not in KEYS");
    }
    for key in KEYS {
        let left_out = [
            "key_file",
            "file.keychain_key",
            "vault.approle_secret_id_file",
            "vault.kubernetes_role",
        ];
        if !left_out.contains(&key.path) {
            assert!(
                written.iter().any(|w| w == key.path),
                "{} not written",
                key.path
            );
        }
    }
}

#[test]
fn the_documentation_lists_every_key_and_variable() {
    let doc = include_str!("keys.md");
    for key in KEYS {
        let row = format!("| `{}` | `{}` |", key.path, env_name(key.path));
        assert!(doc.contains(&row), "keys.md lacks the row for {}", key.path);
    }
}

#[test]
fn unknown_key_names_the_key_and_its_line() {
    let err = Config::from_toml_str("profile = \"desktop\"\n\n[audit]\ntimeout = 5\n").unwrap_err();
    let ConfigError::UnknownKey { at, key, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(key, "audit.timeout");
    assert_eq!(
        at,
        &Location::File {
            path: None,
            line: 4
        }
    );
    assert!(err.to_string().contains("line 4"), "{err}");
}

#[test]
fn unknown_section_is_an_unknown_key() {
    let err = Config::from_toml_str("[vaultt]\naddress = \"x\"\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "vaultt"),
        "{err:?}"
    );
}

#[test]
fn a_secret_in_the_config_is_refused_without_echoing_it() {
    let err = Config::from_toml_str("passphrase = \"correct-horse-battery\"\n").unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("correct-horse"), "{text}");
    assert!(text.contains("secrets never go in the config"), "{text}");
    assert!(!format!("{err:?}").contains("correct-horse"));
}

#[test]
fn wrong_type_says_what_the_key_must_be_without_the_value() {
    let err = Config::from_toml_str("[audit]\ntimeout_ms = \"five-thousand-ms\"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config line 2: `audit.timeout_ms` must be an integer from 1 to 3600000, found a string"
    );
    let err = Config::from_toml_str("state_dir = 7\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "config line 1: `state_dir` must be a path (a string), found an integer"
    );
    let err = Config::from_toml_str("profile = \"laptop-with-secret\"\n").unwrap_err();
    assert!(
        err.to_string().contains("one of desktop, kubernetes"),
        "{err}"
    );
    assert!(!err.to_string().contains("laptop-with-secret"), "{err}");
    let err = Config::from_toml_str("audit = 3\n").unwrap_err();
    assert!(err.to_string().contains("a table ([audit])"), "{err}");
    let err = Config::from_toml_str("[file]\nkdf_memory_kib = 1024\n").unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[test]
fn syntax_error_gives_the_line() {
    let err = Config::from_toml_str("profile = \"desktop\"\nstate_dir = \n").unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Syntax {
                at: Location::File { line: 2, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let config = from_text_and_env(
        "profile = \"single-host\"\nstate_dir = \"/from/file\"\n[audit]\ntimeout_ms = 100\n",
        &[
            ("TYRUM_SECRETS_STATE_DIR", "/from/env"),
            ("TYRUM_SECRETS_AUDIT_FINGERPRINTS", "0"),
            (
                "TYRUM_SECRETS_KUBERNETES_ENV_VARS",
                "openai/key=OPENAI, slack=SLACK",
            ),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(config.state_dir.as_deref(), Some(Path::new("/from/env")));
    assert_eq!(config.audit.timeout_ms, 100);
    assert!(!config.audit.fingerprints);
    assert_eq!(config.kubernetes.env_vars["openai/key"], "OPENAI");
    assert_eq!(config.kubernetes.env_vars["slack"], "SLACK");
    assert_eq!(
        config.origin("state_dir").to_string(),
        "environment variable TYRUM_SECRETS_STATE_DIR"
    );
}

#[test]
fn every_key_is_settable_from_its_variable() {
    for key in KEYS {
        let value = match key.kind {
            Kind::Str | Kind::Path | Kind::StatePath => "/sample".to_owned(),
            Kind::Integer { min, .. } => min.to_string(),
            Kind::Bool => "true".to_owned(),
            Kind::Enum(names) => names[0].to_owned(),
            Kind::StrMap => "a=B".to_owned(),
        };
        let name = env_name(key.path);
        let config = from_text_and_env("", &[(&name, &value)]).unwrap();
        assert_eq!(
            config.origin(key.path),
            Location::Env { var: name.clone() },
            "{name}"
        );
    }
}

#[test]
fn unknown_variable_is_an_error_with_a_hint() {
    let err = from_text_and_env("", &[("TYRUM_SECRETS_STATEDIR", "/x")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TYRUM_SECRETS_STATEDIR is not a tyrum-secrets setting (did you mean TYRUM_SECRETS_STATE_DIR?); unset it or fix its name"
    );
    let err =
        from_text_and_env("", &[("TYRUM_SECRETS_PASSPHRASE", "hunter2-hunter2")]).unwrap_err();
    assert!(
        err.to_string().contains("secrets never go in the config"),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    // The config file's own variable is not a key and not an error.
    from_text_and_env("", &[(CONFIG_ENV, "/nowhere.toml")]).unwrap();
}

#[test]
fn wrong_type_from_a_variable_names_the_variable() {
    let err = from_text_and_env("", &[("TYRUM_SECRETS_AUDIT_TIMEOUT_MS", "soon")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TYRUM_SECRETS_AUDIT_TIMEOUT_MS: `audit.timeout_ms` must be an integer from 1 to 3600000, found text that is not an integer"
    );
}

#[test]
fn two_key_sources_conflict() {
    let err = from_text_and_env(
        "passphrase_file = \"/p\"\n",
        &[("TYRUM_SECRETS_KEY_FILE", "/k")],
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`passphrase_file` (config line 1)"), "{text}");
    assert!(text.contains("TYRUM_SECRETS_KEY_FILE"), "{text}");
}

#[test]
fn relative_paths_in_a_file_are_taken_from_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tyrum.toml");
    std::fs::write(
        &path,
        "profile = \"single-host\"\nstate_dir = \"state\"\npassphrase_file = \"/abs/pass\"\n[file]\npath = \"store.tyrum\"\n",
    )
    .unwrap();
    let config = Config::from_file(&path).unwrap();
    assert_eq!(config.state_dir, Some(dir.path().join("state")));
    assert_eq!(
        config.passphrase_file.as_deref(),
        Some(Path::new("/abs/pass"))
    );
    // Relative to the state directory, resolved at open.
    assert_eq!(config.file.path, PathBuf::from("store.tyrum"));
    assert_eq!(
        config.origin("state_dir"),
        Location::File {
            path: Some(path.clone()),
            line: 2
        }
    );
}

#[test]
fn a_config_path_that_is_not_a_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::from_file(dir.path()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let err = Config::load_from(None, vars(&[(CONFIG_ENV, "/no/such/tyrum.toml")])).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
}

#[test]
fn a_cluster_config_names_where_the_token_is_never_the_token() {
    let config = from_text_and_env(
        "profile = \"cluster\"\nstate_dir = \"/var/lib/t\"\n[vault]\naddress = \"https://bao:8200\"\nca_file = \"/etc/bao-ca.pem\"\n",
        &[(
            "TYRUM_SECRETS_VAULT_APPROLE_SECRET_ID_FILE",
            "/run/secrets/secret-id",
        )],
    )
    .unwrap();
    assert_eq!(config.profile, Some(Profile::Cluster));
    assert_eq!(config.vault.address.as_deref(), Some("https://bao:8200"));
    assert_eq!(config.vault.kv_mount, "secret");
    assert_eq!(config.vault.catalog_path, "tyrum/catalog");
    assert!(!config.vault.dangerous_allow_http);
    assert_eq!(
        config.origin("vault.approle_secret_id_file"),
        Location::Env {
            var: "TYRUM_SECRETS_VAULT_APPROLE_SECRET_ID_FILE".to_owned()
        }
    );

    // A token is not a config value: the error says where it goes.
    let err = from_text_and_env("[vault]\ntoken = \"s.hunter2hunter2\"\n", &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("vault.token_file"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn two_openbao_token_sources_are_a_conflict() {
    let err = from_text_and_env(
        "[vault]\ntoken_file = \"/run/token\"\nkubernetes_role = \"worker\"\n",
        &[],
    )
    .unwrap_err();
    let ConfigError::Conflict { first, second, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(first.contains("vault.token_file"), "{err}");
    assert!(second.contains("vault.kubernetes_role"), "{err}");
}
