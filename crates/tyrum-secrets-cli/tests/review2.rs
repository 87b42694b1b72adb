//! Review 2 reproductions for the command line: what it echoes of its
//! input, and input files that are not regular files.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Env, canary, stdout};

/// `policy check --dest` takes a URL, which may carry a password or a
/// token in its query (the core's `Destination::from_url` never repeats
/// it in an error for that reason). The JSON output echoed the URL as
/// typed; it must carry only the canonical destination (the host).
#[test]
fn policy_check_json_does_not_echo_credentials_in_the_destination_url() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);
    let password = "pw-review2-userinfo-canary";
    let token = "tok-review2-query-canary";
    let url = format!("https://deploy:{password}@api.example.com/v1?access_token={token}");
    let out = env.run(
        &[
            "--json", "policy", "check", "--agent", "operator", "--tool", "cli", "--dest", &url,
            &handle,
        ],
        None,
    );
    let text = stdout(&out);
    assert!(text.contains("api.example.com"), "{text}");
    assert!(
        !text.contains(password) && !text.contains(token),
        "the URL's credentials were echoed: {text}"
    );
}

/// `run --env-file` at a FIFO (or a device) must be refused at once, as
/// the library's loaders refuse one (review 1, #10), not block forever or
/// read without bound.
#[test]
fn run_env_file_at_a_fifo_is_refused_without_hanging() {
    let env = Env::init();
    let fifo = env.path("env.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = env
        .command(&["run", "--env-file", fifo.to_str().unwrap(), "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: the open itself derives a (cheap) key.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("run --env-file blocked on a FIFO");
    assert_eq!(status.code(), Some(1), "{status:?}");
}

/// On a terminal (`kubectl exec -it`), the open's progress spinner is a
/// second thread, and the kubernetes profile may remove the pod's secret
/// variables only from a single-threaded process: every command failed,
/// and the message pointed the operator at `dangerous_keep_env`.
#[test]
fn kubernetes_commands_open_on_a_terminal() {
    let env = Env::new();
    let state = env.state_dir();
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{} init", support::BIN), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .env("TYRUM_SECRETS_PROFILE", "kubernetes")
        .env("TYRUM_SECRETS_STATE_DIR", &state)
        .env("TYRUM_SECRETS_KUBERNETES_ENV_PREFIX", "REVIEW2_APP_SECRET_")
        .env(
            "REVIEW2_APP_SECRET_OPENAI",
            "sk-review2-k8s-terminal-canary",
        )
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) gives the command a terminal");
    let text = format!("{}{}", stdout(&out), support::stderr(&out));
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("threads"), "{text}");
    assert!(state.join("tyrum-secrets.state.json").exists(), "{text}");
}

/// An API token the store does not manage, typed where a handle belongs
/// (`run --env TOKEN=secret:$GH_TOKEN` in CI), parses as a handle id. It
/// must be refused before anything is looked up or recorded: not written
/// into the audit log as an unknown handle, not echoed on standard error.
#[test]
fn an_unmanaged_token_typed_as_a_handle_is_not_recorded_or_echoed() {
    let env = Env::init();
    let token = "ghp_R2unmanagedGithubToken0123456789";
    let out = env.run(
        &[
            "run",
            "--env",
            &format!("TOKEN=secret:{token}"),
            "--",
            "true",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
    assert!(
        !support::stderr(&out).contains(token),
        "{}",
        support::stderr(&out)
    );
    // Named in an env file instead.
    std::fs::write(env.path("vars"), format!("TOKEN=secret:{token}\n")).unwrap();
    let mut command = env.command(&["run", "--env-file"]);
    command.arg(env.path("vars")).args(["--", "true"]);
    let out = env.run_command(command, None);
    support::assert_error(&out, 1, "unknown secret handle (not shown");
    assert!(!support::stderr(&out).contains(token));
    std::fs::remove_file(env.path("vars")).unwrap();
    assert_not_kept(&env, token);
}

/// The same for every other command that names a handle, with and without
/// `--json`, as `secret:<token>` and as the bare token.
#[test]
fn every_handle_command_refuses_an_unmanaged_token_without_naming_it() {
    let mut env = Env::init();
    // A managed value, so the redactor is not empty and the state is used.
    env.put(&canary(), &[]);
    let token = "ghp_R2unmanagedGithubToken0123456789";
    let commands: [&[&str]; 7] = [
        &["show", "H"],
        &["versions", "H"],
        &["revoke", "H", "--reason", "x"],
        &["restore", "H"],
        &["destroy", "H", "--version", "1"],
        &["rotate", "H"],
        &["policy", "check", "--agent", "a", "--tool", "t", "H"],
    ];
    for typed in [format!("secret:{token}"), token.to_owned()] {
        for args in commands {
            for json in [false, true] {
                let mut full: Vec<&str> = if json { vec!["--json"] } else { Vec::new() };
                full.extend(
                    args.iter()
                        .map(|a| if *a == "H" { typed.as_str() } else { a }),
                );
                let out = env.run(&full, Some(b"sk-a-new-value-on-standard-input\n"));
                support::assert_error(&out, 1, "unknown secret handle (not shown");
                assert!(
                    !support::stderr(&out).contains(token) && !stdout(&out).contains(token),
                    "{full:?}: {}",
                    support::stderr(&out)
                );
            }
        }
    }
    assert_not_kept(&env, token);
    env.assert_no_leaks();
}

/// No file of the state directory holds `token`.
fn assert_not_kept(env: &Env, token: &str) {
    for (path, bytes) in support::files(&env.state_dir()) {
        assert!(
            !support::contains(&bytes, token.as_bytes()),
            "{} holds it",
            path.display()
        );
    }
}
