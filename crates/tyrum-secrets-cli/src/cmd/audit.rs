//! `audit verify`, `audit tail [-f]`, `audit find-value`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tyrum_secrets::{AuditEntry, Secrets};

use crate::error::{CliError, CliResult, FAILED};
use crate::output;
use crate::terminal;

/// How often `tail -f` looks for new records.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

pub(crate) fn verify(secrets: &Secrets, json: bool) -> CliResult {
    let logs = secrets.verify_audit()?;
    let total: u64 = logs.iter().map(|(_, n)| n).sum();
    if json {
        let list: Vec<_> = logs
            .iter()
            .map(|(log, n)| json!({ "log": log.display().to_string(), "records": n }))
            .collect();
        output::json_pretty(&json!({ "verified": true, "records": total, "logs": list }))?;
    } else {
        for (log, n) in &logs {
            output::line(format!("ok  {} ({n} records)", log.display()))?;
        }
        output::line(format!(
            "{} audit logs, {total} records: every chain and anchor verifies",
            logs.len()
        ))?;
    }
    Ok(())
}

pub(crate) fn tail(secrets: &Secrets, lines: usize, follow: bool, json: bool) -> CliResult {
    let records = secrets.audit_records()?;
    let mut seen: BTreeSet<(PathBuf, u64)> =
        records.iter().map(|e| (e.log.clone(), e.seq)).collect();
    let start = records.len().saturating_sub(lines);
    print(&records[start..], json, true)?;
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let fresh: Vec<AuditEntry> = secrets
            .audit_records()?
            .into_iter()
            .filter(|e| seen.insert((e.log.clone(), e.seq)))
            .collect();
        print(&fresh, json, false)?;
    }
}

fn print(records: &[AuditEntry], json: bool, headers: bool) -> CliResult {
    if json {
        for entry in records {
            output::json_line(&output::record_json(entry))?;
        }
        return Ok(());
    }
    let rows: Vec<_> = records
        .iter()
        .map(|e| output::record_row(&e.record))
        .collect();
    if headers {
        output::table(&output::RECORD_HEADERS, &rows)?;
    } else {
        for row in rows {
            output::line(row.join("  "))?;
        }
    }
    Ok(())
}

pub(crate) fn find_value(secrets: &Secrets, json: bool) -> CliResult {
    let candidate = terminal::read_value("candidate value", false)?;
    let found = secrets.find_value(&candidate)?;
    drop(candidate);
    if json {
        output::json_pretty(&json!({ "found": !found.is_empty(), "records": found }))?;
    } else if found.is_empty() {
        output::line("not found: no audit record has this value's fingerprint")?;
    } else {
        output::line(format!(
            "found: {} audit records handed out this value",
            found.len()
        ))?;
        let rows: Vec<_> = found.iter().map(output::record_row).collect();
        output::table(&output::RECORD_HEADERS, &rows)?;
    }
    if found.is_empty() {
        return Err(CliError::silent(FAILED));
    }
    Ok(())
}
