//! Usage errors in one line that never repeats what was typed: an argument
//! or value may be a secret pasted where a handle or a flag belonged (clap's
//! own messages quote it).

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The one-line message for a clap error (not help or version).
pub(crate) fn line(error: &clap::Error) -> String {
    let arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(name)) => Some(name.clone()),
        Some(ContextValue::Strings(names)) => Some(names.join(", ")),
        _ => None,
    };
    let what = match error.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let why = std::error::Error::source(error)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("invalid value for {}{why}", arg.as_deref().unwrap_or("an argument"))
        }
        ErrorKind::UnknownArgument => match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(flag)) if looks_like_a_flag(flag) => {
                format!("unknown option {flag}")
            }
            _ => "unexpected argument (not shown: it may be a value; values are never arguments, pipe them on standard input)".to_owned(),
        },
        ErrorKind::InvalidSubcommand => "unknown command (not shown)".to_owned(),
        ErrorKind::MissingRequiredArgument => format!(
            "missing {}",
            arg.as_deref().unwrap_or("a required argument")
        ),
        ErrorKind::MissingSubcommand => "a command is required".to_owned(),
        ErrorKind::ArgumentConflict => format!(
            "{} cannot be used with an argument given",
            arg.as_deref().unwrap_or("an argument")
        ),
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            format!(
                "wrong number of values for {}",
                arg.as_deref().unwrap_or("an argument")
            )
        }
        ErrorKind::NoEquals => format!(
            "{} needs = before its value",
            arg.as_deref().unwrap_or("an argument")
        ),
        _ => "invalid command line".to_owned(),
    };
    format!("{what}; see tyrum-secrets --help")
}

/// `--lables`: worth showing. Anything with `=`, odd characters or length
/// is not shown.
fn looks_like_a_flag(text: &str) -> bool {
    text.starts_with('-')
        && text.len() <= 40
        && text
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit())
}
