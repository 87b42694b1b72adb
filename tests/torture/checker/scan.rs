//! Invariant 3: no value, in any encoding the redactor covers, in any file
//! of the run: event and trace logs, stdout and stderr of every process,
//! audit logs and anchors, the catalog, the approval store, the (encrypted)
//! store itself.
//!
//! In a cluster run the catalog and the values live in OpenBao, not in the
//! run's files: each process's state directory (audit log, keys, anchor,
//! state record) is scanned like any other file, and the catalog as
//! OpenBao stores it is scanned through the copy the harness takes after
//! the run (`bao/catalog/`, every entry's KV secret with its metadata).
//! The values' KV secrets hold the values by design and are not scanned;
//! the dev server keeps its storage in memory and its output is not
//! kept, so nothing else of OpenBao's is on disk to scan.
//!
//! The values are every value any started create or rotation could have
//! written, derived from the seed here, in memory. Hits are reported by
//! file, offset, operation and encoding, never by content.

use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use zeroize::Zeroizing;

use super::Check;
use super::model::Model;
use crate::plan::Plan;
use crate::values;

/// The redactor's minimum value length in the run's config (the default).
const MIN_VALUE_LEN: usize = 8;

pub(crate) fn scan(run: &Path, plan: &Plan, model: &Model, check: &mut Check) {
    let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut labels: Vec<(u64, &'static str)> = Vec::new();
    for op in model.ops.values() {
        if !matches!(op.kind.as_str(), "create" | "rotate") {
            continue;
        }
        let value = values::value_for(plan.seed, op.k);
        for (name, variant) in values::variants(&value, MIN_VALUE_LEN) {
            patterns.push(variant);
            labels.push((op.k, name));
        }
    }
    if patterns.is_empty() {
        check
            .violations
            .push("no values were created: nothing to scan for".into());
        return;
    }
    let matcher = AhoCorasick::new(patterns.iter().map(|p| p.as_slice()))
        .expect("the scan's patterns build a matcher");
    drop(patterns);
    let mut files = Vec::new();
    walk(run, &mut files);
    let mut scanned = 0u64;
    for file in files {
        let Ok(bytes) = std::fs::read(&file) else {
            check
                .violations
                .push(format!("{} cannot be read for the scan", file.display()));
            continue;
        };
        scanned += 1;
        let bytes = Zeroizing::new(bytes);
        for hit in matcher.find_overlapping_iter(&bytes[..]) {
            let (k, name) = labels[hit.pattern().as_usize()];
            check.violations.push(format!(
                "{} at byte {}: the value of operation {k} ({name} form)",
                file.strip_prefix(run).unwrap_or(&file).display(),
                hit.start()
            ));
        }
    }
    if scanned == 0 {
        check.violations.push("no file was scanned".into());
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}
