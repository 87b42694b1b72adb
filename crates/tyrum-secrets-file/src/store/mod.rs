//! The in-memory view of a store file and the file operations behind it:
//! load (checked against the anchor), follow the tail other processes
//! append, append under the writer lock (then advance the anchor), and
//! rewrite atomically (compaction, rekeying, upgrade).

mod anchoring;
mod files;
mod load;
mod rewrite;

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tyrum_secrets_core::Locator;
use tyrum_secrets_core::anchor::{Anchor, AnchorError};

pub(crate) use anchoring::{Verdict, judge};
use files::{Identity, identity_of};
pub(crate) use files::{sibling, write_atomically};
pub(crate) use load::{Chain, Index, Slot, aad, load_bytes};

use crate::error::FileError;
use crate::format::{self, FORMAT_V2, Header, HeaderFields, Link, RecordKind, STORE_ID_LEN};
use crate::key::{KdfLimits, KdfParams, KeySource, StoreKey};
use crate::lock::WriterLock;

/// A loaded store: its keys, the open file, the index of records and, in
/// format 2, the chain and the anchor.
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
    pub(crate) index: Index,
    pub(crate) chain: Option<Chain>,
    pub(crate) anchor: Option<Anchor>,
}

/// How to create a store that does not exist yet.
pub(crate) struct CreateParams {
    pub(crate) kdf: KdfParams,
}

/// Records sealed for one append: each binds the chain value left by the
/// one before it.
pub(crate) struct Batch {
    frames: Vec<u8>,
    /// Format 2: the chain as it will be after these frames.
    chain: Option<(Link, u64)>,
}

impl Store {
    /// Opens the store at `path`, creating it (in format 2) if the file
    /// does not exist, and checks it against `anchor`.
    pub(crate) fn open(
        path: &Path,
        source: &KeySource,
        limits: &KdfLimits,
        create: &CreateParams,
        lock_timeout: Duration,
        anchor: Option<Anchor>,
    ) -> Result<Self, FileError> {
        let lock_path = sibling(path, ".lock");
        if !path.exists() {
            anchoring::refuse_if_anchored_file_vanished(path, anchor.as_ref())?;
            let _lock = WriterLock::acquire(&lock_path, lock_timeout)?;
            if !path.exists() {
                Self::create(path, source, create, anchor.as_ref())?;
            }
        }
        let opened = anchoring::load_checked(path, source, limits, None, anchor.as_ref())?;
        Ok(Self::from_opened(path, lock_path, opened, anchor))
    }

    /// Opens the store for a recovery call that holds `lock`: loads it once
    /// and reports what the anchor says instead of refusing.
    pub(crate) fn open_for_recovery(
        path: &Path,
        source: &KeySource,
        limits: &KdfLimits,
        anchor: Option<Anchor>,
        _lock: &WriterLock,
    ) -> Result<(Self, Verdict), FileError> {
        let mut opened = anchoring::load_once(path, source, limits, None, anchor.as_ref())?;
        let verdict = std::mem::replace(&mut opened.verdict, Verdict::Accepted);
        let store = Self::from_opened(path, sibling(path, ".lock"), opened, anchor);
        Ok((store, verdict))
    }

    fn from_opened(
        path: &Path,
        lock_path: PathBuf,
        opened: anchoring::Opened,
        anchor: Option<Anchor>,
    ) -> Self {
        let anchoring::Opened {
            file,
            identity,
            loaded,
            ..
        } = opened;
        Store {
            path: path.to_owned(),
            lock_path,
            kek: loaded.kek,
            header: loaded.header,
            data_key: loaded.data_key,
            file,
            identity: Some(identity),
            end: loaded.end,
            index: loaded.index,
            chain: loaded.chain,
            anchor,
        }
    }

    /// Writes a new, empty format-2 store: announced to the anchor first,
    /// so a crash before the rename leaves nothing the anchor claims.
    fn create(
        path: &Path,
        source: &KeySource,
        create: &CreateParams,
        anchor: Option<&Anchor>,
    ) -> Result<(), FileError> {
        let data_key = StoreKey::generate()?;
        let (header, _) = new_header(format::random()?, 1, source, create.kdf, &data_key)?;
        let chain = Chain::start(format::ChainKeys::derive(&data_key), &header);
        let seal = chain.keys.anchor_seal(&header.store_id);
        let anchored = |source| anchor_error(path, source);
        if let Some(anchor) = anchor {
            anchor
                .announce(None, (&seal, &chain.head))
                .map_err(anchored)?;
        }
        write_atomically(path, &header.encode(), &[])?;
        if let Some(anchor) = anchor {
            anchor.advance(&seal, &chain.head).map_err(anchored)?;
        }
        Ok(())
    }

    /// Forgets the view; the next refresh reloads the whole file.
    pub(crate) fn invalidate(&mut self) {
        self.identity = None;
    }

