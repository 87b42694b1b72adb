//! One gateway program for every deployment profile: the config file picks
//! the profile, `Secrets::open` builds the rest.
//!
//! ```sh
//! cargo run --example gateway -- examples/gateway/single-host.toml
//! cargo run --features env --example gateway -- examples/gateway/kubernetes.toml
//! cargo run --features keychain --example gateway -- examples/gateway/desktop.toml
//! cargo run --features vault --example gateway -- examples/gateway/cluster.toml
//! ```
//!
//! (Each config file says what to prepare first.) The program opens the
//! profile, makes sure a demo secret exists (created with a random value, or
//! imported from the mounted volume on Kubernetes), resolves it into a
//! child process's environment and into a tool call's arguments, passes the
//! tool's careless output through the redactor, and verifies the audit log.
//! It prints no secret value.

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;

use tyrum_secrets::{
    AdminRequest, Config, KindSpec, Locator, NewSecret, Profile, ProviderId, Purpose, Requester,
    ResolveRequest, Scope, SecretBytes, SecretHandle, SecretKind, Secrets,
};

/// The label that marks the demo secret in the catalog.
const DEMO_LABEL: &str = "gateway-demo";

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: gateway <config.toml>   (see examples/gateway/)")?;
    // The file, then TYRUM_SECRETS_* variables on top of it.
    let config = Config::load(Some(&path))?;
    let secrets = Secrets::open(&config)?;
    print!("{}", secrets.report());

    let handle = demo_secret(&secrets)?;
    println!("the model and every log see only {handle}");

    // A step of a plan: the deploy bot runs a shell tool with the key in
    // its environment. The parent never holds the value as a String.
    let request = ResolveRequest::new(
        Requester::new("deploy-bot")?
            .tool("shell.exec")?
            .tool_call("call-1")?,
        Purpose::new("deploy the demo site")?,
    );
    let mut child = std::process::Command::new("sh");
    child.args(["-c", r#"echo "the tool sees API_KEY of ${#API_KEY} bytes""#]);
    secrets
        .resolver()
        .inject_env(&mut child, [("API_KEY", handle.id())], &request)?;
    if !child.status()?.success() {
        return Err("the tool failed".into());
    }

    // A tool call whose arguments hold the handle; the tool echoes its
    // token, and its output goes through the redactor on the way out.
    let arguments = serde_json::json!({ "url": "https://api.example.test/deploy",
                                        "token": handle.to_string() });
    let substituted = secrets.resolver().substitute_json(&arguments, &request)?;
    let token = substituted.expose_secret()["token"]
        .as_str()
        .unwrap_or_default();
    let mut out = secrets.redactor().writer(std::io::stdout());
    writeln!(
        out,
        "tool output as stored and shown: 401 for token {token}"
    )?;
    out.finish()?;
    drop(substituted);

    // Another agent is refused, on record.
    let other = ResolveRequest::new(Requester::new("chat-agent")?, Purpose::new("curious")?);
    if let Err(err) = secrets.resolver().resolve(handle.id(), &other) {
        println!("chat-agent is refused: {err}");
    }

    for (log, records) in secrets.verify_audit()? {
        println!("audit log {} verifies: {records} records", log.display());
    }
    Ok(())
}

/// The demo secret: found by its label, else created (or, on Kubernetes,
/// imported from the volume's `api-key`).
fn demo_secret(secrets: &Secrets) -> Result<SecretHandle, Box<dyn Error>> {
    let existing = secrets
        .admin()
        .list()?
        .into_iter()
        .find(|e| e.labels.contains_key(DEMO_LABEL) && !e.is_revoked());
    if let Some(entry) = existing {
        return Ok(entry.handle);
    }
    let kind = KindSpec::new(SecretKind::ApiKey, None)?;
    let operator = AdminRequest::new(
        Requester::new("operator")?,
        Purpose::new("gateway example setup")?,
    );
    let handle = match secrets.profile() {
        Profile::Kubernetes => {
            let spec = NewSecret::new(ProviderId::new("mounted")?, Scope::new("demo")?, kind)
                .label(DEMO_LABEL, "true");
            secrets
                .admin()
                .import(spec, Locator::new("api-key")?, &operator)?
        }
        profile => {
            let provider = match profile {
                Profile::Desktop => "keychain",
                Profile::Cluster => "vault",
                _ => "file",
            };
            let spec = NewSecret::new(ProviderId::new(provider)?, Scope::new("demo")?, kind)
                .label(DEMO_LABEL, "true");
            // In a real gateway the value comes from an operator; here it is
            // random and never printed.
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| format!("no OS randomness: {e}"))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let value = SecretBytes::from(format!("sk-gateway-{hex}").into_bytes());
            secrets.admin().create(spec, &value, &operator)?
        }
    };
    println!("created the demo secret {handle}");
    Ok(handle)
}
