//! The in-memory provider passes the whole conformance suite.

tyrum_secrets_testkit::provider_conformance!(tyrum_secrets_core::MemoryProvider::new());

mod with_size_limit {
    tyrum_secrets_testkit::provider_conformance!(
        tyrum_secrets_core::MemoryProvider::with_max_value_len(4096)
    );
}

mod faulty_without_faults {
    use tyrum_secrets_testkit::{FaultPlan, FaultyProvider};
    tyrum_secrets_testkit::provider_conformance!(FaultyProvider::new(
        tyrum_secrets_core::MemoryProvider::new(),
        FaultPlan::none()
    ));
}
