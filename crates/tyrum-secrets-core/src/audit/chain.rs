//! The JSON-lines audit log with a keyed hash chain.
//!
//! Each line is `{"mac":"<hex>","entry":{"seq":N,"prev":"<hex>","record":{..}}}`.
//! `mac` is HMAC-SHA256 under the [`AuditChainKey`] of the exact bytes of
//! `entry`, which names its sequence number and the previous line's `mac`.
//! Editing a record breaks its MAC; reordering, inserting or deleting lines
//! breaks the sequence or the link; cutting lines off the end (or rolling
//! the log back to an older copy) is detected against the last known
//! [`ChainHead`], kept somewhere the log's writer cannot rewrite: an
//! [`Anchor`] the sink advances after every record
//! ([`JsonLinesAuditSink::open_anchored`]).

mod verify;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use hmac::Mac as _;
use serde::{Deserialize, Serialize};

pub use verify::{VerifyError, VerifyProblem, verify_audit_bytes, verify_audit_log};

use super::fingerprint::{KeyError, check_len, new_mac, random_key};
use super::{AuditError, AuditRecord, AuditSink, hex, unhex};
use crate::SecretBytes;
use crate::anchor::{
    Anchor, AnchorError, AnchorHead, AnchorKey, AnchorSeal, ChainWatch, SealedAnchor, Standing,
};
use crate::durable::{open_regular, sync_parent_dir};
use crate::request::{Purpose, Requester};

/// Domain separation for chain MACs.
const CHAIN_DOMAIN: &[u8] = b"tyrum-secrets audit chain v1\n";
const LINE_PREFIX: &[u8] = b"{\"mac\":\"";
const LINE_MIDDLE: &[u8] = b"\",\"entry\":";
/// Hex length of an HMAC-SHA256 tag.
const MAC_HEX_LEN: usize = 64;
/// What an audit log's anchor tags name as their file.
const ANCHOR_SUBJECT: &[u8] = b"tyrum-secrets audit log";

/// The key of the audit hash chain. Whoever holds it can forge a log, so keep
/// it away from the machine's ordinary users, and apart from the
/// [`FingerprintKey`](super::FingerprintKey). Cloneable (one key for the
/// sink and for `verify`); wiped on drop; `Debug` never shows it.
#[derive(Clone)]
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

    /// The seal of this log's anchor: the same key, domain-separated by the
    /// anchor's own MAC domain.
    fn anchor_seal(&self) -> Result<AnchorSeal, AnchorError> {
        Ok(AnchorSeal::new(
            AnchorKey::new(self.0.clone())?,
            ANCHOR_SUBJECT.to_vec(),
        ))
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

    /// The head as an anchor keeps it (generation 0: a log is never
    /// rewritten).
    fn anchor_head(&self) -> AnchorHead {
        let mut chain = [0u8; MAC_HEX_LEN / 2];
        if let Some(bytes) = unhex(&self.mac).filter(|b| b.len() == chain.len()) {
            chain.copy_from_slice(&bytes);
        }
        AnchorHead::new(0, self.seq, chain)
    }
}

#[derive(Serialize)]
struct EntryOut<'a> {
    seq: u64,
    prev: &'a str,
    record: &'a AuditRecord,
}

