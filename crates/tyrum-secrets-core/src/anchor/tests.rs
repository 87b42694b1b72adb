use super::*;
use crate::MemoryProvider;

fn key(byte: u8) -> AnchorKey {
    AnchorKey::new(SecretBytes::from(vec![byte; 32])).unwrap()
}

fn seal(byte: u8, subject: &[u8]) -> AnchorSeal {
    AnchorSeal::new(key(byte), subject.to_vec())
}

fn head(generation: u64, count: u64, chain: u8) -> AnchorHead {
    AnchorHead::new(generation, count, [chain; CHAIN_LEN])
}

/// A file of generation 1 whose chain value after `n` records is `[n; 32]`.
fn observed(anchor: &SealedAnchor, generation: u64, count: u64) -> Observed {
    let mut watch = ChainWatch::new(Some(anchor), generation);
    for n in 0..=count {
        watch.observe(n, &[n as u8; CHAIN_LEN]);
    }
    watch.finish(head(generation, count, count as u8))
}

fn load(anchor: &Anchor) -> SealedAnchor {
    anchor.load().unwrap().unwrap()
}

#[test]
fn advanced_head_reads_back_only_under_its_key_and_subject() {
    let anchor = Anchor::new(MemoryAnchor::new());
    assert!(anchor.load().unwrap().is_none());
    anchor
        .advance(&seal(1, b"store-a"), &head(1, 5, 5))
        .unwrap();
    let sealed = load(&anchor);
    assert!(sealed.claims_a_file());
    let opened = sealed.open(&seal(1, b"store-a")).unwrap();
    assert_eq!((opened.current, opened.next), (Some(head(1, 5, 5)), None));
    for other in [seal(2, b"store-a"), seal(1, b"store-b")] {
        assert!(matches!(
            sealed.open(&other),
            Err(AnchorError::Unauthenticated { .. })
        ));
    }
}

#[test]
fn every_edit_of_a_stored_anchor_is_refused() {
    let memory = MemoryAnchor::new();
    let anchor = Anchor::new(memory.clone());
    let seal = seal(1, b"s");
    anchor.advance(&seal, &head(1, 5, 5)).unwrap();
    let bytes = memory.bytes().unwrap();
    for bit in 0..bytes.len() * 8 {
        let mut edited = bytes.clone();
        edited[bit / 8] ^= 1 << (bit % 8);
        memory.set_bytes(Some(edited));
        let opened = anchor.load().and_then(|s| s.unwrap().open(&seal));
        assert!(opened.is_err(), "bit {bit} flipped unnoticed");
    }
    for cut in 0..bytes.len() {
        memory.set_bytes(Some(bytes[..cut].to_vec()));
        assert!(matches!(anchor.load(), Err(AnchorError::Malformed { .. })));
    }
}

#[test]
fn a_file_ahead_of_its_anchor_is_accepted_and_one_behind_is_refused() {
    let anchor = Anchor::new(MemoryAnchor::new());
    let seal = seal(1, b"s");
    anchor.advance(&seal, &head(1, 5, 5)).unwrap();
    let sealed = load(&anchor);
    let opened = sealed.open(&seal).unwrap();
    assert_eq!(
        opened.check(&observed(&sealed, 1, 5)).unwrap(),
        Standing::AtHead
    );
    assert_eq!(
        opened.check(&observed(&sealed, 1, 9)).unwrap(),
        Standing::Behind
    );
    for count in 0..5 {
        assert!(matches!(
            opened.check(&observed(&sealed, 1, count)),
            Err(AnchorError::RolledBack { anchored, found, .. })
                if anchored.count == 5 && found.count == count
        ));
    }
    // An older generation is a rollback whatever its length.
    assert!(matches!(
        opened.check(&observed(&sealed, 0, 50)),
        Err(AnchorError::RolledBack { .. })
    ));
}

#[test]
fn a_file_on_another_chain_is_refused_as_diverged() {
    let anchor = Anchor::new(MemoryAnchor::new());
    let seal = seal(1, b"s");
    anchor.advance(&seal, &head(1, 3, 3)).unwrap();
    let sealed = load(&anchor);
    let opened = sealed.open(&seal).unwrap();
    // Same length and generation, but another chain value at record 3.
    let mut watch = ChainWatch::new(Some(&sealed), 1);
    watch.observe(3, &[0xee; CHAIN_LEN]);
    let other = watch.finish(head(1, 7, 7));
    assert!(matches!(
        opened.check(&other),
        Err(AnchorError::Diverged { .. })
    ));
    // A newer generation the anchor never announced.
    assert!(matches!(
        opened.check(&observed(&sealed, 2, 9)),
        Err(AnchorError::Diverged { .. })
    ));
}

