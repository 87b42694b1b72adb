#![doc = include_str!("../README.md")]

pub mod bao;
pub mod catalog_store;
pub mod conformance;
mod faulty;
pub mod process;
pub mod profile_store;

pub use faulty::{FaultPlan, FaultyProvider};

/// Generates one `#[test]` per conformance check of a **writable** provider.
///
/// The argument is an expression that makes a fresh provider, or a
/// [`conformance::Fixture`] that owns the provider's setup and can reopen it
/// (it is evaluated once per test). Providers whose values outlive the
/// process must be given as a reopening fixture, or `data_survives_reopen`
/// fails. With `ignore = "reason", ` before it, every test is
/// `#[ignore = "reason"]`: for providers that need a real service, run by
/// `scripts/test` with `--include-ignored`.
///
/// ```
/// tyrum_secrets_testkit::provider_conformance!(tyrum_secrets_core::MemoryProvider::new());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! provider_conformance {
    (@each [$($attr:tt)*] $make:expr;) => {};
    (@each [$($attr:tt)*] $make:expr; $check:ident $(, $rest:ident)*) => {
        $($attr)*
        #[test]
        fn $check() {
            let fixture: $crate::conformance::Fixture = ($make).into();
            $crate::conformance::writable::$check(fixture.provider());
        }
        $crate::provider_conformance!(@each [$($attr)*] $make; $($rest),*);
    };
    (@all [$($attr:tt)*] $make:expr) => {
        $crate::provider_conformance!(@each [$($attr)*] $make;
            round_trip, versions_are_kept, overwrite_moves_latest, delete_and_destroy,
            list_reports_live_locators, empty_value, unicode_value, binary_value,
            large_value, missing_locator_and_version, concurrent_readers_and_writers,
            debug_output_hides_values, destroyed_versions_are_not_reused,
            destroyed_versions_leave_the_version_list, latest_skips_deleted_versions);
        $($attr)*
        #[test]
        fn data_survives_reopen() {
            let mut fixture: $crate::conformance::Fixture = ($make).into();
            $crate::conformance::writable::data_survives_reopen(&mut fixture);
        }
    };
    (ignore = $reason:literal, $make:expr) => {
        $crate::provider_conformance!(@all [#[ignore = $reason]] $make);
    };
    ($make:expr) => {
        $crate::provider_conformance!(@all [] $make);
    };
}

/// Generates one `#[test]` per conformance check of a **read-only** provider.
///
/// The first expression makes the provider (or a [`conformance::Fixture`]
/// that owns its setup), the second the values it holds: a
/// `Vec<(Locator, SecretBytes)>` the provider must return.
/// `ignore = "reason", ` before them ignores every test, as for
/// [`provider_conformance!`].
#[macro_export]
macro_rules! read_only_provider_conformance {
    (ignore = $reason:literal, $make:expr, $fixtures:expr) => {
        $crate::read_only_provider_conformance!(@each [#[ignore = $reason]] $make, $fixtures;
            fixtures_read_back, writes_are_refused, missing_locator_is_not_found,
            concurrent_readers, debug_output_hides_values);
    };
    ($make:expr, $fixtures:expr) => {
        $crate::read_only_provider_conformance!(@each [] $make, $fixtures;
            fixtures_read_back, writes_are_refused, missing_locator_is_not_found,
            concurrent_readers, debug_output_hides_values);
    };
    (@each [$($attr:tt)*] $make:expr, $fixtures:expr;) => {};
    (@each [$($attr:tt)*] $make:expr, $fixtures:expr; $check:ident $(, $rest:ident)*) => {
        $($attr)*
        #[test]
        fn $check() {
            let fixture: $crate::conformance::Fixture = ($make).into();
            let fixtures = $fixtures;
            $crate::conformance::read_only::$check(fixture.provider(), &fixtures);
        }
        $crate::read_only_provider_conformance!(@each [$($attr)*] $make, $fixtures; $($rest),*);
    };
}

/// Generates one `#[test]` per check of the [`CatalogStore`] contract
/// (see [`catalog_store`]).
///
/// The argument is an expression that makes a fresh
/// [`StoreUnderTest`](catalog_store::StoreUnderTest) (evaluated once per
/// test). With `shared, ` before it, the store must be shared between views
/// (a file, a server) and a check that a second view sees the first's
/// changes is added. `ignore = "reason", ` first ignores every test, for
/// stores that need a real service.
///
/// ```
/// use tyrum_secrets_testkit::catalog_store::StoreUnderTest;
/// tyrum_secrets_testkit::catalog_store_contract!(
///     StoreUnderTest::new(tyrum_secrets_core::MemoryCatalogStore::new())
/// );
/// # fn main() {}
/// ```
///
/// [`CatalogStore`]: tyrum_secrets_core::CatalogStore
#[macro_export]
macro_rules! catalog_store_contract {
    (ignore = $reason:literal, shared, $make:expr) => {
        $crate::catalog_store_contract!(ignore = $reason, $make);
        $crate::catalog_store_contract!(@shared [#[ignore = $reason]] $make);
    };
    (ignore = $reason:literal, $make:expr) => {
        $crate::catalog_store_contract!(@each [#[ignore = $reason]] $make;
            unknown_id_is_none, create_then_get, create_twice_conflicts,
            update_of_missing_conflicts, stale_revision_conflicts, every_field_round_trips,
            list_is_complete_and_ordered, racing_updates_lose_nothing,
            debug_output_hides_entries);
    };
    (shared, $make:expr) => {
        $crate::catalog_store_contract!($make);
        $crate::catalog_store_contract!(@shared [] $make);
    };
    (@shared [$($attr:tt)*] $make:expr) => {
        $($attr)*
        #[test]
        fn another_view_sees_changes() {
            let under_test = $make;
            let second = under_test
                .reopen()
                .expect("a shared store under test can open a second view");
            $crate::catalog_store::another_view_sees_changes(under_test.store(), second.as_ref());
        }
    };
    (@each [$($attr:tt)*] $make:expr;) => {};
    (@each [$($attr:tt)*] $make:expr; $check:ident $(, $rest:ident)*) => {
        $($attr)*
        #[test]
        fn $check() {
            let under_test = $make;
            $crate::catalog_store::$check(under_test.store());
        }
        $crate::catalog_store_contract!(@each [$($attr)*] $make; $($rest),*);
    };
    ($make:expr) => {
        $crate::catalog_store_contract!(@each [] $make;
            unknown_id_is_none, create_then_get, create_twice_conflicts,
            update_of_missing_conflicts, stale_revision_conflicts, every_field_round_trips,
            list_is_complete_and_ordered, racing_updates_lose_nothing,
            debug_output_hides_entries);
    };
}

/// Generates one `#[test]` per check of the [`AuthProfileStore`] contract
/// ([`profile_store`]).
///
/// The argument is an expression that makes a fresh
/// [`ProfileStoreFixture`](profile_store::ProfileStoreFixture) (evaluated
/// once per test): any store, or a fixture that can also reopen a
/// persistent store's storage.
///
/// ```
/// tyrum_secrets_testkit::profile_store_contract!(
///     tyrum_secrets_core::MemoryAuthProfileStore::new()
/// );
/// # fn main() {}
/// ```
///
/// [`AuthProfileStore`]: tyrum_secrets_core::AuthProfileStore
#[macro_export]
macro_rules! profile_store_contract {
    ($make:expr) => {
        $crate::profile_store_contract!(@each $make;
            starts_empty, create_then_get_round_trips, creating_an_existing_id_conflicts,
            updates_need_the_stored_revision, removal_checks_the_revision_and_drops_pins,
            pins_are_set_replaced_and_cleared, snapshots_do_not_change,
            every_profile_shape_round_trips, concurrent_writers_lose_nothing,
            refresh_locks_exclude_and_time_out, reopening_keeps_profiles_and_pins);
    };
    (@each $make:expr;) => {};
    (@each $make:expr; $check:ident $(, $rest:ident)*) => {
        #[test]
        fn $check() {
            let fixture = $make;
            $crate::profile_store::$check(&fixture);
        }
        $crate::profile_store_contract!(@each $make; $($rest),*);
    };
}
