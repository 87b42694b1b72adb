//! Parsing a whole store file into its index, checking every record's tag,
//! its place in the version history and, in format 2, in the chain.

use std::collections::BTreeMap;
use std::path::Path;

use tyrum_secrets_core::Locator;
use tyrum_secrets_core::anchor::{AnchorHead, ChainWatch, Observed, SealedAnchor};

use crate::error::FileError;
use crate::format::{self, ChainKeys, FORMAT_V1, Header, Link, RawRecord, RecordAad, RecordKind};
use crate::key::{KdfLimits, KeyKind, KeySource, StoreKey};

/// One version of a locator.
pub(crate) struct Slot {
    pub(crate) deleted: bool,
    /// Nonce, ciphertext and tag, exactly as in the file.
    pub(crate) sealed: Vec<u8>,
    /// Format 2: the chain value before the record, which its associated
    /// data binds. Unused in format 1.
    pub(crate) link: Link,
}

/// Every version of a locator still in the file.
#[derive(Default)]
pub(crate) struct Entry {
    /// The highest version ever used, destroyed ones included, so a version
    /// number is never reused.
    pub(crate) max_version: u64,
    pub(crate) slots: BTreeMap<u64, Slot>,
}

/// A format-2 store's chain: its keys and its head (generation, record
/// count, chain value after the last record).
pub(crate) struct Chain {
    pub(crate) keys: ChainKeys,
    pub(crate) head: AnchorHead,
}

impl Chain {
    /// The chain of a file whose header is `header` and that holds no
    /// record yet.
    pub(crate) fn start(keys: ChainKeys, header: &Header) -> Self {
        let genesis = keys.genesis(&header.encode());
        Self {
            keys,
            head: AnchorHead::new(header.generation, 0, genesis),
        }
    }

    /// Moves the head past `frame`.
    pub(crate) fn push(&mut self, frame: &[u8]) {
        self.head.chain = self.keys.link(&self.head.chain, frame);
        self.head.count += 1;
    }
}

/// The associated data of the record at `locator`/`version` of kind
/// `kind`, read or written after `link` in a store with `header`.
pub(crate) fn aad<'a>(
    header: &'a Header,
    link: &'a Link,
    kind: RecordKind,
    version: u64,
    locator: &'a Locator,
) -> RecordAad<'a> {
    RecordAad {
        store_id: &header.store_id,
        link: (header.version != FORMAT_V1).then_some(link),
        kind,
        version,
        locator,
    }
}

/// The index of records, and the bytes destroyed versions still take.
#[derive(Default)]
pub(crate) struct Index {
    pub(crate) entries: BTreeMap<Locator, Entry>,
    pub(crate) dead_bytes: u64,
}

/// Parsed file contents: header, keys, index and chain.
pub(crate) struct Loaded {
    pub(crate) header: Header,
    pub(crate) kek: StoreKey,
    pub(crate) data_key: StoreKey,
    pub(crate) index: Index,
    pub(crate) end: u64,
    /// Records in the log.
    pub(crate) records: u64,
    /// Format 2 only.
    pub(crate) chain: Option<Chain>,
    /// Format 2 only: what an anchor check needs.
    pub(crate) observed: Option<Observed>,
}

/// Parses a whole store file. Pure: `path` only names it in errors.
///
/// `known` reuses an already derived key-encryption key when the header's
/// KDF inputs match, so following another process's rewrite does not run
/// Argon2id again. `anchor` (read before the file) names the chain
/// positions to note for the anchor check.
pub(crate) fn load_bytes(
    bytes: &[u8],
    path: &Path,
    source: &KeySource,
    limits: &KdfLimits,
    known: Option<(&Header, &StoreKey)>,
    anchor: Option<&SealedAnchor>,
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
    let base = header.len();
    let scan = format::scan(&bytes[base..], base as u64, path)?;
    let mut index = Index::default();
    let mut chain =
        (header.version != FORMAT_V1).then(|| Chain::start(ChainKeys::derive(&data_key), &header));
    let mut watch = ChainWatch::new(anchor, header.generation);
    if let Some(chain) = &chain {
        watch.observe(0, &chain.head.chain);
    }
    let records = scan.records.len() as u64;
    for record in scan.records {
        let link = chain.as_ref().map_or([0; 32], |c| c.head.chain);
        let frame = record.frame;
        index.apply(&header, &data_key, record, link, path)?;
        if let Some(chain) = &mut chain {
            chain.push(frame);
            watch.observe(chain.head.count, &chain.head.chain);
        }
    }
    let observed = chain.as_ref().map(|c| watch.finish(c.head));
    Ok(Loaded {
        header,
        kek,
        data_key,
        index,
        end: scan.end,
        records,
        chain,
        observed,
    })
}

impl Index {
    /// Checks a record's tag (under the chain value before it, `link`, in
    /// format 2) and its place in the version history, then applies it.
    pub(crate) fn apply(
        &mut self,
        header: &Header,
        data_key: &StoreKey,
        record: RawRecord<'_>,
        link: Link,
        path: &Path,
    ) -> Result<(), FileError> {
        let plaintext = format::open_record(
            data_key,
            aad(header, &link, record.kind, record.version, &record.locator),
            record.sealed,
            path,
        )?;
        let out_of_order = |reason| FileError::corrupt(path, record.offset, reason);
        let frame_len = record.frame.len() as u64;
        let entry = self.entries.entry(record.locator).or_default();
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
                        sealed: record.sealed.to_vec(),
                        link,
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
                    self.dead_bytes += slot.sealed.len() as u64 + frame_len;
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
}
