//! The admin process: on the first start creates the handles; on every
//! start logs what it finds (so the checker knows the state after a kill);
//! then until the deadline rotates (with and without grace), revokes,
//! restores, destroys old versions, sets and clears expiries, retires
//! versions whose grace ended, and issues approval grants, at random.
//!
//! Operations are numbered across restarts (`k`, the next number after the
//! last one this role logged); operation `k`'s new value is
//! `values::value_for(seed, k)`, held in memory only.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets::{
    AdminError, AdminRequest, ApprovalGrant, CatalogEntry, Destination, EntryStatus, HandleId,
    KindSpec, NewSecret, ProviderId, Purpose, Requester, RotateOptions, Scope, SecretBytes,
    Timestamp, Version, VersionPin,
};

use crate::approvals::FileApprovals;
use crate::events::{self, EventLog, Kind};
use crate::node::{self, Node};
use crate::plan::{Plan, Rng, now_ns};
use crate::values;
use crate::worker::{GRANT_AGENT, GRANT_DESTINATION, GRANT_TOOL};

/// Approval grants kept on offer.
const GRANT_POOL: usize = 4;

/// The purpose of admin operation `k`, as its audit record carries it.
pub(crate) fn purpose_of(k: u64) -> String {
    format!("torture op {k}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Rotate,
    Revoke,
    Restore,
    ExpireSoon,
    ExpirePast,
    ClearExpiry,
    Destroy,
    RetireDue,
}

struct Admin {
    plan: Plan,
    node: Node,
    events: Arc<EventLog>,
    approvals: FileApprovals,
    rng: Rng,
    k: u64,
}

pub(crate) fn main(run: &Path, role: &str, inc: u32) {
    let plan = Plan::read(run);
    let logs = run.join("logs");
    let k = events::read(&events::path(&logs, role))
        .expect("the admin reads its own log")
        .0
        .iter()
        .filter_map(|e| match e.kind {
            Kind::OpStart { k, .. } => Some(k + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let events = Arc::new(EventLog::open(&logs, role, inc));
    let node = match node::open(run, &plan, &events, role) {
        Ok(node) => node,
        Err(e) => {
            events.emit(Kind::OpenFailed {
                error: e.to_string(),
            });
            std::process::exit(3);
        }
    };
    events.emit(Kind::Opened {
        mutation: tyrum_secrets::core::active_mutation_name().map(str::to_owned),
        audit_log: node.secrets.report().audit_log.display().to_string(),
        preloaded: node.secrets.report().preload.loaded_count(),
    });
    let mut admin = Admin {
        rng: Rng::new(plan.seed, role, u64::from(inc)),
        approvals: FileApprovals::new(run, None),
        plan,
        node,
        events,
        k,
    };
    let entries = admin
        .node
        .secrets
        .admin()
        .list()
        .expect("the admin lists the catalog");
    if entries.is_empty() && inc == 0 {
        admin.setup();
        admin.events.emit(Kind::SetupDone);
        std::fs::write(run.join("setup.done"), b"").expect("write the setup marker");
    }
    for entry in admin
        .node
        .secrets
        .admin()
        .list()
        .expect("the admin lists the catalog")
    {
        admin.events.emit(observe(&entry));
    }
    println!("ready");
    let deadline = crate::harness::read_deadline(run);
    admin.node.start_faults();
    while now_ns() / 1_000_000 < deadline {
        admin.step();
        let pause = admin
            .rng
            .range(admin.plan.admin_pause_min_ms, admin.plan.admin_pause_max_ms);
        std::thread::sleep(Duration::from_millis(pause));
    }
    admin.events.emit(admin.node.provider_faults());
    admin.events.emit(Kind::Exit);
}

fn observe(entry: &CatalogEntry) -> Kind {
    Kind::Observe {
        h: entry.id().as_str().to_owned(),
        revoked: matches!(entry.status, EntryStatus::Revoked { .. }),
        expires_ms: entry.expires_at.map(Timestamp::unix_millis),
        version: pinned(entry).map(Version::get),
    }
}

fn pinned(entry: &CatalogEntry) -> Option<Version> {
    match entry.current {
        VersionPin::Pinned(v) => Some(v),
        VersionPin::Latest => None,
    }
}

/// The provider id of the run's profile.
pub(crate) fn provider_id(plan: &Plan) -> ProviderId {
    let name = match plan.profile.as_str() {
        "single-host" => "file",
        "cluster" => "vault",
        other => panic!("no provider id known for profile {other}"),
    };
    ProviderId::new(name).expect("a provider id")
}

impl Admin {
    fn by(&self) -> AdminRequest {
        AdminRequest::new(
            Requester::new("torture-admin").expect("an agent id"),
            Purpose::new(purpose_of(self.k)).expect("a purpose"),
        )
    }

    /// Starts operation `k`: logs it, returns its request.
    fn start(&mut self, op: &str, h: Option<&HandleId>) -> AdminRequest {
        self.start_with(op, h, None, None, None)
    }

    fn start_with(
        &mut self,
        op: &str,
        h: Option<&HandleId>,
        expiry_ms: Option<u64>,
        version: Option<u64>,
        grace_ms: Option<u64>,
    ) -> AdminRequest {
        self.events.emit(Kind::OpStart {
            k: self.k,
            op: op.into(),
            h: h.map(|h| h.as_str().to_owned()),
            expiry_ms,
            version,
            grace_ms,
        });
        self.by()
    }

    /// Ends operation `k`: logs how, and moves to `k + 1`.
    fn end<T>(&mut self, result: Result<T, AdminError>, version: impl FnOnce(&T) -> Option<u64>) {
        let kind = match &result {
            Ok(value) => Kind::OpAck {
                k: self.k,
                version: version(value),
                h: None,
            },
            Err(e) => Kind::OpFail {
                k: self.k,
                error: e.kind().to_string(),
            },
        };
        self.events.emit(kind);
        self.k += 1;
    }

    fn setup(&mut self) {
        let classes = [
            ("allow", self.plan.allow_handles),
            ("deny", self.plan.deny_handles),
            ("approval", self.plan.approval_handles),
        ];
        for (class, count) in classes {
            for _ in 0..count {
                let by = self.start("create", None);
                let value = SecretBytes::from(values::value_for(self.plan.seed, self.k).to_vec());
                let spec = NewSecret::new(
                    provider_id(&self.plan),
                    Scope::new(format!("torture/{class}")).expect("a scope"),
                    KindSpec::api_key(),
                );
                let result = self.node.secrets.admin().create(spec, &value, &by);
                let version = result
                    .as_ref()
                    .ok()
                    .and_then(|h| self.node.secrets.admin().entry(h.id()).ok())
                    .and_then(|e| pinned(&e))
                    .map(Version::get);
                let created = result.map(|h| h.id().as_str().to_owned());
                self.events.emit(match &created {
                    Ok(h) => Kind::OpAck {
                        k: self.k,
                        version,
                        h: Some(h.clone()),
                    },
                    Err(e) => Kind::OpFail {
                        k: self.k,
                        error: e.kind().to_string(),
                    },
                });
                self.k += 1;
                created.expect("setup creates every handle (faults are off)");
            }
        }
    }

    fn step(&mut self) {
        let Ok(entries) = self.node.secrets.admin().list() else {
            return;
        };
        if entries.is_empty() {
            return;
        }
        self.top_up_grants(&entries);
        let entry = entries[self.rng.below(entries.len() as u64) as usize].clone();
        let revoked = matches!(entry.status, EntryStatus::Revoked { .. });
        let expiring = entry.expires_at.is_some();
        let op = self.rng.weighted(&[
            (Op::Rotate, 30),
            (Op::Revoke, if revoked { 0 } else { 8 }),
            (Op::Restore, if revoked { 60 } else { 0 }),
            (Op::ExpireSoon, if expiring { 0 } else { 6 }),
            (Op::ExpirePast, if expiring { 0 } else { 2 }),
            (Op::ClearExpiry, if expiring { 60 } else { 0 }),
            (Op::Destroy, 5),
            (Op::RetireDue, 4),
        ]);
        let id = entry.id().clone();
        match op {
            Op::Rotate => {
                let grace = match self.rng.below(4) {
                    0 => None,
                    1 => Some(0),
                    _ => Some(self.rng.range(1, 1500)),
                };
                let by = self.start_with("rotate", Some(&id), None, None, grace);
                let value = SecretBytes::from(values::value_for(self.plan.seed, self.k).to_vec());
                let mut options = RotateOptions::default();
                if let Some(ms) = grace {
                    options = options.retire_previous_after(Duration::from_millis(ms));
                }
                let result = self.node.secrets.admin().rotate(&id, &value, options, &by);
                self.end(result, |v| Some(v.get()));
            }
            Op::Revoke => {
                let by = self.start("revoke", Some(&id));
                let result = self.node.secrets.admin().revoke(&id, &by);
                self.end(result, |()| None);
            }
            Op::Restore => {
                let by = self.start("restore", Some(&id));
                let result = self.node.secrets.admin().restore(&id, &by);
                self.end(result, |()| None);
            }
            Op::ExpireSoon | Op::ExpirePast | Op::ClearExpiry => {
                let now = Timestamp::now().unix_millis();
                let at = match op {
                    Op::ExpireSoon => Some(now + self.rng.range(0, 300)),
                    Op::ExpirePast => Some(now.saturating_sub(self.rng.range(1, 1000))),
                    _ => None,
                };
                let by = self.start_with("set_expiry", Some(&id), at, None, None);
                let result = self.node.secrets.admin().set_expiry(
                    &id,
                    at.map(Timestamp::from_unix_millis),
                    &by,
                );
                self.end(result, |()| None);
            }
            Op::Destroy => {
                let Some(current) = pinned(&entry) else {
                    return;
                };
                if current.get() < 2 {
                    return;
                }
                let version = self.rng.range(1, current.get());
                let by = self.start_with("destroy", Some(&id), None, Some(version), None);
                let result = self.node.secrets.admin().destroy(
                    &id,
                    Version::new(version).expect("a version number is at least 1"),
                    &by,
                );
                self.end(result, |()| None);
            }
            Op::RetireDue => {
                let by = self.start("retire_due", None);
                let result = self.node.secrets.admin().retire_due(&by);
                self.end(result, |_| None);
            }
        }
    }

    /// Keeps `GRANT_POOL` unexpired grants on offer for the approval
    /// handles.
    fn top_up_grants(&mut self, entries: &[CatalogEntry]) {
        let now = Timestamp::now();
        self.approvals.sweep(Timestamp::from_unix_millis(
            now.unix_millis().saturating_sub(2000),
        ));
        let live = self
            .approvals
            .issued()
            .iter()
            .filter(|g| g.expires_at > now)
            .count();
        let approval: Vec<&CatalogEntry> = entries
            .iter()
            .filter(|e| e.handle.scope().as_str() == "torture/approval")
            .collect();
        if live >= GRANT_POOL || approval.is_empty() {
            return;
        }
        let h = approval[self.rng.below(approval.len() as u64) as usize]
            .id()
            .clone();
        let _by = self.start("grant", Some(&h));
        let requester = Requester::new(GRANT_AGENT)
            .and_then(|r| r.tool(GRANT_TOOL))
            .and_then(|r| r.tool_call(format!("call-{}", self.k)))
            .expect("valid requester ids");
        let expires = now.saturating_add(Duration::from_millis(self.plan.grant_ttl_ms));
        let mut grant = ApprovalGrant::for_request(
            format!("g-{}", self.k),
            h.clone(),
            &requester,
            Some(&Destination::host(GRANT_DESTINATION).expect("a destination")),
            expires,
        )
        .expect("the requester names a tool call");
        if self.rng.chance(0.15) {
            grant = grant.reusable();
        }
        match self.approvals.issue(&grant) {
            Ok(()) => {
                self.events.emit(Kind::GrantIssued {
                    g: grant.approval_id.clone(),
                    h: h.as_str().to_owned(),
                    one_shot: grant.one_shot,
                    expires_ms: expires.unix_millis(),
                });
                self.events.emit(Kind::OpAck {
                    k: self.k,
                    version: None,
                    h: None,
                });
            }
            Err(e) => self.events.emit(Kind::OpFail {
                k: self.k,
                error: e.kind().to_string(),
            }),
        }
        self.k += 1;
    }
}
