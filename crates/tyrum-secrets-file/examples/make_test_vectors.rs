//! Writes the format-2 test vectors in `tests/data/` (FORMAT.md). Tests
//! never run this: the checked-in files are the reference, and regenerating
//! them is a deliberate act (a format change) that shows up in review:
//!
//! ```text
//! cargo run -p tyrum-secrets-file --example make_test_vectors -- crates/tyrum-secrets-file/tests/data
//! ```
//!
//! The format-1 vectors (`v1-*`) were written by this example before format
//! 2 existed; writers no longer create format-1 stores, so they are kept as
//! they are. The values are fake, and the KDF parameters are cheap on
//! purpose.

use std::path::{Path, PathBuf};

use tyrum_secrets_core::anchor::Anchor;
use tyrum_secrets_core::{Locator, SecretBytes, SecretProvider, Version};
use tyrum_secrets_file::{FileOptions, FileProvider, KdfParams, KeySource, StoreKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: make_test_vectors <dir>")?,
    );
    let secret = |bytes: &[u8]| SecretBytes::from(bytes.to_vec());
    let loc = Locator::new;
    let fresh = |name: &str| -> Result<PathBuf, String> {
        let path = dir.join(name);
        for p in [
            path.clone(),
            sibling(&path, ".anchor"),
            sibling(&path, ".lock"),
        ] {
            if p.exists() {
                return Err(format!("{} exists; remove it to regenerate", p.display()));
            }
        }
        Ok(path)
    };

    let path = fresh("v2-passphrase.tyrum")?;
    let options = FileOptions::default()
        .kdf_params(KdfParams::new(64, 2, 1)?)
        .compact_on_destroy(false);
    let p = FileProvider::open_with(
        &path,
        KeySource::passphrase("tyrum test vector passphrase"),
        options,
    )?;
    p.write(&loc("demo/api-key")?, &secret(b"sk-test-vector-0001"))?;
    p.write(&loc("demo/api-key")?, &secret(b"sk-test-vector-0002"))?;
    p.write(&loc("demo/deleted")?, &secret(b"deleted-test-vector"))?;
    p.delete(&loc("demo/deleted")?, Version::FIRST)?;
    p.write(&loc("demo/destroyed")?, &secret(b"kept-test-vector"))?;
    let v2 = p.write(&loc("demo/destroyed")?, &secret(b"destroyed-test-vector"))?;
    p.destroy(&loc("demo/destroyed")?, v2)?;
    p.compact()?;
    let binary: Vec<u8> = (0..=255u8).collect();
    p.write(&loc("demo/binary")?, &secret(&binary))?;
    p.write(&loc("demo/unicode")?, &secret("pässwörd-🔑".as_bytes()))?;
    drop(p);
    std::fs::remove_file(sibling(&path, ".lock"))?;

    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let path = fresh("v2-rawkey.tyrum")?;
    let r = FileProvider::open_with(
        &path,
        KeySource::Key(StoreKey::from_bytes(key)),
        FileOptions::default().anchor(Anchor::beside(&path)),
    )?;
    r.write(&loc("demo/api-key")?, &secret(b"sk-raw-key-vector"))?;
    r.write(&loc("demo/api-key")?, &secret(b"sk-raw-key-vector-2"))?;
    r.write(&loc("demo/other")?, &secret(b"other-raw-key-vector"))?;
    drop(r);
    std::fs::remove_file(sibling(&path, ".lock"))?;
    println!("wrote test vectors to {}", dir.display());
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}
