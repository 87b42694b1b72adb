//! A worker process: opens the state, then until the deadline runs a random
//! mix of resolves (allowed, denied, approval-required with and without
//! grants, grants bound to another tool or destination), injections into
//! child processes, and logging of what it got through the redacting
//! tracing writer. Each attempt is logged before it starts and after it
//! ends; values are only ever logged through the redactor.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tyrum_secrets::{
    ApprovalGrant, CatalogEntry, Destination, ExposeSecret as _, HandleId, InjectError, Purpose,
    Requester, ResolveRequest,
};
use zeroize::Zeroizing;

use crate::approvals::FileApprovals;
use crate::events::{EventLog, Kind};
use crate::node::{self, Node};
use crate::plan::{Plan, Rng, now_ns};
use crate::values::{self, LogForm, LogPath};

/// The destination grants are approved for.
pub(crate) const GRANT_DESTINATION: &str = "api.torture.example";
/// The tool grants are approved for.
pub(crate) const GRANT_TOOL: &str = "http.fetch";
/// The agent grants are approved for.
pub(crate) const GRANT_AGENT: &str = "torture-approved";

/// The purpose of attempt `a`, as its audit record carries it.
pub(crate) fn purpose_of(a: &str) -> String {
    format!("torture attempt {a}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Resolve,
    Inject,
    Deny,
    NoGrant,
    Grant,
    StaleGrant,
    OtherTool,
    OtherDestination,
}

struct Worker {
    plan: Plan,
    node: Node,
    events: Arc<EventLog>,
    approvals: FileApprovals,
    rng: Rng,
    role: String,
    inc: u32,
    n: u64,
    /// Grants this worker has seen, to present again (most are used up).
    seen_grants: Vec<ApprovalGrant>,
    /// Handles by class.
    allow: Vec<HandleId>,
    deny: Vec<HandleId>,
    approval: Vec<HandleId>,
}

/// The worker role: `args` are the run directory and the worker's index.
pub(crate) fn main(run: &Path, role: &str, inc: u32) {
    let plan = Plan::read(run);
    let events = Arc::new(EventLog::open(&run.join("logs"), role, inc));
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
    let trace = OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.join("logs").join(format!("{role}.trace.log")))
        .expect("open the trace log");
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(node.secrets.redactor().make_writer(Mutex::new(trace)))
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("install the tracing subscriber");
    println!("ready");

    let deadline = crate::harness::read_deadline(run);
    let mut worker = Worker {
        rng: Rng::new(plan.seed, role, u64::from(inc)),
        approvals: FileApprovals::new(run, None),
        plan,
        node,
        events,
        role: role.to_owned(),
        inc,
        n: 0,
        seen_grants: Vec::new(),
        allow: Vec::new(),
        deny: Vec::new(),
        approval: Vec::new(),
    };
    worker.refresh_handles();
    worker.node.start_faults();
    let mut last_counters = Instant::now();
    while now_ns() / 1_000_000 < deadline {
        worker.step();
        if last_counters.elapsed() > Duration::from_millis(500) {
            worker.events.emit(worker.node.provider_faults());
            last_counters = Instant::now();
        }
        let pause = worker.rng.below(worker.plan.worker_pause_ms + 1);
        std::thread::sleep(Duration::from_millis(pause));
    }
    worker.events.emit(worker.node.provider_faults());
    worker.events.emit(Kind::Exit);
}

impl Worker {
    fn refresh_handles(&mut self) {
        let entries: Vec<CatalogEntry> = self.node.secrets.admin().list().unwrap_or_default();
        self.allow.clear();
        self.deny.clear();
        self.approval.clear();
        for entry in entries {
            match entry.handle.scope().as_str() {
                "torture/allow" => self.allow.push(entry.id().clone()),
                "torture/deny" => self.deny.push(entry.id().clone()),
                "torture/approval" => self.approval.push(entry.id().clone()),
                _ => {}
            }
        }
    }

