use super::*;
use crate::request::{Destination, Purpose, Requester};
use crate::{HandleId, ProviderId, Scope, SecretHandle};

fn handle(provider: &str, scope: &str, kind: SecretKind) -> SecretHandle {
    SecretHandle::new(
        HandleId::generate().unwrap(),
        ProviderId::new(provider).unwrap(),
        Scope::new(scope).unwrap(),
        kind,
    )
}

fn decide(
    policy: &RulePolicy,
    handle: &SecretHandle,
    agent: &str,
    tool: Option<&str>,
    dest: Option<&str>,
) -> Decision {
    let mut requester = Requester::new(agent).unwrap();
    if let Some(tool) = tool {
        requester = requester.tool(tool).unwrap();
    }
    let purpose = Purpose::new("test").unwrap();
    let dest = dest.map(|d| Destination::host(d).unwrap());
    policy.decide(&PolicyInput::new(
        handle,
        &requester,
        &purpose,
        dest.as_ref(),
    ))
}

const POLICY: &str = r#"{
  "rules": [
    {"id": "ci-github", "effect": "allow", "secret": "file:workspace/acme/*",
     "agent": "ci-*", "tool": ["http.fetch"], "destination": ["api.github.com", "*.github.com"],
     "kind": ["api_key"]},
    {"id": "prod", "effect": "require_approval", "secret": "*:prod/*"},
    {"id": "no-shell", "effect": "deny", "secret": "*", "tool": "shell.*"}
  ]
}"#;

#[test]
fn matching_allow_rule_allows_and_names_itself() {
    let policy = RulePolicy::from_json_str(POLICY).unwrap();
    let h = handle("file", "workspace/acme/github", SecretKind::ApiKey);
    let d = decide(
        &policy,
        &h,
        "ci-7",
        Some("http.fetch"),
        Some("api.github.com"),
    );
    assert_eq!(d, Decision::by_rule(Effect::Allow, "ci-github"));
    let d = decide(
        &policy,
        &h,
        "ci-7",
        Some("http.fetch"),
        Some("uploads.github.com"),
    );
    assert_eq!(d.effect, Effect::Allow);
}

#[test]
fn each_condition_narrows_the_rule() {
    let policy = RulePolicy::from_json_str(POLICY).unwrap();
    let h = handle("file", "workspace/acme/github", SecretKind::ApiKey);
    let denied_by_default = Decision::by_default(Effect::Deny);
    // Wrong agent, tool, destination, missing destination, wrong kind, wrong provider.
    assert_eq!(
        decide(
            &policy,
            &h,
            "dev-1",
            Some("http.fetch"),
            Some("api.github.com")
        ),
        denied_by_default
    );
    assert_eq!(
        decide(
            &policy,
            &h,
            "ci-7",
            Some("http.post"),
            Some("api.github.com")
        ),
        denied_by_default
    );
    assert_eq!(
        decide(
            &policy,
            &h,
            "ci-7",
            Some("http.fetch"),
            Some("evil.example")
        ),
        denied_by_default
    );
    assert_eq!(
        decide(&policy, &h, "ci-7", Some("http.fetch"), None),
        denied_by_default
    );
    // No tool: the allow rule does not match, and the tool-conditioned
    // deny rule does (a missing attribute never escapes a deny).
    assert_eq!(
        decide(&policy, &h, "ci-7", None, Some("api.github.com")),
        Decision::by_rule(Effect::Deny, "no-shell")
    );
    let token = handle("file", "workspace/acme/github", SecretKind::BearerToken);
    assert_eq!(
        decide(
            &policy,
            &token,
            "ci-7",
            Some("http.fetch"),
            Some("api.github.com")
        ),
        denied_by_default
    );
    let vault = handle("vault", "workspace/acme/github", SecretKind::ApiKey);
    assert_eq!(
        decide(
            &policy,
            &vault,
            "ci-7",
            Some("http.fetch"),
            Some("api.github.com")
        ),
        denied_by_default
    );
}

