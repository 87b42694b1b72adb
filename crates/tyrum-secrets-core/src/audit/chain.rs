//! The JSON-lines audit log with a keyed hash chain.
//!
//! Each line is `{"mac":"<hex>","entry":{"seq":N,"prev":"<hex>","record":{..}}}`.
//! `mac` is HMAC-SHA256 under the [`AuditChainKey`] of the exact bytes of
//! `entry`, which names its sequence number and the previous line's `mac`.
//! Editing a record breaks its MAC; reordering, inserting or deleting lines
//! breaks the sequence or the link; cutting lines off the end is detected
//! against the last known [`ChainHead`], kept somewhere the log's writer
//! cannot rewrite.

use std::fmt;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use hmac::Mac as _;
use serde::{Deserialize, Serialize};

use super::fingerprint::{KeyError, check_len, new_mac, random_key};
use super::{AuditError, AuditRecord, AuditSink, hex, unhex};
use crate::SecretBytes;
use crate::durable::{open_private, sync_parent_dir};

/// Domain separation for chain MACs.
const CHAIN_DOMAIN: &[u8] = b"tyrum-secrets audit chain v1\n";
const LINE_PREFIX: &[u8] = b"{\"mac\":\"";
const LINE_MIDDLE: &[u8] = b"\",\"entry\":";
/// Hex length of an HMAC-SHA256 tag.
const MAC_HEX_LEN: usize = 64;

/// The key of the audit hash chain. Whoever holds it can forge a log, so keep
/// it away from the machine's ordinary users, and apart from the
/// [`FingerprintKey`](super::FingerprintKey).
pub struct AuditChainKey(SecretBytes);

impl AuditChainKey {
    /// Wraps key bytes.
    ///
    /// # Errors
    /// [`KeyError::TooShort`] under 32 bytes.
    pub fn new(key: SecretBytes) -> Result<Self, KeyError> {
        check_len(&key)?;
        Ok(Self(key))
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`KeyError::Randomness`] when the OS cannot supply randomness.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self(random_key()?))
    }

    fn mac(&self, entry: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = new_mac(&self.0);
        mac.update(CHAIN_DOMAIN);
        mac.update(entry);
        mac
    }
}

impl fmt::Debug for AuditChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditChainKey([REDACTED])")
    }
}

/// The end of a chain: the last sequence number and its MAC. Store it
/// outside the log (another host, the gateway's database) and pass it to
/// [`verify_audit_log`] to detect records cut off the end.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChainHead {
    /// Sequence number of the last record; 0 for an empty log.
    pub seq: u64,
    /// Hex MAC of the last record; 64 zeros for an empty log.
    pub mac: String,
}

impl ChainHead {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            mac: "0".repeat(MAC_HEX_LEN),
        }
    }
}

#[derive(Serialize)]
struct EntryOut<'a> {
    seq: u64,
    prev: &'a str,
    record: &'a AuditRecord,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn {
    seq: u64,
    prev: String,
    #[allow(dead_code, reason = "parsed to check the record is well-formed")]
    record: AuditRecord,
}

/// Appends records to a JSON-lines file, chained with HMAC-SHA256.
///
/// - Each record is written and fsynced before [`record`](AuditSink::record)
///   returns, so the resolve proceeds only once it is durable.
/// - The file is created with mode 0600 and its directory fsynced.
/// - The sink holds an exclusive lock on the file while open: one writer.
/// - Reopening continues the chain after verifying what is there; a log
///   that does not verify is refused ([`AuditError::Tampered`]). A torn
///   last line (a crash mid-write, never acknowledged) is cut off.
/// - A write that fails midway is rolled back to the previous length; if
///   even that fails the sink refuses all further records
///   ([`AuditError::Broken`]).
///
/// ```
/// use tyrum_secrets_core::{AuditChainKey, JsonLinesAuditSink, verify_audit_log};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// let sink = JsonLinesAuditSink::open(&path, AuditChainKey::generate()?)?;
/// assert_eq!(sink.head().seq, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonLinesAuditSink {
    path: PathBuf,
    key: AuditChainKey,
    state: Mutex<State>,
}

struct State {
    file: File,
    len: u64,
    head: ChainHead,
    broken: bool,
}

