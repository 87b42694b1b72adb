use std::path::Path;

use super::*;
use crate::request::Requester;
use crate::{HandleId, Timestamp};

fn key(byte: u8) -> AuditChainKey {
    AuditChainKey::new(SecretBytes::from(vec![byte; 32])).unwrap()
}

fn record(n: u64) -> AuditRecord {
    AuditRecord::new(
        Timestamp::from_unix_millis(1_800_000_000_000 + n),
        format!("req-{n}"),
        HandleId::generate().unwrap(),
        Requester::new("alpha").unwrap(),
        format!("purpose-{n}"),
    )
}

/// A log of `n` records; returns its path and head.
fn log_with(dir: &Path, n: u64) -> (PathBuf, ChainHead) {
    let path = dir.join("audit.jsonl");
    let sink = JsonLinesAuditSink::open(&path, key(7)).unwrap();
    for i in 1..=n {
        sink.record(record(i)).unwrap();
    }
    (path, sink.head())
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn problem(path: &Path, head: Option<&ChainHead>) -> VerifyError {
    verify_audit_log(path, &key(7), head).unwrap_err()
}

#[test]
fn untouched_log_verifies_and_lines_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_with(dir.path(), 5);
    assert_eq!(head.seq, 5);
    assert_eq!(verify_audit_log(&path, &key(7), Some(&head)).unwrap(), head);
    for line in lines(&path) {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(value["entry"]["record"]["request_id"].is_string());
    }
}

#[test]
fn edited_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 5);
    let mut l = lines(&path);
    l[2] = l[2].replace("purpose-3", "purpose-X");
    write_lines(&path, &l);
    assert_eq!(
        problem(&path, None),
        VerifyError {
            line: 3,
            problem: VerifyProblem::BadMac
        }
    );
}

#[test]
fn reordered_records_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 5);
    let mut l = lines(&path);
    l.swap(1, 2);
    write_lines(&path, &l);
    assert_eq!(
        problem(&path, None),
        VerifyError {
            line: 2,
            problem: VerifyProblem::OutOfSequence {
                expected: 2,
                found: 3
            }
        }
    );
}

#[test]
fn inserted_records_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 5);
    let original = lines(&path);

    // A replayed copy of a genuine record.
    let mut l = original.clone();
    l.insert(2, original[1].clone());
    write_lines(&path, &l);
    assert_eq!(problem(&path, None).line, 3);
    assert!(matches!(
        problem(&path, None).problem,
        VerifyProblem::OutOfSequence { .. }
    ));

    // A forged record written without the key, made to look in sequence.
    let mut l = original.clone();
    let forged = original[2].replace("purpose-3", "forged");
    l.insert(2, forged);
    write_lines(&path, &l);
    assert_eq!(
        problem(&path, None),
        VerifyError {
            line: 3,
            problem: VerifyProblem::BadMac
        }
    );
}

#[test]
fn deleted_records_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 5);
    let original = lines(&path);
    for removed in [0, 2] {
        let mut l = original.clone();
        l.remove(removed);
        write_lines(&path, &l);
        let err = problem(&path, None);
        assert_eq!(err.line, removed as u64 + 1);
        assert!(
            matches!(err.problem, VerifyProblem::OutOfSequence { .. }),
            "{err}"
        );
    }
}

#[test]
fn truncation_is_detected_against_the_last_known_head() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_with(dir.path(), 5);
    let l = lines(&path);
    write_lines(&path, &l[..3]);
    // Without a head the shorter log is self-consistent...
    assert_eq!(verify_audit_log(&path, &key(7), None).unwrap().seq, 3);
    // ...with the head it is not.
    assert_eq!(
        problem(&path, Some(&head)).problem,
        VerifyProblem::Truncated {
            expected: 5,
            found: 3
        }
    );
    write_lines(&path, &[]);
    assert!(matches!(
        problem(&path, Some(&head)).problem,
        VerifyProblem::Truncated { .. }
    ));
    // A cut mid-line is a torn line.
    std::fs::write(&path, &l[0].as_bytes()[..40]).unwrap();
    assert_eq!(problem(&path, None).problem, VerifyProblem::TornLine);
}

#[test]
fn rewritten_history_with_the_key_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_with(dir.path(), 3);
    std::fs::remove_file(&path).unwrap();
    // Someone with the key writes a fresh log of the same length.
    let (path, _) = log_with(dir.path(), 3);
    assert_eq!(
        problem(&path, Some(&head)).problem,
        VerifyProblem::HeadMismatch { seq: 3 }
    );
}

#[test]
fn wrong_key_fails_on_the_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 2);
    let err = verify_audit_log(&path, &key(8), None).unwrap_err();
    assert_eq!((err.line, err.problem), (1, VerifyProblem::BadMac));
}

