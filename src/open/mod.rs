//! `Secrets::open`: everything a profile needs, built in one call.

mod anchors;
mod audit;
mod audit_index;
mod backend;
mod catalog;
#[cfg(feature = "vault")]
mod cluster;
mod error;
mod keyfile;
mod operator;
mod options;
#[cfg(feature = "file")]
mod rekey;
mod report;
#[cfg(feature = "file")]
mod single_host;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::{
    AuditRecord, AuditSink, Catalog, CatalogStore, Policy, Purpose, Redactor, Requester, Resolver,
    RulePolicy, SecretAdmin, SecretBytes, SecretProvider,
};

pub use error::OpenError;
pub use operator::AuditEntry;
pub use options::{AuditLayer, OpenOptions, PassphrasePrompt, PassphraseRequest, ProviderLayer};
#[cfg(feature = "file")]
pub use rekey::RekeyReport;
pub use report::{Creation, OpenReport, Recovery};

use crate::{Config, Profile};
use state::Created;

/// The requester named in the pre-load's audit record.
const PRELOAD_AGENT: &str = "tyrum-secrets";

fn internal(e: impl std::fmt::Display) -> OpenError {
    OpenError::AuditKeys {
        reason: format!("internal: {e}"),
    }
}

/// The catalog's file name in the state directory.
const CATALOG_NAME: &str = "catalog.json";

/// Everything a gateway needs, opened from a [`Config`]: the resolver (its
/// redactor pre-loaded with every value still resolvable), the audited admin
/// handle, the redactor for tracing and writers, and the audit log (chained,
/// anchored, one per open).
///
/// ```no_run
/// use tyrum_secrets::{Config, Secrets};
///
/// let config = Config::load(Some("/etc/tyrum/secrets.toml".as_ref()))?;
/// let secrets = Secrets::open(&config)?;
/// println!("{}", secrets.report()); // what was opened, created, pre-loaded
/// let resolver = secrets.resolver();
/// # let _ = resolver;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Secrets {
    profile: Profile,
    resolver: Arc<Resolver>,
    admin: SecretAdmin,
    redactor: Redactor,
    /// The sink the resolver and the admin write to, for the changes the
    /// facade makes itself (a rekey).
    audit: Arc<dyn AuditSink>,
    audit_dir: PathBuf,
    audit_keys: audit::AuditKeys,
    audit_anchors: anchors::Place,
    report: OpenReport,
}

impl Secrets {
    /// Opens everything `config` describes, creating what is missing on the
    /// first run. See [`open_with`](Self::open_with).
    ///
    /// # Errors
    /// As [`open_with`](Self::open_with).
    pub fn open(config: &Config) -> Result<Secrets, OpenError> {
        Self::open_with(config, OpenOptions::default())
    }

    /// Opens everything `config` describes.
    ///
    /// The first run creates what is missing (the state directory with mode
    /// 0700, the store, the catalog, the audit log and its keys, the state
    /// record) and lists it in [`report`](Self::report). A state directory
    /// that exists already must belong to this process's user and be
    /// writable by no one else (as ssh's `StrictModes`), or it is refused
    /// with the fix ([`OpenError::StateDir`]). A later run checks
    /// the state record: another profile or another store is refused rather
    /// than shadowing the old state with a new empty one. A wrong passphrase
    /// is refused. An audit log, a file store or a catalog behind its
    /// anchor (cut short, or rolled back to an older copy) is refused,
    /// unless the options [accept it](OpenOptions::accept_rollback). The
    /// catalog in the state directory is authenticated (a MAC under a key
    /// kept in the profile's provider, or in `catalog.key` for kubernetes):
    /// an edited catalog is refused, always. A file store in format 1 is
    /// rewritten in format 2 and anchored, once, after everything else was
    /// checked ([`Recovery::StoreUpgraded`]); a plain catalog from before
    /// authentication is sealed the same way, on record in the audit log
    /// ([`Recovery::CatalogUpgraded`]), but only while no key or anchor of
    /// an authenticated catalog exists (else it is a downgrade, refused).
    ///
    /// Opening the same state directory twice, in one process or in
    /// several, is safe: opens take turns on `open.lock`, and each open
    /// writes its own audit log.
    ///
    /// # Errors
    /// [`OpenError`], naming what to fix. A failed open changes no file:
    /// whatever it created is removed. (Two repairs are not undone: an
    /// anchor one record behind its log or store after a crash is moved up,
    /// and a record torn by a crash is cut; neither changes what the file
    /// holds. Nor are the upgrades and accepted refusals listed in
    /// [`OpenReport::recovered`], made once the audit log is open and
    /// recorded there, when a later step of the same open fails: an
    /// upgraded store or catalog keeps its values and entries, and a
    /// catalog is sealed only after its new key is kept.)
    pub fn open_with(config: &Config, options: OpenOptions) -> Result<Secrets, OpenError> {
        let (profile, profile_reason) = match config.profile {
            Some(profile) => (
                profile,
                match config.origin("profile") {
                    crate::config::Location::Default => "set in code".to_owned(),
                    origin @ crate::config::Location::Env { .. } => format!("set by {origin}"),
                    origin => format!("set in {origin}"),
                },
            ),
            None => {
                let detected = Profile::detect();
                (detected.profile, detected.reason)
            }
        };
        if !built(profile) {
            return Err(OpenError::FeatureMissing {
                profile,
                feature: profile.feature(),
            });
        }
        let state_dir = state_dir(config, profile)?;
        let state_key = config.describe("state_dir");
        let inspected = state::inspect(&state_dir, &state_key)?;
        if let Some(record) = &inspected.record {
            check_record(&state_dir, record, config, profile)?;
        } else if options.must_exist {
            return Err(OpenError::StateIncomplete {
                what: "the state record",
                path: state_dir.join(state::RECORD_NAME),
            });
        }
        let policy = policy(config, &options)?;

        let mut created = Created::default();
        let mut secrets = open_state(config, &options, profile, &inspected, policy, &mut created)?;
        secrets.report.profile_reason = profile_reason;
        let store = crate::config::load::resolve(&state_dir, &config.file.path);
        secrets.report.created = report::creations(&created, &state_dir, &store);
        Ok(secrets)
    }

