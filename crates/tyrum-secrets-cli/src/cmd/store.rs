//! `init` and `rekey`: creating the state of a profile, and a new key for
//! the file store.

use std::path::PathBuf;

use serde_json::json;
use tyrum_secrets::{Config, Creation, Secrets};

use crate::error::{CliError, CliResult};
use crate::output;
use crate::session::{self, Mode};
use crate::terminal::{self, Progress};

pub(crate) fn init(mut config: Config, passphrase_file: Option<PathBuf>, json: bool) -> CliResult {
    if let Some(path) = passphrase_file {
        config.passphrase_file = Some(path);
    }
    let secrets = session::open(&config, Mode::Create)?;
    let report = secrets.report();
    if report.created.is_empty() {
        return Err(CliError::failed(format!(
            "{} already holds the state of the {} profile; nothing was created",
            report.state_dir.display(),
            report.profile
        )));
    }
    if json {
        let created: Vec<_> = report
            .created
            .iter()
            .map(|c| json!({ "what": creation_kind(c), "path": creation_path(c) }))
            .collect();
        output::json_pretty(&json!({
            "profile": report.profile.as_str(),
            "profile_reason": report.profile_reason,
            "state_dir": report.state_dir.display().to_string(),
            "created": created,
            "notes": report.notes,
        }))?;
    } else {
        output::line(format!(
            "initialised the {} profile ({}) in {}",
            report.profile,
            report.profile_reason,
            report.state_dir.display()
        ))?;
        for creation in &report.created {
            output::line(format!("created {creation}"))?;
        }
        for note in &report.notes {
            output::line(format!("note: {note}"))?;
        }
    }
    Ok(())
}

fn creation_kind(creation: &Creation) -> &'static str {
    match creation {
        Creation::Directory(_) => "directory",
        Creation::FileStore(_) => "file_store",
        Creation::Catalog(_) => "catalog",
        Creation::AuditLog(_) => "audit_log",
        Creation::KeyFile(_) => "key_file",
        Creation::StateRecord(_) => "state_record",
        _ => "other",
    }
}

fn creation_path(creation: &Creation) -> String {
    let path = match creation {
        Creation::Directory(p)
        | Creation::FileStore(p)
        | Creation::Catalog(p)
        | Creation::AuditLog(p)
        | Creation::KeyFile(p)
        | Creation::StateRecord(p) => p,
        _ => return String::new(),
    };
    path.display().to_string()
}

#[cfg(feature = "file")]
pub(crate) fn rekey(
    config: &Config,
    new_passphrase_file: Option<PathBuf>,
    data_key: bool,
    json: bool,
) -> CliResult {
    use tyrum_secrets::file::KeySource;
    use tyrum_secrets::operator::operator_requester;
    use tyrum_secrets::{AdminRequest, Purpose};

    let new = match &new_passphrase_file {
        Some(path) => read_passphrase_file(path)?,
        None => {
            if !terminal::has_terminal() {
                return Err(CliError::failed(
                    "no terminal to ask for the new passphrase; use --new-passphrase-file FILE",
                ));
            }
            terminal::read_passphrase("new store passphrase", true).map_err(CliError::failed)?
        }
    };
    let progress = Progress::start(if data_key {
        "re-sealing every record under a new data key"
    } else {
        "re-wrapping the data key under the new passphrase"
    });
    let options = session::options(config, progress.handle());
    let why = if data_key {
        "tyrum-secrets rekey --data-key"
    } else {
        "tyrum-secrets rekey"
    };
    let by = AdminRequest::new(operator_requester()?, Purpose::new(why)?);
    let report = Secrets::rekey(config, &options, KeySource::Passphrase(new), data_key, &by)?;
    drop(progress);
    if json {
        output::json_line(&json!({
            "store": report.store.display().to_string(),
            "resealed": report.resealed,
        }))?;
    } else {
        output::line(format!(
            "{} now opens with the new passphrase{}",
            report.store.display(),
            if report.resealed {
                "; every record was re-sealed under a new data key"
            } else {
                ""
            }
        ))?;
        if let Some(path) = &config.passphrase_file {
            output::line(format!(
                "update the passphrase file {} to the new passphrase before the next open",
                path.display()
            ))?;
        }
    }
    Ok(())
}

#[cfg(not(feature = "file"))]
pub(crate) fn rekey(_: &Config, _: Option<PathBuf>, _: bool, _: bool) -> CliResult {
    Err(CliError::failed(
        "rekey needs tyrum-secrets-cli built with the cargo feature `file`",
    ))
}

#[cfg(feature = "file")]
fn read_passphrase_file(path: &std::path::Path) -> CliResult<tyrum_secrets::SecretString> {
    use std::io::Read as _;

    let fail =
        |why: String| CliError::failed(format!("new passphrase file {}: {why}", path.display()));
    let meta =
        std::fs::metadata(path).map_err(|e| fail(format!("cannot be read ({})", e.kind())))?;
    if !meta.is_file() {
        return Err(fail("is not a regular file".to_owned()));
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(64 * 1024 + 1));
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024 + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(format!("cannot be read ({})", e.kind())))?;
    if bytes.len() > 64 * 1024 {
        return Err(fail("is larger than 64 KiB".to_owned()));
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(fail("is empty".to_owned()));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| fail("is not UTF-8".to_owned()))?;
    Ok(tyrum_secrets::SecretString::from(text.to_owned()))
}
