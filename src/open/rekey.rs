//! Changing the key of the single-host file store: a new passphrase (or key
//! source), and on request a fresh data key with every record re-sealed.
//! Each rekey is an audit record ([`Action::Rekey`]), written before the
//! store is rewritten.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tyrum_secrets_core::{
    Action, AdminRequest, AuditRecord, ErrorKind, HandleId, Outcome, SecretString, Timestamp,
};
use tyrum_secrets_file::{FileError, FileProvider, KeySource};

use super::state::{self, Created};
use super::{OpenError, OpenOptions, check_record, single_host, state_dir};
use crate::{Config, Profile};

/// Names the file store in place of a handle in a rekey's audit record.
const MARKER: &str = "tyrum-secrets-file-store";

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
    /// The state is first opened as [`open_with`](Self::open_with) opens
    /// it (every anchor and the audit logs checked; the prompt, if any, is
    /// asked once), and the rekey is written to its audit log as an
    /// [`Action::Rekey`] record naming `by` (who and why) and, with
    /// `reseal`, how many records were re-sealed — never a key or a
    /// passphrase. The record is written before the store is rewritten: if
    /// it cannot be written, nothing is changed ([`OpenError::Audit`]). If
    /// the rewrite then fails, a second record with the same `request_id`
    /// says so (outcome `failed`); with `reseal`, the records may have been
    /// re-sealed under a new data key by then, which the current key still
    /// opens. No other open of the state directory runs while the store is
    /// rewritten.
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
    /// [`OpenError::Audit`] when the record cannot be written; whatever
    /// else refuses an open; a store or I/O error.
    pub fn rekey(
        config: &Config,
        options: &OpenOptions,
        new_key: KeySource,
        reseal: bool,
        by: &AdminRequest,
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
        // The open checks everything an open checks and opens the audit
        // log the record goes to; the store's key is asked for once.
        let options = ask_once(options).must_exist();
        let secrets = super::Secrets::open_with(config, options.clone())?;
        // No other open while the store changes its key: one that starts
        // after this rewrite must use the new key.
        let mut created = Created::default();
        let _lock = state::OpenLock::acquire(&dir, &mut created)?;
        let (secret, source_desc) =
            single_host::store_secret(config, &options, &store, true, &mut created)?;
        let placed = single_host::store_anchor(config, record.id.as_deref(), &store, None)?;
        let anchored = single_host::store_options(config, &options)?.anchor(placed.anchor.clone());
        let failed = |e: FileError| {
            single_host::store_error(e, &store, &placed.location, &secret, &source_desc, config)
        };
        let mut provider =
            FileProvider::open_with(&store, secret.source(), anchored).map_err(failed)?;
        let resealed = if reseal {
            Some(provider.record_count().map_err(failed)?)
        } else {
            None
        };
        let mut record = AuditRecord::new(
            Timestamp::now(),
            format!("rekey-{}", state::new_state_id()?),
            HandleId::parse_bare(MARKER).map_err(super::internal)?,
            by.actor().clone(),
            by.reason().as_str().to_owned(),
        );
        record.action = Action::Rekey;
        record.resealed = resealed.map(|n| u64::try_from(n).unwrap_or(u64::MAX));
        record.outcome = Outcome::Applied;
        // Recorded first: a rekey the audit log cannot record is not made.
        secrets.audit.record(record.clone())?;
        let rewritten = if reseal {
            provider.rotate_data_key()
        } else {
            Ok(())
        }
        .and_then(|()| provider.change_key(new_key));
        if let Err(error) = rewritten {
            record.outcome = Outcome::Failed;
            record.error_kind = Some(ErrorKind::Provider);
            // The rekey failed either way; if even this record cannot be
            // written, the one before over-reports, never the reverse.
            let _ = secrets.audit.record(record);
            return Err(error.into());
        }
        Ok(RekeyReport {
            store,
            resealed: reseal,
        })
    }
}

/// `options` with a prompt that asks once and gives the same answer to
/// every later request: a rekey opens the store twice (the state, then the
/// store it rewrites) and the operator types the passphrase once.
fn ask_once(options: &OpenOptions) -> OpenOptions {
    let mut once = options.clone();
    if let Some(prompt) = options.prompt.clone() {
        let answer: Mutex<Option<SecretString>> = Mutex::new(None);
        once.prompt = Some(Arc::new(move |request| {
            let mut kept = answer.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(passphrase) = kept.as_ref() {
                return Ok(passphrase.clone());
            }
            let passphrase = prompt(request)?;
            *kept = Some(passphrase.clone());
            Ok(passphrase)
        }));
    }
    once
}
