//! `policy check`: the policy's decision for a request, without resolving.

use serde_json::json;
use tyrum_secrets::{Destination, Effect, HandleId, Purpose, Requester, ResolveRequest, Secrets};

use crate::error::{CliError, CliResult, FAILED};
use crate::output;

pub(crate) fn check(
    secrets: &Secrets,
    agent: &str,
    tool: &str,
    dest: Option<&str>,
    id: &HandleId,
    json: bool,
) -> CliResult {
    let requester = Requester::new(agent)
        .and_then(|r| r.tool(tool))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let mut request = ResolveRequest::new(requester, Purpose::new("policy check (dry run)")?);
    if let Some(dest) = dest {
        let destination = if dest.contains("://") {
            Destination::from_url(dest)
        } else {
            Destination::host(dest)
        }
        .map_err(|e| CliError::usage(format!("--dest: {e}")))?;
        request = request.to(destination);
    }
    let decision = secrets.resolver().check_policy(id, &request)?;
    let effect = output::name(&decision.effect);
    if json {
        output::json_line(&json!({
            "handle": id.to_string(),
            "agent": agent,
            "tool": tool,
            // The canonical host, never the URL as typed: it may carry
            // a password or a token.
            "destination": request.destination().map(|d| d.to_string()),
            "effect": effect,
            "rule": decision.rule,
            "reason": output::name(&decision.reason),
        }))?;
    } else {
        match &decision.rule {
            Some(rule) => output::line(format!("{effect} by rule {rule}"))?,
            None => output::line(format!("{effect}: {}", decision.reason))?,
        }
    }
    match decision.effect {
        Effect::Allow => Ok(()),
        _ => Err(CliError::silent(FAILED)),
    }
}