#[test]
fn reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_with(dir.path(), 2);
    let sink = JsonLinesAuditSink::open(&path, key(7)).unwrap();
    assert_eq!(sink.head(), head);
    sink.record(record(3)).unwrap();
    let head = sink.head();
    drop(sink);
    assert_eq!(head.seq, 3);
    assert_eq!(verify_audit_log(&path, &key(7), Some(&head)).unwrap(), head);
}

#[test]
fn reopen_refuses_a_tampered_log_and_the_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 3);
    assert!(matches!(
        JsonLinesAuditSink::open(&path, key(9)),
        Err(AuditError::Tampered { .. })
    ));
    let mut l = lines(&path);
    l.remove(1);
    write_lines(&path, &l);
    assert!(matches!(
        JsonLinesAuditSink::open(&path, key(7)),
        Err(AuditError::Tampered { .. })
    ));
}

#[test]
fn reopen_cuts_a_torn_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_with(dir.path(), 2);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"mac\":\"00");
    std::fs::write(&path, &bytes).unwrap();
    let sink = JsonLinesAuditSink::open(&path, key(7)).unwrap();
    assert_eq!(sink.head(), head);
    sink.record(record(3)).unwrap();
    assert_eq!(verify_audit_log(&path, &key(7), None).unwrap().seq, 3);
}

#[test]
fn a_second_writer_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let first = JsonLinesAuditSink::open(&path, key(7)).unwrap();
    assert!(matches!(
        JsonLinesAuditSink::open(&path, key(7)),
        Err(AuditError::Locked { .. })
    ));
    drop(first);
    assert!(JsonLinesAuditSink::open(&path, key(7)).is_ok());
}

