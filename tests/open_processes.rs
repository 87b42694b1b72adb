//! `Secrets::open` across processes: a restart masks values it never
//! resolved from its first log line, several processes open one state
//! directory at once, `Profile::detect` reads the environment it is
//! started with, and a state directory this user cannot read is refused
//! with an error naming it (tested for real: the tests run as root, who
//! reads everything, so the open runs in a child as `nobody`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::process::Stdio;

use tyrum_secrets::Profile;
use tyrum_secrets_testkit::process;

/// The canary value of the restart test; known to the harness only.
const CANARY: &str = "sk-restart-canary-20261129";

/// The pod's secret variable of the Kubernetes tests, and its value.
const K8S_VAR: &str = "TYRUM_TEST_APP_SECRET_OPENAI";
const K8S_CANARY: &str = "sk-k8s-env-canary-5566778899";

fn main() {
    process::main(
        &[
            (
                "restart_masks_a_value_it_never_resolved_in_its_first_log_line",
                restart_masks_a_value_it_never_resolved_in_its_first_log_line,
            ),
            (
                "four_processes_open_one_new_state_dir_at_once",
                four_processes_open_one_new_state_dir_at_once,
            ),
            (
                "detect_reads_the_environment_of_a_child_process",
                detect_reads_the_environment_of_a_child_process,
            ),
            (
                "an_explicit_profile_wins_over_detection",
                an_explicit_profile_wins_over_detection,
            ),
            (
                "an_unreadable_state_dir_is_refused_naming_it_and_left_alone",
                an_unreadable_state_dir_is_refused_naming_it_and_left_alone,
            ),
            (
                "kubernetes_env_secrets_are_removed_before_a_child_can_inherit_them",
                kubernetes_env_secrets_are_removed_before_a_child_can_inherit_them,
            ),
            (
                "kubernetes_env_secrets_kept_with_dangerous_keep_env_are_inherited_and_noted",
                kubernetes_env_secrets_kept_with_dangerous_keep_env_are_inherited_and_noted,
            ),
            (
                "a_threaded_process_cannot_remove_env_secrets_and_is_told_what_to_do",
                a_threaded_process_cannot_remove_env_secrets_and_is_told_what_to_do,
            ),
            (
                "kubernetes_env_secrets_are_not_readable_from_proc_environ_by_a_same_user_tool",
                kubernetes_env_secrets_are_not_readable_from_proc_environ_by_a_same_user_tool,
            ),
        ],
        worker,
    );
}

fn worker(role: &str, args: &[String]) {
    match role {
        "create" => {
            let secrets = open(&args[0]);
            let handle = support::create_in(&secrets, "file", CANARY.as_bytes());
            secrets
                .resolver()
                .resolve(handle.id(), &support::request())
                .unwrap();
            println!("{}", handle.id());
        }
        "log" => log_after_restart(&args[0]),
        "open-and-resolve" => {
            let secrets = open(&args[0]);
            let value = format!("sk-concurrent-value-{}", std::process::id());
            let handle = support::create_in(&secrets, "file", value.as_bytes());
            let resolved = secrets
                .resolver()
                .resolve(handle.id(), &support::request())
                .unwrap();
            assert_eq!(
                tyrum_secrets::ExposeSecret::expose_secret(&resolved),
                value.as_bytes()
            );
            println!("{}", handle.id());
        }
        "detect" => {
            let detected = Profile::detect();
            println!("{} | {}", detected.profile, detected.reason);
        }
        "open-unreadable" => {
            // Prints the kind of error and its message, or "opened".
            let base = std::path::Path::new(&args[0]);
            let config =
                tyrum_secrets::Config::single_host(base.join("state"), base.join("passphrase"));
            match tyrum_secrets::Secrets::open_with(
                &config,
                tyrum_secrets::OpenOptions::new().dangerous_insecure_kdf_for_tests(),
            ) {
                Ok(_) => println!("opened"),
                Err(e @ tyrum_secrets::OpenError::StateDir { .. }) => println!("StateDir | {e}"),
                Err(e) => println!("other | {e}"),
            }
        }
        "open-explicit" => {
            let secrets = open(&args[0]);
            println!(
                "{} | {}",
                secrets.profile(),
                secrets.report().profile_reason
            );
        }
        "k8s-env" => k8s_env(&args[0], args.get(1).map(String::as_str)),
        "k8s-environ" => k8s_environ(&args[0]),
        other => panic!("unknown role {other}"),
    }
}

