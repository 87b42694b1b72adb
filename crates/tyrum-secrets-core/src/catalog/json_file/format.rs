//! The catalog file's two formats.
//!
//! - Version 1, plain: `{"format", "version": 1, "entries": {...}}`.
//! - Version 2, authenticated: the same, plus the file's write position —
//!   `generation` (which rewrite of the catalog's history), `count` (writes
//!   in it) and `prev` (the MAC of the write before) — and `mac`, an
//!   HMAC-SHA256 under the [`CatalogKey`] over all three and the exact bytes
//!   of `entries`. So every write's MAC chains to the one before it, and a
//!   file one write ahead of its anchor is checked against the anchor
//!   through `prev` (the crash rule of [`crate::anchor`]).
//!
//! The MAC is checked on the bytes as stored, before the entries are
//! parsed: an edited entry never reaches the catalog.

use std::collections::BTreeMap;
use std::path::Path;

use hmac::Mac as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::key::CatalogKey;
use crate::HandleId;
use crate::anchor::{AnchorHead, CHAIN_LEN, ChainWatch, Observed, SealedAnchor};
use crate::audit::{hex, unhex};
use crate::catalog::{CatalogEntry, CatalogError};

pub(super) const FORMAT: &str = "tyrum-secrets-catalog";
pub(super) const PLAIN_VERSION: u32 = 1;
pub(super) const SEALED_VERSION: u32 = 2;

pub(super) type EntryMap = BTreeMap<HandleId, CatalogEntry>;

/// Where an authenticated catalog file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileHead {
    /// Which rewrite of the catalog's history: 1 for the first, one more
    /// after each explicit acceptance.
    pub(super) generation: u64,
    /// Writes in this generation, this one included.
    pub(super) count: u64,
    /// The MAC of the write before (zeros for the first).
    pub(super) prev: [u8; CHAIN_LEN],
    /// This write's MAC: the chain value an anchor keeps.
    pub(super) mac: [u8; CHAIN_LEN],
}

impl FileHead {
    /// The head as the anchor keeps it.
    pub(super) fn anchor_head(&self) -> AnchorHead {
        AnchorHead::new(self.generation, self.count, self.mac)
    }

    /// What the anchor check needs: this head, and the chain value one
    /// write back, so a file one write ahead of its anchor is accepted
    /// only if it continues the anchored write.
    pub(super) fn observed(&self, anchor: &SealedAnchor) -> Observed {
        let mut watch = ChainWatch::new(Some(anchor), self.generation);
        if let Some(before) = self.count.checked_sub(1) {
            watch.observe(before, &self.prev);
        }
        watch.finish(self.anchor_head())
    }
}

/// A parsed catalog file.
pub(super) enum Parsed {
    /// Version 1: no MAC.
    Plain(EntryMap),
    /// Version 2, its MAC checked.
    Sealed {
        /// Its position.
        head: FileHead,
        /// Its entries.
        entries: EntryMap,
    },
}

/// Every catalog file, either version.
#[derive(Deserialize)]
struct RawFile<'a> {
    format: String,
    version: u32,
    generation: Option<u64>,
    count: Option<u64>,
    prev: Option<String>,
    mac: Option<String>,
    #[serde(borrow)]
    entries: &'a RawValue,
}

