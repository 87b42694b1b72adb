//! How the command line fails: one line on standard error, never a value,
//! and a documented exit status.

use std::error::Error;
use std::fmt;

/// Exit status of a refused or failed command.
pub(crate) const FAILED: u8 = 1;
/// Exit status of a usage error (clap uses the same).
pub(crate) const USAGE: u8 = 2;

/// A command that did not succeed: what to print and how to exit.
pub(crate) struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// Refused or failed (exit 1).
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: FAILED,
        }
    }

    /// A handle the catalog does not know (exit 1). The line never names
    /// what was typed: most API tokens (`ghp_…`) parse as handle ids, and
    /// one pasted where a handle belongs would reach CI logs.
    pub(crate) fn unknown_handle() -> Self {
        Self::failed(
            "unknown secret handle (not shown: it may be a value); `tyrum-secrets list` shows the handles",
        )
    }

    /// A usage error found after parsing (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: USAGE,
        }
    }

    /// Exit with `code` and print nothing (the command said it already, or
    /// nobody is listening).
    pub(crate) fn silent(code: u8) -> Self {
        Self {
            message: String::new(),
            code,
        }
    }

    /// The same error with every value `redactor` knows masked in its
    /// message: a second guard behind the handle check, so no library
    /// error line repeats a value the store keeps.
    pub(crate) fn redacted(mut self, redactor: &tyrum_secrets::Redactor) -> Self {
        let masked = redactor.redact_str(&self.message).as_str().to_owned();
        self.message = masked;
        self
    }

    pub(crate) fn code(&self) -> u8 {
        self.code
    }

    /// The message as one line: line breaks and other control characters
    /// become spaces. Empty for a silent exit.
    pub(crate) fn line(&self) -> Option<String> {
        if self.message.is_empty() {
            return None;
        }
        let line: String = self
            .message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Some(line)
    }
}

/// Every library error is "failed" (exit 1), its message followed by the
/// messages of its sources that it does not already include. Library
/// errors never carry a value. A closed standard output (`| head`) ends the
/// command quietly, as it ends `cat`.
impl<E: Error + 'static> From<E> for CliError {
    fn from(error: E) -> Self {
        if let Some(io) = (&error as &dyn Error).downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return CliError::silent(0);
        }
        if is_unknown_handle(&error) {
            // The library names the id as typed (and its own API); the id
            // may be a token pasted where a handle belongs, so the operator
            // gets a line that does not repeat it, and the command to use.
            return CliError::unknown_handle();
        }
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        CliError::failed(message)
    }
}

/// Whether `error` or one of its sources says a handle is unknown (to the
/// catalog, the admin API or the resolver).
fn is_unknown_handle(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if matches!(
            e.downcast_ref::<tyrum_secrets::AdminError>(),
            Some(tyrum_secrets::AdminError::UnknownHandle { .. })
        ) || matches!(
            e.downcast_ref::<tyrum_secrets::ResolveError>(),
            Some(tyrum_secrets::ResolveError::UnknownHandle { .. })
        ) || matches!(
            e.downcast_ref::<tyrum_secrets::CatalogError>(),
            Some(tyrum_secrets::CatalogError::UnknownHandle { .. })
        ) {
            return true;
        }
        next = e.source();
    }
    false
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliError")
            .field("code", &self.code)
            .field("message", &self.message)
            .finish()
    }
}

/// `Result` of a command.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;
