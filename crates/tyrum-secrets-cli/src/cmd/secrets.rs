//! Commands on handles: put, list, show, versions, rotate, revoke, restore,
//! destroy. Each is one library call between parsing and formatting.

use serde_json::json;
use tyrum_secrets::operator::operator_requester;
use tyrum_secrets::{
    AdminRequest, HandleId, KindSpec, NewSecret, Purpose, RotateOptions, Secrets, Timestamp,
    Version, VersionPin,
};

use crate::args::{ListArgs, PutArgs, StatusArg};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::terminal;

pub(crate) fn put(secrets: &Secrets, args: PutArgs, json: bool) -> CliResult {
    let provider = match args.provider {
        Some(provider) => provider,
        None => secrets.default_provider().ok_or_else(|| {
            CliError::failed(format!(
                "the {} profile has no writable provider to put a value in; its values come from the platform (name one with --provider if it has one)",
                secrets.profile()
            ))
        })?,
    };
    let kind = KindSpec::new(args.kind, args.expires)?;
    let mut spec = NewSecret::new(provider, args.scope, kind);
    for (key, value) in args.labels {
        spec = spec.label(key, value);
    }
    let value = terminal::read_value("secret value", true)?;
    let handle = secrets
        .admin()
        .create(spec, &value, &operator("tyrum-secrets put")?)?;
    drop(value);
    if json {
        output::json_line(&json!({
            "handle": handle.id().to_string(),
            "provider": handle.provider().as_str(),
            "scope": handle.scope().as_str(),
            "kind": handle.kind().as_str(),
        }))?;
    } else {
        output::line(handle.id())?;
    }
    Ok(())
}

pub(crate) fn list(secrets: &Secrets, args: &ListArgs, json: bool) -> CliResult {
    let now = Timestamp::now();
    let entries: Vec<_> = secrets
        .admin()
        .list()?
        .into_iter()
        .filter(|e| {
            args.scope
                .as_deref()
                .is_none_or(|p| glob(p, e.handle.scope().as_str()))
        })
        .filter(|e| args.kind.is_none_or(|k| e.handle.kind() == k))
        .filter(|e| {
            args.labels
                .iter()
                .all(|(k, v)| e.labels.get(k).is_some_and(|have| glob(v, have)))
        })
        .filter(|e| {
            args.status.is_none_or(|s| {
                output::status(e, now)
                    == match s {
                        StatusArg::Active => "active",
                        StatusArg::Revoked => "revoked",
                        StatusArg::Expired => "expired",
                    }
            })
        })
        .collect();
    if json {
        let list: Vec<_> = entries.iter().map(|e| output::entry_json(e, now)).collect();
        output::json_pretty(&json!(list))?;
    } else {
        let rows: Vec<_> = entries.iter().map(|e| output::entry_row(e, now)).collect();
        output::table(&output::ENTRY_HEADERS, &rows)?;
    }
    Ok(())
}

pub(crate) fn show(secrets: &Secrets, id: &HandleId, json: bool) -> CliResult {
    let entry = secrets.admin().entry(id)?;
    let now = Timestamp::now();
    let value = output::entry_json(&entry, now);
    if json {
        output::json_pretty(&value)?;
        return Ok(());
    }
    let mut rows = Vec::new();
    if let Some(object) = value.as_object() {
        for (key, field) in object {
            let text = match field {
                serde_json::Value::Null => continue,
                serde_json::Value::Object(_) if key == "labels" => output::labels(&entry),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) if a.is_empty() => continue,
                serde_json::Value::Array(_) if key == "retiring" => entry
                    .retiring
                    .iter()
                    .map(|r| format!("version {} after {}", r.version.get(), r.after))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            rows.push(vec![format!("{key}:"), text]);
        }
    }
    for row in rows {
        output::line(format!("{:<18}{}", row[0], row[1]))?;
    }
    Ok(())
}

