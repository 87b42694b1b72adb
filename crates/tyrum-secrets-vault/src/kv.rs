//! The KV version 2 operations the provider and the catalog store share:
//! read at a version, write with check-and-set, metadata, delete, destroy,
//! list.

use std::fmt;

use crate::http::{Exchange, Reply, error_strings};
use crate::path::{Endpoint, KvMount};
use crate::wire::{ListResponse, Metadata, MetadataResponse, WriteResponse, rfc3339_unix_secs};
use crate::{VaultClient, VaultError};

/// A KV v2 mount (and prefix) reached through a client.
#[derive(Clone)]
pub(crate) struct Kv {
    pub(crate) client: VaultClient,
    pub(crate) mount: KvMount,
}

impl fmt::Debug for Kv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kv")
            .field("address", &self.client.address())
            .field("mount", &self.mount)
            .finish()
    }
}

/// The state of one version in a secret's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Live,
    Deleted,
    Destroyed,
}

/// What a check-and-set write did.
pub(crate) enum Written {
    /// Stored as this version.
    Version(u64),
    /// The secret's current version was not the one named; nothing was
    /// written.
    CasMismatch,
}

impl Kv {
    /// The KV path (mount-relative, prefix included) of `relative`, for
    /// messages.
    pub(crate) fn display_path(&self, relative: &str) -> String {
        format!("{}/{}", self.mount.mount(), self.mount.kv_path(relative))
    }

    /// Reads `relative` (latest, or `version`). `None` on 404; the reply
    /// is returned for the caller to parse with its own data shape.
    pub(crate) fn read(
        &self,
        relative: &str,
        version: Option<u64>,
    ) -> Result<Result<Reply, Reply>, VaultError> {
        let path = self.mount.api_path(Endpoint::Data, relative);
        let number;
        let mut exchange = Exchange::get("read", &path);
        if let Some(version) = version {
            number = version.to_string();
            exchange = exchange.query("version", &number);
        }
        let reply = self.client.call(&exchange)?;
        match reply.status {
            200 => Ok(Ok(reply)),
            404 => Ok(Err(reply)),
            status => Err(unexpected("read", status)),
        }
    }

    /// The metadata of `relative`; `None` when nothing was ever written.
    pub(crate) fn metadata(&self, relative: &str) -> Result<Option<Metadata>, VaultError> {
        let path = self.mount.api_path(Endpoint::Metadata, relative);
        let reply = self.client.call(&Exchange::get("metadata read", &path))?;
        match reply.status {
            200 => serde_json::from_slice::<MetadataResponse>(&reply.body)
                .map(|m| Some(m.data))
                .map_err(|_| VaultError::Protocol {
                    operation: "metadata read",
                    what: "a body that is not KV v2 metadata".into(),
                }),
            404 => Ok(None),
            status => Err(unexpected("metadata read", status)),
        }
    }

    /// Writes `body` (a KV v2 write request with `options.cas`). Not
    /// retried after a transient error: it may have landed.
    pub(crate) fn write(&self, relative: &str, body: &[u8]) -> Result<Written, VaultError> {
        let path = self.mount.api_path(Endpoint::Data, relative);
        let reply = self.client.call(&Exchange::post("write", &path, body))?;
        match reply.status {
            200 | 204 => serde_json::from_slice::<WriteResponse>(&reply.body)
                .map(|w| Written::Version(w.data.version))
                .map_err(|_| VaultError::Protocol {
                    operation: "write",
                    what: "a body that is not a KV v2 write response".into(),
                }),
            400 if error_strings(&reply.body)
                .iter()
                .any(|e| e.contains("check-and-set")) =>
            {
                Ok(Written::CasMismatch)
            }
            404 => Err(VaultError::Protocol {
                operation: "write",
                what: format!(
                    "HTTP 404; check that {} is a KV version 2 mount",
                    self.mount.mount()
                ),
            }),
            status => Err(unexpected("write", status)),
        }
    }

    /// Soft-deletes (`delete`) or erases (`destroy`) `versions`.
    pub(crate) fn remove(
        &self,
        relative: &str,
        version: u64,
        destroy: bool,
    ) -> Result<(), VaultError> {
        let (endpoint, operation) = if destroy {
            (Endpoint::Destroy, "destroy")
        } else {
            (Endpoint::Delete, "delete")
        };
        let path = self.mount.api_path(endpoint, relative);
        let body = format!(r#"{{"versions":[{version}]}}"#);
        // Deleting or destroying a version twice has the same effect as
        // once: safe to retry.
        let exchange = Exchange::post(operation, &path, body.as_bytes()).idempotent();
        let reply = self.client.call(&exchange)?;
        if reply.is_success() {
            Ok(())
        } else {
            Err(unexpected(operation, reply.status))
        }
    }

    /// Every secret path under `relative` (empty: the whole prefix), as
    /// paths relative to the prefix, recursing into folders.
    pub(crate) fn list_recursive(&self, relative: &str) -> Result<Vec<String>, VaultError> {
        let mut found = Vec::new();
        let mut folders = vec![relative.to_owned()];
        while let Some(folder) = folders.pop() {
            for key in self.list(&folder)? {
                let full = if folder.is_empty() {
                    key
                } else {
                    format!("{folder}/{key}")
                };
                match full.strip_suffix('/') {
                    Some(sub) => folders.push(sub.to_owned()),
                    None => found.push(full),
                }
            }
        }
        Ok(found)
    }

    /// The keys directly in folder `relative`: names, and folders ending
    /// in `/`.
    pub(crate) fn list(&self, relative: &str) -> Result<Vec<String>, VaultError> {
        let path = self.mount.list_path(relative);
        let reply = self
            .client
            .call(&Exchange::get("list", &path).query("list", "true"))?;
        match reply.status {
            200 => serde_json::from_slice::<ListResponse>(&reply.body)
                .map(|l| l.data.keys)
                .map_err(|_| VaultError::Protocol {
                    operation: "list",
                    what: "a body that is not a key list".into(),
                }),
            404 => Ok(Vec::new()),
            status => Err(unexpected("list", status)),
        }
    }
}

impl Metadata {
    /// Every version with its state, oldest first.
    pub(crate) fn states(&self) -> Vec<(u64, State)> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut states: Vec<(u64, State)> = self
            .versions
            .iter()
            .filter_map(|(number, v)| {
                let number: u64 = number.parse().ok()?;
                let state = if v.destroyed {
                    State::Destroyed
                } else if v.deletion_time.is_empty() {
                    State::Live
                } else {
                    // A mount's `delete_version_after` sets a deletion time
                    // in the future: live until then.
                    match rfc3339_unix_secs(&v.deletion_time) {
                        Some(at) if at > now => State::Live,
                        _ => State::Deleted,
                    }
                };
                Some((number, state))
            })
            .collect();
        states.sort_unstable_by_key(|(number, _)| *number);
        states
    }

    /// The state of `version`; `None` if the metadata does not list it.
    pub(crate) fn state(&self, version: u64) -> Option<State> {
        self.states()
            .into_iter()
            .find(|(number, _)| *number == version)
            .map(|(_, state)| state)
    }

    /// The newest live version.
    pub(crate) fn newest_live(&self) -> Option<u64> {
        self.states()
            .into_iter()
            .rev()
            .find(|(_, state)| *state == State::Live)
            .map(|(number, _)| number)
    }
}

fn unexpected(operation: &'static str, status: u16) -> VaultError {
    VaultError::Protocol {
        operation,
        what: format!("HTTP {status}"),
    }
}
