//! The root README's operator workflow runs as written, with the built
//! binary first on `PATH` (the `cargo install` line aside), and prints no
//! value.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::path::Path;
use std::process::Command;

use support::{BIN, canary, forms, stderr, stdout};

/// The first `sh` block after the "Operator command line" heading.
fn workflow() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).expect("the workspace README");
    let (_, section) = text
        .split_once("## Operator command line")
        .expect("the README's operator section");
    let (_, block) = section.split_once("```sh\n").expect("its sh block");
    let (block, _) = block.split_once("```").unwrap();
    block.to_owned()
}

#[test]
fn the_readme_workflow_runs_as_written() {
    let block = workflow();
    for step in [
        "cargo install --path crates/tyrum-secrets-cli",
        "tyrum-secrets init",
        "| tyrum-secrets put",
        "tyrum-secrets list",
        "tyrum-secrets run",
        "| tyrum-secrets redact",
        "tyrum-secrets audit verify",
        "| tyrum-secrets rotate",
        "tyrum-secrets revoke",
    ] {
        assert!(block.contains(step), "the workflow shows {step:?}");
    }
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("cargo install"))
        .map(|l| format!("{l}\n"))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // Where the README has the operator type the passphrase, its other
    // way: a passphrase file.
    let passphrase = dir.path().join("passphrase");
    std::fs::write(&passphrase, "readme workflow passphrase\n").unwrap();
    let token = canary();
    let next = canary();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", &home)
        .env("TYRUM_SECRETS_PASSPHRASE_FILE", &passphrase)
        .env("TYRUM_SECRETS_FILE_KDF_MEMORY_KIB", "19456")
        .env("TYRUM_SECRETS_FILE_KDF_PASSES", "2")
        .env("DEPLOY_TOKEN", &token)
        .env("NEW_DEPLOY_TOKEN", &next)
        .output()
        .unwrap();
    let (text, errors) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{errors}\n{text}");
    assert!(text.contains("deploying with [secret:"), "{text}");
    assert!(text.contains("log: token=[secret:"), "{text}");
    assert!(text.contains("every chain and anchor verifies"), "{text}");
    assert!(text.contains(" revoked"), "{text}");
    for value in [&token, &next] {
        for form in forms(value) {
            assert!(!text.contains(&form) && !errors.contains(&form), "{text}");
        }
    }
}
