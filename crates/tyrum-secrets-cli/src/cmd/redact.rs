//! `redact`: standard input to standard output with every value the
//! catalog can resolve masked (the redactor is pre-loaded at open), as a
//! stream: a line is passed on as soon as it cannot be part of a value.

use tyrum_secrets::Secrets;

use crate::error::CliResult;
use crate::stream;

pub(crate) fn redact(secrets: &Secrets) -> CliResult {
    let input = stream::raw_stdin()?;
    stream::pump(input, secrets.redactor(), stream::raw_stdout()?)?;
    Ok(())
}
