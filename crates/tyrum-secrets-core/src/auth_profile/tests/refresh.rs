//! OAuth refresh: before an expired token is resolved, once on invalid
//! credentials, single-flight across threads, the old tokens retired, the
//! endpoint's verdicts applied, every resolve audited with the profile.

use std::sync::Barrier;

use super::*;
use crate::{Action, ExposeSecret, Outcome};

fn handles(p: &AuthProfile) -> (HandleId, HandleId) {
    let Credential::Oauth {
        access_token,
        refresh_token: Some(refresh_token),
        ..
    } = &p.credential
    else {
        panic!("an OAuth profile with a refresh token")
    };
    (access_token.clone(), refresh_token.clone())
}

#[test]
fn an_expired_access_token_is_refreshed_before_it_is_resolved() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let p = fx.oauth("p", Some(T0));
    let (access, refresh) = handles(&p);
    let old_access = fx.current_version(&access);
    let old_refresh = fx.current_version(&refresh);

    let selection = profiles.select(&agent("agent-a"), &openai()).unwrap();
    let credential = profiles
        .credential(selection.profile(), &request("agent-a"))
        .unwrap();
    assert_eq!(credential.expose_secret(), b"access-1");
    assert_eq!(refresher.calls(), 1);
    assert_eq!(credential.profile().refresh.generation, 1);
    assert_eq!(
        credential.profile().credential.expires_at(),
        Some(T0.saturating_add(Duration::from_secs(3600)))
    );

    // Published, pointed, retired: the old versions are gone.
    assert_ne!(fx.current_version(&refresh), old_refresh);
    assert!(!fx.version_exists(&refresh, old_refresh));
    assert!(!fx.version_exists(&access, old_access));
    assert!(fx.catalog.entry(&refresh).unwrap().retiring.is_empty());

    // Both resolves (refresh token, then access token) were audited and
    // name the profile; so were the rotations, by the profile's agent.
    let records = fx.audit.records();
    let resolves: Vec<_> = records
        .iter()
        .filter(|r| r.action == Action::Resolve)
        .collect();
    assert_eq!(resolves.len(), 2);
    assert_eq!(resolves[0].handle_id, refresh);
    assert_eq!(resolves[1].handle_id, access);
    for record in &resolves {
        assert_eq!(record.auth_profile.as_deref(), Some("p"));
        assert_eq!(record.outcome, Outcome::Resolved);
    }
    let rotations: Vec<_> = records
        .iter()
        .filter(|r| r.action == Action::Rotate)
        .map(|r| {
            (
                r.handle_id.clone(),
                r.requester.agent().to_owned(),
                r.purpose.clone(),
            )
        })
        .collect();
    let reason = "store the refreshed OAuth tokens of auth profile p".to_owned();
    assert_eq!(
        rotations,
        [
            (refresh.clone(), "agent-a".to_owned(), reason.clone()),
            (access.clone(), "agent-a".to_owned(), reason)
        ]
    );

    // Fresh now: the next credential does not refresh again.
    let again = profiles
        .credential(credential.profile(), &request("agent-a"))
        .unwrap();
    assert_eq!(again.expose_secret(), b"access-1");
    assert_eq!(refresher.calls(), 1);
    // Within the refresh margin of the new expiry it does.
    fx.clock.advance(Duration::from_secs(3600 - 30));
    let later = profiles
        .credential(again.profile(), &request("agent-a"))
        .unwrap();
    assert_eq!(later.expose_secret(), b"access-2");
    assert_eq!(refresher.calls(), 2);
}

