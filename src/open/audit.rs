//! The audit side of an open: the audit keys, one chained log per
//! concurrently open process ("slots"), each anchored, and the optional copy
//! of every line to standard output.
//!
//! Slots: the logs are `<audit dir>/<n>.jsonl`. An open takes the first
//! slot no other open holds (the JSON-lines sink holds an exclusive lock on
//! its file), so any number of processes and opens share one state
//! directory, and a restarted process continues a log rather than starting
//! a new file. Each log's head is kept in its anchor (core's
//! `JsonLinesAuditSink::open_anchored`), advanced after every record, in
//! the place the config names (`audit.anchor`, see `anchors.rs`); the log
//! an open takes is checked against it, and one cut short or rolled back is
//! refused. The others are checked by `Secrets::verify_audit`, and each by
//! the open that takes it next. Which logs exist is vouched for by the
//! index of the logs (`audit_index.rs`): a log deleted with its anchor, or
//! the whole directory, is refused.

use std::fs::{self, File};
use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tyrum_secrets_core::durable::open_private;
use tyrum_secrets_core::{
    AdminRequest, Anchor, AnchorError, AuditChainKey, AuditError, AuditRecord, AuditSink,
    ExposeSecret as _, FingerprintKey, JsonLinesAuditSink, Locator, ProviderError, SecretBytes,
    SecretProvider, VersionSelector,
};
use zeroize::Zeroizing;

use super::OpenError;
use super::anchors::{Place, Placed};
use super::state::Created;
use crate::config::AuditOutput;

/// Where the audit keys live in a provider.
pub(crate) const KEYS_LOCATOR: &str = "tyrum-secrets-internal/audit-keys";
/// Chain key and fingerprint key, 32 bytes each.
const KEYS_LEN: usize = 64;
/// More slots than this means opens leak; refuse rather than fill the disk.
const MAX_SLOTS: u32 = 4096;
/// How often, and how long apart, an open looks again for a free log before
/// starting a new one.
const SLOT_RETRIES: u32 = 4;
const SLOT_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

/// The chain key and the fingerprint key, as raw bytes (wiped on drop).
pub(crate) struct AuditKeys(Zeroizing<Vec<u8>>);

impl AuditKeys {
    pub(crate) fn chain(&self) -> Result<AuditChainKey, OpenError> {
        Ok(AuditChainKey::new(SecretBytes::from(
            self.0.get(..32).unwrap_or_default().to_vec(),
        ))?)
    }

    /// The chain key's bytes (it also seals the index of the logs).
    pub(crate) fn chain_bytes(&self) -> &[u8] {
        self.0.get(..32).unwrap_or_default()
    }

    pub(crate) fn fingerprint(&self) -> Result<FingerprintKey, OpenError> {
        Ok(FingerprintKey::new(SecretBytes::from(
            self.0.get(32..).unwrap_or_default().to_vec(),
        ))?)
    }
}

/// Where the audit keys are kept.
pub(crate) enum KeysHome<'a> {
    /// In the profile's own provider, at [`KEYS_LOCATOR`].
    Provider {
        provider: &'a dyn SecretProvider,
        what: String,
    },
    /// In a file (64 raw bytes or 128 hex digits).
    File { path: PathBuf, key: String },
}

