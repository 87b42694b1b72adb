//! Bad input to every command of the built binary: an unknown, malformed or
//! revoked handle, a wrong passphrase, no value on standard input, a
//! missing config. Each is refused with the documented exit status and one
//! clear line, and no value shows in any output or state file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use support::{Env, assert_error, assert_ok, canary, stdout};

const UNKNOWN: &str = "secret:AAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Every command that names a handle, `H` where the handle goes.
const WITH_HANDLE: [&[&str]; 8] = [
    &["show", "H"],
    &["versions", "H"],
    &["rotate", "H"],
    &["revoke", "H", "--reason", "test"],
    &["restore", "H"],
    &["destroy", "H", "--version", "1"],
    &["policy", "check", "--agent", "ci-bot", "--tool", "t", "H"],
    &["run", "--env", "KEY=H", "--", "true"],
];

/// Every command that opens the state and names no handle.
const WITHOUT_HANDLE: [&[&str]; 6] = [
    &["list"],
    &["audit", "verify"],
    &["audit", "tail"],
    &["audit", "find-value"],
    &["redact"],
    &["put", "--scope", "ci", "--kind", "api_key"],
];

/// `args` with `handle` in place of `H`.
fn with(args: &[&str], handle: &str) -> Vec<String> {
    args.iter()
        .map(|a| match *a {
            "H" => handle.to_owned(),
            "KEY=H" => format!("KEY={handle}"),
            other => other.to_owned(),
        })
        .collect()
}

fn run(env: &Env, args: &[String], stdin: Option<&[u8]>) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args, stdin)
}

#[test]
fn every_command_refuses_an_unknown_or_malformed_handle_in_one_line() {
    let mut env = Env::init();
    // A value typed where a handle belongs: never echoed.
    let typed = canary();
    env.canaries.push(typed.clone());
    let value = canary();
    env.canaries.push(value.clone());
    for args in WITH_HANDLE {
        let out = run(&env, &with(args, UNKNOWN), Some(value.as_bytes()));
        // One line that does not name what was typed (it may be a token),
        // and points at `list`.
        assert_error(&out, 1, "unknown secret handle (not shown");
        assert!(
            support::stderr(&out).contains("tyrum-secrets list"),
            "{args:?}"
        );
        assert!(!support::stderr(&out).contains(&UNKNOWN[7..]), "{args:?}");
        assert!(!support::stderr(&out).contains("SecretAdmin"), "{args:?}");
        for malformed in ["secret:short", "secret:has space", "secret:"] {
            let out = run(&env, &with(args, malformed), Some(value.as_bytes()));
            assert_error(&out, 2, "not a secret handle");
        }
        // Too short for a handle id, with characters no id has.
        let out = run(&env, &with(args, &typed[..20]), Some(value.as_bytes()));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    env.assert_no_leaks();
}

#[test]
fn a_stored_value_typed_as_a_handle_is_refused_and_never_recorded() {
    let mut env = Env::init();
    // A value in the handle alphabet, of a handle id's length: it parses
    // as a (bare) handle id. A value the store keeps is named as such.
    let value = format!("sk_{}", &canary()[10..]);
    let handle = env.put(&value, &[]);
    for args in WITH_HANDLE {
        for typed in [value.clone(), format!("secret:{value}")] {
            if args[0] == "run" && !typed.starts_with("secret:") {
                // `run --env` takes `secret:<id>` only (tested above).
                continue;
            }
            let out = run(
                &env,
                &with(args, &typed),
                Some(b"sk-another-value-entirely"),
            );
            assert_error(&out, 2, "a secret value was given where a handle belongs");
        }
    }
    // In an env file too.
    std::fs::write(env.path("vars"), format!("KEY=secret:{value}\n")).unwrap();
    let mut command = env.command(&["run", "--env-file"]);
    command.arg(env.path("vars")).args(["--", "true"]);
    assert_error(&env.run_command(command, None), 2, "where a handle belongs");
    std::fs::remove_file(env.path("vars")).unwrap();
    // Nothing was recorded about it: beside each open's pre-load, the
    // audit log holds only the put.
    let out = env.run(&["--json", "audit", "tail", "-n", "1000"], None);
    let text = stdout(&out);
    let records: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(r#""action":"preload""#))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].contains(&handle), "{records:?}");
    env.assert_no_leaks();
}

#[test]
fn every_command_refuses_a_wrong_passphrase_in_one_line() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    std::fs::write(env.path("passphrase"), "not the passphrase\n").unwrap();
    std::fs::write(env.path("new"), "a new passphrase\n").unwrap();
    let rekey = [
        "rekey".to_owned(),
        "--new-passphrase-file".to_owned(),
        env.path("new").display().to_string(),
    ];
    let all = WITH_HANDLE
        .iter()
        .chain(&WITHOUT_HANDLE)
        .map(|args| with(args, &handle))
        .chain([rekey.to_vec()]);
    for args in all {
        let out = run(&env, &args, Some(b"sk-some-value-to-store"));
        assert_error(&out, 1, "wrong passphrase");
    }
    env.assert_no_leaks();
}

#[test]
fn every_command_refuses_a_missing_config_or_state() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let missing = env.path("nowhere.toml").display().to_string();
    std::fs::write(env.path("new"), "a new passphrase\n").unwrap();
    let rekey = [
        "rekey".to_owned(),
        "--new-passphrase-file".to_owned(),
        env.path("new").display().to_string(),
    ];
    let all = WITH_HANDLE
        .iter()
        .chain(&WITHOUT_HANDLE)
        .map(|args| with(args, &handle))
        .chain([vec!["init".to_owned()], rekey.to_vec()]);
    for args in all {
        let mut full = vec!["--config".to_owned(), missing.clone()];
        full.extend(args.iter().cloned());
        assert_error(&run(&env, &full, None), 1, "config file");

        // A config whose state directory holds no state.
        if args[0] != "init" {
            let mut command = env.command(&[]);
            command
                .args(&args)
                .env("TYRUM_SECRETS_STATE_DIR", env.path("empty"));
            assert_error(&env.run_command(command, None), 1, "missing");
            assert!(!env.path("empty").join("catalog.json").exists());
        }
    }
    // init: a passphrase file that is not there.
    let fresh = Env::new();
    let mut command = fresh.command(&["init", "--passphrase-file"]);
    command.arg(fresh.path("no-such-file"));
    let out = fresh.run_command(command, None);
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    assert_eq!(support::stderr(&out).lines().count(), 1);
    env.assert_no_leaks();
}