    /// The profile that was opened.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The resolver: the only path from a handle to a value. Its redactor
    /// is [`redactor`](Self::redactor).
    pub fn resolver(&self) -> &Arc<Resolver> {
        &self.resolver
    }

    /// The admin handle: create, import, rotate, revoke, restore, destroy,
    /// each change audited (to the same log as the resolver) and its value
    /// registered with [`redactor`](Self::redactor).
    pub fn admin(&self) -> &SecretAdmin {
        &self.admin
    }

    /// The redactor the resolver registers every value with, pre-loaded at
    /// open: hand it to tracing (`Redactor::make_writer`) and to every
    /// writer whose bytes leave the process.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// What the open did: profile and why, what it created, what it
    /// pre-loaded, warnings.
    pub fn report(&self) -> &OpenReport {
        &self.report
    }

    /// Verifies every audit log of the state directory against its anchor
    /// and the chain key; returns each log with its record count.
    ///
    /// A log that the index of the logs vouches for but that is gone
    /// (deleted with its anchor) fails too.
    ///
    /// # Errors
    /// [`OpenError::AuditLogMissing`], [`OpenError::AuditIndex`],
    /// [`OpenError::AuditCutShort`], [`OpenError::AuditAnchor`],
    /// [`OpenError::AuditTampered`], or an I/O error, for the first log that
    /// fails.
    pub fn verify_audit(&self) -> Result<Vec<(PathBuf, u64)>, OpenError> {
        audit_index::verify_all(&self.audit_dir, &self.audit_keys, &self.audit_anchors)
    }

    /// The records of every audit log whose value fingerprint matches
    /// `candidate`: whether, when and to whom a value an investigator holds
    /// was handed out. Only verified records are searched, read from the
    /// bytes that were verified. Compared in constant time; needs
    /// `audit.fingerprints` (the default) when the records were written.
    ///
    /// # Errors
    /// As [`verify_audit`](Self::verify_audit).
    pub fn find_value(&self, candidate: &SecretBytes) -> Result<Vec<AuditRecord>, OpenError> {
        let key = self.audit_keys.fingerprint()?;
        let logs = audit_index::read_all(&self.audit_dir, &self.audit_keys, &self.audit_anchors)?;
        Ok(logs
            .into_iter()
            .flat_map(|(_, records)| records)
            .filter(|record| key.matches(record, candidate))
            .collect())
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("profile", &self.profile)
            .field("state_dir", &self.report.state_dir)
            .field("audit_log", &self.report.audit_log)
            .field("redactor", &self.redactor)
            .finish_non_exhaustive()
    }
}

/// Whether this build has the backend of `profile`.
fn built(profile: Profile) -> bool {
    match profile {
        Profile::SingleHost => cfg!(feature = "file"),
        Profile::Desktop => cfg!(feature = "keychain"),
        Profile::Kubernetes => cfg!(feature = "env"),
        Profile::Cluster => cfg!(feature = "vault"),
    }
}