/// Loads the audit keys; on a first open (`fresh`) makes them in memory if
/// missing. Returns whether they were made: then the caller keeps them with
/// [`persist_keys`] as the open's last step, so a failed open writes no
/// keys (into an existing store or keychain least of all).
pub(crate) fn load_keys(home: &KeysHome<'_>, fresh: bool) -> Result<(AuditKeys, bool), OpenError> {
    match home {
        KeysHome::Provider { provider, what } => {
            let locator = Locator::new(KEYS_LOCATOR).map_err(|e| OpenError::AuditKeys {
                reason: e.to_string(),
            })?;
            match provider.read(&locator, VersionSelector::Latest) {
                Ok(read) => Ok((from_bytes(read.value.expose_secret(), what)?, false)),
                Err(ProviderError::NotFound { .. }) if fresh => Ok((random_keys()?, true)),
                Err(ProviderError::NotFound { .. }) => Err(OpenError::AuditKeys {
                    reason: format!(
                        "they are missing from {what} although this state directory exists; the audit logs cannot be verified without them. Restore them from a backup of {what}"
                    ),
                }),
                Err(e) => Err(e.into()),
            }
        }
        KeysHome::File { path, key } => {
            let fail = |reason: String| OpenError::KeyFile {
                what: "audit key file",
                path: path.clone(),
                key: key.clone(),
                reason,
            };
            match super::keyfile::read_small(path, 256) {
                Ok(bytes) => Ok((from_bytes(&bytes, &path.display().to_string())?, false)),
                Err(e) if e.kind() == ErrorKind::NotFound && fresh => Ok((random_keys()?, true)),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(fail(
                    "is missing although this state directory exists; the audit logs cannot be verified without it. Restore it from a backup".to_owned(),
                )),
                Err(e) => Err(fail(format!("cannot be read ({e})"))),
            }
        }
    }
}

/// Keeps audit keys [`load_keys`] made, in `home`.
pub(crate) fn persist_keys(
    home: &KeysHome<'_>,
    keys: &AuditKeys,
    created: &mut Created,
) -> Result<(), OpenError> {
    match home {
        KeysHome::Provider { provider, .. } => {
            let locator = Locator::new(KEYS_LOCATOR).map_err(|e| OpenError::AuditKeys {
                reason: e.to_string(),
            })?;
            provider.write(&locator, &SecretBytes::from(keys.0.to_vec()))?;
            Ok(())
        }
        KeysHome::File { path, key } => {
            let fail = |reason: String| OpenError::KeyFile {
                what: "audit key file",
                path: path.clone(),
                key: key.clone(),
                reason,
            };
            created.track(&[path], || {
                let mut file = open_private(path, true)
                    .map_err(|e| fail(format!("cannot be created ({e})")))?;
                file.write_all(&keys.0)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| fail(format!("cannot be written ({e})")))
            })
        }
    }
}

fn from_bytes(bytes: &[u8], what: &str) -> Result<AuditKeys, OpenError> {
    // Raw keys are taken exactly as written: a random key may end in 0x0A,
    // so a newline is only dropped from the hex form.
    if bytes.len() == KEYS_LEN {
        return Ok(AuditKeys(Zeroizing::new(bytes.to_vec())));
    }
    let trimmed = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    if trimmed.len() == KEYS_LEN * 2
        && let Some(decoded) = unhex(trimmed)
    {
        return Ok(AuditKeys(decoded));
    }
    Err(OpenError::AuditKeys {
        reason: format!(
            "{what} does not hold audit keys ({} bytes; expected {KEYS_LEN} bytes or {} hex digits)",
            trimmed.len(),
            KEYS_LEN * 2
        ),
    })
}

fn unhex(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 2));
    for pair in text.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some(out)
}

fn random_keys() -> Result<AuditKeys, OpenError> {
    let mut bytes = Zeroizing::new(vec![0u8; KEYS_LEN]);
    getrandom::fill(&mut bytes).map_err(|e| OpenError::AuditKeys {
        reason: format!("the OS random number generator failed: {e}"),
    })?;
    Ok(AuditKeys(bytes))
}

/// The log this open writes to.
pub(crate) struct OpenedAudit {
    pub(crate) sink: Arc<dyn AuditSink>,
    pub(crate) log: PathBuf,
    /// Records already in the log when it was opened.
    pub(crate) records: u64,
    /// Where its anchor is.
    pub(crate) anchor: String,
    /// What the anchor refused and the operator accepted, if anything.
    pub(crate) accepted: Option<String>,
}

