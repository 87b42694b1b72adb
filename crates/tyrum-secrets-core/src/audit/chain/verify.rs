//! Verifying a chained JSON-lines audit log, one line at a time: memory
//! stays bounded by the longest line, however long the log.

use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;

use hmac::Mac as _;
use serde::Deserialize;

use super::{AuditChainKey, ChainHead, LINE_MIDDLE, LINE_PREFIX, MAC_HEX_LEN};
use crate::anchor::ChainWatch;
use crate::audit::{AuditRecord, unhex};
use crate::durable::open_regular;

/// Longest line accepted, in bytes. A record is a few hundred bytes; a
/// longer "line" is damage, and reading it whole would be unbounded.
const MAX_LINE_LEN: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    seq: u64,
    prev: String,
    record: AuditRecord,
}

/// Verifies the log at `path` under `key`, returning its head.
///
/// With `expected` (a head recorded earlier), also detects records cut off
/// the end and a rewritten history. Only a regular file is read (a FIFO or a
/// device is refused), and only up to the length it had when opened.
///
/// # Errors
/// [`VerifyError`] naming the first bad line and what is wrong with it.
pub fn verify_audit_log(
    path: &Path,
    key: &AuditChainKey,
    expected: Option<&ChainHead>,
) -> Result<ChainHead, VerifyError> {
    let unreadable = |e: std::io::Error| VerifyError {
        line: 0,
        problem: VerifyProblem::Unreadable { kind: e.kind() },
    };
    let file = open_regular(path, false, false).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let scan = scan(
        BufReader::new(file.take(len)),
        key,
        expected,
        &mut ChainWatch::default(),
        None,
    )?;
    if scan.torn {
        return Err(VerifyError {
            line: scan.head.seq + 1,
            problem: VerifyProblem::TornLine,
        });
    }
    Ok(scan.head)
}

/// [`verify_audit_log`] over the log's bytes.
///
/// # Errors
/// As [`verify_audit_log`].
pub fn verify_audit_bytes(
    bytes: &[u8],
    key: &AuditChainKey,
    expected: Option<&ChainHead>,
) -> Result<ChainHead, VerifyError> {
    let scan = scan(bytes, key, expected, &mut ChainWatch::default(), None)?;
    if scan.torn {
        return Err(VerifyError {
            line: scan.head.seq + 1,
            problem: VerifyProblem::TornLine,
        });
    }
    Ok(scan.head)
}

/// What a scan of a log found.
pub(super) struct Scan {
    pub(super) head: ChainHead,
    /// Bytes up to the end of the last complete line.
    pub(super) complete_len: u64,
    /// Whether bytes follow the last complete line (a torn append).
    pub(super) torn: bool,
}

/// Reads `reader` line by line, checking each line's MAC, sequence and
/// link, and noting the chain at the counts `watch` asks for. A final line
/// without a newline is reported as torn, not checked. With `records`,
/// each checked line's record is appended to it: exactly the records the
/// scan verified, from the bytes it verified.
pub(super) fn scan(
    mut reader: impl BufRead,
    key: &AuditChainKey,
    expected: Option<&ChainHead>,
    watch: &mut ChainWatch,
    mut records: Option<&mut Vec<AuditRecord>>,
) -> Result<Scan, VerifyError> {
    let mut head = ChainHead::genesis();
    watch.observe(0, &[0; MAC_HEX_LEN / 2]);
    let mut complete_len = 0u64;
    let mut buf = Vec::new();
    let torn = loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| VerifyError {
                line: head.seq + 1,
                problem: VerifyProblem::Unreadable { kind: e.kind() },
            })?;
        if read == 0 {
            break false;
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            if buf.len() > MAX_LINE_LEN {
                return Err(VerifyError {
                    line: head.seq + 1,
                    problem: VerifyProblem::Malformed,
                });
            }
            break true;
        };
        let record;
        (head, record) = check_line(line, &head, key)?;
        if let Some(records) = records.as_deref_mut() {
            records.push(record);
        }
        complete_len += buf.len() as u64;
        if let Some(bytes) = unhex(&head.mac).and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            watch.observe(head.seq, &bytes);
        }
        if let Some(expected) = expected.filter(|e| e.seq == head.seq)
            && expected.mac != head.mac
        {
            return Err(VerifyError {
                line: head.seq,
                problem: VerifyProblem::HeadMismatch { seq: head.seq },
            });
        }
    };
    if let Some(expected) = expected {
        if expected.seq > head.seq {
            return Err(VerifyError {
                line: head.seq,
                problem: VerifyProblem::Truncated {
                    expected: expected.seq,
                    found: head.seq,
                },
            });
        }
        if expected.seq == 0 && expected.mac != ChainHead::genesis().mac {
            return Err(VerifyError {
                line: 0,
                problem: VerifyProblem::HeadMismatch { seq: 0 },
            });
        }
    }
    Ok(Scan {
        head,
        complete_len,
        torn,
    })
}

