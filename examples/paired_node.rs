//! Gateway-mediated resolution across two real processes:
//! `cargo run --example paired_node --features seal`.
//!
//! The gateway (this process) resolves a secret through policy and audit and
//! seals it to a paired node; the node (a second process, started from this
//! binary) opens the envelope, injects the value into a child process's
//! environment, and sends back the child's output through its redactor.
//! They talk JSON lines over a Unix socket:
//!
//! 1. node → gateway: `{"pair": <pairing record>}` (id and public key);
//! 2. gateway → node: `{"step": {...}}` with the tool call, the command, the
//!    env var that takes `secret:<id>`, and the sealed envelope; the gateway
//!    appends the step to its outbox file first, as a queue would persist it;
//! 3. node → gateway: `{"result": {...}}` with the child's redacted output;
//! 4. the gateway delivers the same step again (a redelivery): the node's
//!    replay guard refuses it;
//! 5. gateway → node: `{"bye": true}`.
//!
//! Neither the socket traffic, nor the outbox, nor the node's replay store
//! holds the value; `tests/paired_node.rs` runs both roles as processes,
//! records every byte on the socket and searches it.

#![cfg_attr(not(unix), allow(unused))]

use std::error::Error;
use std::io::{BufReader, Write as _};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use tyrum_secrets::file::{FileProvider, KeySource, StoreKey};
use tyrum_secrets::seal::{
    Expected, FileReplayGuard, NodeId, NodeIdentity, OpenedSecrets, Opener, PairingRecord,
    SealFor as _, SealedSecret,
};
use tyrum_secrets::{
    AdminRequest, Catalog, Inject as _, KindSpec, Locator, MemoryAuditSink, MemoryCatalogStore,
    MemoryProvider, NewSecret, ProviderId, Purpose, Redactor, Requester, ResolveRequest, Resolver,
    RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind,
};

#[cfg(not(unix))]
fn main() {
    eprintln!("this example uses a Unix socket; run it on Linux or macOS");
}

#[cfg(unix)]
fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, socket, state] = args.as_slice()
        && role == "node"
    {
        return node(Path::new(socket), Path::new(state));
    }

    // The demo: this process is the gateway; the node is this binary again.
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("gateway.sock");
    let listener = UnixListener::bind(&socket)?;
    let mut node_process = Command::new(std::env::current_exe()?)
        .arg("node")
        .arg(&socket)
        .arg(dir.path())
        .spawn()?;
    // In a real gateway the value comes from an operator or an API; here it
    // is made up for the run and never printed.
    let value = demo_value()?;
    gateway(listener, dir.path(), &value)?;
    let status = node_process.wait()?;
    println!("node exited: {status}");
    Ok(())
}

/// The gateway: waits for one node, seals a secret for it, delivers the
/// step twice, and prints what happened (never the value).
#[cfg(unix)]
pub(crate) fn gateway(
    listener: UnixListener,
    state: &Path,
    value: &SecretBytes,
) -> Result<(), Box<dyn Error>> {
    // Catalog, policy and audit. The gateway's own store would be the file
    // store or OpenBao; a memory provider keeps the example short.
    let provider = ProviderId::new("memory")?;
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(provider.clone(), MemoryProvider::new()),
    );
    // One redactor for the gateway: the admin and the resolver register
    // every value with it, and the gateway's own output passes through it.
    let redactor = Redactor::new();
    let admin = SecretAdmin::builder(catalog.clone(), Arc::new(MemoryAuditSink::new()))
        .redactor(redactor.clone())
        .build()?;
    let handle = admin.create(
        NewSecret::new(
            provider,
            Scope::new("deploy")?,
            KindSpec::new(SecretKind::ApiKey, None)?,
        ),
        value,
        &AdminRequest::new(
            Requester::new("ops-alice")?,
            Purpose::new("deploy token for the build node")?,
        ),
    )?;
    let policy = RulePolicy::from_json_str(
        r#"{ "default": "deny",
             "rules": [ { "id": "deploy-bot", "effect": "allow",
                          "secret": "memory:deploy", "agent": "deploy-bot",
                          "tool": "shell.exec" } ] }"#,
    )?;
    let audit = Arc::new(MemoryAuditSink::new());
    let resolver = Resolver::builder(catalog, policy, audit.clone())
        .redactor(redactor.clone())
        .build()?;

    let (stream, _) = listener.accept()?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;

    // 1. Pairing: the node's id and public key; no secret.
    let hello = read_message(&mut reader)?;
    let pairing: PairingRecord = serde_json::from_value(hello["pair"].clone())?;
    println!(
        "gateway: paired with node {} (public key {})",
        pairing.node(),
        pairing.public_key()
    );

    // 2. Resolve and seal for the node, bound to this tool call.
    let tool_call = "call-1";
    let request = ResolveRequest::new(
        Requester::new("deploy-bot")?
            .tool("shell.exec")?
            .tool_call(tool_call)?,
        Purpose::new("run the deploy script on the build node")?,
    );
    let envelope = resolver.seal_for(&pairing, handle.id(), &request)?;
    println!(
        "gateway: sealed envelope {} for {} ({} bytes, expires {})",
        envelope.envelope_id(),
        envelope.node(),
        envelope.as_bytes().len(),
        envelope.expires_at()
    );
    let step = json!({"step": {
        "tool_call": tool_call,
        "command": ["sh", "-c", "printf 'deploying with token=%s\\n' \"$DEPLOY_TOKEN\""],
        "env": {"DEPLOY_TOKEN": handle.id().to_string()},
        "envelopes": [envelope.to_string()],
    }});
    // The outbox persists the step, envelope included, before delivery.
    let outbox = state.join("outbox.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&outbox)?;
    writeln!(file, "{step}")?;
    file.sync_all()?;

    // 3. Deliver, and read the result.
    write_message(&mut writer, &step)?;
    let result = read_message(&mut reader)?;
    // What the node sends back passes the gateway's redactor too before it
    // is logged or stored.
    let answer = redactor.redact_json(&result["result"]);
    println!("gateway: node answered {answer}");

    // 4. The outbox delivers the same step again.
    write_message(&mut writer, &step)?;
    let again = read_message(&mut reader)?;
    let answer = redactor.redact_json(&again["result"]);
    println!("gateway: redelivery answered {answer}");

    // 5. Done.
    write_message(&mut writer, &json!({"bye": true}))?;
    for record in audit.records() {
        // Records carry handles, requesters and the node, never values.
        println!("gateway: audit {}", serde_json::to_string(&record)?);
    }
    Ok(())
}

