//! Every command of the built binary: its happy path and its bad input, each
//! with the documented exit status and one clear line, and no value in any
//! output or state file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use serde_json::Value;
use support::{Env, assert_error, assert_ok, canary, stdout};

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn init_creates_the_state_once_and_refuses_a_second_time() {
    let env = Env::new();
    let out = env.run(&["init"], None);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("initialised the single-host profile"),
        "{text}"
    );
    assert!(text.contains("created encrypted file store"), "{text}");
    // No progress on a pipe.
    assert!(out.stderr.is_empty(), "{}", support::stderr(&out));
    assert!(env.state_dir().join("catalog.json").is_file());

    let again = env.run(&["init"], None);
    assert_error(&again, 1, "already holds the state");
}

#[test]
fn init_takes_the_passphrase_file_from_the_command_line() {
    let env = Env::new();
    std::fs::write(env.path("other"), "another passphrase entirely\n").unwrap();
    let mut command = env.command(&["--json", "init", "--passphrase-file"]);
    command
        .arg(env.path("other"))
        .env_remove("TYRUM_SECRETS_PASSPHRASE_FILE");
    let out = env.run_command(command, None);
    assert_ok(&out);
    assert_eq!(json(&out)["profile"], "single-host");
    // The store opens with that file, and not with the other passphrase.
    let mut list = env.command(&["list"]);
    list.env("TYRUM_SECRETS_PASSPHRASE_FILE", env.path("other"));
    assert_ok(&env.run_command(list, None));
    assert_error(&env.run(&["list"], None), 1, "wrong passphrase");
}

#[test]
fn commands_refuse_a_missing_config_or_state() {
    let env = Env::new();
    // No state yet: refused, and nothing is created in its place.
    assert_error(&env.run(&["list"], None), 1, "missing");
    assert!(!env.state_dir().join("catalog.json").exists());

    let mut no_dir = env.command(&["list"]);
    no_dir.env_remove("TYRUM_SECRETS_STATE_DIR");
    assert_error(&env.run_command(no_dir, None), 1, "state_dir");

    let missing = env.path("nowhere.toml");
    let mut command = env.command(&["--config"]);
    command.arg(&missing).arg("list");
    assert_error(&env.run_command(command, None), 1, "config file");

    std::fs::write(env.path("bad.toml"), "statedir = \"/x\"\n").unwrap();
    let mut command = env.command(&["--config"]);
    command.arg(env.path("bad.toml")).arg("list");
    assert_error(&env.run_command(command, None), 1, "unknown key");
}

#[test]
fn the_profile_flag_overrides_the_config() {
    let env = Env::init();
    let out = env.run(&["--profile", "kubernetes", "list"], None);
    assert_error(&out, 1, "single-host profile");
    assert_error(
        &env.run(&["--profile", "laptop", "list"], None),
        2,
        "--profile",
    );
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    let mut env = Env::init();
    env.put(&canary(), &[]);
    // Standard output is a pipe whose reader is gone: every write fails
    // with a broken pipe, as under `| head -1` once head has exited.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = env.command(&["list"]);
    command
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    assert!(out.stderr.is_empty(), "{}", support::stderr(&out));
}

#[test]
fn a_wrong_passphrase_is_refused_in_one_line() {
    let env = Env::init();
    std::fs::write(env.path("passphrase"), "not the passphrase\n").unwrap();
    assert_error(&env.run(&["list"], None), 1, "wrong passphrase");
}

