//! An in-memory provider: for tests, examples and ephemeral processes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use crate::provider::{
    Capabilities, Locator, Persistence, ProviderError, SecretProvider, Version, VersionInfo,
    VersionSelector, VersionState, VersionedSecret,
};
use crate::{ExposeSecret, SecretBytes};

/// A versioned provider that keeps values in this process's memory.
///
/// Values are zeroized when destroyed or when the provider drops. `Debug`
/// shows how many locators it holds, never a value.
///
/// ```
/// use tyrum_secrets_core::{ExposeSecret, Locator, MemoryProvider, SecretBytes,
///     SecretProvider, VersionSelector};
///
/// let provider = MemoryProvider::new();
/// let locator = Locator::new("openai/api-key")?;
/// let v1 = provider.write(&locator, &SecretBytes::from(b"sk-first-value".to_vec()))?;
/// let v2 = provider.write(&locator, &SecretBytes::from(b"sk-second-value".to_vec()))?;
/// let old = provider.read(&locator, VersionSelector::Exact(v1))?;
/// assert_eq!(old.value.expose_secret(), b"sk-first-value");
/// assert_eq!(provider.read(&locator, VersionSelector::Latest)?.version, v2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct MemoryProvider {
    entries: Mutex<BTreeMap<Locator, Vec<Slot>>>,
    max_value_len: Option<usize>,
}

/// One version: `None` once destroyed.
struct Slot {
    value: Option<SecretBytes>,
    deleted: bool,
}

impl MemoryProvider {
    /// An empty provider without a value size limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty provider that refuses values larger than `max` bytes.
    pub fn with_max_value_len(max: usize) -> Self {
        Self {
            entries: Mutex::default(),
            max_value_len: Some(max),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Locator, Vec<Slot>>> {
        // A panic while holding the lock cannot leave a half-written map: every
        // mutation below is a single push or field store.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl fmt::Debug for MemoryProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProvider")
            .field("locators", &self.lock().len())
            .field("max_value_len", &self.max_value_len)
            .finish()
    }
}

fn slot_index(version: Version) -> usize {
    usize::try_from(version.get() - 1).unwrap_or(usize::MAX)
}

impl SecretProvider for MemoryProvider {
    fn capabilities(&self) -> Capabilities {
        let caps = Capabilities::writable(Persistence::Process);
        match self.max_value_len {
            Some(max) => caps.with_max_value_len(max),
            None => caps,
        }
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let entries = self.lock();
        let slots = entries
            .get(locator)
            .ok_or_else(|| ProviderError::NotFound {
                locator: locator.clone(),
            })?;
        let found = match version {
            VersionSelector::Latest => slots
                .iter()
                .enumerate()
                .rev()
                .find(|(_, slot)| !slot.deleted && slot.value.is_some()),
            VersionSelector::Exact(v) => slots
                .get(slot_index(v))
                .map(|slot| (slot_index(v), slot))
                .filter(|(_, slot)| !slot.deleted && slot.value.is_some()),
        };
        match found {
            Some((
                index,
                Slot {
                    value: Some(value), ..
                },
            )) => Ok(VersionedSecret {
                version: version_at(index),
                value: SecretBytes::from(value.expose_secret().to_vec()),
            }),
            _ => match version {
                VersionSelector::Exact(version) => Err(ProviderError::VersionNotFound {
                    locator: locator.clone(),
                    version,
                }),
                VersionSelector::Latest => Err(ProviderError::NotFound {
                    locator: locator.clone(),
                }),
            },
        }
    }

    fn write(&self, locator: &Locator, value: &SecretBytes) -> Result<Version, ProviderError> {
        let len = value.expose_secret().len();
        if let Some(max) = self.max_value_len.filter(|max| len > *max) {
            return Err(ProviderError::ValueTooLarge { len, max });
        }
        let mut entries = self.lock();
        let slots = entries.entry(locator.clone()).or_default();
        slots.push(Slot {
            value: Some(SecretBytes::from(value.expose_secret().to_vec())),
            deleted: false,
        });
        Ok(version_at(slots.len() - 1))
    }

    fn delete(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        self.with_slot(locator, version, |slot| slot.deleted = true)
    }

    fn destroy(&self, locator: &Locator, version: Version) -> Result<(), ProviderError> {
        // Dropping the SecretBytes zeroizes it.
        self.with_slot(locator, version, |slot| slot.value = None)
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        Ok(self
            .lock()
            .iter()
            .filter(|(_, slots)| slots.iter().any(|s| !s.deleted && s.value.is_some()))
            .map(|(locator, _)| locator.clone())
            .collect())
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let entries = self.lock();
        let slots = entries
            .get(locator)
            .ok_or_else(|| ProviderError::NotFound {
                locator: locator.clone(),
            })?;
        Ok(slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.value.is_some())
            .map(|(index, slot)| VersionInfo {
                version: version_at(index),
                state: if slot.deleted {
                    VersionState::Deleted
                } else {
                    VersionState::Live
                },
            })
            .collect())
    }
}

impl MemoryProvider {
    fn with_slot(
        &self,
        locator: &Locator,
        version: Version,
        change: impl FnOnce(&mut Slot),
    ) -> Result<(), ProviderError> {
        let mut entries = self.lock();
        let slots = entries
            .get_mut(locator)
            .ok_or_else(|| ProviderError::NotFound {
                locator: locator.clone(),
            })?;
        match slots.get_mut(slot_index(version)) {
            Some(slot) if slot.value.is_some() => {
                change(slot);
                Ok(())
            }
            _ => Err(ProviderError::VersionNotFound {
                locator: locator.clone(),
                version,
            }),
        }
    }
}

fn version_at(index: usize) -> Version {
    let number = u64::try_from(index).unwrap_or(u64::MAX - 1) + 1;
    Version::new(number).unwrap_or(Version::FIRST)
}
