//! Both providers pass the read-only conformance suite.

#![allow(clippy::expect_used, reason = "a test fails loudly on a broken setup")]

mod support;

use tyrum_secrets_core::{Locator, SecretBytes};

fn fixture(locator: &str, value: &[u8]) -> (Locator, SecretBytes) {
    (
        Locator::new(locator).expect("valid locator"),
        SecretBytes::from(value.to_vec()),
    )
}

/// The env provider over this process's real environment: cargo sets the
/// `CARGO_PKG_*` variables for every test binary it runs.
mod env_from_process {
    use super::fixture;
    use tyrum_secrets_env::EnvLoader;

    tyrum_secrets_testkit::read_only_provider_conformance!(
        EnvLoader::new()
            .prefix("CARGO_PKG_")
            .load()
            .expect("load the process environment"),
        vec![
            fixture("NAME", env!("CARGO_PKG_NAME").as_bytes()),
            fixture("VERSION", env!("CARGO_PKG_VERSION").as_bytes()),
        ]
    );
}

/// The env provider over given variables, binary values included.
mod env_from_given_variables {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use super::fixture;
    use tyrum_secrets_env::EnvLoader;

    const BINARY: &[u8] = b"CANARY-env-\xff\xfe\x80-binary";

    fn vars() -> Vec<(OsString, OsString)> {
        vec![
            ("APP_KEY".into(), "CANARY-env-api-key-4411".into()),
            ("SEC_TOKEN".into(), OsString::from_vec(BINARY.to_vec())),
            ("PATH".into(), "/usr/bin".into()),
        ]
    }

    tyrum_secrets_testkit::read_only_provider_conformance!(
        EnvLoader::new()
            .variable(
                tyrum_secrets_core::Locator::new("app/key").expect("valid"),
                "APP_KEY"
            )
            .prefix("SEC_")
            .load_from(vars())
            .expect("load"),
        vec![
            fixture("app/key", b"CANARY-env-api-key-4411"),
            fixture("TOKEN", BINARY),
        ]
    );
}

/// The mounted provider over a kubelet-style volume (after one rotation),
/// and over plain files.
mod mounted {
    use super::fixture;
    use super::support::kubelet::KubeletVolume;
    use tyrum_secrets_core::{Locator, SecretBytes};
    use tyrum_secrets_env::MountedSecretProvider;
    use tyrum_secrets_testkit::conformance::Fixture;

    fn files(generation: &str) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("username", format!("CANARY-user-{generation}").into_bytes()),
            ("password", format!("CANARY-pass-{generation}").into_bytes()),
            (
                "tls/tls.key",
                format!("CANARY-tls-{generation}\n\0\u{ff}").into_bytes(),
            ),
        ]
    }

    fn fixtures(generation: &str) -> Vec<(Locator, SecretBytes)> {
        files(generation)
            .iter()
            .map(|(key, value)| fixture(key, value))
            .collect()
    }

    /// The provider over a volume in a temporary directory the fixture
    /// owns.
    fn kubelet() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let volume = KubeletVolume::create(dir.path(), &files("old")).expect("kubelet write");
        let provider = MountedSecretProvider::open(dir.path()).expect("open");
        volume.write(&files("new")).expect("rotate");
        Fixture::new(provider).owning(dir)
    }

    fn plain() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        for (key, value) in files("plain") {
            let path = dir.path().join(key);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, value).expect("write");
        }
        let provider = MountedSecretProvider::open(dir.path()).expect("open");
        Fixture::new(provider).owning(dir)
    }

    mod kubelet_layout {
        tyrum_secrets_testkit::read_only_provider_conformance!(
            super::kubelet(),
            super::fixtures("new")
        );
    }

    mod plain_files {
        tyrum_secrets_testkit::read_only_provider_conformance!(
            super::plain(),
            super::fixtures("plain")
        );
    }
}
