//! Secrets from environment variables.
//!
//! [`EnvLoader`] says which variables hold secrets (an explicit map from
//! locator to variable name, a prefix rule, or both) and loads them once into
//! an [`EnvProvider`]: a read-only snapshot that keeps each value as
//! [`SecretBytes`], wiped on drop. With
//! [`remove_from_environment`](EnvLoader::remove_from_environment) the loaded
//! variables are then removed from the process environment, so child
//! processes spawned afterwards do not inherit them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use tyrum_secrets_core::{
    Capabilities, ExposeSecret, Locator, Persistence, ProviderError, SecretBytes, SecretProvider,
    Version, VersionInfo, VersionSelector, VersionState, VersionedSecret,
};
use zeroize::Zeroize;

/// Says which environment variables hold secrets, then loads them.
///
/// ```
/// use tyrum_secrets_env::EnvLoader;
/// use tyrum_secrets_core::{ExposeSecret, Locator, SecretProvider, VersionSelector};
///
/// let vars = [("APP_SECRET_OPENAI".into(), "sk-from-env-1234".into()),
///             ("HOME".into(), "/root".into())];
/// let provider = EnvLoader::new().prefix("APP_SECRET_").load_from(vars)?;
/// let got = provider.read(&Locator::new("OPENAI")?, VersionSelector::Latest)?;
/// assert_eq!(got.value.expose_secret(), b"sk-from-env-1234");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct EnvLoader {
    variables: Vec<(Locator, String)>,
    prefixes: Vec<String>,
    remove: bool,
}

impl EnvLoader {
    /// A loader that maps nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `locator` to the variable `name`. The variable must be set when
    /// the loader runs, or loading fails with [`EnvError::Missing`].
    pub fn variable(mut self, locator: Locator, name: impl Into<String>) -> Self {
        self.variables.push((locator, name.into()));
        self
    }

    /// Maps every variable whose name starts with `prefix` (case-sensitive)
    /// to the locator made of the rest of its name: with prefix
    /// `TYRUM_SECRET_`, the variable `TYRUM_SECRET_OPENAI_KEY` is the locator
    /// `OPENAI_KEY`. Variables whose rest is empty, not UTF-8 or not a valid
    /// [`Locator`] are skipped and counted in the provider's `Debug` output.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// After loading, removes every loaded variable from the process
    /// environment so that child processes spawned later do not inherit it.
    ///
    /// Only [`load`](Self::load) removes, and only while the process has a
    /// single thread (checked through `/proc/self/task` on Linux; refused
    /// with [`EnvError::NotSingleThreaded`] or
    /// [`EnvError::ThreadCountUnknown`] otherwise). Load secrets at the top
    /// of `main`, before starting an async runtime or any thread. The crate
    /// README explains why.
    pub fn remove_from_environment(mut self, remove: bool) -> Self {
        self.remove = remove;
        self
    }

    /// Loads from this process's environment.
    ///
    /// # Errors
    /// [`EnvError::Missing`] for a mapped variable that is not set,
    /// [`EnvError::InvalidName`], [`EnvError::DuplicateLocator`], and when
    /// removal was asked for, [`EnvError::NotSingleThreaded`] or
    /// [`EnvError::ThreadCountUnknown`] (nothing is loaded or removed then).
    pub fn load(self) -> Result<EnvProvider, EnvError> {
        if self.remove {
            // Refuse before reading anything, so a refused load has no effect.
            ensure_single_threaded()?;
        }
        let remove = self.remove;
        let mut provider = self.build(std::env::vars_os())?;
        if remove {
            let names: Vec<OsString> = provider
                .entries
                .values()
                .map(|entry| entry.variable.clone())
                .collect();
            dangerous_remove_vars_single_threaded(&names)?;
            provider.removed_from_environment = true;
        }
        Ok(provider)
    }

