//! Deliberate defects for testing the torture test's checker
//! (`tests/torture.rs` in the workspace root), and nothing else.
//!
//! The torture test proves its invariant checks can fail by running the
//! whole system with one defect switched on and expecting the checker to
//! report it. Each defect is one `if mutation::active(Mutation::...)` at the
//! place it breaks.
//!
//! # They cannot be switched on in a normal build
//!
//! [`active`] is a constant `false` unless the crate is built with the
//! `torture-mutations` feature (off by default, never enabled by any other
//! feature) **and** with debug assertions (no release build has them). Only
//! then does it read `TYRUM_TORTURE_MUTATION`, once per process. A build
//! that handles real secrets has neither the feature nor, being a release
//! build, debug assertions.

/// One deliberate defect. The names are the values of
/// `TYRUM_TORTURE_MUTATION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mutation {
    /// The resolver skips its re-check of revocation and expiry after the
    /// audit record (invariant 1).
    SkipRecheck,
    /// The resolver hands every fifth value out without writing its audit
    /// record (invariant 2).
    UnauditedHandover,
    /// The tracing writer writes one event raw instead of redacted
    /// (invariant 3).
    #[cfg_attr(
        not(feature = "tracing"),
        allow(dead_code, reason = "only the tracing writer has it")
    )]
    LeakLog,
    /// The catalog reads the version before the current one (invariant 4).
    OldVersion,
    /// The resolver accepts a one-shot grant the verifier says was already
    /// used (invariant 5).
    GrantReuse,
    /// The JSON catalog store rewrites its file in place, in two halves,
    /// instead of replacing it atomically (invariant 6).
    TornCatalog,
}

#[cfg(all(feature = "torture-mutations", debug_assertions))]
impl Mutation {
    const ALL: [(Mutation, &'static str); 6] = [
        (Mutation::SkipRecheck, "skip-recheck"),
        (Mutation::UnauditedHandover, "unaudited-handover"),
        (Mutation::LeakLog, "leak-log"),
        (Mutation::OldVersion, "old-version"),
        (Mutation::GrantReuse, "grant-reuse"),
        (Mutation::TornCatalog, "torn-catalog"),
    ];
}

/// Whether `mutation` is switched on in this process.
#[cfg(all(feature = "torture-mutations", debug_assertions))]
pub(crate) fn active(mutation: Mutation) -> bool {
    use std::sync::OnceLock;
    static ACTIVE: OnceLock<Option<Mutation>> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let name = std::env::var("TYRUM_TORTURE_MUTATION").ok()?;
        Mutation::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(m, _)| *m)
    }) == Some(mutation)
}

/// Whether `mutation` is switched on in this process: never, in this build.
#[cfg(not(all(feature = "torture-mutations", debug_assertions)))]
#[inline(always)]
pub(crate) const fn active(_mutation: Mutation) -> bool {
    false
}

/// For [`Mutation::UnauditedHandover`]: true on every `n`th call in this
/// process (the first call counts as 1).
#[cfg(all(feature = "torture-mutations", debug_assertions))]
pub(crate) fn every(n: u64) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    (CALLS.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n.max(1))
}

/// Never true in this build.
#[cfg(not(all(feature = "torture-mutations", debug_assertions)))]
#[inline(always)]
pub(crate) const fn every(_n: u64) -> bool {
    false
}

/// For [`Mutation::LeakLog`]: true on the first call in this process only.
#[cfg(all(feature = "torture-mutations", debug_assertions))]
#[cfg_attr(
    not(feature = "tracing"),
    allow(dead_code, reason = "only the tracing writer has it")
)]
pub(crate) fn once() -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    !DONE.swap(true, Ordering::Relaxed)
}

/// Never true in this build.
#[cfg(not(all(feature = "torture-mutations", debug_assertions)))]
#[cfg_attr(
    not(feature = "tracing"),
    allow(dead_code, reason = "only the tracing writer has it")
)]
#[inline(always)]
pub(crate) const fn once() -> bool {
    false
}

/// The name of the mutation switched on in this process, if any: the
/// torture harness logs it, so a run that should have none can prove it.
#[doc(hidden)]
pub fn active_mutation_name() -> Option<&'static str> {
    #[cfg(all(feature = "torture-mutations", debug_assertions))]
    {
        Mutation::ALL
            .iter()
            .find(|(m, _)| active(*m))
            .map(|(_, n)| *n)
    }
    #[cfg(not(all(feature = "torture-mutations", debug_assertions)))]
    {
        None
    }
}
