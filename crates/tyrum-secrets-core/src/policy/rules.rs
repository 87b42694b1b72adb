//! The rule policy: JSON rules over `<provider>:<scope>` patterns, handle
//! ids, catalog labels and requester attributes.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::pattern::Pattern;
use super::{Decision, DecisionReason, Effect, Policy, PolicyInput};
use crate::durable::read_regular_file;
use crate::request::Destination;
use crate::{HandleId, SecretKind};

/// The largest policy file [`RulePolicy::from_file`] reads: 4 MiB.
pub const MAX_POLICY_LEN: u64 = 4 << 20;

/// A policy of rules, loaded from JSON.
///
/// ```json
/// {
///   "default": "deny",
///   "payment_instruments_enabled": false,
///   "rules": [
///     { "id": "github-for-ci", "effect": "allow",
///       "secret": "file:workspace/acme/*",
///       "agent": "ci-*", "tool": ["http.fetch"],
///       "destination": ["api.github.com", "*.githubusercontent.com"],
///       "kind": ["api_key", "bearer_token"] },
///     { "id": "prod-needs-a-human", "effect": "require_approval",
///       "secret": "*:prod/*" },
///     { "id": "no-shell", "effect": "deny", "secret": "*", "tool": "shell.*" },
///     { "id": "payments-team", "effect": "require_approval",
///       "labels": { "team": "payments" } },
///     { "id": "the-signing-key", "effect": "deny", "agent": "intern-*",
///       "handle": "secret:Zm9vYmFyYmF6cXV4cXV1eHF1dXg" }
///   ]
/// }
/// ```
///
/// - Each rule names what it is about with at least one of `secret`,
///   `handle` and `labels` (all that are given must match):
///   - `secret`: a `<provider>:<scope>` pattern (or `*`) where `*` matches
///     any run of characters, `/` included;
///   - `handle`: one handle id or a list, as `secret:<id>` or the bare id;
///     it keeps naming the same secret when the secret moves to another
///     provider or scope;
///   - `labels`: an object of catalog label names and value patterns
///     (`*` wildcards); the secret must carry every label, with a
///     matching value. A policy input without labels
///     ([`PolicyInput::labels`] is `None`) is treated like a missing tool
///     or destination below.
/// - `agent` and `tool` patterns are written in lower case from
///   `a-z 0-9 _ - . : / @` and `*`: requester ids are lower-cased ASCII (see
///   [`Requester`](crate::Requester)), so `Shell.exec` meets a rule on
///   `shell.*` and a look-alike never reaches the policy.
/// - `agent`, `tool`, `destination` and `kind` are optional; each takes one
///   value or a list, and a rule with a condition matches only requests that
///   meet it (an allow rule naming destinations never matches a request
///   without one). Conditions on a tool or destination the request does not
///   name fail closed for the stricter effects: a `deny` rule then applies,
///   and a `require_approval` rule turns an allow into require-approval (but
///   never opens an approval path past the default). So leaving an attribute
///   out of a request never escapes a deny or an approval. `kind` takes kind
///   names, not patterns.
/// - A `destination` without `*` is canonicalised like a request's
///   [`Destination`](crate::Destination): `"[0::1]"` matches `::1`,
///   `"::ffff:169.254.169.254"` matches `169.254.169.254`, and an
///   ambiguous numeric form such as `"2852039166"` is refused. Wildcard
///   patterns match the canonical text (IPv6 in RFC 5952 form, no
///   brackets).
/// - Among the rules that match, an explicit `deny` wins, then
///   `require_approval`, then `allow`. When none matches, `default` applies:
///   `deny` (the default) or `require_approval`. A default of `allow` is
///   refused: an operator who wants that writes a rule `"secret": "*"`.
/// - Payment instruments are refused unless `payment_instruments_enabled` is
///   `true` *and* a matching allow or require-approval rule names the
///   `payment_instrument` kind explicitly: a broad `"secret": "*"` rule never
///   lets a card number out.
/// - Unknown fields are errors, so a misspelt condition (`"destinaton"`)
///   cannot silently widen a rule.
///
/// ```
/// use tyrum_secrets_core::{RulePolicy, DefaultEffect};
/// let policy = RulePolicy::from_json_str(r#"{"rules": [
///     {"id": "ci", "effect": "allow", "secret": "file:ci/*", "agent": "ci-*"}
/// ]}"#)?;
/// assert_eq!(policy.default_effect(), DefaultEffect::Deny);
/// let bad = RulePolicy::from_json_str(r#"{"rules": [{"id": "ci", "effect": "permit", "secret": "*"}]}"#);
/// assert!(bad.unwrap_err().to_string().contains("rule \"ci\" field \"effect\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RulePolicy {
    default: DefaultEffect,
    payment_instruments_enabled: bool,
    rules: Vec<Rule>,
}