fn state_dir(config: &Config, profile: Profile) -> Result<PathBuf, OpenError> {
    match (&config.state_dir, profile) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Profile::Desktop) => backend::desktop_state_dir().ok_or(OpenError::MissingSetting {
            profile,
            key: config.describe("state_dir"),
            why: "no user data directory is known (HOME, XDG_DATA_HOME or APPDATA is unset)",
        }),
        (None, _) => Err(OpenError::MissingSetting {
            profile,
            key: config.describe("state_dir"),
            why: "where the catalog, the audit log and the state record live",
        }),
    }
}

/// A state directory made for another profile, or with the values kept
/// elsewhere, is refused: opening it would shadow its state.
fn check_record(
    dir: &Path,
    record: &state::StateRecord,
    config: &Config,
    profile: Profile,
) -> Result<(), OpenError> {
    if record.profile != profile.as_str() {
        return Err(OpenError::StateMismatch {
            path: dir.to_owned(),
            recorded: format!("the {} profile", record.profile),
            configured: format!("the {profile} profile ({})", config.describe("profile")),
        });
    }
    let values = values_of(config, profile);
    if record.values != values {
        return Err(OpenError::StateMismatch {
            path: dir.to_owned(),
            recorded: format!("values in {}", record.values),
            configured: format!("values in {values}"),
        });
    }
    Ok(())
}

fn values_of(config: &Config, profile: Profile) -> String {
    match profile {
        Profile::SingleHost => backend::single_host_values(config),
        Profile::Desktop => backend::desktop_values(config),
        Profile::Kubernetes => backend::KUBERNETES_VALUES.to_owned(),
        #[cfg(feature = "vault")]
        Profile::Cluster => cluster::values(config),
        #[cfg(not(feature = "vault"))]
        Profile::Cluster => "OpenBao".to_owned(),
    }
}

fn policy(config: &Config, options: &OpenOptions) -> Result<Arc<dyn Policy>, OpenError> {
    if let Some(policy) = &options.policy {
        return Ok(Arc::clone(policy));
    }
    match &config.policy_file {
        Some(path) => RulePolicy::from_file(path)
            .map(|p| Arc::new(p) as Arc<dyn Policy>)
            .map_err(|source| OpenError::Policy {
                path: path.clone(),
                key: config.describe("policy_file"),
                source,
            }),
        None => Ok(Arc::new(RulePolicy::deny_all())),
    }
}

/// The writing part of an open, under the open lock. Everything it
/// creates is in `created`; if it fails, that is removed again while the
/// lock is still held, so no other open sees a half-made state or has it
/// removed from under it. `open.lock` itself stays unless this open made
/// the state directory (see [`state::OpenLock::acquire`]).
fn open_state(
    config: &Config,
    options: &OpenOptions,
    profile: Profile,
    inspected: &state::Inspected,
    policy: Arc<dyn Policy>,
    created: &mut Created,
) -> Result<Secrets, OpenError> {
    let dir = &inspected.dir;
    let locked = state::create_dir_if(inspected.missing, dir, created)
        .and_then(|()| state::OpenLock::acquire(dir, created));
    let lock = match locked {
        Ok(lock) => lock,
        Err(e) => {
            created.remove_all();
            return Err(e);
        }
    };
    let opened = open_locked(config, options, profile, inspected, policy, created);
    if opened.is_err() {
        created.remove_all();
    }
    drop(lock);
    opened
}

