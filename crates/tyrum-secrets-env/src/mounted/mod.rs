//! Secrets from a mounted Kubernetes Secret volume.
//!
//! kubelet writes a Secret volume with its atomic writer:
//!
//! ```text
//! /var/run/secrets/app/
//!   ..2026_11_28_12_00_00.123456789/   the data of one version: real files
//!       username
//!       password
//!   ..data -> ..2026_11_28_12_00_00.123456789
//!   username -> ..data/username        what the pod sees
//!   password -> ..data/password
//! ```
//!
//! On update it writes a new timestamped directory, points a `..data_tmp`
//! symlink at it, renames that over `..data` (atomic), fixes the visible
//! symlinks and removes the old directory. [`MountedSecretProvider`] reads
//! `..data` once per read, then reads the files under that concrete
//! directory, so one read never mixes two versions, and it retries when the
//! directory vanished under it.

mod error;
mod file;

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tyrum_secrets_core::{
    Capabilities, Locator, Persistence, ProviderError, SecretBytes, SecretProvider, Version,
    VersionInfo, VersionSelector, VersionState, VersionedSecret,
};

pub use error::{FileKind, MountError};
use file::{FileError, Start, read_bounded_beneath, relative_path};

/// The symlink kubelet swaps on every update.
const DATA_LINK: &str = "..data";
/// Reads that keep finding `..data` moved give up after this many attempts.
const MAX_ATTEMPTS: usize = 64;
/// How many data directories the provider remembers versions for.
const REMEMBERED_VERSIONS: usize = 64;
/// `list` descends at most this deep.
const MAX_DEPTH: usize = 16;

/// The default largest file read: 1 MiB, the Kubernetes limit for a whole
/// Secret.
pub const DEFAULT_MAX_FILE_LEN: usize = 1 << 20;

/// Whether values at a mount follow updates of the Kubernetes Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rotation {
    /// The mount has kubelet's `..data` layout: updates to the Secret show
    /// up on the next read, as a new version.
    FollowsDataSwap,
    /// Plain files (a `subPath` mount, or a directory written by hand):
    /// kubelet never updates them, so a rotated Secret is seen only after the
    /// pod restarts.
    Static,
}

/// A read-only provider over a mounted Kubernetes Secret directory.
///
/// Locators are paths relative to the mount (`password`, or `tls/key.pem`
/// for a projected `items[].path`). See the crate README for how versions
/// map to kubelet's data directories.
///
/// ```
/// use tyrum_secrets_env::{MountedSecretProvider, Rotation};
/// use tyrum_secrets_core::{ExposeSecret, Locator, SecretProvider, VersionSelector};
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("api-key"), b"sk-mounted-value")?;
/// let provider = MountedSecretProvider::open(dir.path())?;
/// let got = provider.read(&Locator::new("api-key")?, VersionSelector::Latest)?;
/// assert_eq!(got.value.expose_secret(), b"sk-mounted-value");
/// assert_eq!(provider.rotation()?, Rotation::Static); // no ..data: plain files
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MountedSecretProvider {
    root: PathBuf,
    max_file_len: usize,
    book: Mutex<VersionBook>,
}

/// Several values read from one data directory, so from one version.
pub struct MountedSnapshot {
    /// The version they all belong to.
    pub version: Version,
    /// The values, in the order the locators were given.
    pub values: Vec<SecretBytes>,
}

impl fmt::Debug for MountedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountedSnapshot")
            .field("version", &self.version)
            .field("values", &format_args!("[{} REDACTED]", self.values.len()))
            .finish()
    }
}

/// Data directory names seen, and the version each was given.
#[derive(Default)]
struct VersionBook {
    seen: VecDeque<(OsString, Version)>,
    last: Option<Version>,
}

impl VersionBook {
    fn version_of(&self, target: &OsString) -> Option<Version> {
        self.seen
            .iter()
            .find(|(name, _)| name == target)
            .map(|(_, version)| *version)
    }

    fn target_of(&self, version: Version) -> Option<OsString> {
        self.seen
            .iter()
            .find(|(_, v)| *v == version)
            .map(|(name, _)| name.clone())
    }

