//! [`FileProvider`]: the [`SecretProvider`] over an encrypted store file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tyrum_secrets_core::{
    Capabilities, ExposeSecret, Locator, Persistence, ProviderError, SecretBytes, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionState, VersionedSecret,
};

use crate::error::FileError;
use crate::format::{self, MAX_VALUE_LEN, RecordKind};
use crate::key::{KeySource, StoreKey};
use crate::lock::WriterLock;
use crate::options::FileOptions;
use crate::store::{CreateParams, Slot, Store, aad};

/// A versioned secret provider in one encrypted file, shared safely by every
/// process on the host that opens it.
///
/// See the crate documentation and FORMAT.md for the format and its
/// guarantees. `Debug` shows the path and counts, never a value or key.
pub struct FileProvider {
    source: KeySource,
    options: FileOptions,
    store: Mutex<Store>,
}

impl FileProvider {
    /// Opens the store at `path` with default options, creating it if the
    /// file does not exist. The parent directory must exist.
    ///
    /// # Errors
    /// See [`FileProvider::open_with`].
    pub fn open(path: impl AsRef<Path>, source: KeySource) -> Result<Self, FileError> {
        Self::open_with(path, source, FileOptions::default())
    }

    /// Opens the store at `path`, creating it (in format 2) if the file
    /// does not exist. With an anchor in `options`, the store is checked
    /// against it.
    ///
    /// # Errors
    /// [`FileError::NotAStore`] for an empty or foreign file,
    /// [`FileError::KdfLimitExceeded`] when the header asks for more work
    /// than `options` allow, [`FileError::KeyKindMismatch`],
    /// [`FileError::Decrypt`] for a wrong key or a modified file,
    /// [`FileError::Corrupt`] (also for a record cut out, moved, repeated or
    /// spliced in, in format 2), [`FileError::Anchor`] when the anchor
    /// refuses the store (cut short or rolled back),
    /// [`FileError::UpgradeRequired`] for a format-1 store with an anchor,
    /// or an I/O error.
    pub fn open_with(
        path: impl AsRef<Path>,
        source: KeySource,
        options: FileOptions,
    ) -> Result<Self, FileError> {
        let path = path.as_ref();
        let store = Store::open(
            path,
            &source,
            &options.kdf_limits,
            &CreateParams { kdf: options.kdf },
            options.lock_timeout,
            options.anchor_for(path),
        )?;
        Ok(Self::from_store(store, source, options))
    }

    pub(crate) fn from_store(store: Store, source: KeySource, options: FileOptions) -> Self {
        Self {
            source,
            options,
            store: Mutex::new(store),
        }
    }

    /// The store's format version: 1 (read and appended to as it is) or 2
    /// (chained; what new stores and [`FileProvider::upgrade`] write).
    pub fn format_version(&self) -> u16 {
        self.lock().format()
    }

    /// The store file's path.
    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Writes several values with one append and one fsync (an import).
    /// Values for the same locator get consecutive versions, in order.
    ///
    /// # Errors
    /// [`ProviderError::ValueTooLarge`], a lock timeout
    /// ([`ProviderError::Unavailable`]), or a file error.
    pub fn write_many(
        &self,
        values: &[(Locator, SecretBytes)],
    ) -> Result<Vec<Version>, ProviderError> {
        let values: Vec<(&Locator, &SecretBytes)> = values.iter().map(|(l, v)| (l, v)).collect();
        self.append_values(&values)
    }

    fn append_values(
        &self,
        values: &[(&Locator, &SecretBytes)],
    ) -> Result<Vec<Version>, ProviderError> {
        for (_, value) in values {
            check_len(value)?;
        }
        let mut store = self.lock();
        let _lock = self.begin_write(&mut store)?;
        let mut batch = store.batch();
        let mut next: std::collections::BTreeMap<&Locator, u64> = Default::default();
        let mut planned = Vec::with_capacity(values.len());
        for &(locator, value) in values {
            let max = match next.get(locator) {
                Some(v) => *v,
                None => store
                    .index
                    .entries
                    .get(locator)
                    .map_or(0, |e| e.max_version),
            };
            let version = max.checked_add(1).ok_or_else(|| {
                ProviderError::from(FileError::corrupt(
                    &store.path,
                    0,
                    "the version space is exhausted",
                ))
            })?;
            next.insert(locator, version);
            let (sealed, link) = store.seal_into(
                &mut batch,
                RecordKind::Put,
                version,
                locator,
                value.expose_secret(),
            )?;
            planned.push((locator.clone(), version, sealed, link));
        }
        store.append(batch)?;
        let mut versions = Vec::with_capacity(planned.len());
        for (locator, version, sealed, link) in planned {
            let entry = store.index.entries.entry(locator).or_default();
            entry.max_version = version;
            entry.slots.insert(
                version,
                Slot {
                    deleted: false,
                    sealed,
                    link,
                },
            );
            versions.push(to_version(version));
        }
        Ok(versions)
    }

