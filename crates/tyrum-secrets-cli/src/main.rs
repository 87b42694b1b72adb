#![doc = include_str!("../README.md")]

mod args;
mod cmd;
mod error;
mod output;
mod session;
#[cfg(unix)]
mod signals;
mod stream;
mod terminal;
mod usage;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{AuditCommand, Cli, Command, PolicyCommand};
use crate::error::{CliError, CliResult};
use crate::session::Mode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            // Help and version go to stdout with 0; usage errors to stderr
            // with 2, in a line that quotes nothing typed.
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(error::USAGE));
            }
            let _ = writeln!(
                std::io::stderr().lock(),
                "tyrum-secrets: {}",
                usage::line(&e)
            );
            return ExitCode::from(error::USAGE);
        }
    };
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if let Some(line) = error.line() {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "tyrum-secrets: {line}");
            }
            ExitCode::from(error.code())
        }
    }
}

fn dispatch(cli: Cli) -> CliResult<u8> {
    let config = session::config(&cli)?;
    let json = cli.json;
    match cli.command {
        Command::Init { passphrase_file } => cmd::store::init(config, passphrase_file, json)?,
        Command::Rekey {
            new_passphrase_file,
            data_key,
        } => cmd::store::rekey(&config, new_passphrase_file, data_key, json)?,
        command => return with_secrets(&config, command, json),
    }
    Ok(0)
}

/// The commands that work on an existing state. Their handles are checked
/// against the catalog first (an unknown one is refused without being
/// named), and their errors pass through the pre-loaded redactor as well.
fn with_secrets(config: &tyrum_secrets::Config, command: Command, json: bool) -> CliResult<u8> {
    let secrets = session::open(config, Mode::Existing)?;
    on_secrets(&secrets, command, json).map_err(|e| e.redacted(secrets.redactor()))
}

fn on_secrets(secrets: &tyrum_secrets::Secrets, command: Command, json: bool) -> CliResult<u8> {
    session::check_handles(secrets, command.handles())?;
    match command {
        Command::Put(args) => cmd::secrets::put(secrets, args, json)?,
        Command::List(args) => cmd::secrets::list(secrets, &args, json)?,
        Command::Show { handle } => cmd::secrets::show(secrets, &handle, json)?,
        Command::Versions { handle } => cmd::secrets::versions(secrets, &handle, json)?,
        Command::Rotate {
            handle,
            retire_after,
        } => cmd::secrets::rotate(secrets, &handle, retire_after, json)?,
        Command::Revoke { handle, reason } => {
            cmd::secrets::revoke(secrets, &handle, &reason, json)?;
        }
        Command::Restore { handle } => cmd::secrets::restore(secrets, &handle, json)?,
        Command::Destroy { handle, version } => {
            cmd::secrets::destroy(secrets, &handle, version, json)?;
        }
        Command::Audit(AuditCommand::Verify) => cmd::audit::verify(secrets, json)?,
        Command::Audit(AuditCommand::Tail { lines, follow }) => {
            cmd::audit::tail(secrets, lines, follow, json)?;
        }
        Command::Audit(AuditCommand::FindValue) => cmd::audit::find_value(secrets, json)?,
        Command::Policy(PolicyCommand::Check {
            agent,
            tool,
            dest,
            handle,
        }) => cmd::policy::check(secrets, &agent, &tool, dest.as_deref(), &handle, json)?,
        #[cfg(unix)]
        Command::Run(args) => return cmd::run::run(secrets, args),
        #[cfg(not(unix))]
        Command::Run(_) => return Err(CliError::failed("run needs a Unix system here")),
        Command::Redact => cmd::redact::redact(secrets)?,
        Command::Init { .. } | Command::Rekey { .. } => {
            return Err(CliError::usage("internal: init and rekey open no state"));
        }
    }
    Ok(0)
}