pub(crate) fn versions(secrets: &Secrets, id: &HandleId, json: bool) -> CliResult {
    let entry = secrets.admin().entry(id)?;
    let versions = secrets.admin().versions(id)?;
    let current = |v| match entry.current {
        VersionPin::Pinned(c) => c == v,
        VersionPin::Latest => versions.last().is_some_and(|last| last.version == v),
    };
    let retiring = |v| {
        entry
            .retiring
            .iter()
            .find(|r| r.version == v)
            .map(|r| r.after)
    };
    if json {
        let list: Vec<_> = versions
            .iter()
            .map(|info| {
                json!({
                    "version": info.version.get(),
                    "state": output::name(&info.state),
                    "current": current(info.version),
                    "retire_after": retiring(info.version).map(|t| t.to_string()),
                })
            })
            .collect();
        output::json_pretty(&json!({ "handle": id.to_string(), "versions": list }))?;
        return Ok(());
    }
    let rows: Vec<_> = versions
        .iter()
        .map(|info| {
            vec![
                info.version.get().to_string(),
                output::name(&info.state),
                if current(info.version) { "yes" } else { "" }.to_owned(),
                output::time(retiring(info.version)),
            ]
        })
        .collect();
    output::table(&["VERSION", "STATE", "CURRENT", "RETIRE AFTER"], &rows)?;
    Ok(())
}

pub(crate) fn rotate(
    secrets: &Secrets,
    id: &HandleId,
    retire_after: Option<std::time::Duration>,
    json: bool,
) -> CliResult {
    // Fail on an unknown handle before asking for a value.
    secrets.admin().entry(id)?;
    let mut options = RotateOptions::default();
    if let Some(grace) = retire_after {
        options = options.retire_previous_after(grace);
    }
    let value = terminal::read_value("new secret value", true)?;
    let version =
        secrets
            .admin()
            .rotate(id, &value, options, &operator("tyrum-secrets rotate")?)?;
    drop(value);
    if json {
        output::json_line(&json!({ "handle": id.to_string(), "version": version.get() }))?;
    } else {
        output::line(format!("{id} now resolves to version {}", version.get()))?;
    }
    Ok(())
}

pub(crate) fn revoke(secrets: &Secrets, id: &HandleId, reason: &str, json: bool) -> CliResult {
    if reason.trim().is_empty() {
        return Err(CliError::usage("--reason must say why"));
    }
    let by = AdminRequest::new(
        operator_requester()?,
        Purpose::new(reason).map_err(|e| CliError::usage(format!("--reason: {e}")))?,
    );
    secrets.admin().revoke(id, &by)?;
    done(json, id, "revoked")
}

pub(crate) fn restore(secrets: &Secrets, id: &HandleId, json: bool) -> CliResult {
    secrets
        .admin()
        .restore(id, &operator("tyrum-secrets restore")?)?;
    done(json, id, "active")
}

pub(crate) fn destroy(secrets: &Secrets, id: &HandleId, version: Version, json: bool) -> CliResult {
    secrets
        .admin()
        .destroy(id, version, &operator("tyrum-secrets destroy")?)?;
    if json {
        output::json_line(&json!({ "handle": id.to_string(), "destroyed": version.get() }))?;
    } else {
        output::line(format!("{id} version {} destroyed", version.get()))?;
    }
    Ok(())
}

/// The operator, asking for an administrative change for `why`.
fn operator(why: &str) -> CliResult<AdminRequest> {
    Ok(AdminRequest::new(operator_requester()?, Purpose::new(why)?))
}

fn done(json: bool, id: &HandleId, status: &str) -> CliResult {
    if json {
        output::json_line(&json!({ "handle": id.to_string(), "status": status }))?;
    } else {
        output::line(format!("{id} {status}"))?;
    }
    Ok(())
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_stars_and_literals() {
        assert!(glob("prod/*", "prod/payments"));
        assert!(glob("*", ""));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("a*c*e", "abcd"));
        assert!(glob("ci", "ci"));
        assert!(!glob("ci", "cid"));
        assert!(!glob("ab*ba", "aba"));
    }
}