/// Appends records to a JSON-lines file, chained with HMAC-SHA256.
///
/// - Each record is written and fsynced before [`record`](AuditSink::record)
///   returns, so the resolve proceeds only once it is durable.
/// - The file is created with mode 0600 and its directory fsynced. Only a
///   regular file is opened: a FIFO or a device at the path is refused.
/// - The sink holds an exclusive lock on the file while open: one writer.
/// - Reopening continues the chain after verifying what is there, one line
///   at a time; a log that does not verify is refused
///   ([`AuditError::Tampered`]). A torn last line (a crash mid-write, never
///   acknowledged) is cut off.
/// - Anchored ([`open_anchored`](Self::open_anchored)), the sink advances
///   the anchor after each record, and reopening refuses a log cut short or
///   rolled back to an older copy ([`AuditError::Anchor`]). A crash
///   between a record and its anchor update leaves the log one record
///   ahead, which is accepted (see [`crate::anchor`]).
/// - A write that fails midway is rolled back to the previous length; if
///   even that fails the sink refuses all further records
///   ([`AuditError::Broken`]).
///
/// ```
/// use tyrum_secrets_core::{Anchor, AuditChainKey, JsonLinesAuditSink};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// let sink = JsonLinesAuditSink::open_anchored(&path, AuditChainKey::generate()?, Anchor::beside(&path))?;
/// assert_eq!(sink.head().seq, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonLinesAuditSink {
    path: PathBuf,
    key: AuditChainKey,
    anchor: Option<(Anchor, AnchorSeal)>,
    state: Mutex<State>,
}

struct State {
    file: File,
    len: u64,
    head: ChainHead,
    broken: bool,
}

impl JsonLinesAuditSink {
    /// Opens or creates the log at `path`, without an anchor: records cut
    /// off the end go unnoticed unless a head kept elsewhere is passed to
    /// [`verify_audit_log`]. Prefer [`open_anchored`](Self::open_anchored).
    ///
    /// # Errors
    /// [`AuditError::Io`] (also for a path that is not a regular file),
    /// [`AuditError::Locked`] when another writer holds the lock, or
    /// [`AuditError::Tampered`] when the existing log does not verify under
    /// `key`.
    pub fn open(path: impl AsRef<Path>, key: AuditChainKey) -> Result<Self, AuditError> {
        Self::open_inner(path.as_ref(), key, None, None)
    }

    /// Opens or creates the log at `path`, checking it against `anchor`
    /// and advancing the anchor after every record.
    ///
    /// A new (empty) log starts its anchor. An existing log must continue
    /// the head its anchor records; it may be ahead of it (a crash after a
    /// record, before its anchor update), never behind it.
    ///
    /// # Errors
    /// As [`open`](Self::open), and [`AuditError::Anchor`] when the anchor
    /// refuses the log (cut short, rolled back, replaced, or no anchor for
    /// a log that has records) or cannot be read or written.
    pub fn open_anchored(
        path: impl AsRef<Path>,
        key: AuditChainKey,
        anchor: Anchor,
    ) -> Result<Self, AuditError> {
        Self::open_inner(path.as_ref(), key, Some(anchor), None)
    }

    /// Opens an anchored log that its anchor refuses, knowingly: an
    /// operator accepts the log as it is (a restored backup, or a log
    /// anchored for the first time). Appends an [`Action::AcceptRollback`]
    /// record naming `by` and `reason` and what was accepted, then moves
    /// the anchor to the log's head.
    ///
    /// The log's chain must still verify: this accepts an older or
    /// unanchored log, never a tampered one. When the anchor accepts the
    /// log anyway, this is [`open_anchored`](Self::open_anchored) and writes
    /// nothing.
    ///
    /// [`Action::AcceptRollback`]: super::Action::AcceptRollback
    ///
    /// # Errors
    /// As [`open_anchored`](Self::open_anchored), except the refusals the
    /// call exists to override.
    pub fn accept_rollback(
        path: impl AsRef<Path>,
        key: AuditChainKey,
        anchor: Anchor,
        by: &Requester,
        reason: &Purpose,
    ) -> Result<Self, AuditError> {
        Self::open_inner(path.as_ref(), key, Some(anchor), Some((by, reason)))
    }