/// Checks one line (without its newline) against the head before it and
/// returns the head after it, and the line's record.
fn check_line(
    line: &[u8],
    head: &ChainHead,
    key: &AuditChainKey,
) -> Result<(ChainHead, AuditRecord), VerifyError> {
    let number = head.seq + 1;
    let fail = |problem| VerifyError {
        line: number,
        problem,
    };
    let (mac_hex, entry) = split_line(line).ok_or_else(|| fail(VerifyProblem::Malformed))?;
    let tag = unhex(mac_hex).ok_or_else(|| fail(VerifyProblem::Malformed))?;
    key.mac(entry)
        .verify_slice(&tag)
        .map_err(|_| fail(VerifyProblem::BadMac))?;
    let parsed: EntryIn =
        serde_json::from_slice(entry).map_err(|_| fail(VerifyProblem::Malformed))?;
    if parsed.seq != number {
        return Err(fail(VerifyProblem::OutOfSequence {
            expected: number,
            found: parsed.seq,
        }));
    }
    if parsed.prev != head.mac {
        return Err(fail(VerifyProblem::BrokenLink));
    }
    Ok((
        ChainHead {
            seq: parsed.seq,
            mac: mac_hex.to_owned(),
        },
        parsed.record,
    ))
}

/// Splits a line into its MAC hex and the exact entry bytes.
fn split_line(line: &[u8]) -> Option<(&str, &[u8])> {
    let rest = line.strip_prefix(LINE_PREFIX)?;
    let (mac, rest) = rest.split_at_checked(MAC_HEX_LEN)?;
    let entry = rest.strip_prefix(LINE_MIDDLE)?.strip_suffix(b"}")?;
    Some((std::str::from_utf8(mac).ok()?, entry))
}

/// The audit log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log line {line}: {problem}")]
pub struct VerifyError {
    /// 1-based line number of the first bad line (the last good one for
    /// truncation; 0 when the file could not be read).
    pub line: u64,
    /// What is wrong.
    pub problem: VerifyProblem,
}

/// What verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyProblem {
    /// The line is not a chained record.
    #[error("not a chained audit record")]
    Malformed,
    /// The MAC does not match: the record was edited or forged, or the key
    /// is wrong.
    #[error("the MAC does not match: the record was edited or forged, or the key is wrong")]
    BadMac,
    /// A record is missing, duplicated or moved.
    #[error(
        "expected record {expected}, found {found}: records were deleted, inserted or reordered"
    )]
    OutOfSequence {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The record does not link to the previous one.
    #[error("the record does not link to the previous one: the chain was spliced")]
    BrokenLink,
    /// The last line has no newline: a torn write, or a cut mid-line.
    #[error("the last line is incomplete")]
    TornLine,
    /// Fewer records than the known head says.
    #[error("the log ends at record {found} but record {expected} was written: it was truncated")]
    Truncated {
        /// The known head's sequence number.
        expected: u64,
        /// The last sequence number found.
        found: u64,
    },
    /// The record at the known head's sequence number has another MAC.
    #[error("record {seq} differs from the known head: the log was rewritten")]
    HeadMismatch {
        /// The sequence number.
        seq: u64,
    },
    /// The file could not be read (or is not a regular file).
    #[error("the log could not be read ({kind})")]
    Unreadable {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
    },
}
