//! Changing the key of the single-host file store: a new passphrase (or key
//! source), and on request a fresh data key with every record re-sealed.

use std::path::PathBuf;

use tyrum_secrets_file::{FileError, FileProvider, KeySource};

use super::state::{self, Created};
use super::{OpenError, OpenOptions, check_record, single_host, state_dir};
use crate::{Config, Profile};

/// What [`Secrets::rekey`](super::Secrets::rekey) changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RekeyReport {
    /// The store file.
    pub store: PathBuf,
    /// Every record was re-sealed under a fresh data key.
    pub resealed: bool,
}

impl super::Secrets {
    /// Protects the single-host file store of `config` with `new_key`
    /// instead of its current key (found as an open finds it: the config's
    /// passphrase file, key file or keychain entry, else `options`'
    /// prompt). Only the data key is re-wrapped, unless `reseal`: then every
    /// record is first re-encrypted under a fresh random data key (after an
    /// old copy of the store and its key may have leaked).
    ///
    /// The store is rewritten atomically; a failure leaves it as it was.
    /// Processes that have it open must reopen it with the new key, and a
    /// passphrase file the config names must be updated to the new
    /// passphrase.
    ///
    /// # Errors
    /// [`OpenError::NotFileStore`] for another profile;
    /// [`OpenError::StateIncomplete`] when there is no state yet;
    /// [`OpenError::WrongKey`] when the current key does not open the store;
    /// a store or I/O error.
    pub fn rekey(
        config: &Config,
        options: &OpenOptions,
        new_key: KeySource,
        reseal: bool,
    ) -> Result<RekeyReport, OpenError> {
        let profile = config
            .profile
            .unwrap_or_else(|| crate::Profile::detect().profile);
        if profile != Profile::SingleHost {
            return Err(OpenError::NotFileStore { profile });
        }
        let dir = state_dir(config, profile)?;
        let inspected = state::inspect(&dir, &config.describe("state_dir"))?;
        let Some(record) = &inspected.record else {
            return Err(OpenError::StateIncomplete {
                what: "the state record",
                path: dir.join(state::RECORD_NAME),
            });
        };
        check_record(&dir, record, config, profile)?;
        let store = crate::config::load::resolve(&dir, &config.file.path);
        if !store.exists() {
            return Err(OpenError::StateIncomplete {
                what: "the file store",
                path: store,
            });
        }
        let mut created = Created::default();
        let (secret, source_desc) =
            single_host::store_secret(config, options, &store, true, &mut created)?;
        let placed = single_host::store_anchor(config, record.id.as_deref(), &store, None)?;
        let anchored = single_host::store_options(config, options)?.anchor(placed.anchor.clone());
        let failed = |e: FileError| {
            single_host::store_error(e, &store, &placed.location, &secret, &source_desc, config)
        };
        let mut provider =
            FileProvider::open_with(&store, secret.source(), anchored).map_err(failed)?;
        if reseal {
            provider.rotate_data_key()?;
        }
        provider.change_key(new_key)?;
        Ok(RekeyReport {
            store,
            resealed: reseal,
        })
    }
}