#[test]
fn explicit_deny_wins_over_allow_and_approval() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "allow-all", "effect": "allow", "secret": "*"},
            {"id": "approve-prod", "effect": "require_approval", "secret": "*:prod/*"},
            {"id": "no-shell", "effect": "deny", "secret": "*", "tool": "shell.*"}
        ]}"#,
    )
    .unwrap();
    let h = handle("file", "prod/db", SecretKind::Password);
    assert_eq!(
        decide(&policy, &h, "a", Some("shell.exec"), None),
        Decision::by_rule(Effect::Deny, "no-shell")
    );
    assert_eq!(
        decide(&policy, &h, "a", Some("http.fetch"), None),
        Decision::by_rule(Effect::RequireApproval, "approve-prod")
    );
    let dev = handle("file", "dev/db", SecretKind::Password);
    assert_eq!(
        decide(&policy, &dev, "a", Some("http.fetch"), None),
        Decision::by_rule(Effect::Allow, "allow-all")
    );
}

#[test]
fn deny_rule_conditions_on_missing_attributes_fail_closed() {
    // A request that names no tool or no destination must not slip past a
    // deny conditioned on one: the missing attribute might be the denied one.
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "allow-all", "effect": "allow", "secret": "*"},
            {"id": "no-shell", "effect": "deny", "secret": "*", "tool": "shell.*"},
            {"id": "no-paste", "effect": "deny", "secret": "*", "destination": "*.pastebin.com"}
        ]}"#,
    )
    .unwrap();
    let h = handle("file", "dev/db", SecretKind::Password);
    assert_eq!(
        decide(&policy, &h, "a", None, Some("api.github.com")),
        Decision::by_rule(Effect::Deny, "no-shell")
    );
    assert_eq!(
        decide(&policy, &h, "a", Some("http.fetch"), None),
        Decision::by_rule(Effect::Deny, "no-paste")
    );
    assert_eq!(
        decide(&policy, &h, "a", Some("http.fetch"), Some("api.github.com")),
        Decision::by_rule(Effect::Allow, "allow-all")
    );
    // Allow rules keep narrowing: a missing attribute never widens them.
    let narrow = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "gh", "effect": "allow", "secret": "*", "destination": "api.github.com"}]}"#,
    )
    .unwrap();
    assert_eq!(
        decide(&narrow, &h, "a", Some("http.fetch"), None),
        Decision::by_default(Effect::Deny)
    );
}