    fn open_inner(
        path: &Path,
        key: AuditChainKey,
        anchor: Option<Anchor>,
        accept: Option<(&Requester, &Purpose)>,
    ) -> Result<Self, AuditError> {
        let path = path.to_owned();
        let io = |context: &'static str| {
            let path = path.clone();
            move |source: io::Error| {
                let context = if source.kind() == io::ErrorKind::InvalidInput {
                    "is not a regular file (a FIFO or device?); point the audit log at a regular file"
                } else {
                    context
                };
                AuditError::Io {
                    path,
                    context,
                    source,
                }
            }
        };
        let existed = path.exists();
        let file = open_regular(&path, true, true).map_err(io("cannot open"))?;
        if !existed {
            sync_parent_dir(&path).map_err(io("cannot sync the directory"))?;
        }
        file.try_lock()
            .map_err(|_| AuditError::Locked { path: path.clone() })?;
        let anchored = |source| AuditError::Anchor {
            path: path.clone(),
            source,
        };
        let anchor = match anchor {
            Some(anchor) => {
                let seal = key.anchor_seal().map_err(anchored)?;
                Some((anchor, seal))
            }
            None => None,
        };
        // An anchor that cannot be read is an error; one that reads but is
        // not an anchor is a refusal `accept_rollback` may override.
        let sealed = match anchor.as_ref().map(|(anchor, _)| anchor.load()) {
            None => Ok(None),
            Some(Ok(sealed)) => Ok(sealed),
            Some(Err(e)) if e.is_acceptable() => Err(e),
            Some(Err(e)) => return Err(anchored(e)),
        };
        let mut watch = ChainWatch::new(sealed.as_ref().ok().and_then(Option::as_ref), 0);
        let len = file.metadata().map_err(io("cannot read"))?.len();
        let scan = verify::scan(
            BufReader::new((&file).take(len)),
            &key,
            None,
            &mut watch,
            None,
        )
        .map_err(|source| AuditError::Tampered {
            path: path.clone(),
            source,
        })?;
        if scan.torn {
            // A crash mid-append leaves a partial line that was never
            // acknowledged (the fsync had not returned): drop it.
            file.set_len(scan.complete_len)
                .and_then(|()| file.sync_all())
                .map_err(io("cannot cut a torn last line"))?;
        }
        let head = scan.head;
        let refusal = match &anchor {
            None => None,
            Some((anchor, seal)) => {
                let found = head.anchor_head();
                match standing(anchor, seal, sealed, &head, watch) {
                    Ok(Standing::AtHead) => None,
                    Ok(_) => {
                        anchor.advance(seal, &found).map_err(anchored)?;
                        None
                    }
                    Err(refusal) if accept.is_some() && refusal.is_acceptable() => Some(refusal),
                    Err(refusal) => return Err(anchored(refusal)),
                }
            }
        };
        let sink = Self {
            state: Mutex::new(State {
                file,
                len: scan.complete_len,
                head: head.clone(),
                broken: false,
            }),
            path,
            key,
            anchor,
        };
        if let (Some(refusal), Some((by, reason))) = (refusal, accept) {
            let found = head.anchor_head();
            let marker = format!("audit-log-{}", hex(&found.chain[..8]));
            sink.record(AuditRecord::accepted_rollback(
                &marker,
                by,
                reason,
                &refusal,
                found.position(),
            )?)?;
        }
        Ok(sink)
    }

    /// Verifies the anchored log at `path` against `anchor` without
    /// opening it for writing and without changing anything: for checking a
    /// log another sink (in this process or another) holds open. The
    /// anchor is read before the log, so a log growing meanwhile is ahead
    /// of it, never behind; a torn last line (an append in progress) is
    /// left out. Returns the log's head.
    ///
    /// # Errors
    /// [`AuditError::Io`] (also for a path that is not a regular file),
    /// [`AuditError::Tampered`] when the log does not verify under `key`,
    /// [`AuditError::Anchor`] when the anchor refuses the log or cannot be
    /// read.
    pub fn verify_anchored(
        path: impl AsRef<Path>,
        key: &AuditChainKey,
        anchor: &Anchor,
    ) -> Result<ChainHead, AuditError> {
        Self::check_anchored(path.as_ref(), key, anchor, None)
    }

    /// [`verify_anchored`](Self::verify_anchored), returning the log's
    /// records as well: exactly the ones verified, parsed from the bytes
    /// that were verified (the file is read once), so a log replaced or
    /// appended to between a verification and a read cannot put other
    /// records in the answer.
    ///
    /// # Errors
    /// As [`verify_anchored`](Self::verify_anchored).
    pub fn read_anchored(
        path: impl AsRef<Path>,
        key: &AuditChainKey,
        anchor: &Anchor,
    ) -> Result<(ChainHead, Vec<AuditRecord>), AuditError> {
        let mut records = Vec::new();
        let head = Self::check_anchored(path.as_ref(), key, anchor, Some(&mut records))?;
        Ok((head, records))
    }

    fn check_anchored(
        path: &Path,
        key: &AuditChainKey,
        anchor: &Anchor,
        records: Option<&mut Vec<AuditRecord>>,
    ) -> Result<ChainHead, AuditError> {
        let anchored = |source| AuditError::Anchor {
            path: path.to_owned(),
            source,
        };
        let seal = key.anchor_seal().map_err(anchored)?;
        let sealed = match anchor.load() {
            Ok(sealed) => Ok(sealed),
            Err(e) if e.is_acceptable() => Err(e),
            Err(e) => return Err(anchored(e)),
        };
        let io = |source| AuditError::Io {
            path: path.to_owned(),
            context: "cannot read",
            source,
        };
        let file = open_regular(path, false, false).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut watch = ChainWatch::new(sealed.as_ref().ok().and_then(Option::as_ref), 0);
        let scan = verify::scan(
            BufReader::new((&file).take(len)),
            key,
            None,
            &mut watch,
            records,
        )
        .map_err(|source| AuditError::Tampered {
            path: path.to_owned(),
            source,
        })?;
        standing(anchor, &seal, sealed, &scan.head, watch).map_err(anchored)?;
        Ok(scan.head)
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

/// How a log whose head is `head` stands against what its anchor held
/// (`sealed`, or the refusal met reading it); `watch` noted the chain at
/// the counts the anchor claims.
fn standing(
    anchor: &Anchor,
    seal: &AnchorSeal,
    sealed: Result<Option<SealedAnchor>, AnchorError>,
    head: &ChainHead,
    watch: ChainWatch,
) -> Result<Standing, AnchorError> {
    match sealed? {
        None if head.seq == 0 => Ok(Standing::Behind),
        None => Err(AnchorError::Missing {
            location: anchor.location(),
            count: head.seq,
        }),
        Some(sealed) => sealed
            .open(seal)
            .and_then(|anchored| anchored.check(&watch.finish(head.anchor_head()))),
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
        if let Err(source) = written {
            let rolled_back = state
                .file
                .set_len(start)
                .and_then(|()| state.file.sync_data());
            if rolled_back.is_err() {
                state.broken = true;
            }
            return Err(AuditError::Io {
                path: self.path.clone(),
                context: "cannot append and sync a record",
                source,
            });
        }
        state.len = start + line.len() as u64;
        state.head = ChainHead { seq, mac };
        // The record is durable: advance the anchor after it (the crash
        // rule). If this fails the record stays and the anchor is one
        // record behind, which the next record or reopen repairs; the
        // caller still learns that its record is not anchored.
        if let Some((anchor, seal)) = &self.anchor {
            anchor
                .advance(seal, &state.head.anchor_head())
                .map_err(|source| AuditError::Anchor {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

impl fmt::Debug for JsonLinesAuditSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("JsonLinesAuditSink");
        out.field("path", &self.path);
        // try_lock: formatting must never wait for, or deadlock with, a
        // record being written.
        if let Ok(state) = self.state.try_lock() {
            out.field("head", &state.head);
        }
        out.field(
            "anchor",
            &self.anchor.as_ref().map(|(anchor, _)| anchor.location()),
        );
        out.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
