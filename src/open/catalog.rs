//! The local catalog (single host, desktop, kubernetes): `catalog.json` in
//! the state directory, authenticated (core's
//! `JsonFileCatalogStore::open_authenticated`). Every write is MACed under
//! the catalog key and advances the catalog's anchor, so an edit (a revoked
//! entry set active) or an older copy put back is refused, never believed.
//!
//! - The key: in `catalog_key_file` if set, else in the profile's provider
//!   where it is writable (the file store, the keychain) at
//!   [`KEY_LOCATOR`]; for kubernetes (read-only providers) in `catalog.key`
//!   in the state directory. A new key is kept
//!   as late as the audit keys are ([`LocalCatalog::persist_key`]), so a
//!   failed first open writes none.
//! - The anchor: where the audit logs' anchors are (`anchors.rs`), named
//!   `catalog`.
//! - A plain catalog from before authentication is sealed once, on record
//!   ([`Recovery::CatalogUpgraded`]), but only while no key and no anchor
//!   of an authenticated catalog exist: otherwise a plain file is a
//!   downgrade, refused.

use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tyrum_secrets_core::durable::open_private;
use tyrum_secrets_core::{
    Action, AdminRequest, Anchor, AnchorError, AuditRecord, AuditSink, CatalogError, CatalogKey,
    ExposeSecret as _, HandleId, JsonFileCatalogStore, Locator, Outcome, ProviderError, Purpose,
    Requester, SecretBytes, SecretProvider, Timestamp, VersionSelector,
};
use zeroize::Zeroizing;

use super::OpenError;
use super::anchors::Placed;
use super::report::Recovery;
use super::state::Created;

/// Where the catalog key lives in a provider.
pub(crate) const KEY_LOCATOR: &str = "tyrum-secrets-internal/catalog-key";
/// The catalog key's file in the state directory, where the profile has no
/// writable provider (kubernetes).
pub(crate) const KEY_FILE_NAME: &str = "catalog.key";
/// The name of the catalog's anchor where it is not beside the file.
pub(crate) const ANCHOR_NAME: &str = "catalog";
/// The catalog key's length, in bytes.
const KEY_LEN: usize = 32;
/// Names the catalog in audit records, in place of a handle id.
const MARKER: &str = "tyrum-secrets-catalog-json";

/// Where the catalog key is kept.
pub(crate) enum KeyHome<'a> {
    /// In the profile's provider, at [`KEY_LOCATOR`].
    Provider {
        provider: &'a dyn SecretProvider,
        what: String,
    },
    /// In a file: 64 hex digits (and a newline), or 32 raw bytes; `key`
    /// names the setting.
    File { path: PathBuf, key: String },
}

impl KeyHome<'_> {
    /// Where the key is, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            KeyHome::Provider { what, .. } => format!("{what}, entry {KEY_LOCATOR}"),
            KeyHome::File { path, key } => format!("the file {} ({key})", path.display()),
        }
    }
}

/// The catalog store of an open, and what waits until the audit log is
/// open.
pub(crate) struct LocalCatalog {
    path: PathBuf,
    /// The store, once it is open against its key and anchor.
    store: Option<Arc<JsonFileCatalogStore>>,
    /// The key bytes (wiped on drop).
    key: Zeroizing<Vec<u8>>,
    /// The key was made by this open and is not kept yet.
    made_key: bool,
    /// The key and the catalog were there before this open: the catalog
    /// was authenticated already (not created or upgraded now).
    key_found: bool,
    anchor: Anchor,
    /// Where the anchor is, for messages and the report.
    pub(crate) anchor_location: String,
    pending: Option<Pending>,
}

/// A change to the catalog that waits until the audit log is open, so it
/// is recorded there first.
enum Pending {
    /// A plain catalog from before authentication: seal it.
    Upgrade,
    /// A catalog its anchor (or a missing key) refuses, accepted by the
    /// operator; the refusal, as text.
    Accept(AdminRequest, String),
}

