//! Checking a store against its anchor on every full load (FORMAT.md,
//! "Rollback anchor").
//!
//! The anchor is read *before* the file. Writers advance it only after
//! their append or rename is durable, so a file read after its anchor is
//! never legitimately behind it. A reader racing a writer's rewrite can
//! still see an anchor from before the rewrite and a file from after it;
//! such a load is retried with a fresh anchor, and only a refusal that
//! persists is reported.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use tyrum_secrets_core::anchor::{Anchor, AnchorError, ChainPosition, SealedAnchor};

use super::anchor_error;
use super::files::{Identity, read_whole};
use super::load::{Loaded, load_bytes};
use crate::error::FileError;
use crate::format::Header;
use crate::key::{KdfLimits, KeySource, StoreKey};

/// What the anchor says about a loaded store.
pub(crate) enum Verdict {
    /// No anchor is configured, or it accepts the store.
    Accepted,
    /// The anchor refuses the store.
    Refused(AnchorError),
    /// An anchor is configured, but the store is in format 1 (nothing to
    /// check) and the anchor claims no file.
    NeedsUpgrade,
}

/// A store file read and parsed, and the anchor's verdict on it.
pub(crate) struct Opened {
    pub(crate) file: File,
    pub(crate) identity: Identity,
    pub(crate) loaded: Loaded,
    /// Bytes read (more than `loaded.end` when the file ends torn).
    pub(crate) len: u64,
    pub(crate) verdict: Verdict,
}

/// How many times a load is tried when the anchor refuses it in a way a
/// concurrent rewrite could explain.
const ATTEMPTS: u32 = 3;

/// Loads the store and insists that the anchor accepts it.
pub(crate) fn load_checked(
    path: &Path,
    source: &KeySource,
    limits: &KdfLimits,
    known: Option<(&Header, &StoreKey)>,
    anchor: Option<&Anchor>,
) -> Result<Opened, FileError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let opened = load_once(path, source, limits, known, anchor)?;
        match opened.verdict {
            Verdict::Accepted => return Ok(opened),
            Verdict::NeedsUpgrade => {
                return Err(FileError::UpgradeRequired {
                    path: path.to_owned(),
                });
            }
            Verdict::Refused(refusal) => {
                let racy = matches!(
                    refusal,
                    AnchorError::Diverged { .. }
                        | AnchorError::Missing { .. }
                        | AnchorError::Unauthenticated { .. }
                );
                if !racy || attempt >= ATTEMPTS {
                    return Err(anchor_error(path, refusal));
                }
                std::thread::sleep(Duration::from_millis(5 * u64::from(attempt)));
            }
        }
    }
}

/// Reads the anchor, then the file, once, and judges the file.
pub(crate) fn load_once(
    path: &Path,
    source: &KeySource,
    limits: &KdfLimits,
    known: Option<(&Header, &StoreKey)>,
    anchor: Option<&Anchor>,
) -> Result<Opened, FileError> {
    // An anchor that cannot be read is an error; one that reads but is
    // not an anchor is a refusal the recovery call may override.
    let sealed = match anchor.map(Anchor::load) {
        None => Ok(None),
        Some(Ok(sealed)) => Ok(sealed),
        Some(Err(e)) if e.is_acceptable() => Err(e),
        Some(Err(e)) => return Err(anchor_error(path, e)),
    };
    let (file, identity, bytes) = read_whole(path)?;
    let hints = sealed.as_ref().ok().and_then(Option::as_ref);
    let loaded = load_bytes(&bytes, path, source, limits, known, hints)?;
    let verdict = match (anchor, sealed) {
        (None, _) => Verdict::Accepted,
        (Some(_), Err(refusal)) => Verdict::Refused(refusal),
        (Some(anchor), Ok(sealed)) => judge(anchor, sealed.as_ref(), &loaded),
    };
    Ok(Opened {
        file,
        identity,
        loaded,
        len: bytes.len() as u64,
        verdict,
    })
}

/// The anchor's verdict on a loaded store (`sealed` is what the anchor
/// held when it was read, before the file).
pub(crate) fn judge(anchor: &Anchor, sealed: Option<&SealedAnchor>, loaded: &Loaded) -> Verdict {
    let (Some(chain), Some(observed)) = (&loaded.chain, &loaded.observed) else {
        // Format 1: no chain to check. A store the anchor knows was format
        // 2 once; a format-1 file in its place is an old copy.
        return match sealed.and_then(|s| s.claimed().next().filter(|_| s.claims_a_file())) {
            Some(claimed) => Verdict::Refused(AnchorError::Diverged {
                location: anchor.location(),
                anchored: claimed.position(),
                found: ChainPosition {
                    generation: 0,
                    count: loaded.records,
                },
            }),
            None => Verdict::NeedsUpgrade,
        };
    };
    let Some(sealed) = sealed else {
        // Nothing anchored yet: only a store just created (announced, then
        // renamed, then the anchor advanced) can be in this state by
        // accident, and only before its first record.
        if chain.head.count == 0 && chain.head.generation == 1 {
            return Verdict::Accepted;
        }
        return Verdict::Refused(AnchorError::Missing {
            location: anchor.location(),
            count: chain.head.count,
        });
    };
    let seal = chain.keys.anchor_seal(&loaded.header.store_id);
    match sealed
        .open(&seal)
        .and_then(|anchored| anchored.check(observed))
    {
        Ok(_) => Verdict::Accepted,
        Err(refusal) => Verdict::Refused(refusal),
    }
}

/// Refuses to create a store where the anchor says one exists.
pub(crate) fn refuse_if_anchored_file_vanished(
    path: &Path,
    anchor: Option<&Anchor>,
) -> Result<(), FileError> {
    let Some(anchor) = anchor else {
        return Ok(());
    };
    let sealed = anchor.load().map_err(|e| anchor_error(path, e))?;
    if sealed.is_some_and(|s| s.claims_a_file()) {
        return Err(anchor_error(
            path,
            AnchorError::FileMissing {
                location: anchor.location(),
            },
        ));
    }
    Ok(())
}