#[test]
fn a_revoked_handle_is_refused_wherever_it_would_resolve() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    assert_ok(&env.run(&["revoke", &handle, "--reason", "leaked"], None));
    assert_error(
        &env.run(
            &["run", "--env", &format!("KEY={handle}"), "--", "true"],
            None,
        ),
        1,
        "revoked",
    );
    assert_error(
        &env.run(
            &[
                "policy", "check", "--agent", "operator", "--tool", "cli", &handle,
            ],
            None,
        ),
        1,
        "revoked",
    );
    // A new value does not make it active again: only restore does.
    let next = canary();
    env.canaries.push(next.clone());
    assert_ok(&env.run(&["rotate", &handle], Some(next.as_bytes())));
    let out = env.run(&["--json", "show", &handle], None);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "revoked", "{}", stdout(&out));
    env.assert_no_leaks();
}

#[test]
fn values_are_never_arguments_and_never_empty() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let typed = canary();
    env.canaries.push(typed.clone());

    // A value where a handle belongs in `run --env`: usage error, not shown.
    let out = env.run(
        &["run", "--env", &format!("KEY={typed}"), "--", "true"],
        None,
    );
    assert_error(&out, 2, "values are never arguments");
    // An argument no command takes (a value typed after `put`): not shown.
    let out = env.run(
        &["rotate", &handle, &typed],
        Some(b"sk-a-value-on-standard-input"),
    );
    assert_error(&out, 2, "not shown");

    // No value on standard input (empty, or closed).
    assert_error(
        &env.run(&["rotate", &handle], Some(b"")),
        1,
        "no new secret value",
    );
    assert_error(
        &env.run(&["audit", "find-value"], Some(b"\n")),
        1,
        "no candidate value",
    );
    let mut closed = std::process::Command::new("sh");
    closed
        .arg("-c")
        .arg(format!("exec {} rotate {handle} <&-", support::BIN))
        .envs(
            env.command(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        );
    assert_error(&env.run_command(closed, None), 1, "standard input");
    env.assert_no_leaks();
}

#[test]
fn malformed_options_are_usage_errors() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let cases: [&[&str]; 9] = [
        &["list", "--status", "gone"],
        &["list", "--label", "no-equals-sign"],
        &["destroy", &handle],
        &["destroy", &handle, "--version", "0"],
        &["destroy", &handle, "--version", "latest"],
        &["audit", "tail", "-n", "many"],
        &[
            "put",
            "--scope",
            "ci",
            "--kind",
            "api_key",
            "--expires",
            "someday",
        ],
        &["put", "--scope", "Not A Scope!", "--kind", "api_key"],
        &["run", "--env", "KEY"],
    ];
    for args in cases {
        let out = env.run(args, Some(b"sk-a-value-on-standard-input"));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            support::stderr(&out)
        );
        assert_eq!(support::stderr(&out).lines().count(), 1, "{args:?}");
    }
    assert_error(&env.run(&["frobnicate"], None), 2, "unknown command");
    env.assert_no_leaks();
}
