//! The CLI on a real terminal: `init` asks for a new passphrase twice and
//! `put` for the store's passphrase and the value, none of which is echoed;
//! `run` masks its child's output on the screen and shows its prompt while
//! it waits; progress shows on a terminal only. Driven under tmux
//! (`send-keys` types, `capture-pane` reads the screen).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{BIN, Env, assert_ok, canary, stdout};

/// A generous bound for the screen to show something; a failure waits this
/// long instead of hanging. Never a timing assertion.
const DEADLINE: Duration = Duration::from_secs(60);

/// A tmux server of this test's own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(script: &std::path::Path) -> Tmux {
        // A server per test: tests run in parallel in one process.
        let socket = format!(
            "tyrum-cli-test-{}-{}",
            std::process::id(),
            &canary()[10..22]
        );
        let tmux = Tmux { socket };
        let status = tmux
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "200",
                "-y",
                "60",
                "sh",
            ])
            .arg(script)
            .status()
            .expect("tmux runs (scripts/test installs it)");
        assert!(status.success());
        tmux
    }

    fn cmd(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-t", "t", "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen, after `after`, shows `text`; returns the
    /// screen.
    fn wait_for(&self, after: &str, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            let tail = screen.split_once(after).map_or("", |(_, t)| t);
            if tail.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} did not appear after {after:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, text: &str) {
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t", "-l", text])
                .status()
                .unwrap()
                .success()
        );
        assert!(
            self.cmd()
                .args(["send-keys", "-t", "t", "Enter"])
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
#[ignore = "needs tmux; run scripts/test"]
fn init_and_put_ask_on_the_terminal_and_echo_nothing() {
    let mut env = Env::new();
    let passphrase = format!("typed-{}", canary());
    let value = canary();
    env.canaries.push(passphrase.clone());
    env.canaries.push(value.clone());

    // The config names no passphrase file: the store's key is asked for.
    let script = env.path("session.sh");
    let vars: String = env
        .command(&[])
        .get_envs()
        .filter(|(k, _)| *k != "TYRUM_SECRETS_PASSPHRASE_FILE")
        .filter_map(|(k, v)| Some(format!("export {}='{}'\n", k.to_str()?, v?.to_str()?)))
        .collect();
    std::fs::write(
        &script,
        format!(
            "{vars}{BIN} init; echo INIT-EXIT=$?\n{BIN} put --scope ci --kind api_key; echo PUT-EXIT=$?\nsleep 600\n"
        ),
    )
    .unwrap();
    let tmux = Tmux::start(&script);

    tmux.wait_for("", "new store passphrase (input hidden): ");
    tmux.type_line(&passphrase);
    tmux.wait_for("", "new store passphrase again: ");
    tmux.type_line(&passphrase);
    tmux.wait_for("", "INIT-EXIT=0");

    tmux.wait_for("INIT-EXIT=0", "store passphrase (input hidden): ");
    tmux.type_line(&passphrase);
    tmux.wait_for("INIT-EXIT=0", "secret value (input hidden): ");
    tmux.type_line(&value);
    tmux.wait_for("INIT-EXIT=0", "secret value again: ");
    tmux.type_line(&value);
    let screen = tmux.wait_for("INIT-EXIT=0", "PUT-EXIT=0");
    drop(tmux);

    assert!(
        !screen.contains(&passphrase),
        "the passphrase was echoed:\n{screen}"
    );
    assert!(!screen.contains(&value), "the value was echoed:\n{screen}");
    let handle = screen
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret:"))
        .map(|id| format!("secret:{id}"))
        .expect("put printed the handle");

    // What was typed is what was stored: the store opens with the typed
    // passphrase and the handle resolves to the typed value.
    std::fs::write(env.path("passphrase"), format!("{passphrase}\n")).unwrap();
    let mut command = env.sh_command(&handle, r#"printf %s "$KEY" > "$OUT""#);
    command.env("OUT", env.path("value"));
    let out = env.run_command(command, None);
    assert_ok(&out);
    assert_eq!(std::fs::read_to_string(env.path("value")).unwrap(), value);
    std::fs::remove_file(env.path("value")).unwrap();
    assert!(stdout(&out).is_empty());
    env.remember(&std::process::Output {
        status: out.status,
        stdout: screen.into_bytes(),
        stderr: Vec::new(),
    });
    env.assert_no_leaks();
}

#[test]
#[ignore = "needs tmux; run scripts/test"]
fn a_slow_key_derivation_shows_progress_on_a_terminal_only() {
    let env = Env::new();
    // A store whose key takes a while to derive (256 MiB, 4 passes).
    let mut init = env.command(&["init"]);
    init.env("TYRUM_SECRETS_FILE_KDF_MEMORY_KIB", "262144")
        .env("TYRUM_SECRETS_FILE_KDF_PASSES", "4");
    assert_ok(&env.run_command(init, None));

    // On a pipe: nothing on standard error.
    let out = env.run(&["list"], None);
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", support::stderr(&out));

    // On a terminal: a spinner while the key is derived, gone afterwards.
    let script = env.path("session.sh");
    let vars: String = env
        .command(&[])
        .get_envs()
        .filter_map(|(k, v)| Some(format!("export {}='{}'\n", k.to_str()?, v?.to_str()?)))
        .collect();
    std::fs::write(
        &script,
        format!("{vars}{BIN} list; echo LIST-EXIT=$?\nsleep 600\n"),
    )
    .unwrap();
    let tmux = Tmux::start(&script);
    tmux.wait_for("", "deriving the key");
    let screen = tmux.wait_for("", "LIST-EXIT=0");
    assert!(
        !screen.contains("deriving the key"),
        "the spinner cleared its line:\n{screen}"
    );
}

#[test]
#[ignore = "needs tmux; run scripts/test"]
fn run_on_a_terminal_masks_the_child_and_shows_its_prompt_while_it_waits() {
    let mut env = Env::init();
    let value = canary();
    let handle = env.put(&value, &[]);

    // The child prints its value raw, base64-encoded, split across two
    // writes with a pause, and byte by byte; then a prompt without a
    // newline, and waits for a line on the terminal (its own stdin).
    let child = env.path("child.sh");
    std::fs::write(
        &child,
        r#"printf 'raw %s\n' "$KEY"
printf %s "$KEY" | base64
printf %s "$KEY" | head -c 12; sleep 0.3; printf '%s\n' "$(printf %s "$KEY" | tail -c +13)"
printf '%s\n' "$KEY" | fold -w1 | while read -r c; do printf %s "$c"; sleep 0.01; done; echo
printf 'Password: '
read answer
echo "got $answer"
"#,
    )
    .unwrap();
    let script = env.path("session.sh");
    let vars: String = env
        .command(&[])
        .get_envs()
        .filter_map(|(k, v)| Some(format!("export {}='{}'\n", k.to_str()?, v?.to_str()?)))
        .collect();
    std::fs::write(
        &script,
        format!(
            "{vars}echo START; {BIN} run --env KEY={handle} -- sh {}; echo RUN-EXIT=$?\nsleep 600\n",
            child.display()
        ),
    )
    .unwrap();
    let tmux = Tmux::start(&script);

    // The prompt is on the screen while the child still waits in `read`
    // (nothing has been typed yet): nothing held it back.
    let waiting = tmux.wait_for("START", "Password: ");
    assert!(!waiting.contains("got "), "{waiting}");
    tmux.type_line("hello");
    let screen = tmux.wait_for("START", "RUN-EXIT=0");
    drop(tmux);
    assert!(screen.contains("got hello"), "{screen}");

    // Raw, base64, split and byte by byte: four placeholders; nothing of
    // the value, not even the part written before the pause.
    let placeholder = format!("[{handle}]");
    assert_eq!(screen.matches(&placeholder).count(), 4, "{screen}");
    for screen in [&screen, &waiting] {
        for form in support::forms(&value) {
            assert!(!screen.contains(&form), "{screen}");
        }
        assert!(!screen.contains(&value[..12]), "{screen}");
    }
    env.remember(&std::process::Output {
        status: std::process::ExitStatus::default(),
        stdout: screen.into_bytes(),
        stderr: waiting.into_bytes(),
    });
    env.assert_no_leaks();
}