#[test]
fn four_threads_hitting_an_expired_token_refresh_once() {
    for file_store in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let fx = if file_store {
            let store = JsonFileAuthProfileStore::open(dir.path().join("p.json")).unwrap();
            Fixture::with_store(Arc::new(store))
        } else {
            Fixture::new()
        };
        let refresher = CountingRefresher::with_pause(Answer::Rotate, Duration::from_millis(20));
        let profiles = Arc::new(fx.builder().refresher(refresher.clone()).build());
        let p = fx.oauth("p", Some(T0));
        let (_, refresh) = handles(&p);
        let old_refresh = fx.current_version(&refresh);
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (profiles, barrier, p) = (profiles.clone(), barrier.clone(), p.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let credential = profiles.credential(&p, &request("agent-a")).unwrap();
                    credential.expose_secret().to_vec()
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), b"access-1");
        }
        assert_eq!(refresher.calls(), 1, "file store: {file_store}");
        assert!(!fx.version_exists(&refresh, old_refresh));
        assert_eq!(fx.get("p").refresh.generation, 1);
    }
}

#[test]
fn invalid_credentials_refresh_an_oauth_profile_once_then_disable_it() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let p = fx.oauth("p", None);
    assert_eq!(
        profiles
            .report(&p, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Refreshed { generation: 1 }
    );
    assert_eq!(refresher.calls(), 1);
    let refreshed = fx.get("p");
    assert!(refreshed.refresh.after_rejection);
    assert_eq!(refreshed.status, ProfileStatus::Active);
    // The new token is rejected too: disabled, no second refresh.
    assert_eq!(
        profiles
            .report(&refreshed, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Disabled {
            reason: DisableReason::InvalidCredentials
        }
    );
    assert_eq!(refresher.calls(), 1);
    assert!(profiles.select(&agent("agent-a"), &openai()).is_err());
}

#[test]
fn a_success_after_a_refresh_allows_another_refresh_on_a_later_rejection() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let p = fx.oauth("p", None);
    profiles
        .report(&p, CallOutcome::InvalidCredentials)
        .unwrap();
    let p = fx.get("p");
    profiles.report(&p, CallOutcome::Success).unwrap();
    let p = fx.get("p");
    assert!(!p.refresh.after_rejection);
    assert_eq!(
        profiles
            .report(&p, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Refreshed { generation: 2 }
    );
}

#[test]
fn a_rejection_of_an_already_replaced_token_changes_nothing() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let stale = fx.oauth("p", None);
    // Two workers used generation 0; the first report refreshes...
    profiles
        .report(&stale, CallOutcome::InvalidCredentials)
        .unwrap();
    // ...the second is about the token already replaced.
    assert_eq!(
        profiles
            .report(&stale, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Stale
    );
    assert_eq!(refresher.calls(), 1);
    assert_eq!(fx.get("p").status, ProfileStatus::Active);
}

#[test]
fn a_refresh_token_the_endpoint_rejects_disables_the_profile() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Reject);
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let p = fx.oauth("p", Some(T0));
    let error = profiles.credential(&p, &request("agent-a")).unwrap_err();
    assert!(
        matches!(
            error,
            AuthProfileError::RefreshRejected {
                status: Some(400),
                ..
            }
        ),
        "{error}"
    );
    assert!(matches!(
        fx.get("p").status,
        ProfileStatus::Disabled {
            reason: DisableReason::RefreshRejected,
            ..
        }
    ));
    // Reported through `report`, the verdict is a state, not an error.
    let q = fx.oauth("q", None);
    assert_eq!(
        profiles
            .report(&q, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Disabled {
            reason: DisableReason::RefreshRejected
        }
    );
}

#[test]
fn an_unavailable_token_endpoint_cools_the_profile_down() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Unavailable(Some(Duration::from_secs(120))));
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let p = fx.oauth("p", Some(T0));
    let error = profiles.credential(&p, &request("agent-a")).unwrap_err();
    let until = T0.saturating_add(Duration::from_secs(120));
    assert!(
        matches!(&error, AuthProfileError::RefreshUnavailable { until: u, .. } if *u == until),
        "{error}"
    );
    assert!(matches!(
        fx.get("p").status,
        ProfileStatus::CoolingDown {
            reason: FailureKind::RefreshUnavailable,
            failures: 1,
            ..
        }
    ));
    // The endpoint recovers; after the cooldown the refresh goes through.
    refresher.set(Answer::Rotate);
    fx.clock.advance(Duration::from_secs(121));
    let selection = profiles.select(&agent("agent-a"), &openai()).unwrap();
    let credential = profiles
        .credential(selection.profile(), &request("agent-a"))
        .unwrap();
    assert_eq!(credential.expose_secret(), b"access-1");
}

