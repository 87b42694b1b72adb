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
