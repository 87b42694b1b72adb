//! Selection through `AuthProfiles`: orders, skip reasons, sharing and
//! conversation pins.

use super::*;

fn chosen(profiles: &AuthProfiles, who: &Requester) -> ProfileId {
    profiles
        .select(who, &openai())
        .unwrap()
        .profile()
        .id
        .clone()
}

#[test]
fn stable_order_is_least_recently_used_then_id() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    for name in ["c", "a", "b"] {
        fx.api_key(name);
    }
    let a = agent("agent-a");
    let mut used = Vec::new();
    for _ in 0..6 {
        let selection = profiles.select(&a, &openai()).unwrap();
        assert!(matches!(
            selection.choice(),
            Choice::StableOrder { position: 0 }
        ));
        used.push(selection.profile().id.to_string());
        profiles
            .report(selection.profile(), CallOutcome::Success)
            .unwrap();
        fx.clock.advance(Duration::from_secs(1));
    }
    // Never used first (by id), then the one used longest ago.
    assert_eq!(used, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn explicit_order_is_followed_and_unlisted_profiles_are_not_used() {
    let fx = Fixture::new();
    for name in ["a", "b", "c"] {
        fx.api_key(name);
    }
    let profiles = fx
        .builder()
        .order("agent-a", openai(), vec![id("c"), id("missing"), id("a")])
        .build();
    let a = agent("agent-a");
    let first = profiles.select(&a, &openai()).unwrap();
    assert_eq!(first.profile().id, id("c"));
    assert_eq!(first.choice(), &Choice::ExplicitOrder { position: 0 });
    profiles
        .report(first.profile(), CallOutcome::Success)
        .unwrap();
    // Success does not reorder an explicit order.
    assert_eq!(chosen(&profiles, &a), id("c"));

    profiles
        .report(first.profile(), CallOutcome::Billing)
        .unwrap();
    let second = profiles.select(&a, &openai()).unwrap();
    assert_eq!(second.profile().id, id("a"));
    assert_eq!(second.choice(), &Choice::ExplicitOrder { position: 2 });
    let reasons: Vec<(String, bool)> = second
        .skipped()
        .iter()
        .map(|s| {
            (
                s.profile.to_string(),
                matches!(s.reason, Unusable::CoolingDown { .. } | Unusable::NotFound),
            )
        })
        .collect();
    assert_eq!(reasons, [("c".into(), true), ("missing".into(), true)]);

    profiles.disable(&id("a"), "paused").unwrap();
    let Err(AuthProfileError::NoneAvailable { skipped, .. }) = profiles.select(&a, &openai())
    else {
        panic!("b is not in the order and must not be used")
    };
    assert_eq!(
        skipped.last().unwrap(),
        &Skipped {
            profile: id("b"),
            reason: Unusable::NotInOrder
        }
    );
    // Another agent with no order configured uses the stable order.
    assert!(profiles.select(&agent("agent-b"), &openai()).is_err());
}

#[test]
fn every_profile_passed_over_comes_with_its_reason() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let cooling = fx.api_key("a-cooling");
    let disabled = fx.api_key("b-disabled");
    let revoked = fx.api_key("c-revoked");
    let handle = fx.secret(SecretKind::BearerToken, "static-token");
    fx.add(AuthProfile::token(id("d-expired"), "agent-a", openai(), handle, Some(T0)).unwrap());
    let unknown = AuthProfile::api_key(
        id("e-unknown"),
        "agent-a",
        openai(),
        HandleId::generate().unwrap(),
    )
    .unwrap();
    fx.add(unknown);
    let good = fx.api_key("f-good");
    profiles
        .report(&cooling, CallOutcome::RateLimited { retry_after: None })
        .unwrap();
    profiles
        .report(&disabled, CallOutcome::InvalidCredentials)
        .unwrap();
    let Credential::ApiKey { api_key } = &revoked.credential else {
        unreachable!()
    };
    fx.admin.revoke(api_key, &fx.by).unwrap();

    let selection = profiles.select(&agent("agent-a"), &openai()).unwrap();
    assert_eq!(selection.profile().id, good.id);
    assert_eq!(selection.choice(), &Choice::StableOrder { position: 5 });
    let kinds: Vec<&str> = selection
        .skipped()
        .iter()
        .map(|s| match &s.reason {
            Unusable::CoolingDown { .. } => "cooling",
            Unusable::Disabled { .. } => "disabled",
            Unusable::HandleRevoked {
                slot: Slot::ApiKey, ..
            } => "revoked",
            Unusable::Expired { .. } => "expired",
            Unusable::HandleUnknown { .. } => "unknown",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["cooling", "disabled", "revoked", "expired", "unknown"]
    );
    let text = selection.explain();
    for needle in [
        "chose auth profile f-good",
        "a-cooling (cooling down until",
        "b-disabled (disabled (invalid credentials))",
        "was revoked at",
        "d-expired (token expired at",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[test]
fn a_handle_expired_in_the_catalog_is_skipped_unless_a_refresh_replaces_it() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let expiring = |kind, value: &str| {
        let spec = NewSecret::new(
            ProviderId::new("memory").unwrap(),
            Scope::new("models").unwrap(),
            KindSpec::new(kind, Some(T0)).unwrap(),
        );
        let handle = fx
            .admin
            .create(spec, &SecretBytes::from(value.as_bytes().to_vec()), &fx.by)
            .unwrap();
        handle.id().clone()
    };
    let key = expiring(SecretKind::ApiKey, "sk-expiring");
    fx.add(AuthProfile::api_key(id("a"), "agent-a", openai(), key).unwrap());
    let access = expiring(SecretKind::OauthAccessToken, "access-expiring");
    let refresh = fx.secret(SecretKind::OauthRefreshToken, "refresh-0");
    let oauth = fx.add(
        AuthProfile::oauth(id("b"), "agent-a", openai(), access, Some(refresh), None).unwrap(),
    );
    let selection = profiles.select(&agent("agent-a"), &openai()).unwrap();
    assert_eq!(selection.profile().id, oauth.id);
    assert!(matches!(
        &selection.skipped()[0].reason,
        Unusable::HandleExpired { slot: Slot::ApiKey, at, .. } if *at == T0
    ));
}

#[test]
fn no_usable_profile_is_an_error_listing_every_reason_and_the_first_ready_time() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let a = fx.api_key("a");
    let b = fx.api_key("b");
    profiles
        .report(
            &a,
            CallOutcome::RateLimited {
                retry_after: Some(Duration::from_secs(90)),
            },
        )
        .unwrap();
    profiles.report(&b, CallOutcome::Timeout).unwrap();
    let error = profiles.select(&agent("agent-a"), &openai()).unwrap_err();
    let AuthProfileError::NoneAvailable {
        skipped, ready_at, ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(skipped.len(), 2);
    assert_eq!(*ready_at, Some(T0.saturating_add(Duration::from_secs(30))));
    let text = error.to_string();
    assert!(text.contains("the first cooldown ends at"), "{text}");

    let empty = Fixture::new().profiles();
    let text = empty
        .select(&agent("agent-a"), &openai())
        .unwrap_err()
        .to_string();
    assert!(text.contains("none is configured"), "{text}");
}

#[test]
fn profiles_are_not_shared_across_agents_unless_configured() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let own = fx.api_key("a-own");
    let handle = fx.secret(SecretKind::ApiKey, "sk-shared-value");
    let shared = fx.add(
        AuthProfile::api_key(id("b-shared"), "agent-a", openai(), handle)
            .unwrap()
            .share_with("agent-b")
            .unwrap(),
    );
    assert_eq!(chosen(&profiles, &agent("agent-b")), shared.id);
    let error = profiles.credential(&own, &request("agent-b")).unwrap_err();
    assert!(
        matches!(error, AuthProfileError::NotShared { .. }),
        "{error}"
    );
    assert!(profiles.credential(&shared, &request("agent-b")).is_ok());
    // Other providers' profiles are never candidates.
    let anthropic = ModelProvider::new("anthropic").unwrap();
    assert!(profiles.select(&agent("agent-a"), &anthropic).is_err());
}

#[test]
fn a_pinned_conversation_keeps_its_profile_across_100_selections_while_others_rotate() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    for name in ["p1", "p2", "p3", "p4"] {
        fx.api_key(name);
    }
    let pinned = conversation("agent-a", "conv-1");
    let first = profiles.select(&pinned, &openai()).unwrap();
    let home = first.profile().id.clone();
    let mut others = std::collections::BTreeSet::new();
    for _ in 0..100 {
        fx.clock.advance(Duration::from_secs(1));
        // Unpinned traffic rotates through every profile...
        let other = profiles.select(&agent("agent-a"), &openai()).unwrap();
        others.insert(other.profile().id.clone());
        profiles
            .report(other.profile(), CallOutcome::Success)
            .unwrap();
        // ...while the conversation stays where it was.
        let again = profiles.select(&pinned, &openai()).unwrap();
        assert_eq!(again.profile().id, home);
        assert!(matches!(again.choice(), Choice::Pinned { .. }));
        profiles
            .report(again.profile(), CallOutcome::Success)
            .unwrap();
    }
    assert_eq!(others.len(), 4, "unpinned selections rotate: {others:?}");

    // It moves only when its profile fails, and stays on the new one.
    let home_profile = fx.get(home.as_str());
    profiles
        .report(
            &home_profile,
            CallOutcome::RateLimited { retry_after: None },
        )
        .unwrap();
    let moved = profiles.select(&pinned, &openai()).unwrap();
    assert_ne!(moved.profile().id, home);
    assert_eq!(moved.skipped()[0].profile, home);
    fx.clock.advance(Duration::from_secs(3600));
    for _ in 0..10 {
        assert_eq!(chosen(&profiles, &pinned), moved.profile().id);
    }
    profiles.unpin(&pinned, &openai()).unwrap();
    let set = fx.store.snapshot().unwrap();
    assert_eq!(set.pins().count(), 0);
}

