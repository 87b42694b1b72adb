//! The README's first command: `cargo run --example quickstart`.
//!
//! Stores a secret and prints its handle (never the value); resolves it
//! through a policy and a hash-chained audit log into a child process's
//! environment; shows another agent being denied; rotates, revokes (the
//! resolve fails with `Revoked`) and restores it. It prints no secret value.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets::{
    AuditChainKey, Catalog, JsonLinesAuditSink, KindSpec, MemoryCatalogStore, MemoryProvider,
    NewSecret, ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver,
    RotateOptions, RulePolicy, Scope, SecretBytes, SecretKind, verify_audit_log,
};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;

    // --- store a secret: the model and every log see only the handle ------
    let provider = ProviderId::new("memory")?;
    let catalog = Arc::new(
        Catalog::new(MemoryCatalogStore::new())
            .with_provider(provider.clone(), MemoryProvider::new()),
    );
    // In a real gateway the value comes from an operator prompt or an API;
    // here it is made up for the run and never printed.
    let value = SecretBytes::from(format!("sk-quickstart-{}", std::process::id()).into_bytes());
    let spec = NewSecret::new(
        provider.clone(),
        Scope::new("workspace/demo")?,
        KindSpec::new(SecretKind::ApiKey, None)?,
    )
    .label("purpose", "quickstart");
    let handle = catalog.create(spec, &value)?;
    println!("stored a secret; the model and every log see only {handle}");

    // --- policy and audit --------------------------------------------------
    // Only the deploy bot, only from its shell tool; everything else is denied.
    let policy = RulePolicy::from_json_str(
        r#"{ "default": "deny",
             "rules": [ { "id": "deploy-bot", "effect": "allow",
                          "secret": "memory:workspace/demo",
                          "agent": "deploy-bot", "tool": "shell.exec" } ] }"#,
    )?;
    // Every attempt is recorded in JSON lines chained with HMAC-SHA256. A real
    // deployment keeps the chain key in a provider; this one is made per run.
    let audit_path = dir.path().join("audit.jsonl");
    let chain_key_bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let chain_key = || AuditChainKey::new(SecretBytes::from(chain_key_bytes.clone()));
    let sink = JsonLinesAuditSink::open(&audit_path, chain_key()?)?;
    let resolver = Resolver::builder(Arc::clone(&catalog), policy, Arc::new(sink)).build()?;

    // --- resolve into a child process: the parent never holds a String ----
    let request = ResolveRequest::new(
        Requester::new("deploy-bot")?
            .tool("shell.exec")?
            .tool_call("call-1")?,
        Purpose::new("deploy the demo site")?,
    );
    let mut child = std::process::Command::new("sh");
    child.args([
        "-c",
        r#"echo "child process sees API_KEY of ${#API_KEY} bytes""#,
    ]);
    resolver.inject_env(&mut child, [("API_KEY", handle.id())], &request)?;
    if !child.status()?.success() {
        return Err("the child process failed".into());
    }
    println!(
        "the parent's own environment has API_KEY: {}",
        std::env::var_os("API_KEY").is_some()
    );

    // Another agent asks for the same secret: denied, and audited too.
    let other = ResolveRequest::new(Requester::new("chat-agent")?, Purpose::new("curious")?);
    match resolver.resolve(handle.id(), &other) {
        Err(err) => println!("chat-agent is refused: {err}"),
        Ok(_) => return Err("the policy let chat-agent resolve".into()),
    }

    // --- rotate, revoke, restore -------------------------------------------
    let rotated =
        SecretBytes::from(format!("sk-quickstart-rotated-{}", std::process::id()).into_bytes());
    let version = catalog.rotate(
        handle.id(),
        &rotated,
        RotateOptions::default().retire_previous_after(Duration::from_secs(300)),
    )?;
    println!("rotated {handle} to {version}; the old version retires after a 5 minute grace");

    catalog.revoke(handle.id(), "quickstart: pretend the key leaked")?;
    match resolver.resolve(handle.id(), &request) {
        Err(err @ ResolveError::Revoked { .. }) => {
            println!("resolve after revoke fails closed: {err}")
        }
        Err(other) => return Err(other.into()),
        Ok(_) => return Err("a revoked handle resolved".into()),
    }
    catalog.restore(handle.id())?;
    let resolved = resolver.resolve(handle.id(), &request)?;
    println!(
        "restored {handle}; it resolves again, to {}",
        resolved.version()
    );

    let head = verify_audit_log(&audit_path, &chain_key()?, None)?;
    println!(
        "audit log: {} records, hash chain verified, no value inside",
        head.seq
    );
    Ok(())
}
