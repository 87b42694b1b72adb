use super::*;
use crate::format::chain::ChainKeys;
use crate::key::KEY_LEN;

fn locator(name: &str) -> Locator {
    Locator::new(name).unwrap()
}

fn aad<'a>(
    id: &'a [u8; STORE_ID_LEN],
    link: Option<&'a Link>,
    kind: RecordKind,
    version: u64,
    locator: &'a Locator,
) -> RecordAad<'a> {
    RecordAad {
        store_id: id,
        link,
        kind,
        version,
        locator,
    }
}

#[test]
fn record_opens_only_under_its_own_store_locator_version_kind_and_link() {
    let key = StoreKey::from_bytes([5; KEY_LEN]);
    let id = [6; STORE_ID_LEN];
    let link = [7; 32];
    let name = locator("a/b");
    for bound in [None, Some(&link)] {
        let framed =
            seal_record(&key, aad(&id, bound, RecordKind::Put, 2, &name), b"value").unwrap();
        let scan = scan(&framed, 0, Path::new("x")).unwrap();
        assert!(!scan.torn);
        let rec = &scan.records[0];
        assert_eq!(rec.frame, framed.as_slice());
        let open = |aad| open_record(&key, aad, rec.sealed, Path::new("x"));
        assert_eq!(
            open(aad(&id, bound, RecordKind::Put, 2, &rec.locator))
                .unwrap()
                .as_slice(),
            b"value"
        );
        let other_link = [8; 32];
        let other_name = locator("a/c");
        for wrong in [
            aad(&[7; STORE_ID_LEN], bound, RecordKind::Put, 2, &rec.locator),
            aad(&id, bound, RecordKind::Put, 3, &rec.locator),
            aad(&id, bound, RecordKind::Delete, 2, &rec.locator),
            aad(&id, bound, RecordKind::Put, 2, &other_name),
            aad(&id, Some(&other_link), RecordKind::Put, 2, &rec.locator),
            aad(
                &id,
                if bound.is_some() { None } else { Some(&link) },
                RecordKind::Put,
                2,
                &rec.locator,
            ),
        ] {
            assert!(open(wrong).is_err());
        }
    }
}

#[test]
fn incomplete_final_record_is_torn_not_corrupt() {
    let key = StoreKey::from_bytes([5; KEY_LEN]);
    let id = [6; STORE_ID_LEN];
    let (a, b) = (locator("a"), locator("a"));
    let mut log = seal_record(&key, aad(&id, None, RecordKind::Put, 1, &a), b"one").unwrap();
    let first = log.len() as u64;
    log.extend(seal_record(&key, aad(&id, None, RecordKind::Put, 2, &b), b"two").unwrap());
    for cut in first as usize + 1..log.len() {
        let scan = scan(&log[..cut], 0, Path::new("x")).unwrap();
        assert!(scan.torn && scan.end == first && scan.records.len() == 1);
    }
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = RecordKind> {
        prop_oneof![
            Just(RecordKind::Put),
            Just(RecordKind::Delete),
            Just(RecordKind::Destroy)
        ]
    }

    proptest! {
        #[test]
        fn chained_records_scan_back_and_open_only_in_their_place(
            records in proptest::collection::vec(
                (kind(), 1u64.., "[a-z0-9/._-]{1,40}", proptest::collection::vec(any::<u8>(), 0..300)),
                1..8,
            ),
            chained in any::<bool>(),
            moved in any::<proptest::sample::Index>(),
        ) {
            let key = StoreKey::from_bytes([0x33; KEY_LEN]);
            let chain = ChainKeys::derive(&key);
            let id = [0x44; STORE_ID_LEN];
            let mut log = Vec::new();
            let mut links = vec![chain.genesis(b"header")];
            for (kind, version, name, value) in &records {
                let name = locator(name);
                let prev = *links.last().unwrap();
                let bound = chained.then_some(&prev);
                let framed = seal_record(&key, aad(&id, bound, *kind, *version, &name), value).unwrap();
                links.push(chain.link(&prev, &framed));
                log.extend_from_slice(&framed);
            }
            let scan = scan(&log, 7, Path::new("x")).unwrap();
            prop_assert!(!scan.torn);
            prop_assert_eq!(scan.end, 7 + log.len() as u64);
            prop_assert_eq!(scan.records.len(), records.len());
            let mut link = links[0];
            for (i, (raw, (kind, version, name, value))) in scan.records.iter().zip(&records).enumerate() {
                prop_assert_eq!(raw.kind, *kind);
                prop_assert_eq!(raw.version, *version);
                prop_assert_eq!(raw.locator.as_str(), name.as_str());
                let bound = chained.then_some(&link);
                let opened = open_record(&key, aad(&id, bound, *kind, *version, &raw.locator), raw.sealed, Path::new("x")).unwrap();
                prop_assert_eq!(opened.as_slice(), value.as_slice());
                link = chain.link(&link, raw.frame);
                prop_assert_eq!(link, links[i + 1]);
            }
            // A record read at another place in the chain does not open.
            if chained && records.len() > 1 {
                let i = moved.index(records.len());
                let raw = &scan.records[i];
                let wrong = links[(i + 1) % records.len()];
                let bound = Some(&wrong);
                prop_assert!(open_record(&key, aad(&id, bound, raw.kind, raw.version, &raw.locator), raw.sealed, Path::new("x")).is_err());
            }
        }
    }
}