#[test]
fn pins_survive_reopening_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.json");
    let store: Arc<dyn AuthProfileStore> = Arc::new(JsonFileAuthProfileStore::open(&path).unwrap());
    let fx = Fixture::with_store(store);
    for name in ["p1", "p2", "p3"] {
        fx.api_key(name);
    }
    let conversations: Vec<Requester> = (0..3)
        .map(|i| conversation("agent-a", &format!("conv-{i}")))
        .collect();
    let before: Vec<ProfileId> = {
        let profiles = fx.profiles();
        conversations
            .iter()
            .map(|c| {
                let s = profiles.select(c, &openai()).unwrap();
                profiles.report(s.profile(), CallOutcome::Success).unwrap();
                fx.clock.advance(Duration::from_secs(1));
                s.profile().id.clone()
            })
            .collect()
    };
    assert_eq!(
        before
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "new conversations spread over the profiles"
    );

    // A new process: a fresh store over the same file, a fresh service.
    let reopened: Arc<dyn AuthProfileStore> =
        Arc::new(JsonFileAuthProfileStore::open(&path).unwrap());
    let fx2 = Fixture::assemble(
        fx.catalog.clone(),
        fx.provider.clone(),
        fx.audit.clone(),
        fx.audit.clone(),
        reopened,
    );
    fx2.clock.set(fx.clock.now());
    let profiles = fx2.profiles();
    for (c, expected) in conversations.iter().zip(&before) {
        let s = profiles.select(c, &openai()).unwrap();
        assert_eq!(&s.profile().id, expected);
        assert!(matches!(s.choice(), Choice::Pinned { .. }));
    }
}

