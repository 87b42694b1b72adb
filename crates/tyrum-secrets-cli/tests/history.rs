//! A handle's history on the built binary: `destroy` removes an old version
//! (never the current one), and `audit tail -f` prints records as other
//! processes write them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::io::Read as _;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Env, assert_error, assert_ok, canary, stdout};

/// A generous bound for things that should happen soon: a failure waits
/// this long instead of hanging. Never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(30);

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The value `handle` resolves to, as a child of `run` sees it.
fn resolved(env: &Env, handle: &str) -> String {
    let mut command = env.sh_command(handle, r#"printf %s "$KEY" > "$OUT""#);
    command.env("OUT", env.path("resolved"));
    assert_ok(&env.run_command(command, None));
    let value = std::fs::read_to_string(env.path("resolved")).unwrap();
    std::fs::remove_file(env.path("resolved")).unwrap();
    value
}

#[test]
fn destroy_removes_an_old_version_and_refuses_the_current_one() {
    let mut env = Env::init();
    let first = canary();
    let handle = env.put(&first, &[]);
    let second = canary();
    env.canaries.push(second.clone());
    assert_ok(&env.run(&["rotate", &handle], Some(second.as_bytes())));

    // The current version stays: rotate first.
    assert_error(
        &env.run(&["destroy", &handle, "--version", "2"], None),
        1,
        "rotate it to a new value first",
    );

    let out = env.run(&["--json", "destroy", &handle, "--version", "1"], None);
    assert_ok(&out);
    assert_eq!(json(&out)["destroyed"], 1);
    let versions = json(&env.run(&["--json", "versions", &handle], None));
    let list = versions["versions"].as_array().unwrap();
    let state = |v: u64| {
        list.iter()
            .find(|i| i["version"] == v)
            .map(|i| i["state"].as_str().unwrap().to_owned())
    };
    assert_ne!(state(1).as_deref(), Some("live"), "{versions}");
    assert_eq!(state(2).as_deref(), Some("live"), "{versions}");
    assert_eq!(resolved(&env, &handle), second);

    // Both are on record: the refused one, and the destroy with the
    // version it destroyed.
    let out = env.run(&["--json", "audit", "tail", "-n", "1000"], None);
    let destroys: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["record"]["action"] == "destroy")
        .collect();
    assert_eq!(destroys.len(), 2, "{destroys:?}");
    assert_eq!(destroys[0]["record"]["version"], 2);
    assert_ne!(destroys[0]["record"]["outcome"], "applied");
    let destroyed = &destroys[1];
    assert_eq!(destroyed["record"]["outcome"], "applied");
    assert_eq!(destroyed["record"]["version"], 1);
    assert_eq!(destroyed["record"]["requester"]["agent"], "operator");
    env.assert_no_leaks();
}

#[test]
fn audit_tail_follow_prints_records_as_they_are_written() {
    let mut env = Env::init();
    let handle = env.put(&canary(), &[]);

    let mut command = env.command(&["--json", "audit", "tail", "-n", "1", "-f"]);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut tail = command.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut pipe = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            seen.extend_from_slice(&chunk[..n]);
            if tx
                .send(String::from_utf8_lossy(&seen).into_owned())
                .is_err()
            {
                break;
            }
        }
    });

    // Tail has read the log once it prints the last record there is (its
    // own open's pre-load, or the put).
    let deadline = Instant::now() + DEADLINE;
    let first = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) if seen.ends_with('\n') => break seen,
            Ok(_) => {}
            Err(_) => panic!("audit tail -f printed nothing"),
        }
    };
    assert_eq!(first.lines().count(), 1, "-n 1: {first}");
    assert!(!first.contains(r#""action":"revoke""#));

    // Written after tail read the log (it keeps looking until it is
    // stopped): a revoke, by another process.
    assert_ok(&env.run(&["revoke", &handle, "--reason", "followed"], None));
    let seen = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) if seen.contains(r#""action":"revoke""#) && seen.ends_with('\n') => {
                break seen;
            }
            Ok(_) => {}
            Err(_) => panic!("the revoke did not show in audit tail -f"),
        }
    };
    let _ = tail.kill();
    let _ = tail.wait();
    let record = seen
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|entry| entry["record"]["action"] == "revoke")
        .unwrap();
    assert_eq!(record["record"]["handle_id"], handle.as_str());
    assert_eq!(record["record"]["purpose"], "followed");
    env.remember(&std::process::Output {
        status: std::process::ExitStatus::default(),
        stdout: seen.into_bytes(),
        stderr: Vec::new(),
    });
    env.assert_no_leaks();
}
