//! Formatting: tables for a person, JSON for scripts. Only metadata is ever
//! formatted here (handles, kinds, scopes, labels, audit records); no
//! function in this module is given a value.

use std::io::{self, Write as _};

use serde::Serialize;
use serde_json::{Value, json};
use tyrum_secrets::{AuditEntry, AuditRecord, CatalogEntry, EntryStatus, Timestamp, VersionPin};

/// Prints `rows` under `headers`, columns padded to their widest cell.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = io::stdout().lock();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&mut headers.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Prints `value` as one line of JSON.
pub(crate) fn json_line(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)
}

/// Prints `value` as indented JSON.
pub(crate) fn json_pretty(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)
}

/// Prints a line for a person.
pub(crate) fn line(text: impl std::fmt::Display) -> io::Result<()> {
    writeln!(io::stdout().lock(), "{text}")
}

/// The serde name of a unit enum value (`resolved`, `api_key`).
pub(crate) fn name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// `active`, `revoked` or `expired` (revoked wins).
pub(crate) fn status(entry: &CatalogEntry, now: Timestamp) -> &'static str {
    match entry.status {
        EntryStatus::Revoked { .. } => "revoked",
        _ if entry.is_expired_at(now) => "expired",
        _ => "active",
    }
}

pub(crate) fn version(pin: VersionPin) -> String {
    match pin {
        VersionPin::Pinned(v) => v.get().to_string(),
        VersionPin::Latest => "latest".to_owned(),
    }
}

pub(crate) fn time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.to_string())
}

pub(crate) fn labels(entry: &CatalogEntry) -> String {
    let text: Vec<String> = entry
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.join(",")
    }
}

/// The `list` row of an entry.
pub(crate) fn entry_row(entry: &CatalogEntry, now: Timestamp) -> Vec<String> {
    vec![
        entry.id().to_string(),
        entry.handle.kind().to_string(),
        entry.handle.scope().to_string(),
        entry.handle.provider().to_string(),
        version(entry.current),
        status(entry, now).to_owned(),
        time(entry.expires_at),
        labels(entry),
    ]
}

pub(crate) const ENTRY_HEADERS: [&str; 8] = [
    "HANDLE", "KIND", "SCOPE", "PROVIDER", "VERSION", "STATUS", "EXPIRES", "LABELS",
];

/// An entry as JSON (metadata only).
pub(crate) fn entry_json(entry: &CatalogEntry, now: Timestamp) -> Value {
    let (revoked_at, revoked_reason) = match &entry.status {
        EntryStatus::Revoked { at, reason } => (Some(at.to_string()), Some(reason.clone())),
        _ => (None, None),
    };
    json!({
        "handle": entry.id().to_string(),
        "kind": entry.handle.kind().as_str(),
        "scope": entry.handle.scope().as_str(),
        "provider": entry.handle.provider().as_str(),
        "version": version(entry.current),
        "status": status(entry, now),
        "revoked_at": revoked_at,
        "revoked_reason": revoked_reason,
        "expires_at": entry.expires_at.map(|t| t.to_string()),
        "labels": entry.labels,
        "created_at": entry.created_at.to_string(),
        "rotated_at": entry.rotated_at.map(|t| t.to_string()),
        "last_resolved_at": entry.last_resolved_at.map(|t| t.to_string()),
        "retiring": entry.retiring.iter().map(|r| json!({
            "version": r.version.get(),
            "after": r.after.to_string(),
        })).collect::<Vec<_>>(),
    })
}

pub(crate) const RECORD_HEADERS: [&str; 8] = [
    "TIME",
    "ACTION",
    "HANDLE",
    "VERSION",
    "REQUESTER",
    "OUTCOME",
    "RULE",
    "PURPOSE",
];

/// The `audit tail` row of a record.
pub(crate) fn record_row(r: &AuditRecord) -> Vec<String> {
    let mut requester = r.requester.agent().to_owned();
    if let Some(channel) = r.requester.channel_id() {
        requester.push_str(&format!(" [{channel}]"));
    }
    if let Some(tool) = r.requester.tool_id() {
        requester.push_str(&format!(" tool={tool}"));
    }
    let mut outcome = name(&r.outcome);
    if let Some(kind) = r.error_kind {
        outcome.push_str(&format!(" ({kind})"));
    }
    vec![
        r.time.to_string(),
        r.action.to_string(),
        r.handle_id.to_string(),
        r.version
            .map_or_else(|| "-".to_owned(), |v| v.get().to_string()),
        requester,
        outcome,
        r.rule.clone().unwrap_or_else(|| "-".to_owned()),
        r.purpose.clone(),
    ]
}

/// A record as JSON: the record as the log keeps it, with its log and
/// sequence number.
pub(crate) fn record_json(entry: &AuditEntry) -> Value {
    json!({
        "log": entry.log.display().to_string(),
        "seq": entry.seq,
        "record": entry.record,
    })
}
