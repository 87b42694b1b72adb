//! Outcome reports with an injected clock and jitter: the documented
//! cooldown schedule, retry-after, billing, success resets, disabling.

use super::*;

const SEC: u64 = 1000;

fn until(reported: Reported) -> (u64, u32) {
    match reported {
        Reported::CoolingDown { until, failures } => {
            (until.unix_millis() - T0.unix_millis(), failures)
        }
        other => panic!("expected a cooldown, got {other:?}"),
    }
}

fn rate_limited() -> CallOutcome {
    CallOutcome::RateLimited { retry_after: None }
}

#[test]
fn transient_failures_back_off_exponentially_up_to_the_bound() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    // Reported at T0 each time, so `until - T0` is the cooldown itself.
    let outcomes = [
        rate_limited(),
        CallOutcome::ServerError { retry_after: None },
        CallOutcome::Timeout,
        rate_limited(),
        rate_limited(),
        rate_limited(),
        rate_limited(),
        rate_limited(),
        rate_limited(),
    ];
    let schedule: Vec<(u64, u32)> = outcomes
        .iter()
        .map(|o| until(profiles.report(&p, *o).unwrap()))
        .collect();
    assert_eq!(
        schedule,
        [
            (30 * SEC, 1),
            (60 * SEC, 2),
            (120 * SEC, 3),
            (240 * SEC, 4),
            (480 * SEC, 5),
            (960 * SEC, 6),
            (1920 * SEC, 7),
            (3600 * SEC, 8), // 3840 s capped at 1 h
            (3600 * SEC, 9),
        ]
    );
    assert_eq!(
        fx.get("p").status,
        ProfileStatus::CoolingDown {
            until: T0.saturating_add(Duration::from_secs(3600)),
            reason: FailureKind::RateLimited,
            failures: 9,
        }
    );
}

#[test]
fn retry_after_is_honoured_and_capped() {
    let fx = Fixture::new();
    let profiles = fx
        .builder()
        .cooldown(CooldownPolicy::default().max_retry_after(Duration::from_secs(7200)))
        .build();
    let p = fx.api_key("p");
    let told = |secs| CallOutcome::RateLimited {
        retry_after: Some(Duration::from_secs(secs)),
    };
    // Longer than the backoff: the provider's word wins.
    assert_eq!(
        until(profiles.report(&p, told(600)).unwrap()),
        (600 * SEC, 1)
    );
    // Shorter than the backoff (60 s at the second failure): the backoff wins.
    assert_eq!(until(profiles.report(&p, told(5)).unwrap()), (60 * SEC, 2));
    // Absurdly long: capped.
    assert_eq!(
        until(profiles.report(&p, told(10_000_000)).unwrap()),
        (7200 * SEC, 3)
    );
    let server = CallOutcome::ServerError {
        retry_after: Some(Duration::from_secs(900)),
    };
    assert_eq!(until(profiles.report(&p, server).unwrap()), (900 * SEC, 4));
}

#[test]
fn billing_cools_down_for_hours() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    let hours = |h: u64| h * 3600 * SEC;
    let got: Vec<(u64, u32)> = (0..4)
        .map(|_| until(profiles.report(&p, CallOutcome::Billing).unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (hours(5), 1),
            (hours(10), 2),
            (hours(20), 3),
            (hours(24), 4)
        ]
    );

    let short = Fixture::new();
    let configured = short
        .builder()
        .cooldown(CooldownPolicy::default().billing(Duration::from_secs(3600)))
        .build();
    let q = short.api_key("q");
    assert_eq!(
        until(configured.report(&q, CallOutcome::Billing).unwrap()),
        (hours(1), 1)
    );
}

#[test]
fn success_resets_the_failure_count() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    for _ in 0..3 {
        profiles.report(&p, rate_limited()).unwrap();
    }
    fx.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        profiles.report(&p, CallOutcome::Success).unwrap(),
        Reported::Healthy
    );
    let stored = fx.get("p");
    assert_eq!(stored.status, ProfileStatus::Active);
    assert_eq!(stored.last_good_use, Some(fx.clock.now()));
    let next = profiles.report(&p, rate_limited()).unwrap();
    assert_eq!(
        next,
        Reported::CoolingDown {
            until: fx.clock.now().saturating_add(Duration::from_secs(30)),
            failures: 1,
        }
    );
}

#[test]
fn failures_after_a_cooldown_ended_keep_growing_until_a_success() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    profiles.report(&p, rate_limited()).unwrap();
    fx.clock.advance(Duration::from_secs(31));
    // Usable again, but not yet proven good.
    assert_eq!(
        profiles
            .select(&agent("agent-a"), &openai())
            .unwrap()
            .profile()
            .id,
        p.id
    );
    let Reported::CoolingDown { failures, until } = profiles.report(&p, rate_limited()).unwrap()
    else {
        panic!("expected a cooldown")
    };
    assert_eq!(failures, 2);
    assert_eq!(
        until,
        fx.clock.now().saturating_add(Duration::from_secs(60))
    );
}