#[test]
fn default_is_deny_unless_set_to_require_approval() {
    let h = handle("file", "x", SecretKind::Generic);
    let deny = RulePolicy::from_json_str("{}").unwrap();
    assert_eq!(
        decide(&deny, &h, "a", None, None),
        Decision::by_default(Effect::Deny)
    );
    let approve = RulePolicy::from_json_str(r#"{"default": "require_approval"}"#).unwrap();
    assert_eq!(
        decide(&approve, &h, "a", None, None),
        Decision::by_default(Effect::RequireApproval)
    );
    assert!(RulePolicy::from_json_str(r#"{"default": "allow"}"#).is_err());
}

#[test]
fn payment_instruments_need_the_switch_and_a_rule_naming_the_kind() {
    let card = handle("file", "billing/card", SecretKind::PaymentInstrument);
    let broad = r#"{"id": "all", "effect": "allow", "secret": "*"}"#;
    let named = r#"{"id": "cards", "effect": "allow", "secret": "file:billing/*", "kind": "payment_instrument"}"#;

    let off = RulePolicy::from_json_str(&format!(r#"{{"rules": [{broad}, {named}]}}"#)).unwrap();
    assert_eq!(
        decide(&off, &card, "a", None, None),
        Decision::deny(DecisionReason::PaymentInstrumentsDisabled)
    );
    let on_broad = RulePolicy::from_json_str(&format!(
        r#"{{"payment_instruments_enabled": true, "default": "require_approval", "rules": [{broad}]}}"#
    ))
    .unwrap();
    assert_eq!(
        decide(&on_broad, &card, "a", None, None),
        Decision::deny(DecisionReason::PaymentInstrumentNeedsRule)
    );
    let on_named = RulePolicy::from_json_str(&format!(
        r#"{{"payment_instruments_enabled": true, "rules": [{broad}, {named}]}}"#
    ))
    .unwrap();
    assert_eq!(
        decide(&on_named, &card, "a", None, None),
        Decision::by_rule(Effect::Allow, "cards")
    );
}

#[test]
fn malformed_policy_errors_name_rule_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"rules": [{"id": "r1", "effect": "permit", "secret": "*"}]}"#,
            r#"rule "r1" field "effect""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow"}]}"#,
            r#"rule "r1" field "secret""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "File:x"}]}"#,
            r#"rule "r1" field "secret""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "workspace"}]}"#,
            r#"rule "r1" field "secret""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "*", "destinaton": "x"}]}"#,
            r#"rule "r1" field "destinaton""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "*", "kind": "card"}]}"#,
            r#"rule "r1" field "kind""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "*", "agent": []}]}"#,
            r#"rule "r1" field "agent""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "*", "tool": [1]}]}"#,
            r#"rule "r1" field "tool""#,
        ),
        (
            r#"{"rules": [{"id": "r1", "effect": "allow", "secret": "*", "destination": "API.example"}]}"#,
            r#"rule "r1" field "destination""#,
        ),
        (
            r#"{"rules": [{"effect": "allow", "secret": "*"}]}"#,
            r##"rule "#0" field "id""##,
        ),
        (
            r#"{"rules": [{"id": "a", "effect": "deny", "secret": "*"}, {"id": "a", "effect": "deny", "secret": "*"}]}"#,
            r#"rule id "a" is used twice"#,
        ),
        (r#"{"rulez": []}"#, r#"field "rulez" is unknown"#),
        (r#"{"rules": "#, "not valid JSON at line 1"),
    ];
    for (text, expected) in cases {
        let err = RulePolicy::from_json_str(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn policy_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    std::fs::write(
        &path,
        r#"{"rules": [{"id": "r1", "effect": "nope", "secret": "*"}]}"#,
    )
    .unwrap();
    let err = RulePolicy::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("policy.json") && err.contains(r#"field "effect""#),
        "{err}"
    );
    assert!(matches!(
        RulePolicy::from_file(&dir.path().join("missing.json")),
        Err(PolicyError::Io { .. })
    ));
}

#[test]
fn approval_rule_conditions_on_missing_attributes_tighten_an_allow_only() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "allow-dev", "effect": "allow", "secret": "file:dev/*"},
            {"id": "payments-need-a-human", "effect": "require_approval", "secret": "*", "tool": "payments.*"}
        ]}"#,
    )
    .unwrap();
    let dev = handle("file", "dev/db", SecretKind::Password);
    // No tool named: it might be a payments tool, so the allow is tightened.
    assert_eq!(
        decide(&policy, &dev, "a", None, None),
        Decision::by_rule(Effect::RequireApproval, "payments-need-a-human")
    );
    assert_eq!(
        decide(&policy, &dev, "a", Some("payments.charge"), None),
        Decision::by_rule(Effect::RequireApproval, "payments-need-a-human")
    );
    assert_eq!(
        decide(&policy, &dev, "a", Some("http.fetch"), None),
        Decision::by_rule(Effect::Allow, "allow-dev")
    );
    // Where nothing allows, the possible approval rule does not open an
    // approval path past the default deny.
    let prod = handle("file", "prod/db", SecretKind::Password);
    assert_eq!(
        decide(&policy, &prod, "a", None, None),
        Decision::by_default(Effect::Deny)
    );
    assert_eq!(
        decide(&policy, &prod, "a", Some("payments.charge"), None),
        Decision::by_rule(Effect::RequireApproval, "payments-need-a-human")
    );
}