    /// Brings the view up to date with the file: reads what other
    /// processes appended, or reloads (and re-checks against the anchor)
    /// when the file was replaced. Returns whether the file ends in a torn
    /// (incomplete) record.
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
            let link = self.chain.as_ref().map_or([0; 32], |c| c.head.chain);
            let frame = record.frame;
            if let Err(e) = self
                .index
                .apply(&self.header, &self.data_key, record, link, &self.path)
            {
                // The index may be half updated: rebuild it next time.
                self.invalidate();
                return Err(e);
            }
            if let Some(chain) = &mut self.chain {
                chain.push(frame);
            }
        }
        self.end = scan.end;
        Ok(scan.torn)
    }

    fn reload(&mut self, source: &KeySource, limits: &KdfLimits) -> Result<bool, FileError> {
        self.identity = None;
        let opened = anchoring::load_checked(
            &self.path,
            source,
            limits,
            Some((&self.header, &self.kek)),
            self.anchor.as_ref(),
        )?;
        let torn = opened.loaded.end < opened.len;
        let anchoring::Opened {
            file,
            identity,
            loaded,
            ..
        } = opened;
        self.kek = loaded.kek;
        self.header = loaded.header;
        self.data_key = loaded.data_key;
        self.file = file;
        self.end = loaded.end;
        self.index = loaded.index;
        self.chain = loaded.chain;
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

    /// An empty batch that continues the chain from the current head.
    pub(crate) fn batch(&self) -> Batch {
        Batch {
            frames: Vec::new(),
            chain: self.chain.as_ref().map(|c| (c.head.chain, c.head.count)),
        }
    }

    /// Seals a record into `batch`. Returns its sealed part and the chain
    /// value it binds, as the index keeps them.
    pub(crate) fn seal_into(
        &self,
        batch: &mut Batch,
        kind: RecordKind,
        version: u64,
        locator: &Locator,
        value: &[u8],
    ) -> Result<(Vec<u8>, Link), FileError> {
        let link = batch.chain.map_or([0; 32], |(link, _)| link);
        let framed = format::seal_record(
            &self.data_key,
            aad(&self.header, &link, kind, version, locator),
            value,
        )?;
        if let (Some(chain), Some((link, count))) = (&self.chain, &mut batch.chain) {
            *link = chain.keys.link(link, &framed);
            *count += 1;
        }
        let sealed = format::sealed_part(&framed, locator).to_vec();
        batch.frames.extend_from_slice(&framed);
        Ok((sealed, link))
    }

    /// Appends a batch, makes it durable, then advances the anchor. Call
    /// between [`begin_write`](Self::begin_write) and dropping its lock;
    /// the caller updates the index after this returns `Ok`.
    pub(crate) fn append(&mut self, batch: Batch) -> Result<(), FileError> {
        (&self.file)
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| (&self.file).write_all(&batch.frames))
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                // Whatever reached the file is re-read (or cut off) later.
                self.identity = None;
                FileError::io("appending to the store file", &self.path, e)
            })?;
        self.end += batch.frames.len() as u64;
        if let (Some(chain), Some((link, count))) = (&mut self.chain, batch.chain) {
            chain.head.chain = link;
            chain.head.count = count;
        }
        // The append is durable: only now may the anchor move (the crash
        // rule). If it cannot, the file is ahead of its anchor, which is
        // accepted; the caller learns the write is not anchored, and the
        // view is rebuilt from the file so the record is not forgotten.
        if let Err(e) = self.advance_anchor() {
            self.invalidate();
            return Err(e);
        }
        Ok(())
    }

    /// Records the current head in the anchor, if there is one.
    pub(crate) fn advance_anchor(&self) -> Result<(), FileError> {
        if let (Some(anchor), Some(chain)) = (&self.anchor, &self.chain) {
            let seal = chain.keys.anchor_seal(&self.header.store_id);
            anchor
                .advance(&seal, &chain.head)
                .map_err(|source| anchor_error(&self.path, source))?;
        }
        Ok(())
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.end
    }

    /// The store's format version.
    pub(crate) fn format(&self) -> u16 {
        self.header.version
    }

    /// A new format-2 header for the same store id, wrapping `data_key`
    /// under a key from `source`, one generation on.
    pub(crate) fn next_header(
        &self,
        source: &KeySource,
        kdf: KdfParams,
        data_key: &StoreKey,
    ) -> Result<(Header, StoreKey), FileError> {
        new_header(
            self.header.store_id,
            self.header.generation.saturating_add(1).max(1),
            source,
            kdf,
            data_key,
        )
    }
}

/// A fresh format-2 header: a new salt for a passphrase, a new wrap nonce.
pub(crate) fn new_header(
    store_id: [u8; STORE_ID_LEN],
    generation: u64,
    source: &KeySource,
    kdf: KdfParams,
    data_key: &StoreKey,
) -> Result<(Header, StoreKey), FileError> {
    let (kdf, salt) = match source.kind() {
        crate::key::KeyKind::Passphrase => (kdf, format::random()?),
        crate::key::KeyKind::RawKey => (KdfParams::from_header(0, 0, 0), [0; crate::key::SALT_LEN]),
    };
    let kek = source.derive_kek(kdf, &salt)?;
    let fields = HeaderFields {
        version: FORMAT_V2,
        store_id,
        key_kind: source.kind(),
        kdf,
        salt,
        generation,
    };
    let header = Header::seal(fields, &kek, data_key)?;
    Ok((header, kek))
}

pub(crate) fn anchor_error(path: &Path, source: AnchorError) -> FileError {
    FileError::Anchor {
        path: path.to_owned(),
        source,
    }
}