#[test]
fn jitter_shortens_a_cooldown_by_at_most_its_fraction() {
    let policy = CooldownPolicy::default();
    let full = policy.cooldown(FailureKind::ServerError, 4, None, 0);
    let most = policy.cooldown(FailureKind::ServerError, 4, None, u32::MAX);
    let half = policy.cooldown(FailureKind::ServerError, 4, None, u32::MAX / 2);
    assert_eq!(full, Duration::from_secs(240));
    assert_eq!(most, Duration::from_secs(192)); // 20 % off
    assert!(most < half && half < full, "{most:?} {half:?} {full:?}");
    // Never below the provider's Retry-After, whatever the jitter.
    let floor = policy.cooldown(
        FailureKind::RateLimited,
        1,
        Some(Duration::from_secs(30)),
        u32::MAX,
    );
    assert_eq!(floor, Duration::from_secs(30));

    let fx = Fixture::new();
    fx.jitter.set(u32::MAX);
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    assert_eq!(
        until(profiles.report(&p, rate_limited()).unwrap()),
        (24 * SEC, 1)
    );
}

#[test]
fn huge_failure_counts_do_not_overflow() {
    let policy = CooldownPolicy::default();
    assert_eq!(
        policy.cooldown(FailureKind::Timeout, u32::MAX, None, 0),
        Duration::from_secs(3600)
    );
    let mut profile =
        AuthProfile::api_key(id("p"), "a", openai(), HandleId::generate().unwrap()).unwrap();
    profile.status = ProfileStatus::CoolingDown {
        until: T0,
        reason: FailureKind::Timeout,
        failures: u32::MAX,
    };
    let fx = Fixture::new();
    let p = fx.add(profile);
    let (_, failures) = until(fx.profiles().report(&p, CallOutcome::Timeout).unwrap());
    assert_eq!(failures, u32::MAX);
}

#[test]
fn invalid_credentials_disable_an_api_key_profile_until_enabled() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    let q = fx.api_key("q");
    assert_eq!(
        profiles
            .report(&p, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Disabled {
            reason: DisableReason::InvalidCredentials
        }
    );
    // Later outcomes do not bring it back; only an operator does.
    fx.clock.advance(Duration::from_secs(30 * 24 * 3600));
    profiles.report(&p, rate_limited()).unwrap();
    assert!(matches!(
        profiles.report(&p, CallOutcome::Success).unwrap(),
        Reported::Disabled { .. }
    ));
    for _ in 0..3 {
        assert_eq!(
            profiles
                .select(&agent("agent-a"), &openai())
                .unwrap()
                .profile()
                .id,
            q.id
        );
    }
    profiles.enable(&p.id).unwrap();
    assert_eq!(fx.get("p").status, ProfileStatus::Active);
    profiles.disable(&q.id, "rotating the account").unwrap();
    assert_eq!(
        profiles
            .select(&agent("agent-a"), &openai())
            .unwrap()
            .profile()
            .id,
        p.id
    );
    assert!(profiles.disable(&q.id, "bad\nnote").is_err());
}

#[test]
fn outcomes_persist_in_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.json");
    let fx = Fixture::with_store(Arc::new(JsonFileAuthProfileStore::open(&path).unwrap()));
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    let q = fx.api_key("q");
    profiles.report(&p, CallOutcome::Billing).unwrap();
    profiles
        .report(&q, CallOutcome::InvalidCredentials)
        .unwrap();
    let reopened = JsonFileAuthProfileStore::open(&path).unwrap();
    let p = reopened.get(&p.id).unwrap().unwrap();
    let q = reopened.get(&q.id).unwrap().unwrap();
    assert!(matches!(
        p.status,
        ProfileStatus::CoolingDown {
            reason: FailureKind::Billing,
            failures: 1,
            ..
        }
    ));
    assert!(matches!(
        q.status,
        ProfileStatus::Disabled {
            reason: DisableReason::InvalidCredentials,
            ..
        }
    ));
}

#[test]
fn reporting_an_unknown_profile_is_an_error() {
    let fx = Fixture::new();
    let stray = AuthProfile::api_key(
        id("ghost"),
        "agent-a",
        openai(),
        HandleId::generate().unwrap(),
    )
    .unwrap();
    let error = fx
        .profiles()
        .report(&stray, CallOutcome::Success)
        .unwrap_err();
    assert!(
        matches!(error, AuthProfileError::NotFound { .. }),
        "{error}"
    );
}

#[test]
fn successes_within_a_second_write_nothing() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.api_key("p");
    profiles.report(&p, CallOutcome::Success).unwrap();
    let first = fx.get("p");
    fx.clock.advance(Duration::from_millis(999));
    profiles.report(&p, CallOutcome::Success).unwrap();
    assert_eq!(fx.get("p").revision, first.revision);
    fx.clock.advance(Duration::from_millis(1));
    profiles.report(&p, CallOutcome::Success).unwrap();
    let later = fx.get("p");
    assert_eq!(later.revision, first.revision + 1);
    assert_eq!(later.last_good_use, Some(fx.clock.now()));
}
