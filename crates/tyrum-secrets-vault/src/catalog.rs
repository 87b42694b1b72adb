//! [`VaultCatalogStore`]: the [`CatalogStore`] shared by every process of a
//! cluster, over a KV version 2 engine.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tyrum_secrets_core::{CatalogEntry, CatalogError, CatalogStore, HandleId};

use crate::kv::{Kv, Written};
use crate::wire::ReadResponse;
use crate::{KvMount, VaultClient};

const FORMAT: &str = "tyrum-secrets-catalog-entry";
const FORMAT_VERSION: u32 = 1;

/// A [`CatalogStore`] in a KV version 2 engine: one secret per handle at
/// `<prefix>/<handle id>`, whose KV version is the entry's revision.
///
/// `compare_and_set` is KV's check-and-set, so writers in any number of
/// processes never overwrite each other's changes, and every read is a
/// fresh request: a revoke made by one process fails the next resolve in
/// every other. Entries hold no values: each secret's data is
/// `{"format": "tyrum-secrets-catalog-entry", "version": 1, "entry":
/// {...}}` with the entry exactly as the JSON-file store writes it.
///
/// Keep it in its own mount or prefix, apart from the values, and give the
/// processes that only resolve read access to it. Backend failures arrive
/// as [`CatalogError::Provider`] with the typed
/// [`ProviderError`](tyrum_secrets_core::ProviderError).
#[derive(Clone)]
pub struct VaultCatalogStore {
    kv: Kv,
}

impl fmt::Debug for VaultCatalogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCatalogStore")
            .field("address", &self.kv.client.address())
            .field("mount", &self.kv.mount)
            .finish()
    }
}

#[derive(Serialize)]
struct WriteBody<'a> {
    options: Options,
    data: Stored<&'a CatalogEntry>,
}

#[derive(Serialize)]
struct Options {
    cas: u64,
}

#[derive(Serialize, Deserialize)]
struct Stored<E> {
    format: String,
    version: u32,
    entry: E,
}

impl VaultCatalogStore {
    /// A catalog in `mount` through `client`.
    pub fn new(client: VaultClient, mount: KvMount) -> Self {
        Self {
            kv: Kv { client, mount },
        }
    }

    /// The mount and prefix.
    pub fn mount(&self) -> &KvMount {
        &self.kv.mount
    }

    fn corrupt(&self, id: &HandleId, message: impl Into<String>) -> CatalogError {
        CatalogError::Corrupt {
            path: PathBuf::from(format!(
                "{}/v1/{}",
                self.kv.client.address(),
                self.kv.display_path(id.as_str())
            )),
            message: message.into(),
        }
    }

    /// The current revision of `id`, for a conflict report.
    fn actual_revision(&self, id: &HandleId) -> Result<Option<u64>, CatalogError> {
        Ok(self
            .kv
            .metadata(id.as_str())?
            .map(|m| m.current_version)
            .filter(|v| *v > 0))
    }
}

impl CatalogStore for VaultCatalogStore {
    fn get(&self, id: &HandleId) -> Result<Option<CatalogEntry>, CatalogError> {
        let reply = match self.kv.read(id.as_str(), None)? {
            Ok(reply) => reply,
            Err(missing) => {
                let deleted =
                    serde_json::from_slice::<ReadResponse<serde::de::IgnoredAny>>(&missing.body)
                        .is_ok_and(|r| r.data.metadata.is_some());
                if deleted {
                    // Failing closed: a handle must not look unknown because
                    // someone deleted its newest catalog version by hand.
                    return Err(self.corrupt(
                        id,
                        "its newest version was deleted or destroyed outside tyrum-secrets; \
                         undelete it with `bao kv undelete`",
                    ));
                }
                return Ok(None);
            }
        };
        let parsed: ReadResponse<Stored<CatalogEntry>> = serde_json::from_slice(&reply.body)
            .map_err(|e| {
                // serde's message may quote the data; keep only where.
                self.corrupt(
                    id,
                    format!(
                        "it is not a {FORMAT} (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
        let revision = parsed
            .data
            .metadata
            .map(|m| m.version)
            .ok_or_else(|| self.corrupt(id, "the response carries no version"))?;
        let Some(stored) = parsed.data.data else {
            return Err(self.corrupt(id, "its newest version has no data"));
        };
        if stored.format != FORMAT || stored.version != FORMAT_VERSION {
            return Err(self.corrupt(id, format!("it is not a {FORMAT} version {FORMAT_VERSION}")));
        }
        let mut entry = stored.entry;
        if entry.id() != id {
            return Err(self.corrupt(id, "it carries another handle id"));
        }
        entry.revision = revision;
        Ok(Some(entry))
    }

    fn list(&self) -> Result<Vec<CatalogEntry>, CatalogError> {
        let mut entries = Vec::new();
        for key in self.kv.list("")? {
            // Folders and keys that are not handle ids are not entries.
            let Ok(id) = HandleId::parse_bare(&key) else {
                continue;
            };
            // Gone between the list and the read: not an entry any more.
            if let Some(entry) = self.get(&id)? {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(entries)
    }

    fn compare_and_set(
        &self,
        mut entry: CatalogEntry,
        expected: Option<u64>,
    ) -> Result<u64, CatalogError> {
        let id = entry.id().clone();
        let conflict = |store: &Self| -> Result<u64, CatalogError> {
            Err(CatalogError::Conflict {
                id: id.clone(),
                expected,
                actual: store.actual_revision(&id)?,
            })
        };
        // Revisions start at 1; KV's `cas: 0` means "must not exist",
        // which is `expected: None`.
        let cas = match expected {
            Some(0) => return conflict(self),
            Some(revision) => revision,
            None => 0,
        };
        entry.revision = cas + 1;
        let body = serde_json::to_vec(&WriteBody {
            options: Options { cas },
            data: Stored {
                format: FORMAT.to_owned(),
                version: FORMAT_VERSION,
                entry: &entry,
            },
        })
        .map_err(|_| CatalogError::Invalid {
            message: format!("the entry of {id} cannot be serialized"),
        })?;
        match self.kv.write(id.as_str(), &body)? {
            Written::Version(version) => Ok(version),
            Written::CasMismatch => conflict(self),
        }
    }
}
