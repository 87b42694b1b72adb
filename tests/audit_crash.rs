//! The JSON-lines audit log survives its writer being killed mid-append:
//! every record the writer acknowledged is in the log, the chain verifies,
//! and a reopened sink continues it — anchored too: a kill between a
//! record and its anchor update never makes the log fail its anchor.
//!
//! `harness = false`: the testkit's process runner re-executes this binary
//! to run the writer role in a real child process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::Stdio;

use tyrum_secrets::{
    Anchor, AuditChainKey, AuditRecord, AuditSink, HandleId, JsonLinesAuditSink, Requester,
    SecretBytes, Timestamp, verify_audit_log,
};
use tyrum_secrets_testkit::process;

const PATH_ENV: &str = "TYRUM_AUDIT_PATH";
const ANCHORED_ENV: &str = "TYRUM_AUDIT_ANCHORED";

fn key() -> AuditChainKey {
    AuditChainKey::new(SecretBytes::from(vec![0x5a; 32])).unwrap()
}

/// Child role: append records forever, printing each acknowledged sequence
/// number only after `record` returned (written and fsynced).
fn open(path: &Path, anchored: bool) -> JsonLinesAuditSink {
    let sink = if anchored {
        JsonLinesAuditSink::open_anchored(path, key(), Anchor::beside(path))
    } else {
        JsonLinesAuditSink::open(path, key())
    };
    sink.unwrap_or_else(|e| panic!("the log does not reopen: {e}"))
}

fn writer(path: &Path) -> ! {
    let sink = open(path, std::env::var_os(ANCHORED_ENV).is_some());
    let requester = Requester::new("crash-writer").unwrap();
    let mut stdout = std::io::stdout().lock();
    loop {
        let record = AuditRecord::new(
            Timestamp::now(),
            format!("crash-{}", sink.head().seq + 1),
            HandleId::generate().unwrap(),
            requester.clone(),
            // Long enough that a kill often lands mid-write.
            "x".repeat(4096),
        );
        sink.record(record).unwrap();
        writeln!(stdout, "{}", sink.head().seq).unwrap();
        stdout.flush().unwrap();
    }
}

fn killed_writer_loses_no_acknowledged_record() {
    crash_rounds(false);
}

fn killed_anchored_writer_never_leaves_the_log_behind_its_anchor() {
    crash_rounds(true);
}

fn crash_rounds(anchored: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut last_acked = 0;
    for round in 0..5 {
        let mut command = process::worker_command("audit-writer");
        command.env(PATH_ENV, &path).stdout(Stdio::piped());
        if anchored {
            command.env(ANCHORED_ENV, "1");
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it write a while past the previous round, then kill it.
        let target = last_acked + 20 + round * 7;
        for line in lines.by_ref() {
            let seq: u64 = line.unwrap().parse().unwrap();
            last_acked = last_acked.max(seq);
            if seq >= target {
                break;
            }
        }
        child.kill().unwrap();
        // Acknowledgements already in the pipe count too.
        for line in lines {
            last_acked = last_acked.max(line.unwrap().parse().unwrap());
        }
        child.wait().unwrap();

        let sink = open(&path, anchored);
        let head = sink.head();
        assert!(
            head.seq >= last_acked,
            "round {round}: log ends at {} but {last_acked} was acknowledged",
            head.seq
        );
        drop(sink);
        assert_eq!(verify_audit_log(&path, &key(), None).unwrap(), head);
        last_acked = head.seq;
    }
}

fn main() {
    process::main(
        &[
            (
                "killed_writer_loses_no_acknowledged_record",
                killed_writer_loses_no_acknowledged_record,
            ),
            (
                "killed_anchored_writer_never_leaves_the_log_behind_its_anchor",
                killed_anchored_writer_never_leaves_the_log_behind_its_anchor,
            ),
        ],
        |_role, _args| {
            let path = std::env::var_os(PATH_ENV).expect("TYRUM_AUDIT_PATH is set");
            writer(Path::new(&path));
        },
    );
}