/// Picks a slot in `dir` no other open holds, and opens its log against
/// its anchor (in `place`): a log cut short or rolled back is refused,
/// unless `accept` names the operator who accepts it (audited in the log).
pub(crate) fn open_slot(
    dir: &Path,
    keys: &AuditKeys,
    place: &Place,
    output: AuditOutput,
    accept: Option<&AdminRequest>,
    created: &mut Created,
) -> Result<OpenedAudit, OpenError> {
    super::state::create_dir(dir, created)?;
    place.prepare(created)?;
    let slots = list_slots(dir)?;
    // A log held by an open that was just dropped is released by its audit
    // worker thread a moment later: wait briefly before starting a new log.
    for attempt in 0..=SLOT_RETRIES {
        if attempt > 0 {
            std::thread::sleep(SLOT_RETRY_PAUSE);
        }
        for n in &slots {
            let log = slot_path(dir, *n);
            let placed = place.anchor(&log, &slot_name(*n))?;
            match open_log(&log, keys, &placed.anchor, accept) {
                Ok((sink, accepted)) => {
                    return Ok(opened(sink, log, &placed, accepted, output));
                }
                Err(AuditError::Locked { .. }) => continue,
                Err(e) => return Err(audit_error(e, &placed.location)),
            }
        }
        if slots.is_empty() {
            break;
        }
    }
    let next = slots.last().map_or(0, |n| n + 1);
    if next >= MAX_SLOTS {
        return Err(OpenError::AuditKeys {
            reason: format!(
                "{} holds {MAX_SLOTS} audit logs, each held by an open process; close some",
                dir.display()
            ),
        });
    }
    let log = slot_path(dir, next);
    let placed = place.anchor(&log, &slot_name(next))?;
    let (sink, accepted) = placed.track(created, &[&log], || {
        open_log(&log, keys, &placed.anchor, accept).map_err(|e| audit_error(e, &placed.location))
    })?;
    Ok(opened(sink, log, &placed, accepted, output))
}

/// Opens one log against its anchor; with `accept`, a refusal the
/// operator may override is accepted (and recorded in the log).
fn open_log(
    log: &Path,
    keys: &AuditKeys,
    anchor: &Anchor,
    accept: Option<&AdminRequest>,
) -> Result<(JsonLinesAuditSink, Option<String>), AuditError> {
    let chain = || {
        keys.chain()
            .map_err(|e| AuditError::rejected(e.to_string()))
    };
    match (
        JsonLinesAuditSink::open_anchored(log, chain()?, anchor.clone()),
        accept,
    ) {
        (Err(AuditError::Anchor { source, .. }), Some(by)) if source.is_acceptable() => {
            let sink = JsonLinesAuditSink::accept_rollback(
                log,
                chain()?,
                anchor.clone(),
                by.actor(),
                by.reason(),
            )?;
            Ok((sink, Some(source.to_string())))
        }
        (other, _) => other.map(|sink| (sink, None)),
    }
}

fn opened(
    sink: JsonLinesAuditSink,
    log: PathBuf,
    anchor: &Placed,
    accepted: Option<String>,
    output: AuditOutput,
) -> OpenedAudit {
    let records = sink.head().seq;
    let sink: Arc<dyn AuditSink> = match output {
        AuditOutput::Stdout => {
            let len = fs::metadata(&log).map_or(0, |m| m.len());
            Arc::new(StdoutCopy {
                inner: sink,
                len: Mutex::new(len),
            })
        }
        _ => Arc::new(sink),
    };
    OpenedAudit {
        sink,
        log,
        records,
        anchor: anchor.location.clone(),
        accepted,
    }
}

/// An audit error met opening a log whose anchor is at `anchor`, as an
/// open error that says what to do.
pub(crate) fn audit_error(error: AuditError, anchor: &str) -> OpenError {
    match error {
        AuditError::Anchor {
            path,
            source: AnchorError::RolledBack {
                anchored, found, ..
            },
        } => OpenError::AuditCutShort {
            log: path,
            anchor: anchor.to_owned(),
            anchored: anchored.count,
            found: found.count,
        },
        AuditError::Anchor { path, source } if source.is_acceptable() => OpenError::AuditAnchor {
            log: path,
            anchor: anchor.to_owned(),
            source,
        },
        AuditError::Tampered { path, source } => OpenError::AuditTampered { log: path, source },
        other => OpenError::Audit(other),
    }
}