    /// Loads from the given variables instead of the process environment:
    /// for tests, and for callers that read the environment themselves.
    ///
    /// # Errors
    /// As [`load`](Self::load); [`EnvError::RemovalNeedsProcessEnvironment`]
    /// when [`remove_from_environment`](Self::remove_from_environment) is set.
    pub fn load_from(
        self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<EnvProvider, EnvError> {
        if self.remove {
            return Err(EnvError::RemovalNeedsProcessEnvironment);
        }
        self.build(vars)
    }

    fn build(
        self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<EnvProvider, EnvError> {
        for (_, name) in &self.variables {
            check_name(name)?;
        }
        let mut wanted: BTreeMap<OsString, Vec<Locator>> = BTreeMap::new();
        for (locator, name) in &self.variables {
            wanted
                .entry(OsString::from(name))
                .or_default()
                .push(locator.clone());
        }
        let mut entries: BTreeMap<Locator, Entry> = BTreeMap::new();
        let mut skipped = 0usize;
        for (name, value) in vars {
            let locators = match wanted.remove(&name) {
                Some(locators) => locators,
                None => match self.prefix_locator(&name) {
                    PrefixMatch::Locator(locator) => vec![locator],
                    PrefixMatch::Skipped => {
                        skipped += 1;
                        continue;
                    }
                    // Not ours: dropped unwiped, as it still sits in the
                    // environment the process was started with.
                    PrefixMatch::NoMatch => continue,
                },
            };
            let value = secret_from_os(value);
            for locator in locators {
                let entry = Entry {
                    variable: name.clone(),
                    value: SecretBytes::from(value.expose_secret().to_vec()),
                };
                if let Some(earlier) = entries.insert(locator.clone(), entry) {
                    return Err(EnvError::DuplicateLocator {
                        locator,
                        variable: earlier.variable.to_string_lossy().into_owned(),
                    });
                }
            }
        }
        if let Some((name, _)) = wanted.into_iter().next() {
            return Err(EnvError::Missing {
                name: name.to_string_lossy().into_owned(),
            });
        }
        Ok(EnvProvider {
            entries,
            skipped_names: skipped,
            removed_from_environment: false,
        })
    }

    fn prefix_locator(&self, name: &OsStr) -> PrefixMatch {
        let bytes = name.as_bytes();
        let Some(prefix) = self
            .prefixes
            .iter()
            .find(|prefix| bytes.starts_with(prefix.as_bytes()))
        else {
            return PrefixMatch::NoMatch;
        };
        if bytes.contains(&b'=') || bytes.contains(&0) {
            // Cannot be removed from the environment again: not loaded.
            return PrefixMatch::Skipped;
        }
        let rest = &bytes[prefix.len()..];
        match std::str::from_utf8(rest).ok().map(Locator::new) {
            Some(Ok(locator)) => PrefixMatch::Locator(locator),
            _ => PrefixMatch::Skipped,
        }
    }
}

enum PrefixMatch {
    Locator(Locator),
    Skipped,
    NoMatch,
}

/// Moves an environment value into secret bytes, wiping the intermediate.
fn secret_from_os(value: OsString) -> SecretBytes {
    let mut bytes = value.into_vec();
    // `to_vec` allocates exactly `len`, so `SecretBytes::from` does not
    // reallocate and leave an unwiped copy behind.
    let secret = SecretBytes::from(bytes.as_slice().to_vec());
    bytes.zeroize();
    secret
}

fn check_name(name: &str) -> Result<(), EnvError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(EnvError::InvalidName {
            name: name.escape_debug().to_string(),
        });
    }
    Ok(())
}

/// A read-only provider over environment variables loaded once.
///
/// Every locator has exactly one version, [`Version::FIRST`]: the process
/// environment does not change under a running process, and a Kubernetes
/// Secret exposed as env vars keeps its old value until the pod restarts.
/// `Debug` shows locators and counts, never a value.
pub struct EnvProvider {
    entries: BTreeMap<Locator, Entry>,
    skipped_names: usize,
    removed_from_environment: bool,
}

struct Entry {
    variable: OsString,
    value: SecretBytes,
}

impl EnvProvider {
    /// Whether the loaded variables were removed from the process
    /// environment.
    pub fn removed_from_environment(&self) -> bool {
        self.removed_from_environment
    }

    /// The name of the variable a locator was loaded from.
    pub fn variable_name(&self, locator: &Locator) -> Option<&OsStr> {
        self.entries
            .get(locator)
            .map(|entry| entry.variable.as_os_str())
    }

    fn entry(&self, locator: &Locator) -> Result<&Entry, ProviderError> {
        self.entries
            .get(locator)
            .ok_or_else(|| ProviderError::NotFound {
                locator: locator.clone(),
            })
    }
}

impl fmt::Debug for EnvProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProvider")
            .field("locators", &self.entries.keys().collect::<Vec<_>>())
            .field("skipped_names", &self.skipped_names)
            .field("removed_from_environment", &self.removed_from_environment)
            .finish()
    }
}

impl SecretProvider for EnvProvider {
    fn capabilities(&self) -> Capabilities {
        Capabilities::read_only(Persistence::External, false)
    }