    fn step(&mut self) {
        let op = self.rng.weighted(&[
            (Op::Resolve, 40),
            (Op::Inject, 8),
            (Op::Deny, 6),
            (Op::NoGrant, 6),
            (Op::Grant, 20),
            (Op::StaleGrant, 8),
            (Op::OtherTool, 4),
            (Op::OtherDestination, 4),
        ]);
        self.n += 1;
        let a = format!("{}.{}.{}", self.role, self.inc, self.n);
        match op {
            Op::Resolve => {
                if let Some(h) = self.pick(Class::Allow) {
                    let req = self.request(
                        &a,
                        &format!("torture-{}", self.role),
                        "http.fetch",
                        &a,
                        None,
                    );
                    self.resolve(&a, &h, "allow", "resolve", None, "ok", &req);
                }
            }
            Op::Inject => {
                if let Some(h) = self.pick(Class::Allow) {
                    self.inject(&a, &h);
                }
            }
            Op::Deny => {
                if let Some(h) = self.pick(Class::Deny) {
                    let req = self.request(
                        &a,
                        &format!("torture-{}", self.role),
                        "http.fetch",
                        &a,
                        None,
                    );
                    self.resolve(&a, &h, "deny", "resolve", None, "deny", &req);
                }
            }
            Op::NoGrant => {
                if let Some(h) = self.pick(Class::Approval) {
                    let req =
                        self.request(&a, GRANT_AGENT, GRANT_TOOL, &a, Some(GRANT_DESTINATION));
                    self.resolve(&a, &h, "approval", "no-grant", None, "deny", &req);
                }
            }
            Op::Grant | Op::StaleGrant | Op::OtherTool | Op::OtherDestination => {
                self.with_grant(&a, op);
            }
        }
    }

    fn pick(&mut self, class: Class) -> Option<HandleId> {
        let list = match class {
            Class::Allow => &self.allow,
            Class::Deny => &self.deny,
            Class::Approval => &self.approval,
        };
        if list.is_empty() {
            return None;
        }
        Some(list[self.rng.below(list.len() as u64) as usize].clone())
    }

    fn request(
        &self,
        a: &str,
        agent: &str,
        tool: &str,
        call: &str,
        destination: Option<&str>,
    ) -> ResolveRequest {
        let requester = Requester::new(agent)
            .and_then(|r| r.tool(tool))
            .and_then(|r| r.tool_call(call))
            .expect("valid requester ids");
        let mut req =
            ResolveRequest::new(requester, Purpose::new(purpose_of(a)).expect("a purpose"));
        if let Some(d) = destination {
            req = req.to(Destination::host(d).expect("a destination"));
        }
        req
    }

    /// An approval-required attempt with a grant: a fresh one from the
    /// store, one seen before (probably used up), or a fresh one presented
    /// for another tool or destination than it was approved for.
    fn with_grant(&mut self, a: &str, op: Op) {
        let grant = if op == Op::StaleGrant && !self.seen_grants.is_empty() {
            let i = self.rng.below(self.seen_grants.len() as u64) as usize;
            self.seen_grants[i].clone()
        } else {
            let mut issued = self.approvals.issued();
            if issued.is_empty() {
                return;
            }
            issued.sort_by(|x, y| x.approval_id.cmp(&y.approval_id));
            let grant = issued[self.rng.below(issued.len() as u64) as usize].clone();
            if self.seen_grants.len() >= 16 {
                self.seen_grants.remove(0);
            }
            self.seen_grants.push(grant.clone());
            grant
        };
        let (tool, destination, mode, expect) = match op {
            Op::OtherTool => ("shell.exec", GRANT_DESTINATION, "other-tool", "deny"),
            Op::OtherDestination => (
                GRANT_TOOL,
                "other.torture.example",
                "other-destination",
                "deny",
            ),
            Op::StaleGrant => (GRANT_TOOL, GRANT_DESTINATION, "stale-grant", "maybe"),
            _ => (GRANT_TOOL, GRANT_DESTINATION, "grant", "maybe"),
        };
        let req = self
            .request(
                a,
                &grant.agent,
                tool,
                &grant.tool_call_id,
                Some(destination),
            )
            .with_approval(grant.clone());
        let h = grant.handle.clone();
        let one_shot = Some(grant.one_shot);
        self.events.emit(Kind::Start {
            a: a.to_owned(),
            h: h.as_str().to_owned(),
            class: "approval".into(),
            mode: mode.into(),
            grant: Some(grant.approval_id.clone()),
            one_shot,
            expect: expect.into(),
        });
        self.finish_resolve(a, &h, &req);
    }

