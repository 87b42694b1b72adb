//! Several processes sharing one OpenBao: 4 processes × 100 rotations of
//! one handle through `VaultCatalogStore` and `VaultProvider` lose no
//! version and leave the catalog at the newest; a revoke made in one
//! process fails the next resolve in another process's resolver.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod support;

use std::collections::HashSet;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use support::*;
use tyrum_secrets_core::{
    AdminRequest, Catalog, ExposeSecret, HandleId, KindSpec, MemoryAuditSink, NewSecret,
    ProviderId, Purpose, Requester, ResolveError, ResolveRequest, Resolver, RotateOptions,
    RulePolicy, Scope, SecretAdmin, SecretBytes, SecretKind, SecretProvider, SecretString,
    VersionPin, VersionSelector, VersionState,
};
use tyrum_secrets_testkit::process;
use tyrum_secrets_vault::{
    KvMount, VaultAuth, VaultCatalogStore, VaultClient, VaultConfig, VaultProvider,
};

const PROCESSES: usize = 4;
const ROTATIONS: usize = 100;
const ADDR_ENV: &str = "TYRUM_TEST_BAO_ADDR";
const TOKEN_ENV: &str = "TYRUM_TEST_BAO_TOKEN";

fn main() {
    process::main_ignored(
        "needs OpenBao; run scripts/test",
        &[
            (
                "four_processes_rotating_one_handle_lose_no_version",
                concurrent_rotations,
            ),
            (
                "a_revoke_fails_the_next_resolve_in_another_process",
                revocation_across_processes,
            ),
        ],
        worker,
    );
}

/// Everything one process builds: its own client, provider, catalog and
/// admin.
struct Side {
    catalog: Arc<Catalog>,
    admin: SecretAdmin,
    provider: VaultProvider,
}

fn by(actor: &str) -> AdminRequest {
    AdminRequest::new(
        Requester::new(actor).unwrap(),
        Purpose::new("cluster test").unwrap(),
    )
}

fn side(address: &str, token: &str, prefix: &str) -> Side {
    let client = VaultClient::new(
        VaultConfig::new(address)
            .unwrap()
            .dangerous_allow_http()
            .timeout(Duration::from_secs(10)),
        VaultAuth::token(SecretString::from(token.to_owned())),
    )
    .unwrap();
    let mount = |sub: &str| {
        KvMount::new("secret")
            .unwrap()
            .with_prefix(&format!("{prefix}/{sub}"))
            .unwrap()
    };
    let provider = VaultProvider::new(client.clone(), mount("values"));
    let catalog = Arc::new(
        Catalog::new(VaultCatalogStore::new(client, mount("catalog")))
            .with_provider(ProviderId::new("bao").unwrap(), provider.clone()),
    );
    let admin = SecretAdmin::builder(Arc::clone(&catalog), Arc::new(MemoryAuditSink::new()))
        .build()
        .unwrap();
    Side {
        catalog,
        admin,
        provider,
    }
}

fn rotation_value(worker: usize, i: usize) -> Vec<u8> {
    format!("rotation-w{worker}-{i:03}-value").into_bytes()
}

