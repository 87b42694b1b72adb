//! The in-memory view of a store file and the file operations behind it:
//! load, follow the tail other processes append, append under the writer
//! lock, and rewrite atomically (compaction, rekeying).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tyrum_secrets_core::Locator;
use tyrum_secrets_core::durable::{open_private, sync_parent_dir};

use crate::error::FileError;
use crate::format::{self, HEADER_LEN, Header, RawRecord, RecordKind, STORE_ID_LEN};
use crate::key::{KdfLimits, KeyKind, KeySource, SALT_LEN, StoreKey};
use crate::lock::WriterLock;

/// One version of a locator.
pub(crate) struct Slot {
    pub(crate) deleted: bool,
    /// Nonce, ciphertext and tag, exactly as in the file.
    pub(crate) sealed: Vec<u8>,
}

/// Every version of a locator still in the file.
#[derive(Default)]
pub(crate) struct Entry {
    /// The highest version ever used, destroyed ones included, so a version
    /// number is never reused.
    pub(crate) max_version: u64,
    pub(crate) slots: BTreeMap<u64, Slot>,
}

/// Which file the view was built from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Identity {
    dev: u64,
    ino: u64,
}

/// A loaded store: its keys, the open file and the index of records.
pub(crate) struct Store {
    pub(crate) path: PathBuf,
    lock_path: PathBuf,
    kek: StoreKey,
    pub(crate) header: Header,
    pub(crate) data_key: StoreKey,
    file: File,
    /// `None` forces a full reload on the next refresh.
    identity: Option<Identity>,
    /// Offset just past the last complete record.
    end: u64,
    pub(crate) index: BTreeMap<Locator, Entry>,
    /// Bytes of records whose version was destroyed, still in the file.
    pub(crate) dead_bytes: u64,
}

/// Parsed file contents: header, keys and index.
pub(crate) struct Loaded {
    pub(crate) header: Header,
    pub(crate) kek: StoreKey,
    pub(crate) data_key: StoreKey,
    pub(crate) index: BTreeMap<Locator, Entry>,
    pub(crate) dead_bytes: u64,
    pub(crate) end: u64,
}

/// Parses a whole store file. Pure: `path` only names it in errors.
///
/// `kek` reuses an already derived key-encryption key when the header's
/// KDF inputs match, so following another process's rewrite does not run
/// Argon2id again.
pub(crate) fn load_bytes(
    bytes: &[u8],
    path: &Path,
    source: &KeySource,
    limits: &KdfLimits,
    known: Option<(&Header, &StoreKey)>,
) -> Result<Loaded, FileError> {
    let header = Header::decode(bytes, path)?;
    if header.key_kind != source.kind() {
        return Err(FileError::KeyKindMismatch {
            stored: header.key_kind,
            given: source.kind(),
        });
    }
    let kek = match known {
        Some((old, kek))
            if old.key_kind == header.key_kind
                && old.kdf == header.kdf
                && old.salt == header.salt =>
        {
            StoreKey::from_bytes(*kek.expose())
        }
        _ => {
            if header.key_kind == KeyKind::Passphrase {
                limits.check(header.kdf)?;
            }
            source.derive_kek(header.kdf, &header.salt)?
        }
    };
    let data_key = header.unwrap_key(&kek, path)?;
    let scan = format::scan(&bytes[HEADER_LEN..], HEADER_LEN as u64, path)?;
    let mut index = BTreeMap::new();
    let mut dead_bytes = 0;
    for record in scan.records {
        apply(
            &mut index,
            &mut dead_bytes,
            &header,
            &data_key,
            record,
            path,
        )?;
    }
    Ok(Loaded {
        header,
        kek,
        data_key,
        index,
        dead_bytes,
        end: scan.end,
    })
}

