//! The profile type: serde round-trips, checked names, no input echoed.

use super::*;

fn every_shape() -> Vec<AuthProfile> {
    let h = || HandleId::generate().unwrap();
    let api = AuthProfile::api_key(id("openai:work"), "agent-a", openai(), h())
        .unwrap()
        .account("acct_123")
        .unwrap()
        .email("ops@example.com")
        .unwrap()
        .workspace("org-acme")
        .unwrap()
        .notes("the team key")
        .unwrap()
        .share_with("agent-b")
        .unwrap();
    let mut oauth = AuthProfile::oauth(
        id("anthropic@example.com"),
        "agent-a",
        ModelProvider::new("anthropic").unwrap(),
        h(),
        Some(h()),
        Some(T0),
    )
    .unwrap();
    oauth.status = ProfileStatus::CoolingDown {
        until: T0,
        reason: FailureKind::RateLimited,
        failures: 3,
    };
    oauth.refresh.generation = 7;
    oauth.refresh.refreshed_at = Some(T0);
    oauth.refresh.after_rejection = true;
    oauth.last_good_use = Some(T0);
    oauth.revision = 9;
    let mut token = AuthProfile::token(id("gh.copilot"), "agent-c", openai(), h(), None).unwrap();
    token.status = ProfileStatus::Disabled {
        at: T0,
        reason: DisableReason::Operator {
            note: "left the company".to_owned(),
        },
    };
    vec![api, oauth, token]
}

#[test]
fn every_profile_shape_round_trips_through_json() {
    for profile in every_shape() {
        let json = serde_json::to_string(&profile).unwrap();
        let back: AuthProfile = serde_json::from_str(&json).unwrap();
        assert_eq!(back, profile, "{json}");
    }
}

#[test]
fn the_stored_form_names_type_slots_and_state() {
    let json = serde_json::to_value(&every_shape()[1]).unwrap();
    assert_eq!(json["credential"]["type"], "oauth");
    assert!(
        json["credential"]["access_token"]
            .as_str()
            .unwrap()
            .starts_with("secret:")
    );
    assert_eq!(json["status"]["state"], "cooling_down");
    assert_eq!(json["status"]["failures"], 3);
    assert_eq!(json["refresh"]["generation"], 7);
}

#[test]
fn a_fresh_profile_serializes_without_empty_state() {
    let profile =
        AuthProfile::api_key(id("p"), "agent-a", openai(), HandleId::generate().unwrap()).unwrap();
    let json = serde_json::to_value(&profile).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    // serde_json's map is sorted by key.
    assert_eq!(
        keys,
        [
            "agent",
            "credential",
            "id",
            "provider",
            "revision",
            "status"
        ]
    );
}

#[test]
fn names_are_checked_and_errors_do_not_repeat_them() {
    for bad in ["", "has space", "semi;colon", "new\nline", &"x".repeat(129)] {
        let error = ProfileId::new(bad).unwrap_err().to_string();
        if !bad.is_empty() {
            assert!(!error.contains(bad), "{error}");
        }
    }
    for good in ["openai:work", "a", "ops@example.com", "A-b_c.d"] {
        assert!(ProfileId::new(good).is_ok(), "{good}");
    }
    assert!(ModelProvider::new("OpenAI").is_err());
    assert!(ModelProvider::new("google-vertex").is_ok());
    let error = AuthProfile::api_key(
        id("p"),
        "agent\u{7}",
        openai(),
        HandleId::generate().unwrap(),
    )
    .unwrap_err();
    assert!(matches!(error, AuthProfileError::Invalid { .. }));
}

#[test]
fn deserializing_checks_every_field() {
    let good = serde_json::to_value(&every_shape()[0]).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut json = good.clone();
        json[field] = value;
        serde_json::from_value::<AuthProfile>(json)
    };
    assert!(with("id", "bad id".into()).is_err());
    assert!(with("agent", "".into()).is_err());
    assert!(with("agent", "a\u{1b}[2J".into()).is_err());
    assert!(with("provider", "Bad".into()).is_err());
    assert!(with("shared_with", serde_json::json!(["ok", ""])).is_err());
    assert!(with("credential", serde_json::json!({"type": "api_key"})).is_err());
    assert!(
        with(
            "credential",
            serde_json::json!({"type": "api_key", "api_key": "sk-not-a-handle"})
        )
        .is_err()
    );
}

#[test]
fn credential_slots_name_their_handles() {
    let [api, oauth, token] = <[AuthProfile; 3]>::try_from(every_shape()).unwrap();
    let slots = |p: &AuthProfile| p.credential.slots().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(slots(&api), [Slot::ApiKey]);
    assert_eq!(slots(&oauth), [Slot::AccessToken, Slot::RefreshToken]);
    assert_eq!(slots(&token), [Slot::AccessToken]);
    assert!(oauth.credential.refresh_handle().is_some());
    assert!(token.credential.refresh_handle().is_none());
    assert_eq!(oauth.credential_type(), CredentialType::Oauth);
}

#[test]
fn sharing_is_explicit() {
    let [api, oauth, _] = <[AuthProfile; 3]>::try_from(every_shape()).unwrap();
    assert!(api.serves("agent-a") && api.serves("agent-b"));
    assert!(!api.serves("agent-z"));
    assert!(oauth.serves("agent-a") && !oauth.serves("agent-b"));
}

#[test]
fn agent_ids_follow_the_requester_alphabet_and_case() {
    let profile = AuthProfile::api_key(id("p"), "Agent-A", openai(), HandleId::generate().unwrap())
        .unwrap()
        .share_with("Agent-B")
        .unwrap();
    assert_eq!(profile.agent, "agent-a");
    assert!(profile.serves(agent("AGENT-A").agent()));
    assert!(profile.serves(agent("agent-b").agent()));
    // A look-alike is refused, never normalised into a match.
    for bad in ["agent\u{2010}a", "аgent-a", "agent a"] {
        let error = AuthProfile::api_key(id("p"), bad, openai(), HandleId::generate().unwrap())
            .unwrap_err();
        assert!(matches!(error, AuthProfileError::Invalid { .. }), "{bad}");
    }
}