impl LocalCatalog {
    /// Opens the catalog at `path` with its key from `home` and its anchor
    /// `placed`. A missing catalog is created (a first open: the state
    /// record's absence was checked by the caller). A plain catalog is
    /// upgraded, and a refused one accepted with `accept`, only after
    /// [`finish`](Self::finish).
    pub(crate) fn open(
        path: &Path,
        home: &KeyHome<'_>,
        placed: &Placed,
        accept: Option<&AdminRequest>,
        created: &mut Created,
    ) -> Result<Self, OpenError> {
        let lock = sibling(path, ".lock");
        let mut catalog = LocalCatalog {
            path: path.to_owned(),
            store: None,
            key: Zeroizing::new(Vec::new()),
            made_key: false,
            key_found: false,
            anchor: placed.anchor.clone(),
            anchor_location: placed.location.clone(),
            pending: None,
        };
        let refused = |e: CatalogError, catalog: &mut LocalCatalog| -> Result<(), OpenError> {
            let error = catalog.refusal(e, home);
            match (accept, acceptable(&error)) {
                (Some(by), Some(refusal)) => {
                    catalog.pending = Some(Pending::Accept(by.clone(), refusal));
                    Ok(())
                }
                _ => Err(error),
            }
        };
        if let Some(key) = read_key(home)? {
            catalog.key = key;
            // An authenticated catalog was here before this open (a key
            // alone may be another state's, in a shared keychain).
            catalog.key_found = path.exists();
            let opened = placed.track(created, &[path, &lock], || {
                Ok(JsonFileCatalogStore::open_authenticated(
                    path,
                    catalog.catalog_key()?,
                    catalog.anchor.clone(),
                ))
            })?;
            match opened {
                Ok(store) => catalog.store = Some(Arc::new(store)),
                Err(e) => refused(e, &mut catalog)?,
            }
            return Ok(catalog);
        }
        catalog.key = random_key()?;
        catalog.made_key = true;
        if !path.exists() {
            // A first open: the catalog is authenticated from the start.
            let store = placed.track(created, &[path, &lock], || {
                JsonFileCatalogStore::open_authenticated(
                    path,
                    catalog.catalog_key()?,
                    catalog.anchor.clone(),
                )
                .map_err(|e| catalog.refusal(e, home))
            })?;
            catalog.store = Some(Arc::new(store));
            return Ok(catalog);
        }
        // A catalog without a key: one from before authentication (to
        // upgrade), or an authenticated one whose key is lost. A fresh key
        // tells them apart without writing anything.
        let probe = created.track(&[&lock], || {
            Ok(JsonFileCatalogStore::open_authenticated(
                path,
                catalog.catalog_key()?,
                catalog.anchor.clone(),
            ))
        })?;
        match probe {
            Err(CatalogError::Unauthenticated { .. }) => {
                let anchored = catalog
                    .anchor
                    .load()
                    .map_err(|source| OpenError::CatalogAnchor {
                        catalog: path.to_owned(),
                        anchor: catalog.anchor_location.clone(),
                        source,
                    })?
                    .is_some();
                if !anchored {
                    catalog.pending = Some(Pending::Upgrade);
                    return Ok(catalog);
                }
                let error = OpenError::CatalogDowngraded {
                    catalog: path.to_owned(),
                    evidence: format!("its anchor ({})", catalog.anchor_location),
                };
                match (accept, acceptable(&error)) {
                    (Some(by), Some(refusal)) => {
                        catalog.pending = Some(Pending::Accept(by.clone(), refusal));
                        Ok(catalog)
                    }
                    _ => Err(error),
                }
            }
            Err(CatalogError::Tampered { .. }) | Ok(_) => Err(OpenError::CatalogKeyMissing {
                catalog: path.to_owned(),
                key: home.describe(),
            }),
            Err(e) => Err(catalog.refusal(e, home)),
        }
    }

    /// Makes the change that waited (recording it in `audit` first) and
    /// opens the store. `home` is where a key made for it is kept.
    pub(crate) fn finish(
        &mut self,
        audit: &dyn AuditSink,
        home: &KeyHome<'_>,
        created: &mut Created,
    ) -> Result<Option<Recovery>, OpenError> {
        let Some(pending) = self.pending.take() else {
            return Ok(None);
        };
        let (by, purpose, request_id) = match &pending {
            Pending::Upgrade => (
                Requester::new(super::PRELOAD_AGENT).map_err(super::internal)?,
                Purpose::new("seal the catalog from before authentication (upgrade)")
                    .map_err(super::internal)?,
                "catalog-upgrade:authenticated".to_owned(),
            ),
            Pending::Accept(by, _) => (
                by.actor().clone(),
                by.reason().clone(),
                "accept-rollback:catalog".to_owned(),
            ),
        };
        let mut record = AuditRecord::new(
            Timestamp::now(),
            request_id,
            HandleId::parse_bare(MARKER).map_err(super::internal)?,
            by,
            purpose.as_str().to_owned(),
        );
        record.action = Action::AcceptRollback;
        record.outcome = Outcome::Applied;
        audit.record(record)?;
        // The key first: a catalog sealed under a key that is not kept
        // could never be opened again.
        self.persist_key(home, created)?;
        let (store, _overridden) = JsonFileCatalogStore::accept_authenticated(
            &self.path,
            self.catalog_key()?,
            self.anchor.clone(),
        )
        .map_err(|e| self.refusal(e, home))?;
        self.store = Some(Arc::new(store));
        Ok(Some(match pending {
            Pending::Upgrade => Recovery::CatalogUpgraded(self.path.clone()),
            Pending::Accept(_, refusal) => Recovery::CatalogAccepted {
                catalog: self.path.clone(),
                refusal,
            },
        }))
    }

    /// The open store.
    pub(crate) fn store(&self) -> Result<Arc<JsonFileCatalogStore>, OpenError> {
        self.store
            .clone()
            .ok_or_else(|| super::internal("the catalog was used before it was opened"))
    }