    fn read(
        &self,
        locator: &Locator,
        version: VersionSelector,
    ) -> Result<VersionedSecret, ProviderError> {
        let entry = self.entry(locator)?;
        if let VersionSelector::Exact(v) = version
            && v != Version::FIRST
        {
            return Err(ProviderError::VersionNotFound {
                locator: locator.clone(),
                version: v,
            });
        }
        Ok(VersionedSecret {
            version: Version::FIRST,
            value: SecretBytes::from(entry.value.expose_secret().to_vec()),
        })
    }

    fn list(&self) -> Result<Vec<Locator>, ProviderError> {
        Ok(self.entries.keys().cloned().collect())
    }

    fn versions(&self, locator: &Locator) -> Result<Vec<VersionInfo>, ProviderError> {
        self.entry(locator)?;
        Ok(vec![VersionInfo {
            version: Version::FIRST,
            state: VersionState::Live,
        }])
    }
}

/// Loading secrets from the environment failed. Messages name variables,
/// never their values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// A mapped variable is not set.
    #[error(
        "environment variable {name} is not set; set it (for Kubernetes, check the pod's env/envFrom) or drop the mapping"
    )]
    Missing {
        /// The variable name.
        name: String,
    },
    /// A mapped variable name cannot exist.
    #[error("{name:?} is not a valid environment variable name (empty, or contains '=' or NUL)")]
    InvalidName {
        /// The name, escaped.
        name: String,
    },
    /// Two variables map to the same locator.
    #[error(
        "locator {locator} is mapped from two variables (one is {variable}); make the prefixes and explicit names disjoint"
    )]
    DuplicateLocator {
        /// The locator.
        locator: Locator,
        /// One of the variables.
        variable: String,
    },
    /// Removal from the environment was asked for while other threads run.
    #[error(
        "refusing to remove variables from the environment: the process has {threads} threads; load secrets at the top of main, before starting any thread or async runtime"
    )]
    NotSingleThreaded {
        /// Threads counted.
        threads: usize,
    },
    /// Removal was asked for, but the thread count cannot be checked (no
    /// `/proc`, or not Linux).
    #[error(
        "refusing to remove variables from the environment: cannot prove the process is single-threaded ({reason}); mount /proc or load without removal"
    )]
    ThreadCountUnknown {
        /// Why the count is unknown.
        reason: String,
    },
    /// [`EnvLoader::load_from`] was asked to remove variables.
    #[error("remove_from_environment works only with load(), which reads the process environment")]
    RemovalNeedsProcessEnvironment,
}

/// Fails unless this process has exactly one thread.
fn ensure_single_threaded() -> Result<(), EnvError> {
    match thread_count()? {
        1 => Ok(()),
        threads => Err(EnvError::NotSingleThreaded { threads }),
    }
}

#[cfg(target_os = "linux")]
fn thread_count() -> Result<usize, EnvError> {
    let unknown = |e: std::io::Error| EnvError::ThreadCountUnknown {
        reason: format!("reading /proc/self/task: {e}"),
    };
    let mut threads = 0usize;
    for entry in std::fs::read_dir("/proc/self/task").map_err(unknown)? {
        entry.map_err(unknown)?;
        threads += 1;
    }
    if threads == 0 {
        return Err(EnvError::ThreadCountUnknown {
            reason: "/proc/self/task lists no thread".to_owned(),
        });
    }
    Ok(threads)
}

#[cfg(not(target_os = "linux"))]
fn thread_count() -> Result<usize, EnvError> {
    Err(EnvError::ThreadCountUnknown {
        reason: "only Linux is supported".to_owned(),
    })
}

/// Removes `names` from the process environment, after proving that this
/// process has a single thread. The one `unsafe` block of the crate.
#[allow(
    unsafe_code,
    reason = "edition 2024 makes std::env::remove_var unsafe; the single-thread check makes the call sound"
)]
fn dangerous_remove_vars_single_threaded(names: &[OsString]) -> Result<(), EnvError> {
    ensure_single_threaded()?;
    if let Some(name) = names
        .iter()
        .find(|name| name.is_empty() || name.as_bytes().iter().any(|b| *b == b'=' || *b == 0))
    {
        // remove_var would panic on these names; refuse before removing any.
        return Err(EnvError::InvalidName {
            name: name.to_string_lossy().escape_debug().to_string(),
        });
    }
    for name in names {
        // SAFETY: `remove_var` is unsound only when another thread reads or
        // writes the environment at the same time (C code calling `getenv`
        // is not covered by std's environment lock). The check above counted
        // exactly one thread in `/proc/self/task`: this one. No other thread
        // can appear before the loop ends, because only a running thread of
        // this process could create one and this thread is running the loop.
        unsafe { std::env::remove_var(name) };
    }
    Ok(())
}
