//! Selection is a pure function of (profiles, their state, the catalog's
//! view, the clock, the order, the pin): same inputs, same answer, whatever
//! order the store was filled in; and it never picks a profile that is
//! cooling down, disabled, expired beyond refresh, or has a revoked, expired
//! or unknown handle. An independent oracle computes the expected choice.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::super::select::{HandleState, Query, choose};
use super::*;

const NOW: Timestamp = T0;
const AGENT: &str = "agent-a";
const CONVERSATION: &str = "conv";

#[derive(Clone, Debug)]
struct Case {
    profiles: Vec<AuthProfile>,
    handles: BTreeMap<HandleId, HandleState>,
    order: Option<Vec<ProfileId>>,
    pin: Option<ProfileId>,
    conversation: bool,
    provider: ModelProvider,
}

fn handle(n: usize) -> HandleId {
    HandleId::parse_bare(&format!("{n:0>22}")).unwrap()
}

fn at(offset_secs: i64) -> Timestamp {
    let millis = NOW.unix_millis() as i64 + offset_secs * 1000;
    Timestamp::from_unix_millis(millis as u64)
}

fn state() -> impl Strategy<Value = HandleState> {
    prop_oneof![
        6 => Just(HandleState::Usable),
        1 => (-50i64..50).prop_map(|o| HandleState::Revoked(at(o))),
        1 => (-50i64..50).prop_map(|o| HandleState::Expired(at(o))),
        1 => Just(HandleState::Unknown),
        1 => Just(HandleState::Unavailable),
    ]
}

fn status() -> impl Strategy<Value = ProfileStatus> {
    prop_oneof![
        4 => Just(ProfileStatus::Active),
        2 => (-100i64..100, 1u32..6).prop_map(|(o, failures)| ProfileStatus::CoolingDown {
            until: at(o),
            reason: FailureKind::RateLimited,
            failures,
        }),
        1 => Just(ProfileStatus::Disabled { at: at(-1), reason: DisableReason::InvalidCredentials }),
    ]
}

/// A profile shape: owner, provider, credential type, expiry, status, last
/// good use, shared.
fn shape() -> impl Strategy<
    Value = (
        bool,
        bool,
        u8,
        Option<i64>,
        ProfileStatus,
        Option<i64>,
        bool,
    ),
> {
    (
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        0u8..4,
        prop::option::of(-100i64..100),
        status(),
        prop::option::of(-1000i64..0),
        prop::bool::weighted(0.2),
    )
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(shape(), 0..9),
        prop::collection::vec(state(), 18),
        prop::option::of(prop::collection::vec(0usize..10, 0..6)),
        prop::option::of(0usize..10),
        any::<bool>(),
    )
        .prop_map(|(shapes, states, order, pin, conversation)| {
            let mut handles = BTreeMap::new();
            let mut profiles = Vec::new();
            for (i, (own, openai_, kind, expiry, status, good, shared)) in
                shapes.into_iter().enumerate()
            {
                let first = handle(2 * i);
                let second = handle(2 * i + 1);
                handles.insert(first.clone(), states[2 * i]);
                handles.insert(second.clone(), states[2 * i + 1]);
                let owner = if own { AGENT } else { "agent-b" };
                let provider =
                    ModelProvider::new(if openai_ { "openai" } else { "anthropic" }).unwrap();
                let pid = id(&format!("p{i}"));
                let mut profile = match kind {
                    0 => AuthProfile::api_key(pid, owner, provider, first),
                    1 => AuthProfile::oauth(
                        pid,
                        owner,
                        provider,
                        first,
                        Some(second),
                        expiry.map(at),
                    ),
                    2 => AuthProfile::oauth(pid, owner, provider, first, None, expiry.map(at)),
                    _ => AuthProfile::token(pid, owner, provider, first, expiry.map(at)),
                }
                .unwrap();
                if shared {
                    profile = profile.share_with(AGENT).unwrap();
                }
                profile.status = status;
                profile.last_good_use = good.map(at);
                profiles.push(profile);
            }
            let name = |n: usize| id(&format!("p{n}"));
            Case {
                profiles,
                handles,
                order: order.map(|o| {
                    let mut seen = Vec::new();
                    for n in o {
                        if !seen.contains(&name(n)) {
                            seen.push(name(n));
                        }
                    }
                    seen
                }),
                pin: pin.map(name),
                conversation,
                provider: ModelProvider::new("openai").unwrap(),
            }
        })
}

