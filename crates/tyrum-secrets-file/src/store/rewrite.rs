//! Rewriting a store wholesale: compaction, a key change, a data-key
//! rotation, the upgrade from format 1, and an accepted rollback. Each
//! writes a complete new file and renames it into place; in format 2 each
//! starts a new chain, announced to the anchor before the rename.

use tyrum_secrets_core::Locator;

use super::files::{open_identity, remove_stale_temporaries, write_atomically};
use super::load::{Chain, aad};
use super::{Store, anchor_error};
use crate::error::FileError;
use crate::format::{
    self, ChainKeys, FORMAT_V1, FORMAT_V2, Header, HeaderFields, Link, RecordKind,
};
use crate::key::StoreKey;

/// A record's new sealed part and the chain value it binds, by locator and
/// version.
type Resealed = Vec<(Locator, u64, Vec<u8>, Link)>;

impl Store {
    /// Rewrites the file under the same keys, dropping destroyed versions.
    /// Format 2 starts a new chain (the next generation).
    pub(crate) fn compact(&mut self) -> Result<(), FileError> {
        let header = self.successor_header(self.header.version, self.next_generation())?;
        let kek = StoreKey::from_bytes(*self.kek.expose());
        self.rewrite(header, kek, None)
    }

    /// Rewrites a format-1 store as format 2 (generation 1), same keys.
    pub(crate) fn upgrade(&mut self) -> Result<(), FileError> {
        let header = self.successor_header(FORMAT_V2, 1)?;
        let kek = StoreKey::from_bytes(*self.kek.expose());
        self.rewrite(header, kek, None)
    }

    /// Rewrites the store as format 2 at a generation past both its own and
    /// `anchored` (what an anchor that refused it recorded), same keys.
    pub(crate) fn rewrite_past(&mut self, anchored: u64) -> Result<(), FileError> {
        let generation = self.header.generation.max(anchored).saturating_add(1);
        let header = self.successor_header(FORMAT_V2, generation)?;
        let kek = StoreKey::from_bytes(*self.kek.expose());
        self.rewrite(header, kek, None)
    }

    fn next_generation(&self) -> u64 {
        self.header.generation.saturating_add(1)
    }

    /// A header like this store's, in `version`, at `generation`, sealed
    /// again (a fresh wrap nonce, so a fresh chain).
    fn successor_header(&self, version: u16, generation: u64) -> Result<Header, FileError> {
        if version == FORMAT_V1 {
            return Ok(self.header.clone());
        }
        let fields = HeaderFields {
            version,
            store_id: self.header.store_id,
            key_kind: self.header.key_kind,
            kdf: self.header.kdf,
            salt: self.header.salt,
            generation,
        };
        Header::seal(fields, &self.kek, &self.data_key)
    }

    /// Rewrites the whole file from the index under `header`, dropping
    /// destroyed versions, and swaps it in atomically. With
    /// `new_data_key`, every value is re-sealed under it. A format-2
    /// header re-seals every record into a new chain; the anchor (if any)
    /// is told the new head before the rename and advanced to it after.
    pub(crate) fn rewrite(
        &mut self,
        header: Header,
        kek: StoreKey,
        new_data_key: Option<StoreKey>,
    ) -> Result<(), FileError> {
        let data_key = new_data_key.as_ref().unwrap_or(&self.data_key);
        let reseal = header.version != FORMAT_V1 || new_data_key.is_some();
        let mut chain = (header.version != FORMAT_V1)
            .then(|| Chain::start(ChainKeys::derive(data_key), &header));
        let mut log = Vec::new();
        let mut resealed = Resealed::new();
        let push = |log: &mut Vec<u8>, chain: &mut Option<Chain>, framed: Vec<u8>| {
            if let Some(chain) = chain {
                chain.push(&framed);
            }
            log.extend_from_slice(&framed);
        };
        for (locator, entry) in &self.index.entries {
            for (&version, slot) in &entry.slots {
                let link = chain.as_ref().map_or([0; 32], |c| c.head.chain);
                let framed = if reseal {
                    let value = format::open_record(
                        &self.data_key,
                        aad(&self.header, &slot.link, RecordKind::Put, version, locator),
                        &slot.sealed,
                        &self.path,
                    )?;
                    let framed = format::seal_record(
                        data_key,
                        aad(&header, &link, RecordKind::Put, version, locator),
                        &value,
                    )?;
                    let sealed = format::sealed_part(&framed, locator).to_vec();
                    resealed.push((locator.clone(), version, sealed, link));
                    framed
                } else {
                    format::frame(RecordKind::Put, version, locator, &slot.sealed)
                };
                push(&mut log, &mut chain, framed);
                if slot.deleted {
                    let link = chain.as_ref().map_or([0; 32], |c| c.head.chain);
                    let framed = format::seal_record(
                        data_key,
                        aad(&header, &link, RecordKind::Delete, version, locator),
                        &[],
                    )?;
                    push(&mut log, &mut chain, framed);
                }
            }
            let highest_kept = entry.slots.keys().next_back().copied().unwrap_or(0);
            if entry.max_version > highest_kept {
                let link = chain.as_ref().map_or([0; 32], |c| c.head.chain);
                let framed = format::seal_record(
                    data_key,
                    aad(
                        &header,
                        &link,
                        RecordKind::Destroy,
                        entry.max_version,
                        locator,
                    ),
                    &[],
                )?;
                push(&mut log, &mut chain, framed);
            }
        }
        self.announce(&header, chain.as_ref())?;
        remove_stale_temporaries(&self.path);
        write_atomically(&self.path, &header.encode(), &log)?;
        let (file, identity) = open_identity(&self.path)?;
        for (locator, version, sealed, link) in resealed {
            if let Some(slot) = self
                .index
                .entries
                .get_mut(&locator)
                .and_then(|entry| entry.slots.get_mut(&version))
            {
                slot.sealed = sealed;
                slot.link = link;
            }
        }
        if let Some(key) = new_data_key {
            self.data_key = key;
        }
        self.end = (header.len() + log.len()) as u64;
        self.header = header;
        self.kek = kek;
        self.file = file;
        self.identity = Some(identity);
        self.index.dead_bytes = 0;
        self.chain = chain;
        self.advance_anchor()
    }

    /// Before a rewrite's rename: tells the anchor the new file's head
    /// beside the current one, so a crash on either side of the rename
    /// leaves a file the anchor accepts.
    fn announce(&self, header: &Header, next: Option<&Chain>) -> Result<(), FileError> {
        let (Some(anchor), Some(next)) = (&self.anchor, next) else {
            return Ok(());
        };
        let next_seal = next.keys.anchor_seal(&header.store_id);
        let current_seal = self
            .chain
            .as_ref()
            .map(|c| (c.keys.anchor_seal(&self.header.store_id), c.head));
        let current = current_seal.as_ref().map(|(seal, head)| (seal, head));
        anchor
            .announce(current, (&next_seal, &next.head))
            .map_err(|source| anchor_error(&self.path, source))
    }
}
