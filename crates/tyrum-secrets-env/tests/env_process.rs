//! Env tests that need a process of their own: removing variables from the
//! process environment (only sound while single-threaded) and reading
//! `KUBERNETES_SERVICE_HOST`. `main` re-executes this binary with
//! `TYRUM_ENV_WORKER=<role>`; each child is a fresh single-threaded process
//! whose environment the parent sets through `Command::env`, so no test
//! mutates a shared environment and none races another.

#![allow(clippy::expect_used, reason = "a test fails loudly on a broken setup")]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, ExitCode, Output};

use tyrum_secrets_core::{ExposeSecret, Locator, SecretProvider, VersionSelector};
use tyrum_secrets_env::{EnvError, EnvLoader, running_in_kubernetes};

const WORKER: &str = "TYRUM_ENV_WORKER";
const PREFIX: &str = "TYRUM_TEST_SECRET_";
const CANARY: &str = "CANARY-env-process-61f0a7";
const BINARY: &[u8] = b"CANARY-bin-\xff\xfe\x80";

type Check = Result<(), String>;
type NamedTest = (&'static str, fn() -> Check);
/// Variables to add, variables to remove, what the worker should print.
type KubernetesCase<'a> = (&'a [(&'a str, OsString)], &'a [&'a str], &'a str);

fn main() -> ExitCode {
    if let Some(role) = std::env::var_os(WORKER) {
        return match run_worker(&role.to_string_lossy()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("worker failed: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let tests: [NamedTest; 5] = [
        (
            "removal_hides_variables_from_children_spawned_afterwards",
            removal_hides_variables_from_children_spawned_afterwards,
        ),
        (
            "without_removal_children_still_inherit_the_variables",
            without_removal_children_still_inherit_the_variables,
        ),
        (
            "removal_is_refused_in_a_process_with_a_second_thread",
            removal_is_refused_in_a_process_with_a_second_thread,
        ),
        (
            "a_non_utf8_value_loads_from_the_real_environment_as_bytes",
            a_non_utf8_value_loads_from_the_real_environment_as_bytes,
        ),
        (
            "running_in_kubernetes_follows_kubernetes_service_host",
            running_in_kubernetes_follows_kubernetes_service_host,
        ),
    ];
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        match test() {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(message) => {
                println!("test {name} ... FAILED\n    {message}");
                failed += 1;
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("\ntest result: {verdict}. {passed} passed; {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs this binary as `role` with `env` added to its environment.
fn worker(role: &str, env: &[(&str, OsString)], remove: &[&str]) -> Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = Command::new(exe);
    command.env(WORKER, role);
    for (name, value) in env {
        command.env(name, value);
    }
    for name in remove {
        command.env_remove(name);
    }
    command.output().expect("spawn the worker")
}

fn expect_success(output: &Output) -> Check {
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "worker exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn secret_env() -> Vec<(&'static str, OsString)> {
    vec![
        ("TYRUM_TEST_SECRET_API", CANARY.into()),
        ("TYRUM_TEST_SECRET_BIN", OsString::from_vec(BINARY.to_vec())),
        ("TYRUM_TEST_KEEP", "kept-not-a-secret".into()),
    ]
}

fn removal_hides_variables_from_children_spawned_afterwards() -> Check {
    expect_success(&worker("remove", &secret_env(), &[]))
}

fn without_removal_children_still_inherit_the_variables() -> Check {
    expect_success(&worker("keep", &secret_env(), &[]))
}

fn removal_is_refused_in_a_process_with_a_second_thread() -> Check {
    expect_success(&worker("threaded", &secret_env(), &[]))
}

fn a_non_utf8_value_loads_from_the_real_environment_as_bytes() -> Check {
    expect_success(&worker("binary", &secret_env(), &[]))
}

fn running_in_kubernetes_follows_kubernetes_service_host() -> Check {
    let cases: [KubernetesCase<'_>; 3] = [
        (
            &[("KUBERNETES_SERVICE_HOST", "10.96.0.1".into())],
            &[],
            "true",
        ),
        (&[("KUBERNETES_SERVICE_HOST", "".into())], &[], "false"),
        (&[], &["KUBERNETES_SERVICE_HOST"], "false"),
    ];
    for (env, remove, expected) in cases {
        let output = worker("k8s", env, remove);
        expect_success(&output)?;
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if said != expected {
            return Err(format!(
                "with {env:?} minus {remove:?}: said {said}, expected {expected}"
            ));
        }
    }
    Ok(())
}

// ---- worker roles (run in the child process) ----

fn run_worker(role: &str) -> Check {
    match role {
        "remove" => worker_remove(),
        "keep" => worker_keep(),
        "threaded" => worker_threaded(),
        "binary" => worker_binary(),
        "k8s" => {
            println!("{}", running_in_kubernetes());
            Ok(())
        }
        other => Err(format!("unknown role {other}")),
    }
}

fn locator(name: &str) -> Locator {
    Locator::new(name).expect("valid locator")
}

fn read(provider: &impl SecretProvider, name: &str) -> Result<Vec<u8>, String> {
    provider
        .read(&locator(name), VersionSelector::Latest)
        .map(|got| got.value.expose_secret().to_vec())
        .map_err(|e| format!("read {name}: {e}"))
}

/// What `printenv NAME` in a freshly spawned child prints, if anything.
fn child_sees(name: &str) -> Result<Option<Vec<u8>>, String> {
    let output = Command::new("printenv")
        .arg(name)
        .output()
        .map_err(|e| format!("spawn printenv: {e}"))?;
    match output.status.code() {
        Some(0) => Ok(Some(output.stdout)),
        Some(1) if output.stdout.is_empty() => Ok(None),
        _ => Err(format!("printenv {name}: {}", output.status)),
    }
}

fn child_environment() -> Result<Vec<u8>, String> {
    Command::new("sh")
        .args(["-c", "env"])
        .output()
        .map(|o| o.stdout)
        .map_err(|e| format!("spawn sh: {e}"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn worker_remove() -> Check {
    let provider = EnvLoader::new()
        .prefix(PREFIX)
        .remove_from_environment(true)
        .load()
        .map_err(|e| format!("load with removal: {e}"))?;
    if !provider.removed_from_environment() {
        return Err("provider says nothing was removed".into());
    }
    // The provider still has the values.
    if read(&provider, "API")? != CANARY.as_bytes() || read(&provider, "BIN")? != BINARY {
        return Err("the provider lost a value".into());
    }
    // This process no longer has them.
    for name in ["TYRUM_TEST_SECRET_API", "TYRUM_TEST_SECRET_BIN"] {
        if std::env::var_os(name).is_some() {
            return Err(format!("{name} is still in this process's environment"));
        }
    }
    // Children spawned afterwards do not inherit them...
    if let Some(seen) = child_sees("TYRUM_TEST_SECRET_API")? {
        return Err(format!(
            "printenv still sees the variable ({} bytes)",
            seen.len()
        ));
    }
    let env = child_environment()?;
    if contains(&env, PREFIX.as_bytes()) || contains(&env, CANARY.as_bytes()) {
        return Err("sh -c env still lists a removed variable".into());
    }
    // ...but still inherit the variables that were not loaded.
    if child_sees("TYRUM_TEST_KEEP")?.as_deref() != Some(b"kept-not-a-secret\n".as_slice()) {
        return Err("removal took a variable it did not load".into());
    }
    // The documented limit: the kernel still shows the start-up environment.
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    eprintln!(
        "note: /proc/self/environ still holds the start-up value: {}",
        contains(&environ, CANARY.as_bytes())
    );
    Ok(())
}

fn worker_keep() -> Check {
    let provider = EnvLoader::new()
        .prefix(PREFIX)
        .load()
        .map_err(|e| format!("load: {e}"))?;
    if provider.removed_from_environment() {
        return Err("provider says it removed variables".into());
    }
    if read(&provider, "API")? != CANARY.as_bytes() {
        return Err("the provider lost a value".into());
    }
    match child_sees("TYRUM_TEST_SECRET_API")? {
        Some(seen) if seen == format!("{CANARY}\n").into_bytes() => Ok(()),
        _ => Err("without removal a child should inherit the variable".into()),
    }
}

fn worker_threaded() -> Check {
    let (stop, parked) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || parked.recv());
    let result = EnvLoader::new()
        .prefix(PREFIX)
        .remove_from_environment(true)
        .load();
    let _ = stop.send(());
    let _ = other.join();
    match result {
        Err(EnvError::NotSingleThreaded { threads: 2 }) => {}
        Err(e) => {
            return Err(format!(
                "expected NotSingleThreaded with 2 threads, got {e}"
            ));
        }
        Ok(_) => return Err("removal ran with a second thread alive".into()),
    }
    if std::env::var_os("TYRUM_TEST_SECRET_API").is_none() {
        return Err("a refused load removed the variable".into());
    }
    if child_sees("TYRUM_TEST_SECRET_API")?.is_none() {
        return Err("a refused load hid the variable from children".into());
    }
    // Once the thread has ended the same load succeeds. The kernel may list
    // a joined thread for a moment longer, so allow it a few tries.
    let mut attempts = 0;
    loop {
        match EnvLoader::new()
            .prefix(PREFIX)
            .remove_from_environment(true)
            .load()
        {
            Ok(_) => break,
            Err(EnvError::NotSingleThreaded { .. }) if attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(format!("load after the thread ended: {e}")),
        }
    }
    if child_sees("TYRUM_TEST_SECRET_API")?.is_some() {
        return Err("removal after the thread ended did not happen".into());
    }
    Ok(())
}

fn worker_binary() -> Check {
    let provider = EnvLoader::new()
        .variable(locator("bin"), "TYRUM_TEST_SECRET_BIN")
        .load()
        .map_err(|e| format!("load: {e}"))?;
    if read(&provider, "bin")? != BINARY {
        return Err("the non-UTF-8 value did not load byte for byte".into());
    }
    Ok(())
}