fn worker(role: &str, args: &[String]) {
    let address = std::env::var(ADDR_ENV).unwrap();
    let token = std::env::var(TOKEN_ENV).unwrap();
    let me = side(&address, &token, &args[0]);
    let id = HandleId::parse_bare(&args[1]).unwrap();
    match role {
        "rotator" => {
            let w: usize = args[2].parse().unwrap();
            let by = by(&format!("rotator-{w}"));
            for i in 0..ROTATIONS {
                me.admin
                    .rotate(
                        &id,
                        &SecretBytes::from(rotation_value(w, i)),
                        RotateOptions::default(),
                        &by,
                    )
                    .unwrap_or_else(|e| panic!("worker {w} rotation {i}: {e}"));
            }
        }
        "resolver" => {
            let policy = RulePolicy::from_json_str(
                r#"{"rules": [{"id": "cluster", "effect": "allow", "secret": "bao:cluster"}]}"#,
            )
            .unwrap();
            let resolver = Resolver::builder(
                Arc::clone(&me.catalog),
                policy,
                Arc::new(MemoryAuditSink::new()),
            )
            .build()
            .unwrap();
            let request = ResolveRequest::new(
                Requester::new("worker").unwrap(),
                Purpose::new("cluster test").unwrap(),
            );
            let mut out = std::io::stdout();
            match resolver.resolve(&id, &request) {
                Ok(secret) => writeln!(out, "resolved {}", secret.value().expose_secret().len()),
                Err(e) => writeln!(out, "failed {e}"),
            }
            .unwrap();
            out.flush().unwrap();
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            match resolver.resolve(&id, &request) {
                Err(ResolveError::Revoked { .. }) => writeln!(out, "revoked"),
                Ok(_) => writeln!(out, "resolved after the revoke"),
                Err(e) => writeln!(out, "failed otherwise: {e}"),
            }
            .unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

fn create(me: &Side, value: &[u8]) -> HandleId {
    let spec = NewSecret::new(
        ProviderId::new("bao").unwrap(),
        Scope::new("cluster").unwrap(),
        KindSpec::new(SecretKind::ApiKey, None).unwrap(),
    );
    me.admin
        .create(spec, &SecretBytes::from(value.to_vec()), &by("gateway"))
        .unwrap()
        .id()
        .clone()
}

fn concurrent_rotations() {
    let server = start();
    let prefix = format!("rotations-{}", tyrum_secrets_testkit::bao::random_hex(4));
    let me = side(server.address(), server.root_token(), &prefix);
    let id = create(&me, b"rotation-initial-value");
    let children: Vec<_> = (0..PROCESSES)
        .map(|w| {
            process::worker_command("rotator")
                .args([&prefix, id.as_str(), &w.to_string()])
                .env(ADDR_ENV, server.address())
                .env(TOKEN_ENV, server.root_token())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a rotating worker failed");
    }

    let entry = me.catalog.entry(&id).unwrap();
    let versions = me.provider.versions(&entry.locator).unwrap();
    assert_eq!(
        versions.len(),
        1 + PROCESSES * ROTATIONS,
        "versions were lost or duplicated"
    );
    assert!(versions.iter().all(|v| v.state == VersionState::Live));
    let newest = versions.iter().map(|v| v.version).max().unwrap();
    assert_eq!(
        entry.current,
        VersionPin::Pinned(newest),
        "the catalog does not point at the newest version"
    );
    let stored: HashSet<Vec<u8>> = versions
        .iter()
        .map(|v| {
            me.provider
                .read(&entry.locator, VersionSelector::Exact(v.version))
                .unwrap()
                .value
                .expose_secret()
                .to_vec()
        })
        .collect();
    let missing = (0..PROCESSES)
        .flat_map(|w| (0..ROTATIONS).map(move |i| rotation_value(w, i)))
        .filter(|v| !stored.contains(v))
        .count();
    assert_eq!(missing, 0, "{missing} rotations lost their value");
}

fn revocation_across_processes() {
    let server = start();
    let prefix = format!("revoke-{}", tyrum_secrets_testkit::bao::random_hex(4));
    let gateway = side(server.address(), server.root_token(), &prefix);
    let id = create(&gateway, b"revocation-test-value");
    let mut child = process::worker_command("resolver")
        .args([&prefix, id.as_str()])
        .env(ADDR_ENV, server.address())
        .env(TOKEN_ENV, server.root_token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "resolved 21", "the worker's first resolve: {first}");
    gateway.admin.revoke(&id, &by("gateway")).unwrap();
    writeln!(child.stdin.take().unwrap(), "again").unwrap();
    let second = lines.next().unwrap().unwrap();
    assert_eq!(second, "revoked", "the worker's resolve after the revoke");
    assert!(child.wait().unwrap().success());
}