/// What a [`RulePolicy`] decides when no rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DefaultEffect {
    /// Refuse (the default).
    #[default]
    Deny,
    /// Resolve only with an approval grant.
    RequireApproval,
}

#[derive(Clone, Debug)]
struct Rule {
    id: String,
    effect: Effect,
    secret: Option<Pattern>,
    handles: Option<Vec<HandleId>>,
    labels: Option<Vec<(String, Pattern)>>,
    agents: Option<Vec<Pattern>>,
    tools: Option<Vec<Pattern>>,
    destinations: Option<Vec<Pattern>>,
    kinds: Option<BTreeSet<SecretKind>>,
}

impl RulePolicy {
    /// A policy with no rules: everything gets `default`.
    pub fn deny_all() -> Self {
        Self {
            default: DefaultEffect::Deny,
            payment_instruments_enabled: false,
            rules: Vec::new(),
        }
    }

    /// Parses a policy from JSON text.
    ///
    /// # Errors
    /// [`PolicyError`] naming the rule (by id, or `#<index>` before the id is
    /// known) and the field that is wrong.
    pub fn from_json_str(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Syntax {
            line: e.line(),
            column: e.column(),
            message: syntax_message(&e),
        })?;
        Self::from_json_value(&value)
    }

    /// Reads and parses a policy file of at most [`MAX_POLICY_LEN`] bytes.
    ///
    /// Only a regular file is read
    /// ([`read_regular_file`](crate::durable::read_regular_file)): a path
    /// naming a FIFO or a device fails at once instead of hanging.
    ///
    /// # Errors
    /// [`PolicyError::Io`] when the file cannot be read — its source has
    /// kind `InvalidInput` for a FIFO, device, socket or directory and
    /// `FileTooLarge` past the limit, with a
    /// [`ReadFileError`](crate::durable::ReadFileError) inside — otherwise
    /// as [`from_json_str`](Self::from_json_str), with the path attached.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let bytes = read_regular_file(path, MAX_POLICY_LEN).map_err(|e| PolicyError::Io {
            path: path.to_owned(),
            source: e.into(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| PolicyError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the policy file is not UTF-8 text",
            ),
        })?;
        Self::from_json_str(&text).map_err(|e| PolicyError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// Parses a policy from a JSON value.
    ///
    /// # Errors
    /// As [`from_json_str`](Self::from_json_str).
    pub fn from_json_value(value: &Value) -> Result<Self, PolicyError> {
        let top = value.as_object().ok_or(PolicyError::NotAnObject)?;
        let mut policy = Self::deny_all();
        for (key, value) in top {
            match key.as_str() {
                "default" => {
                    policy.default = match value.as_str() {
                        Some("deny") => DefaultEffect::Deny,
                        Some("require_approval") => DefaultEffect::RequireApproval,
                        _ => {
                            return Err(PolicyError::Top {
                                field: "default",
                                message: "must be \"deny\" or \"require_approval\"",
                            });
                        }
                    }
                }
                "payment_instruments_enabled" => {
                    policy.payment_instruments_enabled =
                        value.as_bool().ok_or(PolicyError::Top {
                            field: "payment_instruments_enabled",
                            message: "must be true or false",
                        })?;
                }
                "rules" => {
                    let list = value.as_array().ok_or(PolicyError::Top {
                        field: "rules",
                        message: "must be a list of rules",
                    })?;
                    let mut seen = BTreeSet::new();
                    for (index, rule) in list.iter().enumerate() {
                        let rule = parse_rule(index, rule)?;
                        if !seen.insert(rule.id.clone()) {
                            return Err(PolicyError::DuplicateRule { rule: rule.id });
                        }
                        policy.rules.push(rule);
                    }
                }
                other => {
                    return Err(PolicyError::UnknownField {
                        field: other.to_owned(),
                    });
                }
            }
        }
        Ok(policy)
    }

    /// What applies when no rule matches.
    pub fn default_effect(&self) -> DefaultEffect {
        self.default
    }

    /// Whether the operator enabled payment instruments.
    pub fn payment_instruments_enabled(&self) -> bool {
        self.payment_instruments_enabled
    }

    /// How many rules the policy has.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }
}

