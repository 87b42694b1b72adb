//! Format 2 (FORMAT.md): every record's associated data binds the chain
//! value before it, so a store with any frame cut out, two frames swapped,
//! a frame repeated, or a frame spliced in from an older copy of the same
//! store (a destroyed version's put included) is refused on open — with a
//! typed error, never a panic, never a value. Cutting the last frame leaves
//! a valid older store, which the anchor refuses.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a test failure"
)]

mod common;

use common::{frames, is_refusal, key, loc, options, read_all, secret, with_frames};
use tyrum_secrets_core::SecretProvider;
use tyrum_secrets_core::anchor::{Anchor, MemoryAnchor};
use tyrum_secrets_file::{FileOptions, FileProvider};

/// A store of exactly 50 records in its current chain, and an older copy of
/// the same store whose chain it replaced: the older copy holds the put of
/// a version destroyed (and compacted away) since.
struct Fixture {
    _dir: tempfile::TempDir,
    bytes: Vec<u8>,
    older: Vec<u8>,
    anchor: MemoryAnchor,
    scratch: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.tyrum");
    let anchor = MemoryAnchor::new();
    let opts = || options().anchor(Anchor::new(anchor.clone()));
    let p = FileProvider::open_with(&path, key(), opts()).unwrap();
    for i in 0..6 {
        p.write(
            &loc(&format!("old/{i}")),
            &secret(format!("older-{i}").as_bytes()),
        )
        .unwrap();
    }
    let doomed = p.write(&loc("old/0"), &secret(b"destroyed-value")).unwrap();
    let older = std::fs::read(&path).unwrap();
    p.destroy(&loc("old/0"), doomed).unwrap();
    p.compact().unwrap();
    // Fill the new chain up to 50 records with puts, deletes and destroys.
    let mut i = 0;
    while frames(&std::fs::read(&path).unwrap()).len() < 50 {
        let name = loc(&format!("new/{}", i % 7));
        let v = p
            .write(&name, &secret(format!("value-{i}").as_bytes()))
            .unwrap();
        match i % 5 {
            3 if frames(&std::fs::read(&path).unwrap()).len() < 50 => p.delete(&name, v).unwrap(),
            4 if frames(&std::fs::read(&path).unwrap()).len() < 50 => p.destroy(&name, v).unwrap(),
            _ => {}
        }
        i += 1;
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(frames(&bytes).len(), 50);
    assert_eq!(with_frames(&bytes, &frames(&bytes)), bytes);
    Fixture {
        scratch: dir.path().join("case.tyrum"),
        _dir: dir,
        bytes,
        older,
        anchor,
    }
}

impl Fixture {
    fn options(&self) -> FileOptions {
        options().anchor(Anchor::new(self.anchor.clone()))
    }