/// Checks a record's tag and its place in the version history, then
/// applies it to the index.
fn apply(
    index: &mut BTreeMap<Locator, Entry>,
    dead_bytes: &mut u64,
    header: &Header,
    data_key: &StoreKey,
    record: RawRecord,
    path: &Path,
) -> Result<(), FileError> {
    let plaintext = format::open_record(
        data_key,
        &header.store_id,
        record.kind,
        record.version,
        &record.locator,
        &record.sealed,
        path,
    )?;
    let out_of_order = |reason| FileError::corrupt(path, record.offset, reason);
    let entry = index.entry(record.locator).or_default();
    match record.kind {
        RecordKind::Put => {
            if record.version <= entry.max_version {
                return Err(out_of_order("a version is written twice or out of order"));
            }
            entry.max_version = record.version;
            entry.slots.insert(
                record.version,
                Slot {
                    deleted: false,
                    sealed: record.sealed,
                },
            );
        }
        RecordKind::Delete => {
            if !plaintext.is_empty() {
                return Err(out_of_order("a delete record carries a value"));
            }
            match entry.slots.get_mut(&record.version) {
                Some(slot) if !slot.deleted => slot.deleted = true,
                _ => return Err(out_of_order("a delete record names no live version")),
            }
        }
        RecordKind::Destroy => {
            if !plaintext.is_empty() {
                return Err(out_of_order("a destroy record carries a value"));
            }
            if let Some(slot) = entry.slots.remove(&record.version) {
                *dead_bytes += slot.sealed.len() as u64 + record.frame_len;
            } else if record.version > entry.max_version {
                // After compaction, the highest version of a locator whose
                // versions were destroyed survives as this marker only.
                entry.max_version = record.version;
            } else {
                return Err(out_of_order("a destroy record names no version"));
            }
        }
    }
    Ok(())
}

/// How to create a store that does not exist yet.
pub(crate) struct CreateParams {
    pub(crate) kdf: crate::key::KdfParams,
}

impl Store {
    /// Opens the store at `path`, creating it if the file does not exist.
    pub(crate) fn open(
        path: &Path,
        source: &KeySource,
        limits: &KdfLimits,
        create: &CreateParams,
        lock_timeout: Duration,
    ) -> Result<Self, FileError> {
        let lock_path = sibling(path, ".lock");
        if !path.exists() {
            let _lock = WriterLock::acquire(&lock_path, lock_timeout)?;
            if !path.exists() {
                let data_key = StoreKey::generate()?;
                let header = new_header(format::random()?, source, create, &data_key)?.0;
                write_atomically(path, &header.encode(), &[])?;
            }
        }
        let (file, identity, bytes) = read_whole(path)?;
        let loaded = load_bytes(&bytes, path, source, limits, None)?;
        Ok(Store {
            path: path.to_owned(),
            lock_path,
            kek: loaded.kek,
            header: loaded.header,
            data_key: loaded.data_key,
            file,
            identity: Some(identity),
            end: loaded.end,
            index: loaded.index,
            dead_bytes: loaded.dead_bytes,
        })
    }

    /// Forgets the view; the next refresh reloads the whole file.
    pub(crate) fn invalidate(&mut self) {
        self.identity = None;
    }

