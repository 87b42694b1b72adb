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