    /// Opens `bytes` as the store (its anchor untouched) and insists on a
    /// typed refusal.
    fn assert_refused(&self, bytes: &[u8], case: &str) {
        let anchor_before = self.anchor.bytes();
        std::fs::write(&self.scratch, bytes).unwrap();
        match read_all(&self.scratch, self.options()) {
            Ok(values) => panic!("{case}: the store opened, reading {} values", values.len()),
            Err(e) => assert!(is_refusal(&e), "{case}: not a typed refusal: {e}"),
        }
        assert_eq!(
            self.anchor.bytes(),
            anchor_before,
            "{case}: the anchor moved"
        );
    }
}

#[test]
fn the_untouched_store_opens() {
    let f = fixture();
    std::fs::write(&f.scratch, &f.bytes).unwrap();
    let values = read_all(&f.scratch, f.options()).unwrap();
    assert!(!values.is_empty());
    assert!(!values.values().any(|v| v == b"destroyed-value"));
}

#[test]
fn cutting_any_one_frame_is_refused() {
    let f = fixture();
    let all = frames(&f.bytes);
    for cut in 0..all.len() {
        let mut kept = all.clone();
        kept.remove(cut);
        f.assert_refused(&with_frames(&f.bytes, &kept), &format!("frame {cut} cut"));
    }
}

#[test]
fn swapping_any_two_frames_is_refused() {
    let f = fixture();
    let all = frames(&f.bytes);
    for a in 0..all.len() {
        for b in a + 1..all.len() {
            let mut swapped = all.clone();
            swapped.swap(a, b);
            f.assert_refused(
                &with_frames(&f.bytes, &swapped),
                &format!("frames {a} and {b} swapped"),
            );
        }
    }
}

#[test]
fn repeating_any_one_frame_is_refused() {
    let f = fixture();
    let all = frames(&f.bytes);
    for dup in 0..all.len() {
        for at in [dup + 1, all.len()] {
            let mut repeated = all.clone();
            repeated.insert(at, all[dup].clone());
            f.assert_refused(
                &with_frames(&f.bytes, &repeated),
                &format!("frame {dup} repeated at {at}"),
            );
        }
    }
}

#[test]
fn splicing_any_frame_of_an_older_copy_is_refused() {
    let f = fixture();
    let all = frames(&f.bytes);
    let old = frames(&f.older);
    let destroyed_put = old.last().unwrap();
    assert!(
        destroyed_put.windows(5).any(|w| w == b"old/0"),
        "the older copy ends with the put of the destroyed version"
    );
    for (k, frame) in old.iter().enumerate() {
        for at in 0..=all.len() {
            // Inserted before frame `at`, and in place of it.
            let mut inserted = all.clone();
            inserted.insert(at, frame.clone());
            f.assert_refused(
                &with_frames(&f.bytes, &inserted),
                &format!("older frame {k} inserted at {at}"),
            );
            if at < all.len() {
                let mut replaced = all.clone();
                replaced[at] = frame.clone();
                f.assert_refused(
                    &with_frames(&f.bytes, &replaced),
                    &format!("older frame {k} in place of {at}"),
                );
            }
        }
    }
    // The older copy's whole log under the current header, and the current
    // log under the older header.
    f.assert_refused(&with_frames(&f.bytes, &old), "older log, newer header");
    f.assert_refused(&with_frames(&f.older, &all), "newer log, older header");
}

#[test]
fn without_an_anchor_only_the_cut_of_the_last_frame_goes_unnoticed() {
    let f = fixture();
    let all = frames(&f.bytes);
    let mut kept = all.clone();
    kept.pop();
    std::fs::write(&f.scratch, with_frames(&f.bytes, &kept)).unwrap();
    // A valid older store: the chain alone cannot tell...
    assert!(read_all(&f.scratch, options()).is_ok());
    // ...its anchor can.
    f.assert_refused(&with_frames(&f.bytes, &kept), "last frame cut");
    // Any other single cut breaks the chain even without an anchor.
    kept = all.clone();
    kept.remove(0);
    std::fs::write(&f.scratch, with_frames(&f.bytes, &kept)).unwrap();
    assert!(read_all(&f.scratch, options()).is_err());
}

/// A small format-2 store, its anchor's bytes, and what each of its
/// frame-aligned prefixes reads, made once.
type Small = (Vec<u8>, Option<Vec<u8>>, Vec<(usize, common::Values)>);

fn small() -> &'static Small {
    static SMALL: std::sync::OnceLock<Small> = std::sync::OnceLock::new();
    SMALL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.tyrum");
        let anchor = MemoryAnchor::new();
        let p =
            FileProvider::open_with(&path, key(), options().anchor(Anchor::new(anchor.clone())))
                .unwrap();
        for (name, value) in [
            ("a", "CANARY-one"),
            ("a", "CANARY-two"),
            ("b", "CANARY-three"),
        ] {
            p.write(&loc(name), &secret(value.as_bytes())).unwrap();
        }
        p.delete(&loc("a"), tyrum_secrets_core::Version::FIRST)
            .unwrap();
        drop(p);
        let bytes = std::fs::read(&path).unwrap();
        let prefixes = common::boundaries(&bytes)
            .into_iter()
            .map(|end| {
                std::fs::write(&path, &bytes[..end]).unwrap();
                (end, read_all(&path, options()).unwrap())
            })
            .collect();
        (bytes, anchor.bytes(), prefixes)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any edit or cut of a format-2 store: without its anchor, an error or
    /// what a frame-aligned prefix of it reads (followed at most by a torn
    /// tail); with its anchor, an error unless nothing changed. Never a
    /// panic.
    #[test]
    fn any_edit_of_a_v2_store_is_an_error_or_an_older_prefix(
        edits in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
            0..4,
        ),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
        cut_it in proptest::prelude::any::<bool>(),
    ) {
        let (original, anchor_bytes, prefixes) = small();
        let mut bytes = original.clone();
        for (at, byte) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
        if cut_it {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case.tyrum");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(values) = read_all(&path, options()) {
            let explained = prefixes.iter().any(|(end, expected)| {
                bytes.len() >= *end && bytes[..*end] == original[..*end] && values == *expected
            });
            proptest::prop_assert!(explained, "the edited store reads what no prefix of it held");
        }
        let anchor = MemoryAnchor::new();
        anchor.set_bytes(anchor_bytes.clone());
        let anchored = read_all(&path, options().anchor(Anchor::new(anchor)));
        proptest::prop_assert_eq!(anchored.is_ok(), &bytes == original);
    }
}
