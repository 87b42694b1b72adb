//! Where the anchors of a state directory are kept: the head of every audit
//! log and of the single-host store, checked on open so a file cut short or
//! rolled back is refused (see `tyrum_secrets_core::anchor`).
//!
//! - `file`: a file beside the anchored one (`<file>.anchor`), or in
//!   `anchor_dir` as `<state id>-<name>.anchor`. Beside, it catches one
//!   file restored or cut short on its own; in an `anchor_dir` elsewhere, the
//!   state directory rolled back whole too.
//! - `keychain`: a value in the OS keychain at
//!   `tyrum-secrets-internal/anchors/<state id>/<name>`.
//!
//! The state id (random, in the state record) keeps apart the anchors of two
//! state directories that share a keychain namespace or an anchor
//! directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tyrum_secrets_core::{Anchor, Locator, SecretProvider};

use super::OpenError;
use super::state::{Created, create_dir};
use crate::config::AnchorPlace;

/// The locator prefix of anchors kept in a provider.
const PROVIDER_PREFIX: &str = "tyrum-secrets-internal/anchors";

/// Where one kind of anchor is kept.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// A file beside the anchored one, or in `dir` with names that start
    /// with `prefix` (the state id).
    File {
        dir: Option<PathBuf>,
        prefix: String,
    },
    /// A value of `provider` under `prefix`; `what` names the provider.
    Provider {
        provider: Arc<dyn SecretProvider>,
        prefix: String,
        what: String,
    },
}

/// One anchor, and where it is (for tracking what an open created).
pub(crate) struct Placed {
    pub(crate) anchor: Anchor,
    /// Where it is, for the open report.
    pub(crate) location: String,
    /// The anchor file, for a file anchor.
    pub(crate) file: Option<PathBuf>,
    /// The provider entry, for an anchor kept in a provider.
    pub(crate) entry: Option<(Arc<dyn SecretProvider>, Locator)>,
}

impl Placed {
    /// Runs `step` (which may create the anchor), tracking the anchor and
    /// `paths` in `created`.
    pub(crate) fn track<T>(
        &self,
        created: &mut Created,
        paths: &[&Path],
        step: impl FnOnce() -> Result<T, OpenError>,
    ) -> Result<T, OpenError> {
        let mut all: Vec<&Path> = paths.to_vec();
        if let Some(file) = &self.file {
            all.push(file);
        }
        let entry = self.entry.as_ref().map(|(p, l)| (p, l));
        created.track_with(&all, entry, step)
    }
}

impl Place {
    /// The place `place` names for a state (`state_id`), with `keychain`
    /// the keychain provider when the place is the keychain.
    pub(crate) fn new(
        place: AnchorPlace,
        anchor_dir: Option<&Path>,
        state_id: Option<&str>,
        keychain: impl FnOnce() -> Result<(Arc<dyn SecretProvider>, String), OpenError>,
    ) -> Result<Place, OpenError> {
        Ok(match place {
            AnchorPlace::Keychain => {
                let (provider, what) = keychain()?;
                Place::Provider {
                    provider,
                    prefix: match state_id {
                        Some(id) => format!("{PROVIDER_PREFIX}/{id}"),
                        None => PROVIDER_PREFIX.to_owned(),
                    },
                    what,
                }
            }
            _ => Place::File {
                dir: anchor_dir.map(Path::to_owned),
                prefix: state_id.map(|id| format!("{id}-")).unwrap_or_default(),
            },
        })
    }

    /// The anchor of `file`, named `name` where it is not beside the file
    /// (`<state id>-<name>.anchor` in the anchor directory,
    /// `<prefix>/<state id>/<name>` in a provider).
    pub(crate) fn anchor(&self, file: &Path, name: &str) -> Result<Placed, OpenError> {
        Ok(match self {
            Place::File { dir: None, .. } => {
                let path = tyrum_secrets_core::FileAnchor::beside(file)
                    .path()
                    .to_owned();
                Placed {
                    anchor: Anchor::file(path.clone()),
                    location: format!("the file {}", path.display()),
                    file: Some(path),
                    entry: None,
                }
            }
            Place::File {
                dir: Some(dir),
                prefix,
            } => {
                let path = dir.join(format!("{prefix}{name}.anchor"));
                Placed {
                    anchor: Anchor::file(path.clone()),
                    location: format!("the file {}", path.display()),
                    file: Some(path),
                    entry: None,
                }
            }
            Place::Provider {
                provider,
                prefix,
                what,
            } => {
                let locator =
                    Locator::new(format!("{prefix}/{name}")).map_err(|e| OpenError::AuditKeys {
                        reason: format!("internal: anchor locator: {e}"),
                    })?;
                Placed {
                    anchor: Anchor::provider(Arc::clone(provider), locator.clone()),
                    location: format!("{what}, entry {locator}"),
                    file: None,
                    entry: Some((Arc::clone(provider), locator)),
                }
            }
        })
    }

    /// Creates the anchor directory if this place has one.
    pub(crate) fn prepare(&self, created: &mut Created) -> Result<(), OpenError> {
        if let Place::File { dir: Some(dir), .. } = self {
            create_dir(dir, created)?;
        }
        Ok(())
    }
}