#[test]
fn put_prints_a_handle_and_refuses_bad_input() {
    let mut env = Env::init();
    let value = canary();
    let handle = env.put(&value, &["--label", "team=ops"]);

    let other = canary();
    env.canaries.push(other.clone());
    let out = env.run(
        &[
            "--json",
            "put",
            "--scope",
            "prod/payments",
            "--kind",
            "bearer_token",
            "--expires",
            "30d",
        ],
        Some(other.as_bytes()),
    );
    assert_ok(&out);
    let made = json(&out);
    assert_eq!(made["kind"], "bearer_token");
    assert!(made["handle"].as_str().unwrap().starts_with("secret:"));
    assert_ne!(made["handle"].as_str().unwrap(), handle);

    // An empty or closed standard input is no value.
    let put = ["put", "--scope", "ci", "--kind", "api_key"];
    assert_error(&env.run(&put, Some(b"")), 1, "no secret value");
    let mut closed = std::process::Command::new("sh");
    closed
        .arg("-c")
        .arg(format!(
            "exec {} put --scope ci --kind api_key <&-",
            support::BIN
        ))
        .envs(
            env.command(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        );
    let out = env.run_command(closed, None);
    assert_error(&out, 1, "standard input");

    // Usage errors: exit 2, and a value typed as an argument is not echoed.
    let typed = canary();
    env.canaries.push(typed.clone());
    assert_error(
        &env.run(&["put", "--scope", "ci", "--kind", "api_key", &typed], None),
        2,
        "not shown",
    );
    assert_error(
        &env.run(&["put", "--scope", "ci", "--kind", "apikey"], Some(b"x")),
        2,
        "unknown kind",
    );
    assert_error(
        &env.run(
            &["put", "--scope", "ci", "--kind", "session_cookie"],
            Some(other.as_bytes()),
        ),
        1,
        "expiry",
    );
    env.assert_no_leaks();
}

#[test]
fn list_filters_by_scope_kind_label_and_status() {
    let mut env = Env::init();
    let a = env.put(&canary(), &["--label", "team=ops"]);
    let b = env.put(&canary(), &["--label", "team=web"]);
    let c_value = canary();
    env.canaries.push(c_value.clone());
    let out = env.run(
        &["put", "--scope", "prod/db", "--kind", "password"],
        Some(c_value.as_bytes()),
    );
    assert_ok(&out);
    let c = stdout(&out).trim().to_owned();
    assert_ok(&env.run(&["revoke", &b, "--reason", "rotated out"], None));

    let handles = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["--json", "list"];
        full.extend_from_slice(args);
        let out = env.run(&full, None);
        assert_ok(&out);
        let mut list: Vec<String> = json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["handle"].as_str().unwrap().to_owned())
            .collect();
        list.sort();
        list
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(handles(&[]), sorted(vec![a.clone(), b.clone(), c.clone()]));
    assert_eq!(handles(&["--scope", "prod/*"]), vec![c.clone()]);
    assert_eq!(
        handles(&["--kind", "api_key"]),
        sorted(vec![a.clone(), b.clone()])
    );
    assert_eq!(handles(&["--label", "team=ops"]), vec![a.clone()]);
    assert_eq!(handles(&["--status", "revoked"]), vec![b.clone()]);
    assert_eq!(
        handles(&["--status", "active", "--kind", "api_key"]),
        vec![a.clone()]
    );

    let table = stdout(&env.run(&["list"], None));
    let header = table.lines().next().unwrap();
    for column in [
        "HANDLE", "KIND", "SCOPE", "PROVIDER", "VERSION", "STATUS", "EXPIRES", "LABELS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(table.contains(&a) && table.contains("team=ops"), "{table}");
    env.assert_no_leaks();
}

#[test]
fn show_and_versions_follow_a_rotation_and_refuse_unknown_or_malformed_handles() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let next = canary();
    env.canaries.push(next.clone());
    let out = env.run(
        &["rotate", &handle, "--retire-after", "1h"],
        Some(next.as_bytes()),
    );
    assert_ok(&out);
    assert!(stdout(&out).contains("version 2"), "{}", stdout(&out));

    let shown = json(&env.run(&["--json", "show", &handle], None));
    assert_eq!(shown["version"], "2");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["retiring"][0]["version"], 1);
    let text = stdout(&env.run(&["show", &handle], None));
    assert!(text.contains("scope:"), "{text}");
    assert!(
        text.contains("retiring:         version 1 after "),
        "{text}"
    );

    let versions = json(&env.run(&["--json", "versions", &handle], None));
    let list = versions["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["current"], true);
    assert!(list[0]["retire_after"].is_string());

    let unknown = "secret:AAAAAAAAAAAAAAAAAAAAAAAAAA";
    for command in ["show", "versions"] {
        assert_error(
            &env.run(&[command, unknown], None),
            1,
            "unknown secret handle",
        );
        assert_error(
            &env.run(&[command, "secret:short"], None),
            2,
            "not a secret handle",
        );
    }
    assert_error(
        &env.run(&["rotate", unknown], Some(b"sk-some-new-value")),
        1,
        "unknown secret handle",
    );
    assert_error(
        &env.run(&["rotate", &handle, "--retire-after", "soon"], Some(b"x")),
        2,
        "duration",
    );
    env.assert_no_leaks();
}

