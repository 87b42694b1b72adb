//! One process's view of the system: `Secrets::open` on the run's config,
//! with the fault injectors layered in (the testkit's `FaultyProvider`
//! around the real provider, [`FaultyAudit`] around the anchored audit
//! log), and the run's approval store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tyrum_secrets::{
    AuditError, AuditRecord, AuditSink, Config, OpenError, OpenOptions, SecretProvider, Secrets,
};
use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};

use crate::approvals::FileApprovals;
use crate::events::{EventLog, Kind};
use crate::plan::{Plan, Rng};

/// The provider as every process sees it: the real one, wrapped.
pub(crate) type Provider = FaultyProvider<Arc<dyn SecretProvider>>;

/// An opened process.
pub(crate) struct Node {
    pub(crate) secrets: Secrets,
    pub(crate) provider: Arc<Provider>,
    pub(crate) audit: Arc<FaultyAudit>,
    provider_plan: FaultPlan,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// The config file of the run.
pub(crate) fn config_path(run: &Path) -> PathBuf {
    run.join("torture.toml")
}

/// The OpenBao server of a cluster run, as the config names it.
#[derive(Clone, Debug)]
pub(crate) struct Bao {
    /// `https://127.0.0.1:PORT`.
    pub(crate) address: String,
    /// The PEM of the CA that signed the dev server's certificate.
    pub(crate) ca_file: PathBuf,
}

/// The KV paths (under the dev server's `secret/` mount) of a cluster
/// run's values and catalog.
pub(crate) const BAO_VALUES_PATH: &str = "torture/values";
pub(crate) const BAO_CATALOG_PATH: &str = "torture/catalog";

/// The state directory `role` opens: the one shared `state/` of the
/// single-host profile (store, catalog and one audit log per process), or
/// in a cluster each process's own `state/<role>/` (its audit log, its
/// audit keys and anchor), as every node of a real cluster has its own
/// disk. A restarted role reopens its own directory.
pub(crate) fn state_dir(run: &Path, plan: &Plan, role: &str) -> PathBuf {
    match plan.profile.as_str() {
        "cluster" => run.join("state").join(role),
        _ => run.join("state"),
    }
}

/// Every state directory of the run so far: for the audit logs the checker
/// reads, and (cluster) the per-process states it reopens.
pub(crate) fn state_dirs(run: &Path, plan: &Plan) -> Vec<PathBuf> {
    match plan.profile.as_str() {
        "cluster" => {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir(run.join("state"))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default();
            dirs.sort();
            dirs
        }
        _ => vec![run.join("state")],
    }
}

/// Writes the run's config for `plan.profile`: with `state_dir` (the
/// shared one; a cluster process's own is set by [`open`]), the policy,
/// the audit timeout, and the store's passphrase (single-host) or the
/// OpenBao server, its CA and a token file (cluster).
pub(crate) fn write_config(run: &Path, plan: &Plan, bao: Option<&Bao>) {
    let state = run.join("state");
    let common = format!(
        "state_dir = {state:?}\n\
         policy_file = {policy:?}\n",
        state = state.display().to_string(),
        policy = run.join("policy.json").display().to_string(),
    );
    let audit = format!("[audit]\ntimeout_ms = {}\n", plan.audit_timeout_ms);
    let text = match (plan.profile.as_str(), bao) {
        ("single-host", _) => format!(
            "profile = \"single-host\"\n\
             {common}\
             passphrase_file = {pass:?}\n\
             [file]\n\
             lock_timeout_ms = 30000\n\
             {audit}",
            pass = run.join("passphrase").display().to_string(),
        ),
        ("cluster", Some(bao)) => format!(
            "profile = \"cluster\"\n\
             {common}\
             {audit}\
             [vault]\n\
             address = {address:?}\n\
             ca_file = {ca:?}\n\
             token_file = {token:?}\n\
             values_path = {BAO_VALUES_PATH:?}\n\
             catalog_path = {BAO_CATALOG_PATH:?}\n\
             timeout_ms = 10000\n",
            address = bao.address,
            ca = bao.ca_file.display().to_string(),
            token = run.join("bao-token").display().to_string(),
        ),
        ("cluster", None) => panic!("a cluster run needs its OpenBao server"),
        (other, _) => panic!("TORTURE_PROFILE={other} is unknown: single-host or cluster"),
    };
    std::fs::write(config_path(run), text).expect("write the config");
    std::fs::write(
        run.join("passphrase"),
        "torture passphrase, not a secret value\n",
    )
    .expect("write the passphrase file");
    std::fs::write(run.join("policy.json"), POLICY).expect("write the policy");
}

/// Allow, deny and approval classes by scope; anything else is denied.
const POLICY: &str = r#"{
  "default": "deny",
  "rules": [
    { "id": "torture-allow", "effect": "allow", "secret": "*:torture/allow", "agent": "torture-*" },
    { "id": "torture-deny", "effect": "deny", "secret": "*:torture/deny" },
    { "id": "torture-approval", "effect": "require_approval", "secret": "*:torture/approval" }
  ]
}"#;

