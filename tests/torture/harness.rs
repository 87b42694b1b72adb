//! The harness: lays out a run directory, starts the admin (which sets the
//! handles up) and the workers, SIGKILLs random processes at random moments
//! and restarts them, and after the deadline waits for everything to stop.
//!
//! Run directory: `plan.json`, `torture.toml`, `passphrase`, `policy.json`,
//! `state/` (store, catalog, audit logs; in a cluster run one directory per
//! process, `state/<role>/`, with its audit log), `approvals/`, `logs/`
//! (event and trace logs), `out/` (each process's stdout and stderr),
//! `deadline`; in a cluster run also `bao-token` and, after the run,
//! `bao/catalog/` (the catalog entries as OpenBao stores them, for the
//! scan).
//!
//! A cluster run starts one real OpenBao dev server (TLS,
//! `tyrum_secrets_testkit::bao`) before the admin and keeps it until the
//! checker is done: values and catalog live in it, shared by every process.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tyrum_secrets_testkit::bao::BaoServer;
use tyrum_secrets_testkit::process;

use crate::approvals::FileApprovals;
use crate::events::{EventLog, Kind};
use crate::node;
use crate::plan::{Plan, Rng, now_ns};

/// A started admin or worker.
struct Proc {
    role: String,
    inc: u32,
    child: Child,
    ready: Arc<AtomicBool>,
    stdout: Option<JoinHandle<()>>,
}

/// What the harness did, for the report.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    pub(crate) dir: PathBuf,
    pub(crate) worker_kills: u64,
    pub(crate) admin_kills: u64,
    pub(crate) early_exits: u64,
    pub(crate) hung: Vec<String>,
    /// From the deadline being set to the last process stopping.
    pub(crate) run_time: Duration,
    pub(crate) setup_time: Duration,
    /// The OpenBao server of a cluster run, alive until this is dropped
    /// (after the checker reopened the state on it).
    pub(crate) bao: Option<BaoServer>,
}

/// How many times one role is restarted after exiting on its own (e.g.
/// its open failed) before the harness gives up on it.
const MAX_EARLY_EXITS: u64 = 20;