#[cfg(unix)]
#[test]
fn log_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = log_with(dir.path(), 1);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn keys_do_not_show_in_debug() {
    let k = AuditChainKey::new(SecretBytes::from(
        b"CANARY-chain-key-0123456789abcdef".to_vec(),
    ))
    .unwrap();
    assert!(!format!("{k:?}").contains("CANARY"));
    assert!(AuditChainKey::new(SecretBytes::from(vec![0; 31])).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    #[test]
    fn any_edit_of_a_log_is_an_error_or_a_line_aligned_prefix_never_a_panic(
        edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..4),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
        cut_it in proptest::prelude::any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (path, head) = log_with(dir.path(), 3);
        let original = std::fs::read(&path).unwrap();
        let mut bytes = original.clone();
        for (at, byte) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
        if cut_it {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        match verify_audit_bytes(&bytes, &key(7), None) {
            Ok(found) => {
                // Only an unchanged log, or one cut at a line end, verifies.
                proptest::prop_assert!(original.starts_with(&bytes));
                proptest::prop_assert!(bytes.is_empty() || bytes.ends_with(b"\n"));
                proptest::prop_assert!(found.seq <= head.seq);
                if bytes != original {
                    proptest::prop_assert!(verify_audit_bytes(&bytes, &key(7), Some(&head)).is_err());
                }
            }
            Err(error) => proptest::prop_assert!(!error.to_string().is_empty()),
        }
    }
}

mod anchored {
    use super::*;
    use crate::anchor::{Anchor, AnchorError, MemoryAnchor};
    use crate::audit::Action;
    use crate::request::Purpose;

    /// An anchored log of `n` records; returns its path, the anchor and
    /// the log's bytes after each record (index 0: empty).
    fn anchored_log(dir: &Path, n: u64) -> (PathBuf, MemoryAnchor, Vec<Vec<u8>>) {
        let path = dir.join("audit.jsonl");
        let memory = MemoryAnchor::new();
        let sink =
            JsonLinesAuditSink::open_anchored(&path, key(7), Anchor::new(memory.clone())).unwrap();
        let mut copies = vec![std::fs::read(&path).unwrap()];
        for i in 1..=n {
            sink.record(record(i)).unwrap();
            copies.push(std::fs::read(&path).unwrap());
        }
        (path, memory, copies)
    }

    fn reopen(path: &Path, memory: &MemoryAnchor) -> Result<JsonLinesAuditSink, AuditError> {
        JsonLinesAuditSink::open_anchored(path, key(7), Anchor::new(memory.clone()))
    }

    fn refusal(result: Result<JsonLinesAuditSink, AuditError>) -> AnchorError {
        match result {
            Err(AuditError::Anchor { source, .. }) => source,
            Err(other) => panic!("expected an anchor refusal, got {other}"),
            Ok(_) => panic!("the log reopened"),
        }
    }

    #[test]
    fn a_log_cut_short_by_any_number_of_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, copies) = anchored_log(dir.path(), 3);
        let l = lines(&path);
        for kept in 0..3 {
            write_lines(&path, &l[..kept]);
            let error = refusal(reopen(&path, &memory));
            assert!(
                matches!(error, AnchorError::RolledBack { anchored, found, .. }
                    if anchored.count == 3 && found.count == kept as u64),
                "{error}"
            );
            let text = error.to_string();
            assert!(
                text.contains("rolled back") && text.contains("recovery"),
                "{text}"
            );
        }
        std::fs::write(&path, &copies[3]).unwrap();
        assert_eq!(reopen(&path, &memory).unwrap().head().seq, 3);
    }

    #[test]
    fn a_rolled_back_or_foreign_copy_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, copies) = anchored_log(dir.path(), 5);
        // An older copy of the same log.
        std::fs::write(&path, &copies[2]).unwrap();
        assert!(matches!(
            refusal(reopen(&path, &memory)),
            AnchorError::RolledBack { .. }
        ));
        // Another log under the same key, longer than the anchored one.
        let other_dir = tempfile::tempdir().unwrap();
        let (other, _) = log_with(other_dir.path(), 7);
        std::fs::copy(&other, &path).unwrap();
        assert!(matches!(
            refusal(reopen(&path, &memory)),
            AnchorError::Diverged { .. }
        ));
    }

    #[test]
    fn a_crash_between_a_record_and_its_anchor_update_reopens_fine() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, _) = anchored_log(dir.path(), 2);
        let before = memory.bytes();
        let sink = reopen(&path, &memory).unwrap();
        // The anchor update fails after the record is durable: the caller
        // hears of it, the record stays.
        memory.fail(true);
        assert!(matches!(
            sink.record(record(3)),
            Err(AuditError::Anchor { .. })
        ));
        drop(sink);
        memory.fail(false);
        assert_eq!(memory.bytes(), before, "the anchor is one record behind");
        let sink = reopen(&path, &memory).unwrap();
        assert_eq!(sink.head().seq, 3);
        drop(sink);
        // Reopening advanced the anchor: cutting record 3 is now refused.
        let l = lines(&path);
        write_lines(&path, &l[..2]);
        assert!(matches!(
            refusal(reopen(&path, &memory)),
            AnchorError::RolledBack { .. }
        ));
    }

    #[test]
    fn a_log_with_records_but_no_anchor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = log_with(dir.path(), 2);
        let error = refusal(reopen(&path, &MemoryAnchor::new()));
        assert!(
            matches!(error, AnchorError::Missing { count: 2, .. }),
            "{error}"
        );
    }

    #[test]
    fn accepting_a_rollback_is_recorded_in_the_log_and_moves_the_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, copies) = anchored_log(dir.path(), 4);
        std::fs::write(&path, &copies[1]).unwrap();
        let operator = Requester::new("operator").unwrap();
        let reason = Purpose::new("restored from last night's backup").unwrap();
        let sink = JsonLinesAuditSink::accept_rollback(
            &path,
            key(7),
            Anchor::new(memory.clone()),
            &operator,
            &reason,
        )
        .unwrap();
        assert_eq!(sink.head().seq, 2);
        drop(sink);
        let l = lines(&path);
        let last: serde_json::Value = serde_json::from_str(&l[1]).unwrap();
        let record: AuditRecord = serde_json::from_value(last["entry"]["record"].clone()).unwrap();
        assert_eq!(record.action, Action::AcceptRollback);
        assert_eq!(record.outcome, crate::audit::Outcome::Applied);
        assert_eq!(record.requester.agent(), "operator");
        assert_eq!(record.purpose, "restored from last night's backup");
        assert_eq!(record.request_id, "accept-rollback:anchored=0.4:found=0.1");
        assert_eq!(reopen(&path, &memory).unwrap().head().seq, 2);
        // A log that the anchor accepts gets no such record.
        let sink = JsonLinesAuditSink::accept_rollback(
            &path,
            key(7),
            Anchor::new(memory.clone()),
            &operator,
            &reason,
        )
        .unwrap();
        assert_eq!(sink.head().seq, 2);
    }

    #[test]
    fn accepting_never_covers_a_tampered_log() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, _) = anchored_log(dir.path(), 3);
        let mut l = lines(&path);
        l.remove(1);
        write_lines(&path, &l);
        let result = JsonLinesAuditSink::accept_rollback(
            &path,
            key(7),
            Anchor::new(memory),
            &Requester::new("operator").unwrap(),
            &Purpose::new("x").unwrap(),
        );
        assert!(matches!(result, Err(AuditError::Tampered { .. })));
    }

    #[test]
    fn a_damaged_anchor_is_refused_and_replaced_only_by_accepting() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, _) = anchored_log(dir.path(), 2);
        memory.set_bytes(Some(b"damaged".to_vec()));
        assert!(matches!(
            refusal(reopen(&path, &memory)),
            AnchorError::Malformed { .. }
        ));
        let sink = JsonLinesAuditSink::accept_rollback(
            &path,
            key(7),
            Anchor::new(memory.clone()),
            &Requester::new("operator").unwrap(),
            &Purpose::new("the anchor was damaged").unwrap(),
        )
        .unwrap();
        assert_eq!(sink.head().seq, 3);
        drop(sink);
        assert_eq!(reopen(&path, &memory).unwrap().head().seq, 3);
    }

    #[test]
    fn verifying_against_the_anchor_reads_a_held_log_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (path, memory, copies) = anchored_log(dir.path(), 3);
        // The log is held by a writer; verifying does not need its lock.
        let writer = reopen(&path, &memory).unwrap();
        let anchor = Anchor::new(memory.clone());
        let head = JsonLinesAuditSink::verify_anchored(&path, &key(7), &anchor).unwrap();
        assert_eq!(head, writer.head());
        // An append in progress (a torn last line) is left out, not cut.
        let mut torn = copies[3].clone();
        torn.extend_from_slice(b"{\"mac\":\"00");
        std::fs::write(&path, &torn).unwrap();
        let anchor_before = memory.bytes();
        assert_eq!(
            JsonLinesAuditSink::verify_anchored(&path, &key(7), &anchor)
                .unwrap()
                .seq,
            3
        );
        assert_eq!(std::fs::read(&path).unwrap(), torn);
        assert_eq!(memory.bytes(), anchor_before);
        drop(writer);
        // Cut short, rolled back, unanchored, or another key: refused.
        std::fs::write(&path, &copies[1]).unwrap();
        let refused = JsonLinesAuditSink::verify_anchored(&path, &key(7), &anchor);
        assert!(matches!(
            refused,
            Err(AuditError::Anchor {
                source: AnchorError::RolledBack { .. },
                ..
            })
        ));
        let unanchored = Anchor::new(MemoryAnchor::new());
        assert!(matches!(
            JsonLinesAuditSink::verify_anchored(&path, &key(7), &unanchored),
            Err(AuditError::Anchor {
                source: AnchorError::Missing { count: 1, .. },
                ..
            })
        ));
        assert!(matches!(
            JsonLinesAuditSink::verify_anchored(&path, &key(8), &anchor),
            Err(AuditError::Tampered { .. })
        ));
    }

    #[test]
    fn a_sibling_anchor_file_works_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let open = || JsonLinesAuditSink::open_anchored(&path, key(7), Anchor::beside(&path));
        let sink = open().unwrap();
        for i in 1..=3 {
            sink.record(record(i)).unwrap();
        }
        drop(sink);
        assert_eq!(open().unwrap().head().seq, 3);
        let l = lines(&path);
        write_lines(&path, &l[..2]);
        assert!(matches!(refusal(open()), AnchorError::RolledBack { .. }));
    }
}

