//! `run`: a command with secrets in its environment and its standard
//! output and error masked.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use tyrum_secrets::operator::operator_requester;
use tyrum_secrets::{HandleId, Purpose, ResolveRequest, Secrets};

use crate::args::{RunArgs, parse_env};
use crate::error::{CliError, CliResult};
use crate::signals::{self, Forwarder};
use crate::stream;

/// Runs the command; returns its exit status (ending this process as the
/// child's signal ended it, when one did).
pub(crate) fn run(secrets: &Secrets, args: RunArgs) -> CliResult<u8> {
    let vars = variables(&args)?;
    crate::session::check_handles(secrets, vars.iter().map(|(_, id)| id))?;
    let Some((program, program_args)) = args.command.split_first() else {
        return Err(CliError::usage("name the command to run after --"));
    };
    let name = Path::new(program)
        .file_name()
        .map_or_else(|| "?".to_owned(), |n| n.to_string_lossy().into_owned());
    let request = ResolveRequest::new(
        operator_requester()?,
        Purpose::new(format!("tyrum-secrets run {name}"))?,
    );

    let mut command = Command::new(program);
    command
        .args(program_args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    secrets.resolver().inject_env(
        &mut command,
        vars.iter().map(|(name, id)| (name.as_str(), id)),
        &request,
    )?;

    let forwarder = Forwarder::start()?;
    let spawned = command.spawn();
    // The command's own copy of the values goes now (std does not wipe it).
    drop(command);
    let mut child = spawned.map_err(|e| {
        CliError::failed(format!(
            "cannot start {}: {e}",
            Path::new(program).display()
        ))
    })?;
    forwarder.child(&child);

    let redactor = secrets.redactor().clone();
    let out = child.stdout.take().map(|pipe| {
        let redactor = redactor.clone();
        std::thread::spawn(move || {
            let sink = stream::raw_stdout()?;
            stream::pump(into_file(pipe), &redactor, sink)
        })
    });
    let err = child.stderr.take().map(|pipe| {
        std::thread::spawn(move || {
            let sink = stream::raw_stderr()?;
            stream::pump(into_file(pipe), &redactor, sink)
        })
    });
    let status = child.wait();
    forwarder.child_reaped();
    let status = status?;
    for pump in [out, err].into_iter().flatten() {
        match pump.join() {
            Ok(result) => result?,
            Err(_) => return Err(CliError::failed("the output pump failed")),
        }
    }
    drop(forwarder);
    Ok(exit_code(status))
}

/// A child's pipe as a file (for polling and unbuffered reads).
fn into_file(pipe: impl Into<std::os::fd::OwnedFd>) -> std::fs::File {
    std::fs::File::from(pipe.into())
}

fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            signals::die_like(signal);
        }
    }
    1
}

/// The largest `--env-file` read (names and handles only).
const ENV_FILE_MAX: u64 = 1 << 20;

/// `--env` and `--env-file` together; a name given twice is an error.
fn variables(args: &RunArgs) -> CliResult<Vec<(String, HandleId)>> {
    let mut vars: BTreeMap<String, HandleId> = BTreeMap::new();
    let mut add = |name: String, id: HandleId, from: &str| {
        if vars.insert(name.clone(), id).is_some() {
            return Err(CliError::usage(format!("{name} is set twice ({from})")));
        }
        Ok(())
    };
    if let Some(path) = &args.env_file {
        // A regular file of bounded size, checked on the opened descriptor:
        // a FIFO or a device is refused at once instead of blocking.
        let bytes = tyrum_secrets::durable::read_regular_file(path, ENV_FILE_MAX)
            .map_err(|e| CliError::failed(format!("cannot read --env-file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            CliError::failed(format!("--env-file {} is not UTF-8 text", path.display()))
        })?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (name, id) = parse_env(line).map_err(|why| {
                CliError::usage(format!("{} line {}: {why}", path.display(), number + 1))
            })?;
            add(name, id, &format!("{} line {}", path.display(), number + 1))?;
        }
    }
    for (name, id) in &args.env {
        add(name.clone(), id.clone(), "--env")?;
    }
    Ok(vars.into_iter().collect())
}
