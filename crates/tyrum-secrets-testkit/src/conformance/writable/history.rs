//! Checks of a locator's version history: numbers never come back,
//! destroyed versions leave `versions()`, `Latest` skips what was deleted,
//! and all of it survives reopening the provider.

use tyrum_secrets_core::{
    Locator, Persistence, ProviderError, SecretProvider, Version, VersionInfo, VersionSelector,
    VersionState,
};

use super::{read, write};
use crate::conformance::{Fixture, describe, fresh_locator};

/// Runs `delete` (`destroy == false`) or `destroy`; `false` when the
/// provider does not support it, a panic on any other failure.
fn remove(p: &dyn SecretProvider, locator: &Locator, version: Version, destroy: bool) -> bool {
    let (name, result) = if destroy {
        ("destroy", p.destroy(locator, version))
    } else {
        ("delete", p.delete(locator, version))
    };
    match result {
        Ok(()) => true,
        Err(ProviderError::Unsupported { .. }) => false,
        Err(e) => panic!("{name} of {locator} {version} failed: {e}"),
    }
}

fn versions(p: &dyn SecretProvider, locator: &Locator) -> Option<Vec<VersionInfo>> {
    match p.versions(locator) {
        Ok(infos) => Some(infos),
        Err(ProviderError::Unsupported { .. }) => None,
        Err(e) => panic!("versions() of {locator} failed: {e}"),
    }
}

/// A version number is never handed out twice: not after the newest
/// version was destroyed, nor after it was deleted.
pub fn destroyed_versions_are_not_reused(p: &dyn SecretProvider) {
    let locator = fresh_locator("reuse");
    write(p, &locator, b"reuse-first-11111");
    for (step, destroy) in [("destroyed", true), ("deleted", false)] {
        let newest = write(p, &locator, format!("reuse-{step}-22222").as_bytes());
        if !remove(p, &locator, newest, destroy) {
            continue;
        }
        let next = write(p, &locator, format!("reuse-after-{step}-3333").as_bytes());
        assert!(
            next > newest,
            "the newest version {newest} was {step} and the next write got {next}: \
             a version number was reused, so a pinned version would read another value"
        );
    }
}

/// `versions()` never lists a destroyed version, and never lists a deleted
/// one as live; it lists each version once, oldest first.
pub fn destroyed_versions_leave_the_version_list(p: &dyn SecretProvider) {
    let locator = fresh_locator("versions-destroyed");
    let v1 = write(p, &locator, b"listed-one-11111");
    let v2 = write(p, &locator, b"listed-two-22222");
    let v3 = write(p, &locator, b"listed-three-333");
    let destroyed = remove(p, &locator, v2, true);
    let deleted = remove(p, &locator, v3, false);
    let Some(infos) = versions(p, &locator) else {
        return;
    };
    let listed: Vec<Version> = infos.iter().map(|i| i.version).collect();
    assert!(
        listed.windows(2).all(|w| w[0] < w[1]),
        "versions() is not oldest first, each version once: {listed:?}"
    );
    if destroyed {
        assert!(
            !listed.contains(&v2),
            "versions() lists destroyed version {v2}: {infos:?}"
        );
    }
    if deleted {
        assert!(
            !infos
                .iter()
                .any(|i| i.version == v3 && i.state == VersionState::Live),
            "versions() lists deleted version {v3} as live: {infos:?}"
        );
    }
    if p.capabilities().versioned {
        assert!(
            infos
                .iter()
                .any(|i| i.version == v1 && i.state == VersionState::Live),
            "versions() misses live version {v1}: {infos:?}"
        );
    }
}