#[test]
fn an_announced_rewrite_is_accepted_before_and_after_the_rename() {
    let anchor = Anchor::new(MemoryAnchor::new());
    let old = seal(1, b"s");
    let new = seal(2, b"s"); // a rotated key
    anchor.advance(&old, &head(1, 5, 5)).unwrap();
    anchor
        .announce(Some((&old, &head(1, 5, 5))), (&new, &head(2, 3, 3)))
        .unwrap();
    let sealed = load(&anchor);
    // Crash before the rename: the old file, read with the old key.
    let opened = sealed.open(&old).unwrap();
    assert_eq!(opened.next, None, "the new key's head does not verify");
    assert!(opened.check(&observed(&sealed, 1, 5)).is_ok());
    // Crash after it: the new file, read with the new key.
    let opened = sealed.open(&new).unwrap();
    assert_eq!(opened.current, None);
    assert_eq!(
        opened.check(&observed(&sealed, 2, 3)).unwrap(),
        Standing::Behind
    );
    // After the advance, only the new file is accepted.
    anchor.advance(&new, &head(2, 3, 3)).unwrap();
    let sealed = load(&anchor);
    assert!(matches!(
        sealed.open(&old),
        Err(AnchorError::Unauthenticated { .. })
    ));
    let opened = sealed.open(&new).unwrap();
    assert!(opened.check(&observed(&sealed, 1, 5)).is_err());
}

#[test]
fn creation_is_announced_without_a_current_file() {
    let anchor = Anchor::new(MemoryAnchor::new());
    let seal = seal(1, b"s");
    anchor.announce(None, (&seal, &head(1, 0, 0))).unwrap();
    let sealed = load(&anchor);
    assert!(!sealed.claims_a_file());
    let opened = sealed.open(&seal).unwrap();
    assert!(opened.check(&observed(&sealed, 1, 0)).is_ok());
}

#[test]
fn file_anchor_survives_many_saves_and_a_torn_slot() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileAnchor::beside(&dir.path().join("audit.jsonl"));
    assert!(store.path().ends_with("audit.jsonl.anchor"));
    assert!(store.load().unwrap().is_none());
    for n in 0..5u8 {
        store.save(&[n; 100]).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), vec![n; 100]);
    }
    let mut bytes = std::fs::read(store.path()).unwrap();
    assert_eq!(bytes.len(), FILE_LEN_FOR_TESTS);
    // Tear the newest slot (4 was written last, into slot 0): the previous
    // value comes back.
    bytes[30] ^= 0xff;
    std::fs::write(store.path(), &bytes).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), vec![3; 100]);
    // The next save overwrites the torn slot, not the good one.
    store.save(&[9; 10]).unwrap();
    assert_eq!(store.load().unwrap().unwrap(), vec![9; 10]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

const FILE_LEN_FOR_TESTS: usize = 8192;

#[test]
fn file_anchor_refuses_foreign_and_special_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.anchor");
    std::fs::write(&path, b"not an anchor").unwrap();
    assert!(matches!(
        FileAnchor::new(&path).load(),
        Err(AnchorError::Malformed { .. })
    ));
    std::fs::write(&path, vec![0u8; FILE_LEN_FOR_TESTS]).unwrap();
    assert!(matches!(
        FileAnchor::new(&path).load(),
        Err(AnchorError::Malformed { .. })
    ));
    #[cfg(unix)]
    assert!(matches!(
        FileAnchor::new("/dev/zero").load(),
        Err(AnchorError::Io { .. })
    ));
    // A save (only a recovery call saves over an anchor that fails to
    // load) replaces a damaged file with a whole one.
    std::fs::write(&path, b"damaged").unwrap();
    FileAnchor::new(&path).save(b"fresh").unwrap();
    assert_eq!(FileAnchor::new(&path).load().unwrap().unwrap(), b"fresh");
    #[cfg(unix)]
    assert!(matches!(
        FileAnchor::new("/dev/zero").save(b"x"),
        Err(AnchorError::Io { .. })
    ));
}

#[test]
fn provider_anchor_keeps_the_latest_bytes_and_few_versions() {
    let provider = Arc::new(MemoryProvider::new());
    let locator = Locator::new("anchors/store").unwrap();
    let store = ProviderAnchor::new(provider.clone(), locator.clone());
    assert!(store.load().unwrap().is_none());
    for n in 0..5u8 {
        store.save(&[n; 40]).unwrap();
    }
    assert_eq!(store.load().unwrap().unwrap(), vec![4; 40]);
    assert_eq!(provider.versions(&locator).unwrap().len(), 1);
    assert!(store.location().contains("anchors/store"));
}

#[test]
fn a_failing_memory_anchor_fails_loads_and_saves() {
    let memory = MemoryAnchor::new();
    memory.fail(true);
    assert!(matches!(
        memory.load(),
        Err(AnchorError::Unavailable { .. })
    ));
    assert!(matches!(
        memory.save(b"x"),
        Err(AnchorError::Unavailable { .. })
    ));
    memory.fail(false);
    memory.save(b"x").unwrap();
}

#[test]
fn keys_are_redacted_and_short_ones_refused() {
    let key = AnchorKey::new(SecretBytes::from(
        b"CANARY-anchor-key-CANARY-anchor-key".to_vec(),
    ))
    .unwrap();
    let seal = AnchorSeal::new(key.clone(), b"s".to_vec());
    let text = format!("{key:?} {seal:?}");
    assert!(!text.contains("CANARY"), "{text}");
    assert!(matches!(
        AnchorKey::new(SecretBytes::from(vec![1; 16])),
        Err(AnchorError::KeyTooShort { len: 16 })
    ));
}