/// A deny on an address holds for every spelling of it: each one either
/// becomes the canonical address (and is denied) or is refused outright.
#[test]
fn no_spelling_of_a_denied_address_escapes_the_deny() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "anything", "effect": "allow", "secret": "*"},
            {"id": "no-metadata", "effect": "deny", "secret": "*", "destination": "169.254.169.254"},
            {"id": "no-loopback", "effect": "deny", "secret": "*", "destination": "::1"}
        ]}"#,
    )
    .unwrap();
    let h = handle("file", "ci", SecretKind::ApiKey);
    let same_host = [
        ("169.254.169.254", "no-metadata"),
        ("169.254.169.254.", "no-metadata"),
        ("::ffff:169.254.169.254", "no-metadata"),
        ("[::ffff:169.254.169.254]", "no-metadata"),
        ("::ffff:a9fe:a9fe", "no-metadata"),
        ("0:0:0:0:0:ffff:a9fe:a9fe", "no-metadata"),
        ("::1", "no-loopback"),
        ("[::1]", "no-loopback"),
        ("0::1", "no-loopback"),
        ("0:0:0:0:0:0:0:1", "no-loopback"),
        ("0000:0000:0000:0000:0000:0000:0000:0001", "no-loopback"),
        ("[0:0:0:0:0:0:0:1]", "no-loopback"),
    ];
    for (spelling, rule) in same_host {
        let dest = Destination::host(spelling)
            .unwrap_or_else(|e| panic!("{spelling} is the same address and must be accepted: {e}"));
        let d = policy.decide(&PolicyInput::new(
            &h,
            &Requester::new("alpha").unwrap(),
            &Purpose::new("test").unwrap(),
            Some(&dest),
        ));
        assert_eq!(
            d,
            Decision::by_rule(Effect::Deny, rule),
            "{spelling} escaped the deny"
        );
    }
    // Forms an HTTP client reads as 169.254.169.254 but that do not look
    // like it: refused, so no rule has to know about them.
    for spelling in [
        "2852039166",
        "169.254.43518",
        "169.16689662",
        "0xa9.0xfe.0xa9.0xfe",
        "0xa9fea9fe",
        "0251.0376.0251.0376",
        "169.254.169.0254",
        "0251.254.169.254",
    ] {
        assert!(
            Destination::host(spelling).is_err(),
            "{spelling} was accepted as a host name distinct from 169.254.169.254"
        );
    }
    // The same through URLs, for callers that hold one.
    for (url, rule) in [
        ("http://169.254.169.254/latest/meta-data/", "no-metadata"),
        ("http://user:pw@[::ffff:a9fe:a9fe]:80/", "no-metadata"),
        ("http://[::1]:8080/", "no-loopback"),
        ("https://[0:0:0:0:0:0:0:1]/x?y#z", "no-loopback"),
    ] {
        let dest = Destination::from_url(url).unwrap();
        let d = policy.decide(&PolicyInput::new(
            &h,
            &Requester::new("alpha").unwrap(),
            &Purpose::new("test").unwrap(),
            Some(&dest),
        ));
        assert_eq!(
            d,
            Decision::by_rule(Effect::Deny, rule),
            "{url} escaped the deny"
        );
    }
    for url in [
        "http://2852039166/",
        "http://169.254.43518/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://0251.0376.0251.0376/",
        "http://evil.example\\@169.254.169.254/",
    ] {
        assert!(Destination::from_url(url).is_err(), "{url} was accepted");
    }
    // Another host is still allowed.
    assert_eq!(
        decide(&policy, &h, "alpha", None, Some("api.github.com")).effect,
        Effect::Allow
    );
}

#[test]
fn destination_rules_are_canonicalised_like_requests() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "anything", "effect": "allow", "secret": "*"},
            {"id": "no-loopback", "effect": "deny", "secret": "*", "destination": ["[0:0::1]", "::ffff:a9fe:a9fe"]}
        ]}"#,
    )
    .unwrap();
    let h = handle("file", "ci", SecretKind::ApiKey);
    for dest in ["::1", "169.254.169.254"] {
        assert_eq!(
            decide(&policy, &h, "alpha", None, Some(dest)),
            Decision::by_rule(Effect::Deny, "no-loopback"),
            "{dest}"
        );
    }
    for bad in [r#""2852039166""#, r#""[::1]*""#, r#""0251.0376.0251.0376""#] {
        let text = format!(
            r#"{{"rules": [{{"id": "r", "effect": "deny", "secret": "*", "destination": {bad}}}]}}"#
        );
        let err = RulePolicy::from_json_str(&text).unwrap_err().to_string();
        assert!(err.contains("destination"), "{bad}: {err}");
    }
}