/// [`open_state`] once the open lock is held.
fn open_locked(
    config: &Config,
    options: &OpenOptions,
    profile: Profile,
    inspected: &state::Inspected,
    policy: Arc<dyn Policy>,
    created: &mut Created,
) -> Result<Secrets, OpenError> {
    let dir = &inspected.dir;
    // Another process may have finished a first open while this one waited.
    let record = match &inspected.record {
        Some(record) => Some(record.clone()),
        None => {
            let again = state::inspect(dir, &config.describe("state_dir"))?;
            if let Some(record) = &again.record {
                check_record(dir, record, config, profile)?;
            }
            again.record
        }
    };
    let existing = record.is_some();
    let catalog_path = dir.join(CATALOG_NAME);
    // The cluster's catalog is shared, in OpenBao; the others' is here.
    let local_catalog = profile != Profile::Cluster;
    if local_catalog && existing && !catalog_path.exists() {
        return Err(OpenError::StateIncomplete {
            what: "the catalog",
            path: catalog_path,
        });
    }
    // Names this state's anchors outside the directory; records written
    // before anchors were have none.
    let state_id = match &record {
        Some(record) => record.id.clone(),
        None => Some(state::new_state_id()?),
    };

    let (mut backend, pending) = open_backend(
        config,
        options,
        profile,
        dir,
        existing,
        state_id.as_deref(),
        created,
    )?;
    let (keys, made_keys) = audit::load_keys(&backend.keys_home(config, dir, profile), !existing)?;

    let audit_dir = crate::config::load::resolve(dir, &config.audit.dir);
    let audit_anchors = anchors::Place::new(
        audit_anchor_place(config, profile),
        config.anchor_dir.as_deref(),
        state_id.as_deref(),
        || match &backend.keychain {
            Some((provider, what)) => Ok((Arc::clone(provider), what.clone())),
            None => backend::keychain_provider(config),
        },
    )?;
    // The local catalog, against its key and its anchor (kept where the
    // audit logs' anchors are); an upgrade or an accepted refusal waits
    // until the audit log is open to record it.
    let mut local = if backend.catalog.is_some() {
        None
    } else {
        audit_anchors.prepare(created)?;
        let placed = audit_anchors.anchor(&catalog_path, catalog::ANCHOR_NAME)?;
        Some(catalog::LocalCatalog::open(
            &catalog_path,
            &backend.catalog_key_home(config, dir, profile),
            &placed,
            options.accept_rollback.as_ref(),
            created,
        )?)
    };
    // Every log the index vouches for must be there: a log deleted with
    // its anchor, or the whole audit directory, is refused.
    let mut index = audit_index::AuditIndex::new(&audit_anchors, &audit_dir)?;
    // The evidence that the state had an index: the local catalog's key;
    // the cluster profile has no local catalog, but every cluster state
    // was written by a version that keeps one.
    let index_required = match &local {
        Some(local) => local.key_found(),
        None => profile == Profile::Cluster && existing,
    };
    let index_accepted = index.check(&keys, index_required, options.accept_rollback.as_ref())?;
    let opened = audit::open_slot(
        &audit_dir,
        &keys,
        &audit_anchors,
        config.audit.output,
        options.accept_rollback.as_ref(),
        created,
    )?;
    let mut recovered = Vec::new();
    if let Some(refusal) = opened.accepted.clone() {
        recovered.push(Recovery::AuditLogAccepted {
            log: opened.log.clone(),
            refusal,
        });
    }
    if let Some(accepted) = index_accepted {
        recovered.push(audit_index::record_accepted(
            accepted,
            &index,
            opened.sink.as_ref(),
            (&keys, &audit_anchors),
            created,
        )?);
    }
    // Everything is checked: make the store change that waited.
    if let Some(pending) = pending {
        let (provider, recovery) = finish_store(pending, opened.sink.as_ref(), config)?;
        backend.providers[0].1 = Arc::clone(&provider);
        if let Some((keys_provider, _)) = &mut backend.keys_provider {
            *keys_provider = provider;
        }
        recovered.push(recovery);
    }
    let store: Arc<dyn CatalogStore> = match (backend.catalog.take(), &mut local) {
        (Some(store), _) => store,
        (None, Some(local)) => {
            let home = backend.catalog_key_home(config, dir, profile);
            if let Some(recovery) = local.finish(opened.sink.as_ref(), &home, created)? {
                recovered.push(recovery);
            }
            local.store()?
        }
        (None, None) => return Err(internal("no catalog store was opened")),
    };
    if let Some(layer) = &options.provider_layer {
        for (id, provider) in &mut backend.providers {
            *provider = layer(id, Arc::clone(provider));
        }
    }

    let redactor = Redactor::with_min_value_len(config.redaction.min_value_len);
    let mut catalog = Catalog::new(Arc::clone(&store));
    for (id, provider) in &backend.providers {
        catalog = catalog.with_shared_provider(id.clone(), Arc::clone(provider));
    }
    let catalog = Arc::new(catalog);
    let mut sink: Arc<dyn AuditSink> = Arc::clone(&opened.sink);
    if let Some(layer) = &options.audit_layer {
        sink = layer(sink);
    }
    let timeout = Duration::from_millis(config.audit.timeout_ms);
    let mut builder = Resolver::builder(Arc::clone(&catalog), policy, Arc::clone(&sink))
        .redactor(redactor.clone())
        .audit_timeout(timeout);
    if config.audit.fingerprints {
        builder = builder.fingerprint_key(keys.fingerprint()?);
    }
    if let Some(approvals) = &options.approvals {
        builder = builder.approvals(Arc::clone(approvals));
    }
    let resolver = Arc::new(builder.build()?);
    let admin = SecretAdmin::builder(Arc::clone(&catalog), Arc::clone(&sink), &redactor)
        .audit_timeout(timeout)
        .build()?;

    let preloaded = resolver.preload_redactor(
        &Requester::new(PRELOAD_AGENT).map_err(internal)?,
        &Purpose::new("pre-load the redactor at open").map_err(internal)?,
    )?;

    // Last, so that a failed open wrote no keys: new audit keys, then the
    // state record.
    if made_keys {
        audit::persist_keys(&backend.keys_home(config, dir, profile), &keys, created)?;
    }
    if let Some(local) = &mut local {
        local.persist_key(&backend.catalog_key_home(config, dir, profile), created)?;
    }
    index.advance(&keys, created)?;
    if let Some(note) = keys_beside_state_note(config, profile, &backend) {
        backend.notes.push(note);
    }
    if !existing {
        let id = state_id.clone().unwrap_or_default();
        let record = state::StateRecord::new(profile.as_str(), backend.values.clone(), id);
        state::write_record(dir, &record, created)?;
    }
    Ok(Secrets {
        profile,
        resolver,
        admin,
        redactor,
        audit: sink,
        audit_keys: keys,
        audit_anchors,
        report: OpenReport {
            profile,
            profile_reason: String::new(),
            state_dir: dir.clone(),
            created: Vec::new(),
            audit_log: opened.log,
            audit_records_before: opened.records,
            audit_anchor: opened.anchor,
            store_anchor: backend.store_anchor,
            catalog_anchor: local.as_ref().map(|l| l.anchor_location.clone()),
            recovered,
            preload: preloaded,
            notes: backend.notes,
        },
        audit_dir,
    })
}

