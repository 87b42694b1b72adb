#![allow(
    missing_docs,
    clippy::unwrap_used,
    reason = "criterion_group! generates undocumented items; bench setup unwraps"
)]

//! The cost of choosing an auth profile against reading one profile from
//! the in-memory store, measured in the same run. Target: at most 2 µs per
//! selection.
//!
//! 100 API-key profiles of one agent for one model provider: a quarter
//! cooling down, a quarter disabled, a quarter with a revoked handle in the
//! catalog, a quarter usable.
//!
//! - `baseline/store_get`: `MemoryAuthProfileStore::get` of one profile;
//! - `select/stable_order`: `AuthProfiles::select` with no conversation
//!   (skip with reasons, catalog checks of the candidates reached; the
//!   snapshot's stable order is computed once per store write);
//! - `select/stable_order_after_a_write`: the same right after a store
//!   write, so the order is computed afresh;
//! - `select/pinned`: a conversation pinned to a usable profile;
//! - `select/explicit_order`: an explicit order of all 100;
//! - `select/stable_order_75_failed_first`: the worst case, every unusable
//!   profile ranked ahead of the usable ones (75 skips, 25 of them after a
//!   catalog lookup).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tyrum_secrets::{
    AdminRequest, AuthProfile, AuthProfileStore, AuthProfiles, Catalog, DisableReason, FailureKind,
    KindSpec, ManualClock, MemoryAuditSink, MemoryAuthProfileStore, MemoryCatalogStore,
    MemoryProvider, ModelProvider, NewSecret, PinKey, ProfileId, ProfileStatus, ProviderId,
    Purpose, Requester, Resolver, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind,
    Timestamp,
};

const PROFILES: usize = 100;

#[derive(Clone, Copy)]
enum State {
    CoolingDown,
    Disabled,
    Revoked,
    Usable,
}

/// A quarter of each state, interleaved in least-recently-used order:
/// three profiles (one of each unusable kind) are passed over before the
/// first usable one.
fn mixed(rank: usize) -> State {
    [
        State::CoolingDown,
        State::Disabled,
        State::Revoked,
        State::Usable,
    ][rank % 4]
}

/// The same quarters, but the 75 unusable profiles rank first (they failed,
/// so their last good use is oldest): the worst case, 25 catalog lookups.
fn failed_first(rank: usize) -> State {
    if rank >= 75 {
        State::Usable
    } else {
        [State::CoolingDown, State::Disabled, State::Revoked][rank % 3]
    }
}

struct Setup {
    store: Arc<MemoryAuthProfileStore>,
    admin: SecretAdmin,
    resolver: Arc<Resolver>,
    ids: Vec<ProfileId>,
}

fn setup(now: Timestamp, state_of: fn(usize) -> State) -> Setup {
    let memory = ProviderId::new("memory").unwrap();
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(memory.clone(), MemoryProvider::new()),
    );
    let store = Arc::new(MemoryAuthProfileStore::new());
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::bounded(16)))
        .build()
        .unwrap();
    let by = AdminRequest::new(
        Requester::new("ops").unwrap(),
        Purpose::new("bench setup").unwrap(),
    );
    let mut ids = Vec::new();
    for rank in 0..PROFILES {
        let spec = NewSecret::new(
            memory.clone(),
            Scope::new("models").unwrap(),
            KindSpec::new(SecretKind::ApiKey, None).unwrap(),
        );
        let value = SecretBytes::from(format!("sk-bench-{rank:03}-0123456789abcdef").into_bytes());
        let handle = admin.create(spec, &value, &by).unwrap();
        // Ids in another order than the ranks, so ranking really sorts.
        let id = ProfileId::new(format!("openai:acct-{:03}", (rank * 37) % PROFILES)).unwrap();
        let mut profile =
            AuthProfile::api_key(id.clone(), "agent-a", openai(), handle.id().clone())
                .unwrap()
                .email(format!("acct-{rank:03}@example.com"))
                .unwrap();
        profile.last_good_use = Some(Timestamp::from_unix_millis(
            now.unix_millis() - 1000 * (PROFILES - rank) as u64,
        ));
        match state_of(rank) {
            State::CoolingDown => {
                profile.status = ProfileStatus::CoolingDown {
                    until: now.saturating_add(Duration::from_secs(600)),
                    reason: FailureKind::RateLimited,
                    failures: 2,
                };
            }
            State::Disabled => {
                profile.status = ProfileStatus::Disabled {
                    at: now,
                    reason: DisableReason::InvalidCredentials,
                };
            }
            State::Revoked => admin.revoke(handle.id(), &by).unwrap(),
            State::Usable => {}
        }
        store.compare_and_set(profile, None).unwrap();
        ids.push(id);
    }
    let resolver = Arc::new(
        Resolver::builder(
            catalog.clone(),
            RulePolicy::from_json_str(r#"{"rules": []}"#).unwrap(),
            Arc::new(MemoryAuditSink::bounded(16)),
        )
        .build()
        .unwrap(),
    );
    Setup {
        store,
        admin,
        resolver,
        ids,
    }
}

fn openai() -> ModelProvider {
    ModelProvider::new("openai").unwrap()
}

fn bench(c: &mut Criterion) {
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    let openai = openai();
    let mixed = setup(now, mixed);
    let worst = setup(now, failed_first);
    let build = |s: &Setup| {
        AuthProfiles::builder(s.store.clone(), s.admin.clone(), s.resolver.clone())
            .clock(Arc::new(ManualClock::new(now)))
    };
    let profiles = build(&mixed).build();
    let ordered = build(&mixed)
        .order("agent-a", openai.clone(), mixed.ids.clone())
        .build();
    let worst_profiles = build(&worst).build();
    let agent = Requester::new("agent-a").unwrap();
    let pinned = Requester::new("agent-a")
        .unwrap()
        .conversation("conv-1")
        .unwrap();
    // Pins the conversation (one store write, outside the measurement).
    assert_eq!(
        profiles.select(&pinned, &openai).unwrap().skipped().len(),
        3
    );
    assert_eq!(profiles.select(&agent, &openai).unwrap().skipped().len(), 3);
    assert_eq!(ordered.select(&agent, &openai).unwrap().skipped().len(), 3);
    assert_eq!(
        worst_profiles
            .select(&agent, &openai)
            .unwrap()
            .skipped()
            .len(),
        75
    );

    let mut group = c.benchmark_group("auth_profiles");
    group.bench_function("baseline/store_get", |b| {
        b.iter(|| black_box(mixed.store.get(black_box(&mixed.ids[50])).unwrap()))
    });
    group.bench_function("select/stable_order", |b| {
        b.iter(|| black_box(profiles.select(black_box(&agent), &openai).unwrap()))
    });
    // A write just before each selection: the snapshot's stable order is
    // computed afresh (filter and sort of the 100 candidates).
    let other = PinKey::new("agent-z", openai.clone(), "unrelated");
    group.bench_function("select/stable_order_after_a_write", |b| {
        b.iter_batched(
            || mixed.store.set_pin(other.clone(), None).unwrap(),
            |()| black_box(profiles.select(black_box(&agent), &openai).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("select/pinned", |b| {
        b.iter(|| black_box(profiles.select(black_box(&pinned), &openai).unwrap()))
    });
    group.bench_function("select/explicit_order", |b| {
        b.iter(|| black_box(ordered.select(black_box(&agent), &openai).unwrap()))
    });
    group.bench_function("select/stable_order_75_failed_first", |b| {
        b.iter(|| black_box(worst_profiles.select(black_box(&agent), &openai).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
