//! The README's first command: `cargo run --example quickstart`.
//!
//! Shows the defaults: a resolver that owns its redactor, an admin that
//! shares it and records every change in a hash-chained audit log before
//! making it, and a redactor pre-loaded after a restart.
//!
//! Stores a secret in the encrypted file provider (the embedded default)
//! through the admin and prints its handle (never the value); resolves it
//! through a policy into a child process's environment; shows another agent
//! being denied; rotates, revokes (the resolve fails with `Revoked`) and
//! restores it; then "restarts" with a fresh resolver whose redactor is
//! pre-loaded, so a log line is masked before anything was resolved. It
//! prints no secret value.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tyrum_secrets::file::{FileProvider, KeySource};
use tyrum_secrets::{
    AdminRequest, AuditChainKey, AuditSink, Catalog, ExposeSecret, JsonLinesAuditSink, KindSpec,
    MemoryCatalogStore, NewSecret, ProviderId, Purpose, Requester, ResolveError, ResolveRequest,
    Resolver, RotateOptions, RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, SecretString,
    verify_audit_log,
};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;

    // --- the encrypted file store, in a temporary directory for this run ---
    // The passphrase comes from TYRUM_SECRETS_PASSPHRASE, or is generated for
    // the run (and thrown away with the directory). Argon2id runs with its
    // real work factors (64 MiB, 3 passes, 4 lanes) either way.
    let passphrase = match std::env::var("TYRUM_SECRETS_PASSPHRASE") {
        Ok(passphrase) => SecretString::from(passphrase),
        Err(_) => generated_passphrase()?,
    };
    let store_path = dir.path().join("secrets.tyrum");
    let store = FileProvider::open(&store_path, KeySource::Passphrase(passphrase))?;
    println!("secrets are stored encrypted in {}", store_path.display());

    let provider = ProviderId::new("file")?;
    let catalog =
        Arc::new(Catalog::new(MemoryCatalogStore::new()).with_provider(provider.clone(), store));

    // --- policy and audit --------------------------------------------------
    // Only the deploy bot, only from its shell tool; everything else is denied.
    let policy = || {
        RulePolicy::from_json_str(
            r#"{ "default": "deny",
                 "rules": [ { "id": "deploy-bot", "effect": "allow",
                              "secret": "file:workspace/demo",
                              "agent": "deploy-bot", "tool": "shell.exec" } ] }"#,
        )
    };
    // Every resolve and every change is recorded in JSON lines chained with
    // HMAC-SHA256. A real deployment keeps the chain key in a provider; this
    // one is made per run.
    let audit_path = dir.path().join("audit.jsonl");
    let chain_key_bytes: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let chain_key = || AuditChainKey::new(SecretBytes::from(chain_key_bytes.clone()));
    let sink: Arc<dyn AuditSink> = Arc::new(JsonLinesAuditSink::open(&audit_path, chain_key()?)?);

    // --- the two sides: a resolver that reads, an admin that changes -------
    // The resolver owns its redactor (redaction is on by default); the admin
    // shares it, so a value is masked from the moment it is stored.
    let resolver = Resolver::builder(Arc::clone(&catalog), policy()?, Arc::clone(&sink)).build()?;
    let redactor = resolver
        .redactor()
        .cloned()
        .ok_or("the resolver has a redactor unless built without_redaction()")?;
    let admin = SecretAdmin::builder(Arc::clone(&catalog), Arc::clone(&sink))
        .redactor(redactor.clone())
        .build()?;
    let operator = AdminRequest::new(
        Requester::new("ops-quickstart")?,
        Purpose::new("quickstart demo")?,
    );

    // --- store a secret: the model and every log see only the handle ------
    // In a real gateway the value comes from an operator prompt or an API;
    // here it is made up for the run and never printed.
    let value = SecretBytes::from(format!("sk-quickstart-{}", std::process::id()).into_bytes());
    let spec = NewSecret::new(
        provider.clone(),
        Scope::new("workspace/demo")?,
        KindSpec::new(SecretKind::ApiKey, None)?,
    )
    .label("purpose", "quickstart");
    let handle = admin.create(spec, &value, &operator)?;
    println!("stored a secret; the model and every log see only {handle}");
    let on_disk = std::fs::read(&store_path)?;
    let plaintext_on_disk = on_disk
        .windows(value.expose_secret().len())
        .any(|window| window == value.expose_secret());
    println!("the store file holds the value in plaintext: {plaintext_on_disk}");

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

    // --- a tool call: arguments hold the handle, the executor the value ----
    let arguments = serde_json::json!({ "url": "https://api.example.test/v1/deploy",
                                        "token": handle.to_string() });
    println!("tool arguments as the model wrote them: {arguments}");
    let substituted = resolver.substitute_json(&arguments, &request)?;
    // A careless tool echoes its token, raw and base64-encoded.
    let token = substituted.expose_secret()["token"]
        .as_str()
        .unwrap_or_default();
    let echoed = format!(
        "401 Unauthorized: token {token} (base64 {}) was rejected",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    println!(
        "tool output as stored and shown: {}",
        redactor.redact_str(&echoed)
    );
    drop(substituted);

    // Another agent asks for the same secret: denied, and audited too.
    let other = ResolveRequest::new(Requester::new("chat-agent")?, Purpose::new("curious")?);
    match resolver.resolve(handle.id(), &other) {
        Err(err) => println!("chat-agent is refused: {err}"),
        Ok(_) => return Err("the policy let chat-agent resolve".into()),
    }

    // --- rotate, revoke, restore -------------------------------------------
    let rotated =
        SecretBytes::from(format!("sk-quickstart-rotated-{}", std::process::id()).into_bytes());
    let version = admin.rotate(
        handle.id(),
        &rotated,
        RotateOptions::default().retire_previous_after(Duration::from_secs(300)),
        &operator,
    )?;
    println!("rotated {handle} to {version}; the old version retires after a 5 minute grace");

    let leaked = AdminRequest::new(
        Requester::new("ops-quickstart")?,
        Purpose::new("pretend the key leaked")?,
    );
    admin.revoke(handle.id(), &leaked)?;
    match resolver.resolve(handle.id(), &request) {
        Err(err @ ResolveError::Revoked { .. }) => {
            println!("resolve after revoke fails closed: {err}")
        }
        Err(other) => return Err(other.into()),
        Ok(_) => return Err("a revoked handle resolved".into()),
    }
    admin.restore(handle.id(), &operator)?;
    let resolved = resolver.resolve(handle.id(), &request)?;
    println!(
        "restored {handle}; it resolves again, to {}",
        resolved.version()
    );
    drop(resolved);

    // --- a restart: a fresh resolver knows no value until it pre-loads ----
    drop((resolver, admin, redactor));
    let restarted =
        Resolver::builder(Arc::clone(&catalog), policy()?, Arc::clone(&sink)).build()?;
    let report = restarted.preload_redactor(
        &Requester::new("gateway")?,
        &Purpose::new("start-up: mask every value still in use")?,
    )?;
    let fresh = restarted
        .redactor()
        .ok_or("the resolver has a redactor unless built without_redaction()")?;
    let old_log_line = format!(
        "retrying with key {}",
        String::from_utf8_lossy(value.expose_secret())
    );
    println!(
        "after a restart the redactor holds {} values before any resolve; a log line \
         quoting the first (now retiring) version reads: {}",
        report.loaded_count(),
        fresh.redact_str(&old_log_line)
    );

    let head = verify_audit_log(&audit_path, &chain_key()?, None)?;
    println!(
        "audit log: {} records, hash chain verified, no value inside",
        head.seq
    );
    Ok(())
}

/// A random passphrase for this run: 32 bytes from the OS, as hex.
fn generated_passphrase() -> Result<SecretString, Box<dyn Error>> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| format!("no OS randomness: {e}"))?;
    let mut hex = zeroize::Zeroizing::new(String::with_capacity(64));
    for byte in bytes.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    Ok(SecretString::from(hex.as_str()))
}