/// `Latest` is the newest *readable* version: after the newest is deleted
/// or destroyed it reads the one before (on versioned providers), and when
/// none is left it is `NotFound`, never a backend error such as
/// `Unavailable`.
pub fn latest_skips_deleted_versions(p: &dyn SecretProvider) {
    let locator = fresh_locator("latest-deleted");
    let v1 = write(p, &locator, b"latest-one-11111");
    let versioned = p.capabilities().versioned;
    for (step, destroy) in [("deleted", false), ("destroyed", true)] {
        let newest = write(p, &locator, format!("latest-{step}-2222").as_bytes());
        if !remove(p, &locator, newest, destroy) {
            continue;
        }
        let latest = p.read(&locator, VersionSelector::Latest);
        if versioned {
            match &latest {
                Ok(got) => {
                    assert_eq!(
                        got.version, v1,
                        "after the newest version was {step}, Latest read {} instead of {v1}",
                        got.version
                    );
                }
                Err(_) => panic!(
                    "after the newest version was {step}, Latest failed ({}) although {v1} is readable",
                    describe(&latest)
                ),
            }
            let (_, bytes) = read(p, &locator, VersionSelector::Latest);
            assert_eq!(bytes, b"latest-one-11111", "Latest reads another value");
        } else {
            assert!(
                matches!(latest, Err(ProviderError::NotFound { .. })),
                "after the only version was {step}, Latest: {}",
                describe(&latest)
            );
        }
    }
    if versioned && remove(p, &locator, v1, false) {
        let latest = p.read(&locator, VersionSelector::Latest);
        assert!(
            matches!(
                latest,
                Err(ProviderError::NotFound { .. } | ProviderError::VersionNotFound { .. })
            ),
            "with every version deleted, Latest must be NotFound: {}",
            describe(&latest)
        );
    }
}

/// Everything written survives reopening the provider over the same
/// storage: readable versions read back the same, deleted and destroyed
/// ones stay gone, `versions()` and `list()` say the same, and numbering
/// continues past every version ever used.
///
/// Runs whenever the fixture can reopen its provider. A fixture that
/// cannot passes only for a provider whose values last as long as the
/// process (`Persistence::Process`); every other provider needs a
/// [`Fixture`] that reopens it.
pub fn data_survives_reopen(f: &mut Fixture) {
    let persistence = f.provider().capabilities().persistence;
    if !f.can_reopen() {
        assert!(
            persistence == Persistence::Process,
            "data_survives_reopen: the provider keeps values beyond the process ({persistence:?}); \
             give the suite a Fixture that can reopen it (Fixture::reopening)"
        );
        return;
    }
    let p = f.provider();
    let versioned = p.capabilities().versioned;
    let a = fresh_locator("reopen-a");
    let b = fresh_locator("reopen-b");
    let a1 = write(p, &a, b"reopen-a-one-11111");
    let a2 = write(p, &a, b"reopen-a-two-22222");
    let a3 = write(p, &a, b"reopen-a-three-333");
    write(p, &b, b"reopen-b-only-4444");
    let deleted = versioned && remove(p, &a, a1, false);
    let destroyed = remove(p, &a, a3, true);
    let latest = read(p, &a, VersionSelector::Latest);
    let versions_before = versions(p, &a);
    let listed_before = p.list().is_ok();

    assert!(f.reopen(), "the fixture could not reopen the provider");
    let p = f.provider();
    assert_eq!(
        read(p, &a, VersionSelector::Latest),
        latest,
        "Latest of {a} changed across a reopen"
    );
    let (_, bytes) = read(p, &b, VersionSelector::Latest);
    assert_eq!(bytes, b"reopen-b-only-4444", "{b} lost its value on reopen");
    if versioned {
        let (_, bytes) = read(p, &a, VersionSelector::Exact(a2));
        assert_eq!(
            bytes, b"reopen-a-two-22222",
            "{a} {a2} lost its value on reopen"
        );
    }
    for (gone, version) in [(deleted, a1), (destroyed, a3)] {
        if gone {
            let result = p.read(&a, VersionSelector::Exact(version));
            assert!(
                matches!(result, Err(ProviderError::VersionNotFound { .. })),
                "{a} {version} was removed before the reopen and reads after it: {}",
                describe(&result)
            );
        }
    }
    if let Some(before) = versions_before {
        assert_eq!(
            versions(p, &a),
            Some(before),
            "versions() of {a} changed across a reopen"
        );
    }
    if listed_before {
        let listed = p
            .list()
            .unwrap_or_else(|e| panic!("list() failed after a reopen: {e}"));
        assert!(
            listed.contains(&a) && listed.contains(&b),
            "list() lost locators on reopen"
        );
    }
    let next = write(p, &a, b"reopen-a-four-4444");
    assert!(
        next > a3,
        "after a reopen the next write got {next}, not past {a3}: a version number was reused"
    );
}
