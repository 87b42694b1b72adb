//! `run` with real child processes: the value reaches the child's
//! environment and nowhere else, the child's output is masked however it is
//! written, prompts come through while the child waits, and exit status
//! and signals pass through.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{Env, assert_ok, canary, forms, stdout};

/// A generous bound for things that should happen at once: a failure
/// waits this long instead of hanging. Never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(20);

fn setup() -> (Env, String, String) {
    let mut env = Env::init();
    let value = canary();
    let handle = env.put(&value, &[]);
    (env, value, handle)
}

fn run_sh(env: &Env, handle: &str, script: &str) -> std::process::Output {
    let var = format!("KEY={handle}");
    env.run(&["run", "--env", &var, "--", "sh", "-c", script], None)
}

#[test]
fn child_output_is_masked_raw_encoded_split_and_byte_by_byte() {
    let (env, value, handle) = setup();
    let placeholder = format!("[{handle}]");
    let scripts = [
        // Raw, on both streams.
        r#"echo "out $KEY"; echo "err $KEY" >&2"#,
        // Base64.
        r#"printf %s "$KEY" | base64"#,
        // Split across two writes with a pause between them.
        r#"printf %s "$KEY" | head -c 12; sleep 0.5; printf %s "$KEY" | tail -c +13; echo"#,
        // Byte by byte, a pause after each.
        r#"printf '%s\n' "$KEY" | fold -w1 | while read -r c; do printf %s "$c"; sleep 0.02; done; echo"#,
    ];
    for script in scripts {
        let out = run_sh(&env, &handle, script);
        assert_ok(&out);
        let both = format!("{}{}", stdout(&out), support::stderr(&out));
        assert!(both.contains(&placeholder), "{script}: {both}");
        for form in forms(&value) {
            assert!(!both.contains(&form), "{script}: {both}");
        }
        // Not even the part written before the pause.
        assert!(!both.contains(&value[..12]), "{script}: {both}");
    }
    env.assert_no_leaks();
}

#[test]
fn the_value_is_in_the_childs_environment_only() {
    let (env, value, handle) = setup();
    let mut command = env.sh_command(
        &handle,
        // The child's value, and the command lines of the child and of the
        // CLI (its parent), into files the redactor does not see.
        r#"printf %s "$KEY" > "$DIR/value"; cat /proc/$$/cmdline > "$DIR/child"; cat /proc/$PPID/cmdline > "$DIR/parent""#,
    );
    command.env("DIR", env.dir.path());
    let out = env.run_command(command, None);
    assert_ok(&out);
    assert_eq!(std::fs::read_to_string(env.path("value")).unwrap(), value);
    let parent = std::fs::read(env.path("parent")).unwrap();
    assert!(
        support::contains(&parent, b"run"),
        "the CLI's own command line"
    );
    for file in ["child", "parent"] {
        let cmdline = std::fs::read(env.path(file)).unwrap();
        assert!(!cmdline.is_empty());
        for form in forms(&value) {
            assert!(!support::contains(&cmdline, form.as_bytes()), "{file}");
        }
    }
    std::fs::remove_file(env.path("value")).unwrap();
    env.assert_no_leaks();
}

#[test]
fn an_env_file_names_variables_and_never_takes_a_value() {
    let (env, value, handle) = setup();
    std::fs::write(
        env.path("vars"),
        format!("# the test's key\n\nexport FIRST={handle}\nSECOND={handle}\n"),
    )
    .unwrap();
    let mut command = env.command(&["run", "--env-file"]);
    command.arg(env.path("vars")).args([
        "--",
        "sh",
        "-c",
        r#"[ "$FIRST" = "$SECOND" ] && [ -n "$FIRST" ] && echo same"#,
    ]);
    let out = env.run_command(command, None);
    assert_ok(&out);
    assert_eq!(stdout(&out), "same\n");

    std::fs::write(env.path("bad"), format!("OK={handle}\nBAD={value}\n")).unwrap();
    let mut command = env.command(&["run", "--env-file"]);
    command.arg(env.path("bad")).args(["--", "true"]);
    let out = env.run_command(command, None);
    support::assert_error(&out, 2, "line 2");
    env.assert_no_leaks();
}

#[test]
fn exit_status_passes_through() {
    let (env, _, handle) = setup();
    assert_eq!(run_sh(&env, &handle, "exit 42").status.code(), Some(42));
    assert_eq!(run_sh(&env, &handle, "exit 0").status.code(), Some(0));
    let out = env.run(&["run", "--", "/nonexistent/program"], None);
    support::assert_error(&out, 1, "cannot start");
    let out = env.run(
        &[
            "run",
            "--env",
            "KEY=secret:AAAAAAAAAAAAAAAAAAAAAAAAAA",
            "--",
            "true",
        ],
        None,
    );
    support::assert_error(&out, 1, "unknown secret handle");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        let out = run_sh(&env, &handle, "kill -KILL $$");
        assert_eq!(out.status.signal(), Some(9), "{:?}", out.status);
    }
}