    /// Rewrites the file without destroyed versions (atomic: temporary file,
    /// fsync, rename, fsync of the directory).
    ///
    /// # Errors
    /// A lock timeout or a file error.
    pub fn compact(&self) -> Result<(), FileError> {
        let mut store = self.lock();
        let _lock = self.begin_write_file(&mut store)?;
        store.compact()
    }

    /// Protects the store with a new key source (a new passphrase, key file
    /// or key). The data key stays; the file is rewritten atomically in
    /// format 2 under a new header, which starts a new chain (and also
    /// compacts it). A new passphrase uses the KDF parameters of this
    /// provider's options.
    ///
    /// Other processes that have the store open must reopen it with the new
    /// key source.
    ///
    /// # Errors
    /// A lock timeout, a key file error, or a file error.
    pub fn change_key(&mut self, new_source: KeySource) -> Result<(), FileError> {
        let store = self
            .store
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner());
        let _lock = store.begin_write(
            &self.source,
            &self.options.kdf_limits,
            self.options.lock_timeout,
        )?;
        let data_key = StoreKey::from_bytes(*store.data_key.expose());
        let (header, kek) = store.next_header(&new_source, self.options.kdf, &data_key)?;
        store.rewrite(header, kek, None)?;
        self.source = new_source;
        Ok(())
    }

    /// How many value records the file holds now: every version kept for
    /// every locator, which is what [`rotate_data_key`](Self::rotate_data_key)
    /// re-seals (for an audit record of it).
    ///
    /// # Errors
    /// A file error while reading what other processes appended.
    pub fn record_count(&self) -> Result<usize, FileError> {
        let mut store = self.lock();
        store.refresh(&self.source, &self.options.kdf_limits)?;
        Ok(store.index.entries.values().map(|e| e.slots.len()).sum())
    }

    /// Re-encrypts every record under a fresh random data key (for example
    /// after an old copy of the file and its key may have leaked). The file
    /// is rewritten atomically in format 2 (a new chain).
    ///
    /// # Errors
    /// A lock timeout or a file error.
    pub fn rotate_data_key(&self) -> Result<(), FileError> {
        let mut store = self.lock();
        let _lock = self.begin_write_file(&mut store)?;
        let data_key = StoreKey::generate()?;
        let kdf = store.header.kdf;
        let (header, kek) = store.next_header(&self.source, kdf, &data_key)?;
        store.rewrite(header, kek, Some(data_key))
    }

    /// Holds the writer lock until the guard drops: no process can write
    /// meanwhile (for example while a backup copies the file). Readers are
    /// not blocked.
    ///
    /// # Errors
    /// [`FileError::LockTimeout`] or an I/O error.
    pub fn lock_writers(&self) -> Result<WriterLock, FileError> {
        let mut store = self.lock();
        self.begin_write_file(&mut store)
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poison| {
            // A panic mid-operation may have left the view half updated:
            // rebuild it from the file on next use.
            let mut store = poison.into_inner();
            store.invalidate();
            store
        })
    }

    fn begin_write_file(&self, store: &mut Store) -> Result<WriterLock, FileError> {
        store.begin_write(
            &self.source,
            &self.options.kdf_limits,
            self.options.lock_timeout,
        )
    }

    fn begin_write(&self, store: &mut Store) -> Result<WriterLock, ProviderError> {
        Ok(self.begin_write_file(store)?)
    }

    fn refreshed(&self) -> Result<MutexGuard<'_, Store>, ProviderError> {
        let mut store = self.lock();
        store.refresh(&self.source, &self.options.kdf_limits)?;
        Ok(store)
    }

    fn append_marker(
        &self,
        store: &mut Store,
        kind: RecordKind,
        locator: &Locator,
        version: Version,
    ) -> Result<(), ProviderError> {
        let mut batch = store.batch();
        store.seal_into(&mut batch, kind, version.get(), locator, &[])?;
        store.append(batch)?;
        Ok(())
    }
}

