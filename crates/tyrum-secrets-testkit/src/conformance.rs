//! The conformance checks. Each function panics with a message naming the
//! check when the provider breaks the
//! [`SecretProvider`](tyrum_secrets_core::SecretProvider) contract.
//!
//! Checks use fresh locators under `conformance/<random>/`, so they can run
//! in parallel against one shared real backend.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "checks report a broken contract by panicking, like assert!"
)]

use tyrum_secrets_core::{Locator, ProviderError, SecretBytes};

/// A fresh locator `conformance/<random>/<name>`, unique per call.
pub fn fresh_locator(name: &str) -> Locator {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Locator::new(format!("conformance/{tag}/{name}")).expect("a generated locator is valid")
}

/// Secret bytes from a slice.
pub fn secret(bytes: &[u8]) -> SecretBytes {
    SecretBytes::from(bytes.to_vec())
}

fn describe(result: &Result<impl Sized, ProviderError>) -> String {
    match result {
        Ok(_) => "Ok".to_owned(),
        Err(e) => format!("Err({e})"),
    }
}

fn is_refusal(err: &ProviderError) -> bool {
    matches!(
        err,
        ProviderError::Unsupported { .. } | ProviderError::ReadOnly { .. }
    )
}

mod fixture;
pub mod read_only;
pub mod writable;

pub use fixture::Fixture;