/// Opens the state under `base` (a directory with the passphrase and policy
/// files of `support::Setup`).
fn open(base: &str) -> tyrum_secrets::Secrets {
    let base = std::path::Path::new(base);
    let mut config =
        tyrum_secrets::Config::single_host(base.join("state"), base.join("passphrase"));
    config.policy_file = Some(base.join("policy.json"));
    tyrum_secrets::Secrets::open_with(
        &config,
        tyrum_secrets::OpenOptions::new().dangerous_insecure_kdf_for_tests(),
    )
    .unwrap()
}

#[cfg(feature = "tracing")]
fn log_after_restart(base: &str) {
    let secrets = open(base);
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .without_time()
        .with_writer(secrets.redactor().make_writer(std::io::stdout))
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        // The first log line of this process: the value was never resolved
        // here.
        tracing::info!("calling the API with token {CANARY}");
    });
}

#[cfg(not(feature = "tracing"))]
fn log_after_restart(base: &str) {
    let secrets = open(base);
    println!(
        "{}",
        secrets
            .redactor()
            .redact_str(&format!("calling the API with token {CANARY}"))
            .as_str()
    );
}

fn run(role: &str, base: &std::path::Path, env: &[(&str, &str)]) -> String {
    let mut command = process::worker_command(role);
    command
        .arg(base)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run a worker");
    assert!(out.status.success(), "worker {role} failed");
    String::from_utf8(out.stdout).unwrap()
}

fn restart_masks_a_value_it_never_resolved_in_its_first_log_line() {
    let setup = support::Setup::new();
    let id = run("create", setup.dir(), &[]);
    let id = id.trim();
    let logged = run("log", setup.dir(), &[]);
    let first = logged.lines().next().expect("one log line");
    assert!(
        !first.contains(CANARY),
        "the restarted process logged the value: {first}"
    );
    assert!(first.contains(&format!("[{id}]")), "{first}");
}

fn four_processes_open_one_new_state_dir_at_once() {
    let setup = support::Setup::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            process::worker_command("open-and-resolve")
                .arg(setup.dir())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a concurrent open failed");
        ids.push(String::from_utf8(out.stdout).unwrap().trim().to_owned());
    }
    // All four see each other's handles, and every log verifies.
    let secrets = setup.open().unwrap();
    let listed = secrets.admin().list().unwrap();
    assert_eq!(listed.len(), 4);
    for id in &ids {
        assert!(
            listed.iter().any(|e| &e.id().to_string() == id),
            "{id} is missing"
        );
    }
    let logs = secrets.verify_audit().unwrap();
    let resolves: u64 = logs.iter().map(|(_, n)| n).sum();
    // Four resolves, plus the pre-load records of opens that found values.
    assert!(resolves >= 4, "{logs:?}");
    assert!(secrets.report().created.is_empty());
}

fn detect_reads_the_environment_of_a_child_process() {
    if std::path::Path::new(tyrum_secrets::SERVICE_ACCOUNT_TOKEN).exists() {
        println!("note: this machine has a service-account token; only the pod cases are checked");
    }
    let token = std::path::Path::new(tyrum_secrets::SERVICE_ACCOUNT_TOKEN).exists();
    /// Variables, the profile expected, a word the reason must hold.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
            "kubernetes",
            "KUBERNETES_SERVICE_HOST",
        ),
        (
            &[
                ("DISPLAY", ":0"),
                ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/bus"),
            ],
            "desktop",
            "DISPLAY",
        ),
        (
            &[("DISPLAY", ":0")],
            "single-host",
            "DBUS_SESSION_BUS_ADDRESS",
        ),
        (&[], "single-host", "no Kubernetes pod"),
    ];
    for (env, profile, reason) in cases {
        if token && *profile != "kubernetes" {
            continue;
        }
        let mut command = process::worker_command("detect");
        command.env_clear().env(process::WORKER_ENV, "detect");
        for (k, v) in *env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(out.status.success());
        let line = String::from_utf8(out.stdout).unwrap();
        let (got, why) = line.trim().split_once(" | ").unwrap();
        assert_eq!(got, *profile, "{env:?}: {line}");
        assert!(why.contains(reason), "{env:?}: {line}");
        for (_, value) in *env {
            assert!(!why.contains(value), "the reason shows a value: {why}");
        }
    }
}