    /// Brings the view up to date with the file: reads what other
    /// processes appended, or reloads when the file was replaced.
    /// Returns whether the file ends in a torn (incomplete) record.
    pub(crate) fn refresh(
        &mut self,
        source: &KeySource,
        limits: &KdfLimits,
    ) -> Result<bool, FileError> {
        let meta = fs::metadata(&self.path)
            .map_err(|e| FileError::io("checking the store file", &self.path, e))?;
        let len = meta.len();
        if self.identity != Some(identity_of(&meta)) || len < self.end {
            return self.reload(source, limits);
        }
        if len == self.end {
            return Ok(false);
        }
        let mut tail = Vec::new();
        (&self.file)
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| (&self.file).take(len - self.end).read_to_end(&mut tail))
            .map_err(|e| FileError::io("reading the store file", &self.path, e))?;
        let scan = format::scan(&tail, self.end, &self.path)?;
        for record in scan.records {
            if let Err(e) = apply(
                &mut self.index,
                &mut self.dead_bytes,
                &self.header,
                &self.data_key,
                record,
                &self.path,
            ) {
                // The index may be half updated: rebuild it next time.
                self.invalidate();
                return Err(e);
            }
        }
        self.end = scan.end;
        Ok(scan.torn)
    }

    fn reload(&mut self, source: &KeySource, limits: &KdfLimits) -> Result<bool, FileError> {
        self.identity = None;
        let (file, identity, bytes) = read_whole(&self.path)?;
        let loaded = load_bytes(
            &bytes,
            &self.path,
            source,
            limits,
            Some((&self.header, &self.kek)),
        )?;
        let torn = loaded.end < bytes.len() as u64;
        self.kek = loaded.kek;
        self.header = loaded.header;
        self.data_key = loaded.data_key;
        self.file = file;
        self.end = loaded.end;
        self.index = loaded.index;
        self.dead_bytes = loaded.dead_bytes;
        self.identity = Some(identity);
        Ok(torn)
    }

    /// Takes the writer lock and brings the view up to date, cutting off a
    /// torn tail left by a writer that died mid-append.
    pub(crate) fn begin_write(
        &mut self,
        source: &KeySource,
        limits: &KdfLimits,
        timeout: Duration,
    ) -> Result<WriterLock, FileError> {
        let lock = WriterLock::acquire(&self.lock_path, timeout)?;
        if self.refresh(source, limits)? {
            // Only a writer holding the lock appends, and we hold it: the
            // incomplete tail belongs to a writer that died.
            self.file
                .set_len(self.end)
                .and_then(|()| self.file.sync_all())
                .map_err(|e| FileError::io("cutting off a torn record", &self.path, e))?;
        }
        Ok(lock)
    }

    /// Appends framed records and makes them durable. Call between
    /// [`begin_write`](Self::begin_write) and dropping its lock; the caller
    /// updates the index after this returns `Ok`.
    pub(crate) fn append(&mut self, frames: &[u8]) -> Result<(), FileError> {
        (&self.file)
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| (&self.file).write_all(frames))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                // Whatever reached the file is re-read (or cut off) later.
                self.identity = None;
                FileError::io("appending to the store file", &self.path, e)
            })?;
        self.end += frames.len() as u64;
        Ok(())
    }

    /// Rewrites the whole file from the index under `header`, dropping
    /// destroyed versions, and swaps it in atomically. With `rekey`, every
    /// value is re-sealed under `new_data_key`.
    pub(crate) fn rewrite(
        &mut self,
        header: Header,
        kek: StoreKey,
        new_data_key: Option<StoreKey>,
    ) -> Result<(), FileError> {
        let data_key = match &new_data_key {
            Some(key) => key,
            None => &self.data_key,
        };
        let mut log = Vec::new();
        let mut resealed: BTreeMap<Locator, BTreeMap<u64, Vec<u8>>> = BTreeMap::new();
        for (locator, entry) in &self.index {
            for (&version, slot) in &entry.slots {
                let framed = match &new_data_key {
                    None => format::frame(RecordKind::Put, version, locator, &slot.sealed),
                    Some(_) => {
                        let value = format::open_record(
                            &self.data_key,
                            &self.header.store_id,
                            RecordKind::Put,
                            version,
                            locator,
                            &slot.sealed,
                            &self.path,
                        )?;
                        let framed = format::seal_record(
                            data_key,
                            &header.store_id,
                            RecordKind::Put,
                            version,
                            locator,
                            &value,
                        )?;
                        resealed
                            .entry(locator.clone())
                            .or_default()
                            .insert(version, format::sealed_part(&framed, locator).to_vec());
                        framed
                    }
                };
                log.extend_from_slice(&framed);
                if slot.deleted {
                    log.extend(format::seal_record(
                        data_key,
                        &header.store_id,
                        RecordKind::Delete,
                        version,
                        locator,
                        &[],
                    )?);
                }
            }
            let highest_kept = entry.slots.keys().next_back().copied().unwrap_or(0);
            if entry.max_version > highest_kept {
                log.extend(format::seal_record(
                    data_key,
                    &header.store_id,
                    RecordKind::Destroy,
                    entry.max_version,
                    locator,
                    &[],
                )?);
            }
        }
        remove_stale_temporaries(&self.path);
        write_atomically(&self.path, &header.encode(), &log)?;
        let (file, identity) = open_identity(&self.path)?;
        for (locator, versions) in resealed {
            if let Some(entry) = self.index.get_mut(&locator) {
                for (version, sealed) in versions {
                    if let Some(slot) = entry.slots.get_mut(&version) {
                        slot.sealed = sealed;
                    }
                }
            }
        }
        if let Some(key) = new_data_key {
            self.data_key = key;
        }
        self.header = header;
        self.kek = kek;
        self.file = file;
        self.identity = Some(identity);
        self.end = (HEADER_LEN + log.len()) as u64;
        self.dead_bytes = 0;
        Ok(())
    }

    /// Rewrites the file under the same header and keys, dropping
    /// destroyed versions.
    pub(crate) fn compact(&mut self) -> Result<(), FileError> {
        let header = self.header.clone();
        let kek = StoreKey::from_bytes(*self.kek.expose());
        self.rewrite(header, kek, None)
    }

    /// A new header for the same store id, wrapping `data_key` under a key
    /// from `source`.
    pub(crate) fn header_for(
        &self,
        source: &KeySource,
        create: &CreateParams,
        data_key: &StoreKey,
    ) -> Result<(Header, StoreKey), FileError> {
        new_header(self.header.store_id, source, create, data_key)
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.end
    }
}