/// Without a writable provider (kubernetes), keys not named in the config
/// are kept in the state directory, where they protect against nothing that
/// can write it: say so.
fn keys_beside_state_note(
    config: &Config,
    profile: Profile,
    backend: &backend::Backend,
) -> Option<String> {
    if backend.keys_provider.is_some() || profile == Profile::Cluster {
        return None;
    }
    let mut beside = Vec::new();
    if config.audit.key_file.is_none() {
        beside.push("the audit keys (audit.key)");
    }
    if config.catalog_key_file.is_none() {
        beside.push("the catalog key (catalog.key)");
    }
    (!beside.is_empty()).then(|| {
        format!(
            "{} are kept in the state directory, so whoever can write it can forge audit records or catalog entries; mount a Kubernetes Secret and name its files with audit.key_file and catalog_key_file",
            beside.join(" and ")
        )
    })
}

/// Where the audit logs' anchors are kept: as configured, else in the
/// keychain on the desktop and in files elsewhere.
fn audit_anchor_place(config: &Config, profile: Profile) -> crate::config::AnchorPlace {
    use crate::config::AnchorPlace;
    config.audit.anchor.unwrap_or(match profile {
        Profile::Desktop => AnchorPlace::Keychain,
        _ => AnchorPlace::File,
    })
}

#[cfg(feature = "file")]
fn finish_store(
    pending: single_host::PendingStore,
    audit: &dyn AuditSink,
    config: &Config,
) -> Result<(Arc<dyn SecretProvider>, Recovery), OpenError> {
    pending.finish(audit, config)
}

/// Nothing waits without a file store.
#[cfg(not(feature = "file"))]
fn finish_store(
    pending: std::convert::Infallible,
    _audit: &dyn AuditSink,
    _config: &Config,
) -> Result<(Arc<dyn SecretProvider>, Recovery), OpenError> {
    match pending {}
}

#[cfg(feature = "file")]
type Pending = single_host::PendingStore;
#[cfg(not(feature = "file"))]
type Pending = std::convert::Infallible;

fn open_backend(
    config: &Config,
    options: &OpenOptions,
    profile: Profile,
    dir: &Path,
    existing: bool,
    state_id: Option<&str>,
    created: &mut Created,
) -> Result<(backend::Backend, Option<Pending>), OpenError> {
    let missing = |feature| OpenError::FeatureMissing { profile, feature };
    let _ = (config, options, existing, &created, dir, state_id);
    match profile {
        #[cfg(feature = "file")]
        Profile::SingleHost => {
            single_host::single_host(config, options, dir, existing, state_id, created)
        }
        #[cfg(feature = "keychain")]
        Profile::Desktop => Ok((backend::desktop(config)?, None)),
        #[cfg(feature = "env")]
        Profile::Kubernetes => Ok((backend::kubernetes(config)?, None)),
        #[cfg(feature = "vault")]
        Profile::Cluster => Ok((cluster::open(config)?, None)),
        #[allow(
            unreachable_patterns,
            reason = "reached only in builds without some backend feature"
        )]
        other => Err(missing(other.feature())),
    }
}
