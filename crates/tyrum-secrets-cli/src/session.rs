//! Loading the config and opening everything through `Secrets::open`, as
//! the operator, with a hidden passphrase prompt where the config names no
//! key and progress while the key is derived.

use std::path::Path;

use tyrum_secrets::{
    AdminError, Config, HandleId, OpenOptions, PassphraseRequest, Profile, Secrets,
};

use crate::args::{Cli, ProfileArg};
use crate::error::{CliError, CliResult};
use crate::terminal::{self, Progress, ProgressHandle};

/// The config: `--config`, else `TYRUM_SECRETS_CONFIG`, else the default
/// location, else the variables alone; `--profile` on top.
pub(crate) fn config(cli: &Cli) -> CliResult<Config> {
    if let Some(path) = &cli.config
        && !path.is_file()
    {
        return Err(CliError::failed(format!(
            "config file {} does not exist or is not a file; check --config",
            path.display()
        )));
    }
    let mut config = Config::load_for_operator(cli.config.as_deref())?;
    if let Some(profile) = cli.profile {
        config.profile = Some(match profile {
            ProfileArg::Desktop => Profile::Desktop,
            ProfileArg::Kubernetes => Profile::Kubernetes,
            ProfileArg::SingleHost => Profile::SingleHost,
            ProfileArg::Cluster => Profile::Cluster,
        });
    }
    Ok(config)
}

/// How an open treats a state directory without state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `init`: create it.
    Create,
    /// Every other command: refuse (never an empty store in its place).
    Existing,
}

/// Opens the state of `config` as the operator.
pub(crate) fn open(config: &Config, mode: Mode) -> CliResult<Secrets> {
    // The spinner is a thread, and the kubernetes profile removes the
    // pod's secret variables from the environment, which only a
    // single-threaded process may do: there it would make every open on a
    // terminal fail (and point the operator at dangerous_keep_env).
    let profile = config.profile.unwrap_or_else(|| Profile::detect().profile);
    let progress = if profile == Profile::Kubernetes {
        Progress::off()
    } else {
        Progress::start("opening the secret store (deriving the key)")
    };
    let mut options = options(config, progress.handle());
    if mode == Mode::Existing {
        options = options.must_exist();
    }
    let secrets = Secrets::open_with(config, options)?;
    drop(progress);
    Ok(secrets)
}

/// The open options of an operator's process: the operator's policy unless
/// the config names a policy file, and a hidden prompt for the store's
/// passphrase where the config names no key.
pub(crate) fn options(config: &Config, progress: ProgressHandle) -> OpenOptions {
    OpenOptions::new()
        .as_operator(config)
        .prompt(move |request: &PassphraseRequest| prompt(request, &progress))
}

fn prompt(
    request: &PassphraseRequest,
    progress: &ProgressHandle,
) -> Result<tyrum_secrets::SecretString, String> {
    if !terminal::has_terminal() {
        return Err(format!(
            "no terminal to ask for the passphrase of {}; set passphrase_file (TYRUM_SECRETS_PASSPHRASE_FILE) or key_file in the config",
            store_name(&request.store)
        ));
    }
    progress.pause();
    let what = if request.new_store {
        "new store passphrase"
    } else {
        "store passphrase"
    };
    let passphrase = terminal::read_passphrase(what, request.new_store);
    progress.resume();
    passphrase
}

fn store_name(path: &Path) -> String {
    path.display().to_string()
}

/// Checks every handle named on the command line before any library call
/// that acts on it or records it: a value the store keeps, pasted in the
/// wrong place, is a usage error (exit 2); a handle the catalog does not
/// know is refused (exit 1) without naming it. Either would otherwise be
/// repeated by an unknown handle's audit record and error line.
pub(crate) fn check_handles<'a>(
    secrets: &Secrets,
    ids: impl IntoIterator<Item = &'a HandleId>,
) -> CliResult {
    let ids: Vec<&HandleId> = ids.into_iter().collect();
    for id in &ids {
        if secrets.redactor().redact_str(id.as_str()).as_str() != id.as_str() {
            return Err(CliError::usage(
                "a secret value was given where a handle belongs (not shown, not recorded); values are never arguments: pipe them on standard input",
            ));
        }
    }
    for id in ids {
        match secrets.admin().entry(id) {
            Ok(_) => {}
            Err(AdminError::UnknownHandle { .. }) => {
                return Err(CliError::unknown_handle());
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}
