//! `Secrets::open` on the single-host profile against real files: first run,
//! later runs, and every bad setup an operator hits, each a distinct error
//! that names what to fix and leaves every file as it was.

#![cfg(feature = "file")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::{Setup, snapshot};
use tyrum_secrets::{
    Config, Creation, ExposeSecret, KindSpec, NewSecret, OpenError, OpenOptions, ProviderId, Scope,
    SecretBytes, SecretKind, Secrets,
};

#[test]
fn first_run_creates_what_is_missing_and_says_so() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let created = &secrets.report().created;
    let state = setup.state_dir();
    assert!(
        created.contains(&Creation::Directory(state.clone())),
        "{created:?}"
    );
    assert!(
        created.contains(&Creation::FileStore(state.join("secrets.tyrum"))),
        "{created:?}"
    );
    assert!(
        created.contains(&Creation::Catalog(state.join("catalog.json"))),
        "{created:?}"
    );
    assert!(
        created.contains(&Creation::AuditLog(state.join("audit/0.jsonl"))),
        "{created:?}"
    );
    assert!(
        created.contains(&Creation::StateRecord(
            state.join("tyrum-secrets.state.json")
        )),
        "{created:?}"
    );
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(
        secrets
            .report()
            .to_string()
            .contains("created encrypted file store")
    );
    drop(secrets);

    // A later run creates nothing.
    let again = setup.open().unwrap();
    assert!(
        again.report().created.is_empty(),
        "{:?}",
        again.report().created
    );
}

#[test]
fn a_value_created_and_resolved_is_masked_and_audited() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-single-host-canary-4711");
    let resolved = secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    assert_eq!(resolved.expose_secret(), b"sk-single-host-canary-4711");
    let shown = secrets
        .redactor()
        .redact_str("token=sk-single-host-canary-4711")
        .into_inner();
    assert_eq!(shown, format!("token=[{}]", handle.id()));
    let logs = secrets.verify_audit().unwrap();
    assert_eq!(logs.len(), 1);
    let log = std::fs::read_to_string(&logs[0].0).unwrap();
    assert_eq!(log.matches("\"action\":\"resolve\"").count(), 1, "{log}");
    assert_eq!(log.matches("\"action\":\"create\"").count(), 1, "{log}");
    // Nothing in the state directory holds the value.
    for (path, bytes) in snapshot(&setup.state_dir()) {
        assert!(
            !bytes.windows(10).any(|w| w == b"sk-single-"),
            "{path} holds the value"
        );
    }
}

#[test]
fn a_second_open_preloads_every_resolvable_value_with_one_record() {
    let setup = Setup::new();
    let first = setup.open().unwrap();
    let a = setup.create(&first, b"sk-preload-first-value");
    let b = setup.create(&first, b"sk-preload-second-value");
    first.admin().revoke(b.id(), &support::operator()).unwrap();
    drop(first);

    let second = setup.open().unwrap();
    let preload = &second.report().preload;
    assert_eq!(
        (preload.loaded.len(), preload.loaded_count()),
        (2, 2),
        "{preload:?}"
    );
    let text = "a sk-preload-first-value b sk-preload-second-value";
    let shown = second.redactor().redact_str(text).into_inner();
    assert_eq!(shown, format!("a [{}] b [{}]", a.id(), b.id()));
    // The second open's log continues the first; its last record is the
    // one pre-load record of the second open, naming both handles.
    let log = std::fs::read_to_string(&second.report().audit_log).unwrap();
    let last = log.lines().last().unwrap();
    assert!(last.contains("\"action\":\"preload\""), "{last}");
    assert!(
        last.contains(&a.id().to_string()) && last.contains(&b.id().to_string()),
        "{last}"
    );
    assert_eq!(
        log.matches("\"action\":\"preload\"").count(),
        2,
        "one per open: {log}"
    );
    assert!(!log.contains("sk-preload"), "the audit log holds a value");
}

#[test]
fn opening_twice_in_one_process_writes_two_logs() {
    let setup = Setup::new();
    let one = setup.open().unwrap();
    let two = setup.open().unwrap();
    assert_ne!(one.report().audit_log, two.report().audit_log);
    let handle = setup.create(&one, b"sk-twice-opened-value");
    // The other open sees the catalog change and resolves through its own log.
    two.resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    one.resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    let logs = one.verify_audit().unwrap();
    let resolves: usize = logs
        .iter()
        .map(|(log, _)| {
            std::fs::read_to_string(log)
                .unwrap()
                .matches("\"action\":\"resolve\"")
                .count()
        })
        .collect::<Vec<_>>()
        .iter()
        .sum();
    assert_eq!(resolves, 2, "{logs:?}");
    assert!(
        logs.iter().all(|(_, n)| *n >= 2),
        "each log has its pre-load and a resolve: {logs:?}"
    );
}