/// The node: makes (or loads) its identity, pairs, runs each step it is
/// sent, answers with redacted output.
#[cfg(unix)]
pub(crate) fn node(socket: &Path, state: &Path) -> Result<(), Box<dyn Error>> {
    let node_dir = state.join("node");
    std::fs::create_dir_all(&node_dir)?;
    // The private key lives in a secret provider: the encrypted file store
    // here (the OS keychain on a desktop node).
    let key_file = node_dir.join("keys.key");
    if !key_file.exists() {
        StoreKey::write_new_key_file(&key_file)?;
    }
    let keys = FileProvider::open(node_dir.join("keys.tyrum"), KeySource::KeyFile(key_file))?;
    let identity = NodeIdentity::load_or_create(
        NodeId::new("build-7")?,
        &keys,
        &Locator::new("node/identity")?,
    )?;
    let pairing = identity.pairing_record();
    let redactor = Redactor::new();
    let guard = FileReplayGuard::open(node_dir.join("replay"))?;
    let opener = Opener::builder(identity, guard, redactor.clone()).build();

    let stream = UnixStream::connect(socket)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    write_message(&mut writer, &json!({"pair": pairing}))?;

    loop {
        let message = read_message(&mut reader)?;
        if message.get("bye").is_some() {
            return Ok(());
        }
        let step = &message["step"];
        let tool_call = step["tool_call"].as_str().unwrap_or_default();
        let result = match run_step(&opener, step) {
            Ok(output) => {
                // Whatever the child printed passes the node's redactor
                // before it leaves the node.
                let output = redactor.redact_str(&output);
                json!({"tool_call": tool_call, "status": "ok", "output": output.as_str()})
            }
            Err(error) => {
                eprintln!("node: step {tool_call} refused: {error}");
                json!({"tool_call": tool_call, "status": "refused", "error": error.to_string()})
            }
        };
        write_message(&mut writer, &json!({ "result": result }))?;
    }
}

/// Opens the step's envelopes, injects them into the child's environment,
/// runs it and returns its output (not yet redacted).
#[cfg(unix)]
fn run_step(opener: &Opener, step: &Value) -> Result<String, Box<dyn Error>> {
    let tool_call = step["tool_call"]
        .as_str()
        .ok_or("the step has no tool call")?;
    let expected = Expected::tool_call(tool_call);
    let mut opened = OpenedSecrets::new();
    for text in step["envelopes"]
        .as_array()
        .ok_or("the step has no envelopes")?
    {
        let envelope: SealedSecret = text.as_str().ok_or("an envelope is not text")?.parse()?;
        opened.insert(opener.open(&envelope, &expected)?);
    }
    let argv: Vec<&str> = step["command"]
        .as_array()
        .ok_or("the step has no command")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let (program, args) = argv.split_first().ok_or("the command is empty")?;
    let mut child = Command::new(program);
    child.args(args);
    let mut vars = Vec::new();
    for (name, handle) in step["env"].as_object().ok_or("the step has no env")? {
        let handle = handle.as_str().ok_or("a handle is not text")?.parse()?;
        vars.push((name.as_str(), handle));
    }
    opened.inject_env(&mut child, vars.iter().map(|(n, h)| (*n, h)))?;
    let output = child.output()?;
    if !output.status.success() {
        return Err(format!("the command failed: {}", output.status).into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn write_message(writer: &mut impl std::io::Write, message: &Value) -> std::io::Result<()> {
    writeln!(writer, "{message}")?;
    writer.flush()
}

fn read_message(reader: &mut impl std::io::BufRead) -> Result<Value, Box<dyn Error>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err("the peer closed the connection".into());
    }
    Ok(serde_json::from_str(&line)?)
}

/// A value made up for the run.
fn demo_value() -> Result<SecretBytes, Box<dyn Error>> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(SecretBytes::from(format!("sk-deploy-{hex}").into_bytes()))
}