    #[allow(clippy::too_many_arguments, reason = "one call site per attempt kind")]
    fn resolve(
        &mut self,
        a: &str,
        h: &HandleId,
        class: &str,
        mode: &str,
        grant: Option<String>,
        expect: &str,
        req: &ResolveRequest,
    ) {
        self.events.emit(Kind::Start {
            a: a.to_owned(),
            h: h.as_str().to_owned(),
            class: class.into(),
            mode: mode.into(),
            grant,
            one_shot: None,
            expect: expect.into(),
        });
        self.finish_resolve(a, h, req);
    }

    fn finish_resolve(&mut self, a: &str, h: &HandleId, req: &ResolveRequest) {
        match self.node.secrets.resolver().resolve(h, req) {
            Ok(secret) => {
                let op = values::identify(self.plan.seed, secret.expose_secret());
                self.events.emit(Kind::Handed {
                    a: a.to_owned(),
                    op,
                    version: Some(secret.version().get()),
                });
                // What a tool might print: the value, in some encoding,
                // through the redacting tracing writer.
                let form = LogForm::ALL[self.rng.below(LogForm::ALL.len() as u64) as usize];
                let path = if self.rng.chance(0.5) {
                    LogPath::Message
                } else {
                    LogPath::Field
                };
                let form = values::loggable(form, path, secret.expose_secret());
                let text = form.render(secret.expose_secret());
                log_tool_output(a, form, path, text.as_str());
            }
            Err(e) => self.events.emit(Kind::Refused {
                a: a.to_owned(),
                error: e.kind().to_string(),
            }),
        }
    }

    /// Injects the value into a child process's environment; the child
    /// prints it; the worker logs what the child printed.
    fn inject(&mut self, a: &str, h: &HandleId) {
        let req = self.request(a, &format!("torture-{}", self.role), "shell.exec", a, None);
        self.events.emit(Kind::Start {
            a: a.to_owned(),
            h: h.as_str().to_owned(),
            class: "allow".into(),
            mode: "inject".into(),
            grant: None,
            one_shot: None,
            expect: "ok".into(),
        });
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg("printf '%s' \"$TORTURE_VALUE\"")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match self
            .node
            .secrets
            .resolver()
            .inject_env(&mut command, [("TORTURE_VALUE", h)], &req)
        {
            Ok(()) => {
                let output = command.output();
                drop(command);
                let stdout = Zeroizing::new(output.map(|o| o.stdout).unwrap_or_default());
                let op = values::identify(self.plan.seed, &stdout);
                self.events.emit(Kind::Handed {
                    a: a.to_owned(),
                    op,
                    version: None,
                });
                let text = Zeroizing::new(String::from_utf8_lossy(&stdout).into_owned());
                tracing::info!(attempt = %a, "child printed: {}", text.as_str());
            }
            Err(InjectError::Resolve { source, .. }) => self.events.emit(Kind::Refused {
                a: a.to_owned(),
                error: source.kind().to_string(),
            }),
            Err(_) => self.events.emit(Kind::Refused {
                a: a.to_owned(),
                error: "inject".into(),
            }),
        }
    }
}

/// Logs what a tool printed through the process's tracing subscriber, as
/// the event message (`tracing-subscriber` escapes control characters in
/// it) or as a `&str` field (written with `{:?}`).
pub(crate) fn log_tool_output(a: &str, form: LogForm, path: LogPath, text: &str) {
    match path {
        LogPath::Message => tracing::info!(attempt = %a, "tool output ({form:?}): {}", text),
        LogPath::Field => tracing::debug!(attempt = %a, output = text, "tool output"),
    }
}

#[derive(Clone, Copy)]
enum Class {
    Allow,
    Deny,
    Approval,
}