#[test]
fn wrong_passphrase_is_refused_and_changes_nothing() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    setup.create(&secrets, b"sk-wrong-pass-value");
    drop(secrets);
    std::fs::write(setup.passphrase_file(), "another passphrase\n").unwrap();
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    assert!(matches!(err, OpenError::WrongKey { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("wrong passphrase"), "{text}");
    assert!(
        text.contains(&setup.passphrase_file().display().to_string()),
        "{text}"
    );
    assert!(!text.contains("another passphrase"), "{text}");
    assert_eq!(
        before,
        snapshot(setup.dir()),
        "a failed open changed a file"
    );
}

#[test]
fn missing_passphrase_file_creates_nothing() {
    let setup = Setup::new();
    std::fs::remove_file(setup.passphrase_file()).unwrap();
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::KeyFile {
                what: "passphrase file",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(err.to_string().contains("passphrase_file"), "{err}");
    assert_eq!(before, snapshot(setup.dir()));
    assert!(!setup.state_dir().exists());
}

#[test]
fn no_key_source_and_no_prompt_says_where_a_key_can_come_from() {
    let setup = Setup::new();
    let mut config = setup.config();
    config.passphrase_file = None;
    let err = Secrets::open_with(
        &config,
        OpenOptions::new().dangerous_insecure_kdf_for_tests(),
    )
    .unwrap_err();
    assert!(matches!(err, OpenError::NoStoreKey), "{err:?}");
    assert!(
        !setup.state_dir().exists(),
        "a failed first open left the state directory"
    );

    // A prompt supplies it, and is told the store is new.
    let secrets = Secrets::open_with(
        &config,
        OpenOptions::new()
            .dangerous_insecure_kdf_for_tests()
            .prompt(|request| {
                assert!(request.new_store);
                Ok("prompted passphrase".into())
            }),
    )
    .unwrap();
    drop(secrets);
    let err = Secrets::open_with(
        &config,
        OpenOptions::new().prompt(|_| Err("no terminal".to_owned())),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "the passphrase prompt failed: no terminal");
}

#[test]
fn a_changed_profile_or_store_is_refused_not_shadowed() {
    let setup = Setup::new();
    drop(setup.open().unwrap());
    let before = snapshot(setup.dir());

    let mut moved = setup.config();
    moved.file.path = "other.tyrum".into();
    let err = Secrets::open(&moved).unwrap_err();
    assert!(matches!(err, OpenError::StateMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains("the file store secrets.tyrum"),
        "{err}"
    );

    #[cfg(feature = "env")]
    {
        let mut other = setup.config();
        other.profile = Some(tyrum_secrets::Profile::Kubernetes);
        let err = Secrets::open(&other).unwrap_err();
        assert!(
            err.to_string()
                .contains("was created for the single-host profile, but the config says the kubernetes profile"),
            "{err}"
        );
    }
    assert_eq!(before, snapshot(setup.dir()));
}

#[test]
fn a_lost_store_is_not_replaced_by_an_empty_one() {
    let setup = Setup::new();
    drop(setup.open().unwrap());
    std::fs::remove_file(setup.state_dir().join("secrets.tyrum")).unwrap();
    let err = setup.open().unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::StateIncomplete {
                what: "the file store",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!setup.state_dir().join("secrets.tyrum").exists());
}

#[test]
fn an_audit_log_cut_short_is_refused_and_left_alone() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-cut-short-value");
    for _ in 0..3 {
        secrets
            .resolver()
            .resolve(handle.id(), &setup.request())
            .unwrap();
    }
    let log = secrets.report().audit_log.clone();
    drop(secrets);
    // Cut the last record off at a line boundary: the log still verifies on
    // its own; only the anchor knows.
    let text = std::fs::read_to_string(&log).unwrap();
    let keep: Vec<&str> = text.lines().collect();
    std::fs::write(&log, format!("{}\n", keep[..keep.len() - 1].join("\n"))).unwrap();
    let before = snapshot(setup.dir());
    let err = setup.open().unwrap_err();
    let OpenError::AuditCutShort {
        anchored, found, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    let written = keep.len() as u64;
    assert_eq!((*anchored, *found), (written, written - 1));
    assert!(
        err.to_string().contains("cut short or rolled back"),
        "{err}"
    );
    assert_eq!(before, snapshot(setup.dir()));
}

#[test]
fn a_state_dir_that_is_a_file_is_refused() {
    let setup = Setup::new();
    std::fs::write(setup.state_dir(), b"not a directory").unwrap();
    let err = setup.open().unwrap_err();
    assert!(matches!(err, OpenError::StateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[test]
fn a_state_dir_others_can_write_is_refused_naming_the_fix() {
    let setup = Setup::new();
    drop(setup.open().unwrap());
    let dir = setup.state_dir();
    for (mode, who) in [
        (0o777, "its group and every user"),
        (0o770, "its group"),
        (0o703, "every user"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let before = snapshot(setup.dir());
        let err = setup.open().unwrap_err();
        assert!(
            matches!(&err, OpenError::StateDir { path, .. } if *path == dir),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("writable by {who}")), "{message}");
        assert!(message.contains("chmod go-w"), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert_eq!(before, snapshot(setup.dir()), "mode {mode:o}");
    }
    // Readable by others is not refused; the fix opens it again.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(setup.open().unwrap());
}

#[test]
fn a_state_dir_another_user_owns_is_refused_naming_the_fix() {
    let setup = Setup::new();
    drop(setup.open().unwrap());
    let dir = setup.state_dir();
    // Only root can give a directory away; as another user the directory
    // this test made is always its own.
    match std::os::unix::fs::chown(&dir, Some(65534), None) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("not run: chown needs root here ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    let err = setup.open().unwrap_err();
    assert!(
        matches!(&err, OpenError::StateDir { path, .. } if *path == dir),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("is owned by uid 65534"), "{message}");
    assert!(message.contains("chown it to this user"), "{message}");
}

#[test]
fn bad_config_errors_are_distinct_and_name_what_to_fix() {
    let setup = Setup::new();
    let unknown =
        Config::from_toml_str("profile = \"single-host\"\nstate_dri = \"/x\"\n").unwrap_err();
    let wrong_type =
        Config::from_toml_str("profile = \"single-host\"\nstate_dir = 5\n").unwrap_err();
    std::fs::remove_file(setup.passphrase_file()).unwrap();
    let missing_pass = setup.open().unwrap_err();
    let messages = [
        unknown.to_string(),
        wrong_type.to_string(),
        missing_pass.to_string(),
    ];
    assert!(messages[0].contains("unknown key `state_dri`") && messages[0].contains("line 2"));
    assert!(messages[1].contains("`state_dir` must be a path"));
    assert!(messages[2].contains("passphrase file"));
    let mut sorted = messages.to_vec();
    sorted.dedup();
    assert_eq!(sorted.len(), 3);
}

#[test]
fn a_missing_setting_names_its_key_and_variable() {
    let mut config = Config::default();
    config.profile = Some(tyrum_secrets::Profile::SingleHost);
    let err = Secrets::open(&config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the single-host profile needs `state_dir` (or TYRUM_SECRETS_STATE_DIR): where the catalog, the audit log and the state record live"
    );
}

#[test]
fn must_exist_refuses_an_empty_state_dir() {
    let setup = Setup::new();
    let err = Secrets::open_with(&setup.config(), OpenOptions::new().must_exist()).unwrap_err();
    assert!(matches!(err, OpenError::StateIncomplete { .. }), "{err:?}");
    assert!(!setup.state_dir().exists());
}

#[test]
fn a_policy_file_that_is_not_a_policy_is_refused_before_anything_is_created() {
    let setup = Setup::new();
    let mut config = setup.config();
    let policy = setup.dir().join("policy.json");
    std::fs::write(&policy, b"{ not json").unwrap();
    config.policy_file = Some(policy);
    let err = Secrets::open(&config).unwrap_err();
    assert!(matches!(err, OpenError::Policy { .. }), "{err:?}");
    assert!(!setup.state_dir().exists());
}

#[test]
fn key_file_is_created_on_first_run_and_required_after() {
    let setup = Setup::new();
    let mut config = setup.config();
    config.passphrase_file = None;
    let key = setup.dir().join("store.key");
    config.key_file = Some(key.clone());
    let secrets = Secrets::open(&config).unwrap();
    assert!(
        secrets
            .report()
            .created
            .contains(&Creation::KeyFile(key.clone()))
    );
    drop(secrets);
    Secrets::open(&config).unwrap();
    std::fs::remove_file(&key).unwrap();
    let err = Secrets::open(&config).unwrap_err();
    assert!(err.to_string().contains("restore the key file"), "{err}");
}

#[test]
fn kdf_settings_apply_to_a_new_store() {
    let setup = Setup::new();
    let mut config = setup.config();
    config.file.kdf_memory_kib = 19_456;
    config.file.kdf_passes = 2;
    config.file.kdf_lanes = 1;
    // Without the insecure test option: the configured (cheapest allowed)
    // factors are used.
    let secrets = Secrets::open(&config).unwrap();
    let value = SecretBytes::from(b"sk-kdf-configured".to_vec());
    let spec = NewSecret::new(
        ProviderId::new("file").unwrap(),
        Scope::new("ci").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    secrets
        .admin()
        .create(spec, &value, &support::operator())
        .unwrap();
    assert!(Path::new(&setup.state_dir().join("secrets.tyrum")).exists());
}

#[test]
fn find_value_names_the_records_that_handed_a_value_out() {
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let handle = setup.create(&secrets, b"sk-find-value-canary-1");
    secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    let found = secrets
        .find_value(&SecretBytes::from(b"sk-find-value-canary-1".to_vec()))
        .unwrap();
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|r| &r.handle_id == handle.id()));
    let none = secrets
        .find_value(&SecretBytes::from(b"sk-find-value-canary-2".to_vec()))
        .unwrap();
    assert!(none.is_empty());
}

#[test]
fn find_value_and_the_records_read_only_verified_lines() {
    // A copy of a record that handed the value out, appended to a log as a
    // last line without its newline: verification leaves such a line out
    // (an append in progress), so nothing may read it as a record either.
    let setup = Setup::new();
    let secrets = setup.open().unwrap();
    let value = b"sk-find-value-unverified-1";
    let handle = setup.create(&secrets, value);
    secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    let candidate = SecretBytes::from(value.to_vec());
    assert_eq!(secrets.find_value(&candidate).unwrap().len(), 1);
    let before = secrets.audit_records().unwrap().len();

    let audit_dir = setup.state_dir().join("audit");
    let mut forged = false;
    for entry in std::fs::read_dir(&audit_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(line) = text
            .lines()
            .find(|l| l.contains(handle.id().as_str()) && l.contains("\"fingerprint\""))
        else {
            continue;
        };
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, line.as_bytes()).unwrap();
        forged = true;
    }
    assert!(forged, "a record with the value's fingerprint was found");
    secrets.verify_audit().unwrap();
    assert_eq!(
        secrets.find_value(&candidate).unwrap().len(),
        1,
        "the unverified copy was read"
    );
    assert_eq!(secrets.audit_records().unwrap().len(), before);
}

#[test]
fn layers_wrap_the_provider_and_the_audit_sink() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tyrum_secrets::{AuditError, AuditRecord, AuditSink, SecretProvider};
    use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

    #[derive(Debug)]
    struct Counting(Arc<dyn AuditSink>, Arc<AtomicUsize>);
    impl AuditSink for Counting {
        fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.record(record)
        }
    }

    let setup = Setup::new();
    let handle = {
        let secrets = setup.open().unwrap();
        setup.create(&secrets, b"sk-layered-value-1")
    };
    let counted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&counted);
    let secrets = Secrets::open_with(
        &setup.config(),
        OpenOptions::new()
            .provider_layer(|_, inner| {
                Arc::new(FaultyProvider::new(inner, FaultPlan::fail_all()))
                    as Arc<dyn SecretProvider>
            })
            .audit_layer(move |inner| Arc::new(Counting(inner, Arc::clone(&count)))),
    )
    .unwrap();
    // The pre-load could not read the value: reported, not fatal.
    assert_eq!(secrets.report().preload.skipped.len(), 1);
    let err = secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap_err();
    assert!(
        matches!(err, tyrum_secrets::ResolveError::Provider { .. }),
        "{err:?}"
    );
    assert_eq!(
        counted.load(Ordering::SeqCst),
        2,
        "the pre-load's record and the failed resolve's record go through the layer"
    );
}

#[test]
fn a_key_file_is_made_on_the_first_run_opens_the_store_after_and_a_wrong_length_is_refused() {
    let setup = Setup::new();
    let mut config = setup.config();
    config.passphrase_file = None;
    let key_file = setup.dir().join("store.key");
    config.key_file = Some(key_file.clone());
    let open = |config: &Config| {
        Secrets::open_with(
            config,
            OpenOptions::new().dangerous_insecure_kdf_for_tests(),
        )
    };
    let secrets = open(&config).unwrap();
    let handle = setup.create(&secrets, b"sk-key-file-store-value-1");
    drop(secrets);
    assert_eq!(std::fs::read(&key_file).unwrap().len(), 32);

    let secrets = open(&config).unwrap();
    let value = secrets
        .resolver()
        .resolve(handle.id(), &setup.request())
        .unwrap();
    assert_eq!(value.expose_secret(), b"sk-key-file-store-value-1");
    drop(value);
    drop(secrets);

    std::fs::write(&key_file, [7u8; 31]).unwrap();
    let before = snapshot(&setup.state_dir());
    let err = open(&config).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::KeyFile {
                what: "key file",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("exactly 32 raw bytes"), "{err}");
    assert_eq!(before, snapshot(&setup.state_dir()));
}
