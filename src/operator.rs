//! What an operator's tool (the `tyrum-secrets` command line) needs beyond
//! what a gateway does: who the operator is, the operator's default policy,
//! and where the config file is by default.
//!
//! Whoever holds the store's key is the operator. A process that opens the
//! state as the operator ([`OpenOptions::as_operator`]) resolves with the
//! requester [`operator_requester`]: the agent [`OPERATOR_AGENT`], with the
//! OS user in the request's channel (`os-user:<name>(<uid>)`), so every
//! audit record of an operator's resolve says which account ran it. With no
//! policy file, [`operator_policy`] applies: the operator may resolve every
//! secret (payment instruments excepted, as for every broad rule) and every
//! other requester is denied. A policy file replaces it, so a policy can
//! restrict the operator too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tyrum_secrets_core::{RequestError, Requester, RulePolicy};

use crate::{Config, OpenOptions};

/// The agent id of the operator's requests.
pub const OPERATOR_AGENT: &str = "operator";

/// The policy an operator's process uses when the config names no policy
/// file: the agent [`OPERATOR_AGENT`] may resolve every secret except
/// payment instruments; everyone else is denied.
pub fn operator_policy() -> RulePolicy {
    let rules = serde_json::json!({
        "default": "deny",
        "rules": [{
            "id": "operator-default",
            "effect": "allow",
            "secret": "*",
            "agent": OPERATOR_AGENT,
        }]
    });
    // The rule is a constant that parses (pinned by a test); deny-all is
    // the safe fallback should it ever not.
    RulePolicy::from_json_value(&rules).unwrap_or_else(|_| RulePolicy::deny_all())
}

/// The operator as a requester: agent [`OPERATOR_AGENT`], channel
/// `os-user:<name>(<uid>)` naming the OS account this process runs as (the
/// name from the password database, not from `USER`, which the caller
/// controls).
///
/// # Errors
/// [`RequestError`] when the account name holds characters a channel id
/// cannot (it is then left out and only the uid named).
pub fn operator_requester() -> Result<Requester, RequestError> {
    let requester = Requester::new(OPERATOR_AGENT)?;
    let (uid, name) = os_user();
    let channel = match (uid, name) {
        (Some(uid), Some(name)) => format!("os-user:{name}({uid})"),
        (Some(uid), None) => format!("os-user:({uid})"),
        (None, _) => "os-user:unknown".to_owned(),
    };
    match requester.clone().channel(channel) {
        Ok(r) => Ok(r),
        Err(_) => requester.channel(format!(
            "os-user:({})",
            uid.map_or_else(|| "unknown".to_owned(), |u| u.to_string())
        )),
    }
}

/// The uid of this process and its account name, where the OS says.
fn os_user() -> (Option<u32>, Option<String>) {
    #[cfg(unix)]
    {
        let uid = rustix::process::getuid().as_raw();
        (Some(uid), passwd_name(uid))
    }
    #[cfg(not(unix))]
    {
        (None, std::env::var("USERNAME").ok())
    }
}

/// The name of `uid` in `/etc/passwd`, if it is listed there.
#[cfg(unix)]
fn passwd_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

impl OpenOptions {
    /// Opens as the operator: unless `config` names a policy file (which
    /// then decides, for the operator too), the [`operator_policy`]
    /// applies.
    pub fn as_operator(self, config: &Config) -> Self {
        if config.policy_file.is_some() {
            self
        } else {
            self.policy(Arc::new(operator_policy()))
        }
    }
}

impl Config {
    /// The config file used when none is named: `tyrum-secrets/config.toml`
    /// in `XDG_CONFIG_HOME` (else `~/.config`; `%APPDATA%` on Windows,
    /// `~/Library/Application Support` on macOS) if it exists, else
    /// `/etc/tyrum-secrets/config.toml` if that exists, else none.
    pub fn default_path() -> Option<PathBuf> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let user = match std::env::consts::OS {
            "macos" => var("HOME").map(|h| h.join("Library/Application Support")),
            "windows" => var("APPDATA"),
            _ => var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config"))),
        }
        .map(|base| base.join("tyrum-secrets").join("config.toml"));
        let system = (std::env::consts::OS != "windows")
            .then(|| PathBuf::from("/etc/tyrum-secrets/config.toml"));
        [user, system].into_iter().flatten().find(|p| p.is_file())
    }

    /// The config an operator's tool uses: the file `path` if given, else
    /// the file named by `TYRUM_SECRETS_CONFIG`, else
    /// [`default_path`](Self::default_path); then the `TYRUM_SECRETS_*`
    /// variables on top.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_for_operator(path: Option<&Path>) -> Result<Config, crate::ConfigError> {
        match path {
            Some(path) => Config::load(Some(path)),
            None if std::env::var_os(crate::config::CONFIG_ENV).is_some() => Config::load(None),
            None => Config::load(Config::default_path().as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tyrum_secrets_core::{
        Decision, Effect, HandleId, KindSpec, Policy, PolicyInput, ProviderId, Purpose, Scope,
        SecretHandle, SecretKind,
    };

    use super::*;

    fn decide(agent: &str, kind: SecretKind) -> Decision {
        let handle = SecretHandle::new(
            HandleId::generate().unwrap(),
            ProviderId::new("file").unwrap(),
            Scope::new("ci").unwrap(),
            KindSpec::new(kind, None).map(|k| k.kind()).unwrap(),
        );
        let requester = Requester::new(agent).unwrap();
        let purpose = Purpose::new("test").unwrap();
        operator_policy().decide(&PolicyInput::new(&handle, &requester, &purpose, None))
    }

    #[test]
    fn operator_policy_allows_the_operator_and_denies_agents() {
        let allowed = decide(OPERATOR_AGENT, SecretKind::ApiKey);
        assert_eq!(allowed.effect, Effect::Allow);
        assert_eq!(allowed.rule.as_deref(), Some("operator-default"));
        assert_eq!(decide("ci-bot", SecretKind::ApiKey).effect, Effect::Deny);
        assert_eq!(
            decide(OPERATOR_AGENT, SecretKind::PaymentInstrument).effect,
            Effect::Deny
        );
    }

    #[test]
    fn operator_requester_names_the_os_account() {
        let requester = operator_requester().unwrap();
        assert_eq!(requester.agent(), OPERATOR_AGENT);
        assert!(requester.channel_id().unwrap().starts_with("os-user:"));
    }
}