#[test]
fn revoke_blocks_run_until_restore() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let var = format!("KEY={handle}");
    assert_ok(&env.run(&["run", "--env", &var, "--", "true"], None));

    let out = env.run(
        &[
            "--json",
            "revoke",
            &handle,
            "--reason",
            "leaked in a screenshot",
        ],
        None,
    );
    assert_ok(&out);
    assert_eq!(json(&out)["status"], "revoked");
    let shown = json(&env.run(&["--json", "show", &handle], None));
    assert_eq!(shown["revoked_reason"], "leaked in a screenshot");
    assert_error(
        &env.run(&["run", "--env", &var, "--", "true"], None),
        1,
        "revoked",
    );
    assert_error(&env.run(&["revoke", &handle], None), 2, "--reason");

    assert_ok(&env.run(&["restore", &handle], None));
    assert_ok(&env.run(&["run", "--env", &var, "--", "true"], None));
    assert_error(
        &env.run(&["restore", "secret:AAAAAAAAAAAAAAAAAAAAAAAAAA"], None),
        1,
        "unknown",
    );
    env.assert_no_leaks();
}

#[test]
fn audit_verify_tail_and_find_value() {
    let mut env = Env::init();
    let value = canary();
    let handle = env.put(&value, &[]);
    let var = format!("KEY={handle}");
    assert_ok(&env.run(&["run", "--env", &var, "--", "true"], None));

    let out = env.run(&["audit", "verify"], None);
    assert_ok(&out);
    assert!(stdout(&out).contains("verifies"), "{}", stdout(&out));

    let out = env.run(&["--json", "audit", "tail", "-n", "50"], None);
    assert_ok(&out);
    let records: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let resolve = records
        .iter()
        .find(|r| r["record"]["action"] == "resolve")
        .expect("the run's resolve is on record");
    assert_eq!(resolve["record"]["requester"]["agent"], "operator");
    assert!(
        resolve["record"]["requester"]["channel"]
            .as_str()
            .unwrap()
            .starts_with("os-user:")
    );
    assert!(stdout(&env.run(&["audit", "tail"], None)).contains("operator"));

    let found = env.run(&["--json", "audit", "find-value"], Some(value.as_bytes()));
    assert_ok(&found);
    assert_eq!(json(&found)["found"], true);
    let other = canary();
    env.canaries.push(other.clone());
    let missing = env.run(&["audit", "find-value"], Some(other.as_bytes()));
    assert_eq!(missing.status.code(), Some(1));
    assert!(stdout(&missing).contains("not found"));
    assert_error(
        &env.run(&["audit", "find-value"], Some(b"")),
        1,
        "no candidate value",
    );

    // An edited record is found by verify (and refused by every open).
    let log = env.state_dir().join("audit").join("0.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"operator\"", "\"intruder\"", 1)).unwrap();
    let out = env.run(&["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(support::stderr(&out).lines().count(), 1);
    env.assert_no_leaks();
}

#[test]
fn policy_check_is_a_dry_run_with_the_deciding_rule() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let records = |env: &Env| {
        let out = env.run(&["--json", "audit", "tail", "-n", "1000"], None);
        stdout(&out)
            .lines()
            .filter(|l| l.contains("\"resolve\""))
            .count()
    };
    let before = records(&env);

    // No policy file: the operator may, agents may not.
    let out = env.run(
        &[
            "policy", "check", "--agent", "operator", "--tool", "cli", &handle,
        ],
        None,
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains("allow by rule operator-default"),
        "{}",
        stdout(&out)
    );
    let out = env.run(
        &[
            "policy",
            "check",
            "--agent",
            "ci-bot",
            "--tool",
            "http.fetch",
            &handle,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("deny"), "{}", stdout(&out));

    // A policy file decides, for the operator too.
    std::fs::write(
        env.path("policy.json"),
        r#"{"rules": [{"id": "ci-github", "effect": "allow", "secret": "file:ci",
            "agent": "ci-bot", "tool": "http.fetch", "destination": "api.github.com"}]}"#,
    )
    .unwrap();
    let with_policy = |args: &[&str]| {
        let mut command = env.command(args);
        command.env("TYRUM_SECRETS_POLICY_FILE", env.path("policy.json"));
        env.run_command(command, None)
    };
    let check = [
        "--json",
        "policy",
        "check",
        "--agent",
        "ci-bot",
        "--tool",
        "http.fetch",
    ];
    let mut args = check.to_vec();
    args.extend(["--dest", "https://api.github.com/repos", &handle]);
    let out = with_policy(&args);
    assert_ok(&out);
    assert_eq!(json(&out)["rule"], "ci-github");
    let mut args = check.to_vec();
    args.extend(["--dest", "https://example.com/", &handle]);
    assert_eq!(with_policy(&args).status.code(), Some(1));
    let var = format!("KEY={handle}");
    assert_error(
        &with_policy(&["run", "--env", &var, "--", "true"]),
        1,
        "denied",
    );

    assert_eq!(records(&env), before + 1, "only the denied run resolved");
    assert_error(
        &env.run(
            &[
                "policy",
                "check",
                "--agent",
                "ci-bot",
                "--tool",
                "t",
                "secret:AAAAAAAAAAAAAAAAAAAAAAAAAA",
            ],
            None,
        ),
        1,
        "unknown",
    );
    assert_error(
        &env.run(
            &[
                "policy",
                "check",
                "--agent",
                "Bad Agent",
                "--tool",
                "t",
                &handle,
            ],
            None,
        ),
        2,
        "agent",
    );
    env.assert_no_leaks();
}