impl Policy for RulePolicy {
    fn decide(&self, input: &PolicyInput<'_>) -> Decision {
        let kind = input.handle.kind();
        let payment = kind == SecretKind::PaymentInstrument;
        if payment && !self.payment_instruments_enabled {
            return Decision::deny(DecisionReason::PaymentInstrumentsDisabled);
        }
        let mut target = String::with_capacity(
            input.handle.provider().as_str().len() + 1 + input.handle.scope().as_str().len(),
        );
        target.push_str(input.handle.provider().as_str());
        target.push(':');
        target.push_str(input.handle.scope().as_str());

        let mut strongest: Option<&Rule> = None;
        // A require-approval rule that would match if the request named the
        // tool or destination it is conditioned on.
        let mut possible_approval: Option<&Rule> = None;
        for rule in &self.rules {
            let matched = rule.matches(&target, input);
            if matched == Match::No {
                continue;
            }
            if payment
                && rule.effect != Effect::Deny
                && !rule.kinds.as_ref().is_some_and(|k| k.contains(&kind))
            {
                // Broad rules never cover payment instruments.
                continue;
            }
            match (rule.effect, matched) {
                // A deny that might apply does apply: leaving an attribute
                // out of a request never escapes a deny.
                (Effect::Deny, _) => return Decision::by_rule(Effect::Deny, rule.id.clone()),
                (Effect::RequireApproval, Match::IfUnknownAttributes) => {
                    possible_approval.get_or_insert(rule);
                }
                // An allow rule only narrows: an unknown attribute never
                // widens it.
                (_, Match::IfUnknownAttributes) => {}
                (_, _) => {
                    if strongest.is_none_or(|s| rule.effect > s.effect) {
                        strongest = Some(rule);
                    }
                }
            }
        }
        match strongest {
            // An approval requirement that might apply tightens an allow, but
            // never opens a way past the default.
            Some(rule) if rule.effect == Effect::Allow && possible_approval.is_some() => {
                let approval = possible_approval.unwrap_or(rule);
                Decision::by_rule(Effect::RequireApproval, approval.id.clone())
            }
            Some(rule) => Decision::by_rule(rule.effect, rule.id.clone()),
            None if payment => Decision::deny(DecisionReason::PaymentInstrumentNeedsRule),
            None => Decision::by_default(match self.default {
                DefaultEffect::Deny => Effect::Deny,
                DefaultEffect::RequireApproval => Effect::RequireApproval,
            }),
        }
    }
}

/// Whether a rule applies to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Match {
    /// It does not.
    No,
    /// It does.
    Yes,
    /// It would if the request named the tool or destination that a
    /// condition of the rule is about; the request names none.
    IfUnknownAttributes,
}

impl Rule {
    fn matches(&self, target: &str, input: &PolicyInput<'_>) -> Match {
        if !self.secret.as_ref().is_none_or(|s| s.matches(target))
            || !self
                .handles
                .as_ref()
                .is_none_or(|ids| ids.contains(input.handle.id()))
            || !self
                .kinds
                .as_ref()
                .is_none_or(|k| k.contains(&input.handle.kind()))
            || !any(&self.agents, input.requester.agent())
        {
            return Match::No;
        }
        let mut result = Match::Yes;
        match (&self.labels, input.labels) {
            (None, _) => {}
            (Some(_), None) => result = Match::IfUnknownAttributes,
            (Some(wanted), Some(labels)) => {
                let all = wanted.iter().all(|(name, pattern)| {
                    labels.get(name).is_some_and(|value| pattern.matches(value))
                });
                if !all {
                    return Match::No;
                }
            }
        }
        for (patterns, value) in [
            (&self.tools, input.requester.tool_id()),
            (&self.destinations, input.destination.map(|d| d.as_str())),
        ] {
            match (patterns, value) {
                (None, _) => {}
                (Some(_), None) => result = Match::IfUnknownAttributes,
                (Some(patterns), Some(value)) => {
                    if !patterns.iter().any(|p| p.matches(value)) {
                        return Match::No;
                    }
                }
            }
        }
        result
    }
}

/// Whether `value` matches one of `patterns` (or there is no condition).
fn any(patterns: &Option<Vec<Pattern>>, value: &str) -> bool {
    patterns
        .as_ref()
        .is_none_or(|patterns| patterns.iter().any(|p| p.matches(value)))
}