    fn assign(&mut self, target: OsString) -> Version {
        let version = match self.last {
            // Saturates at u64::MAX, which 64-bit counters of swaps never reach.
            Some(last) => last.next().unwrap_or(last),
            None => Version::FIRST,
        };
        self.seen.push_back((target, version));
        if self.seen.len() > REMEMBERED_VERSIONS {
            self.seen.pop_front();
        }
        self.last = Some(version);
        version
    }
}

/// What `..data` says about the mount right now.
#[derive(PartialEq, Eq)]
enum Layout {
    /// kubelet's layout; the name of the current data directory.
    Kubelet(OsString),
    /// No `..data`: plain files.
    Plain,
}

/// How one attempt at reading under a data directory ended.
enum Attempt {
    Missing(usize),
    Changed,
    Failed(MountError),
}

impl MountedSecretProvider {
    /// Opens the mount at `root`. The data directory current now is
    /// version 1.
    ///
    /// # Errors
    /// [`MountError::RootMissing`], [`MountError::RootNotADirectory`],
    /// [`MountError::DataLinkInvalid`] or [`MountError::Io`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, MountError> {
        let root = root.into();
        match std::fs::metadata(&root) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(MountError::RootNotADirectory { path: root }),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(MountError::RootMissing { path: root });
            }
            Err(source) => {
                return Err(MountError::Io {
                    context: format!("opening secret mount {}", root.display()),
                    source,
                });
            }
        }
        let provider = Self {
            root,
            max_file_len: DEFAULT_MAX_FILE_LEN,
            book: Mutex::default(),
        };
        if let Layout::Kubelet(target) = provider.layout()? {
            provider.book().assign(target);
        }
        Ok(provider)
    }

    /// Reads files of at most `max` bytes; larger ones fail with
    /// [`ProviderError::ValueTooLarge`].
    pub fn with_max_file_len(mut self, max: usize) -> Self {
        self.max_file_len = max;
        self
    }

    /// The mount root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this mount follows updates of its Secret.
    ///
    /// # Errors
    /// [`MountError::DataLinkInvalid`] or [`MountError::Io`].
    pub fn rotation(&self) -> Result<Rotation, MountError> {
        Ok(match self.layout()? {
            Layout::Kubelet(_) => Rotation::FollowsDataSwap,
            Layout::Plain => Rotation::Static,
        })
    }

    /// Reads several locators from the same version, as a username and a
    /// password that must match. Fails as a single read would for the first
    /// locator that fails.
    ///
    /// # Errors
    /// As [`SecretProvider::read`]; a `Backend` error with
    /// [`MountError::NoLocators`] for an empty slice.
    pub fn read_together(
        &self,
        locators: &[Locator],
        version: VersionSelector,
    ) -> Result<MountedSnapshot, ProviderError> {
        let (version, values) = self.read_many(locators, version)?;
        Ok(MountedSnapshot { version, values })
    }

    fn book(&self) -> MutexGuard<'_, VersionBook> {
        // Every mutation of the book is a push and a pop that cannot panic
        // half-way, so a poisoned lock still guards a consistent book.
        self.book
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn layout(&self) -> Result<Layout, MountError> {
        let link = self.root.join(DATA_LINK);
        match std::fs::read_link(&link) {
            Ok(target) => {
                let mut components = target.components();
                match (components.next(), components.next()) {
                    (Some(Component::Normal(name)), None) => Ok(Layout::Kubelet(name.to_owned())),
                    _ => Err(MountError::DataLinkInvalid { path: link }),
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Layout::Plain),
            Err(e) if e.kind() == ErrorKind::InvalidInput => {
                // `..data` exists but is not a symlink.
                Err(MountError::DataLinkInvalid { path: link })
            }
            Err(source) => Err(MountError::Io {
                context: format!("reading {}", link.display()),
                source,
            }),
        }
    }

    /// The version of data directory `target`, giving it the next one if it
    /// is new and still current; `None` if it is new but already replaced
    /// (its read is retried, so versions follow swap order).
    fn version_of(&self, target: &OsString) -> Result<Option<Version>, MountError> {
        let mut book = self.book();
        if let Some(version) = book.version_of(target) {
            return Ok(Some(version));
        }
        match self.layout()? {
            Layout::Kubelet(now) if now == *target => Ok(Some(book.assign(now))),
            _ => Ok(None),
        }
    }

    fn read_many(
        &self,
        locators: &[Locator],
        selector: VersionSelector,
    ) -> Result<(Version, Vec<SecretBytes>), MountError> {
        let paths = locators
            .iter()
            .map(|locator| {
                relative_path(locator).map_err(|reason| MountError::InvalidLocator {
                    locator: locator.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(first) = locators.first() else {
            return Err(MountError::NoLocators);
        };
        for _ in 0..MAX_ATTEMPTS {
            let current = match self.layout()? {
                Layout::Plain => return self.read_plain(locators, &paths, selector),
                Layout::Kubelet(current) => current,
            };
            let (target, pinned) = match selector {
                VersionSelector::Latest => (current, None),
                VersionSelector::Exact(version) => match self.book().target_of(version) {
                    Some(target) => (target, Some(version)),
                    None => return Err(version_not_found(first, version)),
                },
            };
            let dir = self.root.join(&target);
            match self.read_under(&dir, &paths) {
                Ok(values) => match pinned {
                    Some(version) => return Ok((version, values)),
                    None => match self.version_of(&target)? {
                        Some(version) => return Ok((version, values)),
                        None => continue,
                    },
                },
                Err(Attempt::Missing(index)) => {
                    let still_current = self.layout()? == Layout::Kubelet(target);
                    match pinned {
                        // The key is not in the current version: it is not
                        // stored at all.
                        _ if still_current => {}
                        Some(version) => {
                            return Err(version_not_found(&locators[index], version));
                        }
                        // The directory was replaced (and perhaps removed)
                        // under the read: read the new one.
                        None => continue,
                    }
                    return Err(self.missing(&locators[index], &paths[index]));
                }
                Err(Attempt::Changed) => continue,
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(MountError::KeptChanging {
            path: self.root.clone(),
            attempts: MAX_ATTEMPTS,
        })
    }

    fn read_plain(
        &self,
        locators: &[Locator],
        paths: &[PathBuf],
        selector: VersionSelector,
    ) -> Result<(Version, Vec<SecretBytes>), MountError> {
        if let VersionSelector::Exact(version) = selector
            && version != Version::FIRST
            && let Some(first) = locators.first()
        {
            return Err(version_not_found(first, version));
        }
        let mut values = Vec::with_capacity(paths.len());
        for (index, path) in paths.iter().enumerate() {
            let full = self.root.join(path);
            // The same no-follow, per-component reads as under a data
            // directory: a symlink planted in a plain mount is refused, not
            // followed to a file outside it.
            match read_bounded_beneath(&self.root, Start::Root, path, self.max_file_len) {
                Ok(value) => values.push(value),
                Err(FileError::Missing) => return Err(self.missing(&locators[index], path)),
                Err(FileError::Changed) => {
                    return Err(MountError::KeptChanging {
                        path: full,
                        attempts: 1,
                    });
                }
                Err(e) => return Err(self.file_error(e, full)),
            }
        }
        Ok((Version::FIRST, values))
    }

    fn read_under(&self, dir: &Path, paths: &[PathBuf]) -> Result<Vec<SecretBytes>, Attempt> {
        let mut values = Vec::with_capacity(paths.len());
        for (index, path) in paths.iter().enumerate() {
            // Regular files only inside the data directory: kubelet writes
            // no symlinks there, so one is refused, never followed, whether
            // it stands for the file, a directory on the way, or the data
            // directory itself.
            match read_bounded_beneath(dir, Start::DataDirectory, path, self.max_file_len) {
                Ok(value) => values.push(value),
                Err(FileError::Missing) => return Err(Attempt::Missing(index)),
                Err(FileError::Changed) => return Err(Attempt::Changed),
                Err(e) => return Err(Attempt::Failed(self.file_error(e, self.root.join(path)))),
            }
        }
        Ok(values)
    }

    fn file_error(&self, error: FileError, path: PathBuf) -> MountError {
        match error {
            FileError::NotAFile(found) => MountError::NotAFile { path, found },
            FileError::TooLarge { len } => MountError::TooLarge {
                path,
                len,
                max: self.max_file_len,
            },
            FileError::PermissionDenied(source) => MountError::PermissionDenied { path, source },
            FileError::Missing | FileError::Changed => {
                MountError::KeptChanging { path, attempts: 1 }
            }
            FileError::Io(source) => MountError::Io {
                context: format!("reading {}", path.display()),
                source,
            },
        }
    }

    /// The error for a locator with no file: a dangling visible symlink, or
    /// simply not found.
    fn missing(&self, locator: &Locator, path: &Path) -> MountError {
        let mut candidates = vec![self.root.join(path)];
        if let Some(Component::Normal(first)) = path.components().next() {
            candidates.push(self.root.join(first));
        }
        for candidate in candidates {
            let is_link = std::fs::symlink_metadata(&candidate)
                .is_ok_and(|metadata| metadata.file_type().is_symlink());
            if is_link && std::fs::metadata(&candidate).is_err() {
                return MountError::DanglingSymlink { path: candidate };
            }
        }
        MountError::NotFound {
            locator: locator.clone(),
        }
    }

    fn list_once(&self) -> Result<Option<Vec<Locator>>, MountError> {
        let (dir, target) = match self.layout()? {
            Layout::Plain => (self.root.clone(), None),
            Layout::Kubelet(target) => (self.root.join(&target), Some(target)),
        };
        if target.is_some()
            && std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink())
        {
            // Reads refuse a data directory that is a symlink; so does list,
            // rather than naming files from wherever it points.
            return Err(MountError::NotAFile {
                path: dir,
                found: FileKind::Symlink,
            });
        }
        let mut found = Vec::new();
        let mut visited = HashSet::new();
        match walk(&dir, "", 0, &mut visited, &mut found) {
            Ok(()) => {
                found.sort();
                Ok(Some(found))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => match target {
                Some(target) if self.layout()? != Layout::Kubelet(target.clone()) => Ok(None),
                _ => Err(MountError::Io {
                    context: format!("listing {}", dir.display()),
                    source: e,
                }),
            },
            Err(source) => Err(MountError::Io {
                context: format!("listing {}", dir.display()),
                source,
            }),
        }
    }
}

fn version_not_found(locator: &Locator, version: Version) -> MountError {
    MountError::VersionNotFound {
        locator: locator.clone(),
        version,
    }
}

/// Collects the regular files under `dir` as locators, skipping kubelet's
/// `..` names at the top, symlinks (reads refuse them, so listing them
/// would name what cannot be read) and anything that is not a valid
/// locator.
///
/// Each directory is entered once (`visited` holds device and inode), so
/// a bind mount looping back to an ancestor cannot multiply the walk
/// before the depth cap stops it.
fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    visited: &mut HashSet<(u64, u64)>,
    found: &mut Vec<Locator>,
) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let metadata = std::fs::metadata(dir)?;
    if !visited.insert((metadata.dev(), metadata.ino())) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if depth == 0 && name.starts_with("..") {
            continue;
        }
        let file_type = entry.file_type()?;
        let relative = format!("{prefix}{name}");
        if file_type.is_dir() {
            walk(
                &entry.path(),
                &format!("{relative}/"),
                depth + 1,
                visited,
                found,
            )?;
        } else if file_type.is_file()
            && let Ok(locator) = Locator::new(relative)
        {
            found.push(locator);
        }
    }
    Ok(())
}

impl fmt::Debug for MountedSecretProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountedSecretProvider")
            .field("root", &self.root)
            .field("max_file_len", &self.max_file_len)
            .field("latest_version_seen", &self.book().last)
            .finish()
    }
}

impl SecretProvider for MountedSecretProvider {
    fn capabilities(&self) -> Capabilities {
        Capabilities::read_only(Persistence::External, false).with_max_value_len(self.max_file_len)
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let (version, mut values) = self.read_many(std::slice::from_ref(locator), version)?;
        match values.pop() {
            Some(value) => Ok(VersionedSecret { version, value }),
            // read_many returns one value per locator.
            None => Err(ProviderError::NotFound {
                locator: locator.clone(),
            }),
        }
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        for _ in 0..MAX_ATTEMPTS {
            if let Some(found) = self.list_once()? {
                return Ok(found);
            }
        }
        Err(MountError::KeptChanging {
            path: self.root.clone(),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// Only the current version: kubelet keeps one data directory.
    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        let current = self.read(locator, VersionSelector::Latest)?;
        Ok(vec![VersionInfo {
            version: current.version,
            state: VersionState::Live,
        }])
    }
}