fn run(case: &Case, set: &ProfileSet) -> Result<(ProfileId, Choice, Vec<Skipped>), Vec<Skipped>> {
    let states = |h: &HandleId| case.handles.get(h).copied().unwrap_or(HandleState::Unknown);
    let query = Query {
        agent: AGENT,
        provider: &case.provider,
        conversation: case.conversation.then_some(CONVERSATION),
        order: case.order.as_deref(),
        now: NOW,
    };
    choose(set, &query, &states).map(|(p, c, s)| (p.id.clone(), c, s))
}

fn set_of(case: &Case, reverse: bool) -> ProfileSet {
    let mut set = ProfileSet::new();
    let mut profiles = case.profiles.clone();
    if reverse {
        profiles.reverse();
    }
    for p in profiles {
        set.compare_and_set(p, None).unwrap();
    }
    if let Some(pin) = &case.pin {
        let key = PinKey::new(AGENT, case.provider.clone(), CONVERSATION);
        set.set_pin(
            key,
            Some(Pin {
                profile: pin.clone(),
                since: at(-5),
            }),
        );
    }
    set
}

/// The oracle: may `p` be used at NOW, judged from first principles.
fn oracle_usable(case: &Case, p: &AuthProfile) -> bool {
    if p.provider != case.provider || !(p.agent == AGENT || p.shared_with.contains(AGENT)) {
        return false;
    }
    match p.status {
        ProfileStatus::Disabled { .. } => return false,
        ProfileStatus::CoolingDown { until, .. } if until > NOW => return false,
        _ => {}
    }
    let refreshable = p.credential.refresh_handle().is_some();
    if p.credential.expires_at().is_some_and(|e| e <= NOW) && !refreshable {
        return false;
    }
    p.credential.slots().all(|(slot, h)| match case.handles[h] {
        HandleState::Usable => true,
        HandleState::Expired(_) => refreshable && slot == Slot::AccessToken,
        _ => false,
    })
}

/// The oracle's choice: the pin if usable, else the first usable profile in
/// the explicit order, or least recently used then id.
fn oracle_choice(case: &Case) -> Option<ProfileId> {
    let by_id = |i: &ProfileId| case.profiles.iter().find(|p| &p.id == i);
    if case.conversation
        && let Some(p) = case.pin.as_ref().and_then(by_id)
        && oracle_usable(case, p)
    {
        return Some(p.id.clone());
    }
    let ranked: Vec<&AuthProfile> = match &case.order {
        Some(order) => order.iter().filter_map(by_id).collect(),
        None => {
            let mut all: Vec<&AuthProfile> = case.profiles.iter().collect();
            all.sort_by_key(|p| (p.last_good_use, p.id.clone()));
            all
        }
    };
    ranked
        .into_iter()
        .find(|p| oracle_usable(case, p))
        .map(|p| p.id.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn selection_is_a_pure_function_of_its_inputs(case in case()) {
        let forward = set_of(&case, false);
        let first = run(&case, &forward);
        prop_assert_eq!(&run(&case, &forward), &first);
        // Filled in another order, the store answers the same.
        prop_assert_eq!(&run(&case, &set_of(&case, true)), &first);
    }

    #[test]
    fn selection_never_picks_an_unusable_profile_and_matches_the_oracle(case in case()) {
        let set = set_of(&case, false);
        let answer = run(&case, &set);
        let expected = oracle_choice(&case);
        match &answer {
            Ok((chosen, choice, skipped)) => {
                let profile = set.get(chosen).unwrap();
                prop_assert!(oracle_usable(&case, profile), "chose an unusable {:?}", profile);
                let disabled = matches!(profile.status, ProfileStatus::Disabled { .. });
                let cooling = matches!(profile.status, ProfileStatus::CoolingDown { until, .. } if until > NOW);
                prop_assert!(!disabled && !cooling, "chose {:?}", profile.status);
                for (_, h) in profile.credential.slots() {
                    let revoked = matches!(case.handles[h], HandleState::Revoked(_));
                    prop_assert!(!revoked, "chose a revoked handle");
                }
                if let Some(order) = &case.order
                    && !matches!(choice, Choice::Pinned { .. })
                {
                    prop_assert!(order.contains(chosen));
                }
                prop_assert_eq!(Some(chosen.clone()), expected);
                for s in skipped {
                    if let Some(p) = set.get(&s.profile) {
                        prop_assert!(!oracle_usable(&case, p), "skipped a usable {:?}", s);
                    }
                }
            }
            Err(skipped) => {
                prop_assert_eq!(None, expected);
                // Every candidate is accounted for.
                for p in case.profiles.iter().filter(|p| oracle_usable(&case, p) || p.provider == case.provider && p.serves(AGENT)) {
                    prop_assert!(skipped.iter().any(|s| s.profile == p.id), "{:?} missing from {:?}", p.id, skipped);
                }
            }
        }
    }
}