/// Reads `reader` line by line (or up to `until` without a newline) on a
/// thread, sending what it has seen each time.
fn watch(mut reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = reader.read(&mut byte) {
            seen.push(byte[0]);
            if tx
                .send(String::from_utf8_lossy(&seen).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, text: &str) -> String {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(seen) if seen.contains(text) => return seen,
            Ok(_) => {}
            Err(_) => panic!("{text:?} did not arrive"),
        }
    }
}

#[test]
fn a_prompt_without_newline_arrives_before_the_child_gets_input() {
    let (env, _, handle) = setup();
    let mut command = env.sh_command(
        &handle,
        r#"printf 'Password: '; read answer; echo "got $answer""#,
    );
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let seen = watch(child.stdout.take().unwrap());
    // The child has had no input yet: it is waiting in `read`.
    wait_for(&seen, "Password: ");
    input.write_all(b"hello\n").unwrap();
    drop(input);
    let all = wait_for(&seen, "got hello\n");
    assert_eq!(all, "Password: got hello\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn sigterm_to_the_cli_reaches_the_child() {
    signal_reaches_the_child("TERM");
}

#[test]
fn sigint_sent_to_the_cli_reaches_the_child() {
    // Sent by another process (not the terminal, which would send it to
    // the child itself): forwarded.
    signal_reaches_the_child("INT");
}

fn signal_reaches_the_child(signal: &str) {
    let (env, _, handle) = setup();
    let var = format!("KEY={handle}");
    let marker = env.path("terminated");
    let mut command = env.command(&[
        "run",
        "--env",
        &var,
        "--",
        "sh",
        "-c",
        &format!(
            r#"trap 'echo {signal} > "$MARK"; exit 7' {signal}; echo ready; while :; do sleep 0.05; done"#
        ),
    ]);
    command
        .env("MARK", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n");
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "the child's own exit status");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        format!("{signal}\n")
    );
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
}

#[test]
fn a_signal_after_the_child_exited_ends_the_cli_while_a_grandchild_holds_the_output() {
    // The child exits at once; a grandchild keeps its standard output
    // open, so the CLI still passes output on. The child's process id is
    // no longer its own: a SIGTERM must not be sent there, and must end
    // the CLI instead of being swallowed until the grandchild exits.
    let (env, _, handle) = setup();
    let mut command = env.sh_command(&handle, "sleep 30 & echo ready");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n");
    // The child (sh) has exited once the CLI has reaped it; wait for the
    // CLI to have no child left but the orphaned sleep (reparented away).
    let cli = child.id();
    let children =
        || std::fs::read_to_string(format!("/proc/{cli}/task/{cli}/children")).unwrap_or_default();
    for _ in 0..200 {
        if children().trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(children().trim().is_empty(), "the child has exited");
    let status = Command::new("kill")
        .args(["-TERM", &cli.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Ends long before the grandchild's 30 s (a swallowed signal would
    // leave the CLI waiting for it, to exit with 0 when it ends).
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        status.signal(),
        Some(15),
        "the CLI ended as SIGTERM ends it"
    );
    let _ = Command::new("pkill").args(["-f", "^sleep 30$"]).status();
}

#[test]
fn redact_passes_text_on_before_its_input_ends() {
    let (env, value, handle) = setup();
    let mut command = env.command(&["redact"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let seen = watch(child.stdout.take().unwrap());
    input
        .write_all(format!("token={value}\nwaiting> ").as_bytes())
        .unwrap();
    input.flush().unwrap();
    // Still open: the text must come through while the input waits.
    let shown = wait_for(&seen, "waiting> ");
    assert_eq!(shown, format!("token=[{handle}]\nwaiting> "));
    drop(input);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_reader_that_goes_away_ends_a_child_that_keeps_writing() {
    // `run -- yes | head -c 1000`: once the reader is gone the CLI's
    // writes fail, it stops reading the child's output and closes it, the
    // child's next write ends it with SIGPIPE, and the CLI ends as it did.
    let (env, _, _) = setup();
    let mut command = env.command(&["run", "--", "yes", "output line"]);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1000];
    out.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"output line\n"));
    drop(out);
    let cli = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let Ok(status) = rx.recv_timeout(DEADLINE) else {
        let _ = Command::new("kill")
            .args(["-KILL", &cli.to_string()])
            .status();
        panic!("the CLI kept running with its reader gone");
    };
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.unwrap().signal(), Some(13), "ended like its child");
}
