//! What a run does: seed, duration, processes, fault rates. Read from the
//! environment by the harness, written to `plan.json` in the run directory
//! for the processes it starts (it holds no value: values are derived from
//! the seed in memory, see `values.rs`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One run's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Every random choice of every process derives from it.
    pub(crate) seed: u64,
    /// How long the workers and the admin run, after setup.
    pub(crate) duration_ms: u64,
    /// Worker processes.
    pub(crate) workers: usize,
    /// `single-host` or `cluster` (one OpenBao dev server the harness
    /// starts; needs feature `vault`).
    pub(crate) profile: String,
    /// A deliberate defect switched on in every process the harness starts
    /// (`TYRUM_TORTURE_MUTATION`), for the mutation checks.
    pub(crate) mutation: Option<String>,
    /// Handles per policy class.
    pub(crate) allow_handles: usize,
    pub(crate) deny_handles: usize,
    pub(crate) approval_handles: usize,
    /// A SIGKILL every `kill_min_ms..kill_max_ms` (0 for none).
    pub(crate) kill_min_ms: u64,
    pub(crate) kill_max_ms: u64,
    /// Pause after each worker operation, uniform in `0..worker_pause_ms`.
    pub(crate) worker_pause_ms: u64,
    /// Pause after each admin operation, uniform in `admin_pause_min_ms..admin_pause_max_ms`.
    pub(crate) admin_pause_min_ms: u64,
    pub(crate) admin_pause_max_ms: u64,
    /// Provider faults (the testkit's `FaultyProvider`).
    pub(crate) provider_fail: f64,
    pub(crate) provider_delay: f64,
    pub(crate) provider_delay_ms: u64,
    /// Audit faults (a sink layer): refusals, delays under the timeout,
    /// stalls past it.
    pub(crate) audit_fail: f64,
    pub(crate) audit_delay: f64,
    pub(crate) audit_delay_max_ms: u64,
    pub(crate) audit_stall: f64,
    /// The resolver's and the admin's audit timeout.
    pub(crate) audit_timeout_ms: u64,
    /// Slack when comparing timestamps of two processes (see the checker's
    /// ordering rule).
    pub(crate) margin_ms: u64,
    /// How long a one-shot grant is valid after it is issued.
    pub(crate) grant_ttl_ms: u64,
}

/// Which kind of run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// The torture run: every invariant must hold. Profile
    /// `TORTURE_PROFILE` (default `single-host`).
    Main,
    /// The bounded cluster run of `scripts/test` (after the main run):
    /// profile `cluster`, `TORTURE_CLUSTER_SECS` (default 25).
    #[cfg_attr(
        not(feature = "vault"),
        allow(dead_code, reason = "needs feature vault")
    )]
    Cluster,
    /// A mutation check: shorter, one defect on.
    #[cfg_attr(
        not(all(feature = "torture-mutations", debug_assertions)),
        allow(dead_code, reason = "for the mutation checks")
    )]
    Mutation,
}

impl Plan {
    /// The plan from `TORTURE_*` variables, with defaults sized for
    /// `scripts/test` on two busy cores.
    pub(crate) fn from_env(kind: RunKind, mutation: Option<&str>) -> Plan {
        let seed = env_u64("TORTURE_SEED").unwrap_or_else(clock_seed).max(1);
        let duration_ms = match kind {
            RunKind::Main => env_u64("TORTURE_DURATION_SECS").unwrap_or(40) * 1000,
            RunKind::Cluster => env_u64("TORTURE_CLUSTER_SECS").unwrap_or(25) * 1000,
            RunKind::Mutation => env_u64("TORTURE_MUTATION_SECS").unwrap_or(8) * 1000,
        };
        let workers = match kind {
            RunKind::Main | RunKind::Cluster => env_u64("TORTURE_WORKERS").unwrap_or(4),
            RunKind::Mutation => env_u64("TORTURE_MUTATION_WORKERS").unwrap_or(3),
        };
        // The mutation runs are short, so they delay more calls: a defect
        // that shows only while a call is in flight (skipping the re-check)
        // then shows within seconds.
        // and on fewer handles, so that each revoke, expiry and rotation
        // meets more resolves of its handle.
        let (provider_delay, audit_delay, handles, admin_pause) = match kind {
            RunKind::Main | RunKind::Cluster => (0.05, 0.10, [3, 1, 2], (15, 60)),
            RunKind::Mutation => (0.15, 0.30, [1, 1, 1], (8, 30)),
        };
        Plan {
            seed,
            duration_ms,
            workers: workers.max(1) as usize,
            profile: match kind {
                RunKind::Cluster => "cluster".into(),
                _ => std::env::var("TORTURE_PROFILE").unwrap_or_else(|_| "single-host".into()),
            },
            mutation: mutation.map(str::to_owned),
            allow_handles: handles[0],
            deny_handles: handles[1],
            approval_handles: handles[2],
            kill_min_ms: env_u64("TORTURE_KILL_MIN_MS").unwrap_or(1500),
            kill_max_ms: env_u64("TORTURE_KILL_MAX_MS").unwrap_or(4000),
            worker_pause_ms: env_u64("TORTURE_WORKER_PAUSE_MS").unwrap_or(8),
            admin_pause_min_ms: admin_pause.0,
            admin_pause_max_ms: admin_pause.1,
            provider_fail: 0.03,
            provider_delay,
            provider_delay_ms: 40,
            audit_fail: 0.02,
            audit_delay,
            audit_delay_max_ms: 60,
            audit_stall: 0.003,
            audit_timeout_ms: 2000,
            margin_ms: env_u64("TORTURE_MARGIN_MS").unwrap_or(5),
            grant_ttl_ms: 4000,
        }
    }

    pub(crate) fn write(&self, dir: &Path) {
        let text = serde_json::to_vec_pretty(self).expect("a plan serializes");
        std::fs::write(dir.join("plan.json"), text).expect("write plan.json");
    }

    pub(crate) fn read(dir: &Path) -> Plan {
        let text = std::fs::read(dir.join("plan.json")).expect("read plan.json");
        serde_json::from_slice(&text).expect("plan.json parses")
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Nanoseconds since the Unix epoch: every event's timestamp. All processes
/// run on one host and read the same clock.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// splitmix64: the decisions of one process, reproducible from the seed.
/// Not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one stream of decisions, e.g. `(seed, "w2", 3)`.
    pub(crate) fn new(seed: u64, stream: &str, n: u64) -> Rng {
        let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
        for b in stream.bytes().chain(n.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01B3);
        }
        let mut rng = Rng(h);
        rng.next();
        rng
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// Uniform in `lo..hi` (`lo` when empty).
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// One of `items`, weighted.
    pub(crate) fn weighted<T: Copy>(&mut self, items: &[(T, u64)]) -> T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut pick = self.below(total);
        for (item, weight) in items {
            if pick < *weight {
                return *item;
            }
            pick -= weight;
        }
        items[0].0
    }
}
