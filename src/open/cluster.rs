//! The cluster profile: OpenBao (or Vault) KV version 2 holds the values
//! and the catalog, shared by every process that executes steps, so a
//! revoke made by one fails the next resolve in all of them. The audit log
//! stays per process, in the local state directory, chained and anchored
//! as in the other profiles, with its keys in `audit.key` there (or
//! `audit.key_file`).

use std::sync::Arc;
use std::time::Duration;

use tyrum_secrets_core::durable::read_regular_file;
use tyrum_secrets_core::{CatalogStore, SecretProvider, SecretString};
use tyrum_secrets_vault::{
    KvMount, VaultAuth, VaultCatalogStore, VaultClient, VaultConfig, VaultError, VaultProvider,
};
use zeroize::Zeroizing;

use super::OpenError;
use super::backend::{Backend, provider_id};
use crate::{Config, Profile};

/// The provider id of the values in OpenBao, as handles name it.
pub(crate) const PROVIDER: &str = "vault";

/// A secret id file larger than this is the wrong file.
const SECRET_ID_MAX: u64 = 4096;

/// What holds the values, for the state record: the KV mount and paths
/// (not the address, which may change while the data stays).
pub(crate) fn values(config: &Config) -> String {
    let v = &config.vault;
    format!(
        "OpenBao KV mount {}, values at {}, catalog at {}",
        v.kv_mount, v.values_path, v.catalog_path
    )
}

/// Connects to OpenBao and checks, before anything local is written, that
/// the server answers and the credentials are accepted (by listing the
/// shared catalog, which the pre-load needs anyway).
pub(crate) fn open(config: &Config) -> Result<Backend, OpenError> {
    let v = &config.vault;
    let Some(address) = v.address.as_deref() else {
        return Err(OpenError::MissingSetting {
            profile: Profile::Cluster,
            key: config.describe("vault.address"),
            why: "the OpenBao server every process shares",
        });
    };
    let (auth, auth_desc) = auth(config)?;
    let failed = |source: VaultError| OpenError::Vault {
        address: address.to_owned(),
        auth: auth_desc.clone(),
        source: Box::new(source),
    };
    let mut server = VaultConfig::new(address)
        .map_err(failed)?
        .timeout(Duration::from_millis(v.timeout_ms));
    if let Some(namespace) = &v.namespace {
        server = server.namespace(namespace.clone());
    }
    if let Some(ca) = &v.ca_file {
        server = server.ca_pem_file(ca).map_err(|source| OpenError::Vault {
            address: address.to_owned(),
            auth: format!(
                "CA file {} ({})",
                ca.display(),
                config.describe("vault.ca_file")
            ),
            source: Box::new(source),
        })?;
    }
    let mut notes = Vec::new();
    if v.dangerous_allow_http {
        server = server.dangerous_allow_http();
        if address.starts_with("http://") {
            notes.push(format!(
                "{address} is plain HTTP ({}): the token and every value cross the network in clear text; use https:// outside a dev server on loopback",
                config.describe("vault.dangerous_allow_http")
            ));
        }
    }
    let client = VaultClient::new(server, auth).map_err(failed)?;
    client.login().map_err(failed)?;

    let mount = |key: &str, path: &str| {
        KvMount::new(&v.kv_mount)
            .and_then(|m| m.with_prefix(path))
            .map_err(|source| OpenError::Vault {
                address: address.to_owned(),
                auth: config.describe(key),
                source: Box::new(source),
            })
    };
    let values = mount("vault.values_path", &v.values_path)?;
    let catalog_mount = mount("vault.catalog_path", &v.catalog_path)?;
    let catalog_at = format!("{}/{}", v.kv_mount, v.catalog_path);
    let store = VaultCatalogStore::new(client.clone(), catalog_mount);
    store.list().map_err(|source| OpenError::VaultCatalog {
        address: address.to_owned(),
        catalog: catalog_at.clone(),
        auth: auth_desc.clone(),
        source: Box::new(source),
    })?;
    let provider: Arc<dyn SecretProvider> = Arc::new(VaultProvider::new(client, values));
    Ok(Backend {
        providers: vec![(provider_id(PROVIDER)?, provider)],
        keys_provider: None,
        keychain: None,
        values: self::values(config),
        notes: {
            notes.insert(0, format!(
                "values and catalog are shared in OpenBao at {address} ({}/{}, {catalog_at}); the audit log is this process's own",
                v.kv_mount, v.values_path
            ));
            notes
        },
        store_anchor: None,
        catalog: Some(Arc::new(store)),
    })
}

/// How this process gets its token, and a description for errors (the
/// setting and where it was set; never a credential).
fn auth(config: &Config) -> Result<(VaultAuth, String), OpenError> {
    let v = &config.vault;
    if let Some(path) = &v.token_file {
        let desc = format!(
            "the token file {} ({})",
            path.display(),
            config.describe("vault.token_file")
        );
        return Ok((VaultAuth::token_file(path.clone()), desc));
    }
    if let Some(path) = &v.approle_secret_id_file {
        let Some(role_id) = &v.approle_role_id else {
            return Err(OpenError::MissingSetting {
                profile: Profile::Cluster,
                key: config.describe("vault.approle_role_id"),
                why: "the AppRole role id that goes with vault.approle_secret_id_file",
            });
        };
        let key = config.describe("vault.approle_secret_id_file");
        let fail = |reason: String| OpenError::KeyFile {
            what: "AppRole secret id file",
            path: path.clone(),
            key: key.clone(),
            reason,
        };
        let bytes = Zeroizing::new(
            read_regular_file(path, SECRET_ID_MAX)
                .map_err(|e| fail(format!("cannot be used: {e}")))?,
        );
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| fail("is not UTF-8 text; write the secret id into it".to_owned()))?
            .trim();
        if text.is_empty() {
            return Err(fail("is empty; write the secret id into it".to_owned()));
        }
        let secret_id = SecretString::from(text.to_owned());
        let mut auth = VaultAuth::app_role(role_id.clone(), secret_id);
        if let Some(mount) = &v.auth_mount {
            auth = auth.at_mount(mount.clone());
        }
        let desc = format!(
            "AppRole login with the secret id file {} ({key})",
            path.display()
        );
        return Ok((auth, desc));
    }
    if let Some(role) = &v.kubernetes_role {
        let mut auth =
            VaultAuth::kubernetes_with_token_file(role.clone(), v.kubernetes_token_file.clone());
        if let Some(mount) = &v.auth_mount {
            auth = auth.at_mount(mount.clone());
        }
        let desc = format!(
            "Kubernetes login as role {role} ({}) with the token file {}",
            config.describe("vault.kubernetes_role"),
            v.kubernetes_token_file.display()
        );
        return Ok((auth, desc));
    }
    Err(OpenError::MissingSetting {
        profile: Profile::Cluster,
        key: format!(
            "{}, {} or {}",
            config.describe("vault.token_file"),
            config.describe("vault.approle_secret_id_file"),
            config.describe("vault.kubernetes_role")
        ),
        why: "how this process gets its OpenBao token (never the token itself in the config)",
    })
}