impl JsonLinesAuditSink {
    /// Opens or creates the log at `path`.
    ///
    /// # Errors
    /// [`AuditError::Io`], [`AuditError::Locked`] when another writer holds
    /// the lock, or [`AuditError::Tampered`] when the existing log does not
    /// verify under `key`.
    pub fn open(path: impl AsRef<Path>, key: AuditChainKey) -> Result<Self, AuditError> {
        let path = path.as_ref().to_owned();
        let io = |context: &'static str| {
            let path = path.clone();
            move |source| AuditError::Io {
                path,
                context,
                source,
            }
        };
        let existed = path.exists();
        let mut file = open_private(&path, false).map_err(io("cannot open"))?;
        if !existed {
            sync_parent_dir(&path).map_err(io("cannot sync the directory"))?;
        }
        file.try_lock()
            .map_err(|_| AuditError::Locked { path: path.clone() })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io("cannot read"))?;
        if bytes.last().is_some_and(|b| *b != b'\n') {
            // A crash mid-append leaves a partial line that was never
            // acknowledged (the fsync had not returned): drop it.
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(keep);
            file.set_len(keep as u64)
                .and_then(|()| file.sync_all())
                .map_err(io("cannot cut a torn last line"))?;
        }
        let head =
            verify_audit_bytes(&bytes, &key, None).map_err(|source| AuditError::Tampered {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            state: Mutex::new(State {
                file,
                len: bytes.len() as u64,
                head,
                broken: false,
            }),
            path,
            key,
        })
    }

    /// The head after the last record written (or found on open).
    pub fn head(&self) -> ChainHead {
        self.lock().head.clone()
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State changes after a successful write are two field stores; a
        // panic cannot leave them half done in a way that matters, and a
        // failed write marks the sink broken explicitly.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AuditSink for JsonLinesAuditSink {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let mut state = self.lock();
        if state.broken {
            return Err(AuditError::Broken {
                path: self.path.clone(),
            });
        }
        let seq = state.head.seq + 1;
        let entry = serde_json::to_vec(&EntryOut {
            seq,
            prev: &state.head.mac,
            record: &record,
        })
        .map_err(|_| AuditError::rejected("the audit record could not be serialized"))?;
        let mac = hex(&self.key.mac(&entry).finalize().into_bytes());
        let mut line = Vec::with_capacity(
            LINE_PREFIX.len() + MAC_HEX_LEN + LINE_MIDDLE.len() + entry.len() + 2,
        );
        line.extend_from_slice(LINE_PREFIX);
        line.extend_from_slice(mac.as_bytes());
        line.extend_from_slice(LINE_MIDDLE);
        line.extend_from_slice(&entry);
        line.extend_from_slice(b"}\n");

        let start = state.len;
        let written = (|| {
            let mut file = &state.file;
            file.seek(SeekFrom::Start(start))?;
            file.write_all(&line)?;
            file.sync_data()
        })();
        match written {
            Ok(()) => {
                state.len = start + line.len() as u64;
                state.head = ChainHead { seq, mac };
                Ok(())
            }
            Err(source) => {
                let rolled_back = state
                    .file
                    .set_len(start)
                    .and_then(|()| state.file.sync_data());
                if rolled_back.is_err() {
                    state.broken = true;
                }
                Err(AuditError::Io {
                    path: self.path.clone(),
                    context: "cannot append and sync a record",
                    source,
                })
            }
        }
    }
}

impl fmt::Debug for JsonLinesAuditSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesAuditSink")
            .field("path", &self.path)
            .field("head", &self.lock().head)
            .finish_non_exhaustive()
    }
}

/// Verifies the log at `path` under `key`, returning its head.
///
/// With `expected` (a head recorded earlier), also detects records cut off
/// the end and a rewritten history.
///
/// # Errors
/// [`VerifyError`] naming the first bad line and what is wrong with it.
pub fn verify_audit_log(
    path: &Path,
    key: &AuditChainKey,
    expected: Option<&ChainHead>,
) -> Result<ChainHead, VerifyError> {
    let bytes = std::fs::read(path).map_err(|e| VerifyError {
        line: 0,
        problem: VerifyProblem::Unreadable { kind: e.kind() },
    })?;
    verify_audit_bytes(&bytes, key, expected)
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
    let mut head = ChainHead::genesis();
    let lines = match bytes.strip_suffix(b"\n") {
        Some(body) => body.split(|b| *b == b'\n').collect::<Vec<_>>(),
        None if bytes.is_empty() => Vec::new(),
        None => {
            let line = bytes.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            return Err(VerifyError {
                line,
                problem: VerifyProblem::TornLine,
            });
        }
    };
    for (index, line) in lines.iter().enumerate() {
        let number = index as u64 + 1;
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
        if parsed.seq != head.seq + 1 {
            return Err(fail(VerifyProblem::OutOfSequence {
                expected: head.seq + 1,
                found: parsed.seq,
            }));
        }
        if parsed.prev != head.mac {
            return Err(fail(VerifyProblem::BrokenLink));
        }
        head = ChainHead {
            seq: parsed.seq,
            mac: mac_hex.to_owned(),
        };
        if let Some(expected) = expected.filter(|e| e.seq == head.seq)
            && expected.mac != head.mac
        {
            return Err(fail(VerifyProblem::HeadMismatch { seq: head.seq }));
        }
    }
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
    Ok(head)
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
    /// The file could not be read.
    #[error("the log could not be read ({kind})")]
    Unreadable {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
    },
}

#[cfg(test)]
mod tests;