fn parse_rule(index: usize, value: &Value) -> Result<Rule, PolicyError> {
    let fields = value.as_object().ok_or_else(|| PolicyError::Rule {
        rule: format!("#{index}"),
        field: "rule".to_owned(),
        message: "must be an object".to_owned(),
    })?;
    let id = match fields.get("id") {
        Some(Value::String(id)) if valid_id(id) => id.clone(),
        Some(_) => {
            return Err(PolicyError::Rule {
                rule: format!("#{index}"),
                field: "id".to_owned(),
                message: "must be 1 to 128 characters of [A-Za-z0-9_.:-]".to_owned(),
            });
        }
        None => {
            return Err(PolicyError::Rule {
                rule: format!("#{index}"),
                field: "id".to_owned(),
                message: "is required".to_owned(),
            });
        }
    };
    let err = |field: &str, message: String| PolicyError::Rule {
        rule: id.clone(),
        field: field.to_owned(),
        message,
    };
    for key in fields.keys() {
        if !matches!(
            key.as_str(),
            "id" | "effect"
                | "secret"
                | "handle"
                | "labels"
                | "agent"
                | "tool"
                | "destination"
                | "kind"
                | "description"
        ) {
            return Err(err(
                key,
                "is not a rule field (id, effect, secret, handle, labels, agent, tool, destination, kind, description)"
                    .to_owned(),
            ));
        }
    }
    let effect = match fields.get("effect").and_then(Value::as_str) {
        Some("allow") => Effect::Allow,
        Some("require_approval") => Effect::RequireApproval,
        Some("deny") => Effect::Deny,
        _ => {
            return Err(err(
                "effect",
                "must be \"allow\", \"require_approval\" or \"deny\"".to_owned(),
            ));
        }
    };
    if fields.get("description").is_some_and(|d| !d.is_string()) {
        return Err(err("description", "must be a string".to_owned()));
    }
    let secret = match fields.get("secret") {
        Some(Value::String(text)) => Some(secret_pattern(text).map_err(|m| err("secret", m))?),
        Some(_) => {
            return Err(err(
                "secret",
                "must be a \"<provider>:<scope>\" pattern such as \"file:workspace/*\", or \"*\""
                    .to_owned(),
            ));
        }
        None => None,
    };
    let handles = list(fields, "handle", |text| {
        let parsed = match text.strip_prefix(crate::handle::HANDLE_PREFIX) {
            Some(_) => text.parse::<HandleId>(),
            None => HandleId::parse_bare(text),
        };
        parsed.map_err(|e| err("handle", format!("is not a handle id: {e}")))
    })?;
    let labels = match fields.get("labels") {
        None => None,
        Some(Value::Object(map)) if !map.is_empty() => Some(
            map.iter()
                .map(|(name, value)| match value.as_str() {
                    Some(text) => label_pattern(text)
                        .map(|p| (name.clone(), p))
                        .map_err(|m| err("labels", format!("label {name:?}: {m}"))),
                    None => Err(err(
                        "labels",
                        format!("label {name:?} must be a string pattern"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(err(
                "labels",
                "must be a non-empty object of label names and value patterns".to_owned(),
            ));
        }
    };
    if secret.is_none() && handles.is_none() && labels.is_none() {
        return Err(err(
            "secret",
            "is required unless the rule names a handle or labels: a \"<provider>:<scope>\" \
             pattern such as \"file:workspace/*\", or \"*\""
                .to_owned(),
        ));
    }
    let agents = list(fields, "agent", |text| {
        id_pattern(text).map_err(|m| err("agent", m))
    })?;
    let tools = list(fields, "tool", |text| {
        id_pattern(text).map_err(|m| err("tool", m))
    })?;
    let destinations = list(fields, "destination", |text| {
        host_pattern(text).map_err(|m| err("destination", m))
    })?;
    let kinds = list(fields, "kind", |text| {
        SecretKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| err("kind", format!("{text:?} is not a secret kind")))
    })?
    .map(|k| k.into_iter().collect());
    Ok(Rule {
        id,
        effect,
        secret,
        handles,
        labels,
        agents,
        tools,
        destinations,
        kinds,
    })
}

/// Reads a field holding one string or a non-empty list of strings.
fn list<T>(
    fields: &Map<String, Value>,
    field: &'static str,
    mut parse: impl FnMut(&str) -> Result<T, PolicyError>,
) -> Result<Option<Vec<T>>, PolicyError> {
    let Some(value) = fields.get(field) else {
        return Ok(None);
    };
    let not_strings = || PolicyError::Rule {
        rule: fields
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        field: field.to_owned(),
        message: "must be a string or a non-empty list of strings".to_owned(),
    };
    match value {
        Value::String(text) => Ok(Some(vec![parse(text)?])),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| item.as_str().ok_or_else(not_strings).and_then(&mut parse))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Err(not_strings()),
    }
}

fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

fn secret_pattern(text: &str) -> Result<Pattern, String> {
    if text == "*" {
        return Ok(Pattern::new(text));
    }
    let Some((provider, scope)) = text.split_once(':') else {
        return Err(format!(
            "{text:?} is not a \"<provider>:<scope>\" pattern; write \"*\" to match every secret"
        ));
    };
    let ok = |part: &str, extra: &[u8]| {
        !part.is_empty()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"_.-*".contains(&b)
                    || extra.contains(&b)
            })
    };
    if !ok(provider, b"") {
        return Err(format!(
            "provider part of {text:?} must be [a-z0-9_.-] with * wildcards"
        ));
    }
    if !ok(scope, b"/") {
        return Err(format!(
            "scope part of {text:?} must be [a-z0-9_.-/] with * wildcards"
        ));
    }
    Ok(Pattern::new(text))
}

/// A label value pattern: free text with `*` wildcards, as labels are.
fn label_pattern(text: &str) -> Result<Pattern, String> {
    if text.is_empty() || text.len() > 256 || text.chars().any(char::is_control) {
        return Err("patterns must be 1 to 256 characters without control characters".to_owned());
    }
    Ok(Pattern::new(text))
}

/// An agent or tool pattern, in the requester id alphabet: requesters
/// lower-case their ids, so a pattern with an upper-case letter or any other
/// character could never match and is refused rather than silently dead.
fn id_pattern(text: &str) -> Result<Pattern, String> {
    let ok = !text.is_empty()
        && text.len() <= 256
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:/@*".contains(&b));
    if !ok {
        return Err(
            "patterns are 1 to 256 of a-z 0-9 _ - . : / @ and * (ids are lower-cased ASCII)"
                .to_owned(),
        );
    }
    Ok(Pattern::new(text))
}

/// A destination pattern. One without `*` is a host and is canonicalised
/// as [`Destination::host`] canonicalises requests (`[0::1]` becomes `::1`,
/// `::ffff:a9fe:a9fe` becomes `169.254.169.254`), so a rule matches every
/// spelling of its host; an ambiguous numeric form is refused.
fn host_pattern(text: &str) -> Result<Pattern, String> {
    let ok = !text.is_empty()
        && text.len() <= 253
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._:[]*".contains(&b));
    if !ok {
        return Err(format!(
            "{text:?} is not a lower-case host pattern such as \"api.github.com\" or \"*.github.com\""
        ));
    }
    if !text.contains('*') {
        let host = Destination::host(text).map_err(|e| format!("{text:?}: {e}"))?;
        return Ok(Pattern::new(host.as_str()));
    }
    if text.contains(['[', ']']) {
        return Err(format!(
            "{text:?}: write IPv6 patterns without brackets, as requests are matched (\"2001:db8::*\")"
        ));
    }
    Ok(Pattern::new(text))
}

/// serde_json's message without the input it may quote.
fn syntax_message(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Eof => "the file ends early".to_owned(),
        Category::Syntax => "invalid JSON syntax".to_owned(),
        Category::Data | Category::Io => "invalid JSON data".to_owned(),
    }
}