/// Opens the run's state as `role` would (in its state directory, see
/// [`state_dir`]): faults are off until [`Node::start_faults`], so the open
/// itself is never faulted.
pub(crate) fn open(
    run: &Path,
    plan: &Plan,
    events: &Arc<EventLog>,
    role: &str,
) -> Result<Node, OpenError> {
    let mut config = Config::from_file(&config_path(run)).map_err(OpenError::from)?;
    config.state_dir = Some(state_dir(run, plan, role));
    let provider_slot: Arc<OnceLock<Arc<Provider>>> = Arc::new(OnceLock::new());
    let audit_slot: Arc<OnceLock<Arc<FaultyAudit>>> = Arc::new(OnceLock::new());
    let seed = plan.seed ^ u64::from(events.inc());
    let options = OpenOptions::new()
        .dangerous_insecure_kdf_for_tests()
        .approvals(Arc::new(FileApprovals::new(run, Some(Arc::clone(events)))))
        .provider_layer({
            let slot = Arc::clone(&provider_slot);
            let seed = Rng::new(seed, role, 1).next();
            move |_id, inner| {
                let faulty = Arc::new(FaultyProvider::new(
                    inner,
                    FaultPlan {
                        seed,
                        ..FaultPlan::none()
                    },
                ));
                let _ = slot.set(Arc::clone(&faulty));
                faulty as Arc<dyn SecretProvider>
            }
        })
        .audit_layer({
            let slot = Arc::clone(&audit_slot);
            let events = Arc::clone(events);
            let plan = plan.clone();
            let rng = Rng::new(seed, role, 2);
            move |inner| {
                let layer = Arc::new(FaultyAudit {
                    inner,
                    events: Arc::clone(&events),
                    rng: Mutex::new(rng.clone()),
                    plan: plan.clone(),
                    enabled: AtomicBool::new(false),
                });
                let _ = slot.set(Arc::clone(&layer));
                layer as Arc<dyn AuditSink>
            }
        });
    let secrets = Secrets::open_with(&config, options)?;
    let (Some(provider), Some(audit)) = (provider_slot.get(), audit_slot.get()) else {
        panic!("Secrets::open did not apply the provider and audit layers");
    };
    Ok(Node {
        secrets,
        provider: Arc::clone(provider),
        audit: Arc::clone(audit),
        provider_plan: FaultPlan {
            fail_fraction: plan.provider_fail,
            delay_fraction: plan.provider_delay,
            delay: Duration::from_millis(plan.provider_delay_ms),
            seed: 1,
        },
    })
}

impl Node {
    /// Switches the provider and audit faults on.
    pub(crate) fn start_faults(&self) {
        self.provider.set_plan(self.provider_plan);
        self.audit.enabled.store(true, Ordering::SeqCst);
    }

    /// The provider fault counters, as an event.
    pub(crate) fn provider_faults(&self) -> Kind {
        Kind::ProviderFaults {
            calls: self.provider.calls(),
            failed: self.provider.failures(),
            delayed: self.provider.delays(),
        }
    }
}

/// An audit sink layer that refuses some records, delays some under the
/// timeout and stalls some past it; and logs every record that reached the
/// log (after the inner sink returned), so the checker can order a
/// record's storage against the hand-over.
pub(crate) struct FaultyAudit {
    inner: Arc<dyn AuditSink>,
    events: Arc<EventLog>,
    rng: Mutex<Rng>,
    plan: Plan,
    enabled: AtomicBool,
}

impl fmt::Debug for FaultyAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyAudit")
            .field("inner", &self.inner)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

enum Fault {
    None,
    Fail,
    Delay(u64),
    Stall,
}

impl AuditSink for FaultyAudit {
    fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let fault = if self.enabled.load(Ordering::SeqCst) {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            if rng.chance(self.plan.audit_fail) {
                Fault::Fail
            } else if rng.chance(self.plan.audit_stall) {
                Fault::Stall
            } else if rng.chance(self.plan.audit_delay) {
                Fault::Delay(rng.range(1, self.plan.audit_delay_max_ms.max(2)))
            } else {
                Fault::None
            }
        } else {
            Fault::None
        };
        match fault {
            Fault::None => {}
            Fault::Fail => {
                self.events.emit(Kind::AuditFault {
                    fault: "fail".into(),
                });
                return Err(AuditError::rejected(
                    "injected fault: the audit store refused the record",
                ));
            }
            Fault::Delay(ms) => {
                self.events.emit(Kind::AuditFault {
                    fault: "delay".into(),
                });
                std::thread::sleep(Duration::from_millis(ms));
            }
            Fault::Stall => {
                self.events.emit(Kind::AuditFault {
                    fault: "stall".into(),
                });
                std::thread::sleep(Duration::from_millis(self.plan.audit_timeout_ms + 300));
            }
        }
        let purpose = record.purpose.clone();
        let action = name(&record.action);
        let outcome = name(&record.outcome);
        self.inner.record(record)?;
        self.events.emit(Kind::Audited {
            purpose,
            action,
            outcome,
        });
        Ok(())
    }
}

/// The snake_case name serde gives a unit enum variant.
pub(crate) fn name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".into(),
    }
}