/// Tool and agent names that look like a denied one either are it (case
/// folds to the canonical lower-case id) or are refused as requesters.
#[test]
fn look_alike_tool_names_do_not_escape_a_deny() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "anything", "effect": "allow", "secret": "*"},
            {"id": "no-shell", "effect": "deny", "secret": "*", "tool": "shell.*"},
            {"id": "no-mallory", "effect": "deny", "secret": "*", "agent": "mallory"}
        ]}"#,
    )
    .unwrap();
    let h = handle("file", "ci", SecretKind::ApiKey);
    for tool in ["shell.exec", "Shell.exec", "SHELL.EXEC"] {
        assert_eq!(
            decide(&policy, &h, "alpha", Some(tool), None),
            Decision::by_rule(Effect::Deny, "no-shell"),
            "{tool} escaped the deny"
        );
    }
    for agent in ["mallory", "Mallory", "MALLORY"] {
        assert_eq!(
            decide(&policy, &h, agent, Some("http.fetch"), None),
            Decision::by_rule(Effect::Deny, "no-mallory"),
            "{agent} escaped the deny"
        );
    }
    for look_alike in [
        "shell\u{200b}.exec",
        "\u{202e}shell.exec",
        "\u{ff53}hell.exec",
        "sh\u{0435}ll.exec",
        "shell\u{2024}exec",
        "shell.exec\u{feff}",
        "shell.exec\u{00ad}",
        "shell .exec",
    ] {
        let alpha = Requester::new("alpha").unwrap();
        assert!(
            alpha.tool(look_alike).is_err(),
            "{look_alike:?} was accepted as a tool id distinct from shell.exec"
        );
        assert!(
            Requester::new(look_alike.replace("shell.exec", "mallory")).is_err(),
            "{look_alike:?} was accepted as an agent id"
        );
    }
    assert_eq!(
        decide(&policy, &h, "alpha", Some("http.fetch"), None).effect,
        Effect::Allow
    );
}

#[test]
fn agent_and_tool_patterns_use_the_id_alphabet() {
    for bad in [
        r#""Shell.*""#,
        r#""shell\u200b.*""#,
        r#""\uff53hell.*""#,
        r#""shell exec""#,
    ] {
        for field in ["tool", "agent"] {
            let text = format!(
                r#"{{"rules": [{{"id": "r", "effect": "deny", "secret": "*", "{field}": {bad}}}]}}"#
            );
            let err = RulePolicy::from_json_str(&text).unwrap_err().to_string();
            assert!(err.contains(field), "{bad}: {err}");
        }
    }
}

fn decide_labelled(
    policy: &RulePolicy,
    handle: &SecretHandle,
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> Decision {
    let requester = Requester::new("alpha").unwrap();
    let purpose = Purpose::new("test").unwrap();
    let input = PolicyInput::new(handle, &requester, &purpose, None);
    policy.decide(&match labels {
        Some(labels) => input.with_labels(labels),
        None => input,
    })
}

/// A rule on a handle id keeps applying when the secret moves to another
/// provider or scope.
#[test]
fn a_rule_can_target_one_handle_by_id() {
    let h = handle("file", "ci", SecretKind::ApiKey);
    let moved = SecretHandle::new(
        h.id().clone(),
        ProviderId::new("vault").unwrap(),
        Scope::new("elsewhere").unwrap(),
        SecretKind::ApiKey,
    );
    let other = handle("file", "ci", SecretKind::ApiKey);
    for form in [h.id().to_string(), h.id().as_str().to_owned()] {
        let policy = RulePolicy::from_json_str(&format!(
            r#"{{"rules": [
                {{"id": "anything", "effect": "allow", "secret": "*"}},
                {{"id": "this-one", "effect": "deny", "handle": "{form}"}}
            ]}}"#
        ))
        .unwrap();
        for target in [&h, &moved] {
            assert_eq!(
                decide_labelled(&policy, target, None),
                Decision::by_rule(Effect::Deny, "this-one"),
                "{form}"
            );
        }
        assert_eq!(decide_labelled(&policy, &other, None).effect, Effect::Allow);
    }
}