/// A policy file or value is not a valid rule policy. Names the rule and
/// field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not JSON.
    #[error("policy is not valid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The top level is not an object.
    #[error(
        "a policy is a JSON object with \"default\", \"payment_instruments_enabled\" and \"rules\""
    )]
    NotAnObject,
    /// A top-level field is wrong.
    #[error("policy field {field:?} {message}")]
    Top {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// An unknown top-level field.
    #[error(
        "policy field {field:?} is unknown; the fields are default, payment_instruments_enabled and rules"
    )]
    UnknownField {
        /// The field.
        field: String,
    },
    /// A rule field is wrong.
    #[error("policy rule {rule:?} field {field:?} {message}")]
    Rule {
        /// The rule id, or `#<index>` when the id itself is at fault.
        rule: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Two rules share an id.
    #[error("policy rule id {rule:?} is used twice; rule ids must be unique")]
    DuplicateRule {
        /// The id.
        rule: String,
    },
    /// The policy file could not be read.
    #[error("cannot read policy file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An error in a policy file.
    #[error("policy file {path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: Box<PolicyError>,
    },
}

impl fmt::Display for DefaultEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DefaultEffect::Deny => "deny",
            DefaultEffect::RequireApproval => "require_approval",
        })
    }
}

#[cfg(test)]
mod tests;