/// Runs `plan` in a new run directory and returns what happened. The
/// directory is left for the checker (and kept on failure).
pub(crate) fn run(plan: &Plan) -> Ran {
    let dir = tempfile::Builder::new()
        .prefix("torture-")
        .tempdir()
        .expect("create the run directory")
        .keep();
    for sub in ["logs", "out"] {
        fs::create_dir_all(dir.join(sub)).expect("create the run directory");
    }
    FileApprovals::create(&dir);
    plan.write(&dir);
    let bao = (plan.profile == "cluster").then(|| start_bao(&dir));
    node::write_config(&dir, plan, bao.as_ref().map(|(_, config)| config));
    let log = EventLog::open(&dir.join("logs"), "harness", 0);
    let mut ran = Ran {
        dir: dir.clone(),
        bao: bao.map(|(server, _)| server),
        ..Ran::default()
    };

    let setup_start = Instant::now();
    let mut procs = vec![spawn(&dir, plan, &log, "admin", 0)];
    while !dir.join("setup.done").exists() {
        if let Ok(Some(status)) = procs[0].child.try_wait() {
            panic!(
                "the admin exited during setup ({status}); see {}",
                dir.join("out").display()
            );
        }
        assert!(
            setup_start.elapsed() < Duration::from_secs(120),
            "the admin did not finish setup within 120 s; see {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ran.setup_time = setup_start.elapsed();
    let start = Instant::now();
    let deadline = now_ns() / 1_000_000 + plan.duration_ms;
    write_atomic(&dir.join("deadline"), deadline.to_string().as_bytes());
    for i in 0..plan.workers {
        procs.push(spawn(&dir, plan, &log, &format!("w{i}"), 0));
    }

    let mut rng = Rng::new(plan.seed, "harness", 0);
    let kills = plan.kill_max_ms > 0;
    let mut next_kill =
        Instant::now() + Duration::from_millis(rng.range(plan.kill_min_ms, plan.kill_max_ms));
    let mut early: std::collections::BTreeMap<String, u64> = Default::default();
    let late = |now: u64| now + 500 >= deadline;
    while now_ns() / 1_000_000 < deadline {
        for p in &mut procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                finish(p);
                log.emit(Kind::Exited {
                    target: p.role.clone(),
                    target_inc: p.inc,
                    code: status.code(),
                });
                ran.early_exits += 1;
                let count = early.entry(p.role.clone()).or_default();
                *count += 1;
                if !late(now_ns() / 1_000_000) && *count <= MAX_EARLY_EXITS {
                    *p = spawn(&dir, plan, &log, &p.role.clone(), p.inc + 1);
                }
            }
        }
        if kills && Instant::now() >= next_kill && !late(now_ns() / 1_000_000) {
            let ready: Vec<usize> = (0..procs.len())
                .filter(|&i| {
                    procs[i].ready.load(Ordering::SeqCst)
                        && matches!(procs[i].child.try_wait(), Ok(None))
                })
                .collect();
            if !ready.is_empty() {
                let i = ready[rng.below(ready.len() as u64) as usize];
                let p = &mut procs[i];
                let _ = p.child.kill();
                let _ = p.child.wait();
                finish(p);
                log.emit(Kind::Kill {
                    target: p.role.clone(),
                    target_inc: p.inc,
                });
                if p.role == "admin" {
                    ran.admin_kills += 1;
                } else {
                    ran.worker_kills += 1;
                }
                *p = spawn(&dir, plan, &log, &p.role.clone(), p.inc + 1);
            }
            next_kill = Instant::now()
                + Duration::from_millis(rng.range(plan.kill_min_ms, plan.kill_max_ms));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Everything stops on its own at the deadline; a process that does not
    // is reported as hung.
    let stop_by = Instant::now() + Duration::from_secs(60);
    for p in &mut procs {
        loop {
            match p.child.try_wait() {
                Ok(Some(status)) => {
                    if status.code() != Some(0) {
                        log.emit(Kind::Exited {
                            target: p.role.clone(),
                            target_inc: p.inc,
                            code: status.code(),
                        });
                    }
                    break;
                }
                Ok(None) if Instant::now() < stop_by => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    ran.hung.push(format!("{} (start {})", p.role, p.inc));
                    let _ = p.child.kill();
                    let _ = p.child.wait();
                    break;
                }
            }
        }
        finish(p);
    }
    ran.run_time = start.elapsed();
    if let Some(server) = &ran.bao {
        dump_bao_catalog(server, &dir);
    }
    ran
}

/// Starts the cluster run's OpenBao dev server (TLS) and writes its root
/// token to `bao-token` for the config's `vault.token_file`.
fn start_bao(dir: &Path) -> (BaoServer, node::Bao) {
    let server = BaoServer::start_tls();
    // As the vault crate's README tells a deployment: KV keeps 10 versions
    // per key by default and prunes older ones, which invariant 4 reports
    // as acknowledged versions lost (it did, before this line). The run
    // makes hundreds of rotations.
    server
        .try_bao(&["write", "secret/config", "max_versions=100000"])
        .unwrap_or_else(|e| panic!("raise max_versions on secret/: {e}"));
    fs::write(dir.join("bao-token"), format!("{}\n", server.root_token()))
        .expect("write the token file");
    let config = node::Bao {
        address: server.address().to_owned(),
        ca_file: server
            .ca_pem()
            .expect("a -dev-tls server has a CA")
            .to_owned(),
    };
    (server, config)
}

/// Copies every catalog entry, as OpenBao stores it (the KV secret's JSON,
/// with its metadata), into `bao/catalog/` of the run, so that invariant 3
/// scans what the cluster keeps besides the values: the dev server keeps
/// its storage in memory, so there is no file of its own to scan. (The
/// values themselves are in OpenBao by design and are not copied.)
fn dump_bao_catalog(server: &BaoServer, dir: &Path) {
    let out = dir.join("bao").join("catalog");
    fs::create_dir_all(&out).expect("create the catalog dump directory");
    let list = server
        .try_bao(&[
            "kv",
            "list",
            "-format=json",
            "-mount=secret",
            node::BAO_CATALOG_PATH,
        ])
        .unwrap_or_else(|e| panic!("list the catalog in OpenBao: {e}"));
    let ids: Vec<String> = serde_json::from_str(&list).expect("bao kv list prints a JSON list");
    for id in ids {
        let path = format!("{}/{id}", node::BAO_CATALOG_PATH);
        let entry = server
            .try_bao(&["kv", "get", "-format=json", "-mount=secret", &path])
            .unwrap_or_else(|e| panic!("read catalog entry {id} from OpenBao: {e}"));
        fs::write(out.join(format!("{id}.json")), entry).expect("write a catalog dump file");
    }
}

/// Starts `role` (`admin` or `w<i>`) as start number `inc`.
fn spawn(dir: &Path, plan: &Plan, log: &EventLog, role: &str, inc: u32) -> Proc {
    let kind = if role == "admin" { "admin" } else { "worker" };
    let mut command = process::worker_command(kind);
    command
        .arg(dir)
        .arg(role)
        .arg(inc.to_string())
        .env_remove("TYRUM_TORTURE_MUTATION")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            File::create(dir.join("out").join(format!("{role}.{inc}.stderr")))
                .expect("create a stderr file"),
        ));
    if let Some(mutation) = &plan.mutation {
        command.env("TYRUM_TORTURE_MUTATION", mutation);
    }
    let mut child = command.spawn().expect("start a torture process");
    log.emit(Kind::Spawn {
        target: role.to_owned(),
        target_inc: inc,
    });
    let ready = Arc::new(AtomicBool::new(false));
    let stdout = child.stdout.take().map(|out| {
        let ready = Arc::clone(&ready);
        let path = dir.join("out").join(format!("{role}.{inc}.stdout"));
        std::thread::spawn(move || {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("create a stdout file");
            for line in BufReader::new(out).split(b'\n') {
                let Ok(line) = line else { break };
                if line == b"ready" {
                    ready.store(true, Ordering::SeqCst);
                }
                let _ = file.write_all(&line).and_then(|()| file.write_all(b"\n"));
            }
        })
    });
    Proc {
        role: role.to_owned(),
        inc,
        child,
        ready,
        stdout,
    }
}

/// Waits for the copy of a stopped process's stdout.
fn finish(p: &mut Proc) {
    if let Some(thread) = p.stdout.take() {
        let _ = thread.join();
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).expect("write a run file");
    fs::rename(&tmp, path).expect("write a run file");
}

/// The deadline (ms since the epoch), once the harness has set it.
pub(crate) fn read_deadline(run: &Path) -> u64 {
    let started = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(run.join("deadline"))
            && let Ok(deadline) = text.trim().parse()
        {
            return deadline;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no deadline after 300 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