#[test]
fn debug_of_the_sink_does_not_wait_for_a_write_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesAuditSink::open(&path, key(7)).unwrap();
    let _busy = sink.state.lock().unwrap();
    let text = format!("{sink:?}");
    assert!(text.contains("JsonLinesAuditSink"), "{text}");
}

#[test]
fn a_cloned_chain_key_verifies_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let original = key(7);
    let copy = original.clone();
    let path = dir.path().join("audit.jsonl");
    let sink = JsonLinesAuditSink::open(&path, original).unwrap();
    sink.record(record(1)).unwrap();
    assert_eq!(verify_audit_log(&path, &copy, None).unwrap(), sink.head());
    assert_eq!(format!("{copy:?}"), "AuditChainKey([REDACTED])");
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for path in [fifo.as_path(), Path::new("/dev/zero")] {
        assert!(matches!(
            verify_audit_log(path, &key(7), None),
            Err(VerifyError {
                problem: VerifyProblem::Unreadable { .. },
                ..
            })
        ));
        let error = JsonLinesAuditSink::open(path, key(7)).unwrap_err();
        assert!(matches!(error, AuditError::Io { .. }), "{error}");
        assert!(error.to_string().contains("regular file"), "{error}");
    }
}

#[test]
fn an_endless_line_is_malformed_not_read_whole() {
    let bytes = vec![b'x'; (1 << 20) + 10];
    let error = verify_audit_bytes(&bytes, &key(7), None).unwrap_err();
    assert_eq!(error.problem, VerifyProblem::Malformed);
}
