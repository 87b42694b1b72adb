//! The README's first command: `cargo run --example quickstart`.
//!
//! Stores a secret, prints its handle (never the value), rotates it, revokes
//! it, shows resolution failing with `Revoked`, and restores it.

use std::error::Error;
use std::time::Duration;

use tyrum_secrets::{
    Catalog, CatalogError, KindSpec, MemoryCatalogStore, MemoryProvider, NewSecret, ProviderId,
    RotateOptions, Scope, SecretBytes, SecretKind,
};

fn main() -> Result<(), Box<dyn Error>> {
    let provider = ProviderId::new("memory")?;
    let catalog = Catalog::new(MemoryCatalogStore::new())
        .with_provider(provider.clone(), MemoryProvider::new());

    // In a real gateway the value comes from an operator prompt or an API;
    // here it is made up for the run and never printed.
    let value = SecretBytes::from(format!("sk-quickstart-{}", std::process::id()).into_bytes());
    let spec = NewSecret::new(
        provider,
        Scope::new("workspace/demo")?,
        KindSpec::new(SecretKind::ApiKey, None)?,
    )
    .label("purpose", "quickstart");
    let handle = catalog.create(spec, &value)?;
    println!("stored a secret; the model and every log see only {handle}");

    let entry = catalog.entry(handle.id())?;
    println!(
        "catalog entry: provider={} scope={} kind={} current={:?}",
        entry.handle.provider(),
        entry.handle.scope(),
        entry.handle.kind(),
        entry.current
    );

    let rotated =
        SecretBytes::from(format!("sk-quickstart-rotated-{}", std::process::id()).into_bytes());
    let version = catalog.rotate(
        handle.id(),
        &rotated,
        RotateOptions::default().retire_previous_after(Duration::from_secs(300)),
    )?;
    println!("rotated {handle} to {version}; the old version retires after a 5 minute grace");

    catalog.revoke(handle.id(), "quickstart: pretend the key leaked")?;
    match catalog.lookup(handle.id()) {
        Err(err @ CatalogError::Revoked { .. }) => {
            println!("resolve after revoke fails closed: {err}")
        }
        Err(other) => return Err(other.into()),
        Ok(_) => return Err("a revoked handle resolved".into()),
    }

    catalog.restore(handle.id())?;
    catalog.lookup(handle.id())?;
    println!("restored {handle}; it resolves again");
    Ok(())
}
