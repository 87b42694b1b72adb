//! [`VaultProvider`]: the [`SecretProvider`] over a KV version 2 engine.

use std::fmt;

use tyrum_secrets_core::{
    Capabilities, ExposeSecret, Locator, Persistence, ProviderError, SecretBytes, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionState, VersionedSecret,
};

use crate::http::backoff;
use crate::kv::{Kv, State, Written};
use crate::path::locator_path;
use crate::value::{StoredValue, write_body};
use crate::wire::ReadResponse;
use crate::{KvMount, VaultClient, VaultError};

/// The default largest value: OpenBao's integrated storage refuses entries
/// over 1 MiB (`max_entry_size`), and a binary value grows by a third as
/// base64.
pub const DEFAULT_MAX_VALUE_LEN: usize = 512 * 1024;

/// How many check-and-set rounds a write makes against concurrent writers
/// before reporting [`ProviderError::Conflict`].
const MAX_CAS_ROUNDS: u32 = 64;

/// A [`SecretProvider`] over an OpenBao or Vault KV version 2 engine, for
/// clusters: every process that executes steps reaches the same values.
///
/// Locators map one to one onto KV paths under the mount and prefix (see
/// [`KvMount`]); each write is a new KV version, made with check-and-set so
/// two writers never overwrite each other; reads name the version; delete
/// is KV's soft delete (undeletable with `bao kv undelete`), destroy erases.
/// Values are stored as described in the crate docs ("Stored shape").
///
/// `Debug` shows the server and mount, never a value or token.
#[derive(Clone)]
pub struct VaultProvider {
    kv: Kv,
    max_value_len: usize,
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultProvider")
            .field("address", &self.kv.client.address())
            .field("mount", &self.kv.mount)
            .field("max_value_len", &self.max_value_len)
            .finish()
    }
}

impl VaultProvider {
    /// A provider keeping values in `mount` through `client`.
    pub fn new(client: VaultClient, mount: KvMount) -> Self {
        Self {
            kv: Kv { client, mount },
            max_value_len: DEFAULT_MAX_VALUE_LEN,
        }
    }

    /// Refuses values over `max` bytes (default [`DEFAULT_MAX_VALUE_LEN`]);
    /// raise it only with a storage backend that takes larger entries.
    pub fn with_max_value_len(mut self, max: usize) -> Self {
        self.max_value_len = max;
        self
    }

    /// The client.
    pub fn client(&self) -> &VaultClient {
        &self.kv.client
    }

    /// The mount and prefix.
    pub fn mount(&self) -> &KvMount {
        &self.kv.mount
    }

    fn read_exact(
        &self,
        locator: &Locator,
        path: &str,
        version: Version,
    ) -> Result<VersionedSecret, ProviderError> {
        match self.kv.read(path, Some(version.get()))? {
            Ok(reply) => self.decode(locator, path, &reply.body, Some(version)),
            Err(reply) => {
                // A 404 with metadata: that version was deleted or
                // destroyed. Without: the version or the whole secret is
                // missing, which the metadata tells apart.
                let has_metadata =
                    serde_json::from_slice::<ReadResponse<serde::de::IgnoredAny>>(&reply.body)
                        .is_ok_and(|r| r.data.metadata.is_some());
                if has_metadata || self.kv.metadata(path)?.is_some() {
                    Err(ProviderError::VersionNotFound {
                        locator: locator.clone(),
                        version,
                    })
                } else {
                    Err(not_found(locator))
                }
            }
        }
    }

    fn decode(
        &self,
        locator: &Locator,
        path: &str,
        body: &[u8],
        asked: Option<Version>,
    ) -> Result<VersionedSecret, ProviderError> {
        let display = self.kv.display_path(path);
        let parsed: ReadResponse<StoredValue<'_>> =
            serde_json::from_slice(body).map_err(|_| VaultError::Corrupt {
                path: display.clone(),
                reason: "the read response's data is not an object of strings".into(),
            })?;
        let version = parsed
            .data
            .metadata
            .as_ref()
            .and_then(|m| Version::new(m.version))
            .ok_or_else(|| VaultError::Protocol {
                operation: "read",
                what: "a response without a version number".into(),
            })?;
        if asked.is_some_and(|a| a != version) {
            return Err(VaultError::Protocol {
                operation: "read",
                what: "another version than the one asked for".into(),
            }
            .into());
        }
        let Some(stored) = &parsed.data.data else {
            return Err(ProviderError::VersionNotFound {
                locator: locator.clone(),
                version,
            });
        };
        Ok(VersionedSecret {
            version,
            value: stored.decode(&display)?,
        })
    }

