//! Crash safety of the JSON-file auth-profile store: a child process
//! updating profiles and pins in a loop is killed with SIGKILL at random
//! moments, 100 times. After every kill the store must open, and every
//! update the child saw return `Ok` must be there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failure is a panic"
)]

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::time::Duration;

use tyrum_secrets::{
    AuthProfile, AuthProfileStore, FailureKind, HandleId, JsonFileAuthProfileStore, ModelProvider,
    Pin, PinKey, ProfileId, ProfileStatus, Timestamp,
};
use tyrum_secrets_testkit::process;

const ROUNDS: usize = 100;

fn main() {
    process::main(
        &[(
            "json_profile_store_survives_sigkill_with_every_acknowledged_update",
            crash_rounds,
        )],
        worker,
    );
}

fn openai() -> ModelProvider {
    ModelProvider::new("openai").unwrap()
}

fn pin_key(conversation: &str) -> PinKey {
    PinKey::new("agent-a", openai(), conversation)
}

/// Child: create a profile, put it in a cooldown, pin a conversation to
/// it, forever; acknowledge each `Ok` on stdout only after the call
/// returned.
fn worker(_role: &str, args: &[String]) {
    let store = JsonFileAuthProfileStore::open(Path::new(&args[0])).expect("the store opens");
    let round = &args[1];
    let mut out = std::io::stdout().lock();
    for i in 0u32.. {
        let id = ProfileId::new(format!("r{round}-p{i}")).unwrap();
        let mut profile = AuthProfile::api_key(
            id.clone(),
            "agent-a",
            openai(),
            HandleId::generate().unwrap(),
        )
        .unwrap();
        store
            .compare_and_set(profile.clone(), None)
            .expect("create");
        writeln!(out, "created {id}").unwrap();
        out.flush().unwrap();
        profile.status = ProfileStatus::CoolingDown {
            until: Timestamp::from_unix_millis(u64::from(i) * 1000),
            reason: FailureKind::RateLimited,
            failures: i + 1,
        };
        store.compare_and_set(profile, Some(1)).expect("cool down");
        writeln!(out, "cooled {id} {}", i + 1).unwrap();
        out.flush().unwrap();
        let conversation = format!("r{round}-c{i}");
        let pin = Pin {
            profile: id.clone(),
            since: Timestamp::from_unix_millis(1),
        };
        store
            .set_pin(pin_key(&conversation), Some(pin))
            .expect("pin");
        writeln!(out, "pinned {conversation} {id}").unwrap();
        out.flush().unwrap();
    }
}

fn crash_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles.json");
    let mut rng = process::Rng::from_env_or_time();
    let mut created: Vec<ProfileId> = Vec::new();
    let mut cooled: Vec<(ProfileId, u32)> = Vec::new();
    let mut pinned: Vec<(String, ProfileId)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = process::spawn_worker(
            "profile-writer",
            &[path.to_str().unwrap(), &round.to_string()],
        );
        let stdout = child.stdout.take().unwrap();
        let (lines, acks) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        // Kill while it writes, not while it starts: wait for its first
        // acknowledgement, then a random moment.
        let mut seen: Vec<String> = acks
            .recv_timeout(Duration::from_secs(60))
            .into_iter()
            .collect();
        std::thread::sleep(Duration::from_micros(rng.below(150_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        seen.extend(acks.try_iter());
        for line in seen {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["created", id] => created.push(id.parse().unwrap()),
                ["cooled", id, n] => cooled.push((id.parse().unwrap(), n.parse().unwrap())),
                ["pinned", c, id] => pinned.push(((*c).to_owned(), id.parse().unwrap())),
                _ => {} // a line cut by the kill was never acknowledged
            }
        }
        let store = JsonFileAuthProfileStore::open(&path).unwrap_or_else(|e| {
            panic!("round {round}: the store does not open after SIGKILL: {e}")
        });
        let set = store.snapshot().unwrap();
        for id in &created {
            assert!(
                set.get(id).is_some(),
                "round {round}: acknowledged create of {id} lost"
            );
        }
        for (id, failures) in &cooled {
            let status = &set.get(id).unwrap().status;
            assert!(
                matches!(status, ProfileStatus::CoolingDown { failures: f, .. } if f == failures),
                "round {round}: acknowledged cooldown of {id} lost: {status:?}"
            );
        }
        for (conversation, id) in &pinned {
            assert_eq!(
                set.pin(&pin_key(conversation)).map(|p| &p.profile),
                Some(id),
                "round {round}: acknowledged pin of {conversation} lost"
            );
        }
    }
    println!(
        "{ROUNDS} SIGKILL rounds: {} creates, {} cooldowns and {} pins acknowledged, all present",
        created.len(),
        cooled.len(),
        pinned.len()
    );
    assert!(
        created.len() >= ROUNDS && pinned.len() > ROUNDS / 4,
        "the worker rarely got to write; the test proves little"
    );
}
