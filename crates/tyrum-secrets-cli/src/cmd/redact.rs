//! `redact`: standard input to standard output with every value the
//! catalog can resolve masked (the redactor is pre-loaded at open).

use std::io::{self, Read as _, Write as _};

use tyrum_secrets::Secrets;

use crate::error::CliResult;
use crate::stream;

pub(crate) fn redact(secrets: &Secrets) -> CliResult {
    let mut writer = secrets.redactor().writer(stream::raw_stdout()?);
    let mut input = io::stdin().lock();
    let mut buffer = vec![0u8; stream::CHUNK];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        writer.write_all(&buffer[..n])?;
    }
    writer.finish()?.flush()?;
    Ok(())
}