    fn remove(
        &self,
        locator: &Locator,
        version: Version,
        destroy: bool,
    ) -> Result<(), ProviderError> {
        let path = locator_path(locator)?;
        let metadata = self.kv.metadata(path)?.ok_or_else(|| not_found(locator))?;
        match metadata.state(version.get()) {
            Some(State::Live) => {}
            Some(State::Deleted) if destroy => {}
            // Deleting a deleted version again changes nothing.
            Some(State::Deleted) => return Ok(()),
            Some(State::Destroyed) | None => {
                return Err(ProviderError::VersionNotFound {
                    locator: locator.clone(),
                    version,
                });
            }
        }
        Ok(self.kv.remove(path, version.get(), destroy)?)
    }
}

impl SecretProvider for VaultProvider {
    fn capabilities(&self) -> Capabilities {
        Capabilities::writable(Persistence::External).with_max_value_len(self.max_value_len)
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let path = locator_path(locator)?;
        match version {
            VersionSelector::Exact(version) => self.read_exact(locator, path, version),
            VersionSelector::Latest => {
                if let Ok(reply) = self.kv.read(path, None)? {
                    return self.decode(locator, path, &reply.body, None);
                }
                // The newest version is deleted or destroyed (or there is
                // none): the newest readable one, if any, is older.
                for _ in 0..3 {
                    let metadata = self.kv.metadata(path)?.ok_or_else(|| not_found(locator))?;
                    let Some(live) = metadata.newest_live().and_then(Version::new) else {
                        return Err(not_found(locator));
                    };
                    match self.read_exact(locator, path, live) {
                        // Deleted between the metadata read and this one.
                        Err(ProviderError::VersionNotFound { .. }) => continue,
                        result => return result,
                    }
                }
                Err(not_found(locator))
            }
        }
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        let len = value.expose_secret().len();
        if len > self.max_value_len {
            return Err(ProviderError::ValueTooLarge {
                len,
                max: self.max_value_len,
            });
        }
        let path = locator_path(locator)?;
        for round in 0..MAX_CAS_ROUNDS {
            let current = self.kv.metadata(path)?.map_or(0, |m| m.current_version);
            match self.kv.write(path, &write_body(value, current))? {
                Written::Version(version) => {
                    return Version::new(version).ok_or_else(|| {
                        VaultError::Protocol {
                            operation: "write",
                            what: "version 0 for a new version".into(),
                        }
                        .into()
                    });
                }
                // Another writer got in between: nothing was written, so
                // trying again is not a blind retry.
                Written::CasMismatch => std::thread::sleep(backoff(
                    round,
                    std::time::Duration::from_millis(2),
                    std::time::Duration::from_millis(200),
                )),
            }
        }
        Err(ProviderError::Conflict {
            locator: locator.clone(),
        })
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        self.remove(locator, version, false)
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        self.remove(locator, version, true)
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        let mut locators = Vec::new();
        for path in self.kv.list_recursive("")? {
            // Paths another writer made that no locator maps to are skipped.
            let Ok(locator) = Locator::new(path.as_str()) else {
                continue;
            };
            if locator_path(&locator).is_err() {
                continue;
            }
            let readable = self
                .kv
                .metadata(&path)?
                .is_some_and(|m| m.newest_live().is_some());
            if readable {
                locators.push(locator);
            }
        }
        locators.sort();
        Ok(locators)
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let path = locator_path(locator)?;
        let metadata = self.kv.metadata(path)?.ok_or_else(|| not_found(locator))?;
        Ok(metadata
            .states()
            .into_iter()
            .filter_map(|(number, state)| {
                let state = match state {
                    State::Live => VersionState::Live,
                    State::Deleted => VersionState::Deleted,
                    // Erased: absent, as the trait says.
                    State::Destroyed => return None,
                };
                Some(VersionInfo {
                    version: Version::new(number)?,
                    state,
                })
            })
            .collect())
    }
}

fn not_found(locator: &Locator) -> ProviderError {
    ProviderError::NotFound {
        locator: locator.clone(),
    }
}
