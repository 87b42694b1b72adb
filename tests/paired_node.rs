//! Runs `examples/paired_node.rs`'s gateway and node as two real processes,
//! with this test relaying — and recording — every byte of the Unix socket
//! between them. The recording, the gateway's outbox, the node's replay
//! store and key store, and both processes' output are searched for the
//! value and its encodings.
//!
//! `harness = false`: the testkit's process runner re-executes this binary
//! as the gateway and the node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test binary without the test harness: a panic is a test failure"
)]

#[cfg(unix)]
#[allow(dead_code, reason = "the example's own main is not used here")]
#[path = "../examples/paired_node.rs"]
mod example;

#[cfg(unix)]
fn main() {
    unix::main();
}

#[cfg(not(unix))]
fn main() {}

#[cfg(unix)]
mod unix {
    use std::io::{Read as _, Write as _};
    use std::net::Shutdown;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::Path;
    use std::process::{Child, Output, Stdio};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use tyrum_secrets::SecretBytes;
    use tyrum_secrets_testkit::process;

    const VALUE_ENV: &str = "TYRUM_PAIRED_NODE_TEST_VALUE";
    const TIMEOUT: Duration = Duration::from_secs(120);

    pub(super) fn main() {
        process::main(
            &[(
                "paired_node_example_keeps_the_value_off_the_socket_and_the_disk",
                paired_node_example_keeps_the_value_off_the_socket_and_the_disk,
            )],
            worker,
        );
    }

    fn worker(role: &str, args: &[String]) {
        let [socket, state] = args else {
            panic!("a worker takes a socket and a state directory");
        };
        let (socket, state) = (Path::new(socket), Path::new(state));
        match role {
            "gateway" => {
                let value = std::env::var(VALUE_ENV).unwrap();
                let listener = UnixListener::bind(socket).unwrap();
                super::example::gateway(listener, state, &SecretBytes::from(value.into_bytes()))
                    .unwrap();
            }
            "node" => super::example::node(socket, state).unwrap(),
            other => panic!("unknown role {other}"),
        }
    }

    fn paired_node_example_keeps_the_value_off_the_socket_and_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let gateway_socket = state.join("gateway.sock");
        let relay_socket = state.join("relay.sock");
        let mut random = [0u8; 12];
        getrandom::fill(&mut random).unwrap();
        let canary = format!("tok-paired-CANARY-{}", hex(&random));

        let gateway = spawn("gateway", &gateway_socket, state, Some(&canary));
        wait_for(&gateway_socket);
        let relay = UnixListener::bind(&relay_socket).unwrap();
        let node = spawn("node", &relay_socket, state, None);

        // Relay node <-> gateway, recording both directions.
        let from_node = accept(&relay);
        let to_gateway = UnixStream::connect(&gateway_socket).unwrap();
        let recording = Arc::new(Mutex::new(Vec::new()));
        let up = pump(
            from_node.try_clone().unwrap(),
            to_gateway.try_clone().unwrap(),
            &recording,
        );
        let down = pump(to_gateway, from_node, &recording);

        let gateway = finish(gateway, "gateway");
        let node = finish(node, "node");
        up.join().unwrap();
        down.join().unwrap();
        let traffic = recording.lock().unwrap().clone();
        let traffic_text = String::from_utf8_lossy(&traffic);

        // The exchange happened: pairing, a sealed envelope, the child's
        // output with the value masked (so the child had it: the node's
        // redactor replaces only values it registered), and the redelivery
        // refused by the replay guard.
        assert!(traffic_text.contains(r#""pair":"#), "{traffic_text}");
        assert!(traffic_text.contains("sealed:"), "{traffic_text}");
        assert!(
            traffic_text.contains("deploying with token=[secret:"),
            "{traffic_text}"
        );
        assert!(traffic_text.contains("opened before"), "{traffic_text}");
        let gateway_out = String::from_utf8_lossy(&gateway.stdout);
        assert!(gateway_out.contains(r#""node":"build-7""#), "{gateway_out}");

        // The value is nowhere: not on the socket, not in the outbox (which
        // holds the envelope), not in the node's replay store or key store,
        // not in anything either process printed.
        let outbox = std::fs::read(state.join("outbox.jsonl")).unwrap();
        assert!(String::from_utf8_lossy(&outbox).contains("sealed:"));
        let replay = std::fs::read(state.join("node/replay")).unwrap();
        assert_eq!(String::from_utf8_lossy(&replay).lines().count(), 2);
        let places: [(&str, &[u8]); 7] = [
            ("socket traffic", &traffic),
            ("outbox", &outbox),
            ("replay store", &replay),
            (
                "node key store",
                &std::fs::read(state.join("node/keys.tyrum")).unwrap(),
            ),
            ("gateway stdout", &gateway.stdout),
            ("gateway stderr", &gateway.stderr),
            ("node output", &[node.stdout, node.stderr].concat()),
        ];
        for (place, bytes) in places {
            for needle in encodings(canary.as_bytes()) {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                    "the value (or an encoding of it) is in the {place}"
                );
            }
        }
    }

    fn spawn(role: &str, socket: &Path, state: &Path, value: Option<&str>) -> Child {
        let mut command = process::worker_command(role);
        command
            .arg(socket)
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(value) = value {
            command.env(VALUE_ENV, value);
        }
        command.spawn().unwrap()
    }

    fn wait_for(path: &Path) {
        let start = Instant::now();
        while !path.exists() {
            assert!(start.elapsed() < TIMEOUT, "the gateway never listened");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn accept(listener: &UnixListener) -> UnixStream {
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    return stream;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < TIMEOUT, "the node never connected");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accepting the node failed: {e}"),
            }
        }
    }

    /// Copies `from` to `to` until `from` closes, appending every byte to
    /// `recording`.
    fn pump(
        mut from: UnixStream,
        mut to: UnixStream,
        recording: &Arc<Mutex<Vec<u8>>>,
    ) -> JoinHandle<()> {
        let recording = Arc::clone(recording);
        std::thread::spawn(move || {
            from.set_read_timeout(Some(TIMEOUT)).unwrap();
            let mut buffer = [0u8; 4096];
            loop {
                let n = match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                recording.lock().unwrap().extend_from_slice(&buffer[..n]);
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        })
    }

    fn finish(child: Child, role: &str) -> Output {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the {role} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// `value`, its hex, and the stable cores of its base64 at each offset.
    fn encodings(value: &[u8]) -> Vec<Vec<u8>> {
        let mut all = vec![value.to_vec(), hex(value).into_bytes()];
        for skip in 0..3 {
            for encoded in [
                STANDARD_NO_PAD.encode(&value[skip..]),
                URL_SAFE_NO_PAD.encode(&value[skip..]),
            ] {
                all.push(encoded.as_bytes()[..encoded.len() - 4].to_vec());
            }
        }
        all
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
