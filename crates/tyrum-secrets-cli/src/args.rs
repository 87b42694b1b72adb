//! The command line, as clap parses it. Every value is parsed here, so a
//! malformed handle, label, duration or time is a usage error (exit 2)
//! before anything is opened.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tyrum_secrets::{HandleId, ProviderId, Scope, SecretKind, Timestamp, Version};

/// Operator command line of tyrum-secrets: put secrets in, rotate, revoke
/// and audit them, and run programs with secrets in their environment and
/// their output masked. A value is never an argument: it comes from
/// standard input or a hidden prompt.
///
/// Exit status: 0 ok; 1 refused or failed (unknown or revoked handle, wrong
/// passphrase, denied, audit log that does not verify, no match); 2 usage
/// error. `run` exits with the child's status (128 + N when a signal N
/// ended it).
#[derive(Debug, Parser)]
#[command(name = "tyrum-secrets", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// The config file (else TYRUM_SECRETS_CONFIG, else the default
    /// location, else TYRUM_SECRETS_* variables alone).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The deployment profile, overriding the config's.
    #[arg(long, global = true, value_enum)]
    pub(crate) profile: Option<ProfileArg>,
    /// Machine-readable JSON output on standard output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--profile`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ProfileArg {
    Desktop,
    Kubernetes,
    SingleHost,
    Cluster,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the state for the profile (store, catalog, audit log).
    Init {
        /// Read the new store's passphrase from this file instead of asking
        /// twice on the terminal.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Store a new secret; its value from standard input or a hidden
    /// prompt. Prints the new handle.
    Put(PutArgs),
    /// List handles (never values).
    List(ListArgs),
    /// Show one handle's catalog entry.
    Show {
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
    },
    /// The versions the provider keeps of a handle's value.
    Versions {
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
    },
    /// Give a handle a new value (standard input or a hidden prompt).
    Rotate {
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
        /// Remove the previous version after this grace period (`0s`, `1h`,
        /// `7d`); default: keep it.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        retire_after: Option<Duration>,
    },
    /// Revoke a handle: every later resolve fails, in every process.
    Revoke {
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
        /// Why (kept in the catalog and the audit log; never a secret).
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Make a revoked handle active again.
    Restore {
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
    },
    /// Destroy one version of a handle's value in its provider.
    Destroy {
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
        /// The version to destroy (not the current one).
        #[arg(long, value_name = "N", value_parser = parse_version)]
        version: Version,
    },
    /// Read and check the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Dry-run the policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Protect the file store with a new passphrase.
    Rekey {
        /// Read the new passphrase from this file instead of asking twice.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Also re-seal every record under a fresh data key.
        #[arg(long)]
        data_key: bool,
    },
    /// Run a command with secrets in its environment and its output masked.
    Run(RunArgs),
    /// Copy standard input to standard output with every known value
    /// masked.
    Redact,
}

impl Command {
    /// The handles named on the command line (`run --env-file` names more
    /// when it is read).
    pub(crate) fn handles(&self) -> Vec<&HandleId> {
        match self {
            Command::Show { handle }
            | Command::Versions { handle }
            | Command::Rotate { handle, .. }
            | Command::Revoke { handle, .. }
            | Command::Restore { handle }
            | Command::Destroy { handle, .. }
            | Command::Policy(PolicyCommand::Check { handle, .. }) => vec![handle],
            Command::Run(args) => args.env.iter().map(|(_, id)| id).collect(),
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The scope (`prod/payments`).
    #[arg(long, value_parser = parse_scope)]
    pub(crate) scope: Scope,
    /// The kind.
    #[arg(long, value_parser = parse_kind)]
    pub(crate) kind: SecretKind,
    /// When it stops resolving: an RFC 3339 time or a duration from now
    /// (`30d`). Required for a session_cookie.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) expires: Option<Timestamp>,
    /// A label `key=value` (repeatable; never a secret).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub(crate) labels: Vec<(String, String)>,
    /// The provider (default: the profile's writable one).
    #[arg(long, value_parser = parse_provider)]
    pub(crate) provider: Option<ProviderId>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only this scope (`*` matches any run of characters).
    #[arg(long)]
    pub(crate) scope: Option<String>,
    /// Only this kind.
    #[arg(long, value_parser = parse_kind)]
    pub(crate) kind: Option<SecretKind>,
    /// Only handles with this label (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub(crate) labels: Vec<(String, String)>,
    /// Only handles with this status.
    #[arg(long, value_enum)]
    pub(crate) status: Option<StatusArg>,
}

/// `list --status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    Active,
    Revoked,
    Expired,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify every audit log against its chain key and anchor.
    Verify,
    /// The latest records (never a value).
    Tail {
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing new records as they are written.
        #[arg(short, long)]
        follow: bool,
    },
    /// Whether a candidate value (standard input or a hidden prompt) was
    /// handed out: exit 0 and the records if its fingerprint appears, 1 if
    /// not.
    FindValue,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// The decision and the rule that made it, without resolving or
    /// auditing a resolve. Exit 0 when allowed, 1 when denied or when an
    /// approval would be needed.
    Check {
        /// The requesting agent.
        #[arg(long)]
        agent: String,
        /// The tool.
        #[arg(long)]
        tool: String,
        /// Where the value would be sent (URL or host).
        #[arg(long, value_name = "URL")]
        dest: Option<String>,
        #[arg(value_parser = parse_handle)]
        handle: HandleId,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// An environment variable of the child: `NAME=secret:<id>`
    /// (repeatable).
    #[arg(long = "env", value_name = "NAME=secret:<id>", value_parser = parse_env)]
    pub(crate) env: Vec<(String, HandleId)>,
    /// A file of `NAME=secret:<id>` lines (`#` comments, blank lines).
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

/// `secret:<id>` (or the bare id). The error never repeats the input: it
/// may be a value pasted where a handle belonged.
pub(crate) fn parse_handle(text: &str) -> Result<HandleId, String> {
    let parsed = if text.starts_with("secret:") {
        text.parse()
    } else {
        HandleId::parse_bare(text)
    };
    parsed.map_err(|e| format!("not a secret handle: {e}"))
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::new(text).map_err(|e| e.to_string())
}

fn parse_provider(text: &str) -> Result<ProviderId, String> {
    ProviderId::new(text).map_err(|e| e.to_string())
}

fn parse_kind(text: &str) -> Result<SecretKind, String> {
    SecretKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = SecretKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown kind; one of {}", names.join(", "))
        })
}

fn parse_version(text: &str) -> Result<Version, String> {
    text.trim_start_matches('v')
        .parse::<u64>()
        .ok()
        .and_then(Version::new)
        .ok_or_else(|| "a version is a number from 1".to_owned())
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("not a duration ({e}); write e.g. 0s, 90m, 12h, 7d"))
}

/// An RFC 3339 time (`2027-01-31T00:00:00Z`) or a duration from now.
fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(Timestamp::from(time));
    }
    humantime::parse_duration(text)
        .map(|d| Timestamp::now().saturating_add(d))
        .map_err(|_| {
            "not a time; write an RFC 3339 time (2027-01-31T00:00:00Z) or a duration from now (30d)"
                .to_owned()
        })
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("a label is key=value".to_owned()),
    }
}

/// `NAME=secret:<id>`. Never repeats what follows `=`.
pub(crate) fn parse_env(text: &str) -> Result<(String, HandleId), String> {
    let (name, handle) = text.split_once('=').ok_or("write NAME=secret:<id>")?;
    if name.is_empty() || name.contains('\0') {
        return Err("the variable name is empty".to_owned());
    }
    if !handle.starts_with("secret:") {
        return Err(format!(
            "{name} must be set to a handle (secret:<id>); values are never arguments"
        ));
    }
    Ok((name.to_owned(), parse_handle(handle)?))
}
