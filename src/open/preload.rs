//! Pre-loading the redactor at open: every value still resolvable (current
//! and in-grace versions, revoked handles included) is registered in one
//! bulk registration, so output is masked from the first byte after a
//! restart. The reads hand nothing out; they are on record all the same, in
//! one audit record.
//!
//! This is the facade's own pre-load, over the providers it built, until the
//! core resolver's lands.

use std::collections::BTreeMap;
use std::sync::Arc;

use tyrum_secrets_core::{
    Action, AuditRecord, AuditSink, CatalogStore, ExposeSecret as _, HandleId, Outcome, ProviderId,
    Requester, SecretBytes, SecretProvider, Timestamp, Version, VersionPin, VersionSelector,
};

use super::OpenError;
use crate::Redactor;

/// What the pre-load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preload {
    /// Handles with at least one value registered.
    pub handles: usize,
    /// Values registered (a rotated handle in its grace period has two).
    pub values: usize,
    /// Values that could not be registered, and why (never the value).
    pub skipped: Vec<PreloadSkip>,
}

/// A value the pre-load could not register.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreloadSkip {
    /// The handle.
    pub handle: HandleId,
    /// Why: unreadable now, or shorter than the redactor's minimum.
    pub reason: String,
}

/// The requester named in the pre-load's audit record.
pub(crate) const PRELOAD_AGENT: &str = "tyrum-secrets";

pub(crate) fn preload(
    store: &dyn CatalogStore,
    providers: &BTreeMap<ProviderId, Arc<dyn SecretProvider>>,
    redactor: &Redactor,
    sink: &dyn AuditSink,
) -> Result<Preload, OpenError> {
    let now = Timestamp::now();
    let mut report = Preload::default();
    let mut values: Vec<(HandleId, SecretBytes)> = Vec::new();
    let mut loaded: Vec<(HandleId, Option<Version>)> = Vec::new();
    for entry in store.list()? {
        if entry.is_expired_at(now) {
            continue;
        }
        let Some(provider) = providers.get(entry.handle.provider()) else {
            report.skipped.push(PreloadSkip {
                handle: entry.id().clone(),
                reason: format!(
                    "its provider {} is not part of this profile",
                    entry.handle.provider()
                ),
            });
            continue;
        };
        let selectors: Vec<VersionSelector> = match entry.current {
            VersionPin::Latest => vec![VersionSelector::Latest],
            VersionPin::Pinned(_) => entry
                .resolvable_versions()
                .into_iter()
                .map(VersionSelector::Exact)
                .collect(),
        };
        let before = values.len();
        for selector in selectors {
            match provider.read(&entry.locator, selector) {
                Ok(read) if read.value.expose_secret().len() < redactor.min_value_len() => {
                    report.skipped.push(PreloadSkip {
                        handle: entry.id().clone(),
                        reason: format!(
                            "version {} is shorter than redaction.min_value_len ({}); it cannot be masked",
                            read.version,
                            redactor.min_value_len()
                        ),
                    });
                }
                Ok(read) => {
                    loaded.push((entry.id().clone(), Some(read.version)));
                    values.push((entry.id().clone(), read.value));
                }
                Err(e) => report.skipped.push(PreloadSkip {
                    handle: entry.id().clone(),
                    reason: format!("unreadable now: {e}"),
                }),
            }
        }
        if values.len() > before {
            report.handles += 1;
        }
    }
    report.values = values.len();
    if values.is_empty() {
        return Ok(report);
    }
    redactor
        .register_all(values.iter().map(|(h, v)| (h, v)))
        .map_err(|e| OpenError::AuditKeys {
            reason: format!("the redactor refused the pre-load: {e}"),
        })?;
    drop(values);
    sink.record(preload_record(now, &loaded)?)?;
    Ok(report)
}

/// One record for the whole pre-load: which handles and versions were read.
fn preload_record(
    now: Timestamp,
    loaded: &[(HandleId, Option<Version>)],
) -> Result<AuditRecord, OpenError> {
    let first = loaded
        .first()
        .map(|(h, _)| h.clone())
        .ok_or_else(|| OpenError::AuditKeys {
            reason: "internal: an empty pre-load has no record".to_owned(),
        })?;
    let list: Vec<String> = loaded
        .iter()
        .map(|(h, v)| match v {
            Some(v) => format!("{}@{v}", h.as_str()),
            None => h.as_str().to_owned(),
        })
        .collect();
    let requester = Requester::new(PRELOAD_AGENT).map_err(|e| OpenError::AuditKeys {
        reason: e.to_string(),
    })?;
    let mut record = AuditRecord::new(
        now,
        format!("preload-{}-{}", std::process::id(), now.unix_millis()),
        first,
        requester,
        format!(
            "pre-load the redactor with {} values (nothing handed out): {}",
            loaded.len(),
            list.join(" ")
        ),
    );
    record.action = Action::Preload;
    record.outcome = Outcome::Resolved;
    Ok(record)
}