    /// Whether the catalog and its key were there before this open (so
    /// the state was written by a version that authenticates its catalog
    /// and keeps an index of its audit logs).
    pub(crate) fn key_found(&self) -> bool {
        self.key_found
    }

    /// Keeps a key this open made, in `home` (once).
    pub(crate) fn persist_key(
        &mut self,
        home: &KeyHome<'_>,
        created: &mut Created,
    ) -> Result<(), OpenError> {
        if !self.made_key {
            return Ok(());
        }
        match home {
            KeyHome::Provider { provider, .. } => {
                provider.write(&key_locator()?, &SecretBytes::from(self.key.to_vec()))?;
            }
            KeyHome::File { path, key } => {
                let fail = |reason: String| OpenError::KeyFile {
                    what: "catalog key file",
                    path: path.clone(),
                    key: key.clone(),
                    reason,
                };
                let mut text = Zeroizing::new(hex(&self.key));
                text.push('\n');
                created.track(&[path], || {
                    let mut file = open_private(path, true)
                        .map_err(|e| fail(format!("cannot be created ({e})")))?;
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|e| fail(format!("cannot be written ({e})")))
                })?;
            }
        }
        self.made_key = false;
        Ok(())
    }

    fn catalog_key(&self) -> Result<CatalogKey, OpenError> {
        CatalogKey::new(SecretBytes::from(self.key.to_vec())).map_err(OpenError::Catalog)
    }

    /// A catalog error as an open error that names the file and the fix.
    fn refusal(&self, error: CatalogError, home: &KeyHome<'_>) -> OpenError {
        match error {
            CatalogError::Tampered { path } => OpenError::CatalogTampered {
                catalog: path,
                key: home.describe(),
            },
            CatalogError::Unauthenticated { path } => OpenError::CatalogDowngraded {
                catalog: path,
                evidence: format!("its key ({})", home.describe()),
            },
            CatalogError::Anchor { path, source }
                if source.is_acceptable() || matches!(source, AnchorError::FileMissing { .. }) =>
            {
                OpenError::CatalogAnchor {
                    catalog: path,
                    anchor: self.anchor_location.clone(),
                    source,
                }
            }
            other => OpenError::Catalog(other),
        }
    }
}

/// The refusal text, when `error` is one `accept_rollback` may override.
fn acceptable(error: &OpenError) -> Option<String> {
    match error {
        OpenError::CatalogAnchor { source, .. } => Some(source.to_string()),
        OpenError::CatalogDowngraded { evidence, .. } => Some(format!(
            "it carries no MAC, but this state's catalog is authenticated ({evidence} exists)"
        )),
        _ => None,
    }
}

fn key_locator() -> Result<Locator, OpenError> {
    Locator::new(KEY_LOCATOR).map_err(super::internal)
}

/// The key kept in `home`, if there is one.
fn read_key(home: &KeyHome<'_>) -> Result<Option<Zeroizing<Vec<u8>>>, OpenError> {
    let bytes = match home {
        KeyHome::Provider { provider, .. } => {
            match provider.read(&key_locator()?, VersionSelector::Latest) {
                Ok(read) => Zeroizing::new(read.value.expose_secret().to_vec()),
                Err(ProviderError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        KeyHome::File { path, key } => match super::keyfile::read_small(path, 256) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(OpenError::KeyFile {
                    what: "catalog key file",
                    path: path.clone(),
                    key: key.clone(),
                    reason: format!("cannot be read ({e})"),
                });
            }
        },
    };
    parse_key(&bytes)
        .map(Some)
        .ok_or_else(|| OpenError::CatalogKeyInvalid {
            key: home.describe(),
            len: bytes.len(),
        })
}

/// 32 raw bytes exactly, or 64 hex digits with an optional newline.
fn parse_key(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if bytes.len() == KEY_LEN {
        return Some(Zeroizing::new(bytes.to_vec()));
    }
    let text = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    if text.len() != KEY_LEN * 2 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Zeroizing::new(Vec::with_capacity(KEY_LEN));
    for pair in text.chunks_exact(2) {
        out.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_key() -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let mut key = Zeroizing::new(vec![0u8; KEY_LEN]);
    getrandom::fill(&mut key).map_err(|e| OpenError::AuditKeys {
        reason: format!("the OS random number generator failed: {e}"),
    })?;
    Ok(key)
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_raw_or_hex_and_nothing_else() {
        let mut raw = [7u8; KEY_LEN];
        raw[KEY_LEN - 1] = b'\n';
        assert_eq!(&parse_key(&raw).unwrap()[..], &raw[..]);
        let text = format!("{}\n", hex(&raw));
        assert_eq!(&parse_key(text.as_bytes()).unwrap()[..], &raw[..]);
        assert!(parse_key(&raw[1..]).is_none());
        assert!(parse_key(&[b'g'; KEY_LEN * 2]).is_none());
    }
}