/// Makes slot `n`'s log again after its loss was accepted (`by`): an
/// empty log, or, where its anchor outlived it (an anchor kept elsewhere),
/// one whose first record says `by` accepted it; then anchored.
pub(crate) fn recreate_slot(
    dir: &Path,
    n: u32,
    keys: &AuditKeys,
    place: &Place,
    by: &AdminRequest,
    created: &mut Created,
) -> Result<(), OpenError> {
    let log = slot_path(dir, n);
    let placed = place.anchor(&log, &slot_name(n))?;
    placed.track(created, &[&log], || {
        JsonLinesAuditSink::accept_rollback(
            &log,
            keys.chain()?,
            placed.anchor.clone(),
            by.actor(),
            by.reason(),
        )
        .map(drop)
        .map_err(|e| audit_error(e, &placed.location))
    })
}

pub(super) fn slot_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n}.jsonl"))
}

/// The name of slot `n`'s anchor where it is not beside its log.
pub(super) fn slot_name(n: u32) -> String {
    format!("audit-{n}")
}

/// [`list_slots`], with no logs where the directory does not exist.
pub(crate) fn slots_if_any(dir: &Path) -> Result<Vec<u32>, OpenError> {
    if std::fs::symlink_metadata(dir).is_err() {
        return Ok(Vec::new());
    }
    list_slots(dir)
}

/// Slot numbers with a log, ascending.
pub(super) fn list_slots(dir: &Path) -> Result<Vec<u32>, OpenError> {
    let mut slots = Vec::new();
    let entries =
        fs::read_dir(dir).map_err(|e| OpenError::io("cannot list the audit directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| OpenError::io("cannot list the audit directory", dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
            continue;
        };
        if let Ok(n) = stem.parse::<u32>()
            && stem == n.to_string()
        {
            slots.push(n);
        }
    }
    slots.sort_unstable();
    Ok(slots)
}

/// The JSON-lines sink, each line also copied to standard output (for a
/// pod's log collector).
struct StdoutCopy {
    inner: JsonLinesAuditSink,
    /// The log's length after the last record copied.
    len: Mutex<u64>,
}

impl AuditSink for StdoutCopy {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let mut len = self.len.lock().unwrap_or_else(|p| p.into_inner());
        let recorded = self.inner.record(record);
        let path = self.inner.path();
        let io = |context: &'static str| {
            move |source| AuditError::Io {
                path: path.to_owned(),
                context,
                source,
            }
        };
        // Copy what reached the log, even when the anchor update after it
        // failed: the line is in the log.
        let new_len = fs::metadata(path).map_err(io("cannot stat the log"))?.len();
        if new_len > *len {
            let mut line = Vec::new();
            let mut file = File::open(path).map_err(io("cannot reread the record"))?;
            file.seek(SeekFrom::Start(*len))
                .and_then(|_| file.take(new_len - *len).read_to_end(&mut line))
                .map_err(io("cannot reread the record"))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&line)
                .and_then(|()| out.flush())
                .map_err(io("cannot copy the record to standard output"))?;
        }
        *len = new_len;
        recorded
    }
}

impl std::fmt::Debug for StdoutCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutCopy")
            .field("log", &self.inner.path())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_ending_in_a_newline_byte_are_kept_whole() {
        let mut raw = [0x5Au8; KEYS_LEN];
        raw[KEYS_LEN - 1] = b'\n';
        let keys = from_bytes(&raw, "test").unwrap();
        assert_eq!(&keys.0[..], &raw[..]);
    }

    #[test]
    fn hex_keys_may_end_in_a_newline() {
        let hex: String = (0..KEYS_LEN).map(|i| format!("{:02x}", i as u8)).collect();
        let expected: Vec<u8> = (0..KEYS_LEN).map(|i| i as u8).collect();
        for ending in ["", "\n", "\r\n"] {
            let keys = from_bytes(format!("{hex}{ending}").as_bytes(), "test").unwrap();
            assert_eq!(&keys.0[..], &expected[..]);
        }
        assert!(from_bytes(&[0u8; KEYS_LEN - 1], "test").is_err());
    }
}
