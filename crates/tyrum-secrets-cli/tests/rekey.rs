//! `rekey` on the built binary is on record: each rekey (a new passphrase,
//! or also a new data key) is one audit record naming the operator and,
//! for a new data key, how many records were re-sealed; never a key or a
//! passphrase. The log still verifies afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use serde_json::Value;
use support::{Env, assert_ok, canary, stdout};

#[test]
fn each_rekey_writes_one_audit_record_naming_the_operator_and_no_passphrase() {
    let mut env = Env::init();
    env.put(&canary(), &[]);
    env.canaries.push("correct horse battery staple".to_owned());
    // The operator as the other changes record it (the OS user included).
    let create = records(&env)
        .into_iter()
        .find(|r| r["action"] == "create")
        .unwrap();

    let mut resealed = None;
    for (n, data_key) in [(1, false), (2, true)] {
        let passphrase = format!("rekey test passphrase number {n}");
        env.canaries.push(passphrase.clone());
        std::fs::write(env.path("new"), format!("{passphrase}\n")).unwrap();
        let before = rekeys(&env);

        let mut args = vec!["rekey"];
        if data_key {
            args.push("--data-key");
        }
        args.push("--new-passphrase-file");
        let mut command = env.command(&args);
        command.arg(env.path("new"));
        assert_ok(&env.run_command(command, None));
        std::fs::copy(env.path("new"), env.path("passphrase")).unwrap();

        assert_ok(&env.run(&["audit", "verify"], None));
        let after = rekeys(&env);
        assert_eq!(after.len(), before.len() + 1, "{after:?}");
        assert_eq!(after[..before.len()], before[..]);
        let record = after.last().unwrap();
        assert_eq!(record["outcome"], "applied", "{record}");
        assert_eq!(record["requester"], create["requester"], "{record}");
        let purpose = record["purpose"].as_str().unwrap();
        assert_eq!(purpose.contains("--data-key"), data_key, "{record}");
        if data_key {
            resealed = record["resealed"].as_u64();
        } else {
            assert!(record.get("resealed").is_none(), "{record}");
        }
    }
    // At least the value put above was re-sealed.
    assert!(resealed.is_some_and(|n| n >= 1), "{resealed:?}");
    env.assert_no_leaks();
}

/// Every record of the state's audit logs, through `audit tail --json`.
fn records(env: &Env) -> Vec<Value> {
    let out = env.run(&["--json", "audit", "tail", "-n", "100000"], None);
    assert_ok(&out);
    stdout(&out)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["record"].clone())
        .collect()
}

fn rekeys(env: &Env) -> Vec<Value> {
    records(env)
        .into_iter()
        .filter(|r| r["action"] == "rekey")
        .collect()
}