fn an_explicit_profile_wins_over_detection() {
    let setup = support::Setup::new();
    let out = run(
        "open-explicit",
        setup.dir(),
        &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
    );
    let (profile, reason) = out.trim().split_once(" | ").unwrap();
    assert_eq!(profile, "single-host", "{out}");
    assert_eq!(reason, "set in code", "{out}");
}

/// The uid and gid of `nobody`.
const NOBODY: &str = "65534";

fn an_unreadable_state_dir_is_refused_naming_it_and_left_alone() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    let setup = support::Setup::new();
    let state = setup.state_dir();
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("catalog.json"), b"{}").unwrap();
    let root = std::fs::metadata(&state).unwrap().uid() == 0;
    if root {
        // Root owns it, mode 0700; `nobody` may reach it (the parent is
        // 0755) but not read it.
        std::fs::set_permissions(setup.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    } else {
        // Not root: this user is kept out of a directory of mode 000.
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let before = support::snapshot(setup.dir());

    let worker = process::worker_command("open-unreadable");
    let mut command = if root {
        let mut command = std::process::Command::new("setpriv");
        command
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(worker.get_program())
            .env(process::WORKER_ENV, "open-unreadable");
        command
    } else {
        worker
    };
    let out = command
        .arg(setup.dir())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("setpriv (util-linux) runs the open as nobody; install it");
    assert!(
        out.status.success(),
        "the worker failed ({}); as root it runs as nobody, so the test binary must be reachable by others",
        out.status
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let (kind, message) = line.trim().split_once(" | ").unwrap_or(("", &line));
    assert_eq!(kind, "StateDir", "{line}");
    assert!(message.contains(&state.display().to_string()), "{message}");
    assert!(message.contains("cannot be read"), "{message}");
    assert!(message.contains("state_dir"), "{message}");
    let after = support::snapshot(setup.dir());
    if !root {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(before, after, "a failed open changed a file");
}

/// A pod's gateway: opens the Kubernetes profile with the variables under
/// `TYRUM_TEST_APP_SECRET_` (keeping them with `keep`), starts a tool the
/// ordinary way, and reports whether the tool saw the value and whether
/// the resolver still hands it out.
#[cfg(feature = "env")]
fn k8s_env(base: &str, mode: Option<&str>) {
    use tyrum_secrets::{
        Config, KindSpec, Locator, NewSecret, ProviderId, Scope, SecretKind, Secrets,
    };
    let base = std::path::Path::new(base);
    let mut config = Config::default();
    config.profile = Some(Profile::Kubernetes);
    config.state_dir = Some(base.join("state-k8s"));
    config.policy_file = Some(base.join("policy.json"));
    config.kubernetes.env_prefix = Some("TYRUM_TEST_APP_SECRET_".to_owned());
    config.kubernetes.dangerous_keep_env = mode == Some("keep");
    let secrets = Secrets::open(&config).unwrap();
    let tool = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s \"${{{K8S_VAR}:-}}\"")])
        .output()
        .unwrap();
    let inherited = String::from_utf8_lossy(&tool.stdout).contains(K8S_CANARY);
    let spec = NewSecret::new(
        ProviderId::new("env").unwrap(),
        Scope::new("ci").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    let handle = secrets
        .admin()
        .import(spec, Locator::new("OPENAI").unwrap(), &support::operator())
        .unwrap();
    let resolved = secrets
        .resolver()
        .resolve(handle.id(), &support::request())
        .unwrap();
    let resolves = tyrum_secrets::ExposeSecret::expose_secret(&resolved) == K8S_CANARY.as_bytes();
    println!("inherited: {inherited}");
    println!("resolves: {resolves}");
    for note in &secrets.report().notes {
        println!("note: {note}");
    }
}

#[cfg(not(feature = "env"))]
fn k8s_env(_base: &str, _mode: Option<&str>) {
    panic!("the k8s-env role needs the env feature");
}

fn run_k8s(mode: &[&str]) -> String {
    let setup = support::Setup::new();
    let mut command = process::worker_command("k8s-env");
    command
        .arg(setup.dir())
        .args(mode)
        .env(K8S_VAR, K8S_CANARY)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let out = command.output().expect("run a worker");
    assert!(out.status.success(), "worker k8s-env failed");
    String::from_utf8(out.stdout).unwrap()
}

fn kubernetes_env_secrets_are_removed_before_a_child_can_inherit_them() {
    if !cfg!(feature = "env") {
        return;
    }
    let out = run_k8s(&[]);
    assert!(
        out.contains("inherited: false"),
        "a tool read the env secret without a resolve: {out}"
    );
    assert!(out.contains("resolves: true"), "{out}");
    // No note that the variables stay (the keys' note may be there).
    assert!(!out.contains("secret variables stay"), "{out}");
}

fn kubernetes_env_secrets_kept_with_dangerous_keep_env_are_inherited_and_noted() {
    if !cfg!(feature = "env") {
        return;
    }
    let out = run_k8s(&["keep"]);
    assert!(out.contains("inherited: true"), "{out}");
    assert!(out.contains("resolves: true"), "{out}");
    assert!(
        out.contains("note:") && out.contains("dangerous_keep_env"),
        "{out}"
    );
}

#[cfg(feature = "env")]
fn a_threaded_process_cannot_remove_env_secrets_and_is_told_what_to_do() {
    use tyrum_secrets::{Config, OpenError, Secrets};
    let setup = support::Setup::new();
    // Another thread runs while the open tries to remove the variables.
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let _ = stopped.recv();
    });
    let mut config = Config::default();
    config.profile = Some(Profile::Kubernetes);
    config.state_dir = Some(setup.state_dir());
    config.kubernetes.env_prefix = Some("TYRUM_TEST_NO_SUCH_SECRET_".to_owned());
    let err = Secrets::open(&config).unwrap_err();
    drop(stop);
    other.join().unwrap();
    assert!(matches!(err, OpenError::EnvRemoval { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("kubernetes.dangerous_keep_env"), "{text}");
    assert!(text.contains("top of main"), "{text}");
    assert!(
        !setup.state_dir().exists(),
        "a failed open left the state directory"
    );
}

#[cfg(not(feature = "env"))]
fn a_threaded_process_cannot_remove_env_secrets_and_is_told_what_to_do() {}

/// Review 2: opens the kubernetes profile (variables removed), then runs a
/// tool as the same user that reads the gateway's start-up environment
/// from `/proc/<ppid>/environ`, as a prompt-injected `shell.exec` can.
#[cfg(feature = "env")]
fn k8s_environ(base: &str) {
    use tyrum_secrets::{Config, Secrets};
    let mut config = Config::default();
    config.profile = Some(Profile::Kubernetes);
    config.state_dir = Some(std::path::Path::new(base).join("state-k8s"));
    config.kubernetes.env_prefix = Some("TYRUM_TEST_APP_SECRET_".to_owned());
    let _secrets = Secrets::open(&config).unwrap();
    let tool = std::process::Command::new("sh")
        .args(["-c", "cat /proc/$PPID/environ 2>/dev/null"])
        .output()
        .unwrap();
    let read = String::from_utf8_lossy(&tool.stdout).contains(K8S_CANARY);
    println!("read from /proc: {read}");
}

#[cfg(not(feature = "env"))]
fn k8s_environ(_base: &str) {
    panic!("the k8s-environ role needs the env feature");
}

/// Review 2: removing the variables from `environ` keeps them from being
/// inherited, but the kernel still serves the start-up environment in
/// `/proc/<pid>/environ` to every process of the same user, such as the
/// tools the gateway starts. As root (who reads everything) the worker and
/// its tool run as `nobody`.
fn kubernetes_env_secrets_are_not_readable_from_proc_environ_by_a_same_user_tool() {
    use std::os::unix::fs::PermissionsExt as _;
    if !cfg!(feature = "env") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = rustix::process::geteuid().is_root();
    let worker = process::worker_command("k8s-environ");
    let mut command = if root {
        let mut command = std::process::Command::new("setpriv");
        command
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(worker.get_program())
            .env(process::WORKER_ENV, "k8s-environ");
        command
    } else {
        worker
    };
    let out = command
        .arg(base.path())
        .env(K8S_VAR, K8S_CANARY)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("setpriv (util-linux) runs the worker as nobody; install it");
    assert!(out.status.success(), "worker k8s-environ failed");
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.contains("read from /proc: false"),
        "a tool of the same user read the removed env secret from /proc/<ppid>/environ: {out}"
    );
}