fn new_header(
    store_id: [u8; STORE_ID_LEN],
    source: &KeySource,
    create: &CreateParams,
    data_key: &StoreKey,
) -> Result<(Header, StoreKey), FileError> {
    let (kdf, salt) = match source.kind() {
        KeyKind::Passphrase => (create.kdf, format::random::<SALT_LEN>()?),
        KeyKind::RawKey => (crate::key::KdfParams::from_header(0, 0, 0), [0; SALT_LEN]),
    };
    let kek = source.derive_kek(kdf, &salt)?;
    let header = Header::seal(store_id, source.kind(), kdf, salt, &kek, data_key)?;
    Ok((header, kek))
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Removes `<store>.tmp-*` files left by rewrites that crashed before their
/// rename: they may hold ciphertext of destroyed versions. Call only while
/// holding the writer lock, when no rewrite can be in progress. Best effort:
/// a file that cannot be removed is retried by the next rewrite.
fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut prefix = name.to_os_string();
    prefix.push(".tmp-");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `header` and `log` to a temporary file, fsyncs it, renames it over
/// `path` and fsyncs the directory.
fn write_atomically(path: &Path, header: &[u8], log: &[u8]) -> Result<(), FileError> {
    let tag: [u8; 8] = format::random()?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = sibling(path, &format!(".tmp-{tag}"));
    let result = (|| {
        let mut file = open_private(&tmp, true)?;
        file.write_all(header)?;
        file.write_all(log)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent_dir(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| FileError::io("rewriting the store file", path, e))
}

fn open_identity(path: &Path) -> Result<(File, Identity), FileError> {
    let file =
        open_private(path, false).map_err(|e| FileError::io("opening the store file", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::io("checking the store file", path, e))?;
    Ok((file, identity_of(&meta)))
}

/// Buffer reserved up front when reading a store; larger stores grow it.
const INITIAL_READ_CAPACITY: u64 = 1 << 20;

/// Opens the store read-write and reads all of it.
///
/// Only a regular file that starts with the magic bytes is read past them:
/// a path naming a device (`/dev/zero`), a FIFO or a large foreign file is
/// refused as [`FileError::NotAStore`] instead of being read without end
/// or sized into one allocation.
fn read_whole(path: &Path) -> Result<(File, Identity, Vec<u8>), FileError> {
    let file =
        open_private(path, false).map_err(|e| FileError::io("opening the store file", path, e))?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::io("checking the store file", path, e))?;
    let not_a_store = || FileError::NotAStore {
        path: path.to_owned(),
    };
    if !meta.is_file() {
        return Err(not_a_store());
    }
    let capacity = meta.len().min(INITIAL_READ_CAPACITY);
    let mut bytes = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    let read = |bytes: &mut Vec<u8>, limit: Option<u64>| {
        let result = match limit {
            Some(limit) => (&file).take(limit).read_to_end(bytes),
            None => (&file).read_to_end(bytes),
        };
        result.map_err(|e| FileError::io("reading the store file", path, e))
    };
    read(&mut bytes, Some(format::MAGIC.len() as u64))?;
    if bytes.as_slice() != format::MAGIC.as_slice() {
        return Err(not_a_store());
    }
    read(&mut bytes, None)?;
    Ok((file, identity_of(&meta), bytes))
}

#[cfg(unix)]
fn identity_of(meta: &fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt as _;
    Identity {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// Without inode numbers, a file replaced by rename is told apart by its
/// creation time.
#[cfg(not(unix))]
fn identity_of(meta: &fs::Metadata) -> Identity {
    let created = meta
        .created()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    Identity {
        dev: 0,
        ino: created,
    }
}
