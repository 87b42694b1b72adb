//! [`FileAnchor`]: an anchor in a file of its own, updated with one
//! `fdatasync` per save.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{AnchorError, AnchorStore};
use crate::durable::{open_private, open_regular, read_bounded, sync_parent_dir};

const SLOT_MAGIC: &[u8; 8] = b"TYRSLOT1";
/// Each slot has a 4 KiB page of its own, so a torn write of one never
/// touches the other.
const SLOT_LEN: usize = 4096;
const SLOTS: usize = 2;
const FILE_LEN: usize = SLOT_LEN * SLOTS;
/// Magic, sequence number, payload length.
const SLOT_HEADER_LEN: usize = 8 + 8 + 4;
const DIGEST_LEN: usize = 32;
/// Largest payload a slot holds.
const MAX_PAYLOAD: usize = SLOT_LEN - SLOT_HEADER_LEN - DIGEST_LEN;

/// An anchor in a file: for an anchor next to the file it anchors
/// ([`FileAnchor::beside`]), or on another volume.
///
/// The file has two 4 KiB slots, each holding a sequence number, the
/// anchor's bytes and a SHA-256 checksum. A save overwrites the *older*
/// slot in place and `fdatasync`s it: one sync per save, where a write to a
/// temporary file, its fsync, a rename and a directory fsync would cost
/// three. A crash mid-save can tear only the slot being written, whose
/// checksum then fails, and a load falls back to the other slot: the
/// previous anchor, which the file it anchors is at most one write ahead of
/// (accepted by the crash rule). The file itself is created the atomic way
/// (temporary file, fsync, rename, directory fsync), mode 0600.
///
/// Only a regular file of exactly 8 KiB is read; a FIFO or device at the
/// path is refused.
#[derive(Clone, Debug)]
pub struct FileAnchor {
    path: PathBuf,
}

impl FileAnchor {
    /// The anchor file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The anchor file `<file>.anchor` beside `file`.
    pub fn beside(file: &Path) -> Self {
        let mut name = file
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".anchor");
        Self::new(file.with_file_name(name))
    }

    /// The anchor file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, context: &'static str) -> impl FnOnce(io::Error) -> AnchorError + '_ {
        move |source| AnchorError::Io {
            location: self.location(),
            context,
            source,
        }
    }

    fn read_slots(&self, write: bool) -> Result<Option<(File, Slots)>, AnchorError> {
        let file = match open_regular(&self.path, write, false) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("cannot open the anchor file")(e)),
        };
        let bytes =
            read_bounded(&file, FILE_LEN as u64).map_err(self.io("cannot read the anchor file"))?;
        if bytes.len() != FILE_LEN {
            return Err(AnchorError::Malformed {
                location: self.location(),
            });
        }
        let slots = [0, 1].map(|i| Slot::parse(&bytes[i * SLOT_LEN..(i + 1) * SLOT_LEN]));
        Ok(Some((file, slots)))
    }

    fn create(&self, payload: &[u8]) -> Result<(), AnchorError> {
        let mut bytes = vec![0u8; FILE_LEN];
        bytes[..SLOT_LEN].copy_from_slice(&Slot::encode(1, payload));
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|_| AnchorError::Randomness)?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(format!(".tmp-{tag}"));
        let tmp = self.path.with_file_name(name);
        let result = (|| {
            let mut file = open_private(&tmp, true)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            sync_parent_dir(&self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(self.io("cannot create the anchor file"))
    }
}

impl AnchorStore for FileAnchor {
    fn load(&self) -> Result<Option<Vec<u8>>, AnchorError> {
        let Some((_, slots)) = self.read_slots(false)? else {
            return Ok(None);
        };
        let newest = slots.into_iter().flatten().max_by_key(|s| s.seq);
        match newest {
            Some(slot) => Ok(Some(slot.payload)),
            None => Err(AnchorError::Malformed {
                location: self.location(),
            }),
        }
    }

    fn save(&self, payload: &[u8]) -> Result<(), AnchorError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(AnchorError::Malformed {
                location: self.location(),
            });
        }
        let (file, slots) = match self.read_slots(true) {
            Ok(Some(found)) => found,
            // No anchor file yet, or one too damaged to hold slots (only a
            // recovery call saves over an anchor that fails to load):
            // write a fresh one the atomic way.
            Ok(None) | Err(AnchorError::Malformed { .. }) => return self.create(payload),
            Err(e) => return Err(e),
        };
        // Overwrite the older (or broken) slot; keep the newest intact.
        let (index, seq) = match (&slots[0], &slots[1]) {
            (Some(a), Some(b)) if a.seq >= b.seq => (1, a.seq),
            (Some(_), Some(b)) => (0, b.seq),
            (Some(a), None) => (1, a.seq),
            (None, Some(b)) => (0, b.seq),
            (None, None) => (0, 0),
        };
        let bytes = Slot::encode(seq.saturating_add(1), payload);
        write_at(&file, &bytes, (index * SLOT_LEN) as u64)
            .and_then(|()| file.sync_data())
            .map_err(self.io("cannot write the anchor file"))
    }

    fn location(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// Both slots of an anchor file; `None` for one whose checksum fails.
type Slots = [Option<Slot>; SLOTS];

/// A slot whose checksum holds.
struct Slot {
    seq: u64,
    payload: Vec<u8>,
}

impl Slot {
    fn parse(bytes: &[u8]) -> Option<Slot> {
        let rest = bytes.strip_prefix(SLOT_MAGIC.as_slice())?;
        let seq = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let len = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
        if len > MAX_PAYLOAD {
            return None;
        }
        let end = SLOT_HEADER_LEN + len;
        let digest = bytes.get(end..end + DIGEST_LEN)?;
        if Sha256::digest(&bytes[..end]).as_slice() != digest {
            return None;
        }
        Some(Slot {
            seq,
            payload: bytes[SLOT_HEADER_LEN..end].to_vec(),
        })
    }

    fn encode(seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SLOT_LEN);
        out.extend_from_slice(SLOT_MAGIC);
        out.extend_from_slice(&seq.to_le_bytes());
        // Payloads are capped at MAX_PAYLOAD, far below u32::MAX.
        out.extend_from_slice(
            &u32::try_from(payload.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(payload);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        out.resize(SLOT_LEN, 0);
        out
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    file.write_all_at(bytes, offset)
}

#[cfg(not(unix))]
fn write_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek as _, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}
