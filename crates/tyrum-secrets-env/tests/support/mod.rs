//! Test doubles shared by the integration tests.

pub(crate) mod kubelet;
