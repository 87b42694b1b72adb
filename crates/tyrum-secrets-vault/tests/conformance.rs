//! `VaultProvider` passes the provider conformance suite and
//! `VaultCatalogStore` the catalog-store contract, against a real OpenBao
//! dev server.

mod support;

mod provider {
    use super::support::{fresh_mount, root_client, shared_server};
    use tyrum_secrets_vault::VaultProvider;

    // A 1 MiB value stays under the dev server's request limits; the
    // default limit is for integrated storage's 1 MiB entries.
    fn provider() -> VaultProvider {
        VaultProvider::new(root_client(shared_server()), fresh_mount("values"))
            .with_max_value_len(2 << 20)
    }

    tyrum_secrets_testkit::provider_conformance!(
        ignore = "needs OpenBao; run scripts/test",
        provider()
    );

    mod at_the_default_limit {
        use super::*;

        tyrum_secrets_testkit::provider_conformance!(
            ignore = "needs OpenBao; run scripts/test",
            VaultProvider::new(root_client(shared_server()), fresh_mount("limited"))
        );
    }
}

mod catalog_store {
    use super::support::{fresh_mount, root_client, shared_server};
    use tyrum_secrets_testkit::catalog_store::StoreUnderTest;
    use tyrum_secrets_vault::VaultCatalogStore;

    fn store() -> StoreUnderTest {
        let mount = fresh_mount("catalog");
        StoreUnderTest::shared(move || {
            // A second view has its own client: its own pool and token, as
            // another process would.
            VaultCatalogStore::new(root_client(shared_server()), mount.clone())
        })
    }

    tyrum_secrets_testkit::catalog_store_contract!(
        ignore = "needs OpenBao; run scripts/test",
        shared,
        store()
    );
}