#[test]
fn without_a_refresher_an_oauth_profile_with_invalid_credentials_is_disabled() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.oauth("p", None);
    assert_eq!(
        profiles
            .report(&p, CallOutcome::InvalidCredentials)
            .unwrap(),
        Reported::Disabled {
            reason: DisableReason::InvalidCredentials
        }
    );
    let q = fx.oauth("q", Some(T0));
    let error = profiles.credential(&q, &request("agent-a")).unwrap_err();
    assert!(
        matches!(error, AuthProfileError::NotRefreshable { .. }),
        "{error}"
    );
    let k = fx.api_key("k");
    assert!(matches!(
        profiles.refresh(&k).unwrap_err(),
        AuthProfileError::NotRefreshable { .. }
    ));
}

#[test]
fn a_refresh_waits_for_the_lock_and_gives_up_after_its_timeout() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = fx
        .builder()
        .refresher(refresher.clone())
        .refresh_lock_timeout(Duration::from_millis(30))
        .build();
    let p = fx.oauth("p", Some(T0));
    let held = fx.store.lock_refresh(&p.id, Duration::ZERO).unwrap();
    let error = profiles.refresh(&p).unwrap_err();
    assert!(
        matches!(error, AuthProfileError::RefreshLocked { .. }),
        "{error}"
    );
    assert_eq!(refresher.calls(), 0);
    drop(held);
    assert_eq!(profiles.refresh(&p).unwrap().refresh.generation, 1);
}

#[test]
fn a_policy_that_denies_the_refresh_token_stops_the_refresh() {
    let fx = Fixture::new();
    let deny_refresh = r#"{"rules": [
        {"id": "all", "effect": "allow", "secret": "*"},
        {"id": "no-refresh", "effect": "deny", "secret": "*", "kind": "oauth_refresh_token"}
    ]}"#;
    let policy = RulePolicy::from_json_str(deny_refresh).unwrap();
    let resolver = Arc::new(
        Resolver::builder(fx.catalog.clone(), policy, fx.audit.clone())
            .build()
            .unwrap(),
    );
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = AuthProfiles::builder(fx.store.clone(), fx.admin.clone(), resolver)
        .clock(fx.clock.clone())
        .refresher(refresher.clone())
        .build();
    let p = fx.oauth("p", Some(T0));
    let error = profiles.credential(&p, &request("agent-a")).unwrap_err();
    assert!(matches!(error, AuthProfileError::Resolve { .. }), "{error}");
    assert_eq!(refresher.calls(), 0);
    let record = fx.audit.records().pop().unwrap();
    assert_eq!(record.outcome, Outcome::Denied);
    assert_eq!(record.auth_profile.as_deref(), Some("p"));
}

#[test]
fn an_outdated_profile_gets_the_newer_tokens_and_refreshes_them_only_if_they_expire_too() {
    let fx = Fixture::new();
    let refresher = CountingRefresher::new(Answer::Rotate);
    let profiles = fx.builder().refresher(refresher.clone()).build();
    let outdated = fx.oauth("p", Some(T0));
    profiles.refresh(&outdated).unwrap();
    // Still fresh: the outdated caller uses the other worker's tokens.
    let got = profiles.credential(&outdated, &request("agent-a")).unwrap();
    assert_eq!(got.expose_secret(), b"access-1");
    assert_eq!(refresher.calls(), 1);
    // Expired again by now: refreshed once more, not twice.
    fx.clock.advance(Duration::from_secs(2 * 3600));
    let got = profiles.credential(&outdated, &request("agent-a")).unwrap();
    assert_eq!(got.expose_secret(), b"access-2");
    assert_eq!(got.profile().refresh.generation, 2);
    assert_eq!(refresher.calls(), 2);
}