/// Parses a catalog file. A version-2 file is refused without `key`
/// (a plain store must not rewrite an authenticated catalog without its
/// MAC), and with it, its MAC is checked before its entries are parsed.
///
/// Errors never quote the file: a path pointed at the wrong file must not
/// copy its content into a message.
pub(super) fn parse(
    bytes: &[u8],
    path: &Path,
    key: Option<&CatalogKey>,
) -> Result<Parsed, CatalogError> {
    let corrupt = |message: String| CatalogError::Corrupt {
        path: path.to_owned(),
        message,
    };
    let file: RawFile<'_> = serde_json::from_slice(bytes).map_err(|e| corrupt(describe(&e)))?;
    if file.format != FORMAT {
        return Err(corrupt(format!("its format is not {FORMAT:?}")));
    }
    let raw = file.entries.get().as_bytes();
    match file.version {
        PLAIN_VERSION => Ok(Parsed::Plain(parse_entries(raw, path)?)),
        SEALED_VERSION => {
            let Some(key) = key else {
                return Err(corrupt(
                    "it is an authenticated catalog (format version 2); open it with \
                     JsonFileCatalogStore::open_authenticated and its key"
                        .to_owned(),
                ));
            };
            let chain = |field: Option<String>, name: &str| {
                field
                    .as_deref()
                    .and_then(unhex)
                    .and_then(|bytes| <[u8; CHAIN_LEN]>::try_from(bytes).ok())
                    .ok_or_else(|| corrupt(format!("its {name} is missing or not 64 hex digits")))
            };
            let (Some(generation), Some(count)) = (file.generation, file.count) else {
                return Err(corrupt("its generation or count is missing".to_owned()));
            };
            let prev = chain(file.prev, "prev")?;
            let mac = chain(file.mac, "mac")?;
            if key
                .mac(generation, count, &prev, raw)
                .verify_slice(&mac)
                .is_err()
            {
                return Err(CatalogError::Tampered {
                    path: path.to_owned(),
                });
            }
            let head = FileHead {
                generation,
                count,
                prev,
                mac,
            };
            let entries = parse_entries(raw, path)?;
            Ok(Parsed::Sealed { head, entries })
        }
        other => Err(corrupt(format!(
            "format version {other} is not supported (this build reads {PLAIN_VERSION} and \
             {SEALED_VERSION})"
        ))),
    }
}

/// [`parse`] for a store without a key: a version-1 file's entries.
pub(super) fn parse_plain(bytes: &[u8], path: &Path) -> Result<EntryMap, CatalogError> {
    match parse(bytes, path, None)? {
        Parsed::Plain(entries) => Ok(entries),
        // `parse` refuses a sealed file without a key; answer the same.
        Parsed::Sealed { .. } => Err(CatalogError::Corrupt {
            path: path.to_owned(),
            message: "it is an authenticated catalog".to_owned(),
        }),
    }
}

fn parse_entries(raw: &[u8], path: &Path) -> Result<EntryMap, CatalogError> {
    let corrupt = |message: String| CatalogError::Corrupt {
        path: path.to_owned(),
        message,
    };
    let entries: EntryMap = serde_json::from_slice(raw)
        .map_err(|e| corrupt(format!("in its entries: {}", describe(&e))))?;
    if let Some((key, _)) = entries.iter().find(|(key, entry)| *key != entry.id()) {
        return Err(corrupt(format!(
            "entry under {key} carries another handle id"
        )));
    }
    Ok(entries)
}

/// serde_json's messages quote the input ("invalid type: string
/// \"...\""); only the class and place are kept.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof => "the file ends early",
        Category::Syntax => "invalid JSON syntax",
        Category::Data | Category::Io => "JSON that is not a catalog",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

/// A version-1 file holding `entries`.
pub(super) fn plain(entries: &EntryMap) -> Result<Vec<u8>, serde_json::Error> {
    #[derive(serde::Serialize)]
    struct PlainFile<'a> {
        format: &'static str,
        version: u32,
        entries: &'a EntryMap,
    }
    serde_json::to_vec_pretty(&PlainFile {
        format: FORMAT,
        version: PLAIN_VERSION,
        entries,
    })
}

/// A version-2 file holding `entries` as write `count` of `generation`,
/// chained to `prev`, and its head.
pub(super) fn sealed(
    entries: &EntryMap,
    generation: u64,
    count: u64,
    prev: [u8; CHAIN_LEN],
    key: &CatalogKey,
) -> Result<(Vec<u8>, FileHead), serde_json::Error> {
    let body = serde_json::to_vec_pretty(entries)?;
    let mac: [u8; CHAIN_LEN] = key
        .mac(generation, count, &prev, &body)
        .finalize()
        .into_bytes()
        .into();
    let mut out = format!(
        "{{\n  \"format\": \"{FORMAT}\",\n  \"version\": {SEALED_VERSION},\n  \
         \"generation\": {generation},\n  \"count\": {count},\n  \"prev\": \"{}\",\n  \
         \"mac\": \"{}\",\n  \"entries\": ",
        hex(&prev),
        hex(&mac)
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out.extend_from_slice(b"\n}\n");
    let head = FileHead {
        generation,
        count,
        prev,
        mac,
    };
    Ok((out, head))
}
