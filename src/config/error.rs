//! Config errors. They name keys, lines and variables, never a value.

use std::fmt;
use std::path::PathBuf;

/// Where a config value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A line of a config file (`path` is `None` for text given in code).
    File {
        /// The file.
        path: Option<PathBuf>,
        /// 1-based line number.
        line: usize,
    },
    /// An environment variable.
    Env {
        /// Its name.
        var: String,
    },
    /// The documented default, or a value set in code.
    Default,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File {
                path: Some(path),
                line,
            } => write!(f, "{} line {line}", path.display()),
            Location::File { path: None, line } => write!(f, "config line {line}"),
            Location::Env { var } => write!(f, "environment variable {var}"),
            Location::Default => f.write_str("default"),
        }
    }
}

/// The config could not be loaded. Names the key or variable and where it
/// is; never carries a value (a value put in the wrong key may be a secret).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error(
        "cannot read config file {path}: {reason}; check the path given with --config or TYRUM_SECRETS_CONFIG"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why, without the content.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("{at}: not valid TOML ({message}); fix the syntax")]
    Syntax {
        /// Where.
        at: Location,
        /// The parser's message.
        message: String,
    },
    /// A key that does not exist.
    #[error(
        "{at}: unknown key `{key}`{hint}; see the list of keys in the tyrum-secrets config documentation"
    )]
    UnknownKey {
        /// Where.
        at: Location,
        /// The key as written (`section.name`).
        key: String,
        /// " (did you mean ...)" or a note about secrets, or empty.
        hint: String,
    },
    /// A `TYRUM_SECRETS_*` variable that sets no key.
    #[error(
        "environment variable {var} is not a tyrum-secrets setting{hint}; unset it or fix its name"
    )]
    UnknownVariable {
        /// The variable.
        var: String,
        /// " (did you mean ...)" or a note about secrets, or empty.
        hint: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{at}: `{key}` must be {expected}, found {found}")]
    WrongType {
        /// Where.
        at: Location,
        /// The key.
        key: String,
        /// What it must be.
        expected: String,
        /// What was found: a type name, never the value.
        found: String,
    },
    /// Keys that cannot be used together.
    #[error("{first} and {second} are both set; {advice}")]
    Conflict {
        /// One key and where it was set.
        first: String,
        /// The other.
        second: String,
        /// What to do.
        advice: &'static str,
    },
}
