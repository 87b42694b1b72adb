//! The shipped catalog stores keep the `CatalogStore` contract.

#![allow(clippy::expect_used, reason = "test set-up: a failure is a panic")]

mod memory {
    use tyrum_secrets_core::MemoryCatalogStore;
    use tyrum_secrets_testkit::catalog_store::StoreUnderTest;

    tyrum_secrets_testkit::catalog_store_contract!(StoreUnderTest::new(MemoryCatalogStore::new()));
}

mod json_file {
    use tyrum_secrets_core::JsonFileCatalogStore;
    use tyrum_secrets_testkit::catalog_store::StoreUnderTest;

    fn json_store() -> StoreUnderTest {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("catalog.json");
        StoreUnderTest::shared(move || {
            JsonFileCatalogStore::open(&path).expect("the catalog file opens")
        })
        .keep_alive(dir)
    }

    tyrum_secrets_testkit::catalog_store_contract!(shared, json_store());
}

mod json_file_authenticated {
    use tyrum_secrets_core::{Anchor, CatalogKey, JsonFileCatalogStore, MemoryAnchor};
    use tyrum_secrets_testkit::catalog_store::StoreUnderTest;

    /// Every view shares the key and the anchor (a sibling file), as
    /// processes sharing a state directory would.
    fn beside() -> StoreUnderTest {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("catalog.json");
        let key = CatalogKey::generate().expect("randomness");
        StoreUnderTest::shared(move || {
            JsonFileCatalogStore::open_authenticated(&path, key.clone(), Anchor::beside(&path))
                .expect("the authenticated catalog opens")
        })
        .keep_alive(dir)
    }

    tyrum_secrets_testkit::catalog_store_contract!(shared, beside());

    mod in_memory_anchor {
        use super::*;

        /// The anchor elsewhere (here in memory, shared by every view).
        fn elsewhere() -> StoreUnderTest {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let path = dir.path().join("catalog.json");
            let key = CatalogKey::generate().expect("randomness");
            let anchor = MemoryAnchor::new();
            StoreUnderTest::shared(move || {
                JsonFileCatalogStore::open_authenticated(
                    &path,
                    key.clone(),
                    Anchor::new(anchor.clone()),
                )
                .expect("the authenticated catalog opens")
            })
            .keep_alive(dir)
        }

        tyrum_secrets_testkit::catalog_store_contract!(shared, elsewhere());
    }
}
