//! Pre-loading a redactor with every value still in use, so masking after a
//! restart does not wait for this process to resolve anything.

use crate::audit::gate::AuditGate;
use crate::audit::{Action, AuditError, AuditRecord, ErrorKind, LoadedVersions, Outcome};
use crate::provider::{VersionSelector, VersionedSecret};
use crate::redaction::{RedactionError, Redactor};
use crate::request::{Purpose, Requester};
use crate::{
    Catalog, CatalogEntry, CatalogError, ExposeSecret as _, HandleId, Timestamp, Version,
    VersionPin,
};

/// What a pre-load registered and what it skipped. Names handles and
/// versions only, never a value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreloadReport {
    /// The versions registered, per handle, in handle order.
    pub loaded: Vec<LoadedVersions>,
    /// The versions not registered, and why.
    pub skipped: Vec<SkippedVersion>,
}

impl PreloadReport {
    /// How many values were registered.
    pub fn loaded_count(&self) -> usize {
        self.loaded.iter().map(|l| l.versions.len()).sum()
    }
}

/// A version a pre-load did not register.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedVersion {
    /// The handle.
    pub handle_id: HandleId,
    /// The version, when known (`None`: the provider's latest, unreadable).
    pub version: Option<Version>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a pre-load skipped a version.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Shorter than the redactor's minimum, and the secret was created with
    /// [`NewSecret::allow_unmasked`](crate::NewSecret::allow_unmasked): it
    /// is not masked, as documented.
    AllowedUnmasked,
    /// Shorter than the redactor's minimum without the opt-in: a resolve of
    /// it fails closed as well. Rotate it to a longer value.
    TooShort,
    /// The provider or catalog could not read it (what failed, never a
    /// value).
    Unreadable {
        /// The error's message.
        message: String,
    },
}

/// A pre-load failed. Never carries a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreloadError {
    /// The resolver was built without a redactor, so there is nothing to
    /// load.
    #[error(
        "this resolver was built without_redaction(), so it has no redactor to pre-load; \
         build it with its own redactor (the default) or a shared one"
    )]
    NoRedactor,
    /// The catalog could not be listed; nothing was loaded.
    #[error("the catalog could not be listed, so the redactor was not pre-loaded: {source}")]
    Catalog {
        /// The catalog's error.
        #[source]
        source: CatalogError,
    },
    /// The redactor refused the values; the ones registered before stay
    /// registered.
    #[error("the redactor could not take the pre-loaded values: {source}")]
    Redaction {
        /// The redactor's error.
        #[source]
        source: RedactionError,
    },
    /// No randomness for the record's batch id; nothing was loaded.
    #[error(transparent)]
    Randomness(#[from] crate::RandomnessError),
    /// The audit record of the pre-load could not be written. The redactor
    /// was loaded anyway: masking is never withheld because the log is
    /// down.
    #[error(
        "the redactor was pre-loaded, but the audit record of the pre-load could not be \
         written: {source}; check the audit storage"
    )]
    Audit {
        /// The sink's error.
        #[source]
        source: AuditError,
    },
}

/// Reads every value still in use and registers them all with `redactor` in
/// one call, writing one [`Action::Preload`] record first (and a second,
/// `failed`, one if the registration is then refused).
pub(crate) fn preload(
    catalog: &Catalog,
    redactor: &Redactor,
    audit: &AuditGate,
    requester: &Requester,
    purpose: &Purpose,
) -> Result<PreloadReport, PreloadError> {
    let entries = catalog
        .list()
        .map_err(|source| PreloadError::Catalog { source })?;
    let min = redactor.min_value_len();
    let mut report = PreloadReport::default();
    let mut values: Vec<(HandleId, VersionedSecret)> = Vec::new();
    for entry in &entries {
        let mut versions = Vec::new();
        for selector in selectors(entry) {
            let skip = |reason| SkippedVersion {
                handle_id: entry.id().clone(),
                version: match selector {
                    VersionSelector::Exact(v) => Some(v),
                    _ => None,
                },
                reason,
            };
            let secret = match catalog.read_at(entry, selector) {
                Ok(secret) => secret,
                Err(e) => {
                    let message = e.to_string();
                    report
                        .skipped
                        .push(skip(SkipReason::Unreadable { message }));
                    continue;
                }
            };
            if secret.value.expose_secret().len() < min {
                let reason = if entry.allow_unmasked {
                    SkipReason::AllowedUnmasked
                } else {
                    SkipReason::TooShort
                };
                let mut skipped = skip(reason);
                skipped.version = Some(secret.version);
                report.skipped.push(skipped);
                continue;
            }
            versions.push(secret.version);
            values.push((entry.id().clone(), secret));
        }
        if !versions.is_empty() {
            versions.sort_unstable();
            versions.dedup();
            report.loaded.push(LoadedVersions {
                handle_id: entry.id().clone(),
                versions,
            });
        }
    }

    // The record names a fresh id for the batch: it is about many handles,
    // listed in `loaded`.
    let batch = HandleId::generate()?;
    let mut record = AuditRecord::new(
        Timestamp::now(),
        super::next_request_id(),
        batch,
        requester.clone(),
        purpose.as_str().to_owned(),
    );
    record.action = Action::Preload;
    record.outcome = Outcome::Applied;
    record.loaded = report.loaded.clone();
    let recorded = audit.record(record.clone());

    if let Err(source) = redactor.register_all(values.iter().map(|(id, s)| (id, &s.value))) {
        record.outcome = Outcome::Failed;
        record.error_kind = Some(ErrorKind::Redaction);
        // The first record over-reports; this one corrects it if it can.
        let _ = audit.record(record);
        return Err(PreloadError::Redaction { source });
    }
    drop(values);
    recorded.map_err(|source| PreloadError::Audit { source })?;
    Ok(report)
}

/// The reads that cover every version of `entry` still in use.
fn selectors(entry: &CatalogEntry) -> Vec<VersionSelector> {
    let mut selectors: Vec<VersionSelector> = entry
        .resolvable_versions()
        .into_iter()
        .map(VersionSelector::Exact)
        .collect();
    if entry.current == VersionPin::Latest {
        selectors.push(VersionSelector::Latest);
    }
    selectors
}