#[test]
fn a_rule_can_target_secrets_by_label() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [
            {"id": "anything", "effect": "allow", "secret": "*"},
            {"id": "payments", "effect": "deny", "labels": {"team": "payments", "env": "prod*"}}
        ]}"#,
    )
    .unwrap();
    let h = handle("file", "ci", SecretKind::ApiKey);
    let labels = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let payments = labels(&[("team", "payments"), ("env", "prod-eu"), ("owner", "x")]);
    assert_eq!(
        decide_labelled(&policy, &h, Some(&payments)),
        Decision::by_rule(Effect::Deny, "payments")
    );
    for other in [
        labels(&[("team", "payments")]),
        labels(&[("team", "search"), ("env", "prod")]),
        labels(&[]),
    ] {
        assert_eq!(
            decide_labelled(&policy, &h, Some(&other)).effect,
            Effect::Allow,
            "{other:?}"
        );
    }
    // A caller that did not look the labels up gets the deny: unknown
    // labels never escape one.
    assert_eq!(decide_labelled(&policy, &h, None).effect, Effect::Deny);
}

#[test]
fn allow_rules_on_labels_need_the_labels() {
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "ci", "effect": "allow", "labels": {"team": "ci"}}]}"#,
    )
    .unwrap();
    let h = handle("file", "ci", SecretKind::ApiKey);
    let ci: std::collections::BTreeMap<String, String> =
        [("team".to_owned(), "ci".to_owned())].into();
    assert_eq!(
        decide_labelled(&policy, &h, Some(&ci)).effect,
        Effect::Allow
    );
    assert_eq!(decide_labelled(&policy, &h, None).effect, Effect::Deny);
}

#[test]
fn rules_need_a_target_and_well_formed_handle_and_labels() {
    for (rule, field) in [
        (r#"{"id": "r", "effect": "deny"}"#, "secret"),
        (
            r#"{"id": "r", "effect": "deny", "handle": "secret:short"}"#,
            "handle",
        ),
        (r#"{"id": "r", "effect": "deny", "handle": 7}"#, "handle"),
        (r#"{"id": "r", "effect": "deny", "labels": {}}"#, "labels"),
        (
            r#"{"id": "r", "effect": "deny", "labels": ["team"]}"#,
            "labels",
        ),
        (
            r#"{"id": "r", "effect": "deny", "labels": {"team": 1}}"#,
            "labels",
        ),
        (
            r#"{"id": "r", "effect": "deny", "labels": {"team": ""}}"#,
            "labels",
        ),
    ] {
        let err = RulePolicy::from_json_str(&format!(r#"{{"rules": [{rule}]}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("field \"{field}\"")), "{rule}: {err}");
    }
}

/// Runs `load` on another thread and fails the test if it does not return:
/// a loader pointed at a FIFO must not wait for a writer.
#[cfg(unix)]
fn without_hanging<T: Send + 'static>(load: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load());
    });
    // Generous bound: only "does not hang".
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the policy loader hangs on a special file")
}

#[cfg(unix)]
#[test]
fn policy_loader_refuses_a_fifo_and_a_device_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("policy.json");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for path in [fifo, std::path::PathBuf::from("/dev/zero")] {
        let shown = path.display().to_string();
        let result = without_hanging(move || RulePolicy::from_file(&path));
        match result {
            Err(PolicyError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput, "{shown}");
                let inner = source
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<crate::durable::ReadFileError>());
                assert!(
                    matches!(
                        inner,
                        Some(crate::durable::ReadFileError::NotARegularFile { .. })
                    ),
                    "{shown}: {source}"
                );
            }
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn policy_loader_refuses_a_file_past_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: nothing is written, the length alone is past the limit.
    file.set_len(MAX_POLICY_LEN + 1).unwrap();
    match RulePolicy::from_file(&path) {
        Err(PolicyError::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::FileTooLarge, "{source}")
        }
        other => panic!("{other:?}"),
    }
}
