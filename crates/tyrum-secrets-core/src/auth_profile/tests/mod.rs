//! Tests of auth profiles.
