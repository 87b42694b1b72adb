//! `VaultProvider` passes the provider conformance suite and
//! `VaultCatalogStore` the catalog-store contract, against a real OpenBao
//! dev server.

mod support;

mod provider {
    use super::support::{fresh_mount, root_client, shared_server};
    use tyrum_secrets_testkit::conformance::Fixture;
    use tyrum_secrets_vault::{KvMount, VaultProvider};

    /// Reopening is a new client (its own pool and token) on the same
    /// mount and prefix, as a restarted process would make.
    fn reopening(mount: KvMount, max: Option<usize>) -> Fixture {
        Fixture::reopening(move || {
            let provider = VaultProvider::new(root_client(shared_server()), mount.clone());
            match max {
                Some(max) => provider.with_max_value_len(max),
                None => provider,
            }
        })
    }

    // A 1 MiB value stays under the dev server's request limits; the
    // default limit is for integrated storage's 1 MiB entries.
    fn provider() -> Fixture {
        reopening(fresh_mount("values"), Some(2 << 20))
    }

    tyrum_secrets_testkit::provider_conformance!(
        ignore = "needs OpenBao; run scripts/test",
        provider()
    );

    mod at_the_default_limit {
        use super::*;

        tyrum_secrets_testkit::provider_conformance!(
            ignore = "needs OpenBao; run scripts/test",
            reopening(fresh_mount("limited"), None)
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