#[test]
fn rekey_changes_the_passphrase_and_reseals() {
    let mut env = Env::init();
    let value = canary();
    let handle = env.put(&value, &[]);
    std::fs::write(env.path("new"), "a brand new passphrase\n").unwrap();
    let mut command = env.command(&["rekey", "--data-key", "--new-passphrase-file"]);
    command.arg(env.path("new"));
    let out = env.run_command(command, None);
    assert_ok(&out);
    assert!(stdout(&out).contains("re-sealed"), "{}", stdout(&out));
    // No progress on a pipe.
    assert!(out.stderr.is_empty(), "{}", support::stderr(&out));

    assert_error(&env.run(&["list"], None), 1, "wrong passphrase");
    std::fs::copy(env.path("new"), env.path("passphrase")).unwrap();
    let mut command = env.sh_command(&handle, "printf %s \"$KEY\" > \"$OUT\"");
    command.env("OUT", env.path("value-out"));
    assert_ok(&env.run_command(command, None));
    assert_eq!(
        std::fs::read_to_string(env.path("value-out")).unwrap(),
        value
    );
    std::fs::remove_file(env.path("value-out")).unwrap();

    // A rekey with a wrong current passphrase changes nothing.
    std::fs::write(env.path("passphrase"), "wrong\n").unwrap();
    let mut command = env.command(&["rekey", "--new-passphrase-file"]);
    command.arg(env.path("new"));
    assert_error(&env.run_command(command, None), 1, "wrong passphrase");
    env.assert_no_leaks();
}

#[test]
fn redact_masks_every_known_value_and_its_encodings() {
    let mut env = Env::init();
    let value = canary();
    let handle = env.put(&value, &[]);
    let encoded = support::forms(&value)[1].clone();
    let input = format!("log: token={value}\nauth: Basic {encoded}\nplain line\n");
    let out = env.run(&["redact"], Some(input.as_bytes()));
    assert_ok(&out);
    let text = stdout(&out);
    assert_eq!(text.matches(&format!("[{handle}]")).count(), 2, "{text}");
    assert!(text.ends_with("plain line\n"), "{text}");
    env.assert_no_leaks();
}