fn check_len(value: &SecretBytes) -> Result<(), ProviderError> {
    let len = value.expose_secret().len();
    if len > MAX_VALUE_LEN {
        return Err(ProviderError::ValueTooLarge {
            len,
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

fn to_version(number: u64) -> Version {
    // Versions in the index are never 0: the parser refuses version 0 and
    // writers count up from 1.
    Version::new(number).unwrap_or(Version::FIRST)
}

fn not_found(locator: &Locator) -> ProviderError {
    ProviderError::NotFound {
        locator: locator.clone(),
    }
}

fn version_not_found(locator: &Locator, version: Version) -> ProviderError {
    ProviderError::VersionNotFound {
        locator: locator.clone(),
        version,
    }
}

impl SecretProvider for FileProvider {
    fn capabilities(&self) -> Capabilities {
        Capabilities::writable(Persistence::Durable).with_max_value_len(MAX_VALUE_LEN)
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let store = self.refreshed()?;
        let entry = store
            .index
            .entries
            .get(locator)
            .ok_or_else(|| not_found(locator))?;
        let live = |(_, slot): &(&u64, &Slot)| !slot.deleted;
        let found = match version {
            VersionSelector::Latest => entry.slots.iter().rev().find(live),
            VersionSelector::Exact(v) => entry.slots.get_key_value(&v.get()).filter(|kv| live(kv)),
        };
        let Some((&number, slot)) = found else {
            return Err(match version {
                VersionSelector::Latest => not_found(locator),
                VersionSelector::Exact(v) => version_not_found(locator, v),
            });
        };
        let plaintext = format::open_record(
            &store.data_key,
            aad(&store.header, &slot.link, RecordKind::Put, number, locator),
            &slot.sealed,
            &store.path,
        )?;
        Ok(VersionedSecret {
            version: to_version(number),
            value: SecretBytes::from(plaintext.as_slice().to_vec()),
        })
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        let versions = self.append_values(&[(locator, value)])?;
        versions
            .into_iter()
            .next()
            .ok_or_else(|| not_found(locator))
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let mut store = self.lock();
        let _lock = self.begin_write(&mut store)?;
        let entry = store
            .index
            .entries
            .get(locator)
            .ok_or_else(|| not_found(locator))?;
        match entry.slots.get(&version.get()) {
            None => return Err(version_not_found(locator, version)),
            Some(slot) if slot.deleted => return Ok(()),
            Some(_) => {}
        }
        self.append_marker(&mut store, RecordKind::Delete, locator, version)?;
        if let Some(slot) = store
            .index
            .entries
            .get_mut(locator)
            .and_then(|e| e.slots.get_mut(&version.get()))
        {
            slot.deleted = true;
        }
        Ok(())
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        let mut store = self.lock();
        let _lock = self.begin_write(&mut store)?;
        let entry = store
            .index
            .entries
            .get(locator)
            .ok_or_else(|| not_found(locator))?;
        if !entry.slots.contains_key(&version.get()) {
            return Err(version_not_found(locator, version));
        }
        self.append_marker(&mut store, RecordKind::Destroy, locator, version)?;
        if let Some(slot) = store
            .index
            .entries
            .get_mut(locator)
            .and_then(|e| e.slots.remove(&version.get()))
        {
            store.index.dead_bytes += slot.sealed.len() as u64;
        }
        if self.options.compact_on_destroy {
            store.compact()?;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        let store = self.refreshed()?;
        Ok(store
            .index
            .entries
            .iter()
            .filter(|(_, entry)| entry.slots.values().any(|slot| !slot.deleted))
            .map(|(locator, _)| locator.clone())
            .collect())
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let store = self.refreshed()?;
        let entry = store
            .index
            .entries
            .get(locator)
            .ok_or_else(|| not_found(locator))?;
        Ok(entry
            .slots
            .iter()
            .map(|(&number, slot)| VersionInfo {
                version: to_version(number),
                state: if slot.deleted {
                    VersionState::Deleted
                } else {
                    VersionState::Live
                },
            })
            .collect())
    }
}

impl fmt::Debug for FileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("FileProvider");
        out.field("key_source", &self.source);
        // try_lock: formatting must never wait for, or deadlock with, an
        // operation in progress.
        if let Ok(store) = self.store.try_lock() {
            out.field("path", &store.path)
                .field("locators", &store.index.entries.len())
                .field("bytes", &store.file_len());
        }
        out.field("options", &self.options).finish()
    }
}