#[test]
fn an_expired_oauth_token_with_a_refresh_token_is_still_selectable() {
    let fx = Fixture::new();
    let profiles = fx.profiles();
    let p = fx.oauth("p", Some(T0));
    let selection = profiles.select(&agent("agent-a"), &openai()).unwrap();
    assert_eq!(selection.profile().id, p.id);
    // Without a refresh token it is not.
    let access = fx.secret(SecretKind::OauthAccessToken, "access-x");
    let mut q = AuthProfile::oauth(id("a-q"), "agent-a", openai(), access, None, Some(T0)).unwrap();
    q.last_good_use = None;
    fx.add(q);
    let selection = profiles.select(&agent("agent-a"), &openai()).unwrap();
    assert_eq!(selection.profile().id, p.id);
    assert!(matches!(
        selection.skipped()[0].reason,
        Unusable::Expired { at } if at == T0
    ));
}

#[test]
fn a_snapshot_changed_in_place_ranks_again() {
    use super::super::select::{HandleState, Query, choose};
    let mut set = ProfileSet::new();
    for name in ["a", "b"] {
        let p = AuthProfile::api_key(id(name), "agent-a", openai(), HandleId::generate().unwrap())
            .unwrap();
        set.compare_and_set(p, None).unwrap();
    }
    let query = Query {
        agent: "agent-a",
        provider: &openai(),
        conversation: None,
        order: None,
        now: T0,
    };
    let usable = |_: &HandleId| HandleState::Usable;
    let first = choose(&set, &query, &usable).unwrap().0;
    assert_eq!(first.id, id("a"));
    let mut used = (*first).clone();
    used.last_good_use = Some(T0);
    set.compare_and_set(used, Some(1)).unwrap();
    assert_eq!(choose(&set, &query, &usable).unwrap().0.id, id("b"));
}
